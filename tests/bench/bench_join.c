/*
 * bench_join.c - join-engine throughput. Prints figures; asserts nothing about time.
 *
 *   bench_join [--joins N] [--devices N] [--threads T] [--window W] [--dir DIR] [--smoke]
 *              [--only memory|durable|breakdown]
 *
 * Three runs:
 *   1. LoRaWAN 1.1 joins on one core, in-memory store: engine work only (parse, key unwrap, MIC,
 *      nonce rules, derivations, Join-accept, sealing the session keys). Requests are built by
 *      the device simulator before the clock starts.
 *   2. The same for LoRaWAN 1.0.3 (random DevNonce, history check).
 *   3. 1.1 joins against the durable SQLite store (WAL, synchronous=FULL) with group commit:
 *      T submitting threads, each keeping W requests in flight, completions on the committer.
 * A device is never in flight twice, so no commit loses its compare-and-swap.
 * Then a breakdown of one 1.1 join by phase (key custody, LoRaWAN crypto), to show where the
 * time goes.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "common/dj_clock.h"
#include "common/dj_err.h"
#include "common/dj_hex.h"
#include "engine/js_engine.h"
#include "store/js_keystore.h"
#include "store/js_store.h"
#include "lorawan/lw_sim.h"

struct bench {
	unsigned devices, joins, threads, window;
	const char *dir;
	struct js_keystore *ks;
	uint8_t kcv[JS_KCV_LEN];
};

/* die - report a setup failure and exit */
static void die(const char *what, int ret)
{
	fprintf(stderr, "bench_join: %s: %s\n", what, dj_strerror(ret));
	exit(1);
}

/* make_fleet - enroll n devices in store, and build `per` requests for each, device-major
 * interleaved (request j of device i at index j*n+i) */
static uint8_t (*make_fleet(struct bench *b, struct js_store *st, enum lw_version v, unsigned n,
			    unsigned per))[LW_JOINREQ_LEN]
{
	struct lw_crypto *cx;
	struct js_device *devs = calloc(n, sizeof(*devs));
	uint8_t (*reqs)[LW_JOINREQ_LEN] = calloc((size_t)n * per, LW_JOINREQ_LEN);
	uint8_t app[16], nwk[16], join_eui[8] = { 0x70, 0xb3, 0xd5, 0x7e, 0xd0, 0, 0, 1 };
	struct lw_sim_device sim;
	size_t len, failed;
	int ret;

	if (devs == NULL || reqs == NULL)
		die("allocating the fleet", DJ_ENOMEM);
	if ((ret = lw_crypto_new(&cx)) != DJ_EOK)
		die("crypto", ret);
	for (unsigned i = 0; i < n; i++) {
		struct js_device *d = &devs[i];
		size_t tl = 0;

		if (RAND_bytes(app, 16) != 1 || RAND_bytes(nwk, 16) != 1)
			die("random", DJ_ECRYPTO);
		dj_be_put(0xbe00000000000000ull | ((uint64_t)v << 40) | i, d->dev_eui, 8);
		memcpy(d->join_eui, join_eui, 8);
		d->mac_version = v;
		ret = js_keystore_seal_root(b->ks, d->dev_eui, app, v >= LW_V1_1 ? nwk : NULL,
					    d->root_token, &tl);
		if (ret != DJ_EOK)
			die("sealing root keys", ret);
		d->root_token_len = (uint32_t)tl;
		ret = lw_sim_init(cx, &sim, d->dev_eui, join_eui, v, app, v >= LW_V1_1 ? nwk : NULL);
		if (ret != DJ_EOK)
			die("simulator", ret);
		for (unsigned j = 0; j < per; j++) {
			ret = lw_sim_join_request(cx, &sim, reqs[(size_t)j * n + i], &len);
			if (ret != DJ_EOK)
				die("building a Join-request", ret);
		}
		lw_sim_wipe(&sim);
	}
	ret = js_store_devices_add(st, devs, n, "bench", &failed);
	if (ret != DJ_EOK)
		die("enrolling", ret);
	free(devs);
	lw_crypto_free(cx);
	return reqs;
}

/* open_store - a store at path (NULL: in memory) */
static struct js_store *open_store(struct bench *b, const char *path)
{
	struct js_store_props p = { .path = path, .kcv = b->kcv };
	struct js_store *st;
	int ret = js_store_open(&p, &st);

	if (ret != DJ_EOK)
		die("opening the store", ret);
	return st;
}

/* run_memory - single-core in-memory figure for one version: requests one at a time
 * (js_engine_join) when batch is 1, else in groups (js_engine_join_many) */
static void run_memory(struct bench *b, enum lw_version v, unsigned batch)
{
	struct js_store *st = open_store(b, NULL);
	struct js_engine_props ep = { .store = st, .ks = b->ks, .session_lifetime = 86400 };
	struct js_engine *e;
	struct js_join_in in[JS_ENGINE_BATCH_MAX];
	struct js_join_out out[JS_ENGINE_BATCH_MAX];
	int rets[JS_ENGINE_BATCH_MAX];
	unsigned per = (b->joins + b->devices - 1) / b->devices, accepted = 0, total;
	uint8_t(*reqs)[LW_JOINREQ_LEN] = make_fleet(b, st, v, b->devices, per);
	double t0, dt;
	int ret;

	if ((ret = js_engine_new(&ep, &e)) != DJ_EOK)
		die("engine", ret);
	memset(in, 0, sizeof(in));
	for (unsigned k = 0; k < JS_ENGINE_BATCH_MAX; k++) {
		in[k].phy_len = LW_JOINREQ_LEN;
		in[k].net_id[2] = 0x13;
		memcpy(in[k].dev_addr, (const uint8_t[]){ 0x26, 1, 2, 3 }, LW_DEVADDR_LEN);
		in[k].dl_settings = v >= LW_V1_1 ? LW_DL_OPTNEG : 0;
	}
	total = b->devices * per;
	t0 = dj_clock_mono_s();
	if (getenv("DJ_BENCH_MARK") != NULL)	/* for profiling the timed phase alone */
		fprintf(stderr, "bench_join: timed phase starts at %.3f s of process CPU\n",
			(double)clock() / CLOCKS_PER_SEC);
	for (unsigned i = 0; i < total; i += batch) {
		unsigned k = total - i < batch ? total - i : batch;

		for (unsigned j = 0; j < k; j++)
			in[j].phy = reqs[i + j];
		if (batch == 1) {
			rets[0] = js_engine_join(e, &in[0], &out[0]);
		} else if ((ret = js_engine_join_many(e, in, out, k, rets)) != DJ_EOK) {
			die("join", ret);
		}
		for (unsigned j = 0; j < k; j++) {
			if (rets[j] != DJ_EOK)
				die("join", rets[j]);
			accepted += out[j].verdict == JS_ACCEPT;
			js_join_out_wipe(&out[j]);
		}
	}
	dt = dj_clock_mono_s() - t0;
	printf("in-memory, one core, LoRaWAN %-5s, %s %2u: %u joins (%u accepted) in %.3f s = "
	       "%.0f joins/s, %.2f us/join\n", lw_version_str(v),
	       batch == 1 ? "one at a time,  group of" : "js_engine_join_many, groups of", batch,
	       total, accepted, dt, total / dt, dt / total * 1e6);
	js_engine_free(e);
	js_store_close(st);
	free(reqs);
}

struct durable_thread {
	struct bench *b;
	struct js_store *st;
	uint8_t (*reqs)[LW_JOINREQ_LEN];
	unsigned first, count;	/* requests [first, first+count) of the interleaved array... */
	unsigned stride, offset;	/* ... taken as offset + k*stride */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	unsigned inflight, accepted, refused, faults;
	struct js_join_req *slots;
	int *free_slots;
	unsigned nfree;
};

/* durable_done - completion on the committer thread (or inline for a refusal) */
static void durable_done(struct js_join_req *r, void *arg)
{
	struct durable_thread *t = arg;

	pthread_mutex_lock(&t->mu);
	if (r->result != DJ_EOK)
		t->faults++;
	else if (r->out.verdict == JS_ACCEPT)
		t->accepted++;
	else
		t->refused++;
	js_join_out_wipe(&r->out);
	t->free_slots[t->nfree++] = (int)(r - t->slots);
	t->inflight--;
	pthread_cond_signal(&t->cv);
	pthread_mutex_unlock(&t->mu);
}

/* durable_main - one submitting thread with its own engine */
static void *durable_main(void *arg)
{
	struct durable_thread *t = arg;
	struct js_engine_props ep = { .store = t->st, .ks = t->b->ks, .session_lifetime = 86400 };
	struct js_engine *e;
	int ret;

	if ((ret = js_engine_new(&ep, &e)) != DJ_EOK)
		die("engine", ret);
	for (unsigned k = 0; k < t->count; k++) {
		struct js_join_req *r;
		struct lw_request fr;

		pthread_mutex_lock(&t->mu);
		while (t->nfree == 0)
			pthread_cond_wait(&t->cv, &t->mu);
		r = &t->slots[t->free_slots[--t->nfree]];
		t->inflight++;
		pthread_mutex_unlock(&t->mu);
		memset(&r->in, 0, sizeof(r->in));
		/* parsed once, as the daemon does on arrival; read only during the submit */
		r->in.frame_status = lw_frame_parse_request(
			t->reqs[t->offset + (size_t)k * t->stride], LW_JOINREQ_LEN, &fr);
		r->in.frame = &fr;
		r->in.dl_settings = LW_DL_OPTNEG;
		r->in.net_id[2] = 0x13;
		r->in.actor = "bench";
		r->done = durable_done;
		r->done_arg = t;
		ret = js_engine_submit(e, r);
		if (ret != DJ_EOK)
			die("submit", ret);
	}
	pthread_mutex_lock(&t->mu);
	while (t->inflight > 0)
		pthread_cond_wait(&t->cv, &t->mu);
	pthread_mutex_unlock(&t->mu);
	js_engine_free(e);
	return NULL;
}

/* run_durable - 1.1 joins against SQLite with group commit */
static void run_durable(struct bench *b)
{
	char path[4096];
	struct js_store *st;
	struct js_store_stats stats;
	struct durable_thread *ts = calloc(b->threads, sizeof(*ts));
	unsigned per = (b->joins + b->devices - 1) / b->devices, total, accepted = 0, faults = 0;
	uint8_t(*reqs)[LW_JOINREQ_LEN];
	pthread_t *tid = calloc(b->threads, sizeof(*tid));
	double t0, dt;

	snprintf(path, sizeof(path), "%s/bench-%d.db", b->dir, (int)getpid());
	st = open_store(b, path);
	reqs = make_fleet(b, st, LW_V1_1, b->devices, per);
	total = b->devices * per;
	for (unsigned i = 0; i < b->threads; i++) {
		struct durable_thread *t = &ts[i];

		t->b = b;
		t->st = st;
		t->reqs = reqs;
		t->stride = b->threads;
		t->offset = i;
		t->count = (total - i + b->threads - 1) / b->threads;
		pthread_mutex_init(&t->mu, NULL);
		pthread_cond_init(&t->cv, NULL);
		t->slots = calloc(b->window, sizeof(*t->slots));
		t->free_slots = calloc(b->window, sizeof(int));
		if (t->slots == NULL || t->free_slots == NULL)
			die("allocating slots", DJ_ENOMEM);
		for (unsigned s = 0; s < b->window; s++)
			t->free_slots[t->nfree++] = (int)s;
	}
	t0 = dj_clock_mono_s();
	for (unsigned i = 0; i < b->threads; i++)
		pthread_create(&tid[i], NULL, durable_main, &ts[i]);
	for (unsigned i = 0; i < b->threads; i++)
		pthread_join(tid[i], NULL);
	dt = dj_clock_mono_s() - t0;
	js_store_stats(st, &stats);
	for (unsigned i = 0; i < b->threads; i++) {
		accepted += ts[i].accepted;
		faults += ts[i].faults;
		free(ts[i].slots);
		free(ts[i].free_slots);
	}
	printf("durable (SQLite WAL, synchronous=FULL, group commit), %u threads x %u in flight, "
	       "LoRaWAN 1.1: %u joins (%u accepted, %u faults) in %.3f s = %.0f joins/s; "
	       "%llu transactions, mean batch %.1f, largest %llu\n",
	       b->threads, b->window, total, accepted, faults, dt, total / dt,
	       (unsigned long long)stats.transactions,
	       stats.transactions ? (double)stats.commits / (double)stats.transactions : 0.0,
	       (unsigned long long)stats.batch_max_seen);
	js_store_close(st);
	unlink(path);
	snprintf(path + strlen(path), sizeof(path) - strlen(path), "-wal");
	unlink(path);
	path[strlen(path) - 4] = '\0';
	snprintf(path + strlen(path), sizeof(path) - strlen(path), "-shm");
	unlink(path);
	free(reqs);
	free(ts);
	free(tid);
}

/* per_op_ns - time n runs of an expression, in ns per run */
#define PER_OP_NS(n, expr)                                                                         \
	({                                                                                         \
		double t0_ = dj_clock_mono_s();                                                    \
		for (unsigned k_ = 0; k_ < (n); k_++) {                                            \
			if ((expr) != DJ_EOK)                                                      \
				die(#expr, DJ_ERROR);                                              \
		}                                                                                  \
		(dj_clock_mono_s() - t0_) / (n)*1e9;                                               \
	})

/* lora_crypto - the LoRaWAN crypto of one 1.1 join, as the engine does it */
static int lora_crypto(struct lw_crypto *cx, const struct js_root_keys *rk,
		       const struct lw_request *req)
{
	struct lw_key ji, je;
	struct lw_session_keys sk;
	struct lw_accept ja = { .join_nonce = 1, .dl_settings = LW_DL_OPTNEG };
	struct lw_accept_ctx ac = { .join_req_type = LW_JOINREQTYPE_JOIN };
	uint8_t mic[LW_MIC_LEN], out[LW_JOINACC_CF_LEN];
	size_t len;
	int ret;

	ret = lw_frame_request_mic(cx, &rk->nwk_key, req, mic);
	if (ret == DJ_EOK)
		ret = lw_keys_derive_js(cx, &rk->nwk_key, req->dev_eui, &ji, &je);
	if (ret == DJ_EOK)
		ret = lw_keys_derive_session_11(cx, &rk->nwk_key, &rk->app_key, 1, req->join_eui,
						req->nonce, &sk);
	if (ret == DJ_EOK)
		ret = lw_frame_build_accept(cx, &ja, &ji, &ac, &rk->nwk_key, out, &len);
	lw_session_keys_wipe(&sk);
	lw_key_wipe(&ji);
	lw_key_wipe(&je);
	lw_crypto_forget(cx);
	return ret;
}

/* run_breakdown - one 1.1 join by phase, on one core */
static void run_breakdown(struct bench *b, unsigned n)
{
	uint8_t app[16] = { 1 }, nwk[16] = { 2 }, eui[8] = { 3 }, join_eui[8] = { 4 };
	uint8_t tok[JS_TOKEN_MAX], sealed[JS_TOKEN_MAX], label[JS_LABEL_MAX], secret[32] = { 5 };
	uint8_t phy[LW_PHY_MAX];
	size_t tl, sl, ll, len;
	struct js_root_keys rk;
	struct lw_sim_device sim;
	struct lw_request req;
	struct lw_crypto *cx;
	double open_ns, seal_ns, crypto_ns;

	if (lw_crypto_new(&cx) != DJ_EOK || js_keystore_seal_root(b->ks, eui, app, nwk, tok, &tl) ||
	    lw_sim_init(cx, &sim, eui, join_eui, LW_V1_1, app, nwk) != DJ_EOK ||
	    lw_sim_join_request(cx, &sim, phy, &len) != DJ_EOK ||
	    lw_frame_parse_request(phy, len, &req) != LW_FRAME_OK ||
	    js_keystore_open_root(b->ks, eui, tok, tl, &rk) != DJ_EOK)
		die("breakdown setup", DJ_ERROR);
	ll = js_keystore_label(JS_PURPOSE_SESSION, eui, sizeof(eui), label);
	open_ns = PER_OP_NS(n, js_keystore_open_root(b->ks, eui, tok, tl, &rk));
	seal_ns = PER_OP_NS(n, js_keystore_seal(b->ks, label, ll, secret, sizeof(secret), sealed,
						&sl));
	crypto_ns = PER_OP_NS(n, lora_crypto(cx, &rk, &req));
	printf("one 1.1 join by phase: open root-key token %.0f ns, seal session token %.0f ns "
	       "(key custody, AES-256 key wrap: %.0f ns); LoRaWAN crypto (MIC, JSIntKey/JSEncKey, "
	       "4 session keys, Join-accept, wipe) %.0f ns\n", open_ns, seal_ns, open_ns + seal_ns,
	       crypto_ns);
	{
		enum { K = JS_KS_BATCH_MAX };
		const uint8_t *eu[K], *tk[K], *lb[K], *sc[K];
		uint8_t sealed_k[K][JS_TOKEN_MAX], *so[K];
		size_t tlk[K], llk[K], slk[K], solk[K];
		struct js_root_keys rkk[K];
		int rets[K];
		double many_open, many_seal;

		for (unsigned i = 0; i < K; i++) {
			eu[i] = eui;
			tk[i] = tok;
			tlk[i] = tl;
			lb[i] = label;
			llk[i] = ll;
			sc[i] = secret;
			slk[i] = sizeof(secret);
			so[i] = sealed_k[i];
		}
		many_open = PER_OP_NS(n / K, js_keystore_open_root_many(b->ks, K, eu, tk, tlk, rkk,
									  rets)) / K;
		many_seal = PER_OP_NS(n / K, js_keystore_seal_many(b->ks, K, lb, llk, sc, slk, so,
								     solk, rets)) / K;
		for (unsigned i = 0; i < K; i++)
			js_root_keys_wipe(&rkk[i]);
		printf("key custody in groups of %d (js_keystore_*_many): open %.0f ns, seal %.0f ns "
		       "per token (%.0f ns per join)\n", K, many_open, many_seal,
		       many_open + many_seal);
	}
	js_root_keys_wipe(&rk);
	lw_sim_wipe(&sim);
	lw_crypto_free(cx);
}

int main(int argc, char **argv)
{
	struct bench b = { .devices = 10000, .joins = 300000, .threads = 2, .window = 128,
			   .dir = "/tmp" };
	uint8_t master[JS_MASTER_KEY_LEN];
	unsigned djoins = 100000;
	const char *only = "";
	int ret;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--smoke") == 0) {
			b.devices = 200;
			b.joins = 2000;
			djoins = 2000;
		} else if (i + 1 < argc && strcmp(argv[i], "--joins") == 0) {
			b.joins = (unsigned)strtoul(argv[++i], NULL, 10);
			djoins = b.joins;
		} else if (i + 1 < argc && strcmp(argv[i], "--devices") == 0) {
			b.devices = (unsigned)strtoul(argv[++i], NULL, 10);
		} else if (i + 1 < argc && strcmp(argv[i], "--threads") == 0) {
			b.threads = (unsigned)strtoul(argv[++i], NULL, 10);
		} else if (i + 1 < argc && strcmp(argv[i], "--window") == 0) {
			b.window = (unsigned)strtoul(argv[++i], NULL, 10);
		} else if (i + 1 < argc && strcmp(argv[i], "--dir") == 0) {
			b.dir = argv[++i];
		} else if (i + 1 < argc && strcmp(argv[i], "--only") == 0) {
			only = argv[++i];
		} else {
			fprintf(stderr, "usage: bench_join [--joins N] [--devices N] [--threads T] "
					"[--window W] [--dir DIR] [--smoke]\n"
					"                  [--only memory|durable|breakdown]\n");
			return 1;
		}
	}
	if (b.devices == 0 || b.joins == 0 || b.threads == 0 || b.window == 0) {
		fprintf(stderr, "bench_join: counts must be positive\n");
		return 1;
	}
	if (RAND_bytes(master, sizeof(master)) != 1)
		die("random", DJ_ECRYPTO);
	ret = js_keystore_new(master, &b.ks);
	OPENSSL_cleanse(master, sizeof(master));
	if (ret != DJ_EOK)
		die("key store", ret);
	js_keystore_kcv(b.ks, b.kcv);

	if (!*only || strcmp(only, "memory") == 0) {
		run_memory(&b, LW_V1_1, JS_ENGINE_BATCH_MAX);
		run_memory(&b, LW_V1_0_3, JS_ENGINE_BATCH_MAX);
		run_memory(&b, LW_V1_1, 1);
		run_memory(&b, LW_V1_0_3, 1);
	}
	b.joins = djoins;
	if (!*only || strcmp(only, "durable") == 0)
		run_durable(&b);
	if (!*only || strcmp(only, "breakdown") == 0)
		run_breakdown(&b, djoins);
	js_keystore_free(b.ks);
	return 0;
}
