/*
 * test_js_engine.c - the join engine against the device simulator, both store backends.
 *
 * Every accepted request is also checked from the device's side: the simulator decrypts the
 * Join-accept, checks its MIC and JoinNonce, derives the session keys, and they must equal the
 * engine's. Every refusal is checked to have changed nothing (state version unchanged).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/rand.h>

#include "common/dj_err.h"
#include "common/dj_hex.h"
#include "engine/js_engine.h"
#include "store/js_keystore.h"
#include "store/js_store.h"
#include "lorawan/lw_sim.h"

struct fx {
	struct js_keystore *ks;
	struct js_store *st;
	struct js_engine *e;
	struct lw_crypto *cx;
	uint8_t kcv[JS_KCV_LEN];
	char path[512];
	unsigned next_dev;
};

static const uint8_t JOIN_EUI[8] = { 0x70, 0xb3, 0xd5, 0x7e, 0xd0, 0x00, 0x00, 0x01 };

/* open_store - (re)open the fixture's store: SQLite when fx->path is set, else memory */
static void open_store(struct fx *f, unsigned hist)
{
	struct js_store_props sp = { .path = f->path[0] ? f->path : NULL, .kcv = f->kcv,
				     .devnonce_history = hist };
	struct js_engine_props ep = { .session_lifetime = 3600 };

	assert_int_equal(js_store_open(&sp, &f->st), DJ_EOK);
	ep.store = f->st;
	ep.ks = f->ks;
	assert_int_equal(js_engine_new(&ep, &f->e), DJ_EOK);
}

static void close_store(struct fx *f)
{
	js_engine_free(f->e);
	js_store_close(f->st);
	f->e = NULL;
	f->st = NULL;
}

static int setup_common(void **state, bool sqlite)
{
	struct fx *f = calloc(1, sizeof(*f));
	uint8_t master[JS_MASTER_KEY_LEN];
	const char *tmp = getenv("DJ_TEST_TMPDIR");

	assert_non_null(f);
	assert_int_equal(RAND_bytes(master, sizeof(master)), 1);
	assert_int_equal(js_keystore_new(master, &f->ks), DJ_EOK);
	js_keystore_kcv(f->ks, f->kcv);
	assert_int_equal(lw_crypto_new(&f->cx), DJ_EOK);
	if (sqlite) {
		snprintf(f->path, sizeof(f->path), "%s/engine-%d-%u.db", tmp ? tmp : "/tmp",
			 (int)getpid(), (unsigned)rand());
		unlink(f->path);
	}
	open_store(f, 32);
	*state = f;
	return 0;
}

static int setup_mem(void **state) { return setup_common(state, false); }
static int setup_sql(void **state) { return setup_common(state, true); }

static int teardown(void **state)
{
	struct fx *f = *state;
	char p[600];

	close_store(f);
	if (f->path[0]) {
		unlink(f->path);
		snprintf(p, sizeof(p), "%s-wal", f->path);
		unlink(p);
		snprintf(p, sizeof(p), "%s-shm", f->path);
		unlink(p);
	}
	lw_crypto_free(f->cx);
	js_keystore_free(f->ks);
	free(f);
	return 0;
}

/* enroll - add one device with random keys to the store and set up its simulator */
static void enroll(struct fx *f, enum lw_version v, struct lw_sim_device *sim)
{
	struct js_device d;
	uint8_t app[16], nwk[16];
	size_t tl = 0, failed;

	memset(&d, 0, sizeof(d));
	assert_int_equal(RAND_bytes(app, 16), 1);
	assert_int_equal(RAND_bytes(nwk, 16), 1);
	dj_be_put(0x00a0000000000000ull + ++f->next_dev, d.dev_eui, 8);
	memcpy(d.join_eui, JOIN_EUI, 8);
	d.mac_version = v;
	assert_int_equal(js_keystore_seal_root(f->ks, d.dev_eui, app, v >= LW_V1_1 ? nwk : NULL,
					       d.root_token, &tl), DJ_EOK);
	d.root_token_len = (uint32_t)tl;
	assert_int_equal(js_store_devices_add(f->st, &d, 1, "test", &failed), DJ_EOK);
	assert_int_equal(lw_sim_init(f->cx, sim, d.dev_eui, JOIN_EUI, v, app,
				     v >= LW_V1_1 ? nwk : NULL), DJ_EOK);
}

/* version_of - the device's state version */
static uint64_t version_of(struct fx *f, const uint8_t *dev_eui)
{
	static struct js_device d;

	assert_int_equal(js_store_device_get(f->st, dev_eui, &d), DJ_EOK);
	return d.st.version;
}

/* send - one request with the usual NS parameters */
static enum js_verdict send(struct fx *f, const uint8_t *phy, size_t len, uint8_t dl,
			    struct js_join_out *out)
{
	struct js_join_in in = { .phy = phy, .phy_len = len, .net_id = { 0x00, 0x00, 0x13 },
				 .dev_addr = { 0x26, 0x01, 0x02, 0x03 }, .dl_settings = dl,
				 .rx_delay = 1, .actor = "ns.test" };

	assert_int_equal(js_engine_join(f->e, &in, out), DJ_EOK);
	return out->verdict;
}

/* expect_refused - a refusal that must leave the device's state untouched */
static void expect_refused(struct fx *f, const uint8_t *dev_eui, const uint8_t *phy, size_t len,
			   uint8_t dl, enum js_verdict want)
{
	struct js_join_out out;
	uint64_t v = version_of(f, dev_eui);

	assert_int_equal(send(f, phy, len, dl, &out), want);
	assert_int_equal(out.phy_len, 0);
	assert_int_equal(version_of(f, dev_eui), v);
}

/* join_ok - a full join that the device accepts, with equal keys on both sides */
static uint32_t join_ok(struct fx *f, struct lw_sim_device *sim, uint8_t dl, uint8_t *phy,
			size_t *len)
{
	struct js_join_out out;
	enum lw_sim_status st;
	uint8_t buf[LW_PHY_MAX];
	size_t l;

	if (phy == NULL) {
		phy = buf;
		len = &l;
	}
	assert_int_equal(lw_sim_join_request(f->cx, sim, phy, len), DJ_EOK);
	assert_int_equal(send(f, phy, *len, dl, &out), JS_ACCEPT);
	assert_int_equal(lw_sim_handle_accept(f->cx, sim, out.phy, out.phy_len, &st), DJ_EOK);
	assert_int_equal(st, LW_SIM_OK);
	assert_true(lw_key_equal(&sim->keys.app_s_key, &out.keys.app_s_key));
	assert_true(lw_key_equal(&sim->keys.f_nwk_s_int_key, &out.keys.f_nwk_s_int_key));
	assert_true(lw_key_equal(&sim->keys.s_nwk_s_int_key, &out.keys.s_nwk_s_int_key));
	assert_true(lw_key_equal(&sim->keys.nwk_s_enc_key, &out.keys.nwk_s_enc_key));
	assert_int_equal(sim->opt_neg, (dl & LW_DL_OPTNEG) != 0);
	js_join_out_wipe(&out);
	return sim->join_nonce;
}

/* every version round-trips, JoinNonce counts from 1 */
static void test_round_trip_all_versions(void **state)
{
	struct fx *f = *state;

	for (enum lw_version v = LW_V1_0_0; v <= LW_V1_1; v++) {
		struct lw_sim_device sim;
		uint8_t dl = v >= LW_V1_1 ? LW_DL_OPTNEG : 0;

		enroll(f, v, &sim);
		assert_int_equal(join_ok(f, &sim, dl, NULL, NULL), 1);
		assert_int_equal(join_ok(f, &sim, dl, NULL, NULL), 2);
		assert_int_equal(join_ok(f, &sim, dl, NULL, NULL), 3);
		lw_sim_wipe(&sim);
	}
}

/* a 1.1 device behind a 1.0 network (OptNeg clear) joins with 1.0 keys under NwkKey */
static void test_v11_device_optneg_clear(void **state)
{
	struct fx *f = *state;
	struct lw_sim_device sim;
	struct js_join_out out;
	uint8_t phy[LW_PHY_MAX];
	size_t len;

	enroll(f, LW_V1_1, &sim);
	join_ok(f, &sim, 0, NULL, NULL);
	assert_false(sim.keys.v11);
	/* ... and a Rejoin-request without OptNeg is refused */
	assert_int_equal(lw_sim_rejoin_request(f->cx, &sim, LW_REQ_REJOIN1, phy, &len), DJ_EOK);
	assert_int_equal(send(f, phy, len, 0, &out), JS_V_OPTNEG_MISMATCH);
	lw_sim_wipe(&sim);
}

/* a wrong MIC is refused and changes nothing; the right frame then still works */
static void test_wrong_mic(void **state)
{
	struct fx *f = *state;
	struct lw_sim_device sim;
	uint8_t phy[LW_PHY_MAX];
	size_t len;

	enroll(f, LW_V1_1, &sim);
	assert_int_equal(lw_sim_join_request(f->cx, &sim, phy, &len), DJ_EOK);
	phy[len - 2] ^= 0x40;
	expect_refused(f, sim.dev_eui, phy, len, LW_DL_OPTNEG, JS_V_MIC_FAILED);
	join_ok(f, &sim, LW_DL_OPTNEG, NULL, NULL);
	lw_sim_wipe(&sim);
}

/* replays under each version's rule */
static void test_replays(void **state)
{
	struct fx *f = *state;

	for (enum lw_version v = LW_V1_0_0; v <= LW_V1_1; v++) {
		struct lw_sim_device sim;
		uint8_t phy[LW_PHY_MAX], dl = v >= LW_V1_1 ? LW_DL_OPTNEG : 0;
		size_t len;

		enroll(f, v, &sim);
		join_ok(f, &sim, dl, phy, &len);
		expect_refused(f, sim.dev_eui, phy, len, dl,
			       lw_version_devnonce_is_counter(v) ? JS_V_DEVNONCE_TOO_LOW
								 : JS_V_DEVNONCE_REPLAY);
		lw_sim_wipe(&sim);
	}
}

/* build_join - a Join-request with a chosen DevNonce */
static void build_join(struct fx *f, struct lw_sim_device *sim, uint16_t nonce, uint8_t *phy,
		       size_t *len)
{
	struct lw_request r;

	memset(&r, 0, sizeof(r));
	r.type = LW_REQ_JOIN;
	memcpy(r.join_eui, sim->join_eui, 8);
	memcpy(r.dev_eui, sim->dev_eui, 8);
	r.nonce = nonce;
	assert_int_equal(lw_frame_build_request(f->cx, &sim->nwk_key, &r), DJ_EOK);
	memcpy(phy, r.phy, r.phy_len);
	*len = r.phy_len;
}

/* 1.0.4/1.1: a lower DevNonce is refused; 1.0.3: a lower random one is fine */
static void test_devnonce_order(void **state)
{
	struct fx *f = *state;
	const enum lw_version vs[] = { LW_V1_0_3, LW_V1_0_4, LW_V1_1 };

	for (size_t i = 0; i < 3; i++) {
		struct lw_sim_device sim;
		struct js_join_out out;
		uint8_t phy[LW_PHY_MAX], dl = vs[i] >= LW_V1_1 ? LW_DL_OPTNEG : 0;
		size_t len;

		enroll(f, vs[i], &sim);
		build_join(f, &sim, 500, phy, &len);
		assert_int_equal(send(f, phy, len, dl, &out), JS_ACCEPT);
		build_join(f, &sim, 100, phy, &len);
		if (vs[i] == LW_V1_0_3) {
			assert_int_equal(send(f, phy, len, dl, &out), JS_ACCEPT);
		} else {
			expect_refused(f, sim.dev_eui, phy, len, dl, JS_V_DEVNONCE_TOO_LOW);
			build_join(f, &sim, 501, phy, &len);
			assert_int_equal(send(f, phy, len, dl, &out), JS_ACCEPT);
		}
		js_join_out_wipe(&out);
		lw_sim_wipe(&sim);
	}
}

/* the random-DevNonce history is bounded by its configured size (32 in these fixtures) */
static void test_history_bound(void **state)
{
	struct fx *f = *state;
	struct lw_sim_device sim;
	struct js_join_out out;
	uint8_t phy[LW_PHY_MAX];
	size_t len;

	assert_int_equal(js_store_devnonce_history(f->st), 32);
	enroll(f, LW_V1_0_2, &sim);
	for (uint16_t n = 1000; n < 1032; n++) {
		build_join(f, &sim, n, phy, &len);
		assert_int_equal(send(f, phy, len, 0, &out), JS_ACCEPT);
	}
	build_join(f, &sim, 1000, phy, &len);	/* still remembered */
	expect_refused(f, sim.dev_eui, phy, len, 0, JS_V_DEVNONCE_REPLAY);
	build_join(f, &sim, 1032, phy, &len);	/* pushes 1000 out */
	assert_int_equal(send(f, phy, len, 0, &out), JS_ACCEPT);
	build_join(f, &sim, 1001, phy, &len);
	expect_refused(f, sim.dev_eui, phy, len, 0, JS_V_DEVNONCE_REPLAY);
	build_join(f, &sim, 1000, phy, &len);
	assert_int_equal(send(f, phy, len, 0, &out), JS_ACCEPT);
	js_join_out_wipe(&out);
	lw_sim_wipe(&sim);
}

/* set_join_nonce - move a device's JoinNonce counter through the store's CAS */
static void set_join_nonce(struct fx *f, const uint8_t *dev_eui, int64_t last)
{
	static struct js_device d;
	static struct js_commit c;

	assert_int_equal(js_store_device_get(f->st, dev_eui, &d), DJ_EOK);
	memset(&c, 0, sizeof(c));
	memcpy(c.dev_eui, dev_eui, 8);
	c.expect_version = d.st.version;
	c.new_st = d.st;
	c.new_st.join_nonce_last = last;
	assert_int_equal(js_store_commit(f->st, &c), DJ_EOK);
}

/* the 24-bit JoinNonce counter: 0xFFFFFF is the last one issued, then refusal */
static void test_joinnonce_exhaustion(void **state)
{
	struct fx *f = *state;
	struct lw_sim_device sim;
	uint8_t phy[LW_PHY_MAX];
	size_t len;

	enroll(f, LW_V1_1, &sim);
	set_join_nonce(f, sim.dev_eui, 0xfffffe);
	assert_int_equal(join_ok(f, &sim, LW_DL_OPTNEG, NULL, NULL), 0xffffff);
	assert_int_equal(lw_sim_join_request(f->cx, &sim, phy, &len), DJ_EOK);
	expect_refused(f, sim.dev_eui, phy, len, LW_DL_OPTNEG, JS_V_JOINNONCE_EXHAUSTED);
	lw_sim_wipe(&sim);
}

/* truncated, oversized, wrong MType, bad Major, bad RejoinType: malformed, nothing changes */
static void test_malformed_frames(void **state)
{
	struct fx *f = *state;
	struct lw_sim_device sim;
	struct js_join_out out;
	uint8_t phy[LW_PHY_MAX + 8], bad[LW_PHY_MAX + 8];
	size_t len;
	const struct {
		size_t len_delta;
		uint8_t mhdr;
		enum lw_frame_status want;
	} cases[] = {
		{ (size_t)-1, 0x00, LW_FRAME_BAD_LENGTH },	/* truncated */
		{ 1, 0x00, LW_FRAME_BAD_LENGTH },		/* oversized */
		{ 0, 0x40, LW_FRAME_BAD_MTYPE },		/* unconfirmed data up */
		{ 0, 0x20, LW_FRAME_BAD_MTYPE },		/* a Join-accept */
		{ 0, 0x01, LW_FRAME_BAD_MAJOR },
	};

	enroll(f, LW_V1_1, &sim);
	assert_int_equal(lw_sim_join_request(f->cx, &sim, phy, &len), DJ_EOK);
	for (size_t i = 0; i < DJ_ARRAY_LEN(cases); i++) {
		memcpy(bad, phy, len);
		bad[len] = 0;
		bad[0] = cases[i].mhdr;
		expect_refused(f, sim.dev_eui, bad, len + cases[i].len_delta, LW_DL_OPTNEG,
			       JS_V_MALFORMED_FRAME);
		assert_int_equal(send(f, bad, len + cases[i].len_delta, LW_DL_OPTNEG, &out),
				 JS_V_MALFORMED_FRAME);
		assert_int_equal(out.frame_status, cases[i].want);
	}
	assert_int_equal(send(f, phy, 0, LW_DL_OPTNEG, &out), JS_V_MALFORMED_FRAME);
	assert_int_equal(out.frame_status, LW_FRAME_EMPTY);
	bad[0] = 0xc0;
	bad[1] = 3;
	assert_int_equal(send(f, bad, LW_REJOIN02_LEN, LW_DL_OPTNEG, &out), JS_V_MALFORMED_FRAME);
	assert_int_equal(out.frame_status, LW_FRAME_BAD_REJOIN_TYPE);
	/* the untouched frame still joins: nothing above consumed its DevNonce */
	assert_int_equal(send(f, phy, len, LW_DL_OPTNEG, &out), JS_ACCEPT);
	js_join_out_wipe(&out);
	lw_sim_wipe(&sim);
}

/* unknown DevEUI; wrong JoinEUI; OptNeg towards 1.0.x; rejoin from 1.0.x; bad RxDelay/CFList */
static void test_refusals(void **state)
{
	struct fx *f = *state;
	struct lw_sim_device sim, stranger, v10;
	struct js_join_out out;
	struct js_join_in in;
	uint8_t phy[LW_PHY_MAX];
	uint8_t app[16] = { 1 }, nwk[16] = { 2 }, other_eui[8] = { 9, 9, 9, 9, 9, 9, 9, 9 };
	size_t len;

	enroll(f, LW_V1_1, &sim);
	assert_int_equal(lw_sim_init(f->cx, &stranger, other_eui, JOIN_EUI, LW_V1_1, app, nwk),
			 DJ_EOK);
	assert_int_equal(lw_sim_join_request(f->cx, &stranger, phy, &len), DJ_EOK);
	assert_int_equal(send(f, phy, len, LW_DL_OPTNEG, &out), JS_V_UNKNOWN_DEVEUI);

	/* the device's own keys but another JoinEUI */
	memcpy(sim.join_eui, other_eui, 8);
	assert_int_equal(lw_sim_join_request(f->cx, &sim, phy, &len), DJ_EOK);
	expect_refused(f, sim.dev_eui, phy, len, LW_DL_OPTNEG, JS_V_WRONG_JOINEUI);
	memcpy(sim.join_eui, JOIN_EUI, 8);

	enroll(f, LW_V1_0_3, &v10);
	assert_int_equal(lw_sim_join_request(f->cx, &v10, phy, &len), DJ_EOK);
	expect_refused(f, v10.dev_eui, phy, len, LW_DL_OPTNEG, JS_V_OPTNEG_MISMATCH);

	/* a Rejoin type 1 frame built for a 1.0.x device (its AppKey as MIC key) */
	{
		struct lw_request r;

		memset(&r, 0, sizeof(r));
		r.type = LW_REQ_REJOIN1;
		memcpy(r.join_eui, JOIN_EUI, 8);
		memcpy(r.dev_eui, v10.dev_eui, 8);
		assert_int_equal(lw_frame_build_request(f->cx, &v10.nwk_key, &r), DJ_EOK);
		expect_refused(f, v10.dev_eui, r.phy, r.phy_len, LW_DL_OPTNEG,
			       JS_V_REJOIN_UNSUPPORTED);
	}

	assert_int_equal(lw_sim_join_request(f->cx, &sim, phy, &len), DJ_EOK);
	memset(&in, 0, sizeof(in));
	in.phy = phy;
	in.phy_len = len;
	in.dl_settings = LW_DL_OPTNEG;
	in.rx_delay = 0x11;	/* RFU bits set */
	assert_int_equal(js_engine_join(f->e, &in, &out), DJ_EOK);
	assert_int_equal(out.verdict, JS_V_BAD_PARAMS);
	in.rx_delay = 1;
	in.has_cflist = true;
	in.cflist[15] = 2;	/* CFListType 2 is RFU */
	assert_int_equal(js_engine_join(f->e, &in, &out), DJ_EOK);
	assert_int_equal(out.verdict, JS_V_BAD_PARAMS);
	in.cflist[15] = 1;	/* a channel-mask CFList is fine, and the device reads it back */
	in.cflist[0] = 0xff;
	assert_int_equal(js_engine_join(f->e, &in, &out), DJ_EOK);
	assert_int_equal(out.verdict, JS_ACCEPT);
	assert_int_equal(out.phy_len, LW_JOINACC_CF_LEN);
	{
		enum lw_sim_status st;

		assert_int_equal(lw_sim_handle_accept(f->cx, &sim, out.phy, out.phy_len, &st),
				 DJ_EOK);
		assert_int_equal(st, LW_SIM_OK);
	}
	js_join_out_wipe(&out);
	lw_sim_wipe(&sim);
	lw_sim_wipe(&stranger);
	lw_sim_wipe(&v10);
}

/* rejoin - send one rejoin of a type and let the device check the answer */
static void rejoin_ok(struct fx *f, struct lw_sim_device *sim, enum lw_req_type type)
{
	struct js_join_out out;
	enum lw_sim_status st;
	uint8_t phy[LW_PHY_MAX];
	size_t len;

	assert_int_equal(lw_sim_rejoin_request(f->cx, sim, type, phy, &len), DJ_EOK);
	assert_int_equal(send(f, phy, len, LW_DL_OPTNEG, &out), JS_ACCEPT);
	assert_int_equal(lw_sim_handle_accept(f->cx, sim, out.phy, out.phy_len, &st), DJ_EOK);
	assert_int_equal(st, LW_SIM_OK);
	assert_true(lw_key_equal(&sim->keys.app_s_key, &out.keys.app_s_key));
	assert_true(lw_key_equal(&sim->keys.s_nwk_s_int_key, &out.keys.s_nwk_s_int_key));
	js_join_out_wipe(&out);
}

/* Rejoin 1 (JSIntKey), Rejoin 0 and 2 (SNwkSIntKey of the current session) */
static void test_rejoins(void **state)
{
	struct fx *f = *state;
	struct lw_sim_device sim;
	uint8_t phy[LW_PHY_MAX];
	size_t len;

	enroll(f, LW_V1_1, &sim);
	/* type 0 before any session: nothing to check its MIC against */
	{
		struct lw_request r;

		memset(&r, 0, sizeof(r));
		r.type = LW_REQ_REJOIN0;
		memcpy(r.dev_eui, sim.dev_eui, 8);
		assert_int_equal(lw_frame_build_request(f->cx, &sim.nwk_key, &r), DJ_EOK);
		expect_refused(f, sim.dev_eui, r.phy, r.phy_len, LW_DL_OPTNEG, JS_V_NO_SESSION);
	}
	rejoin_ok(f, &sim, LW_REQ_REJOIN1);	/* no join needed: JSIntKey comes from NwkKey */
	join_ok(f, &sim, LW_DL_OPTNEG, NULL, NULL);
	rejoin_ok(f, &sim, LW_REQ_REJOIN0);
	rejoin_ok(f, &sim, LW_REQ_REJOIN2);
	rejoin_ok(f, &sim, LW_REQ_REJOIN0);	/* under the new session's SNwkSIntKey */

	/* RJcount1 replay: rebuild the previous type-1 frame */
	sim.rjcount1--;
	assert_int_equal(lw_sim_rejoin_request(f->cx, &sim, LW_REQ_REJOIN1, phy, &len), DJ_EOK);
	expect_refused(f, sim.dev_eui, phy, len, LW_DL_OPTNEG, JS_V_RJCOUNT1_REPLAY);
	rejoin_ok(f, &sim, LW_REQ_REJOIN1);

	/* type 0 under a stale session key */
	{
		struct lw_sim_device old = sim;

		join_ok(f, &sim, LW_DL_OPTNEG, NULL, NULL);
		assert_int_equal(lw_sim_rejoin_request(f->cx, &old, LW_REQ_REJOIN0, phy, &len),
				 DJ_EOK);
		expect_refused(f, sim.dev_eui, phy, len, LW_DL_OPTNEG, JS_V_MIC_FAILED);
		lw_sim_wipe(&old);
	}
	lw_sim_wipe(&sim);
}

struct audit_scan {
	char key_hex[33];
	unsigned releases;
	bool leaked;
};

static int scan_audit(const struct js_audit_entry *e, void *arg)
{
	struct audit_scan *a = arg;

	if (strcmp(e->event, "join-accept") == 0)
		a->releases++;
	if (strstr(e->detail, a->key_hex) != NULL || strstr(e->actor, a->key_hex) != NULL)
		a->leaked = true;
	return 0;
}

/* the AppSKey is kept sealed by SessionKeyID; the release is audited without any key */
static void test_session_and_audit(void **state)
{
	struct fx *f = *state;
	struct lw_sim_device sim;
	struct js_join_out out;
	struct js_session s;
	struct audit_scan a;
	uint8_t phy[LW_PHY_MAX], label[JS_LABEL_MAX], raw[32], want[16], sk[16];
	size_t len, llen, rlen;

	enroll(f, LW_V1_1, &sim);
	assert_int_equal(lw_sim_join_request(f->cx, &sim, phy, &len), DJ_EOK);
	assert_int_equal(send(f, phy, len, LW_DL_OPTNEG, &out), JS_ACCEPT);
	assert_int_equal(js_store_session_get(f->st, out.session_id, out.session_id_len, &s),
			 DJ_EOK);
	assert_memory_equal(s.dev_eui, sim.dev_eui, 8);
	assert_true(s.expires_at > s.created_at);
	llen = js_keystore_label(JS_PURPOSE_SESSION, out.session_id, out.session_id_len, label);
	assert_int_equal(js_keystore_open(f->ks, label, llen, s.session_token,
					  s.session_token_len, raw, sizeof(raw), &rlen), DJ_EOK);
	lw_key_export(&out.keys.app_s_key, want);
	lw_key_export(&out.keys.s_nwk_s_int_key, sk);
	assert_int_equal(rlen, 32);
	assert_memory_equal(raw, want, 16);
	assert_memory_equal(raw + 16, sk, 16);
	/* the token is bound to its SessionKeyID: another id does not open it */
	out.session_id[10] ^= 1;
	llen = js_keystore_label(JS_PURPOSE_SESSION, out.session_id, out.session_id_len, label);
	assert_int_equal(js_keystore_open(f->ks, label, llen, s.session_token,
					  s.session_token_len, raw, sizeof(raw), &rlen),
			 DJ_EUNWRAP);

	memset(&a, 0, sizeof(a));
	dj_hex_format(want, 16, a.key_hex);
	assert_int_equal(js_store_audit_foreach(f->st, sim.dev_eui, scan_audit, &a), DJ_EOK);
	assert_int_equal(a.releases, 1);
	assert_false(a.leaked);
	dj_hex_format_upper(want, 16, a.key_hex);
	assert_int_equal(js_store_audit_foreach(f->st, NULL, scan_audit, &a), DJ_EOK);
	assert_false(a.leaked);
	js_join_out_wipe(&out);
	lw_sim_wipe(&sim);
}

/* after the store is reopened, a replay is still refused and JoinNonce continues */
static void test_replay_after_reopen(void **state)
{
	struct fx *f = *state;
	struct lw_sim_device s11, s103;
	uint8_t p11[LW_PHY_MAX], p103[LW_PHY_MAX];
	size_t l11, l103;

	enroll(f, LW_V1_1, &s11);
	enroll(f, LW_V1_0_3, &s103);
	join_ok(f, &s11, LW_DL_OPTNEG, p11, &l11);
	join_ok(f, &s103, 0, p103, &l103);
	close_store(f);
	open_store(f, 32);
	expect_refused(f, s11.dev_eui, p11, l11, LW_DL_OPTNEG, JS_V_DEVNONCE_TOO_LOW);
	expect_refused(f, s103.dev_eui, p103, l103, 0, JS_V_DEVNONCE_REPLAY);
	assert_int_equal(join_ok(f, &s11, LW_DL_OPTNEG, NULL, NULL), 2);
	lw_sim_wipe(&s11);
	lw_sim_wipe(&s103);
}

struct race {
	struct fx *f;
	const uint8_t *phy;
	size_t len;
	pthread_barrier_t *bar;
	enum js_verdict verdict;
};

static void *race_main(void *arg)
{
	struct race *r = arg;
	struct js_engine_props ep = { .store = r->f->st, .ks = r->f->ks, .session_lifetime = 60 };
	struct js_engine *e;
	struct js_join_in in = { .phy = r->phy, .phy_len = r->len, .dl_settings = LW_DL_OPTNEG };
	struct js_join_out out;

	assert_int_equal(js_engine_new(&ep, &e), DJ_EOK);
	pthread_barrier_wait(r->bar);
	assert_int_equal(js_engine_join(e, &in, &out), DJ_EOK);
	r->verdict = out.verdict;
	js_join_out_wipe(&out);
	js_engine_free(e);
	return NULL;
}

/* the same Join-request from 4 threads at once: exactly one is accepted */
static void test_concurrent_duplicates(void **state)
{
	struct fx *f = *state;
	struct lw_sim_device sim;
	uint8_t phy[LW_PHY_MAX];
	size_t len;

	enroll(f, LW_V1_1, &sim);
	for (int round = 0; round < 20; round++) {
		pthread_t t[4];
		struct race r[4];
		pthread_barrier_t bar;
		int accepted = 0;

		assert_int_equal(lw_sim_join_request(f->cx, &sim, phy, &len), DJ_EOK);
		pthread_barrier_init(&bar, NULL, 4);
		for (int i = 0; i < 4; i++) {
			r[i] = (struct race){ .f = f, .phy = phy, .len = len, .bar = &bar };
			pthread_create(&t[i], NULL, race_main, &r[i]);
		}
		for (int i = 0; i < 4; i++) {
			pthread_join(t[i], NULL);
			accepted += r[i].verdict == JS_ACCEPT;
			if (r[i].verdict != JS_ACCEPT)
				assert_int_equal(r[i].verdict, JS_V_DEVNONCE_TOO_LOW);
		}
		pthread_barrier_destroy(&bar);
		assert_int_equal(accepted, 1);
	}
	lw_sim_wipe(&sim);
}


#define MANY_DEVS 40	/* more than one group of JS_ENGINE_BATCH_MAX */

struct many_fx {
	struct lw_sim_device sim[MANY_DEVS + 1];	/* the last one is never enrolled */
	uint8_t phy[MANY_DEVS + 8][LW_PHY_MAX];
	struct js_join_in in[MANY_DEVS + 8];
	struct js_join_out out[MANY_DEVS + 8];
	int rets[MANY_DEVS + 8];
	enum js_verdict want[MANY_DEVS + 8];
	int owner[MANY_DEVS + 8];	/* the simulator a request came from; -1: none */
	size_t n;
	size_t second3;			/* device 3's second request */
};

/* many_add - one more request of the batch under construction */
static void many_add(struct many_fx *m, int owner, const uint8_t *phy, size_t len,
		     enum js_verdict want)
{
	size_t i = m->n++;

	memcpy(m->phy[i], phy, len);
	memset(&m->in[i], 0, sizeof(m->in[i]));
	m->in[i].phy = m->phy[i];
	m->in[i].phy_len = len;
	m->in[i].net_id[2] = 0x13;
	memcpy(m->in[i].dev_addr, (const uint8_t[]){ 0x26, 0x01, 0x02, 0x03 }, 4);
	m->in[i].rx_delay = 1;
	m->in[i].actor = "ns.test";
	m->owner[i] = owner;
	m->want[i] = want;
}

/* many_specials - the requests a group must handle exactly as a sequence would: a copy of an
 * accepted request (a replay), a second fresh request of a device already in the group, a
 * forged MIC, an unknown DevEUI and a truncated frame */
static void many_specials(struct fx *f, struct many_fx *m)
{
	uint8_t phy[LW_PHY_MAX];
	size_t len = 0;

	/* a copy of device 0's (1.0.2, history) and device 2's (1.0.4, counter) requests */
	many_add(m, -1, m->phy[0], m->in[0].phy_len, JS_V_DEVNONCE_REPLAY);
	many_add(m, -1, m->phy[2], m->in[2].phy_len, JS_V_DEVNONCE_TOO_LOW);
	/* device 3 (1.1) joins again in the same group with its next DevNonce */
	assert_int_equal(lw_sim_join_request(f->cx, &m->sim[3], phy, &len), DJ_EOK);
	m->second3 = m->n;
	many_add(m, 3, phy, len, JS_ACCEPT);
	m->in[m->n - 1].dl_settings = LW_DL_OPTNEG;
	/* device 6's request with a higher DevNonce and the old MIC: forged */
	memcpy(phy, m->phy[6], m->in[6].phy_len);
	phy[17] ^= 0x40;
	many_add(m, -1, phy, m->in[6].phy_len, JS_V_MIC_FAILED);
	/* a device never enrolled, and a truncated frame */
	assert_int_equal(lw_sim_init(f->cx, &m->sim[MANY_DEVS], (const uint8_t[]){ 0xde, 0xad, 0,
									 0, 0, 0, 0, 1 },
				     JOIN_EUI, LW_V1_0_3, (const uint8_t[16]){ 1 }, NULL), DJ_EOK);
	assert_int_equal(lw_sim_join_request(f->cx, &m->sim[MANY_DEVS], phy, &len), DJ_EOK);
	many_add(m, -1, phy, len, JS_V_UNKNOWN_DEVEUI);
	many_add(m, -1, phy, len - 1, JS_V_MALFORMED_FRAME);
}

/* many_build - MANY_DEVS devices of every version, one Join-request each, with the special
 * requests among the first group */
static void many_build(struct fx *f, struct many_fx *m)
{
	static const enum lw_version vs[] = { LW_V1_0_2, LW_V1_0_3, LW_V1_0_4, LW_V1_1 };
	uint8_t phy[LW_PHY_MAX];
	size_t len = 0;

	memset(m, 0, sizeof(*m));
	for (int d = 0; d < MANY_DEVS; d++) {
		enum lw_version v = vs[d % 4];

		enroll(f, v, &m->sim[d]);
		assert_int_equal(lw_sim_join_request(f->cx, &m->sim[d], phy, &len), DJ_EOK);
		many_add(m, d, phy, len, JS_ACCEPT);
		if (v >= LW_V1_1)
			m->in[m->n - 1].dl_settings = LW_DL_OPTNEG;
		if (d == 9)
			many_specials(f, m);
	}
}

/* many_check - every verdict as a sequence would give it; each accept decrypts on its device
 * with equal session keys, and JoinNonces count 1, 2 for the device that joined twice */
static void many_check(struct fx *f, struct many_fx *m)
{
	for (size_t i = 0; i < m->n; i++) {
		enum lw_sim_status st;
		int d = m->owner[i];

		assert_int_equal(m->rets[i], DJ_EOK);
		assert_int_equal(m->out[i].verdict, m->want[i]);
		if (m->want[i] != JS_ACCEPT) {
			assert_int_equal(m->out[i].phy_len, 0);
			continue;
		}
		assert_int_equal(m->out[i].join_nonce, i == m->second3 ? 2 : 1);
		if (d != 3 || i == m->second3) {	/* the simulator expects its latest request */
			assert_int_equal(lw_sim_handle_accept(f->cx, &m->sim[d], m->out[i].phy,
							      m->out[i].phy_len, &st), DJ_EOK);
			assert_int_equal(st, LW_SIM_OK);
			assert_true(lw_key_equal(&m->sim[d].keys.app_s_key,
						 &m->out[i].keys.app_s_key));
			assert_true(lw_key_equal(&m->sim[d].keys.s_nwk_s_int_key,
						 &m->out[i].keys.s_nwk_s_int_key));
		}
		js_join_out_wipe(&m->out[i]);
	}
	/* one commit per accept: 40 devices, device 3 twice */
	for (int d = 0; d < MANY_DEVS; d++)
		assert_int_equal(version_of(f, m->sim[d].dev_eui), d == 3 ? 2 : 1);
	for (int d = 0; d <= MANY_DEVS; d++)
		lw_sim_wipe(&m->sim[d]);
}

/* js_engine_join_many gives what one-at-a-time handling gives, across group boundaries */
static void test_join_many(void **state)
{
	struct fx *f = *state;
	struct many_fx *m = calloc(1, sizeof(*m));

	assert_non_null(m);
	many_build(f, m);
	assert_int_equal(js_engine_join_many(f->e, m->in, m->out, m->n, m->rets), DJ_EOK);
	many_check(f, m);
	assert_int_equal(js_engine_join_many(f->e, m->in, m->out, 0, m->rets), DJ_EOK);
	assert_int_equal(js_engine_join_many(NULL, m->in, m->out, 1, m->rets), DJ_EINVAL);
	free(m);
}

struct many_wait {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	unsigned left;
};

static void many_done(struct js_join_req *r, void *arg)
{
	struct many_wait *w = arg;

	(void)r;
	pthread_mutex_lock(&w->mu);
	w->left--;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
}

/* js_engine_submit_many: the same verdicts; a second request of one device in the group loses
 * the compare-and-swap and is handed back (DJ_ECONFLICT), then accepted when submitted again */
static void test_submit_many(void **state)
{
	struct fx *f = *state;
	struct many_fx *m = calloc(1, sizeof(*m));
	struct js_join_req *rq = calloc(MANY_DEVS + 8, sizeof(*rq));
	struct js_join_req *rp[MANY_DEVS + 8];
	struct many_wait w = { .left = 0 };
	size_t again = 0;

	assert_non_null(m);
	assert_non_null(rq);
	pthread_mutex_init(&w.mu, NULL);
	pthread_cond_init(&w.cv, NULL);
	many_build(f, m);
	for (size_t i = 0; i < m->n; i++) {
		rq[i].in = m->in[i];
		rq[i].done = many_done;
		rq[i].done_arg = &w;
		rp[i] = &rq[i];
	}
	w.left = (unsigned)m->n;
	assert_int_equal(js_engine_submit_many(f->e, rp, m->n, m->rets), DJ_EOK);
	pthread_mutex_lock(&w.mu);
	while (w.left > 0)
		pthread_cond_wait(&w.cv, &w.mu);
	pthread_mutex_unlock(&w.mu);
	/* Submit again what came back DJ_ECONFLICT (device 3's second request always does; with
	 * the committer thread, so may a request prepared before an earlier accept was durable)
	 * until every request has its final answer. */
	for (int round = 0;; round++) {
		size_t k = 0;

		assert_true(round < 8);
		for (size_t i = 0; i < m->n; i++) {
			assert_int_equal(m->rets[i], DJ_EOK);
			if (rq[i].result == DJ_ECONFLICT) {
				rp[k++] = &rq[i];
				again += i == m->second3;
				continue;
			}
			assert_int_equal(rq[i].result, DJ_EOK);
			m->out[i] = rq[i].out;
		}
		if (k == 0)
			break;
		w.left = (unsigned)k;
		for (size_t j = 0; j < k; j++) {
			rp[j]->result = DJ_ERROR;
			assert_int_equal(js_engine_submit(f->e, rp[j]), DJ_EOK);
		}
		pthread_mutex_lock(&w.mu);
		while (w.left > 0)
			pthread_cond_wait(&w.cv, &w.mu);
		pthread_mutex_unlock(&w.mu);
	}
	assert_int_equal(again, 1);
	many_check(f, m);
	pthread_cond_destroy(&w.cv);
	pthread_mutex_destroy(&w.mu);
	free(rq);
	free(m);
}

#define BOTH(t)                                                                                    \
	cmocka_unit_test_setup_teardown(t, setup_mem, teardown),                                  \
		cmocka_unit_test_setup_teardown(t, setup_sql, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		BOTH(test_round_trip_all_versions),
		BOTH(test_v11_device_optneg_clear),
		BOTH(test_wrong_mic),
		BOTH(test_replays),
		BOTH(test_devnonce_order),
		BOTH(test_history_bound),
		BOTH(test_joinnonce_exhaustion),
		BOTH(test_malformed_frames),
		BOTH(test_refusals),
		BOTH(test_rejoins),
		BOTH(test_session_and_audit),
		cmocka_unit_test_setup_teardown(test_replay_after_reopen, setup_sql, teardown),
		BOTH(test_concurrent_duplicates),
		BOTH(test_join_many),
		BOTH(test_submit_many),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
