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
#include <stdint.h>

#include <cmocka.h>

#include "test_js_engine.h"
#include "dj_test.h"

/* send - one request with the usual NS parameters; its frame parsed here, once, as the daemon
 * does (the engine gets no bytes to parse again) */
/* send_rel - send, asking (kek non-NULL) that the AppSKey release be audited in the commit */
static enum js_verdict send_rel(struct fx *f, const uint8_t *phy, size_t len, uint8_t dl,
				struct js_join_out *out, const char *kek)
{
	struct lw_request fr;
	struct js_join_in in = { .frame = &fr, .net_id = { 0x00, 0x00, 0x13 },
				 .dev_addr = { 0x26, 0x01, 0x02, 0x03 }, .dl_settings = dl,
				 .rx_delay = 1, .actor = "ns.test", .release_kek = kek };

	in.frame_status = lw_frame_parse_request(phy, len, &fr);
	assert_int_equal(js_engine_join(f->e, &in, out), DJ_EOK);
	return out->verdict;
}

static enum js_verdict send(struct fx *f, const uint8_t *phy, size_t len, uint8_t dl,
			    struct js_join_out *out)
{
	return send_rel(f, phy, len, dl, out, NULL);
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

/* a <= 1.0.3 simulated device never draws one of its last LW_SIM_RAND_HIST random DevNonces
 * again (the join server would refuse the repeat as a replay: a flaky test before). Without the
 * rule, 200 windows of 64 draws hold a repeat with probability 1 - 0.97^200 > 99.7%. */
static void test_sim_random_devnonce_fresh(void **state)
{
	struct fx *f = *state;
	struct lw_sim_device sim;
	uint8_t phy[LW_PHY_MAX];
	size_t len;

	enroll(f, LW_V1_0_3, &sim);
	for (unsigned round = 0; round < 200; round++) {
		uint16_t seen[LW_SIM_RAND_HIST];

		for (unsigned i = 0; i < LW_SIM_RAND_HIST; i++) {
			assert_int_equal(lw_sim_join_request(f->cx, &sim, phy, &len), DJ_EOK);
			seen[i] = sim.pending_nonce;
			for (unsigned k = 0; k < i; k++)
				assert_int_not_equal(seen[k], seen[i]);
		}
	}
	lw_sim_wipe(&sim);
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
/* The requester's rights in the AppSKey tests: yes or no, and the JoinEUI it was asked about. */
struct rights {
	bool yes;
	uint8_t asked[LW_EUI_LEN];
};

static bool may_have(const uint8_t join_eui[LW_EUI_LEN], void *arg)
{
	struct rights *r = arg;

	memcpy(r->asked, join_eui, LW_EUI_LEN);
	return r->yes;
}

/* The "appskey-release" entries of a device's audit log. */
struct releases {
	unsigned n;
	char actor[JS_AUDIT_ACTOR_MAX];
	char detail[JS_AUDIT_DETAIL_MAX];
};

static int scan_releases(const struct js_audit_entry *e, void *arg)
{
	struct releases *r = arg;

	if (strcmp(e->event, "appskey-release") != 0)
		return 0;
	r->n++;
	snprintf(r->actor, sizeof(r->actor), "%s", e->actor);
	snprintf(r->detail, sizeof(r->detail), "%s", e->detail);
	return 0;
}

/* release - js_engine_appskey_release for \p dev_eui; the number of releases on record after */
static int release(struct fx *f, struct js_appskey_in *q, const uint8_t *dev_eui,
		   struct lw_key *k, unsigned *on_record)
{
	struct releases r;
	int ret;

	memcpy(q->dev_eui, dev_eui, LW_EUI_LEN);
	ret = js_engine_appskey_release(f->e, q, k);
	memset(&r, 0, sizeof(r));
	assert_int_equal(js_store_audit_foreach(f->st, dev_eui, scan_releases, &r), DJ_EOK);
	*on_record = r.n;
	return ret;
}

/* The audit entries of a device, in order. */
struct entries {
	unsigned n;
	char event[8][JS_AUDIT_EVENT_MAX];
	char actor[8][JS_AUDIT_ACTOR_MAX];
	char detail[8][JS_AUDIT_DETAIL_MAX];
};

static int scan_entries(const struct js_audit_entry *e, void *arg)
{
	struct entries *a = arg;

	if (a->n < 8) {
		snprintf(a->event[a->n], JS_AUDIT_EVENT_MAX, "%s", e->event);
		snprintf(a->actor[a->n], JS_AUDIT_ACTOR_MAX, "%s", e->actor);
		snprintf(a->detail[a->n], JS_AUDIT_DETAIL_MAX, "%s", e->detail);
	}
	a->n++;
	return 0;
}

/* appskey_in_joinans: a join asking for the release (release_kek) commits a second audit
 * entry after its accept, "appskey-release" naming its SessionKeyID and the KEK; a join that
 * does not ask, or a refused one, leaves none */
static void test_joinans_release_audit(void **state)
{
	struct fx *f = *state;
	struct lw_sim_device sim;
	struct js_join_out out;
	struct entries *a = calloc(1, sizeof(*a));
	struct releases r;
	uint8_t phy[LW_PHY_MAX];
	char want[JS_AUDIT_DETAIL_MAX], sid[2 * JS_SESSION_ID_MAX + 1];
	size_t len;
	unsigned base;

	assert_non_null(a);
	enroll(f, LW_V1_0_3, &sim);
	assert_int_equal(js_store_audit_foreach(f->st, sim.dev_eui, scan_entries, a), DJ_EOK);
	base = a->n;
	assert_int_equal(lw_sim_join_request(f->cx, &sim, phy, &len), DJ_EOK);
	assert_int_equal(send_rel(f, phy, len, 0, &out, "ns1-kek"), JS_ACCEPT);
	memset(a, 0, sizeof(*a));
	assert_int_equal(js_store_audit_foreach(f->st, sim.dev_eui, scan_entries, a), DJ_EOK);
	assert_int_equal(a->n, base + 2);
	assert_string_equal(a->event[base], "join-accept");
	assert_string_equal(a->event[base + 1], "appskey-release");
	assert_string_equal(a->actor[base + 1], "ns.test");
	dj_hex_format(out.session_id, out.session_id_len, sid);
	snprintf(want, sizeof(want), "session_key_id=%s kek=ns1-kek via=joinans", sid);
	assert_string_equal(a->detail[base + 1], want);
	js_join_out_wipe(&out);

	/* a replay asking for the release: refused, nothing on record */
	assert_int_equal(send_rel(f, phy, len, 0, &out, "ns1-kek"), JS_V_DEVNONCE_REPLAY);
	js_join_out_wipe(&out);
	/* a join that does not ask: its accept only */
	assert_int_equal(lw_sim_join_request(f->cx, &sim, phy, &len), DJ_EOK);
	assert_int_equal(send(f, phy, len, 0, &out), JS_ACCEPT);
	js_join_out_wipe(&out);
	memset(a, 0, sizeof(*a));
	assert_int_equal(js_store_audit_foreach(f->st, sim.dev_eui, scan_entries, a), DJ_EOK);
	assert_int_equal(a->n, base + 3);
	assert_string_equal(a->event[base + 2], "join-accept");
	memset(&r, 0, sizeof(r));
	assert_int_equal(js_store_audit_foreach(f->st, sim.dev_eui, scan_releases, &r), DJ_EOK);
	assert_int_equal(r.n, 1);
	free(a);
	lw_sim_wipe(&sim);
}

/* AppSKeyReq: the session's AppSKey leaves once it is on record; a session that is missing,
 * expired, another device's or not the requester's is one answer (DJ_ENOENT), not audited */
static void test_appskey_release(void **state)
{
	struct fx *f = *state;
	struct lw_sim_device sim, other;
	struct js_join_out out;
	struct rights r = { .yes = true };
	struct releases rec;
	struct lw_key k;
	uint8_t phy[LW_PHY_MAX];
	char want[JS_AUDIT_DETAIL_MAX], sid[2 * JS_SESSION_ID_MAX + 1];
	size_t len;
	unsigned n;
	struct js_appskey_in q = { .peer = "as1", .actor = "as.test", .kek_label = "as1-kek",
				   .may_have = may_have, .arg = &r };

	enroll(f, LW_V1_1, &sim);
	enroll(f, LW_V1_1, &other);
	join_ok(f, &other, LW_DL_OPTNEG, NULL, NULL);
	assert_int_equal(lw_sim_join_request(f->cx, &sim, phy, &len), DJ_EOK);
	assert_int_equal(send(f, phy, len, LW_DL_OPTNEG, &out), JS_ACCEPT);
	q.session_id = out.session_id;
	q.session_id_len = out.session_id_len;

	assert_int_equal(release(f, &q, sim.dev_eui, &k, &n), DJ_EOK);
	assert_true(lw_key_equal(&k, &out.keys.app_s_key));
	assert_memory_equal(r.asked, JOIN_EUI, LW_EUI_LEN);
	assert_int_equal(n, 1);
	memset(&rec, 0, sizeof(rec));
	assert_int_equal(js_store_audit_foreach(f->st, sim.dev_eui, scan_releases, &rec), DJ_EOK);
	assert_string_equal(rec.actor, "as.test");
	dj_hex_format(out.session_id, out.session_id_len, sid);
	snprintf(want, sizeof(want), "session_key_id=%s kek=as1-kek", sid);
	assert_string_equal(rec.detail, want);
	lw_key_wipe(&k);

	r.yes = false;		/* not the requester's device */
	assert_int_equal(release(f, &q, sim.dev_eui, &k, &n), DJ_ENOENT);
	assert_int_equal(n, 1);
	r.yes = true;
	assert_int_equal(release(f, &q, other.dev_eui, &k, &n), DJ_ENOENT);	/* not its session */
	assert_int_equal(n, 0);
	assert_int_equal(release(f, &q, (const uint8_t[8]){ 0xee }, &k, &n), DJ_ENOENT);
	out.session_id[LW_EUI_LEN] ^= 1;	/* a SessionKeyID never issued */
	assert_int_equal(release(f, &q, sim.dev_eui, &k, &n), DJ_ENOENT);
	out.session_id[LW_EUI_LEN] ^= 1;
	f->clock_shift = 3600;			/* the fixture's session lifetime: expired */
	assert_int_equal(release(f, &q, sim.dev_eui, &k, &n), DJ_ENOENT);
	assert_int_equal(n, 1);
	f->clock_shift = 3000;			/* within it */
	assert_int_equal(release(f, &q, sim.dev_eui, &k, &n), DJ_EOK);
	assert_int_equal(n, 2);
	lw_key_wipe(&k);
	q.may_have = NULL;
	assert_int_equal(js_engine_appskey_release(f->e, &q, &k), DJ_EINVAL);
	assert_int_equal(js_engine_appskey_release(NULL, &q, &k), DJ_EINVAL);
	js_join_out_wipe(&out);
	lw_sim_wipe(&sim);
	lw_sim_wipe(&other);
}

DJ_TEST_MAIN(
	BOTH(test_round_trip_all_versions),
	BOTH(test_sim_random_devnonce_fresh),
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
	BOTH(test_appskey_release),
	BOTH(test_joinans_release_audit))
