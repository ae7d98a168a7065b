/*
 * params.h - danejoin-client: commands, exit codes, and the validated parameters of one run.
 */
#ifndef DJ_CLIENT_DANEJOIN_CLIENT_PARAMS_H
#define DJ_CLIENT_DANEJOIN_CLIENT_PARAMS_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "bi/bi_msg.h"
#include "common/dj_compiler.h"
#include "lorawan/lw_frame.h"

#define DC_PROGRAM "danejoin-client"
#define DC_STATE_SUFFIX ".state"
#define DC_ROOT_KEY "/usr/share/dns/root.key"	/* the DNS root anchor (dns-root-data) */
#define DC_RXDELAY_DEFAULT 1		/* RX1 delay, seconds (TS001-1.1 §5.7 RXTimingSetupReq) */
#define DC_RXDELAY_MAX 15		/* 4-bit Del field, §5.7 */
#define DC_COUNT_MAX 100000
#define DC_BENCH_MAX 10000000u

/* Exit codes, the same for every command (--help and docs/danejoin-client.md). */
enum dc_exit {
	DC_EXIT_OK = 0,		/* Result Success (and, with --sim, the device agrees) */
	DC_EXIT_USAGE = 1,	/* bad flag, unknown command, missing or conflicting flags */
	DC_EXIT_INPUT = 2,	/* bad input: a file, hex, CSV, state file, KEK file (mode) */
	DC_EXIT_CONN = 3,	/* connection, TLS or HTTP failure; no usable answer */
	DC_EXIT_RESULT = 4,	/* the answer's Result is not Success */
	DC_EXIT_INTERNAL = 5,	/* out of memory, crypto library failure, a bug */
	DC_EXIT_DEVICE = 6,	/* --sim: the device rejects the Join-accept, or the keys differ */
};

enum dc_cmd {
	DC_CMD_JOIN,
	DC_CMD_REJOIN,
	DC_CMD_APPSKEY,
	DC_CMD_HOMENS,
	DC_CMD_BENCH,
	DC_CMD_LISTEN,
	DC_CMD_SUBSCRIBE,
};

/* The command line as parsed by main.c, before validation. Strings are borrowed from argv. */
struct dc_args {
	const char *command;
	const char *url, *cert, *key, *ca, *server_name, *timeout;
	const char *sender_id, *receiver_id, *protocol, *sender_ns_id;
	const char *kek_label, *kek_file;
	bool allow_plain, show_keys;
	const char *phy, *mac_version, *dev_addr, *dl_settings, *rx_delay, *cflist;
	const char *sim, *state, *dev_eui, *count, *type, *session_key_id;
	const char *devices, *connections, *requests, *raw, *rate, *on_clock;
	const char *listen;
	const char *topic, *mqtt_client_id;	/* subscribe */
	const char *ta_file, *stubs, *forwarders, *tlsa_name, *clientid, *clientid_ext;
	const char *discover;
	int npos;			/* positional arguments after the command (none allowed) */
};

/* A validated run. Strings are borrowed from argv. */
struct dc_params {
	enum dc_cmd cmd;
	const char *url, *cert, *key, *ca, *server_name;
	unsigned timeout_ms;
	char sender_id[BI_ID_MAX];
	bool has_receiver_id;		/* else taken from the frame or the CSV */
	char receiver_id[BI_ID_MAX];
	enum bi_proto proto;
	bool has_sender_ns_id;
	char sender_ns_id[BI_ID_MAX];
	const char *kek_label, *kek_file;	/* both or neither */
	bool allow_plain, show_keys;
	/* join/rejoin */
	bool has_phy;
	uint8_t phy[LW_PHY_MAX];
	size_t phy_len;
	bool has_mac_version;
	enum lw_version mac_version;
	bool has_dev_addr;
	uint8_t dev_addr[LW_DEVADDR_LEN];
	bool has_dl_settings;
	uint8_t dl_settings;
	uint8_t rx_delay;
	bool has_cflist;
	uint8_t cflist[LW_CFLIST_LEN];
	/* --sim */
	const char *sim_path;
	char state_path[PATH_MAX];
	bool has_dev_eui;
	uint8_t dev_eui[LW_EUI_LEN];
	unsigned count;
	bool has_type;			/* rejoin --type */
	enum lw_req_type rejoin_type;
	/* appskey */
	uint8_t session_key_id[BI_SESSION_KEY_ID_MAX];
	size_t session_key_id_len;
	/* bench */
	unsigned devices, connections, requests;
	const char *raw_path;		/* --raw: send this file's bytes as every body, check only the status */
	unsigned rate;			/* --rate: open loop at this many requests/s; 0: closed loop */
	const char *on_clock;		/* --on-clock: a shell command run as the clock starts */
	/* listen (count: messages before exiting, 0: until SIGTERM) */
	const char *listen_addr;
	/* subscribe (url: mqtts://HOST:PORT; count: events before exiting, 0: until killed) */
	const char *topic, *mqtt_client_id;
	/* DANE (the default; PKIX when ca is set) */
	const char *ta_file, *stubs, *forwarders, *tlsa_name, *clientid;
	unsigned clientid_ext;
	const char *discover;		/* DNS suffix: find the join server from the JoinEUI */
};

/*! \brief Look a command name up. \retval DJ_EOK, DJ_ENOENT (unknown command) */
int params_command(const char *name, enum dc_cmd *out) DJ_MUSTCHECK;

/*!
 * \brief Check that the flags fit the command and parse them into \p out. Prints a one-line
 *        message on stderr when they do not.
 * \return DC_EXIT_OK, DC_EXIT_USAGE (missing/conflicting flags) or DC_EXIT_INPUT (bad hex).
 */
int params_validate(const struct dc_args *args, struct dc_params *out) DJ_MUSTCHECK;

/*! \brief Print the full usage text (commands, flags, exit codes). */
void params_usage(FILE *f);

#endif /* DJ_CLIENT_DANEJOIN_CLIENT_PARAMS_H */
