/*
 * js_config.c - INI configuration: a table of known keys, validated as they are read.
 *
 * Every key the programs understand is one row of key_table below; a section is known when
 * some row names it. Adding a key (or a section) is adding a row. Anything not in the table
 * is an error, never ignored: a misspelt "master_key_fle" must not leave the default in force
 * unnoticed (DESIGN.md trust rule 6).
 *
 * libinih as packaged does not pass line numbers to the handler, so the file is fed through
 * our own fgets-style reader, which counts lines, refuses over-long lines (longer than inih's
 * line buffer, which inih would otherwise split into two) and NUL bytes (which would cut a line
 * short unseen), checks section headers (inih reports nothing for an empty section), and stops
 * the parse at the first error.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include <ini.h>
#include <libpq-fe.h>
#include <openssl/crypto.h>

#include "common/dj_err.h"
#include "common/dj_hex.h"
#include "engine/js_config.h"
#include "store/js_store.h"

enum key_type {
	KT_PATH,	/* a file name; relative names are taken from the config file's directory */
	KT_UINT,	/* unsigned, range-checked */
	KT_INT64,	/* int64_t, range-checked */
	KT_HEX,		/* exactly hex_len bytes of hex */
	KT_STR,		/* a non-empty string */
	KT_BOOL,	/* yes/no/true/false/on/off/1/0, stored as unsigned 1/0 */
	KT_LIST,	/* words separated by spaces or commas, into struct js_config_list */
	KT_ADDR,	/* "HOST:PORT" (js_config_hostport), stored as a string */
	KT_ADDR_OFF,	/* KT_ADDR, or "off" */
};

struct key_def {
	const char *section;
	const char *name;
	enum key_type type;
	size_t offset;		/* into struct js_config */
	long long min, max;	/* KT_UINT, KT_INT64 */
	size_t hex_len;		/* KT_HEX */
	bool required;
};

#define CFG_OFF(field) offsetof(struct js_config, field)
#define PEER_OFF(field) offsetof(struct js_peer_config, field)
#define HTTPS_SCHEME "https://"	/* async_url: the only scheme (answers carry keys) */
#define PEER_SECTION "peer."	/* [peer.NAME]: one per peer; rows below use section "peer.*" */
#define SNI_SECTION "listen.sni."	/* [listen.sni.NAME]: one per SNI certificate */
#define SNI_OFF(field) offsetof(struct js_sni_config, field)

/* key_table - every known [section] key; keep config/danejoin.conf.example in step */
static const struct key_def key_table[] = {
	/* [store]: path for sqlite, conninfo (+ passfile) for postgresql: check_store() */
	{ "store", "backend", KT_STR, CFG_OFF(store_backend), 0, 0, 0, false },
	{ "store", "path", KT_PATH, CFG_OFF(store_path), 0, 0, 0, false },
	{ "store", "conninfo", KT_STR, CFG_OFF(store_conninfo), 0, 0, 0, false },
	{ "store", "passfile", KT_PATH, CFG_OFF(store_passfile), 0, 0, 0, false },
	{ "store", "devnonce_history", KT_UINT, CFG_OFF(devnonce_history), JS_DEVNONCE_HIST_MIN,
	  JS_DEVNONCE_HIST_MAX, 0, false },
	{ "store", "batch_max", KT_UINT, CFG_OFF(batch_max), JS_CONFIG_BATCH_MIN,
	  JS_CONFIG_BATCH_MAX, 0, false },
	{ "keys", "master_key_file", KT_PATH, CFG_OFF(master_key_file), 0, 0, 0, true },
	{ "listen", "address", KT_ADDR, CFG_OFF(listen_address), 0, 0, 0, false },
	{ "listen", "cert_file", KT_PATH, CFG_OFF(cert_file), 0, 0, 0, false },
	{ "listen", "key_file", KT_PATH, CFG_OFF(key_file), 0, 0, 0, false },
	{ "listen", "client_ca_file", KT_PATH, CFG_OFF(client_ca_file), 0, 0, 0, false },
	{ "listen", "max_body", KT_UINT, CFG_OFF(max_body), 1024, 16 << 20, 0, false },
	{ "listen", "header_timeout", KT_UINT, CFG_OFF(header_timeout), 1, 300, 0, false },
	{ "listen", "idle_timeout", KT_UINT, CFG_OFF(idle_timeout), 1, 86400, 0, false },
	{ "listen", "max_connections", KT_UINT, CFG_OFF(max_connections), 1, 1000000, 0, false },
	{ "listen", "max_connections_per_peer", KT_UINT, CFG_OFF(max_connections_per_peer), 1,
	  1000000, 0, false },
	{ "listen", "min_rate", KT_UINT, CFG_OFF(min_rate), 0, 1 << 30, 0, false },
	{ "listen", "threads", KT_UINT, CFG_OFF(threads), 1, JS_CONFIG_THREADS_MAX, 0, false },
	{ "listen", "metrics_address", KT_ADDR_OFF, CFG_OFF(metrics_address), 0, 0, 0, false },
	{ "listen", "auth", KT_STR, CFG_OFF(auth), 0, 0, 0, false },
	{ "dane", "trust_anchor_file", KT_PATH, CFG_OFF(dane_trust_anchor_file), 0, 0, 0, false },
	{ "dane", "auto_trust_anchor_file", KT_PATH, CFG_OFF(dane_auto_trust_anchor_file), 0, 0, 0,
	  false },
	{ "dane", "root_anchor", KT_BOOL, CFG_OFF(dane_root_anchor), 0, 0, 0, false },
	{ "dane", "stubs", KT_STR, CFG_OFF(dane_stubs), 0, 0, 0, false },
	{ "dane", "forwarders", KT_STR, CFG_OFF(dane_forwarders), 0, 0, 0, false },
	{ "dane", "cache_max", KT_UINT, CFG_OFF(dane_cache_max), 1, 10000000, 0, false },
	{ "dane", "ttl_cap", KT_UINT, CFG_OFF(dane_ttl_cap), 1, 86400 * 7, 0, false },
	{ "dane", "neg_ttl", KT_UINT, CFG_OFF(dane_neg_ttl), 1, 86400, 0, false },
	{ "dane", "timeout_ms", KT_UINT, CFG_OFF(dane_timeout_ms), 100, 60000, 0, false },
	{ "dane", "clientid_ext", KT_UINT, CFG_OFF(dane_clientid_ext), 1, 65535, 0, false },
	{ "dane", "client_identity", KT_STR, CFG_OFF(dane_client_identity), 0, 0, 0, false },
	{ "dane", "netid_binding", KT_BOOL, CFG_OFF(dane_netid_binding), 0, 0, 0, false },
	{ "dane", "discovery_suffix", KT_STR, CFG_OFF(dane_discovery_suffix), 0, 0, 0, false },
	{ "js", "join_euis", KT_LIST, CFG_OFF(join_euis), 0, 0, 0, false },
	{ "js", "home_net_id", KT_HEX, CFG_OFF(home_net_id), 0, 0, LW_NETID_LEN, false },
	{ "js", "home_ns_id", KT_STR, CFG_OFF(home_ns_id), 0, 0, 0, false },
	{ "js", "ownership", KT_BOOL, CFG_OFF(js_ownership), 0, 0, 0, false },
	{ "join", "net_id", KT_HEX, CFG_OFF(net_id), 0, 0, LW_NETID_LEN, false },
	{ "join", "session_lifetime", KT_INT64, CFG_OFF(session_lifetime), JS_CONFIG_SESSION_MIN,
	  JS_CONFIG_SESSION_MAX, 0, false },
	/* [mqtt]: events (see check_mqtt() for the rules across keys) */
	{ "mqtt", "host", KT_STR, CFG_OFF(mqtt_host), 0, 0, 0, false },
	{ "mqtt", "port", KT_UINT, CFG_OFF(mqtt_port), 1, 65535, 0, false },
	{ "mqtt", "address", KT_STR, CFG_OFF(mqtt_address), 0, 0, 0, false },
	{ "mqtt", "verify", KT_STR, CFG_OFF(mqtt_verify), 0, 0, 0, false },
	{ "mqtt", "cafile", KT_PATH, CFG_OFF(mqtt_cafile), 0, 0, 0, false },
	{ "mqtt", "cert", KT_PATH, CFG_OFF(mqtt_cert), 0, 0, 0, false },
	{ "mqtt", "key", KT_PATH, CFG_OFF(mqtt_key), 0, 0, 0, false },
	{ "mqtt", "client_id", KT_STR, CFG_OFF(mqtt_client_id), 0, 0, 0, false },
	{ "mqtt", "topic_prefix", KT_STR, CFG_OFF(mqtt_topic_prefix), 0, 0, 0, false },
	{ "mqtt", "qos", KT_UINT, CFG_OFF(mqtt_qos), 1, 1, 0, false },
	{ "mqtt", "payload_format", KT_STR, CFG_OFF(mqtt_payload_format), 0, 0, 0, false },
	{ "mqtt", "outbox_max", KT_UINT, CFG_OFF(mqtt_outbox_max), 1, JS_OUTBOX_MAX, 0, false },
	{ "mqtt", "keepalive", KT_UINT, CFG_OFF(mqtt_keepalive), 5, 3600, 0, false },
	{ "mqtt", "reconnect_min_ms", KT_UINT, CFG_OFF(mqtt_backoff_min_ms), 10, 600000, 0, false },
	{ "mqtt", "reconnect_max_ms", KT_UINT, CFG_OFF(mqtt_backoff_max_ms), 10, 3600000, 0,
	  false },
	/* [admin]: the management API (docs/admin-api.md) */
	{ "admin", "address", KT_ADDR, CFG_OFF(admin_address), 0, 0, 0, false },
	{ "admin", "cert_file", KT_PATH, CFG_OFF(admin_cert_file), 0, 0, 0, false },
	{ "admin", "key_file", KT_PATH, CFG_OFF(admin_key_file), 0, 0, 0, false },
	{ "admin", "client_ca_file", KT_PATH, CFG_OFF(admin_client_ca_file), 0, 0, 0, false },
	{ "admin", "auth", KT_STR, CFG_OFF(admin_auth), 0, 0, 0, false },
	{ "admin", "client_identities", KT_LIST, CFG_OFF(admin_client_identities), 0, 0, 0, false },
	{ "admin", "mtls_scope", KT_STR, CFG_OFF(admin_mtls_scope), 0, 0, 0, false },
	{ "admin", "console_dir", KT_PATH, CFG_OFF(admin_console_dir), 0, 0, 0, false },
	{ "admin", "auth_fail_max", KT_UINT, CFG_OFF(admin_auth_fail_max), 1, 100000, 0, false },
	/* [registry]: transfers by auth code through [admin] (see check_registry()) */
	{ "registry", "key_file", KT_PATH, CFG_OFF(registry_key_file), 0, 0, 0, false },
	{ "registry", "ns", KT_STR, CFG_OFF(registry_ns), 0, 0, 0, false },
	{ "registry", "tsig_file", KT_PATH, CFG_OFF(registry_tsig_file), 0, 0, 0, false },
	{ "registry", "lookup_via", KT_STR, CFG_OFF(registry_lookup_via), 0, 0, 0, false },
	{ "registry", "ttl", KT_UINT, CFG_OFF(registry_ttl), 1, 86400, 0, false },
};

#define N_KEYS DJ_ARRAY_LEN(key_table)

/* peer_table - the keys of every [peer.NAME] section; offsets into struct js_peer_config */
static const struct key_def peer_table[] = {
	{ "peer.*", "identity", KT_STR, PEER_OFF(identity), 0, 0, 0, true },
	{ "peer.*", "role", KT_STR, PEER_OFF(role), 0, 0, 0, true },
	{ "peer.*", "sender_ids", KT_LIST, PEER_OFF(sender_ids), 0, 0, 0, true },
	{ "peer.*", "ns_ids", KT_LIST, PEER_OFF(ns_ids), 0, 0, 0, false },
	{ "peer.*", "join_euis", KT_LIST, PEER_OFF(join_euis), 0, 0, 0, false },
	{ "peer.*", "kek_label", KT_STR, PEER_OFF(kek_label), 0, 0, 0, false },
	{ "peer.*", "kek_file", KT_PATH, PEER_OFF(kek_file), 0, 0, 0, false },
	{ "peer.*", "plain_keys", KT_BOOL, PEER_OFF(plain_keys), 0, 0, 0, false },
	{ "peer.*", "appskey_in_joinans", KT_BOOL, PEER_OFF(appskey_in_joinans), 0, 0, 0, false },
	{ "peer.*", "rate", KT_UINT, PEER_OFF(rate), 0, 1000000, 0, false },
	{ "peer.*", "async_url", KT_STR, PEER_OFF(async_url), 0, 0, 0, false },
	{ "peer.*", "async_server_name", KT_STR, PEER_OFF(async_server_name), 0, 0, 0, false },
	{ "peer.*", "async_discover", KT_BOOL, PEER_OFF(async_discover), 0, 0, 0, false },
};

#define N_PEER_KEYS DJ_ARRAY_LEN(peer_table)

/* sni_table - the keys of every [listen.sni.NAME] section, all required */
static const struct key_def sni_table[] = {
	{ "listen.sni.*", "names", KT_LIST, SNI_OFF(names), 0, 0, 0, true },
	{ "listen.sni.*", "cert_file", KT_PATH, SNI_OFF(cert_file), 0, 0, 0, true },
	{ "listen.sni.*", "key_file", KT_PATH, SNI_OFF(key_file), 0, 0, 0, true },
};

#define N_SNI_KEYS DJ_ARRAY_LEN(sni_table)

struct parse_ctx {
	const char *path;
	FILE *fp;
	char *dir;		/* the config file's directory, for relative paths */
	int line;
	struct js_config cfg;
	bool seen[N_KEYS];
	bool (*peer_seen)[N_PEER_KEYS];	/* per peer, parallel to cfg.peers */
	bool (*sni_seen)[N_SNI_KEYS];	/* per SNI section, parallel to cfg.sni */
	int rc;			/* the first error, DJ_EOK so far */
	char *err;
	size_t errlen;
};

/* fail - record the first error as "FILE:LINE: message" (line 0: "FILE: message") */
static void DJ_PRINTF(4, 5) fail(struct parse_ctx *c, int rc, int line, const char *fmt, ...)
{
	va_list ap;
	int n = 0;

	if (c->rc != DJ_EOK)
		return;
	c->rc = rc;
	if (c->err == NULL || c->errlen == 0)
		return;
	if (line > 0)
		n = snprintf(c->err, c->errlen, "%s:%d: ", c->path, line);
	else
		n = snprintf(c->err, c->errlen, "%s: ", c->path);
	if (n < 0 || (size_t)n >= c->errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(c->err + n, c->errlen - (size_t)n, fmt, ap);
	va_end(ap);
}

/* section_name_ok - whether \p name (\p len bytes) is PREFIX followed by a NAME of letters,
 * digits, '-' and '_' shorter than JS_CONFIG_NAME_MAX */
static bool section_name_ok(const char *name, size_t len, const char *prefix)
{
	size_t i, plen = strlen(prefix);

	if (len <= plen || len - plen >= JS_CONFIG_NAME_MAX || memcmp(name, prefix, plen) != 0)
		return false;
	for (i = plen; i < len; i++)
		if (!((name[i] >= 'a' && name[i] <= 'z') || (name[i] >= 'A' && name[i] <= 'Z') ||
		      (name[i] >= '0' && name[i] <= '9') || name[i] == '-' || name[i] == '_'))
			return false;
	return true;
}

/* section_known - whether some row of key_table belongs to section \p name */
static bool section_known(const char *name, size_t len)
{
	size_t i;

	if (section_name_ok(name, len, PEER_SECTION) || section_name_ok(name, len, SNI_SECTION))
		return true;

	for (i = 0; i < N_KEYS; i++)
		if (strlen(key_table[i].section) == len &&
		    memcmp(key_table[i].section, name, len) == 0)
			return true;
	return false;
}

/* check_section_line - catch an unknown [section] even when no key follows it */
static void check_section_line(struct parse_ctx *c, const char *s)
{
	const char *end;

	while (*s == ' ' || *s == '\t')
		s++;
	if (*s != '[')
		return;
	s++;
	end = strchr(s, ']');
	if (end == NULL) {
		fail(c, DJ_ECONFIG, c->line, "syntax error: '[' without ']'");
		return;
	}
	if (!section_known(s, (size_t)(end - s)))
		fail(c, DJ_ECONFIG, c->line, "[%.*s]: unknown section", (int)(end - s), s);
}

/* reader - fgets for inih that counts lines, refuses NUL bytes and over-long lines, and stops
 * the parse at the first error */
static char *reader(char *str, int num, void *stream)
{
	struct parse_ctx *c = stream;
	const char *s = str;
	int ch = EOF, n = 0;

	if (c->rc != DJ_EOK || num < 2)
		return NULL;
	while (n < num - 1 && (ch = getc(c->fp)) != EOF) {
		if (ch == '\0') {
			fail(c, DJ_ECONFIG, c->line + 1, "NUL byte at line %d (a configuration is "
			     "text)", c->line + 1);
			return NULL;
		}
		str[n++] = (char)ch;
		if (ch == '\n')
			break;
	}
	if (n == 0) {
		if (ferror(c->fp))
			fail(c, DJ_EIO, 0, "read error");
		return NULL;
	}
	str[n] = '\0';
	c->line++;
	if (str[n - 1] != '\n' && n == num - 1 && (ch = getc(c->fp)) != EOF) {
		fail(c, DJ_ECONFIG, c->line, "line longer than %d characters", num - 2);
		return NULL;
	}
	if (c->line == 1 && (unsigned char)s[0] == 0xef && (unsigned char)s[1] == 0xbb &&
	    (unsigned char)s[2] == 0xbf)
		s += 3;		/* UTF-8 BOM: inih skips it too */
	check_section_line(c, s);
	return c->rc == DJ_EOK ? str : NULL;
}

/* parse_path - store \p value as a path, relative ones anchored at the config directory */
static int parse_path(struct parse_ctx *c, const char *value, char **dst)
{
	char *p;
	size_t n;

	if (value[0] == '\0')
		return DJ_EMALFORMED;
	if (value[0] == '/' || strcmp(c->dir, ".") == 0) {
		p = strdup(value);
	} else {
		n = strlen(c->dir) + 1 + strlen(value) + 1;
		p = malloc(n);
		if (p != NULL)
			snprintf(p, n, "%s/%s", c->dir, value);
	}
	if (p == NULL)
		return DJ_ENOMEM;
	free(*dst);
	*dst = p;
	return DJ_EOK;
}

/* parse_int - a plain decimal integer (no sign, no spaces) within [min, max] */
static int parse_int(const char *value, long long min, long long max, long long *out)
{
	char *end;
	long long v;

	if (value[0] < '0' || value[0] > '9')
		return DJ_EMALFORMED;
	errno = 0;
	v = strtoll(value, &end, 10);
	if (errno != 0 || *end != '\0' || v < min || v > max)
		return DJ_EMALFORMED;
	*out = v;
	return DJ_EOK;
}

/* parse_str - a non-empty string */
static int parse_str(const char *value, char **dst)
{
	char *p;

	if (value[0] == '\0')
		return DJ_EMALFORMED;
	p = strdup(value);
	if (p == NULL)
		return DJ_ENOMEM;
	free(*dst);
	*dst = p;
	return DJ_EOK;
}

/* list_free - free a list's words */
static void list_free(struct js_config_list *l)
{
	for (unsigned i = 0; i < l->n; i++)
		free(l->v[i]);
	memset(l, 0, sizeof(*l));
}

/* parse_list - words separated by spaces or commas, 1..JS_CONFIG_LIST_MAX of them */
static int parse_list(const char *value, struct js_config_list *dst)
{
	struct js_config_list l;
	const char *p = value;
	int ret = DJ_EMALFORMED;

	memset(&l, 0, sizeof(l));
	for (;;) {
		size_t n;

		p += strspn(p, " ,\t");
		if (*p == '\0')
			break;
		n = strcspn(p, " ,\t");
		if (l.n == JS_CONFIG_LIST_MAX)
			goto out;
		l.v[l.n] = strndup(p, n);
		if (l.v[l.n] == NULL) {
			ret = DJ_ENOMEM;
			goto out;
		}
		l.n++;
		p += n;
	}
	if (l.n == 0)
		goto out;
	list_free(dst);
	*dst = l;
	return DJ_EOK;
out:
	list_free(&l);
	return ret;
}

/* set_value - validate \p value for key \p k and store it in the config being built */
static void set_value(struct parse_ctx *c, const struct key_def *k, void *obj, const char *sect,
		      const char *value)
{
	char *base = (char *)obj + k->offset;
	long long v;
	int rc;

	switch (k->type) {
	case KT_PATH:
		rc = parse_path(c, value, (char **)(void *)base);
		if (rc == DJ_ENOMEM)
			fail(c, rc, c->line, "out of memory");
		else if (rc != DJ_EOK)
			fail(c, DJ_ECONFIG, c->line, "[%s] %s: expected a file name", sect, k->name);
		break;
	case KT_STR:
		rc = parse_str(value, (char **)(void *)base);
		if (rc == DJ_ENOMEM)
			fail(c, rc, c->line, "out of memory");
		else if (rc != DJ_EOK)
			fail(c, DJ_ECONFIG, c->line, "[%s] %s: expected a non-empty value", sect,
			     k->name);
		break;
	case KT_BOOL:
		if (strcmp(value, "yes") == 0 || strcmp(value, "true") == 0 ||
		    strcmp(value, "on") == 0 || strcmp(value, "1") == 0)
			*(unsigned *)(void *)base = 1;
		else if (strcmp(value, "no") == 0 || strcmp(value, "false") == 0 ||
			 strcmp(value, "off") == 0 || strcmp(value, "0") == 0)
			*(unsigned *)(void *)base = 0;
		else
			fail(c, DJ_ECONFIG, c->line, "[%s] %s: expected yes or no", sect, k->name);
		break;
	case KT_LIST:
		rc = parse_list(value, (struct js_config_list *)(void *)base);
		if (rc == DJ_ENOMEM)
			fail(c, rc, c->line, "out of memory");
		else if (rc != DJ_EOK)
			fail(c, DJ_ECONFIG, c->line, "[%s] %s: expected 1 to %d words separated by "
			     "spaces or commas", sect, k->name, JS_CONFIG_LIST_MAX);
		break;
	case KT_UINT:
	case KT_INT64:
		if (parse_int(value, k->min, k->max, &v) != DJ_EOK) {
			fail(c, DJ_ECONFIG, c->line,
			     "[%s] %s: expected an integer from %lld to %lld", sect, k->name,
			     k->min, k->max);
			break;
		}
		if (k->type == KT_UINT)
			*(unsigned *)(void *)base = (unsigned)v;
		else
			*(int64_t *)(void *)base = (int64_t)v;
		break;
	case KT_ADDR:
	case KT_ADDR_OFF:
		if (k->type == KT_ADDR_OFF && strcmp(value, "off") == 0)
			rc = parse_str(value, (char **)(void *)base);
		else if (js_config_hostport(value, NULL, 0, NULL) == DJ_EOK)
			rc = parse_str(value, (char **)(void *)base);
		else
			rc = DJ_EMALFORMED;
		if (rc == DJ_ENOMEM)
			fail(c, rc, c->line, "out of memory");
		else if (rc != DJ_EOK)
			fail(c, DJ_ECONFIG, c->line, "[%s] %s: '%s': expected HOST:PORT or "
			     "[IPv6]:PORT with PORT from 1 to 65535%s", sect, k->name, value,
			     k->type == KT_ADDR_OFF ? ", or off" : "");
		break;
	case KT_HEX:
		if (dj_hex_parse(value, (uint8_t *)base, k->hex_len) != DJ_EOK)
			fail(c, DJ_ECONFIG, c->line, "[%s] %s: expected %zu hex digits", sect,
			     k->name, 2 * k->hex_len);
		break;
	}
}

/* peer_key - one key of a [peer.NAME] section; the peer is created on its first key */
static int peer_key(struct parse_ctx *c, const char *section, const char *name, const char *value)
{
	const char *pname = section + strlen(PEER_SECTION);
	struct js_peer_config *p = NULL;
	unsigned idx;
	size_t i;

	for (idx = 0; idx < c->cfg.n_peers; idx++)
		if (strcmp(c->cfg.peers[idx].name, pname) == 0)
			break;
	if (idx == c->cfg.n_peers) {
		struct js_peer_config *np;
		bool (*ns)[N_PEER_KEYS];

		if (c->cfg.n_peers == JS_CONFIG_PEERS_MAX) {
			fail(c, DJ_ECONFIG, c->line, "[%s]: more than %d peers", section,
			     JS_CONFIG_PEERS_MAX);
			return 0;
		}
		np = realloc(c->cfg.peers, (c->cfg.n_peers + 1) * sizeof(*np));
		if (np != NULL)
			c->cfg.peers = np;
		ns = realloc(c->peer_seen, (c->cfg.n_peers + 1) * sizeof(*ns));
		if (ns != NULL)
			c->peer_seen = ns;
		if (np == NULL || ns == NULL) {
			fail(c, DJ_ENOMEM, c->line, "out of memory");
			return 0;
		}
		memset(&c->cfg.peers[idx], 0, sizeof(c->cfg.peers[idx]));
		memset(c->peer_seen[idx], 0, sizeof(c->peer_seen[idx]));
		snprintf(c->cfg.peers[idx].name, JS_CONFIG_NAME_MAX, "%s", pname);
		c->cfg.n_peers++;
	}
	p = &c->cfg.peers[idx];
	for (i = 0; i < N_PEER_KEYS; i++)
		if (strcmp(peer_table[i].name, name) == 0)
			break;
	if (i == N_PEER_KEYS) {
		fail(c, DJ_ECONFIG, c->line, "[%s] %s: unknown key", section, name);
		return 0;
	}
	if (c->peer_seen[idx][i]) {
		fail(c, DJ_ECONFIG, c->line,
		     "[%s] %s: set twice (or continued on an indented line)", section, name);
		return 0;
	}
	c->peer_seen[idx][i] = true;
	set_value(c, &peer_table[i], p, section, value);
	return c->rc == DJ_EOK;
}

/* sni_key - one key of a [listen.sni.NAME] section; the entry is created on its first key */
static int sni_key(struct parse_ctx *c, const char *section, const char *name, const char *value)
{
	const char *sname = section + strlen(SNI_SECTION);
	unsigned idx;
	size_t i;

	for (idx = 0; idx < c->cfg.n_sni; idx++)
		if (strcmp(c->cfg.sni[idx].name, sname) == 0)
			break;
	if (idx == c->cfg.n_sni) {
		struct js_sni_config *nv;
		bool (*ns)[N_SNI_KEYS];

		if (c->cfg.n_sni == JS_CONFIG_SNI_MAX) {
			fail(c, DJ_ECONFIG, c->line, "[%s]: more than %d [listen.sni.NAME] sections",
			     section, JS_CONFIG_SNI_MAX);
			return 0;
		}
		nv = realloc(c->cfg.sni, (c->cfg.n_sni + 1) * sizeof(*nv));
		if (nv != NULL)
			c->cfg.sni = nv;
		ns = realloc(c->sni_seen, (c->cfg.n_sni + 1) * sizeof(*ns));
		if (ns != NULL)
			c->sni_seen = ns;
		if (nv == NULL || ns == NULL) {
			fail(c, DJ_ENOMEM, c->line, "out of memory");
			return 0;
		}
		memset(&c->cfg.sni[idx], 0, sizeof(c->cfg.sni[idx]));
		memset(c->sni_seen[idx], 0, sizeof(c->sni_seen[idx]));
		snprintf(c->cfg.sni[idx].name, JS_CONFIG_NAME_MAX, "%s", sname);
		c->cfg.n_sni++;
	}
	for (i = 0; i < N_SNI_KEYS; i++)
		if (strcmp(sni_table[i].name, name) == 0)
			break;
	if (i == N_SNI_KEYS) {
		fail(c, DJ_ECONFIG, c->line, "[%s] %s: unknown key", section, name);
		return 0;
	}
	if (c->sni_seen[idx][i]) {
		fail(c, DJ_ECONFIG, c->line,
		     "[%s] %s: set twice (or continued on an indented line)", section, name);
		return 0;
	}
	c->sni_seen[idx][i] = true;
	set_value(c, &sni_table[i], &c->cfg.sni[idx], section, value);
	return c->rc == DJ_EOK;
}

/* sni_name_ok - an SNI host name: LDH labels, or "*." and at least two more labels; no
 * trailing dot (clients send none, RFC 6066 §3) */
static bool sni_name_ok(const char *s)
{
	size_t n = strlen(s), label = 0, labels = 1;
	bool wild = strncmp(s, "*.", 2) == 0;

	if (wild) {	/* "*.DOMAIN": DOMAIN of two labels at least, never "*.com" */
		s += 2;
		n -= 2;
	}
	if (n == 0 || n > 253 || s[0] == '.' || s[n - 1] == '.' || s[0] == '-')
		return false;
	for (size_t i = 0; i < n; i++) {
		char ch = s[i];

		if (ch == '.') {
			if (label == 0 || s[i - 1] == '-')
				return false;
			label = 0;
			labels++;
			continue;
		}
		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		      (ch >= '0' && ch <= '9') || (ch == '-' && label > 0)) || ++label > 63)
			return false;
	}
	return !wild || labels >= 2;
}

/* check_sni - every [listen.sni.NAME] complete, its names well formed and served once */
static void check_sni(struct parse_ctx *c)
{
	for (unsigned e = 0; e < c->cfg.n_sni && c->rc == DJ_EOK; e++) {
		const struct js_sni_config *sc = &c->cfg.sni[e];

		for (size_t k = 0; k < N_SNI_KEYS; k++)
			if (sni_table[k].required && !c->sni_seen[e][k]) {
				fail(c, DJ_ECONFIG, 0, "[listen.sni.%s] %s: required key is missing",
				     sc->name, sni_table[k].name);
				return;
			}
		for (unsigned i = 0; i < sc->names.n; i++) {
			if (!sni_name_ok(sc->names.v[i])) {
				fail(c, DJ_ECONFIG, 0, "[listen.sni.%s] names: '%s': expected a host "
				     "name or *.DOMAIN, without a trailing dot", sc->name,
				     sc->names.v[i]);
				return;
			}
			/* one name, one certificate: which would be served is otherwise a guess */
			for (unsigned f = 0; f <= e; f++)
				for (unsigned j = 0; j < (f == e ? i : c->cfg.sni[f].names.n); j++)
					if (strcasecmp(c->cfg.sni[f].names.v[j],
						       sc->names.v[i]) == 0) {
						fail(c, DJ_ECONFIG, 0, "[listen.sni.%s] names: '%s' "
						     "is already served by [listen.sni.%s]",
						     sc->name, sc->names.v[i], c->cfg.sni[f].name);
						return;
					}
		}
	}
}

/* handler - inih callback: find the key in key_table and validate its value */
static int handler(void *user, const char *section, const char *name, const char *value)
{
	struct parse_ctx *c = user;
	size_t i;

	if (c->rc != DJ_EOK)
		return 0;
	if (section[0] == '\0') {
		fail(c, DJ_ECONFIG, c->line, "%s: key outside any [section]", name);
		return 0;
	}
	if (strncmp(section, PEER_SECTION, strlen(PEER_SECTION)) == 0)
		return peer_key(c, section, name, value);
	if (strncmp(section, SNI_SECTION, strlen(SNI_SECTION)) == 0)
		return sni_key(c, section, name, value);
	for (i = 0; i < N_KEYS; i++)
		if (strcmp(key_table[i].section, section) == 0 &&
		    strcmp(key_table[i].name, name) == 0)
			break;
	if (i == N_KEYS) {
		fail(c, DJ_ECONFIG, c->line, "[%s] %s: unknown key", section, name);
		return 0;
	}
	if (c->seen[i]) {
		fail(c, DJ_ECONFIG, c->line,
		     "[%s] %s: set twice (or continued on an indented line)", section, name);
		return 0;
	}
	c->seen[i] = true;
	set_value(c, &key_table[i], &c->cfg, section, value);
	return c->rc == DJ_EOK;
}

/* dir_of - the directory part of \p path ("." when there is none), allocated */
static char *dir_of(const char *path)
{
	const char *slash = strrchr(path, '/');

	if (slash == NULL)
		return strdup(".");
	if (slash == path)
		return strdup("/");
	return strndup(path, (size_t)(slash - path));
}

/* eui_prefix_ok - "HEX16" or "HEX16/BITS" with BITS 0..64 */
static bool eui_prefix_ok(const char *s)
{
	char hex[2 * LW_EUI_LEN + 1];
	uint8_t eui[LW_EUI_LEN];
	const char *slash = strchr(s, '/');
	size_t n = slash ? (size_t)(slash - s) : strlen(s);
	long long bits;

	if (n != 2 * LW_EUI_LEN)
		return false;
	memcpy(hex, s, n);
	hex[n] = '\0';
	if (dj_hex_parse(hex, eui, LW_EUI_LEN) != DJ_EOK)
		return false;
	return slash == NULL || parse_int(slash + 1, 0, 64, &bits) == DJ_EOK;
}

/* mqtt_name_ok - a client id or a topic prefix: printable ASCII without MQTT wildcards or
 * spaces; for a prefix also no empty level at either end */
static bool mqtt_name_ok(const char *s, bool prefix)
{
	size_t n = strlen(s);

	if (n == 0 || n > JS_CONFIG_MQTT_PREFIX_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (s[i] <= ' ' || s[i] > '~' || s[i] == '+' || s[i] == '#' ||
		    (!prefix && s[i] == '/'))
			return false;
	return !prefix || (s[0] != '/' && s[n - 1] != '/');
}

/* check_mqtt - [mqtt]: present means events on; then host and cafile are required */
static void check_mqtt(struct parse_ctx *c)
{
	struct js_config *g = &c->cfg;
	char *p;
	size_t n;

	for (size_t i = 0; i < N_KEYS; i++)
		if (c->seen[i] && strcmp(key_table[i].section, "mqtt") == 0)
			g->mqtt = 1;
	if (!g->mqtt)
		return;
	if (g->mqtt_host == NULL) {
		fail(c, DJ_ECONFIG, 0, "[mqtt] host: required key is missing (the [mqtt] section "
		     "turns events on)");
		return;
	}
	if (g->mqtt_verify != NULL && strcmp(g->mqtt_verify, "cafile") != 0 &&
	    strcmp(g->mqtt_verify, "dane") != 0) {
		fail(c, DJ_ECONFIG, 0, "[mqtt] verify: expected cafile or dane, got '%s'",
		     g->mqtt_verify);
		return;
	}
	if (g->mqtt_verify != NULL && strcmp(g->mqtt_verify, "dane") == 0) {
		/* the broker is authenticated by its DNSSEC-signed TLSA records alone */
		if (g->mqtt_cafile != NULL) {
			fail(c, DJ_ECONFIG, 0, "[mqtt] cafile: not used with verify = dane (the "
			     "broker's TLSA records decide; there is no fallback to a CA file)");
			return;
		}
		if (g->dane_trust_anchor_file == NULL && g->dane_auto_trust_anchor_file == NULL &&
		    !g->dane_root_anchor) {
			fail(c, DJ_ECONFIG, 0, "[mqtt] verify = dane needs a DNSSEC trust anchor: "
			     "[dane] trust_anchor_file, auto_trust_anchor_file or root_anchor = yes");
			return;
		}
	} else if (g->mqtt_cafile == NULL) {
		fail(c, DJ_ECONFIG, 0, "[mqtt] cafile: required with verify = cafile (the roots "
		     "the broker's certificate must chain to)");
		return;
	}
	if ((g->mqtt_cert == NULL) != (g->mqtt_key == NULL)) {
		fail(c, DJ_ECONFIG, 0, "[mqtt] cert and key: set both (our client certificate "
		     "for the broker) or neither");
		return;
	}
	if (g->mqtt_payload_format != NULL && strcmp(g->mqtt_payload_format, "protobuf") != 0 &&
	    strcmp(g->mqtt_payload_format, "json") != 0) {
		fail(c, DJ_ECONFIG, 0, "[mqtt] payload_format: expected protobuf or json, got '%s'",
		     g->mqtt_payload_format);
		return;
	}
	if (g->mqtt_client_id != NULL && !mqtt_name_ok(g->mqtt_client_id, false)) {
		fail(c, DJ_ECONFIG, 0, "[mqtt] client_id: '%s': printable characters without "
		     "spaces, '/', '+' or '#'", g->mqtt_client_id);
		return;
	}
	if (g->mqtt_topic_prefix != NULL && !mqtt_name_ok(g->mqtt_topic_prefix, true)) {
		fail(c, DJ_ECONFIG, 0, "[mqtt] topic_prefix: '%s': at most %d printable characters "
		     "without spaces, '+' or '#', not starting or ending with '/'",
		     g->mqtt_topic_prefix, JS_CONFIG_MQTT_PREFIX_MAX);
		return;
	}
	if (g->mqtt_backoff_min_ms > g->mqtt_backoff_max_ms) {
		fail(c, DJ_ECONFIG, 0, "[mqtt] reconnect_min_ms: %u is above reconnect_max_ms (%u)",
		     g->mqtt_backoff_min_ms, g->mqtt_backoff_max_ms);
		return;
	}
	/* defaults that depend on other keys */
	if (g->mqtt_verify == NULL)
		g->mqtt_verify = strdup("cafile");
	if (g->mqtt_payload_format == NULL)
		g->mqtt_payload_format = strdup("protobuf");
	if (g->mqtt_client_id == NULL)
		g->mqtt_client_id = strdup(JS_CONFIG_MQTT_CLIENT_ID_DEFAULT);
	if (g->mqtt_topic_prefix == NULL && g->mqtt_client_id != NULL) {
		n = strlen(JS_CONFIG_MQTT_TOPIC_ROOT) + 1 + strlen(g->mqtt_client_id) + 1;
		p = malloc(n);
		if (p != NULL)
			snprintf(p, n, "%s/%s", JS_CONFIG_MQTT_TOPIC_ROOT, g->mqtt_client_id);
		g->mqtt_topic_prefix = p;
	}
	if (g->mqtt_verify == NULL || g->mqtt_payload_format == NULL || g->mqtt_client_id == NULL ||
	    g->mqtt_topic_prefix == NULL)
		fail(c, DJ_ENOMEM, 0, "out of memory");
}

/* kek_label_ok - 1..JS_CONFIG_KEK_LABEL_MAX printable ASCII characters, as bi_kek takes them */
static bool kek_label_ok(struct parse_ctx *c, const struct js_peer_config *pc)
{
	size_t n = strlen(pc->kek_label);

	if (n > JS_CONFIG_KEK_LABEL_MAX) {
		fail(c, DJ_ECONFIG, 0, "[peer.%s] kek_label: %zu characters, at most %d", pc->name,
		     n, JS_CONFIG_KEK_LABEL_MAX);
		return false;
	}
	for (size_t i = 0; i < n; i++)
		if (pc->kek_label[i] < ' ' || pc->kek_label[i] > '~') {
			fail(c, DJ_ECONFIG, 0, "[peer.%s] kek_label: printable ASCII characters "
			     "only", pc->name);
			return false;
		}
	return true;
}

/* check_whole - rules that span keys: peers complete and consistent, list formats */
/* passfile_ok - a PostgreSQL password file: a regular file of mode 0600 (or stricter) */
static bool passfile_ok(struct parse_ctx *c, const char *what, const char *path)
{
	struct stat st;

	if (stat(path, &st) != 0) {
		fail(c, DJ_ECONFIG, 0, "[store] %s %s: %s", what, path, strerror(errno));
		return false;
	}
	if (!S_ISREG(st.st_mode) || (st.st_mode & 077) != 0) {
		fail(c, DJ_ECONFIG, 0, "[store] %s %s: must be a regular file of mode 0600 "
		     "(mode %04o refused; chmod 600 %s)", what, path,
		     (unsigned)(st.st_mode & 07777), path);
		return false;
	}
	return true;
}

/* conninfo_check - parse [store] conninfo with libpq: no password in it (passfile instead),
 * any passfile it names must be 0600 */
static void conninfo_check(struct parse_ctx *c, const char *conninfo)
{
	char *perr = NULL;
	PQconninfoOption *opts = PQconninfoParse(conninfo, &perr);

	if (opts == NULL) {
		fail(c, DJ_ECONFIG, 0, "[store] conninfo: not a libpq connection string: %s",
		     perr != NULL ? perr : "out of memory");
		PQfreemem(perr);
		return;
	}
	for (PQconninfoOption *o = opts; o->keyword != NULL && c->rc == DJ_EOK; o++) {
		if (o->val == NULL)
			continue;
		if (strcmp(o->keyword, "password") == 0)
			fail(c, DJ_ECONFIG, 0, "[store] conninfo: a password in the configuration "
			     "file is refused: put it in a 0600 passfile ([store] passfile) or use "
			     "certificate authentication");
		else if (strcmp(o->keyword, "passfile") == 0)
			(void)passfile_ok(c, "conninfo passfile", o->val);
	}
	PQconninfoFree(opts);
}

/* conninfo_quote - append " passfile='PATH'" (quotes and backslashes escaped) */
static char *conninfo_with_passfile(const char *conninfo, const char *passfile)
{
	size_t n = strlen(conninfo), k;
	char *out = malloc(n + 2 * strlen(passfile) + 16);

	if (out == NULL)
		return NULL;
	k = (size_t)sprintf(out, "%s passfile='", conninfo);
	for (const char *p = passfile; *p != '\0'; p++) {
		if (*p == '\'' || *p == '\\')
			out[k++] = '\\';
		out[k++] = *p;
	}
	out[k++] = '\'';
	out[k] = '\0';
	return out;
}

/* check_store - [store] backend = sqlite (path required) or postgresql (conninfo required,
 * passfile optional, mode 0600); the passfile joins the conninfo. Never a fallback. */
static void check_store(struct parse_ctx *c)
{
	struct js_config *cfg = &c->cfg;
	const char *b = cfg->store_backend != NULL ? cfg->store_backend : "sqlite";
	char *ci;

	if (strcmp(b, "sqlite") == 0) {
		if (cfg->store_path == NULL)
			fail(c, DJ_ECONFIG, 0, "[store] path: required key is missing");
		else if (cfg->store_conninfo != NULL || cfg->store_passfile != NULL)
			fail(c, DJ_ECONFIG, 0, "[store] conninfo and passfile: only with backend = "
			     "postgresql");
		return;
	}
	if (strcmp(b, "postgresql") != 0) {
		fail(c, DJ_ECONFIG, 0, "[store] backend: expected sqlite or postgresql, got '%s'",
		     b);
		return;
	}
	if (cfg->store_conninfo == NULL) {
		fail(c, DJ_ECONFIG, 0, "[store] conninfo: required with backend = postgresql");
		return;
	}
	if (cfg->store_path != NULL) {
		fail(c, DJ_ECONFIG, 0, "[store] path: not used with backend = postgresql "
		     "(remove it)");
		return;
	}
	conninfo_check(c, cfg->store_conninfo);
	if (c->rc != DJ_EOK)
		return;
	if (cfg->store_passfile != NULL) {
		if (!passfile_ok(c, "passfile", cfg->store_passfile))
			return;
		ci = conninfo_with_passfile(cfg->store_conninfo, cfg->store_passfile);
		if (ci == NULL) {
			fail(c, DJ_ENOMEM, 0, "out of memory");
			return;
		}
		free(cfg->store_conninfo);
		cfg->store_conninfo = ci;
	}
	/* what the programs print as the store's name */
	cfg->store_path = strdup(JS_CONFIG_PG_STORE_NAME);
	if (cfg->store_path == NULL)
		fail(c, DJ_ENOMEM, 0, "out of memory");
}

/* admin_scope_ok - an [admin] mtls_scope value (js_apikey's names) */
static bool admin_scope_ok(const char *s)
{
	return s == NULL || strcmp(s, "read") == 0 || strcmp(s, "operate") == 0 ||
	       strcmp(s, "admin") == 0;
}

/* check_admin - [admin] mTLS: auth = pkix takes client_ca_file, auth = dane client_identities
 * (each "_admin-client.HOST", its TLSA read through the [dane] resolver of [listen] auth =
 * dane); never both, so a DANE failure cannot fall back to a CA file */
static void check_admin(struct parse_ctx *c)
{
	struct js_config *g = &c->cfg;
	const char *auth = g->admin_auth;
	bool dane;

	if (!admin_scope_ok(g->admin_mtls_scope)) {
		fail(c, DJ_ECONFIG, 0, "[admin] mtls_scope: expected read, operate or admin, got "
		     "'%s'", g->admin_mtls_scope);
		return;
	}
	if (auth != NULL && strcmp(auth, "pkix") != 0 && strcmp(auth, "dane") != 0) {
		fail(c, DJ_ECONFIG, 0, "[admin] auth: expected pkix or dane, got '%s'", auth);
		return;
	}
	dane = auth != NULL ? strcmp(auth, "dane") == 0 : g->admin_client_identities.n > 0;
	if (!dane) {
		if (g->admin_client_identities.n > 0)
			fail(c, DJ_ECONFIG, 0, "[admin] client_identities: only used with auth = "
			     "dane (auth = pkix takes client_ca_file)");
		else if (auth != NULL && g->admin_client_ca_file == NULL)
			fail(c, DJ_ECONFIG, 0, "[admin] client_ca_file: required with auth = pkix");
		return;
	}
	if (g->admin_client_ca_file != NULL) {
		fail(c, DJ_ECONFIG, 0, "[admin] client_ca_file: not used with auth = dane (the "
		     "identities' TLSA records decide; there is no fallback to a CA file)");
		return;
	}
	if (g->admin_client_identities.n == 0) {
		fail(c, DJ_ECONFIG, 0, "[admin] client_identities: required with auth = dane "
		     "(the _admin-client.HOST names whose TLSA records admit a client)");
		return;
	}
	if (g->auth != NULL && strcmp(g->auth, "dane") != 0) {
		fail(c, DJ_ECONFIG, 0, "[admin] auth = dane needs [listen] auth = dane (the "
		     "TLSA records are read through the [dane] resolver)");
		return;
	}
	for (unsigned i = 0; i < g->admin_client_identities.n; i++) {
		const char *id = g->admin_client_identities.v[i];

		if (strncasecmp(id, "_admin-client.", 14) != 0 || id[14] == '\0') {
			fail(c, DJ_ECONFIG, 0, "[admin] client_identities: '%s': expected "
			     "_admin-client.HOST", id);
			return;
		}
	}
}

/* server_ok - "IP[@PORT]" (the form of danejoin-devices --ns) */
static bool server_ok(const char *s)
{
	const char *at = strrchr(s, '@');
	size_t alen = at != NULL ? (size_t)(at - s) : strlen(s);
	char *end;
	unsigned long port;

	if (alen == 0 || alen >= 64 || strspn(s, "0123456789abcdefABCDEF.:") != alen)
		return false;
	if (at == NULL)
		return true;
	port = strtoul(at + 1, &end, 10);
	return at[1] != '\0' && *end == '\0' && port > 0 && port <= 65535;
}

/* check_registry - [registry]: all of key_file, ns and tsig_file, or none; the DNSSEC trust
 * anchor of [dane] for the _owner keys */
static void check_registry(struct parse_ctx *c)
{
	const struct js_config *g = &c->cfg;
	bool any = g->registry_key_file != NULL || g->registry_ns != NULL ||
		   g->registry_tsig_file != NULL || g->registry_lookup_via != NULL ||
		   g->registry_ttl != 0;

	if (!any)
		return;
	if (g->registry_key_file == NULL || g->registry_ns == NULL ||
	    g->registry_tsig_file == NULL) {
		fail(c, DJ_ECONFIG, 0, "[registry] key_file, ns and tsig_file: set all three "
		     "(transfers by auth code) or none");
		return;
	}
	if (!server_ok(g->registry_ns)) {
		fail(c, DJ_ECONFIG, 0, "[registry] ns: '%s': expected IP[@PORT]", g->registry_ns);
		return;
	}
	if (g->registry_lookup_via != NULL && !server_ok(g->registry_lookup_via)) {
		fail(c, DJ_ECONFIG, 0, "[registry] lookup_via: '%s': expected IP[@PORT]",
		     g->registry_lookup_via);
		return;
	}
	if (g->dane_trust_anchor_file == NULL && g->dane_auto_trust_anchor_file == NULL &&
	    !g->dane_root_anchor)
		fail(c, DJ_ECONFIG, 0, "[registry] needs a DNSSEC trust anchor for the _owner "
		     "keys: [dane] trust_anchor_file, auto_trust_anchor_file or root_anchor = yes");
}

static void check_whole(struct parse_ctx *c)
{
	uint8_t net_id[LW_NETID_LEN];

	check_store(c);
	if (c->rc != DJ_EOK)
		return;
	check_mqtt(c);
	check_sni(c);
	if (c->rc == DJ_EOK)
		check_admin(c);
	if (c->rc == DJ_EOK)
		check_registry(c);

	for (unsigned i = 0; i < c->cfg.join_euis.n && c->rc == DJ_EOK; i++)
		if (!eui_prefix_ok(c->cfg.join_euis.v[i]))
			fail(c, DJ_ECONFIG, 0, "[js] join_euis: '%s': expected 16 hex digits, "
			     "optionally /BITS (0-64)", c->cfg.join_euis.v[i]);
	for (unsigned p = 0; p < c->cfg.n_peers && c->rc == DJ_EOK; p++) {
		const struct js_peer_config *pc = &c->cfg.peers[p];

		for (size_t k = 0; k < N_PEER_KEYS; k++)
			if (peer_table[k].required && !c->peer_seen[p][k]) {
				fail(c, DJ_ECONFIG, 0, "[peer.%s] %s: required key is missing",
				     pc->name, peer_table[k].name);
				return;
			}
		if (strcmp(pc->role, "ns") != 0 && strcmp(pc->role, "as") != 0) {
			fail(c, DJ_ECONFIG, 0, "[peer.%s] role: expected ns or as, got '%s'",
			     pc->name, pc->role);
			return;
		}
		if (strcmp(pc->role, "ns") == 0)
			for (unsigned k = 0; k < pc->sender_ids.n; k++)
				if (dj_hex_parse(pc->sender_ids.v[k], net_id, LW_NETID_LEN) != DJ_EOK) {
					fail(c, DJ_ECONFIG, 0, "[peer.%s] sender_ids: '%s': a network "
					     "server's SenderID is a NetID of 6 hex digits", pc->name,
					     pc->sender_ids.v[k]);
					return;
				}
		for (unsigned k = 0; k < pc->join_euis.n; k++)
			if (!eui_prefix_ok(pc->join_euis.v[k])) {
				fail(c, DJ_ECONFIG, 0, "[peer.%s] join_euis: '%s': expected 16 hex "
				     "digits, optionally /BITS (0-64)", pc->name, pc->join_euis.v[k]);
				return;
			}
		if (pc->kek_label != NULL && !kek_label_ok(c, pc))
			return;
		if ((pc->kek_label == NULL) != (pc->kek_file == NULL)) {
			fail(c, DJ_ECONFIG, 0, "[peer.%s] kek_label and kek_file: set both or "
			     "neither", pc->name);
			return;
		}
		if (pc->kek_file == NULL && !pc->plain_keys) {
			fail(c, DJ_ECONFIG, 0, "[peer.%s]: needs kek_label and kek_file (or plain_keys "
			     "= yes, explicitly) to receive session keys", pc->name);
			return;
		}
		if (pc->plain_keys && pc->kek_file != NULL) {
			fail(c, DJ_ECONFIG, 0, "[peer.%s] plain_keys = yes and a KEK: choose one",
			     pc->name);
			return;
		}
		/* the AppSKey goes to a network server only wrapped, never in plain */
		if (pc->appskey_in_joinans && strcmp(pc->role, "ns") != 0) {
			fail(c, DJ_ECONFIG, 0, "[peer.%s] appskey_in_joinans: only for a network "
			     "server (role = ns); an application server fetches its AppSKey with "
			     "AppSKeyReq", pc->name);
			return;
		}
		if (pc->appskey_in_joinans && pc->kek_file == NULL) {
			fail(c, DJ_ECONFIG, 0, "[peer.%s] appskey_in_joinans: needs kek_label and "
			     "kek_file (the AppSKey never leaves in plain)", pc->name);
			return;
		}
		/* the full URL is parsed by its user (dc_client_new()); here only the scheme, so
		 * that a typo never sends answers in the clear or nowhere */
		if (pc->async_url != NULL &&
		    strncasecmp(pc->async_url, HTTPS_SCHEME, strlen(HTTPS_SCHEME)) != 0) {
			fail(c, DJ_ECONFIG, 0, "[peer.%s] async_url: '%s': expected "
			     "https://HOST:PORT/PATH", pc->name, pc->async_url);
			return;
		}
		/* identities are DNS names: NS1.TEST and ns1.test are one peer (RFC 4343) */
		for (unsigned q = 0; q < p; q++)
			if (strcasecmp(c->cfg.peers[q].identity, pc->identity) == 0) {
				fail(c, DJ_ECONFIG, 0, "[peer.%s] identity: '%s' is already the "
				     "identity of [peer.%s]%s", pc->name, pc->identity,
				     c->cfg.peers[q].name,
				     strcmp(c->cfg.peers[q].identity, pc->identity) != 0
					     ? " (identities are DNS names: case does not count)" : "");
				return;
			}
	}
}

void js_config_defaults(struct js_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->max_body = JS_CONFIG_MAX_BODY_DEFAULT;
	cfg->header_timeout = JS_CONFIG_HEADER_TIMEOUT_DEFAULT;
	cfg->idle_timeout = JS_CONFIG_IDLE_TIMEOUT_DEFAULT;
	cfg->max_connections = JS_CONFIG_MAX_CONN_DEFAULT;
	cfg->min_rate = JS_CONFIG_MIN_RATE_DEFAULT;
	cfg->devnonce_history = JS_DEVNONCE_HIST_DEFAULT;
	cfg->batch_max = JS_BATCH_DEFAULT;
	cfg->session_lifetime = JS_CONFIG_SESSION_DEFAULT;
	cfg->mqtt_port = JS_CONFIG_MQTT_PORT_DEFAULT;
	cfg->mqtt_qos = 1;
	cfg->mqtt_outbox_max = JS_OUTBOX_DEFAULT;
	cfg->mqtt_keepalive = JS_CONFIG_MQTT_KEEPALIVE_DEFAULT;
	cfg->mqtt_backoff_min_ms = JS_CONFIG_MQTT_BACKOFF_MIN_DEFAULT;
	cfg->mqtt_backoff_max_ms = JS_CONFIG_MQTT_BACKOFF_MAX_DEFAULT;
}

void js_config_free(struct js_config *cfg)
{
	if (cfg == NULL)
		return;
	free(cfg->store_path);
	free(cfg->store_backend);
	if (cfg->store_conninfo != NULL)
		OPENSSL_cleanse(cfg->store_conninfo, strlen(cfg->store_conninfo));
	free(cfg->store_conninfo);
	free(cfg->store_passfile);
	free(cfg->master_key_file);
	free(cfg->listen_address);
	free(cfg->cert_file);
	free(cfg->key_file);
	free(cfg->client_ca_file);
	free(cfg->metrics_address);
	free(cfg->auth);
	free(cfg->dane_trust_anchor_file);
	free(cfg->dane_auto_trust_anchor_file);
	free(cfg->dane_stubs);
	free(cfg->dane_forwarders);
	free(cfg->dane_client_identity);
	free(cfg->dane_discovery_suffix);
	list_free(&cfg->join_euis);
	free(cfg->home_ns_id);
	for (unsigned i = 0; i < cfg->n_peers; i++) {
		struct js_peer_config *p = &cfg->peers[i];

		free(p->identity);
		free(p->role);
		list_free(&p->sender_ids);
		list_free(&p->ns_ids);
		list_free(&p->join_euis);
		free(p->kek_label);
		free(p->kek_file);
		free(p->async_url);
		free(p->async_server_name);
	}
	free(cfg->peers);
	for (unsigned i = 0; i < cfg->n_sni; i++) {
		list_free(&cfg->sni[i].names);
		free(cfg->sni[i].cert_file);
		free(cfg->sni[i].key_file);
	}
	free(cfg->sni);
	free(cfg->mqtt_host);
	free(cfg->mqtt_verify);
	free(cfg->mqtt_address);
	free(cfg->mqtt_cafile);
	free(cfg->mqtt_cert);
	free(cfg->mqtt_key);
	free(cfg->mqtt_client_id);
	free(cfg->mqtt_topic_prefix);
	free(cfg->mqtt_payload_format);
	free(cfg->admin_address);
	free(cfg->admin_cert_file);
	free(cfg->admin_key_file);
	free(cfg->admin_client_ca_file);
	free(cfg->admin_mtls_scope);
	free(cfg->admin_auth);
	list_free(&cfg->admin_client_identities);
	free(cfg->admin_console_dir);
	free(cfg->registry_key_file);
	free(cfg->registry_ns);
	free(cfg->registry_tsig_file);
	free(cfg->registry_lookup_via);
	js_config_defaults(cfg);
}

int js_config_load(const char *path, struct js_config *out, char *err, size_t errlen)
{
	struct parse_ctx c;
	struct stat st;
	size_t i;
	int ret;

	memset(&c, 0, sizeof(c));
	c.path = path;
	c.err = err;
	c.errlen = errlen;
	js_config_defaults(&c.cfg);
	if (err != NULL && errlen > 0)
		err[0] = '\0';

	c.dir = dir_of(path);
	if (c.dir == NULL) {
		fail(&c, DJ_ENOMEM, 0, "out of memory");
		goto out;
	}
	c.fp = fopen(path, "r");
	if (c.fp == NULL) {
		ret = errno;
		fail(&c, ret == ENOENT ? DJ_ENOENT : ret == EACCES ? DJ_EACCES : DJ_EIO, 0,
		     "cannot open: %s", strerror(ret));
		goto out;
	}
	if (fstat(fileno(c.fp), &st) != 0 || !S_ISREG(st.st_mode)) {
		fail(&c, DJ_EIO, 0, "not a regular file");
		goto out;
	}
	/* whoever may write the configuration chooses the master key, the KEKs and the peers */
	if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0) {
		fail(&c, DJ_ECONFIG, 0, "has mode %04o, which lets group or others change it; "
		     "refused (chmod go-w %s)", (unsigned)(st.st_mode & 07777), path);
		goto out;
	}
	ret = ini_parse_stream(reader, &c, handler, &c);
	if (c.rc != DJ_EOK)
		goto out;
	if (ret == -2) {
		fail(&c, DJ_ENOMEM, 0, "out of memory");
		goto out;
	}
	if (ret != 0) {
		fail(&c, DJ_ECONFIG, ret, "syntax error: expected [section] or key = value");
		goto out;
	}
	for (i = 0; i < N_KEYS; i++)
		if (key_table[i].required && !c.seen[i]) {
			fail(&c, DJ_ECONFIG, 0, "[%s] %s: required key is missing",
			     key_table[i].section, key_table[i].name);
			goto out;
		}
	check_whole(&c);
	if (c.rc != DJ_EOK)
		goto out;
	*out = c.cfg;
	js_config_defaults(&c.cfg);	/* ownership moved to *out */
out:
	if (c.fp != NULL)
		fclose(c.fp);
	free(c.dir);
	free(c.peer_seen);
	free(c.sni_seen);
	js_config_free(&c.cfg);
	return c.rc;
}
