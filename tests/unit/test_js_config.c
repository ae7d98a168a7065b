/*
 * test_js_config.c - the INI configuration: defaults, every key, and a table of bad files,
 * each refused with "FILE:LINE: [section] key: what is wrong".
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "common/dj_err.h"
#include "engine/js_config.h"
#include "store/js_store.h"

#define MINIMAL "[store]\npath = js.db\n[keys]\nmaster_key_file = master.key\n"

static char conf_path[512];
static char conf_dir[400];

/* write_conf - write \p text to the test's configuration file */
static void write_conf(const char *text)
{
	FILE *f = fopen(conf_path, "w");

	assert_non_null(f);
	fputs(text, f);
	assert_int_equal(fclose(f), 0);
}

/* setup - a configuration file name in the scratch directory */
static int setup(void **state)
{
	const char *dir = getenv("DJ_TEST_TMPDIR");

	(void)state;
	snprintf(conf_dir, sizeof(conf_dir), "%s", dir != NULL ? dir : "/tmp");
	snprintf(conf_path, sizeof(conf_path), "%s/test_js_config.conf", conf_dir);
	return 0;
}

/* teardown - remove the file */
static int teardown(void **state)
{
	(void)state;
	unlink(conf_path);
	return 0;
}

/* test_defaults - only the required keys: every other key has its documented default */
static void test_defaults(void **state)
{
	struct js_config cfg;
	char err[JS_CONFIG_ERR_MAX], want[600];
	static const uint8_t zero[LW_NETID_LEN];

	(void)state;
	write_conf("; comment\n# comment\n" MINIMAL);
	assert_int_equal(js_config_load(conf_path, &cfg, err, sizeof(err)), DJ_EOK);
	snprintf(want, sizeof(want), "%s/js.db", conf_dir);
	assert_string_equal(cfg.store_path, want);
	snprintf(want, sizeof(want), "%s/master.key", conf_dir);
	assert_string_equal(cfg.master_key_file, want);
	assert_int_equal(cfg.devnonce_history, JS_DEVNONCE_HIST_DEFAULT);
	assert_int_equal(cfg.devnonce_history, 1024);
	assert_int_equal(cfg.batch_max, 256);
	assert_memory_equal(cfg.net_id, zero, LW_NETID_LEN);
	assert_int_equal(cfg.session_lifetime, 86400);
	assert_int_equal(cfg.js_ownership, 0);	/* [js] ownership: off by default */
	js_config_free(&cfg);
	js_config_free(NULL);
}

/* test_all_keys - every key set, at its limits, absolute paths kept as they are */
static void test_all_keys(void **state)
{
	struct js_config cfg;
	char err[JS_CONFIG_ERR_MAX];

	(void)state;
	write_conf("\xef\xbb\xbf[store]\npath = /var/lib/danejoin/js.db\ndevnonce_history = 16\n"
		   "batch_max = 4096\n\n[keys]\nmaster_key_file = /etc/danejoin/master.key\n"
		   "[join]\nnet_id = 0x00C0fe\nsession_lifetime = 31536000  ; a year\n");
	assert_int_equal(js_config_load(conf_path, &cfg, err, sizeof(err)), DJ_EOK);
	assert_string_equal(cfg.store_path, "/var/lib/danejoin/js.db");
	assert_string_equal(cfg.master_key_file, "/etc/danejoin/master.key");
	assert_int_equal(cfg.devnonce_history, 16);
	assert_int_equal(cfg.batch_max, 4096);
	assert_int_equal(cfg.net_id[0], 0x00);
	assert_int_equal(cfg.net_id[1], 0xc0);
	assert_int_equal(cfg.net_id[2], 0xfe);
	assert_int_equal(cfg.session_lifetime, 31536000);
	js_config_free(&cfg);
}

struct bad_case {
	const char *text;
	const char *want;	/* the message after "FILE" */
};

/* bad_cases - each must be refused with exactly this message */
static const struct bad_case bad_cases[] = {
	{ MINIMAL "[store]\nbatch_maks = 3\n", ":6: [store] batch_maks: unknown key" },
	{ MINIMAL "[stor]\n", ":5: [stor]: unknown section" },
	{ "[stor]\npath = x\n" MINIMAL, ":1: [stor]: unknown section" },
	{ "path = x\n" MINIMAL, ":1: path: key outside any [section]" },
	{ MINIMAL "[store]\npath = y\n", ":6: [store] path: set twice (or continued on an "
	  "indented line)" },
	{ MINIMAL "[store]\ndevnonce_history = 15\n",
	  ":6: [store] devnonce_history: expected an integer from 16 to 4096" },
	{ MINIMAL "[store]\ndevnonce_history = 4097\n",
	  ":6: [store] devnonce_history: expected an integer from 16 to 4096" },
	{ MINIMAL "[store]\nbatch_max = 0\n", ":6: [store] batch_max: expected an integer from 1 "
	  "to 4096" },
	{ MINIMAL "[store]\nbatch_max = -1\n", ":6: [store] batch_max: expected an integer from 1 "
	  "to 4096" },
	{ MINIMAL "[store]\nbatch_max = 12k\n", ":6: [store] batch_max: expected an integer from "
	  "1 to 4096" },
	{ MINIMAL "[store]\nbatch_max =\n", ":6: [store] batch_max: expected an integer from 1 "
	  "to 4096" },
	{ MINIMAL "[join]\nsession_lifetime = 59\n", ":6: [join] session_lifetime: expected an "
	  "integer from 60 to 31536000" },
	{ MINIMAL "[join]\nsession_lifetime = 99999999999999999999999\n",
	  ":6: [join] session_lifetime: expected an integer from 60 to 31536000" },
	{ MINIMAL "[join]\nnet_id = 00000\n", ":6: [join] net_id: expected 6 hex digits" },
	{ MINIMAL "[join]\nnet_id = 0000000\n", ":6: [join] net_id: expected 6 hex digits" },
	{ MINIMAL "[join]\nnet_id = 00000g\n", ":6: [join] net_id: expected 6 hex digits" },
	{ MINIMAL "[keys]\nmaster_key_file =\n", ":6: [keys] master_key_file: set twice (or "
	  "continued on an indented line)" },
	{ "[store]\npath =\n", ":2: [store] path: expected a file name" },
	{ "[store]\npath = x\n", ": [keys] master_key_file: required key is missing" },
	{ "[keys]\nmaster_key_file = k\n", ": [store] path: required key is missing" },
	{ MINIMAL "this is not ini\n", ":5: syntax error: expected [section] or key = value" },
	{ MINIMAL "[join\n", ":5: syntax error: '[' without ']'" },
	{ MINIMAL "[join]\nnet_id = 000000\n  000001\n", ":7: [join] net_id: set twice (or "
	  "continued on an indented line)" },
	/* [listen], [js], [peer.NAME] */
	{ MINIMAL "[listen.sni.]\nnames = a.test\n", ":5: [listen.sni.]: unknown section" },
	{ MINIMAL "[listen.sni.j]\nnames = a.test\nkey_file = k\n",
	  ": [listen.sni.j] cert_file: required key is missing" },
	{ MINIMAL "[listen.sni.j]\nnames = a.test\ncert_file = c\nkey_file = k\nport = 1\n",
	  ":9: [listen.sni.j] port: unknown key" },
	{ MINIMAL "[listen.sni.j]\nnames = a..test\ncert_file = c\nkey_file = k\n",
	  ": [listen.sni.j] names: 'a..test': expected a host name or *.DOMAIN, without a "
	  "trailing dot" },
	{ MINIMAL "[listen.sni.j]\nnames = *.test\ncert_file = c\nkey_file = k\n",
	  ": [listen.sni.j] names: '*.test': expected a host name or *.DOMAIN, without a "
	  "trailing dot" },
	{ MINIMAL "[listen.sni.j]\nnames = a.test.\ncert_file = c\nkey_file = k\n",
	  ": [listen.sni.j] names: 'a.test.': expected a host name or *.DOMAIN, without a "
	  "trailing dot" },
	{ MINIMAL "[listen.sni.j]\nnames = a.test, *.b.test\ncert_file = c\nkey_file = k\n"
	  "[listen.sni.k]\nnames = A.test\ncert_file = c\nkey_file = k\n",
	  ": [listen.sni.k] names: 'A.test' is already served by [listen.sni.j]" },
	{ MINIMAL "[listen]\nmax_body = 10\n", ":6: [listen] max_body: expected an integer from "
	  "1024 to 16777216" },
	{ MINIMAL "[js]\njoin_euis = 70b3d57ed0000000/65\n", ": [js] join_euis: "
	  "'70b3d57ed0000000/65': expected 16 hex digits, optionally /BITS (0-64)" },
	{ MINIMAL "[js]\njoin_euis = 70b3d57ed000000\n", ": [js] join_euis: '70b3d57ed000000': "
	  "expected 16 hex digits, optionally /BITS (0-64)" },
	{ MINIMAL "[peer.]\nrole = ns\n", ":5: [peer.]: unknown section" },
	{ MINIMAL "[peer.a b]\nrole = ns\n", ":5: [peer.a b]: unknown section" },
	{ MINIMAL "[peer.ns1]\nrole = ns\nsender_ids = 000013\n",
	  ": [peer.ns1] identity: required key is missing" },
	{ MINIMAL "[peer.ns1]\nidentity = ns1.test\nrole = gw\nsender_ids = 000013\n",
	  ": [peer.ns1] role: expected ns or as, got 'gw'" },
	{ MINIMAL "[peer.ns1]\nidentity = ns1.test\nrole = ns\nsender_ids = 0013\n",
	  ": [peer.ns1] sender_ids: '0013': a network server's SenderID is a NetID of 6 hex "
	  "digits" },
	{ MINIMAL "[peer.ns1]\nidentity = ns1.test\nrole = ns\nsender_ids = 000013\n"
	  "kek_label = k\n", ": [peer.ns1] kek_label and kek_file: set both or neither" },
	{ MINIMAL "[peer.ns1]\nidentity = ns1.test\nrole = ns\nsender_ids = 000013\n"
	  "kek_label = k\nkek_file = k.key\nplain_keys = yes\n",
	  ": [peer.ns1] plain_keys = yes and a KEK: choose one" },
	{ MINIMAL "[peer.ns1]\nidentity = ns1.test\nrole = ns\nsender_ids = 000013\n"
	  "plain_keys = maybe\n", ":9: [peer.ns1] plain_keys: expected yes or no" },
	{ MINIMAL "[js]\nownership = enabled\n", ":6: [js] ownership: expected yes or no" },
	{ MINIMAL "[peer.as1]\nidentity = as1.test\nrole = as\nsender_ids = a\n"
	  "kek_label = k\nkek_file = k.key\nappskey_in_joinans = yes\n",
	  ": [peer.as1] appskey_in_joinans: only for a network server (role = ns); an "
	  "application server fetches its AppSKey with AppSKeyReq" },
	{ MINIMAL "[peer.ns1]\nidentity = ns1.test\nrole = ns\nsender_ids = 000013\n"
	  "plain_keys = yes\nappskey_in_joinans = yes\n",
	  ": [peer.ns1] appskey_in_joinans: needs kek_label and kek_file (the AppSKey never "
	  "leaves in plain)" },
	{ MINIMAL "[peer.ns1]\nidentity = ns1.test\nrole = ns\nsender_ids = 000013\n",
	  ": [peer.ns1]: needs kek_label and kek_file (or plain_keys = yes, explicitly) to "
	  "receive session keys" },
	{ MINIMAL "[peer.as1]\nidentity = as1.test\nrole = as\nsender_ids = a\nplain_keys = 1\n"
	  "join_euis = 0102\n", ": [peer.as1] join_euis: '0102': expected 16 hex digits, "
	  "optionally /BITS (0-64)" },
	{ MINIMAL "[peer.ns1]\nidentity = ns1.test\nrole = ns\nsender_ids = 000013\n"
	  "plain_keys = no\ncolour = red\n", ":10: [peer.ns1] colour: unknown key" },
	{ MINIMAL "[peer.a]\nidentity = x.test\nrole = as\nsender_ids = as1\nplain_keys = yes\n"
	  "[peer.b]\nidentity = x.test\nrole = as\nsender_ids = as2\nplain_keys = yes\n",
	  ": [peer.b] identity: 'x.test' is already the identity of [peer.a]" },
	{ MINIMAL "[peer.a]\nidentity = NS1.test\nrole = ns\nsender_ids = 000013\nplain_keys = 1\n"
	  "[peer.b]\nidentity = ns1.TEST\nrole = ns\nsender_ids = 000014\nplain_keys = 1\n",
	  ": [peer.b] identity: 'ns1.TEST' is already the identity of [peer.a] (identities are "
	  "DNS names: case does not count)" },
	{ MINIMAL "[peer.a]\nidentity = a.test\nrole = ns\nsender_ids = 000013\nkek_file = k\n"
	  "kek_label = tab\there\n", ": [peer.a] kek_label: printable ASCII characters only" },
	/* addresses: HOST:PORT, PORT 1-65535 (what the listener binds) */
	{ MINIMAL "[listen]\naddress = 127.0.0.1\n", ":6: [listen] address: '127.0.0.1': expected "
	  "HOST:PORT or [IPv6]:PORT with PORT from 1 to 65535" },
	{ MINIMAL "[listen]\naddress = 127.0.0.1:99999\n", ":6: [listen] address: "
	  "'127.0.0.1:99999': expected HOST:PORT or [IPv6]:PORT with PORT from 1 to 65535" },
	{ MINIMAL "[listen]\naddress = ::1:443\n", ":6: [listen] address: '::1:443': expected "
	  "HOST:PORT or [IPv6]:PORT with PORT from 1 to 65535" },
	{ MINIMAL "[listen]\nmetrics_address = on\n", ":6: [listen] metrics_address: 'on': "
	  "expected HOST:PORT or [IPv6]:PORT with PORT from 1 to 65535, or off" },
	{ MINIMAL "[peer.ns1]\nidentity = ns1.test\nrole = ns\nsender_ids = 000013\n"
	  "plain_keys = yes\nasync_url = http://ns1.test:8443/\n",
	  ": [peer.ns1] async_url: 'http://ns1.test:8443/': expected https://HOST:PORT/PATH" },
	/* [admin] mTLS: pkix (client_ca_file) or dane (client_identities), never both */
	{ MINIMAL "[admin]\nauth = tofu\n", ": [admin] auth: expected pkix or dane, got 'tofu'" },
	{ MINIMAL "[admin]\nmtls_scope = root\n",
	  ": [admin] mtls_scope: expected read, operate or admin, got 'root'" },
	{ MINIMAL "[admin]\nauth = pkix\n", ": [admin] client_ca_file: required with auth = pkix" },
	{ MINIMAL "[admin]\nauth = pkix\nclient_ca_file = ca.crt\n"
	  "client_identities = _admin-client.a.test\n",
	  ": [admin] client_identities: only used with auth = dane (auth = pkix takes "
	  "client_ca_file)" },
	{ MINIMAL "[admin]\nauth = dane\n", ": [admin] client_identities: required with auth = "
	  "dane (the _admin-client.HOST names whose TLSA records admit a client)" },
	{ MINIMAL "[admin]\nclient_identities = _admin-client.a.test\nclient_ca_file = ca.crt\n",
	  ": [admin] client_ca_file: not used with auth = dane (the identities' TLSA records "
	  "decide; there is no fallback to a CA file)" },
	{ MINIMAL "[listen]\nauth = pkix\n[admin]\nauth = dane\n"
	  "client_identities = _admin-client.a.test\n", ": [admin] auth = dane needs [listen] "
	  "auth = dane (the TLSA records are read through the [dane] resolver)" },
	{ MINIMAL "[admin]\nclient_identities = _admin-client.a.test, ops.b.test\n",
	  ": [admin] client_identities: 'ops.b.test': expected _admin-client.HOST" },
	{ MINIMAL "[admin]\nclient_identities = _admin-client.\n",
	  ": [admin] client_identities: '_admin-client.': expected _admin-client.HOST" },
	/* [registry]: key_file, ns and tsig_file together; IP[@PORT]; a DNSSEC trust anchor */
	{ MINIMAL "[registry]\nkey_file = r.key\ntsig_file = t.key\n", ": [registry] key_file, "
	  "ns and tsig_file: set all three (transfers by auth code) or none" },
	{ MINIMAL "[registry]\nkey_file = r.key\nns = ns.test@53\ntsig_file = t.key\n",
	  ": [registry] ns: 'ns.test@53': expected IP[@PORT]" },
	{ MINIMAL "[registry]\nkey_file = r.key\nns = 127.0.0.1@0\ntsig_file = t.key\n",
	  ": [registry] ns: '127.0.0.1@0': expected IP[@PORT]" },
	{ MINIMAL "[registry]\nkey_file = r.key\nns = 127.0.0.1@53\ntsig_file = t.key\n",
	  ": [registry] needs a DNSSEC trust anchor for the _owner keys: [dane] trust_anchor_file, "
	  "auto_trust_anchor_file or root_anchor = yes" },
};

/* test_peers - [listen], [js] and two [peer.NAME] sections, read back */
static void test_peers(void **state)
{
	struct js_config cfg;
	char err[JS_CONFIG_ERR_MAX];

	(void)state;
	write_conf(MINIMAL "[listen]\naddress = 127.0.0.1:4430\ncert_file = js.crt\n"
		   "[js]\njoin_euis = 70b3d57ed0000000/32, 0000000000000001\nhome_net_id = 000013\n"
		   "ownership = on\n"
		   "[peer.ns1]\nidentity = ns1.test\nrole = ns\nsender_ids = 000013 000014\n"
		   "ns_ids = ns1\nkek_label = ns1-kek\nkek_file = ns1.kek\nrate = 100\n"
		   "async_url = https://ns1.test:8443/bi\n"
		   "[peer.as1]\nidentity = as1.test\nrole = as\nsender_ids = as-1\n"
		   "plain_keys = yes\n");
	assert_int_equal(js_config_load(conf_path, &cfg, err, sizeof(err)), DJ_EOK);
	assert_string_equal(cfg.listen_address, "127.0.0.1:4430");
	assert_non_null(strstr(cfg.cert_file, "/js.crt"));
	assert_int_equal(cfg.max_body, JS_CONFIG_MAX_BODY_DEFAULT);
	assert_int_equal(cfg.join_euis.n, 2);
	assert_string_equal(cfg.join_euis.v[1], "0000000000000001");
	assert_int_equal(cfg.home_net_id[2], 0x13);
	assert_int_equal(cfg.js_ownership, 1);
	assert_int_equal(cfg.n_peers, 2);
	assert_string_equal(cfg.peers[0].name, "ns1");
	assert_string_equal(cfg.peers[0].identity, "ns1.test");
	assert_int_equal(cfg.peers[0].sender_ids.n, 2);
	assert_string_equal(cfg.peers[0].sender_ids.v[1], "000014");
	assert_string_equal(cfg.peers[0].kek_label, "ns1-kek");
	assert_non_null(strstr(cfg.peers[0].kek_file, "/ns1.kek"));
	assert_int_equal(cfg.peers[0].rate, 100);
	assert_int_equal(cfg.peers[0].plain_keys, 0);
	assert_string_equal(cfg.peers[0].async_url, "https://ns1.test:8443/bi");
	assert_null(cfg.peers[1].async_url);
	assert_string_equal(cfg.peers[1].role, "as");
	assert_int_equal(cfg.peers[1].plain_keys, 1);
	js_config_free(&cfg);
}

/* test_bad_table - every bad file gives its message and leaves the output untouched */
static void test_bad_table(void **state)
{
	struct js_config cfg;
	char err[JS_CONFIG_ERR_MAX], want[1024];
	size_t i;
	int rc;

	(void)state;
	for (i = 0; i < DJ_ARRAY_LEN(bad_cases); i++) {
		write_conf(bad_cases[i].text);
		memset(&cfg, 0x5a, sizeof(cfg));
		rc = js_config_load(conf_path, &cfg, err, sizeof(err));
		snprintf(want, sizeof(want), "%s%s", conf_path, bad_cases[i].want);
		if (rc != DJ_ECONFIG || strcmp(err, want) != 0)
			fail_msg("case %zu: rc %d, message \"%s\", want \"%s\"", i, rc, err, want);
		assert_int_equal(cfg.batch_max, 0x5a5a5a5a);	/* untouched */
	}
}

/* test_long_line - a line longer than the parser's buffer is refused, not split */
static void test_long_line(void **state)
{
	struct js_config cfg;
	char err[JS_CONFIG_ERR_MAX], text[2048];

	(void)state;
	snprintf(text, sizeof(text), MINIMAL "[store]\n; %01500d\n", 0);
	write_conf(text);
	assert_int_equal(js_config_load(conf_path, &cfg, err, sizeof(err)), DJ_ECONFIG);
	assert_non_null(strstr(err, ":6: line longer than"));
}

/* test_missing_file - a missing file is DJ_ENOENT with a message */
static void test_missing_file(void **state)
{
	struct js_config cfg;
	char err[JS_CONFIG_ERR_MAX], want[600];

	(void)state;
	unlink(conf_path);
	assert_int_equal(js_config_load(conf_path, &cfg, err, sizeof(err)), DJ_ENOENT);
	snprintf(want, sizeof(want), "%s: cannot open: No such file or directory", conf_path);
	assert_string_equal(err, want);
}

/* write_bytes - write \p n bytes (NULs included) to the configuration file */
static void write_bytes(const char *b, size_t n)
{
	FILE *f = fopen(conf_path, "w");

	assert_non_null(f);
	assert_int_equal(fwrite(b, 1, n, f), n);
	assert_int_equal(fclose(f), 0);
}

/* test_nul_byte - a NUL byte is named as one, with its line, not as a long line */
static void test_nul_byte(void **state)
{
	static const char text[] = MINIMAL "; a\0b\n[join]\n";
	struct js_config cfg;
	char err[JS_CONFIG_ERR_MAX], want[600];

	(void)state;
	write_bytes(text, sizeof(text) - 1);
	assert_int_equal(js_config_load(conf_path, &cfg, err, sizeof(err)), DJ_ECONFIG);
	snprintf(want, sizeof(want), "%s:5: NUL byte at line 5 (a configuration is text)",
		 conf_path);
	assert_string_equal(err, want);
	write_bytes("\0", 1);
	assert_int_equal(js_config_load(conf_path, &cfg, err, sizeof(err)), DJ_ECONFIG);
	assert_non_null(strstr(err, ":1: NUL byte at line 1"));
}

/* test_kek_label_long - a label longer than a KEKLabel may be is a configuration error naming
 * the key and the limit (it used to reach bi_kek_new() and end as an internal error) */
static void test_kek_label_long(void **state)
{
	struct js_config cfg;
	char err[JS_CONFIG_ERR_MAX], text[1024], label[151], want[600];

	(void)state;
	memset(label, 'L', 150);
	label[150] = '\0';
	snprintf(text, sizeof(text), MINIMAL "[peer.ns1]\nidentity = ns1.test\nrole = ns\n"
		 "sender_ids = 000013\nkek_file = k\nkek_label = %s\n", label);
	write_conf(text);
	assert_int_equal(js_config_load(conf_path, &cfg, err, sizeof(err)), DJ_ECONFIG);
	snprintf(want, sizeof(want), "%s: [peer.ns1] kek_label: 150 characters, at most %d",
		 conf_path, JS_CONFIG_KEK_LABEL_MAX);
	assert_string_equal(err, want);
	label[JS_CONFIG_KEK_LABEL_MAX] = '\0';	/* the longest accepted */
	snprintf(text, sizeof(text), MINIMAL "[peer.ns1]\nidentity = ns1.test\nrole = ns\n"
		 "sender_ids = 000013\nkek_file = k\nkek_label = %s\n", label);
	write_conf(text);
	assert_int_equal(js_config_load(conf_path, &cfg, err, sizeof(err)), DJ_EOK);
	js_config_free(&cfg);
}

/* test_conf_mode - a configuration writable by group or others is refused; 0644 is fine */
static void test_conf_mode(void **state)
{
	static const unsigned bad[] = { 0666, 0664, 0646, 0620 };
	struct js_config cfg;
	char err[JS_CONFIG_ERR_MAX], want[1200];

	(void)state;
	write_conf(MINIMAL);
	for (size_t i = 0; i < DJ_ARRAY_LEN(bad); i++) {
		assert_int_equal(chmod(conf_path, bad[i]), 0);
		assert_int_equal(js_config_load(conf_path, &cfg, err, sizeof(err)), DJ_ECONFIG);
		snprintf(want, sizeof(want), "%s: has mode %04o, which lets group or others change "
			 "it; refused (chmod go-w %s)", conf_path, bad[i], conf_path);
		assert_string_equal(err, want);
	}
	assert_int_equal(chmod(conf_path, 0644), 0);
	assert_int_equal(js_config_load(conf_path, &cfg, err, sizeof(err)), DJ_EOK);
	js_config_free(&cfg);
}

/* load_text - load the text; the return code, the message in err */
static int load_text(const char *text, struct js_config *cfg, char *err, size_t errlen)
{
	write_conf(text);
	return js_config_load(conf_path, cfg, err, errlen);
}

/* test_store_backend - [store] backend = sqlite | postgresql, conninfo, passfile (issue 13) */
static void test_store_backend(void **state)
{
	struct js_config cfg;
	char err[JS_CONFIG_ERR_MAX], pf[600], text[1400];
	FILE *f;

	(void)state;
	/* PostgreSQL: conninfo required, path refused, no password, a printable name */
	assert_int_equal(load_text("[store]\nbackend = postgresql\nconninfo = host=/tmp dbname=dj "
				   "target_session_attrs=read-write\n[keys]\nmaster_key_file = m\n",
				   &cfg, err, sizeof(err)), DJ_EOK);
	assert_string_equal(cfg.store_conninfo, "host=/tmp dbname=dj target_session_attrs=read-write");
	assert_string_equal(cfg.store_path, JS_CONFIG_PG_STORE_NAME);
	js_config_free(&cfg);
	assert_int_equal(load_text("[store]\nbackend = postgresql\n[keys]\nmaster_key_file = m\n",
				   &cfg, err, sizeof(err)), DJ_ECONFIG);
	assert_non_null(strstr(err, "[store] conninfo: required with backend = postgresql"));
	assert_int_equal(load_text("[store]\nbackend = postgresql\nconninfo = dbname=dj\npath = x\n"
				   "[keys]\nmaster_key_file = m\n", &cfg, err, sizeof(err)),
			 DJ_ECONFIG);
	assert_non_null(strstr(err, "[store] path: not used with backend = postgresql"));
	assert_int_equal(load_text("[store]\nbackend = postgresql\nconninfo = dbname=dj "
				   "password=hunter2\n[keys]\nmaster_key_file = m\n", &cfg, err,
				   sizeof(err)), DJ_ECONFIG);
	assert_non_null(strstr(err, "a password in the configuration file is refused"));
	assert_null(strstr(err, "hunter2"));
	assert_int_equal(load_text("[store]\nbackend = postgresql\nconninfo = postgresql://u:hunter2@h/dj\n"
				   "[keys]\nmaster_key_file = m\n", &cfg, err, sizeof(err)),
			 DJ_ECONFIG);
	assert_null(strstr(err, "hunter2"));
	assert_int_equal(load_text("[store]\nbackend = postgresql\nconninfo = dbname='dj\n"
				   "[keys]\nmaster_key_file = m\n", &cfg, err, sizeof(err)),
			 DJ_ECONFIG);
	assert_non_null(strstr(err, "[store] conninfo: not a libpq connection string"));
	assert_int_equal(load_text("[store]\nbackend = mysql\npath = x\n[keys]\nmaster_key_file = m\n",
				   &cfg, err, sizeof(err)), DJ_ECONFIG);
	assert_non_null(strstr(err, "[store] backend: expected sqlite or postgresql, got 'mysql'"));
	/* SQLite: path required, no conninfo */
	assert_int_equal(load_text("[store]\nbackend = sqlite\n[keys]\nmaster_key_file = m\n",
				   &cfg, err, sizeof(err)), DJ_ECONFIG);
	assert_non_null(strstr(err, "[store] path: required key is missing"));
	assert_int_equal(load_text("[store]\npath = x\nconninfo = dbname=dj\n"
				   "[keys]\nmaster_key_file = m\n", &cfg, err, sizeof(err)),
			 DJ_ECONFIG);
	assert_non_null(strstr(err, "only with backend = postgresql"));
	/* passfile: 0600 or refused; appended to the conninfo */
	snprintf(pf, sizeof(pf), "%s/test_js_config.pgpass", conf_dir);
	f = fopen(pf, "w");
	assert_non_null(f);
	fputs("*:*:*:*:hunter2\n", f);
	assert_int_equal(fclose(f), 0);
	snprintf(text, sizeof(text), "[store]\nbackend = postgresql\nconninfo = dbname=dj\n"
		 "passfile = %s\n[keys]\nmaster_key_file = m\n", pf);
	assert_int_equal(chmod(pf, 0640), 0);
	assert_int_equal(load_text(text, &cfg, err, sizeof(err)), DJ_ECONFIG);
	assert_non_null(strstr(err, "must be a regular file of mode 0600 (mode 0640 refused"));
	assert_int_equal(chmod(pf, 0600), 0);
	assert_int_equal(load_text(text, &cfg, err, sizeof(err)), DJ_EOK);
	assert_non_null(strstr(cfg.store_conninfo, "dbname=dj passfile='"));
	assert_string_equal(cfg.store_passfile, pf);
	js_config_free(&cfg);
	unlink(pf);
	assert_int_equal(load_text(text, &cfg, err, sizeof(err)), DJ_ECONFIG);	/* missing */
	assert_non_null(strstr(err, "[store] passfile"));
}

/* test_hostport - the address parser shared by the keys and the listener */
static void test_hostport(void **state)
{
	static const struct {
		const char *in, *host;
		unsigned port;
	} good[] = {
		{ "127.0.0.1:443", "127.0.0.1", 443 }, { "[::1]:8443", "::1", 8443 },
		{ "js.example.net:1", "js.example.net", 1 }, { "0.0.0.0:65535", "0.0.0.0", 65535 },
		{ "h:00080", "h", 80 },
	};
	static const char *const bad[] = {
		"127.0.0.1", "127.0.0.1:", ":443", "127.0.0.1:0", "127.0.0.1:65536",
		"127.0.0.1:99999", "127.0.0.1:-1", "127.0.0.1:+1", "127.0.0.1:44 3", "::1:443",
		"[::1]443", "[::1", "[]:443", "a b:443", "h:99999999999999999999999",
	};
	char host[JS_CONFIG_HOST_MAX], big[JS_CONFIG_HOST_MAX + 8];
	unsigned port;

	(void)state;
	for (size_t i = 0; i < DJ_ARRAY_LEN(good); i++) {
		assert_int_equal(js_config_hostport(good[i].in, host, sizeof(host), &port), DJ_EOK);
		assert_string_equal(host, good[i].host);
		assert_int_equal(port, good[i].port);
	}
	for (size_t i = 0; i < DJ_ARRAY_LEN(bad); i++)
		if (js_config_hostport(bad[i], host, sizeof(host), &port) != DJ_EMALFORMED)
			fail_msg("'%s' accepted", bad[i]);
	memset(big, 'h', JS_CONFIG_HOST_MAX);
	snprintf(big + JS_CONFIG_HOST_MAX, 8, ":80");
	assert_int_equal(js_config_hostport(big, NULL, 0, NULL), DJ_EMALFORMED);
	assert_int_equal(js_config_hostport(NULL, NULL, 0, NULL), DJ_EMALFORMED);
}

/* ---- js_config_check_files: the files a configuration names ---------------------------- */

static char fdir[440];

/* fpath - a file of the scratch directory */
static const char *fpath(const char *name)
{
	static char p[4][600];
	static unsigned k;

	k = (k + 1) % 4;
	snprintf(p[k], sizeof(p[k]), "%s/%s", fdir, name);
	return p[k];
}

/* put - write \p text to the scratch file \p name with \p mode */
static void put(const char *name, const char *text, mode_t mode)
{
	FILE *f;

	unlink(fpath(name));
	f = fopen(fpath(name), "w");
	assert_non_null(f);
	fputs(text, f);
	assert_int_equal(fclose(f), 0);
	assert_int_equal(chmod(fpath(name), mode), 0);
}

/* make_pair - an EC P-256 key (mode 0600) and, when \p crt, a self-signed certificate of it */
static void make_pair(const char *key, const char *crt)
{
	EVP_PKEY *pk = EVP_EC_gen("P-256");
	X509 *x = X509_new();
	FILE *f;

	assert_non_null(pk);
	assert_non_null(x);
	unlink(fpath(key));
	f = fopen(fpath(key), "w");
	assert_non_null(f);
	assert_int_equal(PEM_write_PrivateKey(f, pk, NULL, NULL, 0, NULL, NULL), 1);
	fclose(f);
	assert_int_equal(chmod(fpath(key), 0600), 0);
	if (crt != NULL) {
		ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
		X509_gmtime_adj(X509_getm_notBefore(x), 0);
		X509_gmtime_adj(X509_getm_notAfter(x), 3600);
		X509_set_pubkey(x, pk);
		X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
					   (const unsigned char *)"js.test", -1, -1, 0);
		X509_set_issuer_name(x, X509_get_subject_name(x));
		assert_true(X509_sign(x, pk, EVP_sha256()) > 0);
		f = fopen(fpath(crt), "w");
		assert_non_null(f);
		assert_int_equal(PEM_write_X509(f, x), 1);
		fclose(f);
	}
	X509_free(x);
	EVP_PKEY_free(pk);
}

/* check_case - load a configuration naming the scratch files, check them: rc and message */
static void check_case(const char *extra, int want_rc, const char *want)
{
	struct js_config cfg;
	char err[JS_CONFIG_ERR_MAX], text[4600];
	int rc;

	snprintf(text, sizeof(text), "[store]\npath = js.db\n[keys]\nmaster_key_file = %s\n"
		 "[listen]\naddress = 127.0.0.1:4430\ncert_file = %s\nkey_file = %s\n"
		 "[peer.ns1]\nidentity = ns1.test\nrole = ns\nsender_ids = 000013\n"
		 "kek_label = ns1-kek\nkek_file = %s\n%s", fpath("master.key"), fpath("js.crt"),
		 fpath("js.key"), fpath("ns1.kek"), extra);
	write_conf(text);
	if (js_config_load(conf_path, &cfg, err, sizeof(err)) != DJ_EOK)
		fail_msg("load: %s", err);
	err[0] = '\0';
	rc = js_config_check_files(conf_path, &cfg, err, sizeof(err));
	js_config_free(&cfg);
	if (rc != want_rc || (want != NULL && strstr(err, want) == NULL))
		fail_msg("rc %d, message \"%s\"; want %d, \"%s\"", rc, err, want_rc,
			 want != NULL ? want : "");
}

/* test_check_files - each file fault refused with its own message; the good set passes */
static void test_check_files(void **state)
{
	static const char master[] =
		"000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\n";
	char want[1200], extra[2200];

	(void)state;
	snprintf(fdir, sizeof(fdir), "%s/test_js_config.d", conf_dir);
	mkdir(fdir, 0700);
	put("master.key", master, 0600);
	put("ns1.kek", "00112233445566778899aabbccddeeff\n", 0600);
	make_pair("js.key", "js.crt");
	make_pair("other.key", NULL);
	check_case("", DJ_EOK, NULL);

	/* the master key: a symbolic link is called one, not a mode */
	unlink(fpath("link.key"));
	assert_int_equal(symlink(fpath("master.key"), fpath("link.key")), 0);
	rename(fpath("master.key"), fpath("real.key"));
	assert_int_equal(symlink(fpath("real.key"), fpath("master.key")), 0);
	snprintf(want, sizeof(want), ": [keys] master_key_file %s: is a symbolic link; refused",
		 fpath("master.key"));
	check_case("", DJ_EFILEMODE, want);
	unlink(fpath("master.key"));
	rename(fpath("real.key"), fpath("master.key"));
	chmod(fpath("master.key"), 0640);
	check_case("", DJ_EFILEMODE, "master.key: has mode 0640, which gives group or others access");
	put("master.key", "not a key\n", 0600);
	check_case("", DJ_ECONFIG, "master.key: does not hold a master key");
	put("master.key", master, 0600);

	/* the certificate and its key */
	rename(fpath("js.crt"), fpath("js.crt.away"));
	check_case("", DJ_ENOENT, "[listen] cert_file");
	check_case("", DJ_ENOENT, "js.crt: does not exist");
	rename(fpath("js.crt.away"), fpath("js.crt"));
	rename(fpath("js.key"), fpath("js.key.away"));
	rename(fpath("other.key"), fpath("js.key"));
	snprintf(want, sizeof(want), "[listen] key_file %s: does not match [listen] cert_file %s",
		 fpath("js.key"), fpath("js.crt"));
	check_case("", DJ_ECONFIG, want);
	rename(fpath("js.key"), fpath("other.key"));
	rename(fpath("js.key.away"), fpath("js.key"));
	chmod(fpath("js.key"), 0644);
	check_case("", DJ_EFILEMODE, "[listen] key_file");
	check_case("", DJ_EFILEMODE, "js.key: has mode 0644, which gives group or others access; "
		   "refused (chmod 600");
	chmod(fpath("js.key"), 0600);
	put("garbage.crt", "-----BEGIN CERTIFICATE-----\nAAAA\n", 0644);
	snprintf(extra, sizeof(extra), "[listen]\nclient_ca_file = %s\n", fpath("garbage.crt"));
	check_case(extra, DJ_ECONFIG, "garbage.crt: no PEM certificate");

	/* KEKs */
	chmod(fpath("ns1.kek"), 0604);
	check_case("", DJ_EFILEMODE, "[peer.ns1] kek_file");
	check_case("", DJ_EFILEMODE, "ns1.kek: has mode 0604");
	put("ns1.kek", "0011\n", 0600);
	check_case("", DJ_ECONFIG, "ns1.kek: expected 32 or 64 hex digits");
	put("ns1.kek", "00112233445566778899aabbccddeeff\n", 0600);

	/* [mqtt]: its CA file, and its client key like ours */
	check_case("[mqtt]\nhost = broker\ncafile = nowhere.crt\n", DJ_ENOENT,
		   "[mqtt] cafile");
	snprintf(extra, sizeof(extra), "[mqtt]\nhost = broker\ncafile = %s\ncert = %s\nkey = %s\n",
		 fpath("js.crt"), fpath("js.crt"), fpath("other.key"));
	check_case(extra, DJ_ECONFIG, "[mqtt] key");
	snprintf(extra, sizeof(extra), "[mqtt]\nhost = broker\ncafile = %s\ncert = %s\nkey = %s\n",
		 fpath("js.crt"), fpath("js.crt"), fpath("js.key"));
	check_case(extra, DJ_EOK, NULL);

	/* [admin]: its own pair (both or neither) and its client roots, like [listen]'s */
	snprintf(extra, sizeof(extra), "[admin]\naddress = 127.0.0.1:8443\ncert_file = %s\n",
		 fpath("js.crt"));
	check_case(extra, DJ_ECONFIG, "[admin] cert_file and key_file: set both or neither");
	snprintf(extra, sizeof(extra), "[admin]\naddress = 127.0.0.1:8443\ncert_file = %s\n"
		 "key_file = %s\n", fpath("js.crt"), fpath("other.key"));
	snprintf(want, sizeof(want), "[admin] key_file %s: does not match [admin] cert_file %s",
		 fpath("other.key"), fpath("js.crt"));
	check_case(extra, DJ_ECONFIG, want);
	snprintf(extra, sizeof(extra), "[admin]\naddress = 127.0.0.1:8443\nclient_ca_file = %s\n",
		 fpath("garbage.crt"));
	check_case(extra, DJ_ECONFIG, "[admin] client_ca_file");
	snprintf(extra, sizeof(extra), "[admin]\naddress = 127.0.0.1:8443\ncert_file = %s\n"
		 "key_file = %s\nclient_ca_file = %s\n", fpath("js.crt"), fpath("js.key"),
		 fpath("js.crt"));
	check_case(extra, DJ_EOK, NULL);
	check_case("", DJ_EOK, NULL);
	for (const char *const *f = (const char *const[]){ "master.key", "ns1.kek", "js.key",
		"js.crt", "other.key", "link.key", "garbage.crt", NULL }; *f != NULL; f++)
		unlink(fpath(*f));
	rmdir(fdir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_all_keys),
		cmocka_unit_test(test_bad_table),
		cmocka_unit_test(test_peers),
		cmocka_unit_test(test_long_line),
		cmocka_unit_test(test_missing_file),
		cmocka_unit_test(test_nul_byte),
		cmocka_unit_test(test_kek_label_long),
		cmocka_unit_test(test_conf_mode),
		cmocka_unit_test(test_hostport),
		cmocka_unit_test(test_store_backend),
		cmocka_unit_test(test_check_files),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
