/*
 * params.c - danejoin-ca: validate the command line before any file is opened.
 *
 * Every flag belongs to a set of commands; a flag given to a command that does not use it is
 * refused, so that a typo cannot silently change what is issued or published. Numbers are
 * range-checked and names are checked for DNS syntax here, before anything is read or written
 * (DESIGN.md trust rule 6).
 */
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#include "ca-tools/ca_name.h"
#include "ca-tools/ca_tlsa.h"
#include "common/dj_cli.h"
#include "common/dj_err.h"
#include "params.h"

#define C(x) (1u << (x))
#define CERT_CMDS (C(CA_CMD_ROOT) | C(CA_CMD_INTERMEDIATE) | C(CA_CMD_ISSUE) | \
		   C(CA_CMD_SELF_SIGNED) | C(CA_CMD_SIGN))
#define CA_SIGNED (C(CA_CMD_INTERMEDIATE) | C(CA_CMD_ISSUE) | C(CA_CMD_SIGN))
#define OWNER_CMDS (C(CA_CMD_TLSA) | C(CA_CMD_ROLLOVER))
#define DNS_CMDS (C(CA_CMD_PUBLISH) | C(CA_CMD_ROLLOVER) | C(CA_CMD_PUBLISH_JOINEUI))
#define JOINEUI_CMDS (C(CA_CMD_ISSUE) | C(CA_CMD_PUBLISH_JOINEUI))
#define CA_DAYS_DEFAULT_CA 3650
#define CA_DAYS_DEFAULT_LEAF 397	/* CA/B BR §6.3.2 limit for TLS leaves */
#define CA_CACHE_CAP_DEFAULT 86400	/* unbound's cache-max-ttl default */
#define CA_PORT_MAX 65535

static const struct {
	const char *name;
	bool has_arg;
	unsigned cmds;		/* which commands take it */
} flags[F_COUNT] = {
	[F_KEY_TYPE] = { "key-type", true, CERT_CMDS & ~C(CA_CMD_SIGN) },
	[F_KEY_OUT] = { "key-out", true, CERT_CMDS & ~C(CA_CMD_SIGN) },
	[F_CERT_OUT] = { "cert-out", true, CERT_CMDS },
	[F_SUBJECT] = { "subject", true, CERT_CMDS },
	[F_DAYS] = { "days", true, CERT_CMDS },
	[F_PATHLEN] = { "pathlen", true, C(CA_CMD_ROOT) | C(CA_CMD_INTERMEDIATE) },
	[F_CA_CERT] = { "ca-cert", true, CA_SIGNED },
	[F_CA_KEY] = { "ca-key", true, CA_SIGNED },
	[F_CA_PASS] = { "ca-passphrase-file", true, CA_SIGNED },
	[F_PASS] = { "passphrase-file", true, CERT_CMDS & ~C(CA_CMD_SIGN) },
	[F_FORCE] = { "force", false, CERT_CMDS },
	[F_ROLE] = { "role", true, C(CA_CMD_ISSUE) | C(CA_CMD_SELF_SIGNED) | C(CA_CMD_SIGN) },
	[F_NAME] = { "name", true, C(CA_CMD_ISSUE) | C(CA_CMD_SELF_SIGNED) | C(CA_CMD_SIGN) |
		     OWNER_CMDS },
	[F_CSR] = { "csr", true, C(CA_CMD_SIGN) },
	[F_CERT] = { "cert", true, C(CA_CMD_INSPECT) | C(CA_CMD_TLSA) | C(CA_CMD_PUBLISH_JOINEUI) },
	[F_CHAIN] = { "chain", true, C(CA_CMD_TLSA) },
	[F_DEPTH] = { "depth", true, C(CA_CMD_TLSA) },
	[F_KEY] = { "key", true, C(CA_CMD_TLSA) },
	[F_PUBKEY] = { "pubkey", true, C(CA_CMD_TLSA) },
	[F_USAGE] = { "usage", true, OWNER_CMDS },
	[F_SELECTOR] = { "selector", true, OWNER_CMDS },
	[F_MTYPE] = { "mtype", true, OWNER_CMDS },
	[F_TTL] = { "ttl", true, OWNER_CMDS | JOINEUI_CMDS },
	[F_SERVER] = { "server", true, OWNER_CMDS },
	[F_PORT] = { "port", true, OWNER_CMDS | C(CA_CMD_PUBLISH_JOINEUI) },
	[F_CLIENT_ROLE] = { "client-role", true, OWNER_CMDS },
	[F_HOST] = { "host", true, OWNER_CMDS },
	[F_ROOTCERT] = { "rootcert", true, OWNER_CMDS },
	[F_CSV] = { "csv", true, C(CA_CMD_ISSUE) },
	[F_OUT_DIR] = { "out-dir", true, C(CA_CMD_ISSUE) },
	[F_THREADS] = { "threads", true, C(CA_CMD_ISSUE) },
	[F_ZONE] = { "zone", true, C(CA_CMD_ISSUE) | DNS_CMDS },
	[F_NS] = { "ns", true, DNS_CMDS },
	[F_TSIG_FILE] = { "tsig-file", true, DNS_CMDS },
	[F_TA_FILE] = { "ta-file", true, DNS_CMDS },
	[F_RR] = { "rr", true, C(CA_CMD_PUBLISH) },
	[F_RR_FILE] = { "rr-file", true, C(CA_CMD_PUBLISH) },
	[F_EXPECT] = { "expect", true, C(CA_CMD_PUBLISH) },
	[F_EXPECT_NONE] = { "expect-none", false, C(CA_CMD_PUBLISH) },
	[F_NO_VALIDATE] = { "no-validate", false, C(CA_CMD_PUBLISH) | C(CA_CMD_PUBLISH_JOINEUI) },
	[F_TIMEOUT] = { "timeout", true, DNS_CMDS },
	[F_STATE] = { "state", true, C(CA_CMD_ROLLOVER) },
	[F_RESUME] = { "resume", true, C(CA_CMD_ROLLOVER) },
	[F_CURRENT_CERT] = { "current-cert", true, C(CA_CMD_ROLLOVER) },
	[F_NEXT_CERT] = { "next-cert", true, C(CA_CMD_ROLLOVER) },
	[F_CACHE_CAP] = { "cache-cap", true, C(CA_CMD_ROLLOVER) },
	[F_MIN_WAIT] = { "min-wait", true, C(CA_CMD_ROLLOVER) },
	[F_SWITCH_CMD] = { "switch-cmd", true, C(CA_CMD_ROLLOVER) },
	[F_SWITCHED] = { "switched", false, C(CA_CMD_ROLLOVER) },
	[F_NO_WAIT] = { "no-wait", false, C(CA_CMD_ROLLOVER) },
	[F_BUNDLE] = { "bundle", false, CA_SIGNED },
	[F_QUIET] = { "quiet", false, C(CA_CMD_ISSUE) },
	[F_LAYOUT] = { "layout", true, C(CA_CMD_ISSUE) },
	[F_JOINEUI_PREFIX] = { "joineui-prefix", true, JOINEUI_CMDS },
	[F_JOINEUI_SUFFIX] = { "joineui-suffix", true, JOINEUI_CMDS },
	[F_ADDRESS] = { "address", true, C(CA_CMD_PUBLISH_JOINEUI) },
};

static const char *const cmd_names[CA_CMD_COUNT] = {
	[CA_CMD_ROOT] = "root", [CA_CMD_INTERMEDIATE] = "intermediate", [CA_CMD_ISSUE] = "issue",
	[CA_CMD_SELF_SIGNED] = "self-signed", [CA_CMD_SIGN] = "sign", [CA_CMD_INSPECT] = "inspect",
	[CA_CMD_TLSA] = "tlsa", [CA_CMD_PUBLISH] = "publish", [CA_CMD_ROLLOVER] = "rollover",
	[CA_CMD_PUBLISH_JOINEUI] = "publish-joineui",
};

const char *params_flag_name(enum ca_flag f)
{
	return flags[f].name;
}

int params_command(const char *name, enum ca_cmd *out)
{
	int i;

	for (i = 0; i < CA_CMD_COUNT; i++)
		if (strcmp(cmd_names[i], name) == 0) {
			*out = (enum ca_cmd)i;
			return DJ_EOK;
		}
	return DJ_ENOENT;
}

int params_flag_has_arg(enum ca_flag f)
{
	return flags[f].has_arg;
}

/* usage_error - "danejoin-ca: COMMAND: message" and CA_EXIT_USAGE */
static int usage_error(const char *cmd, const char *msg, const char *what)
{
	return dj_cli_usage(CA_EXIT_USAGE, CA_PROGRAM, cmd, "%s%s", msg, what != NULL ? what : "");
}

/* num - parse an unsigned decimal flag value within [lo, hi]; CA_EXIT_USAGE if not */
static int num(const char *cmd, enum ca_flag f, const char *v, unsigned long lo, unsigned long hi,
	       unsigned long *out)
{
	if (dj_cli_parse_ulong(v, lo, hi, out))
		return CA_EXIT_OK;
	dj_cli_err(CA_PROGRAM, "%s: --%s must be a number in %lu..%lu", cmd, flags[f].name, lo,
		   hi);
	return CA_EXIT_USAGE;
}

/* need - the flags every command requires */
static int need(const struct ca_args *a, enum ca_flag f)
{
	char msg[64];

	if (a->val[f] != NULL)
		return CA_EXIT_OK;
	snprintf(msg, sizeof(msg), "--%s is required", flags[f].name);
	return usage_error(a->command, msg, NULL);
}

/* parse_owner - --name / --server+--port / --client-role+--host / --rootcert into p->owner */
static int parse_owner(const struct ca_args *a, struct ca_params *p, bool names_are_owner)
{
	char err[160];
	unsigned long port = 0;
	int forms = 0, rc = DJ_EOK, ex;

	forms += names_are_owner && p->nnames > 0;
	forms += a->val[F_SERVER] != NULL;
	forms += a->val[F_CLIENT_ROLE] != NULL;
	forms += a->val[F_ROOTCERT] != NULL;
	if (forms > 1)
		return usage_error(a->command, "give one owner form: --name, --server/--port, "
				   "--client-role/--host or --rootcert", NULL);
	if ((a->val[F_PORT] != NULL) != (a->val[F_SERVER] != NULL))
		return usage_error(a->command, "--server and --port go together", NULL);
	if ((a->val[F_HOST] != NULL) != (a->val[F_CLIENT_ROLE] != NULL))
		return usage_error(a->command, "--client-role and --host go together", NULL);
	if (forms == 0)
		return CA_EXIT_OK;
	if (names_are_owner && p->nnames > 1)
		return usage_error(a->command, "one --name (the owner name)", NULL);
	if (names_are_owner && p->nnames == 1) {
		rc = ca_name_absolute(p->names[0], p->owner, err, sizeof(err));
	} else if (a->val[F_SERVER] != NULL) {
		ex = num(a->command, F_PORT, a->val[F_PORT], 1, CA_PORT_MAX, &port);
		if (ex != CA_EXIT_OK)
			return ex;
		rc = ca_name_server(a->val[F_SERVER], (unsigned)port, p->owner, err, sizeof(err));
	} else if (a->val[F_CLIENT_ROLE] != NULL) {
		rc = ca_name_client(a->val[F_CLIENT_ROLE], a->val[F_HOST], p->owner, err,
				    sizeof(err));
		if (rc == DJ_EINVAL)
			return usage_error(a->command, err, NULL);
	} else {
		rc = ca_name_rootcert(a->val[F_ROOTCERT], p->owner, err, sizeof(err));
	}
	if (rc != DJ_EOK) {
		fprintf(stderr, "%s: %s: %s\n", CA_PROGRAM, a->command, err);
		return CA_EXIT_INPUT;
	}
	p->has_owner = true;
	return CA_EXIT_OK;
}

/* read_rr_file - append the non-comment lines of --rr-file to p->rrs (heap copies) */
static int read_rr_file(const char *cmd, const char *path, struct ca_params *p)
{
	char line[8192];
	FILE *f;
	size_t n;

	f = fopen(path, "r");
	if (f == NULL) {
		fprintf(stderr, "%s: %s: %s: %s\n", CA_PROGRAM, cmd, path, strerror(errno));
		return CA_EXIT_INPUT;
	}
	while (fgets(line, sizeof(line), f) != NULL) {
		line[strcspn(line, "\r\n")] = '\0';
		n = strspn(line, " \t");
		if (line[n] == '\0' || line[n] == ';' || line[n] == '#')
			continue;
		if (p->nrrs >= CA_MULTI_MAX) {
			fclose(f);
			fprintf(stderr, "%s: %s: more than %d records\n", CA_PROGRAM, cmd,
				CA_MULTI_MAX);
			return CA_EXIT_INPUT;
		}
		p->rrs[p->nrrs] = strdup(line);
		if (p->rrs[p->nrrs] == NULL) {
			fclose(f);
			return CA_EXIT_INTERNAL;
		}
		p->nrrs++;
	}
	fclose(f);
	return CA_EXIT_OK;
}

void params_free(struct ca_params *p)
{
	size_t i;

	for (i = 0; i < p->nrrs; i++)
		if (p->rrs[i] != NULL && !p->rrs_borrowed[i])
			free((char *)p->rrs[i]);
	for (i = 0; i < p->njnames; i++)
		ca_joineui_names_clear(&p->jnames[i]);
	free(p->jnames);
	free(p->all_names);
}

/* expand_joineui - every --joineui-prefix under --joineui-suffix into p->jnames */
static int expand_joineui(const struct ca_args *a, struct ca_params *p)
{
	char err[256];
	size_t n = a->nmulti[CA_MULTI_JOINEUI];
	int rc;

	if (n == 0 && a->val[F_JOINEUI_SUFFIX] == NULL)
		return CA_EXIT_OK;
	if (n == 0 || a->val[F_JOINEUI_SUFFIX] == NULL)
		return usage_error(a->command, "--joineui-prefix and --joineui-suffix go together",
				   NULL);
	p->jnames = calloc(n, sizeof(*p->jnames));
	if (p->jnames == NULL)
		return CA_EXIT_INTERNAL;
	for (size_t i = 0; i < n; i++) {
		rc = ca_joineui_names(a->multi[CA_MULTI_JOINEUI][i], a->val[F_JOINEUI_SUFFIX],
				      &p->jnames[i], err, sizeof(err));
		if (rc == DJ_ENOMEM)
			return CA_EXIT_INTERNAL;
		if (rc != DJ_EOK) {
			fprintf(stderr, "%s: %s: --joineui-prefix: %s\n", CA_PROGRAM, a->command, err);
			return CA_EXIT_INPUT;
		}
		p->njnames = i + 1;
	}
	return CA_EXIT_OK;
}

/* joineui_count - how many names the prefixes expanded to */
static size_t joineui_count(const struct ca_params *p)
{
	size_t n = 0;

	for (size_t i = 0; i < p->njnames; i++)
		n += p->jnames[i].n;
	return n;
}

/* validate_certs - root, intermediate, issue, self-signed, sign */
static int validate_certs(const struct ca_args *a, struct ca_params *p)
{
	unsigned long n;
	char err[160];
	size_t i;
	int ex;

	if (a->val[F_KEY_TYPE] != NULL && ca_key_type_parse(a->val[F_KEY_TYPE], &p->key_type) != 0)
		return usage_error(a->command, "--key-type must be ec-p256, ed25519, rsa2048 or "
				   "rsa3072", NULL);
	if (p->cmd == CA_CMD_ROOT || p->cmd == CA_CMD_INTERMEDIATE) {
		p->days = CA_DAYS_DEFAULT_CA;
		if ((ex = need(a, F_SUBJECT)) != CA_EXIT_OK)
			return ex;
	}
	if (a->val[F_DAYS] != NULL) {
		ex = num(a->command, F_DAYS, a->val[F_DAYS], 1, CA_DAYS_MAX, &n);
		if (ex != CA_EXIT_OK)
			return ex;
		p->days = (int)n;
	}
	if (a->val[F_PATHLEN] != NULL) {
		ex = num(a->command, F_PATHLEN, a->val[F_PATHLEN], 0, 16, &n);
		if (ex != CA_EXIT_OK)
			return ex;
		p->pathlen = (int)n;
	}
	if (p->cmd == CA_CMD_ISSUE && a->val[F_CSV] != NULL) {
		if (a->val[F_ROLE] != NULL && strcmp(a->val[F_ROLE], "device") != 0)
			return usage_error(a->command, "--csv issues role device only", NULL);
		p->role = CA_ROLE_DEVICE;
		if (p->nnames > 0 || a->val[F_CERT_OUT] != NULL || a->val[F_KEY_OUT] != NULL ||
		    a->val[F_PASS] != NULL)
			return usage_error(a->command, "--csv takes --out-dir, not --name, "
					   "--cert-out, --key-out or --passphrase-file", NULL);
		if ((ex = need(a, F_OUT_DIR)) != CA_EXIT_OK || (ex = need(a, F_CA_CERT)) != 0 ||
		    (ex = need(a, F_CA_KEY)) != CA_EXIT_OK)
			return ex;
		if (a->val[F_THREADS] != NULL) {
			ex = num(a->command, F_THREADS, a->val[F_THREADS], 1, 64, &n);
			if (ex != CA_EXIT_OK)
				return ex;
			p->threads = (unsigned)n;
		}
		if (a->val[F_LAYOUT] != NULL &&
		    ca_bulk_layout_parse(a->val[F_LAYOUT], &p->layout) != DJ_EOK)
			return usage_error(a->command, "--layout must be files, pem or bundle", NULL);
		if (a->val[F_TTL] != NULL) {
			ex = num(a->command, F_TTL, a->val[F_TTL], 0, 2147483647, &n);
			if (ex != CA_EXIT_OK)
				return ex;
			p->ttl = (uint32_t)n;
		}
		if (a->val[F_ZONE] != NULL &&
		    ca_name_absolute(a->val[F_ZONE], p->zone, err, sizeof(err)) != DJ_EOK) {
			fprintf(stderr, "%s: %s: --zone: %s\n", CA_PROGRAM, a->command, err);
			return CA_EXIT_INPUT;
		}
		return CA_EXIT_OK;
	}
	if (a->val[F_OUT_DIR] != NULL || a->val[F_THREADS] != NULL || a->val[F_ZONE] != NULL ||
	    a->val[F_TTL] != NULL || a->val[F_QUIET] != NULL || a->val[F_LAYOUT] != NULL)
		return usage_error(a->command, "--out-dir, --threads, --zone, --ttl, --layout and "
				   "--quiet are for issue --csv", NULL);
	if ((ex = need(a, F_CERT_OUT)) != CA_EXIT_OK)
		return ex;
	if (p->cmd != CA_CMD_SIGN && (ex = need(a, F_KEY_OUT)) != CA_EXIT_OK)
		return ex;
	if (p->cmd == CA_CMD_SIGN && (ex = need(a, F_CSR)) != CA_EXIT_OK)
		return ex;
	if ((CA_SIGNED & C(p->cmd)) &&
	    ((ex = need(a, F_CA_CERT)) != CA_EXIT_OK || (ex = need(a, F_CA_KEY)) != CA_EXIT_OK))
		return ex;
	if (p->cmd == CA_CMD_ISSUE || p->cmd == CA_CMD_SELF_SIGNED || p->cmd == CA_CMD_SIGN) {
		if ((ex = need(a, F_ROLE)) != CA_EXIT_OK)
			return ex;
		if (ca_role_parse(a->val[F_ROLE], &p->role) != DJ_EOK)
			return usage_error(a->command, "--role must be js, ns, as or device", NULL);
		for (i = 0; i < p->nnames; i++)
			if (ca_name_check(p->names[i], err, sizeof(err)) != DJ_EOK) {
				fprintf(stderr, "%s: %s: --name: %s\n", CA_PROGRAM, a->command, err);
				return CA_EXIT_INPUT;
			}
		if (p->cmd == CA_CMD_ISSUE && (ex = expand_joineui(a, p)) != CA_EXIT_OK)
			return ex;
		if (p->njnames > 0) {
			size_t k = p->nnames;

			if (a->val[F_TTL] != NULL)
				return usage_error(a->command, "--ttl goes with --csv or with "
						   "publish-joineui", NULL);
			p->all_names = calloc(p->nnames + joineui_count(p), sizeof(char *));
			if (p->all_names == NULL)
				return CA_EXIT_INTERNAL;
			for (i = 0; i < p->nnames; i++)
				p->all_names[i] = p->names[i];
			for (size_t j = 0; j < p->njnames; j++)
				for (size_t m = 0; m < p->jnames[j].n; m++)
					p->all_names[k++] = p->jnames[j].v[m];
			p->names = p->all_names;
			p->nnames = k;
		}
		if (p->nnames == 0)
			return usage_error(a->command, "at least one --name (a SAN dNSName) or "
					   "--joineui-prefix is required", NULL);
	} else {
		p->role = p->cmd == CA_CMD_ROOT ? CA_ROLE_ROOT : CA_ROLE_INTERMEDIATE;
	}
	return CA_EXIT_OK;
}

/* validate_tlsa_params - --usage/--selector/--mtype (with defaults) and --ttl */
static int validate_tlsa_params(const struct ca_args *a, struct ca_params *p)
{
	unsigned long n;
	int ex;

	if (a->val[F_USAGE] != NULL) {
		if ((ex = num(a->command, F_USAGE, a->val[F_USAGE], 0, DJ_TLSA_USAGE_MAX,
			      &n)) != CA_EXIT_OK)
			return ex;
		p->usage = (unsigned)n;
	}
	if (a->val[F_SELECTOR] != NULL) {
		if ((ex = num(a->command, F_SELECTOR, a->val[F_SELECTOR], 0, DJ_TLSA_SEL_MAX,
			      &n)) != CA_EXIT_OK)
			return ex;
		p->selector = (unsigned)n;
	}
	if (a->val[F_MTYPE] != NULL) {
		if ((ex = num(a->command, F_MTYPE, a->val[F_MTYPE], 0, DJ_TLSA_MT_MAX,
			      &n)) != CA_EXIT_OK)
			return ex;
		p->mtype = (unsigned)n;
	}
	if (a->val[F_TTL] != NULL) {
		if ((ex = num(a->command, F_TTL, a->val[F_TTL], 0, 2147483647, &n)) != 0)
			return ex;
		p->ttl = (uint32_t)n;
	}
	return CA_EXIT_OK;
}

/* validate_dns - --ns, --zone, --tsig-file, --ta-file, --timeout */
static int validate_dns(const struct ca_args *a, struct ca_params *p, bool need_all)
{
	unsigned long n;
	char err[160];
	int ex;

	if (!need_all && a->val[F_NS] == NULL)
		return CA_EXIT_OK;
	if ((ex = need(a, F_NS)) != CA_EXIT_OK || (ex = need(a, F_ZONE)) != CA_EXIT_OK ||
	    (ex = need(a, F_TSIG_FILE)) != CA_EXIT_OK)
		return ex;
	if (ca_server_parse(a->val[F_NS], &p->server, err, sizeof(err)) != DJ_EOK)
		return usage_error(a->command, "--ns: ", err);
	if (ca_name_absolute(a->val[F_ZONE], p->zone, err, sizeof(err)) != DJ_EOK) {
		fprintf(stderr, "%s: %s: --zone: %s\n", CA_PROGRAM, a->command, err);
		return CA_EXIT_INPUT;
	}
	if (a->val[F_TIMEOUT] != NULL) {
		if ((ex = num(a->command, F_TIMEOUT, a->val[F_TIMEOUT], 1, 600, &n)) != CA_EXIT_OK)
			return ex;
		p->server.timeout_ms = (unsigned)n * 1000;
	}
	p->timeout_ms = p->server.timeout_ms;
	if (a->val[F_TA_FILE] == NULL && !p->no_validate)
		return usage_error(a->command, "--ta-file is required to confirm the change "
				   "(or --no-validate, publish only)", NULL);
	return CA_EXIT_OK;
}

int params_validate(const struct ca_args *a, struct ca_params *p)
{
	unsigned long n;
	size_t i;
	int f, ex;

	memset(p, 0, sizeof(*p));
	if (a->command == NULL) {
		fprintf(stderr, "%s: no command given (see %s --help)\n", CA_PROGRAM, CA_PROGRAM);
		return CA_EXIT_USAGE;
	}
	if (params_command(a->command, &p->cmd) != DJ_EOK) {
		fprintf(stderr, "%s: unknown command '%.40s' (see %s --help)\n", CA_PROGRAM,
			a->command, CA_PROGRAM);
		return CA_EXIT_USAGE;
	}
	for (f = 0; f < F_COUNT; f++)
		if (a->val[f] != NULL && !(flags[f].cmds & C(p->cmd)))
			return usage_error(a->command, "this command has no flag --", flags[f].name);
	p->val = a->val;
	p->names = a->multi[CA_MULTI_NAME];
	p->nnames = a->nmulti[CA_MULTI_NAME];
	p->expect = a->multi[CA_MULTI_EXPECT];
	p->nexpect = a->nmulti[CA_MULTI_EXPECT];
	for (i = 0; i < a->nmulti[CA_MULTI_RR]; i++) {
		p->rrs[p->nrrs] = a->multi[CA_MULTI_RR][i];
		p->rrs_borrowed[p->nrrs++] = true;
	}
	p->force = a->val[F_FORCE] != NULL;
	p->expect_none = a->val[F_EXPECT_NONE] != NULL;
	p->no_validate = a->val[F_NO_VALIDATE] != NULL;
	p->switched = a->val[F_SWITCHED] != NULL;
	p->no_wait = a->val[F_NO_WAIT] != NULL;
	p->bundle = a->val[F_BUNDLE] != NULL;
	p->quiet = a->val[F_QUIET] != NULL;
	p->key_type = CA_KEY_EC_P256;
	p->days = CA_DAYS_DEFAULT_LEAF;
	p->pathlen = -1;
	p->depth = -1;
	p->ttl = CA_TLSA_TTL_DEFAULT;
	p->usage = DJ_TLSA_USAGE_DANE_EE;
	p->selector = DJ_TLSA_SEL_SPKI;
	p->mtype = DJ_TLSA_MT_SHA256;
	p->cache_cap = CA_CACHE_CAP_DEFAULT;
	p->server.timeout_ms = CA_TIMEOUT_MS_DEFAULT;
	p->timeout_ms = CA_TIMEOUT_MS_DEFAULT;

	if ((CERT_CMDS & C(p->cmd)) && a->npos == 0)
		return validate_certs(a, p);
	if (a->npos > (p->cmd == CA_CMD_PUBLISH || p->cmd == CA_CMD_PUBLISH_JOINEUI ? 1 : 0))
		return usage_error(a->command, "unexpected argument ", a->pos[a->npos - 1]);

	switch (p->cmd) {
	case CA_CMD_INSPECT:
		return need(a, F_CERT);
	case CA_CMD_TLSA:
		i = (a->val[F_CERT] != NULL) + (a->val[F_CHAIN] != NULL) +
		    (a->val[F_KEY] != NULL) + (a->val[F_PUBKEY] != NULL);
		if (i != 1)
			return usage_error(a->command, "give one of --cert, --chain, --key, --pubkey",
					   NULL);
		if (a->val[F_USAGE] == NULL || a->val[F_SELECTOR] == NULL ||
		    a->val[F_MTYPE] == NULL)
			return usage_error(a->command, "--usage, --selector and --mtype are required",
					   NULL);
		if ((ex = validate_tlsa_params(a, p)) != CA_EXIT_OK)
			return ex;
		if (a->val[F_DEPTH] != NULL) {
			if (a->val[F_CHAIN] == NULL)
				return usage_error(a->command, "--depth goes with --chain", NULL);
			if ((ex = num(a->command, F_DEPTH, a->val[F_DEPTH], 0, 16, &n)) != 0)
				return ex;
			p->depth = (int)n;
		}
		if (p->selector == DJ_TLSA_SEL_CERT &&
		    (a->val[F_KEY] != NULL || a->val[F_PUBKEY] != NULL))
			return usage_error(a->command, "selector 0 (full certificate) needs --cert "
					   "or --chain", NULL);
		if ((ex = parse_owner(a, p, true)) != CA_EXIT_OK)
			return ex;
		if (a->val[F_TTL] != NULL && !p->has_owner)
			return usage_error(a->command, "--ttl goes with an owner name", NULL);
		return CA_EXIT_OK;
	case CA_CMD_PUBLISH:
		if (a->npos != 1)
			return usage_error(a->command, "give the operation: add, replace or delete",
					   NULL);
		if (strcmp(a->pos[0], "add") == 0)
			p->op = CA_OP_ADD;
		else if (strcmp(a->pos[0], "replace") == 0)
			p->op = CA_OP_REPLACE;
		else if (strcmp(a->pos[0], "delete") == 0)
			p->op = CA_OP_DELETE;
		else
			return usage_error(a->command, "the operation must be add, replace or delete: ",
					   a->pos[0]);
		if (p->expect_none && p->nexpect > 0)
			return usage_error(a->command, "--expect and --expect-none exclude each other",
					   NULL);
		if ((ex = validate_dns(a, p, true)) != CA_EXIT_OK)
			return ex;
		if (a->val[F_RR_FILE] != NULL &&
		    (ex = read_rr_file(a->command, a->val[F_RR_FILE], p)) != CA_EXIT_OK)
			return ex;
		if (p->nrrs == 0)
			return usage_error(a->command, "give the records with --rr or --rr-file", NULL);
		return CA_EXIT_OK;
	case CA_CMD_PUBLISH_JOINEUI:
		if (a->npos != 1 || (strcmp(a->pos[0], "replace") != 0 &&
				     strcmp(a->pos[0], "delete") != 0))
			return usage_error(a->command, "give the operation: replace or delete", NULL);
		p->op = strcmp(a->pos[0], "replace") == 0 ? CA_OP_REPLACE : CA_OP_DELETE;
		if ((ex = validate_dns(a, p, true)) != CA_EXIT_OK)
			return ex;
		if ((ex = need(a, F_CERT)) != CA_EXIT_OK)
			return ex;
		if (a->val[F_JOINEUI_PREFIX] == NULL)
			return usage_error(a->command, "at least one --joineui-prefix is required",
					   NULL);
		if ((ex = expand_joineui(a, p)) != CA_EXIT_OK)
			return ex;
		p->addrs = a->multi[CA_MULTI_ADDRESS];
		p->naddrs = a->nmulti[CA_MULTI_ADDRESS];
		if (p->naddrs == 0)
			return usage_error(a->command, "at least one --address (IPv4 or IPv6 of "
					   "danejoind) is required", NULL);
		for (i = 0; i < p->naddrs; i++) {
			unsigned char buf[16];

			if (inet_pton(AF_INET, p->addrs[i], buf) != 1 &&
			    inet_pton(AF_INET6, p->addrs[i], buf) != 1) {
				fprintf(stderr, "%s: %s: --address '%.60s': not an IPv4 or IPv6 "
					"address\n", CA_PROGRAM, a->command, p->addrs[i]);
				return CA_EXIT_INPUT;
			}
		}
		p->port = 443;	/* ChirpStack: https://<JoinEUI name>:443/ */
		if (a->val[F_PORT] != NULL) {
			if ((ex = num(a->command, F_PORT, a->val[F_PORT], 1, CA_PORT_MAX, &n)) != 0)
				return ex;
			p->port = (unsigned)n;
		}
		if (a->val[F_TTL] != NULL) {
			if ((ex = num(a->command, F_TTL, a->val[F_TTL], 0, 2147483647, &n)) != 0)
				return ex;
			p->ttl = (uint32_t)n;
		}
		/* every owner inside --zone, checked before anything is sent */
		for (size_t j = 0; j < p->njnames; j++)
			for (size_t m = 0; m < p->jnames[j].n; m++)
				if (!ca_name_in_zone(p->jnames[j].v[m], p->zone)) {
					fprintf(stderr, "%s: %s: %s is outside --zone %s; nothing "
						"was sent\n", CA_PROGRAM, a->command,
						p->jnames[j].v[m], p->zone);
					return CA_EXIT_INPUT;
				}
		return CA_EXIT_OK;
	case CA_CMD_ROLLOVER:
		if (a->val[F_RESUME] != NULL) {
			for (f = 0; f < F_COUNT; f++)
				if (a->val[f] != NULL && f != F_RESUME && f != F_NO_WAIT &&
				    f != F_SWITCHED && f != F_TSIG_FILE && f != F_TA_FILE)
					return usage_error(a->command, "--resume takes only --no-wait, "
							   "--switched, --tsig-file, --ta-file; "
							   "not --", flags[f].name);
			return CA_EXIT_OK;
		}
		if ((ex = need(a, F_STATE)) != CA_EXIT_OK ||
		    (ex = need(a, F_CURRENT_CERT)) != CA_EXIT_OK ||
		    (ex = need(a, F_NEXT_CERT)) != CA_EXIT_OK)
			return ex;
		if ((ex = validate_tlsa_params(a, p)) != CA_EXIT_OK)
			return ex;
		if (a->val[F_TTL] == NULL)
			return usage_error(a->command, "--ttl (of the TLSA records) is required", NULL);
		if (a->val[F_CACHE_CAP] != NULL) {
			if ((ex = num(a->command, F_CACHE_CAP, a->val[F_CACHE_CAP], 0, 2147483647,
				      &n)) != CA_EXIT_OK)
				return ex;
			p->cache_cap = (uint32_t)n;
		}
		if (a->val[F_MIN_WAIT] != NULL) {
			if ((ex = num(a->command, F_MIN_WAIT, a->val[F_MIN_WAIT], 0, 2147483647,
				      &n)) != CA_EXIT_OK)
				return ex;
			p->min_wait = (uint32_t)n;
		}
		if ((ex = parse_owner(a, p, true)) != CA_EXIT_OK)
			return ex;
		if (!p->has_owner)
			return usage_error(a->command, "give the TLSA owner: --name, --server/--port, "
					   "--client-role/--host or --rootcert", NULL);
		if ((ex = need(a, F_TA_FILE)) != CA_EXIT_OK)
			return ex;
		return validate_dns(a, p, true);
	default:
		return usage_error(a->command, "unexpected argument ", a->pos[0]);
	}
}

void params_usage(FILE *f)
{
	fputs(
"Usage: danejoin-ca COMMAND [FLAGS]\n"
"Private roots, certificates, TLSA records, RFC 2136 publishing and rollover for danejoin.\n"
"\n"
"Certificates (keys are written 0600 and never overwritten without --force):\n"
"  root          --subject CN --key-out F --cert-out F [--key-type T] [--pathlen N] [--days N]\n"
"  intermediate  --subject CN --ca-cert F --ca-key F --key-out F --cert-out F [--pathlen N]\n"
"  issue         --role R --name DNS... --ca-cert F --ca-key F --key-out F --cert-out F\n"
"              [--joineui-prefix HEX16[/BITS]... --joineui-suffix DOMAIN]  adds the JoinEUI\n"
"              names (nibbles reversed + DOMAIN; BITS 52-64, /60 and wider as *. wildcards)\n"
"  issue --csv F --out-dir DIR --ca-cert F --ca-key F [--zone Z] [--threads N] [--ttl N]\n"
"              [--layout files|pem|bundle]   device certificates in bulk, and DIR/tlsa.zone:\n"
"                files: DIR/<dev_eui>.key (0600) + .crt; pem: DIR/<dev_eui>.pem (key+cert,\n"
"                0600); bundle: all in DIR/devices.pem (0600, CSV order; the fastest)\n"
"  self-signed   --role R --name DNS... --key-out F --cert-out F   (for DANE-EE 3 1 1)\n"
"  sign          --csr F --role R --name DNS... --ca-cert F --ca-key F --cert-out F\n"
"  inspect       --cert F     subject, SANs, key, validity, usages, TLSA 3 1 1 and 2 0 1\n"
"    --key-type ec-p256 (default) | ed25519 | rsa2048 | rsa3072\n"
"    --role js (serverAuth+clientAuth) | ns | as (clientAuth+serverAuth) | device (clientAuth)\n"
"    --days N (CA 3650, leaf 397)  --subject CN (leaf default: first --name)  --bundle\n"
"    --passphrase-file F (encrypt the new key, PKCS#8 AES-256)  --ca-passphrase-file F\n"
"\n"
"TLSA records:\n"
"  tlsa (--cert F | --chain F [--depth N] | --key F | --pubkey F)\n"
"       --usage 0-3 --selector 0|1 --mtype 0|1|2 [OWNER [--ttl N]]\n"
"    prints 'U S M HEX', or with an owner 'OWNER TTL IN TLSA U S M HEX' (default TTL 3600)\n"
"    OWNER: --name NAME | --server HOST --port P (_P._tcp.HOST.) |\n"
"           --client-role ns|as --host H (_ns-client.H.) | --rootcert ZONE (_rootcert.ZONE.)\n"
"    --chain without --depth: the last certificate for usage 0/2, the first for 1/3\n"
"\n"
"Publishing (one RFC 2136 UPDATE with TSIG, guarded by prerequisites, then a validated check):\n"
"  publish add|replace|delete --ns IP[@PORT] --zone Z --tsig-file F --ta-file F\n"
"          (--rr 'OWNER TTL IN TYPE RDATA'... | --rr-file F)\n"
"          [--expect RR... | --expect-none] [--no-validate] [--timeout S]\n"
"    --tsig-file: one line ALG:NAME:SECRET (hmac-sha256, hmac-sha512), as knsupdate -y\n"
"    --expect/--expect-none: the RRset you believe is there (default: as read just before)\n"
"  publish-joineui replace|delete --ns IP[@PORT] --zone Z --tsig-file F (--ta-file F |\n"
"          --no-validate) --joineui-prefix HEX16[/BITS]... --joineui-suffix DOMAIN\n"
"          --address IP... --cert F [--port P (443)] [--ttl N (3600)] [--timeout S]\n"
"    at each JoinEUI name: A/AAAA (--address) and TLSA 3 1 1 of --cert at _P._tcp.NAME\n"
"    (for a *.NAME wildcard, at *.NAME itself); one UPDATE per RRset\n"
"\n"
"Rollover (RFC 7671 §8.1; state on disk, resumable, safe to run twice):\n"
"  rollover --state F --current-cert F --next-cert F OWNER --ttl N\n"
"           --ns IP[@PORT] --zone Z --tsig-file F --ta-file F\n"
"           [--usage U --selector S --mtype M] (default 3 1 1; 2 0 1 for a CA roll)\n"
"           [--cache-cap S (86400)] [--min-wait S] [--switch-cmd CMD] [--switched] [--no-wait]\n"
"  rollover --resume F [--switched] [--no-wait]\n"
"    steps: pre-publish next TLSA -> wait TTL + cache cap -> switch (--switch-cmd, or run\n"
"    again with --switched) -> retire the current TLSA\n"
"\n"
"Exit codes: 0 ok, 1 usage, 2 bad input (file, key type, name, CSV), 3 output file exists,\n"
"  4 server refused (TSIG/NOTAUTH/REFUSED), 5 prerequisite failed (concurrent change),\n"
"  6 server unreachable, 7 not confirmed DNSSEC-secure, 8 rollover step pending, 9 internal.\n"
"See danejoin-ca(1) and docs/danejoin-ca.md.\n", f);
}
