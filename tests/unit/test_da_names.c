/*
 * test_da_names.c - the pure parts of da_dns: TS002 §19.1 names (the specification's own
 * examples and The Things Stack's JoinServerFQDN vector), name canonicalisation, strict TLSA
 * rdata parsing (RFC 6698 §2.1) and the TLSA verdict (only usages 2 and 3 count).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "backend-auth/da_internal.h"
#include "common/dj_err.h"
#include "dj_test.h"

static void test_joineui_name(void **state)
{
	char out[128];

	(void)state;
	/* TS002-1.0 §19.1: EUI 00-00-5E-10-00-00-00-2F */
	assert_int_equal(da_joineui_name(0x00005E100000002Full, "lora-alliance.org", out,
					 sizeof(out)), DJ_EOK);
	assert_string_equal(out, "f.2.0.0.0.0.0.0.0.1.e.5.0.0.0.0.joineuis.lora-alliance.org");
	/* The Things Stack pkg/interop TestJoinServerFQDN */
	assert_int_equal(da_joineui_name(0x70b3d57ed0000000ull, "lora-alliance.org.", out,
					 sizeof(out)), DJ_EOK);
	assert_string_equal(out, "0.0.0.0.0.0.0.d.e.7.5.d.3.b.0.7.joineuis.lora-alliance.org");
	/* NULL suffix: the LoRa Alliance's */
	assert_int_equal(da_joineui_name(1, NULL, out, sizeof(out)), DJ_EOK);
	assert_string_equal(out, "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.joineuis.lora-alliance.org");
	assert_int_equal(da_joineui_name(1, "Lorawan.TEST", out, sizeof(out)), DJ_EOK);
	assert_string_equal(out, "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.joineuis.lorawan.test");
	/* exactly fits, one byte short */
	assert_int_equal(da_joineui_name(1, "lorawan.test", out, 54), DJ_EOK);
	assert_int_equal(da_joineui_name(1, "lorawan.test", out, 53), DJ_ERANGE);
	assert_int_equal(da_joineui_name(1, "bad..suffix", out, sizeof(out)), DJ_EINVAL);
}

static void test_netid_name(void **state)
{
	char out[64];

	(void)state;
	/* TS002-1.0 §19.1: NetID 1290 (0x00050A) */
	assert_int_equal(da_netid_name(0x00050A, "lora-alliance.org", out, sizeof(out)), DJ_EOK);
	assert_string_equal(out, "00050a.netids.lora-alliance.org");
	assert_int_equal(da_netid_name(0xC00053, "lorawan.test", out, sizeof(out)), DJ_EOK);
	assert_string_equal(out, "c00053.netids.lorawan.test");
	assert_int_equal(da_netid_name(0x1000000, "lorawan.test", out, sizeof(out)), DJ_EINVAL);
	assert_int_equal(da_netid_name(1, "lorawan.test", out, 27), DJ_EOK);
	assert_int_equal(da_netid_name(1, "lorawan.test", out, 26), DJ_ERANGE);
}

static void test_name_canon(void **state)
{
	static const char *const bad[] = { "", ".", "a..b", ".a", "a b", "a/b", "a\\.b",
					   "\xc3\xa9.test" };
	char out[DA_QNAME_MAX + 1], big[300];
	size_t i;

	(void)state;
	assert_int_equal(da__name_canon("_443._TCP.JS.Lorawan.Test.", out, sizeof(out)), DJ_EOK);
	assert_string_equal(out, "_443._tcp.js.lorawan.test");
	for (i = 0; i < DJ_ARRAY_LEN(bad); i++)
		assert_int_equal(da__name_canon(bad[i], out, sizeof(out)), DJ_EINVAL);
	assert_int_equal(da__name_canon(NULL, out, sizeof(out)), DJ_EINVAL);
	memset(big, 'a', 64);	/* a 64-octet label */
	strcpy(big + 64, ".test");
	assert_int_equal(da__name_canon(big, out, sizeof(out)), DJ_EINVAL);
	strcpy(big + 63, ".test");	/* 63 is fine */
	assert_int_equal(da__name_canon(big, out, sizeof(out)), DJ_EOK);
	for (i = 0; i < 254; i++)	/* 254 octets of labels "a." */
		big[i] = (i % 2) ? '.' : 'a';
	big[254] = 'a';
	big[255] = '\0';
	assert_int_equal(da__name_canon(big, out, sizeof(out)), DJ_EINVAL);
}

/* rd - a TLSA rdata: usage, selector, mtype, then dlen bytes of 0xab */
static size_t rd(uint8_t *buf, uint8_t u, uint8_t s, uint8_t m, size_t dlen)
{
	buf[0] = u;
	buf[1] = s;
	buf[2] = m;
	memset(buf + 3, 0xab, dlen);
	return 3 + dlen;
}

static void test_tlsa_parse(void **state)
{
	uint8_t b[128];
	struct da_tlsa t;
	size_t n;

	(void)state;
	n = rd(b, 3, 1, 1, 32);
	assert_int_equal(da_tlsa_parse(b, n, &t), DJ_EOK);
	assert_int_equal(t.usage, 3);
	assert_int_equal(t.selector, 1);
	assert_int_equal(t.mtype, 1);
	assert_int_equal(t.len, 32);
	assert_ptr_equal(t.data, b + 3);
	n = rd(b, 2, 0, 2, 64);
	assert_int_equal(da_tlsa_parse(b, n, &t), DJ_EOK);
	n = rd(b, 3, 0, 0, 91);		/* Full: any non-empty length */
	assert_int_equal(da_tlsa_parse(b, n, &t), DJ_EOK);
	assert_int_equal(t.len, 91);

	memset(&t, 0x5a, sizeof(t));
	assert_int_equal(da_tlsa_parse(b, 3, &t), DJ_EMALFORMED);	/* no data */
	assert_int_equal(t.usage, 0x5a);	/* untouched on failure */
	assert_int_equal(da_tlsa_parse(b, 2, &t), DJ_EMALFORMED);
	assert_int_equal(da_tlsa_parse(NULL, 40, &t), DJ_EMALFORMED);
	n = rd(b, 4, 1, 1, 32);
	assert_int_equal(da_tlsa_parse(b, n, &t), DJ_EMALFORMED);	/* usage 4 */
	n = rd(b, 3, 2, 1, 32);
	assert_int_equal(da_tlsa_parse(b, n, &t), DJ_EMALFORMED);	/* selector 2 */
	n = rd(b, 3, 1, 3, 32);
	assert_int_equal(da_tlsa_parse(b, n, &t), DJ_EMALFORMED);	/* mtype 3 */
	n = rd(b, 3, 1, 1, 31);
	assert_int_equal(da_tlsa_parse(b, n, &t), DJ_EMALFORMED);	/* short SHA-256 */
	n = rd(b, 3, 1, 1, 33);
	assert_int_equal(da_tlsa_parse(b, n, &t), DJ_EMALFORMED);	/* long SHA-256 */
	n = rd(b, 3, 1, 2, 32);
	assert_int_equal(da_tlsa_parse(b, n, &t), DJ_EMALFORMED);	/* SHA-512 of 32 */
	n = rd(b, 3, 1, 2, 65);
	assert_int_equal(da_tlsa_parse(b, n, &t), DJ_EMALFORMED);
}

static void test_tlsa_verdict(void **state)
{
	uint8_t b[4][80];
	const uint8_t *p[4] = { b[0], b[1], b[2], b[3] };
	size_t len[4];
	struct da_answer *a = NULL;

	(void)state;
	len[0] = rd(b[0], 3, 1, 1, 32);
	len[1] = rd(b[1], 1, 1, 1, 32);	/* PKIX-EE: well formed, not usable */
	len[2] = rd(b[2], 3, 1, 1, 20);	/* malformed */
	len[3] = rd(b[3], 2, 0, 1, 32);
	b[3][10] = 0x11;
	assert_int_equal(da__answer_tlsa(DA_SECURE, 300, p, len, 4, &a), DJ_EOK);
	assert_int_equal(a->status, DA_SECURE);
	assert_int_equal(a->n, 2);
	assert_int_equal(a->tlsa[0].usage, 3);
	assert_int_equal(a->tlsa[1].usage, 2);
	assert_int_equal(a->tlsa[1].len, 32);
	assert_int_equal(a->tlsa[1].data[7], 0x11);	/* copied: offset 10 - 3 */
	assert_non_null(strstr(a->why, "1 malformed"));
	assert_non_null(strstr(a->why, "1 PKIX"));
	da__answer_unref(a);

	/* only usages 0/1: unusable */
	len[0] = rd(b[0], 0, 0, 1, 32);
	assert_int_equal(da__answer_tlsa(DA_SECURE, 300, p, len, 2, &a), DJ_EOK);
	assert_int_equal(a->status, DA_UNUSABLE);
	assert_int_equal(a->n, 0);
	assert_non_null(strstr(a->why, "unusable"));
	da__answer_unref(a);

	/* only malformed: unusable */
	assert_int_equal(da__answer_tlsa(DA_SECURE, 300, p + 2, len + 2, 1, &a), DJ_EOK);
	assert_int_equal(a->status, DA_UNUSABLE);
	da__answer_unref(a);

	/* insecure data is never parsed into records */
	len[0] = rd(b[0], 3, 1, 1, 32);
	assert_int_equal(da__answer_tlsa(DA_INSECURE, 300, p, len, 1, &a), DJ_EOK);
	assert_int_equal(a->status, DA_INSECURE);
	assert_int_equal(a->n, 0);
	da__answer_unref(a);
}

static void test_lifetime(void **state)
{
	struct da_answer a;

	(void)state;
	memset(&a, 0, sizeof(a));
	a.status = DA_SECURE;
	a.ttl = 7200;
	assert_int_equal(da__lifetime(&a, 3600, 60), 3600);	/* ttl_cap */
	a.ttl = 30;
	assert_int_equal(da__lifetime(&a, 3600, 60), 30);
	a.status = DA_NXDOMAIN;
	a.ttl = 300;
	assert_int_equal(da__lifetime(&a, 3600, 60), 60);	/* neg_ttl */
	a.status = DA_BOGUS;
	assert_int_equal(da__lifetime(&a, 3600, 60), 60);
	a.status = DA_INSECURE;
	a.ttl = 5;
	assert_int_equal(da__lifetime(&a, 3600, 60), 5);
	a.status = DA_TEMPFAIL;
	assert_int_equal(da__lifetime(&a, 3600, 60), 0);	/* never cached */
	assert_true(da__status_rank(DA_BOGUS) > da__status_rank(DA_INSECURE));
	assert_true(da__status_rank(DA_INSECURE) > da__status_rank(DA_TEMPFAIL));
	assert_true(da__status_rank(DA_TEMPFAIL) > da__status_rank(DA_NXDOMAIN));
	assert_true(da__status_rank(DA_NODATA) > da__status_rank(DA_SECURE));
	assert_string_equal(da_status_str(DA_UNUSABLE), "unusable");
}

DJ_TEST_MAIN(
	cmocka_unit_test(test_joineui_name), cmocka_unit_test(test_netid_name),
	cmocka_unit_test(test_name_canon),   cmocka_unit_test(test_tlsa_parse),
	cmocka_unit_test(test_tlsa_verdict), cmocka_unit_test(test_lifetime))
