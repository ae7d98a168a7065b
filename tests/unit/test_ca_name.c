/*
 * test_ca_name.c - ca-tools: DNS name checks and DANE owner names (ca_name), TLSA data
 * formatting (ca_tlsa), and the rollover state file (ca_roll): round trip, atomic rewrite,
 * refusal of malformed files, and the lock.
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

#include "ca-tools/ca_joineui.h"
#include "ca-tools/ca_name.h"
#include "ca-tools/ca_roll.h"
#include "ca-tools/ca_tlsa.h"
#include "common/dj_err.h"
#include "dj_test.h"

/* rep - a string of n copies of c (static buffer) */
static const char *rep(char c, size_t n, const char *suffix)
{
	static char buf[600];

	memset(buf, c, n);
	snprintf(buf + n, sizeof(buf) - n, "%s", suffix);
	return buf;
}

/* test_joineui_names - JoinEUI prefixes to the names ChirpStack's lookup asks for */
static void test_joineui_names(void **state)
{
	static const struct {
		const char *prefix;
		int rc;
		size_t n;
		const char *first, *last;
	} table[] = {
		{ "70b3d57ed0000001", DJ_EOK, 1, "1.0.0.0.0.0.0.d.e.7.5.d.3.b.0.7.j.test.", NULL },
		{ "70B3D57ED0000001/64", DJ_EOK, 1, "1.0.0.0.0.0.0.d.e.7.5.d.3.b.0.7.j.test.", NULL },
		{ "70b3d57ed0000000/62", DJ_EOK, 4, "0.0.0.0.0.0.0.d.e.7.5.d.3.b.0.7.j.test.",
		  "3.0.0.0.0.0.0.d.e.7.5.d.3.b.0.7.j.test." },
		{ "70b3d57ed0000000/60", DJ_EOK, 1, "*.0.0.0.0.0.0.d.e.7.5.d.3.b.0.7.j.test.", NULL },
		{ "70b3d57ed0000000/56", DJ_EOK, 16, "*.0.0.0.0.0.0.d.e.7.5.d.3.b.0.7.j.test.",
		  "*.f.0.0.0.0.0.d.e.7.5.d.3.b.0.7.j.test." },
		{ "70b3d57ed0000000/52", DJ_EOK, 256, "*.0.0.0.0.0.0.d.e.7.5.d.3.b.0.7.j.test.",
		  "*.f.f.0.0.0.0.d.e.7.5.d.3.b.0.7.j.test." },
		{ "70b3d57ed0000000/51", DJ_ERANGE, 0, NULL, NULL },
		{ "70b3d57ed0000000/0", DJ_ERANGE, 0, NULL, NULL },
		{ "70b3d57ed0000000/65", DJ_ERANGE, 0, NULL, NULL },
		{ "70b3d57ed0000001/60", DJ_EMALFORMED, 0, NULL, NULL },
		{ "70b3d57ed000000", DJ_EMALFORMED, 0, NULL, NULL },
		{ "70b3d57ed000000g", DJ_EMALFORMED, 0, NULL, NULL },
		{ "70b3d57ed0000000/6x", DJ_EMALFORMED, 0, NULL, NULL },
		{ "70b3d57ed0000000/", DJ_EMALFORMED, 0, NULL, NULL },
	};
	struct ca_joineui_names n;
	char err[256];

	(void)state;
	for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
		memset(&n, 0, sizeof(n));
		assert_int_equal(ca_joineui_names(table[i].prefix, "j.test", &n, err, sizeof(err)),
				 table[i].rc);
		if (table[i].rc != DJ_EOK) {
			assert_non_null(strstr(err, table[i].prefix));
			continue;
		}
		assert_int_equal(n.n, table[i].n);
		assert_string_equal(n.v[0], table[i].first);
		if (table[i].last != NULL)
			assert_string_equal(n.v[n.n - 1], table[i].last);
		ca_joineui_names_clear(&n);
	}
	/* a suffix that makes the names too long, or is not a name */
	{
		char longsuf[300] = "";

		for (int k = 0; k < 4; k++)	/* 4 x 55 + 4 + 32 > CA_NAME_MAX */
			strcat(strcat(longsuf, rep('a', 55, "")), ".");
		strcat(longsuf, "test");
		assert_int_equal(ca_joineui_names("70b3d57ed0000001", longsuf, &n, err,
						  sizeof(err)), DJ_EMALFORMED);
	}
	assert_int_equal(ca_joineui_names("70b3d57ed0000001", "a..b", &n, err, sizeof(err)),
			 DJ_EMALFORMED);
}

static void test_name_check_table(void **state)
{
	static const struct {
		const char *name;
		int rc;
	} table[] = {
		{ "js.lorawan.test", DJ_EOK },
		{ "js.lorawan.test.", DJ_EOK },
		{ "_ns-client.ns1.example.net", DJ_EOK },
		{ "_443._tcp.js.example.net.", DJ_EOK },
		{ "70b3d57ed0001234._device.lorawan.test", DJ_EOK },
		/* a JoinEUI in reversed nibbles: 16 labels plus the suffix */
		{ "0.0.0.0.0.0.0.0.1.0.0.0.0.0.0.7.joineuis.lorawan.test.", DJ_EOK },
		{ "", DJ_EMALFORMED },
		{ "a..b", DJ_EMALFORMED },
		{ ".a", DJ_EMALFORMED },
		{ "a b.test", DJ_EMALFORMED },
		{ "a*.test", DJ_EMALFORMED },
		{ "a.test..", DJ_EMALFORMED },
	};
	char err[160];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(table) / sizeof(table[0]); i++)
		assert_int_equal(ca_name_check(table[i].name, err, sizeof(err)), table[i].rc);
}

static void test_name_limits(void **state)
{
	char name[400], err[160];

	(void)state;
	assert_int_equal(ca_name_check(rep('a', 63, ".test"), err, sizeof(err)), DJ_EOK);
	assert_int_equal(ca_name_check(rep('a', 64, ".test"), err, sizeof(err)), DJ_EMALFORMED);
	assert_non_null(strstr(err, "64 characters"));
	/* 4 x 63 + 1 = 253 characters: the longest name; one more is too long */
	memset(name, 0, sizeof(name));
	memset(name, 'a', 63);
	name[63] = '.';
	memset(name + 64, 'b', 63);
	name[127] = '.';
	memset(name + 128, 'c', 63);
	name[191] = '.';
	memset(name + 192, 'd', 61);
	assert_int_equal(strlen(name), 253);
	assert_int_equal(ca_name_check(name, err, sizeof(err)), DJ_EOK);
	strcat(name, ".");
	assert_int_equal(ca_name_check(name, err, sizeof(err)), DJ_EOK);
	name[253] = 'x';
	assert_int_equal(ca_name_check(name, err, sizeof(err)), DJ_EMALFORMED);
	assert_non_null(strstr(err, "at most 253"));
}

static void test_owner_names(void **state)
{
	char out[CA_NAME_BUF], err[160];

	(void)state;
	assert_int_equal(ca_name_server("js.example.net", 443, out, err, sizeof(err)), DJ_EOK);
	assert_string_equal(out, "_443._tcp.js.example.net.");
	assert_int_equal(ca_name_server("js.example.net.", 0, out, err, sizeof(err)), DJ_ERANGE);
	assert_int_equal(ca_name_client("ns", "ns1.example.net", out, err, sizeof(err)), DJ_EOK);
	assert_string_equal(out, "_ns-client.ns1.example.net.");
	assert_int_equal(ca_name_client("as", "as1.example.net.", out, err, sizeof(err)), DJ_EOK);
	assert_string_equal(out, "_as-client.as1.example.net.");
	assert_int_equal(ca_name_client("js", "x.test", out, err, sizeof(err)), DJ_EINVAL);
	assert_int_equal(ca_name_rootcert("example.net", out, err, sizeof(err)), DJ_EOK);
	assert_string_equal(out, "_rootcert.example.net.");
	/* the prefix must not push a name over the limit */
	assert_int_equal(ca_name_server(rep('a', 63, ".b.c.d"), 443, out, err, sizeof(err)), DJ_EOK);
	assert_int_equal(ca_name_in_zone("_443._tcp.js.lorawan.test.", "lorawan.test."), 1);
	assert_int_equal(ca_name_in_zone("lorawan.test", "LORAWAN.test."), 1);
	assert_int_equal(ca_name_in_zone("xlorawan.test.", "lorawan.test."), 0);
	assert_int_equal(ca_name_in_zone("other.test.", "lorawan.test."), 0);
}

static void test_tlsa_format(void **state)
{
	struct ca_tlsa t = { 3, 1, 1, NULL, 0 };
	uint8_t data[4] = { 0xde, 0xad, 0xBE, 0xef };
	char *s;

	(void)state;
	t.data = data;
	t.len = sizeof(data);
	s = ca_tlsa_rdata(&t);
	assert_string_equal(s, "3 1 1 deadbeef");
	free(s);
	s = ca_tlsa_line("_443._tcp.js.test.", 60, &t);
	assert_string_equal(s, "_443._tcp.js.test. 60 IN TLSA 3 1 1 deadbeef");
	free(s);
	assert_int_equal(ca_tlsa_compute(NULL, NULL, 4, 1, 1, &t), DJ_ERANGE);
	assert_int_equal(ca_tlsa_compute(NULL, NULL, 3, 0, 1, &t), DJ_EINVAL);
}

/* tmp_path - a fresh path in DJ_TEST_TMPDIR (or /tmp) */
static void tmp_path(char *out, size_t len, const char *name)
{
	const char *dir = getenv("DJ_TEST_TMPDIR");

	snprintf(out, len, "%s/%s.%ld", dir != NULL ? dir : "/tmp", name, (long)getpid());
	unlink(out);
}

static void test_roll_state(void **state)
{
	struct ca_roll_state s, r;
	char path[512], err[256];
	FILE *f;
	int fd, fd2;

	(void)state;
	tmp_path(path, sizeof(path), "roll.state");
	assert_int_equal(ca_roll_load(path, &r, err, sizeof(err)), DJ_ENOENT);
	memset(&s, 0, sizeof(s));
	s.step = CA_ROLL_PUBLISHED;
	strcpy(s.owner, "_443._tcp.js.test.");
	strcpy(s.zone, "test.");
	strcpy(s.current, "3 1 1 aa");
	strcpy(s.next, "3 1 1 bb");
	strcpy(s.ns, "127.0.0.1@5353");
	strcpy(s.tsig_file, "/k");
	strcpy(s.ta_file, "/ta");
	strcpy(s.switch_cmd, "systemctl reload x");
	s.ttl = 60;
	s.cache_cap = 300;
	s.published_at = 1700000000;
	s.timeout_ms = 5000;
	assert_int_equal(ca_roll_save(path, &s, err, sizeof(err)), DJ_EOK);
	assert_int_equal(ca_roll_load(path, &r, err, sizeof(err)), DJ_EOK);
	assert_memory_equal(&s, &r, sizeof(s));
	s.step = CA_ROLL_DONE;	/* a rewrite replaces the whole file */
	assert_int_equal(ca_roll_save(path, &s, err, sizeof(err)), DJ_EOK);
	assert_int_equal(ca_roll_load(path, &r, err, sizeof(err)), DJ_EOK);
	assert_int_equal(r.step, CA_ROLL_DONE);
	/* the lock excludes a second run */
	assert_int_equal(ca_roll_lock(path, &fd, err, sizeof(err)), DJ_EOK);
	assert_int_equal(ca_roll_lock(path, &fd2, err, sizeof(err)), DJ_EBUSY);
	ca_roll_unlock(fd);
	assert_int_equal(ca_roll_lock(path, &fd2, err, sizeof(err)), DJ_EOK);
	ca_roll_unlock(fd2);
	/* malformed files are refused with a reason */
	f = fopen(path, "w");
	assert_non_null(f);
	fputs("version=1\nstep=sideways\n", f);
	fclose(f);
	assert_int_equal(ca_roll_load(path, &r, err, sizeof(err)), DJ_EMALFORMED);
	assert_non_null(strstr(err, "bad value for step"));
	f = fopen(path, "w");
	fputs("version=1\nstep=done\n", f);
	fclose(f);
	assert_int_equal(ca_roll_load(path, &r, err, sizeof(err)), DJ_EMALFORMED);
	unlink(path);
	strcat(path, ".lock");
	unlink(path);
}

DJ_TEST_MAIN(
	cmocka_unit_test(test_name_check_table),
	cmocka_unit_test(test_joineui_names),
	cmocka_unit_test(test_name_limits),
	cmocka_unit_test(test_owner_names),
	cmocka_unit_test(test_tlsa_format),
	cmocka_unit_test(test_roll_state))
