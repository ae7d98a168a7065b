/*
 * test_da_txt.c - TXT lookups of da_dns: the rdata parser (character-strings joined per
 * record, bounds, an embedded NUL), verdicts from a packet built with ldns (secure, insecure,
 * bogus, a CNAME on the way counting for the TTL, NODATA), and da_txt_lookup through the cache
 * on a mock upstream.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <event2/event.h>
#include <ldns/ldns.h>

#include "backend-auth/da_internal.h"
#include "common/dj_err.h"
#include "da_mock_util.h"
#include "dj_test.h"

/* ---- da__txt_join, table first ------------------------------------------------------------ */

static void test_txt_join(void **state)
{
	static const struct {
		const char *rd;	/* rdata, as bytes (lengths included) */
		size_t len;
		int ret;
		const char *want;
	} cases[] = {
		{ "\x03" "abc", 4, DJ_EOK, "abc" },
		{ "\x03" "abc" "\x02" "de", 7, DJ_EOK, "abcde" },
		{ "\x00", 1, DJ_EOK, "" },
		{ "\x00" "\x01" "x" "\x00", 4, DJ_EOK, "x" },
		{ "\x04" "abc", 4, DJ_EMALFORMED, NULL },		/* length past the end */
		{ "\x03" "abc" "\x05" "de", 7, DJ_EMALFORMED, NULL },	/* second one too */
		{ "\x03" "a\0c", 4, DJ_EMALFORMED, NULL },		/* NUL inside */
		{ "", 0, DJ_EMALFORMED, NULL },				/* no string at all */
	};
	uint8_t big[2 * 256];
	char *out;
	size_t n, i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		out = NULL;
		assert_int_equal(da__txt_join((const uint8_t *)cases[i].rd, cases[i].len, &out, &n),
				 cases[i].ret);
		if (cases[i].ret != DJ_EOK) {
			assert_null(out);
			continue;
		}
		assert_string_equal(out, cases[i].want);
		assert_int_equal(n, strlen(cases[i].want));
		free(out);
	}
	/* two full 255-octet strings (the chain records are cut that way) */
	big[0] = 255;
	memset(big + 1, 'A', 255);
	big[256] = 255;
	memset(big + 257, 'B', 255);
	assert_int_equal(da__txt_join(big, 512, &out, &n), DJ_EOK);
	assert_int_equal(n, 510);
	assert_int_equal(out[254], 'A');
	assert_int_equal(out[255], 'B');
	assert_int_equal(out[510], '\0');
	free(out);
	assert_int_equal(da__txt_join(NULL, 3, &out, &n), DJ_EMALFORMED);
}

/* ---- verdicts from packets ------------------------------------------------------------------- */

/* packet - a NOERROR answer holding \p rrs (presentation lines), in wire form */
static uint8_t *packet(const char *const *rrs, size_t n, size_t *len)
{
	ldns_pkt *p = ldns_pkt_new();
	uint8_t *wire = NULL;
	size_t i;

	assert_non_null(p);
	ldns_pkt_set_qr(p, true);
	for (i = 0; i < n; i++) {
		ldns_rr *rr = NULL;

		assert_int_equal(ldns_rr_new_frm_str(&rr, rrs[i], 0, NULL, NULL), LDNS_STATUS_OK);
		assert_true(ldns_pkt_push_rr(p, LDNS_SECTION_ANSWER, rr));
	}
	assert_int_equal(ldns_pkt2wire(&wire, p, len), LDNS_STATUS_OK);
	ldns_pkt_free(p);
	return wire;
}

static void test_txt_packet(void **state)
{
	const char *two[] = {
		"x.test. 300 IN TXT \"v=dj1\" \"model=PM-2\"",
		"x.test. 120 IN TXT \"CqsB\" \"CghwsA==\"",
	};
	const char *cname[] = {
		"_ownership.d._device.opa.test. 30 IN CNAME _ownership.d._device.opb.test.",
		"_ownership.d._device.opb.test. 300 IN TXT \"chain\"",
	};
	const char *other[] = { "x.test. 300 IN A 192.0.2.1" };
	struct da_answer *a = NULL;
	uint8_t *w;
	size_t len;

	(void)state;
	w = packet(two, 2, &len);
	assert_int_equal(da__answer_from_packet(DA_T_TXT, 0, w, len, 2, NULL, 60, &a), DJ_EOK);
	assert_int_equal(a->status, DA_SECURE);
	assert_int_equal(a->n, 2);
	assert_string_equal(a->txt[0], "v=dj1model=PM-2");
	assert_int_equal(a->txt_len[0], 15);
	assert_string_equal(a->txt[1], "CqsBCghwsA==");
	assert_int_equal(a->ttl, 120);	/* the smallest in the RRset */
	da__answer_unref(a);
	/* insecure and bogus carry no records that count */
	assert_int_equal(da__answer_from_packet(DA_T_TXT, 0, w, len, 0, NULL, 60, &a), DJ_EOK);
	assert_int_equal(a->status, DA_INSECURE);
	da__answer_unref(a);
	assert_int_equal(da__answer_from_packet(DA_T_TXT, 0, w, len, 1, "sig expired", 60, &a),
			 DJ_EOK);
	assert_int_equal(a->status, DA_BOGUS);
	assert_non_null(strstr(a->why, "sig expired"));
	da__answer_unref(a);
	/* a resolver failure: a temporary failure, whatever the packet */
	assert_int_equal(da__answer_from_packet(DA_T_TXT, 2, w, len, 0, NULL, 60, &a), DJ_EOK);
	assert_int_equal(a->status, DA_TEMPFAIL);
	da__answer_unref(a);
	free(w);
	/* the old owner's name is a CNAME after a transfer: followed, its TTL counts */
	w = packet(cname, 2, &len);
	assert_int_equal(da__answer_from_packet(DA_T_TXT, 0, w, len, 2, NULL, 60, &a), DJ_EOK);
	assert_int_equal(a->status, DA_SECURE);
	assert_int_equal(a->n, 1);
	assert_string_equal(a->txt[0], "chain");
	assert_int_equal(a->ttl, 30);
	da__answer_unref(a);
	free(w);
	/* no TXT in a secure answer: NODATA */
	w = packet(other, 1, &len);
	assert_int_equal(da__answer_from_packet(DA_T_TXT, 0, w, len, 2, NULL, 60, &a), DJ_EOK);
	assert_int_equal(a->status, DA_NODATA);
	da__answer_unref(a);
	free(w);
}

/* ---- da_txt_lookup on a mock upstream ------------------------------------------------------- */

struct got {
	int calls;
	enum da_status st;
	uint32_t ttl;
	size_t n;
	int from_cache;
	char txt[64];
};

static void on_txt(const struct da_txt_set *s, void *arg)
{
	struct got *g = arg;

	g->calls++;
	g->st = s->status;
	g->ttl = s->ttl;
	g->n = s->n;
	g->from_cache = s->from_cache;
	snprintf(g->txt, sizeof(g->txt), "%s", s->n > 0 ? s->txt[0] : "");
	if (s->n > 0)
		assert_int_equal(s->len[0], strlen(s->txt[0]));
}

static void test_txt_lookup(void **state)
{
	struct da_resolver_props p = { .ttl_cap = 100 };
	struct fx *f = fx_new(&p);
	struct da_resolver *r = f->r;
	struct da_answer *a = NULL;
	struct got g = { 0 }, g2 = { 0 };
	struct da_lookup *h = NULL;

	(void)state;
	assert_int_equal(da_txt_lookup(r, "bad..name", on_txt, &g, NULL), DJ_EINVAL);
	assert_int_equal(da_txt_lookup(r, "_ownership.D._device.OPA.test.", on_txt, &g, &h),
			 DJ_EOK);
	assert_non_null(h);
	assert_int_equal(f->m.type[0], DA_T_TXT);
	assert_string_equal(f->m.name[0], "_ownership.d._device.opa.test");
	/* the answer: one record, TTL 300 capped to 100 */
	assert_int_equal(da__answer_new(DA_T_TXT, DA_SECURE, 300, NULL, &a), DJ_EOK);
	a->txt = calloc(1, sizeof(*a->txt));
	a->txt_len = calloc(1, sizeof(*a->txt_len));
	assert_non_null(a->txt);
	assert_non_null(a->txt_len);
	a->txt[0] = strdup("CqsBCgho");
	assert_non_null(a->txt[0]);
	a->txt_len[0] = 8;
	a->n = 1;
	da__query_answer(f->m.q[f->m.n - 1], a);
	assert_true(event_base_loop(f->base, EVLOOP_NONBLOCK) >= 0);
	assert_int_equal(g.calls, 1);
	assert_int_equal(g.st, DA_SECURE);
	assert_int_equal(g.n, 1);
	assert_int_equal(g.ttl, 100);
	assert_string_equal(g.txt, "CqsBCgho");
	assert_int_equal(g.from_cache, 0);
	/* again, 40 s later: from the cache, at once, with the TTL left; no query */
	f->m.now_ms += 40000;
	assert_int_equal(da_txt_lookup(r, "_ownership.d._device.opa.test", on_txt, &g2, &h),
			 DJ_EOK);
	assert_null(h);
	assert_int_equal(g2.calls, 1);
	assert_int_equal(g2.from_cache, 1);
	assert_int_equal(g2.ttl, 60);
	assert_string_equal(g2.txt, "CqsBCgho");
	assert_int_equal(f->m.n, 1);
	/* past the cap: asked again; a TEMPFAIL is delivered, never a stale record */
	f->m.now_ms += 61000;
	memset(&g2, 0, sizeof(g2));
	assert_int_equal(da_txt_lookup(r, "_ownership.d._device.opa.test", on_txt, &g2, &h),
			 DJ_EOK);
	assert_int_equal(f->m.n, 2);
	assert_int_equal(da__answer_new(DA_T_TXT, DA_TEMPFAIL, 0, "down", &a), DJ_EOK);
	da__query_answer(f->m.q[f->m.n - 1], a);
	assert_true(event_base_loop(f->base, EVLOOP_NONBLOCK) >= 0);
	assert_int_equal(g2.calls, 1);
	assert_int_equal(g2.st, DA_TEMPFAIL);
	assert_int_equal(g2.n, 0);
	fx_free(f);
}

DJ_TEST_MAIN(
	cmocka_unit_test(test_txt_join),
	cmocka_unit_test(test_txt_packet),
	cmocka_unit_test(test_txt_lookup))
