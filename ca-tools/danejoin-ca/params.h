/*
 * params.h - danejoin-ca: commands, flags, exit codes, and the validated parameters of a run.
 */
#ifndef DJ_CA_TOOLS_DANEJOIN_CA_PARAMS_H
#define DJ_CA_TOOLS_DANEJOIN_CA_PARAMS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "ca-tools/ca_bulk.h"
#include "ca-tools/ca_cert.h"
#include "ca-tools/ca_joineui.h"
#include "ca-tools/ca_key.h"
#include "ca-tools/ca_name.h"
#include "ca-tools/ca_update.h"
#include "common/dj_compiler.h"

#define CA_PROGRAM "danejoin-ca"
#define CA_MULTI_MAX 64		/* repeatable flags: --name, --rr, --expect */

/* Exit codes, the same for every command (--help, docs/danejoin-ca.md). */
enum ca_exit {
	CA_EXIT_OK = 0,
	CA_EXIT_USAGE = 1,	/* bad flag, unknown command, missing or conflicting flags */
	CA_EXIT_INPUT = 2,	/* bad input: missing or malformed file, wrong key type, bad name */
	CA_EXIT_EXISTS = 3,	/* an output file exists (use --force) */
	CA_EXIT_REFUSED = 4,	/* the DNS server refused: TSIG key (NOTAUTH), REFUSED, NOTZONE */
	CA_EXIT_CONFLICT = 5,	/* a prerequisite failed: the RRset changed under us */
	CA_EXIT_UNREACHABLE = 6,	/* the DNS server did not answer (down, timeout) */
	CA_EXIT_VALIDATION = 7,	/* the result could not be confirmed DNSSEC-secure */
	CA_EXIT_PENDING = 8,	/* rollover: a wait or the switch is still ahead (--no-wait) */
	CA_EXIT_INTERNAL = 9,	/* out of memory, crypto library failure, a bug */
};

enum ca_cmd {
	CA_CMD_ROOT,
	CA_CMD_INTERMEDIATE,
	CA_CMD_ISSUE,
	CA_CMD_SELF_SIGNED,
	CA_CMD_SIGN,
	CA_CMD_INSPECT,
	CA_CMD_TLSA,
	CA_CMD_PUBLISH,
	CA_CMD_ROLLOVER,
	CA_CMD_PUBLISH_JOINEUI,
	CA_CMD_COUNT,
};

/* Every flag; the value is the index into ca_args.val. */
enum ca_flag {
	F_KEY_TYPE, F_KEY_OUT, F_CERT_OUT, F_SUBJECT, F_DAYS, F_PATHLEN, F_CA_CERT, F_CA_KEY,
	F_CA_PASS, F_PASS, F_FORCE, F_ROLE, F_NAME, F_CSR, F_CERT, F_CHAIN, F_DEPTH, F_KEY,
	F_PUBKEY, F_USAGE, F_SELECTOR, F_MTYPE, F_TTL, F_SERVER, F_PORT, F_CLIENT_ROLE, F_HOST,
	F_ROOTCERT, F_CSV, F_OUT_DIR, F_THREADS, F_ZONE, F_NS, F_TSIG_FILE, F_TA_FILE, F_RR,
	F_RR_FILE, F_EXPECT, F_EXPECT_NONE, F_NO_VALIDATE, F_TIMEOUT, F_STATE, F_RESUME,
	F_CURRENT_CERT, F_NEXT_CERT, F_CACHE_CAP, F_MIN_WAIT, F_SWITCH_CMD, F_SWITCHED,
	F_NO_WAIT, F_BUNDLE, F_QUIET, F_LAYOUT, F_JOINEUI_PREFIX, F_JOINEUI_SUFFIX, F_ADDRESS,
	F_COUNT
};

/* The command line as parsed by main.c. Strings are borrowed from argv. */
struct ca_args {
	const char *command;
	const char *val[F_COUNT];	/* last value (or "1" for a switch) */
	const char *multi[5][CA_MULTI_MAX];	/* --name, --rr, --expect, --joineui-prefix,
						 * --address */
	size_t nmulti[5];
	int npos;			/* positional arguments after the command */
	char **pos;
};

#define CA_MULTI_NAME 0
#define CA_MULTI_RR 1
#define CA_MULTI_EXPECT 2
#define CA_MULTI_JOINEUI 3
#define CA_MULTI_ADDRESS 4

/* A validated run. Strings are borrowed from argv (or from owner[]). */
struct ca_params {
	enum ca_cmd cmd;
	const char *const *val;		/* = args->val */
	enum ca_key_type key_type;
	enum ca_role role;
	int days, pathlen, depth;
	unsigned usage, selector, mtype, threads, timeout_ms;
	uint32_t ttl, cache_cap, min_wait;
	bool force, expect_none, no_validate, switched, no_wait, bundle, quiet;
	const char *const *names;
	size_t nnames;
	const char *rrs[CA_MULTI_MAX];	/* --rr and lines of --rr-file (those are heap copies) */
	size_t nrrs;
	const char *const *expect;
	size_t nexpect;
	char owner[CA_NAME_BUF];	/* tlsa/rollover owner name, if any */
	bool has_owner;
	char zone[CA_NAME_BUF];		/* absolute, if --zone */
	enum ca_bulk_layout layout;	/* issue --csv */
	enum ca_op op;			/* publish */
	struct ca_server server;	/* publish, rollover */
	bool rrs_borrowed[CA_MULTI_MAX];	/* rrs[i] points into argv */
	struct ca_joineui_names *jnames;	/* --joineui-prefix each expanded (heap) */
	size_t njnames;
	const char **all_names;		/* issue with --joineui-prefix: --name, then the JoinEUI
					 * names (heap; the strings are borrowed) */
	const char *const *addrs;	/* publish-joineui --address */
	size_t naddrs;
	unsigned port;			/* publish-joineui --port (443) */
};

/*! \brief Look a command name up. \retval DJ_EOK, DJ_ENOENT */
int params_command(const char *name, enum ca_cmd *out) DJ_MUSTCHECK;

/*!
 * \brief Check that the flags fit the command and parse them into \p out. Prints one line on
 *        stderr when they do not. \return CA_EXIT_OK, CA_EXIT_USAGE or CA_EXIT_INPUT.
 */
int params_validate(const struct ca_args *args, struct ca_params *out) DJ_MUSTCHECK;

/*! \brief Free what params_validate allocated (lines of --rr-file). */
void params_free(struct ca_params *p);

/*! \brief Print the usage text (commands, flags, exit codes). */
void params_usage(FILE *f);

/*! \brief Whether a flag takes a value (for main.c's option table). */
int params_flag_has_arg(enum ca_flag f);

/*! \brief The long name of a flag, without "--". */
const char *params_flag_name(enum ca_flag f);

#endif /* DJ_CA_TOOLS_DANEJOIN_CA_PARAMS_H */
