/*
 * test_da_cache.c - the verdict cache and the query layer of da_dns, with an injected clock and
 * a mock upstream (no DNS): TTL cap, negative TTL, TEMPFAIL never cached, LRU eviction,
 * coalescing, the refresh window (and a failed refresh not extending the entry), timeouts,
 * cancellation (also from inside a callback), freeing with lookups pending, and a discovery
 * chain with an insecure step.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <event2/event.h>

#include "backend-auth/da_internal.h"
#include "common/dj_err.h"
#include "da_mock_util.h"
#include "dj_test.h"

/* answer - the mock answers query i (TLSA): a status, a TTL, and (if secure) one 3 1 1 record */
static void answer(struct fx *f, size_t i, enum da_status st, uint32_t ttl)
{
	uint8_t b[35] = { 3, 1, 1 };
	const uint8_t *p = b;
	size_t len = sizeof(b);
	struct da_answer *a = NULL;

	assert_true(i < f->m.n && f->m.live[i]);
	f->m.live[i] = 0;
	if (st == DA_SECURE)
		assert_int_equal(da__answer_tlsa(st, ttl, &p, &len, 1, &a), DJ_EOK);
	else
		assert_int_equal(da__answer_new(DA_T_TLSA, st, ttl, "test", &a), DJ_EOK);
	da__query_answer(f->m.q[i], a);
	assert_true(event_base_loop(f->base, EVLOOP_NONBLOCK) >= 0);
}

/* a callback's record */
struct got {
	int calls;
	enum da_status st;
	uint32_t ttl;
	size_t n;
	int from_cache;
	char why[DA_REASON_MAX];
	/* actions inside the callback */
	struct da_lookup *cancel_me;
	struct da_resolver *relookup;
	struct got *relookup_got;
};

static void on_tlsa(const struct da_tlsa_set *s, void *arg)
{
	struct got *g = arg;
	struct da_lookup *h = NULL;

	g->calls++;
	g->st = s->status;
	g->ttl = s->ttl;
	g->n = s->n;
	g->from_cache = s->from_cache;
	assert_non_null(s->why != NULL || s->status == DA_SECURE ? (void *)1 : NULL);
	snprintf(g->why, sizeof(g->why), "%s", s->why ? s->why : "");
	if (s->status == DA_SECURE) {
		assert_int_equal(s->rr[0].usage, 3);
		assert_int_equal(s->rr[0].len, 32);
	}
	if (g->cancel_me != NULL) {
		da_lookup_cancel(g->cancel_me);
		g->cancel_me = NULL;
	}
	if (g->relookup != NULL) {
		struct da_resolver *r = g->relookup;

		g->relookup = NULL;
		assert_int_equal(da_tlsa_lookup(r, s->name, on_tlsa, g->relookup_got, &h), DJ_EOK);
	}
}

static const struct da_resolver_props P = { .ttl_cap = 60, .neg_ttl = 10, .refresh_pct = 10,
					    .timeout_ms = 60000, .cache_max = 100 };

static void test_cache_direct(void **state)
{
	struct da_cache c;
	struct da_answer *a = NULL;
	struct da_centry *e;

	(void)state;
	assert_int_equal(da__cache_init(&c, 2), DJ_EOK);
	assert_int_equal(da__answer_new(DA_T_TLSA, DA_NODATA, 5, NULL, &a), DJ_EOK);
	assert_int_equal(da__cache_put(&c, DA_T_TLSA, "a", a, 10, 0), DJ_EOK);
	assert_int_equal(da__cache_put(&c, DA_T_TLSA, "b", a, 10, 0), DJ_EOK);
	assert_int_equal(da__cache_put(&c, DA_T_A, "a", a, 10, 0), DJ_EOK);	/* evicts TLSA a */
	assert_int_equal(c.count, 2);
	assert_int_equal(c.evictions, 1);
	assert_null(da__cache_get(&c, DA_T_TLSA, "a", 1));
	assert_non_null(da__cache_get(&c, DA_T_TLSA, "b", 1));	/* b most recent now */
	assert_int_equal(da__cache_put(&c, DA_T_TLSA, "c", a, 10, 1), DJ_EOK);	/* evicts A a */
	assert_null(da__cache_get(&c, DA_T_A, "a", 2));
	assert_non_null(da__cache_get(&c, DA_T_TLSA, "b", 2));
	/* expiry: served before, never at or after */
	assert_non_null(da__cache_get(&c, DA_T_TLSA, "b", 9999));
	assert_null(da__cache_get(&c, DA_T_TLSA, "b", 10000));
	assert_int_equal(c.count, 1);
	/* life 0 (TTL 0 / TEMPFAIL): not stored, and an old entry is replaced by nothing */
	assert_int_equal(da__cache_put(&c, DA_T_TLSA, "c", a, 0, 3), DJ_EOK);
	assert_null(da__cache_get(&c, DA_T_TLSA, "c", 4));
	/* refresh window: life 100 s, 10 % */
	assert_int_equal(da__cache_put(&c, DA_T_TLSA, "d", a, 100, 0), DJ_EOK);
	e = da__cache_get(&c, DA_T_TLSA, "d", 0);
	assert_non_null(e);
	assert_false(da__cache_in_refresh(e, 10, 89999));
	assert_true(da__cache_in_refresh(e, 10, 90000));
	assert_true(da__cache_in_refresh(e, 10, 99999));
	assert_false(da__cache_in_refresh(e, 0, 99999));
	da__cache_clear(&c);
	da__answer_unref(a);
}

static void test_coalesce_and_ttl_cap(void **state)
{
	struct fx *f = fx_new(&P);
	struct got g1 = { 0 }, g2 = { 0 }, g3 = { 0 };
	struct da_lookup *h1 = NULL, *h2 = NULL, *h3 = NULL;
	struct da_stats st;

	(void)state;
	assert_int_equal(da_tlsa_lookup(f->r, "_443._tcp.JS.test.", on_tlsa, &g1, &h1), DJ_EOK);
	assert_int_equal(da_tlsa_lookup(f->r, "_443._tcp.js.test", on_tlsa, &g2, &h2), DJ_EOK);
	assert_non_null(h1);
	assert_non_null(h2);
	assert_int_equal(f->m.n, 1);		/* one upstream query for both */
	assert_string_equal(f->m.name[0], "_443._tcp.js.test");
	assert_int_equal(f->m.type[0], DA_T_TLSA);
	assert_int_equal(g1.calls + g2.calls, 0);
	answer(f, 0, DA_SECURE, 7200);
	assert_int_equal(g1.calls, 1);
	assert_int_equal(g2.calls, 1);
	assert_int_equal(g1.st, DA_SECURE);
	assert_int_equal(g1.n, 1);
	assert_int_equal(g1.ttl, 60);		/* min(7200, ttl_cap) */
	assert_int_equal(g1.from_cache, 0);
	da_resolver_stats(f->r, &st);
	assert_int_equal(st.queries, 1);
	assert_int_equal(st.coalesced, 1);
	assert_int_equal(st.cache_misses, 2);
	assert_int_equal(st.secure, 1);
	assert_int_equal(st.cached, 1);

	/* within the cap: from the cache, at once, handle NULL */
	f->m.now_ms += 20000;
	h3 = (struct da_lookup *)&g3;
	assert_int_equal(da_tlsa_lookup(f->r, "_443._tcp.js.test", on_tlsa, &g3, &h3), DJ_EOK);
	assert_null(h3);
	assert_int_equal(g3.calls, 1);
	assert_int_equal(g3.from_cache, 1);
	assert_int_equal(g3.ttl, 40);
	assert_int_equal(f->m.n, 1);
	assert_int_equal(da_tlsa_peek(f->r, "_443._tcp.js.test", on_tlsa, &g3), DJ_EOK);
	assert_int_equal(g3.calls, 2);
	/* past the cap (not the TTL): a new query */
	f->m.now_ms += 40000;
	assert_int_equal(da_tlsa_peek(f->r, "_443._tcp.js.test", on_tlsa, &g3), DJ_ENOENT);
	assert_int_equal(da_tlsa_lookup(f->r, "_443._tcp.js.test", on_tlsa, &g3, &h3), DJ_EOK);
	assert_int_equal(f->m.n, 2);
	assert_int_equal(da_tlsa_lookup(f->r, "bad..name", on_tlsa, &g3, &h3), DJ_EINVAL);
	fx_free(f);	/* with a lookup pending: no callback, no leak */
	assert_int_equal(g3.calls, 2);
}

static void test_negative_and_tempfail(void **state)
{
	struct fx *f = fx_new(&P);
	struct got g = { 0 };
	struct da_lookup *h = NULL;
	struct da_stats st;

	(void)state;
	assert_int_equal(da_tlsa_lookup(f->r, "nx.test", on_tlsa, &g, &h), DJ_EOK);
	answer(f, 0, DA_NXDOMAIN, 3600);
	assert_int_equal(g.st, DA_NXDOMAIN);
	assert_int_equal(g.ttl, 10);		/* min(3600, neg_ttl) */
	f->m.now_ms += 9000;
	assert_int_equal(da_tlsa_lookup(f->r, "nx.test", on_tlsa, &g, &h), DJ_EOK);
	assert_int_equal(g.from_cache, 1);
	f->m.now_ms += 1000;			/* 10 s: expired */
	assert_int_equal(da_tlsa_lookup(f->r, "nx.test", on_tlsa, &g, &h), DJ_EOK);
	assert_int_equal(f->m.n, 2);
	answer(f, 1, DA_TEMPFAIL, 0);
	assert_int_equal(g.st, DA_TEMPFAIL);
	assert_int_equal(g.ttl, 0);
	/* TEMPFAIL is not cached: the next lookup asks again */
	assert_int_equal(da_tlsa_lookup(f->r, "nx.test", on_tlsa, &g, &h), DJ_EOK);
	assert_int_equal(f->m.n, 3);
	answer(f, 2, DA_BOGUS, 3600);
	assert_int_equal(g.st, DA_BOGUS);
	assert_int_equal(g.ttl, 10);
	da_resolver_stats(f->r, &st);
	assert_int_equal(st.nxdomain, 1);
	assert_int_equal(st.tempfail, 1);
	assert_int_equal(st.bogus, 1);
	fx_free(f);
}

static void test_lru_eviction(void **state)
{
	struct da_resolver_props p = P;
	struct fx *f;
	struct got g = { 0 };
	struct da_lookup *h = NULL;
	struct da_stats st;
	char name[32];
	int i;

	(void)state;
	p.cache_max = 2;
	f = fx_new(&p);
	for (i = 0; i < 3; i++) {
		snprintf(name, sizeof(name), "n%d.test", i);
		assert_int_equal(da_tlsa_lookup(f->r, name, on_tlsa, &g, &h), DJ_EOK);
		answer(f, (size_t)i, DA_SECURE, 30);
		if (i == 1) {	/* touch n0: n1 becomes the least recently used */
			assert_int_equal(da_tlsa_lookup(f->r, "n0.test", on_tlsa, &g, &h), DJ_EOK);
			assert_int_equal(g.from_cache, 1);
		}
	}
	da_resolver_stats(f->r, &st);
	assert_int_equal(st.evictions, 1);
	assert_int_equal(st.cached, 2);
	assert_int_equal(da_tlsa_peek(f->r, "n0.test", on_tlsa, &g), DJ_EOK);
	assert_int_equal(da_tlsa_peek(f->r, "n1.test", on_tlsa, &g), DJ_ENOENT);
	assert_int_equal(da_tlsa_peek(f->r, "n2.test", on_tlsa, &g), DJ_EOK);
	fx_free(f);
}

static void test_refresh_window(void **state)
{
	struct da_resolver_props p = P;
	struct fx *f;
	struct got g = { 0 };
	struct da_lookup *h = NULL;
	struct da_stats st;

	(void)state;
	p.ttl_cap = 100;
	f = fx_new(&p);
	assert_int_equal(da_tlsa_lookup(f->r, "r.test", on_tlsa, &g, &h), DJ_EOK);
	answer(f, 0, DA_SECURE, 100);
	f->m.now_ms += 89000;			/* 11 % left: plain hit */
	assert_int_equal(da_tlsa_lookup(f->r, "r.test", on_tlsa, &g, &h), DJ_EOK);
	assert_int_equal(f->m.n, 1);
	f->m.now_ms += 2000;			/* 9 % left: hit and a background refresh */
	assert_int_equal(da_tlsa_lookup(f->r, "r.test", on_tlsa, &g, &h), DJ_EOK);
	assert_int_equal(g.from_cache, 1);
	assert_int_equal(g.calls, 3);
	assert_int_equal(f->m.n, 2);
	assert_int_equal(da_tlsa_lookup(f->r, "r.test", on_tlsa, &g, &h), DJ_EOK);
	assert_int_equal(f->m.n, 2);		/* one refresh at a time */
	da_resolver_stats(f->r, &st);
	assert_int_equal(st.refreshes, 1);
	answer(f, 1, DA_SECURE, 100);		/* renewed: 100 s from now */
	assert_int_equal(g.calls, 4);		/* nobody waited on the refresh */
	f->m.now_ms += 50000;
	assert_int_equal(da_tlsa_peek(f->r, "r.test", on_tlsa, &g), DJ_EOK);

	/* a failed refresh leaves the old entry to expire on time */
	f->m.now_ms += 45000;			/* 5 % left */
	assert_int_equal(da_tlsa_lookup(f->r, "r.test", on_tlsa, &g, &h), DJ_EOK);
	assert_int_equal(f->m.n, 3);
	answer(f, 2, DA_TEMPFAIL, 0);
	assert_int_equal(da_tlsa_peek(f->r, "r.test", on_tlsa, &g), DJ_EOK);
	f->m.now_ms += 5000;			/* expired now */
	assert_int_equal(da_tlsa_peek(f->r, "r.test", on_tlsa, &g), DJ_ENOENT);
	g.calls = 0;
	assert_int_equal(da_tlsa_lookup(f->r, "r.test", on_tlsa, &g, &h), DJ_EOK);
	assert_int_equal(g.calls, 0);		/* not served stale */
	answer(f, 3, DA_TEMPFAIL, 0);
	assert_int_equal(g.st, DA_TEMPFAIL);
	fx_free(f);
}

static void test_cancel(void **state)
{
	struct fx *f = fx_new(&P);
	struct got g1 = { 0 }, g2 = { 0 }, g3 = { 0 }, g4 = { 0 };
	struct da_lookup *h1 = NULL, *h2 = NULL, *h3 = NULL;

	(void)state;
	/* the only waiter cancels: no callback, the upstream query is cancelled */
	assert_int_equal(da_tlsa_lookup(f->r, "c.test", on_tlsa, &g1, &h1), DJ_EOK);
	da_lookup_cancel(h1);
	assert_int_equal(f->m.cancels, 1);
	da_lookup_cancel(NULL);
	/* one of two waiters cancels: the other still gets its answer */
	assert_int_equal(da_tlsa_lookup(f->r, "c.test", on_tlsa, &g1, &h1), DJ_EOK);
	assert_int_equal(da_tlsa_lookup(f->r, "c.test", on_tlsa, &g2, &h2), DJ_EOK);
	da_lookup_cancel(h1);
	assert_int_equal(f->m.cancels, 1);
	/* waiters are called in order: g3's callback cancels g4 (still waiting) and looks the
	 * name up again, which is a cache hit inside the callback */
	assert_int_equal(da_tlsa_lookup(f->r, "c.test", on_tlsa, &g3, &h3), DJ_EOK);
	assert_int_equal(da_tlsa_lookup(f->r, "c.test", on_tlsa, &g4, &g3.cancel_me), DJ_EOK);
	g3.relookup = f->r;
	g3.relookup_got = &g1;
	answer(f, 1, DA_SECURE, 30);
	assert_int_equal(g1.calls, 1);
	assert_int_equal(g1.from_cache, 1);
	assert_int_equal(g2.calls, 1);
	assert_int_equal(g3.calls, 1);
	assert_int_equal(g4.calls, 0);
	assert_int_equal(f->m.cancels, 1);
	fx_free(f);
}

static void test_cancel_from_callback_order(void **state)
{
	struct fx *f = fx_new(&P);
	struct got a = { 0 }, b = { 0 };
	struct da_lookup *ha = NULL, *hb = NULL;

	(void)state;
	/* each callback cancels the other: only the first runs */
	assert_int_equal(da_tlsa_lookup(f->r, "x.test", on_tlsa, &a, &ha), DJ_EOK);
	assert_int_equal(da_tlsa_lookup(f->r, "x.test", on_tlsa, &b, &hb), DJ_EOK);
	a.cancel_me = hb;
	b.cancel_me = ha;
	answer(f, 0, DA_SECURE, 30);
	assert_int_equal(a.calls, 1);	/* first come, first called */
	assert_int_equal(b.calls, 0);
	fx_free(f);
}

static void test_timeout(void **state)
{
	struct da_resolver_props p = P;
	struct fx *f;
	struct got g = { 0 };
	struct da_lookup *h = NULL;

	(void)state;
	p.timeout_ms = 1;
	f = fx_new(&p);
	assert_int_equal(da_tlsa_lookup(f->r, "slow.test", on_tlsa, &g, &h), DJ_EOK);
	assert_int_equal(da_resolver_wait(f->r), DJ_EOK);
	assert_int_equal(g.calls, 1);
	assert_int_equal(g.st, DA_TEMPFAIL);
	assert_non_null(strstr(g.why, "timeout"));
	assert_int_equal(f->m.cancels, 1);	/* the upstream query was cancelled */
	/* a late answer is impossible now (cancelled); the next lookup asks again */
	assert_int_equal(da_tlsa_lookup(f->r, "slow.test", on_tlsa, &g, &h), DJ_EOK);
	assert_int_equal(f->m.n, 2);
	fx_free(f);
}

/* ---- discovery over the mock ----------------------------------------------------------- */

struct dgot {
	int calls;
	enum da_status st;
	size_t n;
	char host[64];
	uint16_t port;
	size_t n_addr;
	char addr0[64];
};

static void on_disc(const struct da_discovery *d, void *arg)
{
	struct dgot *g = arg;

	g->calls++;
	g->st = d->status;
	g->n = d->n;
	if (d->n > 0) {
		snprintf(g->host, sizeof(g->host), "%s", d->srv[0].host);
		g->port = d->srv[0].port;
		g->n_addr = d->srv[0].n_addr;
		snprintf(g->addr0, sizeof(g->addr0), "%s", d->srv[0].addr[0]);
	}
}

/* find - the index of the live mock query for (type, name) */
static size_t find(struct fx *f, uint16_t type, const char *name)
{
	size_t i;

	for (i = 0; i < f->m.n; i++)
		if (f->m.live[i] && f->m.type[i] == type && strcmp(f->m.name[i], name) == 0)
			return i;
	fail_msg("no query for %s type %u", name, type);
	return 0;
}

static void give(struct fx *f, size_t i, struct da_answer *a)
{
	f->m.live[i] = 0;
	da__query_answer(f->m.q[i], a);
	assert_true(event_base_loop(f->base, EVLOOP_NONBLOCK) >= 0);
}

static void run_chain(struct fx *f, enum da_status srv_status, struct dgot *g)
{
	struct da_answer *a = NULL;
	struct da_lookup *h = NULL;

	assert_int_equal(da_discover(f->r, "1.0.joineuis.test", "LWNS", on_disc, g, &h), DJ_EOK);
	assert_non_null(h);
	assert_int_equal(da__answer_new(DA_T_NAPTR, DA_SECURE, 60, NULL, &a), DJ_EOK);
	a->naptr = calloc(2, sizeof(*a->naptr));
	a->naptr[0] = (struct da_naptr){ 10, 50, strdup("S"), strdup("lwn"), strdup("_x._tcp.js.test") };
	a->naptr[1] = (struct da_naptr){ 10, 50, strdup("s"), strdup("lwns"), strdup("_lwns._tcp.js.test") };
	a->n = 2;
	give(f, find(f, DA_T_NAPTR, "1.0.joineuis.test"), a);
	assert_int_equal(da__answer_new(DA_T_SRV, srv_status, 60, "srv says", &a), DJ_EOK);
	if (srv_status == DA_SECURE) {
		a->srv = calloc(1, sizeof(*a->srv));
		a->srv[0] = (struct da_srv){ 0, 1, 8443, strdup("js.test") };
		a->n = 1;
	}
	give(f, find(f, DA_T_SRV, "_lwns._tcp.js.test"), a);
	if (srv_status != DA_SECURE)
		return;
	assert_int_equal(da__answer_new(DA_T_A, DA_SECURE, 60, NULL, &a), DJ_EOK);
	a->addr = calloc(1, sizeof(*a->addr));
	a->addr[0] = strdup("127.0.0.1");
	a->n = 1;
	give(f, find(f, DA_T_A, "js.test"), a);
	assert_int_equal(g->calls, 0);
	assert_int_equal(da__answer_new(DA_T_AAAA, DA_NODATA, 60, NULL, &a), DJ_EOK);
	give(f, find(f, DA_T_AAAA, "js.test"), a);
}

static void test_discovery_chain(void **state)
{
	struct fx *f = fx_new(&P);
	struct dgot g = { 0 }, g2 = { 0 }, g3 = { 0 };
	struct da_lookup *h = NULL;

	(void)state;
	run_chain(f, DA_SECURE, &g);
	assert_int_equal(g.calls, 1);
	assert_int_equal(g.st, DA_SECURE);
	assert_int_equal(g.n, 1);
	assert_string_equal(g.host, "js.test");
	assert_int_equal(g.port, 8443);
	assert_int_equal(g.n_addr, 1);
	assert_string_equal(g.addr0, "127.0.0.1");
	/* all steps cached now: answered at once, no handle */
	h = (struct da_lookup *)&g2;
	assert_int_equal(da_discover(f->r, "1.0.joineuis.test", "lwns", on_disc, &g2, &h), DJ_EOK);
	assert_null(h);
	assert_int_equal(g2.calls, 1);
	assert_int_equal(g2.st, DA_SECURE);
	/* unknown service: unusable */
	assert_int_equal(da_discover(f->r, "1.0.joineuis.test", "x-none", on_disc, &g3, &h), DJ_EOK);
	assert_int_equal(g3.st, DA_UNUSABLE);
	assert_int_equal(g3.n, 0);
	fx_free(f);
}

static void test_discovery_insecure_step(void **state)
{
	struct fx *f = fx_new(&P);
	struct dgot g = { 0 }, g2 = { 0 };
	struct da_lookup *h = NULL;

	(void)state;
	run_chain(f, DA_INSECURE, &g);
	assert_int_equal(g.calls, 1);
	assert_int_equal(g.st, DA_INSECURE);
	assert_int_equal(g.n, 0);
	/* a pending discovery, cancelled: no callback; then one left pending at free */
	f->m.now_ms += 3600 * 1000;
	assert_int_equal(da_discover(f->r, "2.0.joineuis.test", "LWNS", on_disc, &g2, &h), DJ_EOK);
	da_lookup_cancel(h);
	assert_int_equal(f->m.cancels, 1);
	assert_int_equal(da_discover(f->r, "2.0.joineuis.test", "LWNS", on_disc, &g2, &h), DJ_EOK);
	fx_free(f);
	assert_int_equal(g2.calls, 0);
}

DJ_TEST_MAIN(
	cmocka_unit_test(test_cache_direct),
	cmocka_unit_test(test_coalesce_and_ttl_cap),
	cmocka_unit_test(test_negative_and_tempfail),
	cmocka_unit_test(test_lru_eviction),
	cmocka_unit_test(test_refresh_window),
	cmocka_unit_test(test_cancel),
	cmocka_unit_test(test_cancel_from_callback_order),
	cmocka_unit_test(test_timeout),
	cmocka_unit_test(test_discovery_chain),
	cmocka_unit_test(test_discovery_insecure_step))
