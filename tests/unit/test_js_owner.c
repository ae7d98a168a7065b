/*
 * test_js_owner.c - ownership checks (js_owner) on a mock DNS upstream with an injected clock:
 * identity-in-zone table; a verified chain allows the owner's NS and AS and refuses everyone
 * else; a warm cache answers at once; a forged signature, another device's chain, a chain
 * ending elsewhere, a stale serial, a missing or insecure owner key and an absent chain refuse;
 * the DNS down past the cached validity is a temporary failure (fail closed); a refresh ahead
 * of expiry; pending checks are cancelled by js_owner_ctx_free. js_owner_inspect: a stored
 * chain verified link by link (verified, a replaced key, insecure, bogus, NODATA, unusable,
 * NXDOMAIN, the DNS down), compared with the published one; cancelled, and by ctx_free.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <event2/event.h>
#include <openssl/evp.h>

#include "backend-auth/da_internal.h"
#include "common/dj_err.h"
#include "common/dj_hex.h"
#include "ownership/dv_chain.h"
#include "ownership/dv_records.h"
#include "ownership/js_owner.h"
#include "dj_test.h"

static const uint8_t EUI[LW_EUI_LEN] = { 0x70, 0xb3, 0xd5, 0x7e, 0xd0, 0x00, 0x01, 0x01 };
static const uint8_t EUI2[LW_EUI_LEN] = { 0x70, 0xb3, 0xd5, 0x7e, 0xd0, 0x00, 0x01, 0x02 };
static const uint8_t EUI3[LW_EUI_LEN] = { 0x70, 0xb3, 0xd5, 0x7e, 0xd0, 0x00, 0x01, 0x03 };
static const uint8_t EUI4[LW_EUI_LEN] = { 0x70, 0xb3, 0xd5, 0x7e, 0xd0, 0x00, 0x01, 0x04 };
static const uint8_t JOINEUI[LW_EUI_LEN] = { 0x70, 0xb3, 0xd5, 0x7e, 0xd0, 0, 0, 1 };

/* the mock DNS: a chain TXT per name, owner keys per zone, a switch for "down" */
struct zone_rec {
	char name[DA_QNAME_MAX + 1];
	uint16_t type;
	enum da_status st;
	uint32_t ttl;
	char *txt;		/* TXT */
	uint8_t *spki;		/* TLSA 3 1 0 */
	size_t spki_len;
};

struct dns {
	struct zone_rec rec[8];
	size_t n;
	bool down, hold;	/* hold: leave queries unanswered */
	unsigned asked;
	uint64_t now_ms;
};

static int mock_start(struct da_query *q, const char *name, uint16_t type, void *arg)
{
	struct dns *d = arg;
	struct da_answer *a = NULL;
	size_t i;

	d->asked++;
	if (d->hold)
		return DJ_EOK;
	if (d->down) {
		assert_int_equal(da__answer_new(type, DA_TEMPFAIL, 0, "down", &a), DJ_EOK);
		da__query_answer(q, a);
		return DJ_EOK;
	}
	for (i = 0; i < d->n; i++)
		if (d->rec[i].type == type && strcmp(d->rec[i].name, name) == 0)
			break;
	if (i == d->n) {
		assert_int_equal(da__answer_new(type, DA_NXDOMAIN, 30, "nx", &a), DJ_EOK);
	} else if (d->rec[i].st != DA_SECURE) {
		assert_int_equal(da__answer_new(type, d->rec[i].st, d->rec[i].ttl, "x", &a), DJ_EOK);
	} else if (type == DA_T_TXT) {
		assert_int_equal(da__answer_new(type, DA_SECURE, d->rec[i].ttl, NULL, &a), DJ_EOK);
		a->txt = calloc(1, sizeof(*a->txt));
		a->txt_len = calloc(1, sizeof(*a->txt_len));
		assert_non_null(a->txt);
		assert_non_null(a->txt_len);
		a->txt[0] = strdup(d->rec[i].txt);
		a->txt_len[0] = strlen(d->rec[i].txt);
		a->n = 1;
	} else {
		uint8_t *rd = malloc(3 + d->rec[i].spki_len);
		const uint8_t *p = rd;
		size_t len = 3 + d->rec[i].spki_len;

		assert_non_null(rd);
		rd[0] = 3;
		rd[1] = 1;
		rd[2] = 0;
		memcpy(rd + 3, d->rec[i].spki, d->rec[i].spki_len);
		assert_int_equal(da__answer_tlsa(DA_SECURE, d->rec[i].ttl, &p, &len, 1, &a), DJ_EOK);
		free(rd);
	}
	da__query_answer(q, a);
	return DJ_EOK;
}

static void mock_cancel(struct da_query *q, void *arg)
{
	(void)q;
	(void)arg;
}

static uint64_t mock_clock(void *arg)
{
	return ((struct dns *)arg)->now_ms;
}

static struct zone_rec *rec_add(struct dns *d, const char *name, uint16_t type, uint32_t ttl)
{
	struct zone_rec *r;

	assert_true(d->n < 8);
	r = &d->rec[d->n++];
	memset(r, 0, sizeof(*r));
	snprintf(r->name, sizeof(r->name), "%s", name);
	r->type = type;
	r->ttl = ttl;
	r->st = DA_SECURE;
	return r;
}

static void dns_clear(struct dns *d)
{
	for (size_t i = 0; i < d->n; i++) {
		free(d->rec[i].txt);
		free(d->rec[i].spki);
	}
	d->n = 0;
}

/* owner_key - publish \p key as _owner.<zone> TLSA 3 1 0 */
static void owner_key(struct dns *d, const char *zone, EVP_PKEY *key, uint32_t ttl)
{
	char name[DV_NAME_MAX];
	struct zone_rec *r;

	assert_int_equal(dv_owner_name(zone, name), DJ_EOK);
	name[strlen(name) - 1] = '\0';	/* canonical: no trailing dot */
	r = rec_add(d, name, DA_T_TLSA, ttl);
	assert_int_equal(dv_key_spki(key, &r->spki, &r->spki_len), DJ_EOK);
}

/* link - a signed link */
static void link_make(struct dv_link *l, const uint8_t eui[LW_EUI_LEN], const char *from,
		      const char *to, uint64_t serial, enum dv_auth auth, const char *signer,
		      const char *netid_hex, EVP_PKEY *key)
{
	memset(l, 0, sizeof(*l));
	memcpy(l->dev_eui, eui, LW_EUI_LEN);
	memcpy(l->join_eui, JOINEUI, LW_EUI_LEN);
	snprintf(l->from_zone, sizeof(l->from_zone), "%s", from);
	snprintf(l->to_zone, sizeof(l->to_zone), "%s", to);
	l->n_net_ids = 1;
	assert_int_equal(dj_hex_parse(netid_hex, l->net_ids[0], DV_NETID_LEN), DJ_EOK);
	l->n_as_ids = 1;
	snprintf(l->as_ids[0], DV_ASID_MAX, "as.%s", to);
	l->as_ids[0][strlen(l->as_ids[0]) - 1] = '\0';
	l->serial = serial;
	l->not_before = 1700000000 + (int64_t)serial;
	memset(l->nonce, (int)serial, DV_NONCE_LEN);
	snprintf(l->signer_zone, sizeof(l->signer_zone), "%s", signer);
	l->auth = auth;
	assert_int_equal(dv_link_sign(l, key), DJ_EOK);
}

/* publish - the chain of \p n links as _ownership.<eui>._device.<zone> TXT */
static void publish(struct dns *d, const uint8_t eui[LW_EUI_LEN], const char *zone,
		    const struct dv_link *links, size_t n, uint32_t ttl)
{
	struct dv_chain *c = calloc(1, sizeof(*c));
	char name[DV_NAME_MAX], why[128];
	struct zone_rec *r;
	uint8_t *bin = NULL;
	size_t len = 0;

	assert_non_null(c);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(dv_chain_append(c, &links[i], why, sizeof(why)), DJ_EOK);
	assert_int_equal(dv_chain_encode(c, &bin, &len), DJ_EOK);
	assert_int_equal(dv_chain_name(eui, zone, name), DJ_EOK);
	name[strlen(name) - 1] = '\0';
	r = rec_add(d, name, DA_T_TXT, ttl);
	assert_int_equal(dv_b64_encode(bin, len, &r->txt), DJ_EOK);
	free(bin);
	free(c);
}

struct fx {
	struct event_base *base;
	struct da_resolver *r;
	struct js_owner_ctx *oc;
	struct dns d;
	EVP_PKEY *maker, *opa, *mallory;
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	struct da_resolver_props rp = { .ttl_cap = 3600, .neg_ttl = 60 };
	struct da_backend be = { mock_start, mock_cancel, NULL };
	struct js_owner_props op = { .ttl_cap = 3600, .neg_ttl = 60, .clock = mock_clock };

	assert_non_null(f);
	f->d.now_ms = 5000000;
	f->base = event_base_new();
	assert_non_null(f->base);
	be.arg = &f->d;
	assert_int_equal(da__resolver_new_backend(f->base, &rp, &be, mock_clock, &f->d, &f->r),
			 DJ_EOK);
	op.resolver = f->r;
	op.clock_arg = &f->d;
	assert_int_equal(js_owner_ctx_new(&op, &f->oc), DJ_EOK);
	f->maker = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	f->opa = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	f->mallory = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	assert_non_null(f->maker);
	assert_non_null(f->opa);
	assert_non_null(f->mallory);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	js_owner_ctx_free(f->oc);
	da_resolver_free(f->r);
	event_base_free(f->base);
	dns_clear(&f->d);
	EVP_PKEY_free(f->maker);
	EVP_PKEY_free(f->opa);
	EVP_PKEY_free(f->mallory);
	free(f);
	return 0;
}

struct got {
	int calls;
	struct js_owner_verdict v;
};

static void on_verdict(const struct js_owner_verdict *v, void *arg)
{
	struct got *g = arg;

	g->calls++;
	g->v = *v;
}

/* check - one check, run to its verdict */
static struct got check(struct fx *f, const uint8_t eui[LW_EUI_LEN], const char *zone,
			uint64_t serial, const char *identity, const char *sender, bool is_ns)
{
	struct js_owner_req q = { .zone = zone, .serial = serial, .identity = identity,
				  .sender_id = sender, .is_ns = is_ns };
	struct got g = { 0 };

	memcpy(q.dev_eui, eui, LW_EUI_LEN);
	assert_int_equal(js_owner_check(f->oc, &q, on_verdict, &g), DJ_EOK);
	for (int i = 0; i < 10 && g.calls == 0; i++)
		assert_true(event_base_loop(f->base, EVLOOP_NONBLOCK) >= 0);
	assert_int_equal(g.calls, 1);
	return g;
}

#define ALLOWED(g) assert_int_equal((g).v.status, JS_OWNER_ALLOWED)
#define REFUSED(g, what)                                                                        \
	do {                                                                                    \
		assert_int_equal((g).v.status, JS_OWNER_REFUSED);                               \
		if (strstr((g).v.why, (what)) == NULL)                                          \
			fail_msg("why \"%s\" lacks \"%s\"", (g).v.why, (what));                  \
	} while (0)

static void test_host_in_zone(void **state)
{
	static const struct {
		const char *id, *zone;
		bool want;
	} t[] = {
		{ "_ns-client.ns1.opa.test", "opa.test.", true },
		{ "_as-client.as1.OPA.test", "opa.test", true },
		{ "ns1.opa.test", "opa.test.", true },
		{ "opa.test", "opa.test.", true },
		{ "_ns-client.opa.test", "opa.test.", true },
		{ "_ns-client.ns1.xopa.test", "opa.test.", false },
		{ "_ns-client.ns1.opa.test.evil", "opa.test.", false },
		{ "_ns-client.ns1.opb.test", "opa.test.", false },
		{ "_js-client.js.opa.test", "opa.test.", true },	/* a name under it too */
		{ "_js-client.js.opb.test", "opa.test.", false },
		{ "test", "opa.test.", false },
		{ "", "opa.test.", false },
		{ "ns1..opa.test", "opa.test.", false },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		if (js_owner_host_in_zone(t[i].id, t[i].zone) != t[i].want)
			fail_msg("%s in %s: want %d", t[i].id, t[i].zone, t[i].want);
	assert_false(js_owner_host_in_zone(NULL, "opa.test."));
}

static void test_allowed_and_cached(void **state)
{
	struct fx *f = *state;
	struct dv_link l[2];
	struct js_owner_stats st;
	struct got g;
	unsigned asked;

	link_make(&l[0], EUI, "maker.test.", "opa.test.", 1, DV_AUTH_MANUFACTURER, "maker.test.",
		  "000013", f->maker);
	owner_key(&f->d, "maker.test.", f->maker, 300);
	publish(&f->d, EUI, "opa.test.", l, 1, 300);
	g = check(f, EUI, "opa.test.", 1, "_ns-client.ns1.opa.test", "000013", true);
	ALLOWED(g);
	assert_true(g.v.has_net_id);
	assert_memory_equal(g.v.net_id, "\x00\x00\x13", 3);
	assert_false(g.v.from_cache);
	/* warm: answered at once, from the cache, without asking the DNS */
	asked = f->d.asked;
	g = check(f, EUI, "opa.test.", 1, "_ns-client.ns2.opa.test", "000013", true);
	ALLOWED(g);
	assert_true(g.v.from_cache);
	assert_int_equal(f->d.asked, asked);
	/* the peer part, per request */
	REFUSED(check(f, EUI, "opa.test.", 1, "_ns-client.ns1.opb.test", "000013", true),
		"is not in the owner zone opa.test.");
	REFUSED(check(f, EUI, "opa.test.", 1, "_ns-client.ns1.opa.test", "000099", true),
		"NetID 000099 is not among the rights");
	ALLOWED(check(f, EUI, "opa.test.", 1, "_as-client.as1.opa.test", "as.opa.test", false));
	REFUSED(check(f, EUI, "opa.test.", 1, "_as-client.as1.opa.test", "as.opb.test", false),
		"AS-ID as.opb.test is not among the rights");
	/* a registry that moved on (serial 2) makes the cached chain stale: fetched again, and
	 * the DNS still holding serial 1 is refused */
	REFUSED(check(f, EUI, "opa.test.", 2, "_ns-client.ns1.opa.test", "000013", true),
		"stale chain");
	js_owner_stats(f->oc, &st);
	assert_true(st.hits >= 4);
	assert_true(st.refused >= 4);
	/* the chain moved to opb (signed by opa): a check for the new zone fetches it */
	link_make(&l[1], EUI, "opa.test.", "opb.test.", 2, DV_AUTH_SIGNED, "opa.test.", "00001a",
		  f->opa);
	owner_key(&f->d, "opa.test.", f->opa, 300);
	publish(&f->d, EUI, "opb.test.", l, 2, 300);
	ALLOWED(check(f, EUI, "opb.test.", 2, "_ns-client.ns1.opb.test", "00001a", true));
	REFUSED(check(f, EUI, "opb.test.", 2, "_ns-client.ns1.opa.test", "000013", true),
		"is not in the owner zone opb.test.");
}

/* refuse_first_link - a first link for \p link_eui (maker.test. -> \p to, signed with \p key)
 * published as the chain of \p pub_eui in opa.test.: the check of \p pub_eui refuses, saying
 * \p why */
static void refuse_first_link(struct fx *f, const uint8_t link_eui[LW_EUI_LEN], const char *to,
			      EVP_PKEY *key, const uint8_t pub_eui[LW_EUI_LEN], const char *why)
{
	struct dv_link l;

	link_make(&l, link_eui, "maker.test.", to, 1, DV_AUTH_MANUFACTURER, "maker.test.", "000013",
		  key);
	publish(&f->d, pub_eui, "opa.test.", &l, 1, 300);
	REFUSED(check(f, pub_eui, "opa.test.", 1, "_ns-client.ns1.opa.test", "000013", true), why);
}

static void test_refusals(void **state)
{
	struct fx *f = *state;

	owner_key(&f->d, "maker.test.", f->maker, 300);
	/* no chain in the DNS */
	REFUSED(check(f, EUI, "opa.test.", 1, "_ns-client.ns1.opa.test", "000013", true),
		"no secure chain");
	/* a chain signed by a key that is not maker's */
	refuse_first_link(f, EUI2, "opa.test.", f->mallory, EUI2, "bad signature");
	/* another device's valid chain under this device's name */
	refuse_first_link(f, EUI2, "opa.test.", f->maker, EUI3, "another device's");
	/* a chain that ends at another zone than the one it is published in */
	refuse_first_link(f, EUI4, "opb.test.", f->maker, EUI4, "ends at opb.test.");
}

static void test_keys(void **state)
{
	struct fx *f = *state;
	struct dv_link l[2];
	struct zone_rec *r;

	link_make(&l[0], EUI, "maker.test.", "opa.test.", 1, DV_AUTH_MANUFACTURER, "maker.test.",
		  "000013", f->maker);
	link_make(&l[1], EUI, "opa.test.", "opb.test.", 2, DV_AUTH_SIGNED, "opa.test.", "00001a",
		  f->opa);
	publish(&f->d, EUI, "opb.test.", l, 2, 300);
	owner_key(&f->d, "maker.test.", f->maker, 300);
	/* opa's key missing */
	REFUSED(check(f, EUI, "opb.test.", 2, "_ns-client.ns1.opb.test", "00001a", true),
		"no _owner key for opa.test.");
	/* insecure: neg_ttl of the refusal is 60 s; move past it */
	owner_key(&f->d, "opa.test.", f->opa, 300);
	r = &f->d.rec[f->d.n - 1];
	r->st = DA_INSECURE;
	f->d.now_ms += 61000;
	REFUSED(check(f, EUI, "opb.test.", 2, "_ns-client.ns1.opb.test", "00001a", true),
		"not DNSSEC-secure");
	r->st = DA_SECURE;
	f->d.now_ms += 61000;
	ALLOWED(check(f, EUI, "opb.test.", 2, "_ns-client.ns1.opb.test", "00001a", true));
}

static void test_fail_closed_and_refresh(void **state)
{
	struct fx *f = *state;
	struct dv_link l;
	struct js_owner_stats st;
	struct got g;

	link_make(&l, EUI, "maker.test.", "opa.test.", 1, DV_AUTH_MANUFACTURER, "maker.test.",
		  "000013", f->maker);
	owner_key(&f->d, "maker.test.", f->maker, 300);
	publish(&f->d, EUI, "opa.test.", &l, 1, 100);	/* the chain: TTL 100 s */
	ALLOWED(check(f, EUI, "opa.test.", 1, "_ns-client.ns1.opa.test", "000013", true));
	/* the DNS goes down: within the validity, still served */
	f->d.down = true;
	f->d.now_ms += 50000;
	g = check(f, EUI, "opa.test.", 1, "_ns-client.ns1.opa.test", "000013", true);
	ALLOWED(g);
	assert_true(g.v.from_cache);
	/* in the refresh window (last 10%): served, and a refresh starts; it finds the
	 * resolver's entry (which tries the DNS in the background, in vain) */
	f->d.now_ms += 41000;
	ALLOWED(check(f, EUI, "opa.test.", 1, "_ns-client.ns1.opa.test", "000013", true));
	for (int i = 0; i < 5; i++)
		assert_true(event_base_loop(f->base, EVLOOP_NONBLOCK) >= 0);
	js_owner_stats(f->oc, &st);
	assert_int_equal(st.refreshes, 1);
	/* past the validity: the failed refresh did not extend it: temporary failure */
	f->d.now_ms += 10000;
	g = check(f, EUI, "opa.test.", 1, "_ns-client.ns1.opa.test", "000013", true);
	assert_int_equal(g.v.status, JS_OWNER_TEMPFAIL);
	assert_non_null(strstr(g.v.why, "DNS unavailable"));
	/* back: allowed again (valid 100 s) */
	f->d.down = false;
	ALLOWED(check(f, EUI, "opa.test.", 1, "_ns-client.ns1.opa.test", "000013", true));
	/* joins in the refresh window while the DNS answers renew the entry */
	f->d.now_ms += 91000;
	ALLOWED(check(f, EUI, "opa.test.", 1, "_ns-client.ns1.opa.test", "000013", true));
	for (int i = 0; i < 5; i++)
		assert_true(event_base_loop(f->base, EVLOOP_NONBLOCK) >= 0);
	f->d.now_ms += 3000;
	ALLOWED(check(f, EUI, "opa.test.", 1, "_ns-client.ns1.opa.test", "000013", true));
	for (int i = 0; i < 5; i++)
		assert_true(event_base_loop(f->base, EVLOOP_NONBLOCK) >= 0);
	f->d.down = true;
	f->d.now_ms += 30000;	/* past the first entry's end, within the renewed one */
	g = check(f, EUI, "opa.test.", 1, "_ns-client.ns1.opa.test", "000013", true);
	ALLOWED(g);
	assert_true(g.v.from_cache);
}

static void test_cancel_on_free(void **state)
{
	struct fx *f = *state;
	struct js_owner_req q = { .zone = "opa.test.", .serial = 1,
				  .identity = "_ns-client.ns1.opa.test", .sender_id = "000013",
				  .is_ns = true };
	struct got g = { 0 }, g2 = { 0 };

	memcpy(q.dev_eui, EUI, LW_EUI_LEN);
	f->d.hold = true;
	assert_int_equal(js_owner_check(f->oc, &q, on_verdict, &g), DJ_EOK);
	assert_int_equal(js_owner_check(f->oc, &q, on_verdict, &g2), DJ_EOK);	/* coalesced */
	assert_int_equal(f->d.asked, 1);
	assert_int_equal(g.calls, 0);
	q.zone = "bad zone";
	assert_int_equal(js_owner_check(f->oc, &q, on_verdict, &g), DJ_EINVAL);
	js_owner_ctx_free(f->oc);
	f->oc = NULL;
	assert_int_equal(g.calls, 1);
	assert_int_equal(g.v.status, JS_OWNER_CANCELLED);
	assert_int_equal(g2.calls, 1);
}

/* ---- js_owner_inspect: the stored chain, link by link ----------------------------------- */

struct report {
	int calls;
	bool cancelled;
	size_t n;
	enum js_owner_link_result res[4];
	char why[4][JS_OWNER_WHY_MAX];
	enum da_status pst;
	int psame;
	uint64_t pserial;
	struct js_owner_inspection *h;
};

static void on_report(const struct js_owner_report *r, void *arg)
{
	struct report *g = arg;

	g->calls++;
	assert_null(g->h);	/* cleared before the callback */
	g->cancelled = r->cancelled;
	if (r->cancelled)
		return;
	g->n = r->chain->n;
	for (size_t i = 0; i < g->n && i < 4; i++) {
		g->res[i] = r->links[i].result;
		snprintf(g->why[i], sizeof(g->why[i]), "%s", r->links[i].why);
	}
	g->pst = r->published_status;
	g->psame = r->published_same;
	g->pserial = r->published_serial;
}

/* encode - the chain of \p n links, as the store keeps it */
static void encode(const struct dv_link *links, size_t n, uint8_t **bin, size_t *len)
{
	struct dv_chain *c = calloc(1, sizeof(*c));

	assert_non_null(c);
	for (size_t i = 0; i < n; i++)
		c->links[c->n++] = links[i];
	assert_int_equal(dv_chain_encode(c, bin, len), DJ_EOK);
	free(c);
}

/* inspect - one inspection of EUI in opb.test., run to its report */
static struct report inspect(struct fx *f, const uint8_t *bin, size_t len)
{
	struct report g = { 0 };

	assert_int_equal(js_owner_inspect(f->oc, EUI, "opb.test", bin, len, on_report, &g, &g.h),
			 DJ_EOK);
	for (int i = 0; i < 20 && g.calls == 0; i++)
		assert_true(event_base_loop(f->base, EVLOOP_NONBLOCK) >= 0);
	assert_int_equal(g.calls, 1);
	return g;
}

#define LINK_IS(g, i, r, what)                                                                  \
	do {                                                                                    \
		assert_int_equal((g).res[i], (r));                                              \
		if (strstr((g).why[i], (what)) == NULL)                                         \
			fail_msg("link %d: \"%s\" lacks \"%s\"", (i) + 1, (g).why[i], (what));      \
	} while (0)

/* owner_rec - the mock's _owner TLSA record of \p zone */
static struct zone_rec *owner_rec(struct fx *f, const char *zone)
{
	char name[DV_NAME_MAX];

	assert_int_equal(dv_owner_name(zone, name), DJ_EOK);
	name[strlen(name) - 1] = '\0';
	for (size_t i = 0; i < f->d.n; i++)
		if (f->d.rec[i].type == DA_T_TLSA && strcmp(f->d.rec[i].name, name) == 0)
			return &f->d.rec[i];
	fail_msg("no record for %s", zone);
	return NULL;
}

static void test_inspect(void **state)
{
	struct fx *f = *state;
	struct dv_link l[2];
	struct report g;
	struct zone_rec *mk;
	uint8_t *bin = NULL, *one = NULL;
	size_t len = 0, onelen = 0;
	unsigned asked;

	link_make(&l[0], EUI, "maker.test.", "opa.test.", 1, DV_AUTH_MANUFACTURER, "maker.test.",
		  "000013", f->maker);
	link_make(&l[1], EUI, "opa.test.", "opb.test.", 2, DV_AUTH_SIGNED, "opa.test.",
		  "00001a", f->opa);
	owner_key(&f->d, "maker.test.", f->maker, 10);
	owner_key(&f->d, "opa.test.", f->opa, 10);
	publish(&f->d, EUI, "opb.test.", l, 2, 10);
	encode(l, 2, &bin, &len);
	encode(l, 1, &one, &onelen);

	/* good: both verified, the published chain is the stored one */
	g = inspect(f, bin, len);
	assert_int_equal(g.n, 2);
	LINK_IS(g, 0, JS_LINK_VERIFIED, "verified");
	LINK_IS(g, 1, JS_LINK_VERIFIED, "verified");
	assert_int_equal(g.pst, DA_SECURE);
	assert_int_equal(g.psame, 1);
	assert_int_equal(g.pserial, 2);
	/* a stored chain that differs from the published one (warm cache: answered at once) */
	asked = f->d.asked;
	g = inspect(f, one, onelen);
	assert_int_equal(f->d.asked, asked);
	assert_int_equal(g.n, 1);
	assert_int_equal(g.psame, 0);
	assert_int_equal(g.pserial, 2);

	/* maker's key replaced by mallory's: link 1 bad, link 2 (opa's) still verified */
	mk = owner_rec(f, "maker.test.");
	free(mk->spki);
	assert_int_equal(dv_key_spki(f->mallory, &mk->spki, &mk->spki_len), DJ_EOK);
	f->d.now_ms += 11000;
	g = inspect(f, bin, len);
	LINK_IS(g, 0, JS_LINK_BADSIG, "bad signature: it does not verify under the key at "
		"_owner.maker.test.");
	LINK_IS(g, 1, JS_LINK_VERIFIED, "verified");
	/* insecure, bogus, NODATA, NXDOMAIN (no record), down */
	static const struct {
		enum da_status st;
		enum js_owner_link_result want;
		const char *why;
	} t[] = {
		{ DA_INSECURE, JS_LINK_INSECURE, "insecure: _owner.maker.test. is not DNSSEC-signed" },
		{ DA_BOGUS, JS_LINK_BOGUS, "bogus: _owner.maker.test. failed DNSSEC validation" },
		{ DA_NODATA, JS_LINK_NOKEY, "signer key not found: _owner.maker.test. TLSA: NODATA" },
		{ DA_UNUSABLE, JS_LINK_NOKEY, "no usable TLSA 3 1 0" },
	};
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		mk->st = t[i].st;
		f->d.now_ms += 61000;	/* past neg_ttl and the TTL */
		g = inspect(f, bin, len);
		LINK_IS(g, 0, t[i].want, t[i].why);
		LINK_IS(g, 1, JS_LINK_VERIFIED, "verified");
	}
	mk->name[0] = 'x';	/* gone: NXDOMAIN */
	f->d.now_ms += 61000;
	g = inspect(f, bin, len);
	LINK_IS(g, 0, JS_LINK_NOKEY, "signer key not found: _owner.maker.test. TLSA: NXDOMAIN");
	f->d.down = true;
	f->d.now_ms += 61000;
	g = inspect(f, bin, len);
	LINK_IS(g, 0, JS_LINK_TEMPFAIL, "lookup failed: _owner.maker.test.");
	LINK_IS(g, 1, JS_LINK_TEMPFAIL, "lookup failed: _owner.opa.test.");
	assert_int_equal(g.pst, DA_TEMPFAIL);
	assert_int_equal(g.psame, -1);

	/* bad arguments: no callback */
	struct report bad = { 0 };
	assert_int_equal(js_owner_inspect(f->oc, EUI, "opb.test", bin, len - 1, on_report, &bad,
					  &bad.h), DJ_EMALFORMED);
	assert_int_equal(js_owner_inspect(f->oc, EUI, "bad zone", bin, len, on_report, &bad,
					  &bad.h), DJ_EINVAL);
	assert_int_equal(bad.calls, 0);
	assert_null(bad.h);
	free(bin);
	free(one);
}

static void test_inspect_cancel(void **state)
{
	struct fx *f = *state;
	struct dv_link l;
	struct report g = { 0 }, g2 = { 0 };
	struct got c = { 0 };
	struct js_owner_stats st;
	struct js_owner_req q = { .zone = "opb.test.", .serial = 1,
				  .identity = "_ns-client.ns1.opb.test", .sender_id = "000013",
				  .is_ns = true };
	uint8_t *bin = NULL;
	size_t len = 0;

	link_make(&l, EUI, "maker.test.", "opb.test.", 1, DV_AUTH_MANUFACTURER, "maker.test.",
		  "000013", f->maker);
	encode(&l, 1, &bin, &len);
	f->d.hold = true;
	assert_int_equal(js_owner_inspect(f->oc, EUI, "opb.test", bin, len, on_report, &g, &g.h),
			 DJ_EOK);
	assert_non_null(g.h);
	/* a join's check of the same device does not wait on the inspection: a fetch of its own
	 * (the resolver shares the query), which cancelling the inspection leaves alone */
	memcpy(q.dev_eui, EUI, LW_EUI_LEN);
	assert_int_equal(js_owner_check(f->oc, &q, on_verdict, &c), DJ_EOK);
	js_owner_stats(f->oc, &st);
	assert_int_equal(st.fetches, 1);
	js_owner_inspect_cancel(g.h);
	assert_int_equal(g.calls, 0);
	assert_int_equal(c.calls, 0);
	/* pending at js_owner_ctx_free: a cancelled report */
	assert_int_equal(js_owner_inspect(f->oc, EUI, "opb.test", bin, len, on_report, &g2,
					  &g2.h), DJ_EOK);
	js_owner_ctx_free(f->oc);
	f->oc = NULL;
	assert_int_equal(g2.calls, 1);
	assert_true(g2.cancelled);
	assert_null(g2.h);
	assert_int_equal(c.calls, 1);
	assert_int_equal(g.calls, 0);
	free(bin);
}

DJ_TEST_MAIN(
	cmocka_unit_test(test_host_in_zone),
	cmocka_unit_test_setup_teardown(test_inspect, setup, teardown),
	cmocka_unit_test_setup_teardown(test_inspect_cancel, setup, teardown),
	cmocka_unit_test_setup_teardown(test_allowed_and_cached, setup, teardown),
	cmocka_unit_test_setup_teardown(test_refusals, setup, teardown),
	cmocka_unit_test_setup_teardown(test_keys, setup, teardown),
	cmocka_unit_test_setup_teardown(test_fail_closed_and_refresh, setup, teardown),
	cmocka_unit_test_setup_teardown(test_cancel_on_free, setup, teardown))
