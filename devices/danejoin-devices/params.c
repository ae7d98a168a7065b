/*
 * params.c - danejoin-devices: validate the command line before anything is opened.
 *
 * Everything that can be checked without the configuration or the store is checked here, so
 * that a wrong argument is refused with exit code 1 (usage) or 3 (bad data) before a file is
 * touched (DESIGN.md trust rule 6).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/dj_cli.h"
#include "common/dj_err.h"
#include "common/dj_hex.h"
#include "params.h"

/* cmd_table - command names, and how many positional arguments each takes */
static const struct {
	const char *name;
	enum dv_cmd cmd;
	int min_pos, max_pos;
} cmd_table[] = {
	{ "init", DV_CMD_INIT, 0, 0 },
	{ "import", DV_CMD_IMPORT, 1, 1 },
	{ "list", DV_CMD_LIST, 0, 0 },
	{ "show", DV_CMD_SHOW, 1, 1 },
	{ "delete", DV_CMD_DELETE, 1, 1 },
	{ "reset-nonces", DV_CMD_RESET_NONCES, 0, 1 },
	{ "rewrap", DV_CMD_REWRAP, 0, 0 },
	{ "audit", DV_CMD_AUDIT, 0, 1 },
	{ "restore-guard", DV_CMD_RESTORE_GUARD, 0, 0 },
	{ "check", DV_CMD_CHECK, 0, 0 },
	{ "simulate", DV_CMD_SIMULATE, 0, 1 << 20 },
	{ "migrate", DV_CMD_MIGRATE, 0, 0 },
	{ "enroll", DV_CMD_ENROLL, 1, 1 },
	{ "publish", DV_CMD_PUBLISH, 0, 0 },
	{ "authcode", DV_CMD_AUTHCODE, 1, 2 },
	{ "transfer-request", DV_CMD_TRANSFER_REQUEST, 0, 1 },
	{ "transfer", DV_CMD_TRANSFER, 0, 0 },
	{ "ownership", DV_CMD_OWNERSHIP, 1, 1 },
	{ "verify", DV_CMD_VERIFY, 0, 0 },
};

/* owner_need - the ownership flags each ownership command needs (R) or may take (O) */
static const struct {
	enum dv_cmd cmd;
	const char *spec;	/* per flag in struct dv_owner_args order: R, O or - */
} owner_need[] = {
	/*                            zftknTalcjNAvorueLdmsD */
	{ DV_CMD_ENROLL,             "RO-RRRROOOOO-----O----" },
	{ DV_CMD_PUBLISH,            "----RR-----------O----" },
	{ DV_CMD_AUTHCODE,           "R--R--RO----OR--O-----" },
	{ DV_CMD_TRANSFER_REQUEST,   "R-RR------RROR--------" },
	{ DV_CMD_TRANSFER,           "--OORRRO--OO--OO-O----" },
	{ DV_CMD_OWNERSHIP,          "----------------------" },
	{ DV_CMD_VERIFY,             "R---O-RO----------RRRO" },
};

/* owner_flag_names - the ownership flags, in struct dv_owner_args order */
static const char *const owner_flag_names[] = {
	"--zone", "--from-zone", "--to-zone", "--key", "--ns", "--tsig-file", "--ta-file",
	"--lookup-via", "--js-cert", "--js-key", "--netids", "--as-ids", "--csv", "--out",
	"--requests", "--auth-codes", "--expires-in", "--ttl", "--dev-eui", "--message",
	"--signature", "--device-key",
};

/* usage_error - print "danejoin-devices: COMMAND: message" and return DV_EXIT_USAGE */
static int usage_error(const char *command, const char *msg)
{
	return dj_cli_usage(DV_EXIT_USAGE, DV_PROGRAM, command, "%s", msg);
}

int params_command(const char *name, enum dv_cmd *out)
{
	size_t i;

	for (i = 0; i < DJ_ARRAY_LEN(cmd_table); i++)
		if (strcmp(cmd_table[i].name, name) == 0) {
			*out = cmd_table[i].cmd;
			return DJ_EOK;
		}
	return DJ_ENOENT;
}

int params_validate(const struct dv_args *args, struct dv_params *out)
{
	struct dv_params p;
	size_t i;

	memset(&p, 0, sizeof(p));
	if (args->command == NULL) {
		fprintf(stderr, "%s: no command given (see %s --help)\n", DV_PROGRAM, DV_PROGRAM);
		return DV_EXIT_USAGE;
	}
	for (i = 0; i < DJ_ARRAY_LEN(cmd_table); i++)
		if (strcmp(cmd_table[i].name, args->command) == 0)
			break;
	if (i == DJ_ARRAY_LEN(cmd_table)) {
		fprintf(stderr, "%s: unknown command '%.40s' (see %s --help)\n", DV_PROGRAM,
			args->command, DV_PROGRAM);
		return DV_EXIT_USAGE;
	}
	p.cmd = cmd_table[i].cmd;
	if (args->config_path == NULL && p.cmd != DV_CMD_VERIFY)	/* a verifier has no JS */
		return usage_error(args->command, "--config FILE is required");
	p.config_path = args->config_path;
	if (args->npos < cmd_table[i].min_pos)
		return usage_error(args->command, "missing argument");
	if (args->npos > cmd_table[i].max_pos)
		return usage_error(args->command, "too many arguments");
	if (args->all && p.cmd != DV_CMD_RESET_NONCES)
		return usage_error(args->command, "--all is only for reset-nonces");
	if (args->new_master_key != NULL && p.cmd != DV_CMD_REWRAP)
		return usage_error(args->command, "--new-master-key is only for rewrap");
	if (args->forget_nonces && p.cmd != DV_CMD_IMPORT)
		return usage_error(args->command, "--forget-nonces is only for import");
	if (args->bump != NULL && p.cmd != DV_CMD_RESTORE_GUARD)
		return usage_error(args->command, "--bump is only for restore-guard");
	if (args->to != NULL && p.cmd != DV_CMD_MIGRATE)
		return usage_error(args->command, "--to is only for migrate");

	if (args->owner_flag || p.cmd >= DV_CMD_ENROLL) {
		const struct dv_owner_args *o = &args->own;
		const char *vals[] = {
			o->zone, o->from_zone, o->to_zone, o->key, o->ns, o->tsig_file,
			o->ta_file, o->lookup_via, o->js_cert, o->js_key, o->netids, o->as_ids,
			o->csv, o->out, o->requests, o->auth_codes, o->expires_in, o->ttl,
			o->dev_eui, o->message, o->signature, o->device_key,
		};
		const char *spec = NULL;
		char msg[96];

		for (i = 0; i < DJ_ARRAY_LEN(owner_need); i++)
			if (owner_need[i].cmd == p.cmd)
				spec = owner_need[i].spec;
		for (i = 0; i < DJ_ARRAY_LEN(owner_flag_names); i++) {
			char need = spec != NULL ? spec[i] : '-';

			if (need == '-' && vals[i] != NULL) {
				snprintf(msg, sizeof(msg), "%s is not a flag of this command",
					 owner_flag_names[i]);
				return usage_error(args->command, msg);
			}
			if (need == 'R' && vals[i] == NULL) {
				snprintf(msg, sizeof(msg), "%s is required", owner_flag_names[i]);
				return usage_error(args->command, msg);
			}
		}
		p.own = args->own;
	}

	switch (p.cmd) {
	case DV_CMD_ENROLL:
		p.input = args->pos[0];
		break;
	case DV_CMD_AUTHCODE:
		if (strcmp(args->pos[0], "set") != 0)
			return usage_error(args->command, "the only subcommand is 'set'");
		if ((args->npos == 2) == (args->own.csv != NULL))
			return usage_error(args->command, "give either one DevEUI or --csv FILE");
		if (args->npos == 2)
			p.input = args->pos[1];
		break;
	case DV_CMD_TRANSFER_REQUEST:
		if ((args->npos == 1) == (args->own.csv != NULL))
			return usage_error(args->command, "give either one DevEUI or --csv FILE");
		if (args->npos == 1)
			p.input = args->pos[0];
		break;
	case DV_CMD_TRANSFER:
		if (args->own.requests != NULL && args->own.auth_codes != NULL)
			return usage_error(args->command, "give --requests or --auth-codes, not both");
		if (args->own.auth_codes != NULL &&
		    (args->own.to_zone == NULL || args->own.netids == NULL ||
		     args->own.as_ids == NULL || args->own.key == NULL))
			return usage_error(args->command, "--auth-codes needs --to-zone, --netids, "
					   "--as-ids and --key (the registry key)");
		if (args->own.requests != NULL &&
		    (args->own.to_zone != NULL || args->own.netids != NULL ||
		     args->own.as_ids != NULL || args->own.key != NULL))
			return usage_error(args->command, "a signed request names the new owner and "
					   "its rights itself: no --to-zone, --netids, --as-ids, --key");
		break;
	case DV_CMD_OWNERSHIP:
		p.input = args->pos[0];
		break;
	case DV_CMD_IMPORT:
		p.csv_path = args->pos[0];
		p.forget_nonces = args->forget_nonces;
		break;
	case DV_CMD_RESTORE_GUARD: {
		char *end = NULL;
		unsigned long long v;

		if (args->bump == NULL)
			return usage_error(args->command, "--bump N is required");
		errno = 0;
		v = strtoull(args->bump, &end, 10);
		if (args->bump[0] < '1' || args->bump[0] > '9' || *end != '\0' || errno != 0 ||
		    v > LW_JOINNONCE_MAX)
			return usage_error(args->command, "--bump N: expected a whole number from 1 "
					   "to 16777215 (the JoinNonce is a 24-bit counter)");
		p.bump = (uint32_t)v;
		break;
	}
	case DV_CMD_MIGRATE:
		if (args->to == NULL || args->to[0] == '\0')
			return usage_error(args->command, "--to CONNINFO is required (the target "
					   "PostgreSQL database, a libpq connection string)");
		p.to = args->to;
		break;
	case DV_CMD_REWRAP:
		if (args->new_master_key == NULL)
			return usage_error(args->command, "--new-master-key FILE is required");
		p.new_master_key = args->new_master_key;
		break;
	case DV_CMD_RESET_NONCES:
		if (args->all == (args->npos == 1))
			return usage_error(args->command, "give either one DevEUI or --all");
		p.all = args->all;
		break;
	default:
		break;
	}
	if ((p.cmd == DV_CMD_SHOW || p.cmd == DV_CMD_DELETE || p.cmd == DV_CMD_RESET_NONCES ||
	     p.cmd == DV_CMD_AUDIT) && args->npos == 1) {
		if (dj_hex_parse(args->pos[0], p.dev_eui, LW_EUI_LEN) != DJ_EOK) {
			fprintf(stderr, "%s: %s: DevEUI argument: expected %d hex digits\n",
				DV_PROGRAM, args->command, 2 * LW_EUI_LEN);
			return DV_EXIT_DATA;
		}
		p.has_dev_eui = true;
	}
	*out = p;
	return DV_EXIT_OK;
}

void params_usage(FILE *f)
{
	fputs("Usage: " DV_PROGRAM " --config FILE COMMAND [ARGS]\n"
	      "\n"
	      "Enroll LoRaWAN end devices in the danejoin Join Server store, and administer them.\n"
	      "\n"
	      "Commands:\n"
	      "  init                           create the master key file (mode 0600) if it is\n"
	      "                                 missing, and the store\n"
	      "  import FILE.csv [--forget-nonces]\n"
	      "                                 check every row of FILE.csv, then enroll all its\n"
	      "                                 devices in one transaction (all or nothing); a\n"
	      "                                 deleted DevEUI continues its nonce state (its\n"
	      "                                 JoinNonce always; its DevNonces and RJcount1\n"
	      "                                 unless --forget-nonces)\n"
	      "  list                           one line per device: DevEUI, JoinEUI, LoRaWAN\n"
	      "                                 version, last JoinNonce, DevNonce state\n"
	      "  show DEVEUI                    every attribute and the nonce state of a device\n"
	      "                                 (never keys)\n"
	      "  delete DEVEUI                  remove a device and its sessions (audited); a\n"
	      "                                 tombstone keeps its nonce state\n"
	      "  reset-nonces DEVEUI | --all    forget used DevNonces and RJcount1 so that a\n"
	      "                                 device that lost its counters can join again\n"
	      "                                 (audited; the JoinNonce counter is never reset)\n"
	      "  rewrap --new-master-key FILE   re-wrap every stored key under the master key in\n"
	      "                                 FILE, in one transaction (stop danejoind first)\n"
	      "  audit [DEVEUI]                 print the audit log, of all devices or of one\n"
	      "  restore-guard --bump N         after restoring a backup: raise every device's\n"
	      "                                 last JoinNonce by N (audited; stop danejoind)\n"
	      "  check                          run an SQLite integrity check of the store\n"
	      "  simulate ...                   run the end-device simulator\n"
	      "  apikey create --name N --scope read|operate|admin | list | revoke N\n"
	      "                                 API keys of the management API ([admin])\n"
	      "  migrate --to CONNINFO          copy this SQLite store into an empty PostgreSQL\n"
	      "                                 database (libpq connection string), in one\n"
	      "                                 transaction (all or nothing); keys stay wrapped\n"
	      "\n"
	      "Ownership (docs/danejoin-devices.md, docs/dns-records.md):\n"
	      "  enroll FILE --zone Z [--from-zone M] --key K [--netids L] [--as-ids L] DNS\n"
	      "                                 enroll a CSV or CMS (EnvelopedData to --js-cert)\n"
	      "                                 file and publish each device's records in Z\n"
	      "  publish DNS                    publish records left unpublished\n"
	      "  authcode set DEVEUI|--csv F --zone Z --key K --ta-file F --out F\n"
	      "                                 [--expires-in S]: set auth codes (hashed)\n"
	      "  transfer-request DEVEUI|--csv F --zone Z --to-zone N --key K --netids L\n"
	      "                                 --as-ids L --out F: sign transfer requests\n"
	      "  transfer [--requests F | --auth-codes F --to-zone N --netids L --as-ids L\n"
	      "                                 --key K] DNS: verify and transfer (all or\n"
	      "                                 none); finishes unfinished transfers first\n"
	      "  ownership DEVEUI               the owner and the chain of a device\n"
	      "  verify --dev-eui HEX --zone Z --message F --signature F --ta-file F\n"
	      "         [--device-key PUB.pem] [--ns|--lookup-via IP@PORT]\n"
	      "                                 check a message signed by the device's key\n"
	      "                                 against its identity TLSA, DNSSEC-validated\n"
	      "                                 (--config is optional)\n"
	      "  DNS = --ns IP@PORT --tsig-file F --ta-file F [--lookup-via IP@PORT] [--ttl S]\n"
	      "\n"
	      "Options:\n"
	      "  -c, --config FILE   the danejoin configuration (required; before or after the\n"
	      "                      command)\n"
	      "  -v, --verbose       log more (twice: debug)\n"
	      "  -h, --help          print this text\n"
	      "\n"
	      "CSV format (import):\n"
	      "  header, exactly:  dev_eui,join_eui,mac_version,app_key,nwk_key\n"
	      "  dev_eui, join_eui 16 hex digits; mac_version 1.0, 1.0.0 to 1.0.4, 1.1 or 1.1.0;\n"
	      "  app_key 32 hex digits; nwk_key 32 hex digits for 1.1, empty for 1.0.x.\n"
	      "  No quoting; CRLF, a UTF-8 BOM and blank lines at the end are accepted.\n"
	      "\n"
	      "Exit codes:\n"
	      "  0  success\n"
	      "  1  usage error: unknown command or flag, wrong arguments\n"
	      "  2  configuration error: the file cannot be read, unknown section or key,\n"
	      "     bad value\n"
	      "  3  bad input data: CSV file, DevEUI argument, device unknown or already enrolled\n"
	      "  4  store or key error: master key file missing, of the wrong mode or not the\n"
	      "     store's key; database error\n"
	      "  5  internal error\n"
	      "  6  simulate only: the join engine broke a rule of the LoRaWAN specification\n"
	      "  7  ownership: refused (signature, _owner key, auth code, replayed request)\n"
	      "  8  ownership: the DNS update failed; run the command again to finish\n"
	      "     (verify: the lookup failed)\n"
	      "  9  verify: bad signature\n"
	      "  10 verify: no identity TLSA (NXDOMAIN, NODATA, no usable 3 1 x record)\n"
	      "  11 verify: the identity TLSA answer is not DNSSEC-secure\n"
	      "  12 verify: --device-key is not the key of the identity TLSA\n"
	      "Bad input of any kind changes nothing.\n",
	      f);
}
