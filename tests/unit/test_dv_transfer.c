/*
 * test_dv_transfer.c - ownership transfers (devices/ownership/dv_transfer.h) and the owner-key
 * lookup (dv_ownerkey.h), on an SQLite store in DJ_TEST_TMPDIR, a fake DNS publisher and keys
 * of the test's own.
 *
 * Each verdict is checked both ways (a transfer that passes, and one that is replayed, stale,
 * signed by the wrong key, bogus, from the wrong owner, malformed, for an unknown device, with
 * a wrong or expired auth code), and a crash is simulated at every step of the step machine:
 * the publisher fails at its k-th call, or the run stops right after step k was recorded; a
 * resume must then leave the store and the DNS exactly as an uninterrupted run does.
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
#include <openssl/evp.h>

#include "common/dj_err.h"
#include "common/dj_hex.h"
#include "ownership/dv_enroll.h"
#include "ownership/dv_ownerkey.h"
#include "ownership/dv_transfer.h"
#include "store/js_keystore.h"
#include "store/js_store.h"
#include "store/js_store_owner.h"
#include "dj_test.h"

#define NDEV 2			/* devices enrolled in each store */
#define MODEL_MAX 16		/* DNS names the fake publisher holds */
#define QUEUE_MAX 16		/* changes queued before a flush */
#define STATE_MAX 8192		/* the printed end state */
#define STOP_RC DJ_ESHUTDOWN	/* what the stepped hook returns to "crash" */

enum zone_id { Z_MAKER, Z_OPA, Z_OPB, Z_OPC, Z_MALLORY, NZONES };

static const char *const zones[NZONES] = { "maker.test.", "opa.test.", "opb.test.",
					   "opc.test.", "mallory.test." };
static const uint8_t master[JS_MASTER_KEY_LEN] = { 9 };

/* ---- the fake publisher: a zone model changed only by a flush ----------------------------- */

struct rec {
	char zone[DV_ZONE_MAX];
	uint8_t eui[LW_EUI_LEN];
	bool cname;
	char target[DV_ZONE_MAX];	/* cname */
	char chain_hex[80];		/* records: a digest of the chain, in hex */
	char attrs[64];
};

struct fake_pub {
	struct rec model[MODEL_MAX];
	size_t n;
	struct rec queue[QUEUE_MAX];
	size_t nq;
	unsigned calls, fail_at;	/* fail the fail_at-th call (1-based); 0: never */
};

/* fake_call - count a call; whether it is the one to fail */
static bool fake_call(struct fake_pub *f, char *err, size_t errlen)
{
	if (++f->calls != f->fail_at)
		return false;
	snprintf(err, errlen, "injected failure at call %u", f->calls);
	f->nq = 0;	/* what was not acknowledged never reached the zone */
	return true;
}

static int fake_device(void *arg, const char *zone, const uint8_t eui[LW_EUI_LEN],
		       const char *attrs, const uint8_t *chain, size_t chain_len, char *err,
		       size_t errlen)
{
	struct fake_pub *f = arg;
	struct rec *q;
	uint8_t md[EVP_MAX_MD_SIZE];
	unsigned mdlen = 0;

	if (fake_call(f, err, errlen))
		return DJ_EAGAIN;
	assert_true(f->nq < QUEUE_MAX);
	q = &f->queue[f->nq++];
	memset(q, 0, sizeof(*q));
	snprintf(q->zone, sizeof(q->zone), "%s", zone);
	memcpy(q->eui, eui, LW_EUI_LEN);
	assert_int_equal(EVP_Digest(chain, chain_len, md, &mdlen, EVP_sha256(), NULL), 1);
	dj_hex_format(md, 32, q->chain_hex);
	snprintf(q->attrs, sizeof(q->attrs), "%s", attrs);
	return DJ_EOK;
}

static int fake_moved(void *arg, const char *old_zone, const uint8_t eui[LW_EUI_LEN],
		      const char *new_zone, char *err, size_t errlen)
{
	struct fake_pub *f = arg;
	struct rec *q;

	if (fake_call(f, err, errlen))
		return DJ_EAGAIN;
	assert_true(f->nq < QUEUE_MAX);
	q = &f->queue[f->nq++];
	memset(q, 0, sizeof(*q));
	snprintf(q->zone, sizeof(q->zone), "%s", old_zone);
	memcpy(q->eui, eui, LW_EUI_LEN);
	q->cname = true;
	snprintf(q->target, sizeof(q->target), "%s", new_zone);
	return DJ_EOK;
}

/* fake_flush - apply the queue: each change replaces what the name held */
static int fake_flush(void *arg, char *err, size_t errlen)
{
	struct fake_pub *f = arg;
	size_t i, j;

	if (fake_call(f, err, errlen))
		return DJ_EAGAIN;
	for (i = 0; i < f->nq; i++) {
		for (j = 0; j < f->n; j++)
			if (strcmp(f->model[j].zone, f->queue[i].zone) == 0 &&
			    memcmp(f->model[j].eui, f->queue[i].eui, LW_EUI_LEN) == 0)
				break;
		if (j == f->n) {
			assert_true(f->n < MODEL_MAX);
			f->n++;
		}
		f->model[j] = f->queue[i];
	}
	f->nq = 0;
	return DJ_EOK;
}

/* ---- fixtures ---------------------------------------------------------------------------- */

/* Keys and enrollment rows, made once: every store gets the same bytes. */
struct world {
	EVP_PKEY *keys[NZONES];
	enum dv_key_status kst[NZONES];		/* what the key callback answers */
	struct js_device devs[NDEV];
	struct js_owner owners[NDEV];
	struct js_keystore *ks;
	uint8_t kcv[JS_KCV_LEN];
};

struct ctx {
	struct world *w;
	char path[256];
	struct js_store *s;
	struct fake_pub pub;
	struct dv_xfer_env env;
	int stop_step;				/* the hook "crashes" after it; -1: never */
};

static struct world W;

/* key_fn - the test's _owner keys (dv_key_fn) */
static enum dv_key_status key_fn(const char *zone, void *arg, EVP_PKEY **out)
{
	struct world *w = arg;
	size_t i;

	*out = NULL;
	for (i = 0; i < NZONES; i++)
		if (strcmp(zones[i], zone) == 0) {
			if (w->kst[i] != DV_KEY_OK)
				return w->kst[i];
			assert_int_equal(EVP_PKEY_up_ref(w->keys[i]), 1);
			*out = w->keys[i];
			return DV_KEY_OK;
		}
	return DV_KEY_ABSENT;
}

/* stepped - the crash hook */
static int stepped(enum js_transfer_step step, void *arg)
{
	struct ctx *c = arg;

	return (int)step == c->stop_step ? STOP_RC : DJ_EOK;
}

static int group_setup(void **state)
{
	static struct dv_csv_row rows[NDEV];
	struct dv_csv csv = { .n = NDEV, .rows = rows };
	struct dv_link rights;
	char why[DV_ENROLL_WHY_MAX];
	size_t i;

	(void)state;
	memset(&W, 0, sizeof(W));
	for (i = 0; i < NZONES; i++) {
		W.keys[i] = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
		if (W.keys[i] == NULL)
			return -1;
	}
	if (js_keystore_new(master, &W.ks) != DJ_EOK)
		return -1;
	js_keystore_kcv(W.ks, W.kcv);
	memset(&rights, 0, sizeof(rights));
	rights.n_net_ids = 1;
	memcpy(rights.net_ids[0], "\x00\x00\x13", DV_NETID_LEN);
	for (i = 0; i < NDEV; i++) {
		memset(&rows[i], 0, sizeof(rows[i]));
		rows[i].line = (unsigned)i + 2;
		memcpy(rows[i].dev_eui, "\x70\xb3\xd5\x7e\xd0\x00\x01\x00", LW_EUI_LEN);
		rows[i].dev_eui[7] = (uint8_t)(i + 1);
		memcpy(rows[i].join_eui, "\x70\xb3\xd5\x7e\xd0\x00\x00\x01", LW_EUI_LEN);
		rows[i].mac_version = LW_V1_0_4;
		rows[i].app_key[0] = 0x2b;
		snprintf(rows[i].model, sizeof(rows[i].model), "meter-%zu", i);
	}
	if (dv_enroll_build(W.ks, &csv, &(struct dv_enroll_props){
				    .from_zone = zones[Z_MAKER], .zone = zones[Z_OPA],
				    .rights = &rights, .key = W.keys[Z_MAKER], .now = 1000 },
			    W.devs, W.owners, why, sizeof(why)) != DJ_EOK) {
		fprintf(stderr, "dv_enroll_build: %s\n", why);
		return -1;
	}
	return 0;
}

static int group_teardown(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < NZONES; i++)
		EVP_PKEY_free(W.keys[i]);
	for (i = 0; i < NDEV; i++)
		free(W.owners[i].chain);
	js_keystore_free(W.ks);
	return 0;
}

/* store_open - a fresh store holding the enrolled devices */
static void store_open(struct ctx *c)
{
	static int seq;
	const char *dir = getenv("DJ_TEST_TMPDIR");
	struct js_store_props p = { .kcv = W.kcv };
	size_t failed = 0;

	snprintf(c->path, sizeof(c->path), "%s/xfer-%d-%d.db", dir != NULL ? dir : "/tmp",
		 (int)getpid(), seq++);
	unlink(c->path);
	p.path = c->path;
	assert_int_equal(js_store_open(&p, &c->s), DJ_EOK);
	assert_int_equal(js_store_owner_enroll(c->s, W.devs, W.owners, NDEV, "test", &failed),
			 DJ_EOK);
}

static int setup(void **state)
{
	struct ctx *c = calloc(1, sizeof(*c));
	size_t i;

	if (c == NULL)
		return -1;
	c->w = &W;
	for (i = 0; i < NZONES; i++)
		W.kst[i] = DV_KEY_OK;
	store_open(c);
	c->stop_step = -1;
	c->env.store = c->s;
	c->env.actor = "test";
	c->env.key_fn = key_fn;
	c->env.key_arg = &W;
	c->env.pub = (struct dv_xfer_pub){ fake_device, fake_moved, fake_flush, &c->pub };
	c->env.stepped = stepped;
	c->env.stepped_arg = c;
	*state = c;
	return 0;
}

static int teardown(void **state)
{
	struct ctx *c = *state;

	js_store_close(c->s);
	unlink(c->path);
	free(c);
	return 0;
}

/* request - a signed request for device \p i from \p from to \p to, signed with \p key */
static char *request(struct ctx *c, size_t i, enum zone_id from, enum zone_id to,
		     enum zone_id key)
{
	struct dv_xfer_report r;
	struct dv_link rights;
	char *b64 = NULL;

	memset(&rights, 0, sizeof(rights));
	rights.n_as_ids = 1;
	strcpy(rights.as_ids[0], "as.example");
	assert_int_equal(dv_transfer_request(c->s, W.devs[i].dev_eui, zones[from], zones[to],
					     &rights, W.keys[key], &b64, &r), DJ_EOK);
	assert_int_equal(r.status, DV_XFER_OK);
	assert_non_null(b64);
	return b64;
}

/* apply - one batch of requests (or auth-code lines) */
static int apply(struct ctx *c, enum dv_xfer_kind kind, const char *const *lines, size_t n,
		 EVP_PKEY *rkey, struct dv_xfer_report *r)
{
	struct dv_link rights;
	struct dv_xfer_batch b = { .kind = kind, .n = n, .line = lines,
				   .to_zone = zones[Z_OPC], .rights = &rights,
				   .registry_key = rkey };

	memset(&rights, 0, sizeof(rights));
	memset(r, 0, sizeof(*r));
	return dv_transfer_apply(&c->env, &b, r);
}

/* owner_of - the registry's owner zone and serial of device \p i */
static const char *owner_of(struct ctx *c, size_t i, uint64_t *serial)
{
	static char zone[DV_ZONE_MAX];
	struct js_owner o;

	assert_int_equal(js_store_owner_get(c->s, W.devs[i].dev_eui, &o), DJ_EOK);
	snprintf(zone, sizeof(zone), "%s", o.zone);
	if (serial != NULL)
		*serial = o.serial;
	js_owner_clear(&o);
	return zone;
}

/* count_pending - js_store_transfer_foreach_pending's callback */
static int count_pending(const struct js_transfer *t, void *arg)
{
	(void)t;
	(*(size_t *)arg)++;
	return DJ_EOK;
}

/* rec_cmp - order of the zone model in a printed state */
static int rec_cmp(const void *a, const void *b)
{
	const struct rec *x = a, *y = b;
	int d = strcmp(x->zone, y->zone);

	return d != 0 ? d : memcmp(x->eui, y->eui, LW_EUI_LEN);
}

/* state - the store's owner rows, unfinished transfers and the zone model, as text */
static void state(struct ctx *c, char out[STATE_MAX])
{
	struct js_owner o;
	struct rec m[MODEL_MAX];
	size_t i, pending = 0, len = 0;
	static char big[2 * JS_OWNER_CHAIN_MAX + 1];

	out[0] = '\0';
	for (i = 0; i < NDEV; i++) {
		assert_int_equal(js_store_owner_get(c->s, W.devs[i].dev_eui, &o), DJ_EOK);
		dj_hex_format(o.chain, o.chain_len < 200 ? o.chain_len : 200, big);
		len += (size_t)snprintf(out + len, STATE_MAX - len, "owner %zu %s %llu %d %s\n", i,
					o.zone, (unsigned long long)o.serial, (int)o.published,
					big);
		js_owner_clear(&o);
	}
	assert_int_equal(js_store_transfer_foreach_pending(c->s, count_pending, &pending), DJ_EOK);
	len += (size_t)snprintf(out + len, STATE_MAX - len, "pending %zu\n", pending);
	memcpy(m, c->pub.model, c->pub.n * sizeof(m[0]));
	qsort(m, c->pub.n, sizeof(m[0]), rec_cmp);
	for (i = 0; i < c->pub.n; i++)
		len += (size_t)snprintf(out + len, STATE_MAX - len, "%s %02x %s %s %s %s\n",
					m[i].zone, m[i].eui[7], m[i].cname ? "CNAME" : "REC",
					m[i].target, m[i].chain_hex, m[i].attrs);
	assert_true(len < STATE_MAX);
}

/* ---- the owner key ----------------------------------------------------------------------- */

/* tlsa_rdata - "3 1 0 <SPKI of key>" (or another usage/selector/mtype) in wire form */
static size_t tlsa_rdata(EVP_PKEY *key, uint8_t u, uint8_t s, uint8_t m, uint8_t *out,
			 size_t cap)
{
	uint8_t *spki = NULL;
	size_t len = 0;

	assert_int_equal(dv_key_spki(key, &spki, &len), DJ_EOK);
	assert_true(len + 3 <= cap);
	out[0] = u;
	out[1] = s;
	out[2] = m;
	memcpy(out + 3, spki, len);
	free(spki);
	return len + 3;
}

static void test_ownerkey_from_rdata(void **state)
{
	uint8_t a[200], b[200], junk[40] = { 3, 1, 0 };
	const uint8_t *rd[3];
	size_t len[3];
	struct dv_link l;
	EVP_PKEY *k = NULL;

	(void)state;
	len[0] = tlsa_rdata(W.keys[Z_OPA], DJ_TLSA_USAGE_DANE_EE, DJ_TLSA_SEL_SPKI,
			    DJ_TLSA_MT_FULL, a, sizeof(a));
	rd[0] = a;
	assert_int_equal(dv_ownerkey_from_rdata(rd, len, 1, NULL, &k), DJ_EOK);
	assert_int_equal(EVP_PKEY_eq(k, W.keys[Z_OPA]), 1);
	EVP_PKEY_free(k);

	/* 2 1 0, 3 0 0 and a malformed SPKI carry no owner key */
	a[0] = DJ_TLSA_USAGE_DANE_TA;
	assert_int_equal(dv_ownerkey_from_rdata(rd, len, 1, NULL, &k), DJ_ENOENT);
	assert_null(k);
	a[0] = DJ_TLSA_USAGE_DANE_EE;
	a[1] = DJ_TLSA_SEL_CERT;
	assert_int_equal(dv_ownerkey_from_rdata(rd, len, 1, NULL, &k), DJ_ENOENT);
	a[1] = DJ_TLSA_SEL_SPKI;
	rd[0] = junk;
	len[0] = sizeof(junk);
	assert_int_equal(dv_ownerkey_from_rdata(rd, len, 1, NULL, &k), DJ_ENOENT);
	assert_int_equal(dv_ownerkey_from_rdata(rd, len, 0, NULL, &k), DJ_ENOENT);

	/* a rollover: two keys; the one that verifies the zone's link is taken */
	rd[0] = a;
	len[0] = tlsa_rdata(W.keys[Z_OPA], 3, 1, 0, a, sizeof(a));
	rd[1] = b;
	len[1] = tlsa_rdata(W.keys[Z_OPB], 3, 1, 0, b, sizeof(b));
	rd[2] = junk;
	len[2] = sizeof(junk);
	memset(&l, 0, sizeof(l));
	{
		struct dv_chain *ch = calloc(1, sizeof(*ch));

		assert_non_null(ch);
		assert_int_equal(dv_chain_decode(W.owners[0].chain, W.owners[0].chain_len, ch),
				 DJ_EOK);
		l = ch->links[0];
		free(ch);
	}
	assert_int_equal(dv_link_sign(&l, W.keys[Z_OPB]), DJ_EOK);
	assert_int_equal(dv_ownerkey_from_rdata(rd, len, 3, &l, &k), DJ_EOK);
	assert_int_equal(EVP_PKEY_eq(k, W.keys[Z_OPB]), 1);
	EVP_PKEY_free(k);
	assert_int_equal(dv_ownerkey_from_rdata(rd, len, 3, NULL, &k), DJ_EOK);
	assert_int_equal(EVP_PKEY_eq(k, W.keys[Z_OPA]), 1);
	EVP_PKEY_free(k);

	/* the verdict comes first */
	assert_int_equal(dv_ownerkey_status(DA_SECURE), DV_KEY_OK);
	assert_int_equal(dv_ownerkey_status(DA_INSECURE), DV_KEY_INSECURE);
	assert_int_equal(dv_ownerkey_status(DA_BOGUS), DV_KEY_INSECURE);
	assert_int_equal(dv_ownerkey_status(DA_TEMPFAIL), DV_KEY_TEMPFAIL);
	assert_int_equal(dv_ownerkey_status(DA_NXDOMAIN), DV_KEY_ABSENT);
	assert_int_equal(dv_ownerkey_status(DA_NODATA), DV_KEY_ABSENT);
	assert_int_equal(dv_ownerkey_status(DA_UNUSABLE), DV_KEY_ABSENT);
}

/* ---- verdicts of signed requests --------------------------------------------------------- */

static void test_request_ok_then_already_done(void **state)
{
	struct ctx *c = *state;
	struct dv_xfer_report r;
	char *req = request(c, 0, Z_OPA, Z_OPB, Z_OPA);
	const char *lines[] = { req };
	uint64_t serial = 0;

	assert_int_equal(apply(c, DV_XFER_REQUESTS, lines, 1, NULL, &r), DJ_EOK);
	assert_int_equal(r.status, DV_XFER_OK);
	assert_int_equal(r.transferred, 1);
	assert_string_equal(owner_of(c, 0, &serial), "opb.test.");
	assert_int_equal(serial, 2);
	assert_string_equal(owner_of(c, 1, NULL), "opa.test.");
	/* the new zone holds the records, the old name is a CNAME to them */
	assert_int_equal(c->pub.n, 2);
	assert_string_equal(c->pub.model[0].zone, "opb.test.");
	assert_false(c->pub.model[0].cname);
	assert_string_equal(c->pub.model[1].zone, "opa.test.");
	assert_true(c->pub.model[1].cname);
	assert_string_equal(c->pub.model[1].target, "opb.test.");

	/* the same file again: already done, nothing changes */
	assert_int_equal(apply(c, DV_XFER_REQUESTS, lines, 1, NULL, &r), DJ_EOK);
	assert_int_equal(r.status, DV_XFER_OK);
	assert_int_equal(r.transferred, 0);
	assert_int_equal(r.done_before, 1);
	assert_string_equal(owner_of(c, 0, &serial), "opb.test.");
	assert_int_equal(serial, 2);
	free(req);
}

static void test_request_replayed(void **state)
{
	struct ctx *c = *state;
	struct dv_xfer_report r;
	char *ab = request(c, 0, Z_OPA, Z_OPB, Z_OPA), *bc;
	const char *lines[1];

	lines[0] = ab;
	assert_int_equal(apply(c, DV_XFER_REQUESTS, lines, 1, NULL, &r), DJ_EOK);
	assert_int_equal(r.status, DV_XFER_OK);
	bc = request(c, 0, Z_OPB, Z_OPC, Z_OPB);
	lines[0] = bc;
	assert_int_equal(apply(c, DV_XFER_REQUESTS, lines, 1, NULL, &r), DJ_EOK);
	assert_int_equal(r.status, DV_XFER_OK);
	/* A -> B again, now that the device moved on: its nonce was used */
	lines[0] = ab;
	assert_int_equal(apply(c, DV_XFER_REQUESTS, lines, 1, NULL, &r), DJ_EOK);
	assert_int_equal(r.status, DV_XFER_REPLAYED);
	assert_non_null(strstr(r.why, "replayed request"));
	assert_string_equal(owner_of(c, 0, NULL), "opc.test.");
	free(ab);
	free(bc);
}

static void test_request_stale(void **state)
{
	struct ctx *c = *state;
	struct dv_xfer_report r;
	char *ab = request(c, 0, Z_OPA, Z_OPB, Z_OPA), *ac = request(c, 0, Z_OPA, Z_OPC, Z_OPA);
	const char *lines[1] = { ab };

	assert_int_equal(apply(c, DV_XFER_REQUESTS, lines, 1, NULL, &r), DJ_EOK);
	assert_int_equal(r.status, DV_XFER_OK);
	/* signed for serial 2 as well, but the device is at serial 2 now */
	lines[0] = ac;
	assert_int_equal(apply(c, DV_XFER_REQUESTS, lines, 1, NULL, &r), DJ_EOK);
	assert_int_equal(r.status, DV_XFER_STALE);
	assert_non_null(strstr(r.why, "stale"));
	assert_string_equal(owner_of(c, 0, NULL), "opb.test.");
	free(ab);
	free(ac);
}

static void test_request_wrong_key(void **state)
{
	struct ctx *c = *state;
	struct dv_xfer_report r;
	char *req = request(c, 0, Z_OPA, Z_OPB, Z_MALLORY);
	const char *lines[] = { req };

	assert_int_equal(apply(c, DV_XFER_REQUESTS, lines, 1, NULL, &r), DJ_EOK);
	assert_int_equal(r.status, DV_XFER_DENIED);
	assert_non_null(strstr(r.why, "does not verify under the _owner key of opa.test."));
	assert_string_equal(owner_of(c, 0, NULL), "opa.test.");
	assert_int_equal(c->pub.calls, 0);	/* the DNS was not touched */
	free(req);
}

/* relink - decode request \p b64, let \p edit change it, re-encode (re-signed by \p key, or
 * with its signature kept when \p key is NULL) */
static char *relink(const char *b64, void (*edit)(struct dv_link *l), EVP_PKEY *key)
{
	struct dv_link l;
	uint8_t *raw = NULL, *enc = NULL;
	size_t rawlen = 0, elen = 0;
	char *out = NULL;

	assert_int_equal(dv_b64_decode(b64, strlen(b64), &raw, &rawlen), DJ_EOK);
	assert_int_equal(dv_link_decode(raw, rawlen, &l), DJ_EOK);
	edit(&l);
	if (key != NULL)
		assert_int_equal(dv_link_sign(&l, key), DJ_EOK);
	assert_int_equal(dv_link_encode(&l, &enc, &elen), DJ_EOK);
	assert_int_equal(dv_b64_encode(enc, elen, &out), DJ_EOK);
	free(raw);
	free(enc);
	return out;
}

static void flip_sig(struct dv_link *l)
{
	l->sig[l->sig_len / 2] ^= 0x01;
}

static void from_opb(struct dv_link *l)
{
	strcpy(l->from_zone, "opb.test.");
	strcpy(l->signer_zone, "opb.test.");
}

static void as_code(struct dv_link *l)
{
	l->auth = DV_AUTH_CODE;
}

static void test_request_bogus_signature(void **state)
{
	struct ctx *c = *state;
	struct dv_xfer_report r;
	char *req = request(c, 0, Z_OPA, Z_OPB, Z_OPA), *bad = relink(req, flip_sig, NULL);
	const char *lines[] = { bad };

	assert_int_equal(apply(c, DV_XFER_REQUESTS, lines, 1, NULL, &r), DJ_EOK);
	assert_int_equal(r.status, DV_XFER_DENIED);
	assert_non_null(strstr(r.why, "does not verify"));
	assert_string_equal(owner_of(c, 0, NULL), "opa.test.");
	free(req);
	free(bad);
}

static void test_request_wrong_owner(void **state)
{
	struct ctx *c = *state;
	struct dv_xfer_report r;
	char *req = request(c, 0, Z_OPA, Z_OPC, Z_OPA);
	/* opb, which does not own the device, signs a request in its own name */
	char *bad = relink(req, from_opb, W.keys[Z_OPB]);
	const char *lines[] = { bad };
	char *b64 = NULL;

	assert_int_equal(apply(c, DV_XFER_REQUESTS, lines, 1, NULL, &r), DJ_EOK);
	assert_int_equal(r.status, DV_XFER_DENIED);
	assert_non_null(strstr(r.why, "is not the current owner"));
	assert_string_equal(owner_of(c, 0, NULL), "opa.test.");
	/* and the request maker refuses a zone that does not own the device */
	assert_int_equal(dv_transfer_request(c->s, W.devs[0].dev_eui, "opb.test.", "opc.test.",
					     NULL, W.keys[Z_OPB], &b64, &r), DJ_EOK);
	assert_int_equal(r.status, DV_XFER_DENIED);
	assert_string_equal(r.owner, "opa.test.");
	assert_null(b64);
	free(req);
	free(bad);
}

static void test_request_keys_from_dns(void **state)
{
	struct ctx *c = *state;
	struct dv_xfer_report r;
	char *req = request(c, 0, Z_OPA, Z_OPB, Z_OPA);
	const char *lines[] = { req };

	W.kst[Z_OPA] = DV_KEY_TEMPFAIL;
	assert_int_equal(apply(c, DV_XFER_REQUESTS, lines, 1, NULL, &r), DJ_EOK);
	assert_int_equal(r.status, DV_XFER_TEMPFAIL);
	W.kst[Z_OPA] = DV_KEY_INSECURE;
	assert_int_equal(apply(c, DV_XFER_REQUESTS, lines, 1, NULL, &r), DJ_EOK);
	assert_int_equal(r.status, DV_XFER_DENIED);
	assert_non_null(strstr(r.why, "not DNSSEC-secure"));
	W.kst[Z_OPA] = DV_KEY_ABSENT;
	assert_int_equal(apply(c, DV_XFER_REQUESTS, lines, 1, NULL, &r), DJ_EOK);
	assert_int_equal(r.status, DV_XFER_DENIED);
	assert_string_equal(owner_of(c, 0, NULL), "opa.test.");
	W.kst[Z_OPA] = DV_KEY_OK;
	assert_int_equal(apply(c, DV_XFER_REQUESTS, lines, 1, NULL, &r), DJ_EOK);
	assert_int_equal(r.status, DV_XFER_OK);
	free(req);
}

static void test_request_malformed(void **state)
{
	struct ctx *c = *state;
	struct dv_xfer_report r;
	char *req = request(c, 0, Z_OPA, Z_OPB, Z_OPA), *code = relink(req, as_code, W.keys[Z_OPA]);
	char *other = request(c, 1, Z_OPA, Z_OPB, Z_OPA);
	const char *junk[] = { "not base64!" }, *b64junk[] = { "AAECAwQF" };
	const char *coded[] = { code }, *twice[] = { req, other, req };

	assert_int_equal(apply(c, DV_XFER_REQUESTS, junk, 1, NULL, &r), DJ_EOK);
	assert_int_equal(r.status, DV_XFER_MALFORMED);
	assert_int_equal(apply(c, DV_XFER_REQUESTS, b64junk, 1, NULL, &r), DJ_EOK);
	assert_int_equal(r.status, DV_XFER_MALFORMED);
	/* a link that is not a signed request is not a request */
	assert_int_equal(apply(c, DV_XFER_REQUESTS, coded, 1, NULL, &r), DJ_EOK);
	assert_int_equal(r.status, DV_XFER_MALFORMED);
	/* a device twice in one batch: the whole batch is refused, nothing recorded */
	assert_int_equal(apply(c, DV_XFER_REQUESTS, twice, 3, NULL, &r), DJ_EOK);
	assert_int_equal(r.status, DV_XFER_MALFORMED);
	assert_int_equal(r.item, 2);
	assert_string_equal(owner_of(c, 0, NULL), "opa.test.");
	assert_string_equal(owner_of(c, 1, NULL), "opa.test.");
	assert_int_equal(c->pub.calls, 0);
	free(req);
	free(code);
	free(other);
}

static void test_batch_all_or_nothing(void **state)
{
	struct ctx *c = *state;
	struct dv_xfer_report r;
	char *good = request(c, 0, Z_OPA, Z_OPB, Z_OPA), *bad = request(c, 1, Z_OPA, Z_OPB,
									   Z_MALLORY);
	const char *lines[] = { good, bad };
	size_t pending = 0;

	assert_int_equal(apply(c, DV_XFER_REQUESTS, lines, 2, NULL, &r), DJ_EOK);
	assert_int_equal(r.status, DV_XFER_DENIED);
	assert_int_equal(r.item, 1);
	assert_string_equal(owner_of(c, 0, NULL), "opa.test.");
	assert_int_equal(js_store_transfer_foreach_pending(c->s, count_pending, &pending), DJ_EOK);
	assert_int_equal(pending, 0);
	free(good);
	free(bad);
}

/* ---- auth codes -------------------------------------------------------------------------- */

/* set_code - a new auth code for device \p i (owned by \p zone) valid \p ttl seconds */
static void set_code(struct ctx *c, size_t i, enum zone_id zone, int64_t ttl,
		     char line[DV_AUTHCODE_LEN + 2 * LW_EUI_LEN + 2])
{
	char codes[1][DV_AUTHCODE_LEN + 1], eui[2 * LW_EUI_LEN + 1];
	struct js_authcode rec;
	struct dv_xfer_report r;
	size_t failed = 0;

	memset(&rec, 0, sizeof(rec));
	assert_int_equal(dv_transfer_authcodes(c->s, (const uint8_t (*)[LW_EUI_LEN])
					       W.devs[i].dev_eui, 1, zones[zone],
					       js_store_now(c->s) + ttl, codes, &rec, &r), DJ_EOK);
	assert_int_equal(r.status, DV_XFER_OK);
	assert_int_equal(js_store_authcode_put(c->s, &rec, 1, "test", &failed), DJ_EOK);
	dj_hex_format(W.devs[i].dev_eui, LW_EUI_LEN, eui);
	snprintf(line, DV_AUTHCODE_LEN + 2 * LW_EUI_LEN + 2, "%s,%s", eui, codes[0]);
}

static void test_authcode_ok_then_already_done(void **state)
{
	struct ctx *c = *state;
	struct dv_xfer_report r;
	char line[64];
	const char *lines[] = { line };
	uint64_t serial = 0;

	set_code(c, 0, Z_OPA, 3600, line);
	assert_int_equal(apply(c, DV_XFER_AUTHCODES, lines, 1, W.keys[Z_MAKER], &r), DJ_EOK);
	assert_int_equal(r.status, DV_XFER_OK);
	assert_int_equal(r.transferred, 1);
	assert_string_equal(owner_of(c, 0, &serial), "opc.test.");
	assert_int_equal(serial, 2);
	/* the code was used up: the same file again is a re-run, and changes nothing */
	assert_int_equal(apply(c, DV_XFER_AUTHCODES, lines, 1, W.keys[Z_MAKER], &r), DJ_EOK);
	assert_int_equal(r.status, DV_XFER_OK);
	assert_int_equal(r.done_before, 1);
	assert_string_equal(owner_of(c, 0, &serial), "opc.test.");
	assert_int_equal(serial, 2);
}

/* a revoked code is gone (and audited): the transfer by it is refused, a second revoke finds
 * nothing, and a device that is not enrolled has nothing to revoke */
static void test_authcode_revoked(void **state)
{
	struct ctx *c = *state;
	struct dv_xfer_report r;
	struct js_authcode rec;
	char line[64];
	const char *lines[] = { line };
	uint8_t other[LW_EUI_LEN] = { 0x70, 0xb3, 0xd5, 0x7e, 0xd0, 0, 1, 0xff };

	set_code(c, 0, Z_OPA, 3600, line);
	assert_int_equal(js_store_authcode_get(c->s, W.devs[0].dev_eui, &rec), DJ_EOK);
	assert_int_equal(js_store_authcode_revoke(c->s, W.devs[0].dev_eui, "apikey:ops"), DJ_EOK);
	assert_int_equal(js_store_authcode_get(c->s, W.devs[0].dev_eui, &rec), DJ_ENOENT);
	assert_int_equal(js_store_authcode_revoke(c->s, W.devs[0].dev_eui, "apikey:ops"),
			 DJ_ENOENT);
	assert_int_equal(js_store_authcode_revoke(c->s, other, "apikey:ops"), DJ_ENOENT);
	assert_int_equal(apply(c, DV_XFER_AUTHCODES, lines, 1, W.keys[Z_MAKER], &r), DJ_EOK);
	assert_int_equal(r.status, DV_XFER_DENIED);
	assert_non_null(strstr(r.why, "wrong auth code"));
	assert_string_equal(owner_of(c, 0, NULL), "opa.test.");
}

static void test_authcode_refused(void **state)
{
	struct ctx *c = *state;
	struct dv_xfer_report r;
	char line[64], wrong[64];
	const char *lines[] = { line }, *wrongs[] = { wrong }, *nocomma[] = { "70b3d57ed0000101" };
	const char *unknown[] = { "70b3d57ed00001ff,AAAAAAAAAAAAAAAAAAAAAAAA" };
	uint8_t other[1][LW_EUI_LEN] = { { 0x70, 0xb3, 0xd5, 0x7e, 0xd0, 0, 1, 0xff } };
	char codes[1][DV_AUTHCODE_LEN + 1];
	struct js_authcode rec;

	set_code(c, 0, Z_OPA, 3600, line);
	snprintf(wrong, sizeof(wrong), "%s", line);
	wrong[strlen(wrong) - 1] = wrong[strlen(wrong) - 1] == 'A' ? 'B' : 'A';
	assert_int_equal(apply(c, DV_XFER_AUTHCODES, wrongs, 1, W.keys[Z_MAKER], &r), DJ_EOK);
	assert_int_equal(r.status, DV_XFER_DENIED);
	assert_non_null(strstr(r.why, "wrong auth code"));
	/* the right code, but a registry key that is not maker.test.'s published one */
	assert_int_equal(apply(c, DV_XFER_AUTHCODES, lines, 1, W.keys[Z_OPA], &r), DJ_EOK);
	assert_int_equal(r.status, DV_XFER_DENIED);
	assert_non_null(strstr(r.why, "not the _owner key published for maker.test."));
	assert_int_equal(apply(c, DV_XFER_AUTHCODES, nocomma, 1, W.keys[Z_MAKER], &r), DJ_EOK);
	assert_int_equal(r.status, DV_XFER_MALFORMED);
	assert_int_equal(apply(c, DV_XFER_AUTHCODES, unknown, 1, W.keys[Z_MAKER], &r), DJ_EOK);
	assert_int_equal(r.status, DV_XFER_UNKNOWN);
	assert_string_equal(owner_of(c, 0, NULL), "opa.test.");
	/* an expired code */
	set_code(c, 1, Z_OPA, -1, line);
	assert_int_equal(apply(c, DV_XFER_AUTHCODES, lines, 1, W.keys[Z_MAKER], &r), DJ_EOK);
	assert_int_equal(r.status, DV_XFER_DENIED);
	assert_non_null(strstr(r.why, "expired"));
	assert_string_equal(owner_of(c, 1, NULL), "opa.test.");
	/* codes only for devices the zone owns, and enrolled ones */
	assert_int_equal(dv_transfer_authcodes(c->s, (const uint8_t (*)[LW_EUI_LEN])
					       W.devs[0].dev_eui, 1, "opb.test.", 0, codes, &rec,
					       &r), DJ_EOK);
	assert_int_equal(r.status, DV_XFER_DENIED);
	assert_string_equal(r.owner, "opa.test.");
	assert_int_equal(dv_transfer_authcodes(c->s, (const uint8_t (*)[LW_EUI_LEN])other, 1,
					       "opa.test.", 0, codes, &rec, &r), DJ_EOK);
	assert_int_equal(r.status, DV_XFER_UNKNOWN);
}

/* ---- crashes ----------------------------------------------------------------------------- */

/* run_once - a fresh store, the batch of \p lines with a publisher failing at call \p fail_at
 * or a stop after step \p stop_step, then a resume; the end state into \p out */
static void run_once(const char *const *lines, unsigned fail_at, int stop_step,
		     char out[STATE_MAX], bool *interrupted)
{
	struct ctx *c;
	struct dv_xfer_report r;
	char again[STATE_MAX];
	size_t pending, i;
	int rc;

	assert_int_equal(setup((void **)&c), 0);
	c->pub.fail_at = fail_at;
	c->stop_step = stop_step;
	rc = apply(c, DV_XFER_REQUESTS, lines, NDEV, NULL, &r);
	*interrupted = rc != DJ_EOK;
	if (fail_at != 0 && rc != DJ_EOK) {
		assert_int_equal(rc, DJ_EAGAIN);
		assert_true(r.dns_failed);
	}
	if (stop_step >= 0 && rc != DJ_EOK)
		assert_int_equal(rc, STOP_RC);
	pending = 0;
	assert_int_equal(js_store_transfer_foreach_pending(c->s, count_pending, &pending), DJ_EOK);
	/* the whole batch is recorded and unfinished, or (a stop after DONE) finished */
	assert_int_equal(pending, rc != DJ_EOK && stop_step != JS_XFER_DONE ? NDEV : 0);
	for (i = 0; i < NDEV && pending > 0; i++)	/* no device is half-transferred */
		assert_string_equal(owner_of(c, i, NULL), "opa.test.");
	/* the next run: a working publisher, no crash */
	c->pub.fail_at = 0;
	c->stop_step = -1;
	assert_int_equal(dv_transfer_resume(&c->env, &r), DJ_EOK);
	assert_int_equal(r.resumed, pending);
	state(c, out);
	/* and the same file once more changes nothing */
	assert_int_equal(apply(c, DV_XFER_REQUESTS, lines, NDEV, NULL, &r), DJ_EOK);
	assert_int_equal(r.status, DV_XFER_OK);
	assert_int_equal(r.done_before, NDEV);
	state(c, again);
	assert_string_equal(out, again);
	assert_int_equal(teardown((void **)&c), 0);
}

static void test_crash_at_every_step(void **state)
{
	struct ctx *c = *state;
	char *req[NDEV], ref[STATE_MAX], got[STATE_MAX];
	const char *lines[NDEV];
	unsigned k, failures = 0;
	int step;
	bool stopped;
	size_t i;

	for (i = 0; i < NDEV; i++)
		lines[i] = req[i] = request(c, i, Z_OPA, Z_OPB, Z_OPA);
	run_once(lines, 0, -1, ref, &stopped);
	assert_false(stopped);
	assert_non_null(strstr(ref, "owner 0 opb.test. 2 1"));
	assert_non_null(strstr(ref, "owner 1 opb.test. 2 1"));
	assert_non_null(strstr(ref, "pending 0\n"));
	/* the publisher fails at its k-th call: every call of a run, one after the other */
	for (k = 1;; k++) {
		run_once(lines, k, -1, got, &stopped);
		if (!stopped)
			break;	/* a run has fewer calls than k: all were tried */
		failures++;
		assert_string_equal(got, ref);
	}
	/* 2 device records + flush, 2 CNAMEs + flush, flush of the last step */
	assert_int_equal(failures, 2 * NDEV + 3);
	/* the run stops right after each step was recorded */
	for (step = JS_XFER_RECORDED; step <= JS_XFER_DONE; step++) {
		run_once(lines, 0, step, got, &stopped);
		assert_true(stopped);
		assert_string_equal(got, ref);
	}
	for (i = 0; i < NDEV; i++)
		free(req[i]);
}

DJ_TEST_MAIN_GROUP(group_setup, group_teardown,
	cmocka_unit_test(test_ownerkey_from_rdata),
	cmocka_unit_test_setup_teardown(test_request_ok_then_already_done, setup, teardown),
	cmocka_unit_test_setup_teardown(test_request_replayed, setup, teardown),
	cmocka_unit_test_setup_teardown(test_request_stale, setup, teardown),
	cmocka_unit_test_setup_teardown(test_request_wrong_key, setup, teardown),
	cmocka_unit_test_setup_teardown(test_request_bogus_signature, setup, teardown),
	cmocka_unit_test_setup_teardown(test_request_wrong_owner, setup, teardown),
	cmocka_unit_test_setup_teardown(test_request_keys_from_dns, setup, teardown),
	cmocka_unit_test_setup_teardown(test_request_malformed, setup, teardown),
	cmocka_unit_test_setup_teardown(test_batch_all_or_nothing, setup, teardown),
	cmocka_unit_test_setup_teardown(test_authcode_ok_then_already_done, setup,
					teardown),
	cmocka_unit_test_setup_teardown(test_authcode_refused, setup, teardown),
	cmocka_unit_test_setup_teardown(test_authcode_revoked, setup, teardown),
	cmocka_unit_test_setup_teardown(test_crash_at_every_step, setup, teardown))
