/*
 * test_js_engine_many.c - the join engine with many requests at once: the same Join-request from
 * several threads, and groups (js_engine_join_many, js_engine_submit_many) that must give what
 * one-at-a-time handling gives. Fixture: test_js_engine.h.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <pthread.h>

#include <cmocka.h>

#include "test_js_engine.h"
#include "dj_test.h"

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
	struct lw_request fr[MANY_DEVS + 8];
	struct js_join_req *rp[MANY_DEVS + 8];
	struct many_wait w = { .left = 0 };
	size_t again = 0;

	assert_non_null(m);
	assert_non_null(rq);
	pthread_mutex_init(&w.mu, NULL);
	pthread_cond_init(&w.cv, NULL);
	many_build(f, m);
	for (size_t i = 0; i < m->n; i++) {
		rq[i].in = m->in[i];	/* the frame parsed once, as the daemon does on arrival */
		rq[i].in.frame_status = lw_frame_parse_request(m->in[i].phy, m->in[i].phy_len,
								&fr[i]);
		rq[i].in.frame = &fr[i];
		rq[i].in.phy = NULL;	/* the submit functions never read the bytes */
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
	rq[0].in.frame = NULL;		/* bytes only: refused before anything is queued */
	rp[0] = &rq[0];
	assert_int_equal(js_engine_submit(f->e, &rq[0]), DJ_EINVAL);
	assert_int_equal(js_engine_submit_many(f->e, rp, 1, m->rets), DJ_EINVAL);
	many_check(f, m);
	pthread_cond_destroy(&w.cv);
	pthread_mutex_destroy(&w.mu);
	free(rq);
	free(m);
}

DJ_TEST_MAIN(
	BOTH(test_concurrent_duplicates),
	BOTH(test_join_many),
	BOTH(test_submit_many))
