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
#include <unistd.h>

#include <cmocka.h>

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
	{ MINIMAL "[peer.ns1]\nidentity = ns1.test\nrole = ns\nsender_ids = 000013\n"
	  "plain_keys = yes\nasync_url = http://ns1.test:8443/\n",
	  ": [peer.ns1] async_url: 'http://ns1.test:8443/': expected https://HOST:PORT/PATH" },
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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_all_keys),
		cmocka_unit_test(test_bad_table),
		cmocka_unit_test(test_peers),
		cmocka_unit_test(test_long_line),
		cmocka_unit_test(test_missing_file),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
