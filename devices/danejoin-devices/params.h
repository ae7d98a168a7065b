/*
 * params.h - danejoin-devices: commands, exit codes, and the validated parameters of one run.
 */
#ifndef DJ_DEVICES_DANEJOIN_DEVICES_PARAMS_H
#define DJ_DEVICES_DANEJOIN_DEVICES_PARAMS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "common/dj_cli.h"
#include "common/dj_compiler.h"
#include "lorawan/lw_frame.h"

#define DV_PROGRAM "danejoin-devices"
/* errmsg - "danejoin-devices: ..." on stderr (common/dj_cli.h) */
#define errmsg(...) dj_cli_err(DV_PROGRAM, __VA_ARGS__)

/* Exit codes, the same for every command (documented in --help and docs/danejoin-devices.md). */
enum dv_exit {
	DV_EXIT_OK = 0,
	DV_EXIT_USAGE = 1,	/* bad flag, unknown command, wrong arguments */
	DV_EXIT_CONFIG = 2,	/* configuration cannot be read or is invalid */
	DV_EXIT_DATA = 3,	/* bad input: CSV, DevEUI, unknown or already enrolled device */
	DV_EXIT_STORE = 4,	/* store or key error: master key missing/mismatch/mode, database */
	DV_EXIT_INTERNAL = 5,	/* out of memory, crypto library failure, a bug */
	/* 6: simulate only (simulate.c) */
	DV_EXIT_DENIED = 7,	/* ownership: a signature, key, auth code or serial refused */
	DV_EXIT_DNS = 8,	/* ownership: the DNS update failed; the store says what is left,
				 * and a re-run finishes it. verify: the lookup failed */
	/* verify only (exec_verify.c): one code per verdict, so that scripts can tell them apart */
	DV_EXIT_BADSIG = 9,	/* the signature does not verify under the identity key */
	DV_EXIT_NOTLSA = 10,	/* no identity TLSA: secure NXDOMAIN / NODATA, none usable */
	DV_EXIT_INSECURE = 11,	/* the answer is not DNSSEC-secure (insecure or bogus) */
	DV_EXIT_KEYMISMATCH = 12, /* --device-key is not the key the identity TLSA names */
};

enum dv_cmd {
	DV_CMD_INIT,
	DV_CMD_IMPORT,
	DV_CMD_LIST,
	DV_CMD_SHOW,
	DV_CMD_DELETE,
	DV_CMD_RESET_NONCES,
	DV_CMD_REWRAP,
	DV_CMD_AUDIT,
	DV_CMD_RESTORE_GUARD,
	DV_CMD_CHECK,
	DV_CMD_SIMULATE,
	DV_CMD_MIGRATE,		/* migrate.c; before DV_CMD_ENROLL: not an ownership command */
	DV_CMD_ENROLL,
	DV_CMD_PUBLISH,
	DV_CMD_AUTHCODE,
	DV_CMD_TRANSFER_REQUEST,
	DV_CMD_TRANSFER,
	DV_CMD_OWNERSHIP,
	DV_CMD_VERIFY,
};

/* The flags of the ownership commands (exec_owner.c). Strings are borrowed from argv. */
struct dv_owner_args {
	const char *zone;		/* --zone: the owner (enroll, authcode, transfer-request) */
	const char *from_zone;		/* --from-zone: the manufacturer (enroll) */
	const char *to_zone;		/* --to-zone */
	const char *key;		/* --key: the signing key (manufacturer, owner, registry) */
	const char *ns;			/* --ns IP@PORT: the authoritative server (updates) */
	const char *tsig_file;		/* --tsig-file */
	const char *ta_file;		/* --ta-file: trust anchors for validated lookups */
	const char *lookup_via;		/* --lookup-via IP@PORT: stub for lookups (default --ns) */
	const char *js_cert, *js_key;	/* --js-cert, --js-key: CMS recipient (enroll) */
	const char *netids, *as_ids;	/* --netids, --as-ids: comma lists (rights) */
	const char *csv;		/* --csv FILE: a list of devices */
	const char *out;		/* --out FILE */
	const char *requests;		/* --requests FILE (transfer) */
	const char *auth_codes;		/* --auth-codes FILE (transfer) */
	const char *expires_in;		/* --expires-in SECONDS (authcode) */
	const char *ttl;		/* --ttl SECONDS */
	const char *dev_eui;		/* --dev-eui HEX (verify) */
	const char *message;		/* --message FILE (verify) */
	const char *signature;		/* --signature FILE (verify) */
	const char *device_key;		/* --device-key FILE: PEM public key (verify) */
};

/* The command line as parsed by main.c, before validation. Strings are borrowed from argv. */
struct dv_args {
	const char *config_path;
	const char *command;
	bool all;			/* --all */
	const char *new_master_key;	/* --new-master-key */
	bool forget_nonces;		/* --forget-nonces */
	const char *bump;		/* --bump N */
	const char *to;			/* --to CONNINFO (migrate) */
	int npos;			/* positional arguments after the command */
	char **pos;
	struct dv_owner_args own;
	bool owner_flag;		/* any ownership flag was given */
};

/* A validated run. Strings are borrowed from argv. */
struct dv_params {
	const char *config_path;
	enum dv_cmd cmd;
	const char *csv_path;		/* import */
	const char *new_master_key;	/* rewrap */
	bool has_dev_eui;		/* show, delete, reset-nonces, audit */
	uint8_t dev_eui[LW_EUI_LEN];
	bool all;			/* reset-nonces --all */
	bool forget_nonces;		/* import --forget-nonces */
	uint32_t bump;			/* restore-guard --bump N */
	const char *to;			/* migrate --to CONNINFO */
	const char *input;		/* enroll FILE, ownership DEVEUI (text) */
	struct dv_owner_args own;	/* the ownership commands */
};

/*!
 * \brief Look a command name up. \retval DJ_EOK, DJ_ENOENT (unknown command)
 */
int params_command(const char *name, enum dv_cmd *out) DJ_MUSTCHECK;

/*!
 * \brief Check that the arguments fit the command and parse them into \p out.
 *        Prints a one-line message on stderr when they do not.
 * \return DV_EXIT_OK, DV_EXIT_USAGE or DV_EXIT_DATA (a malformed DevEUI).
 */
int params_validate(const struct dv_args *args, struct dv_params *out) DJ_MUSTCHECK;

/*! \brief Print the full usage text (commands, CSV format, exit codes). */
void params_usage(FILE *f);

#endif /* DJ_DEVICES_DANEJOIN_DEVICES_PARAMS_H */
