/*
 * test_crash_joins.c - kill -9 in the middle of a stream of joins; after restart no JoinNonce is
 * issued twice and no DevNonce accepted before the kill is accepted again (DESIGN.md rule 4).
 *
 * A child process runs 4 threads of joins against a SQLite store (group commit on). After each
 * accepted join it writes "device devnonce joinnonce" to a pipe; it writes only after the engine
 * returned, i.e. after the commit was durable. The parent reads a few hundred such lines, then
 * SIGKILLs the child while joins are still in flight, drains the pipe, reopens the store (WAL
 * recovery) in its own process and checks:
 *   - every DevNonce the child reported is refused when replayed;
 *   - each device's stored JoinNonce is >= every JoinNonce reported for it, and a fresh join gets
 *     a JoinNonce above all of them.
 * The child is a real process killed for real; nothing is mocked.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/rand.h>

#include "common/dj_err.h"
#include "common/dj_hex.h"
#include "engine/js_engine.h"
#include "store/js_keystore.h"
#include "store/js_store.h"
#include "lorawan/lw_sim.h"

#include "it_check.h"

#define NDEV 64
#define NTHREADS 4
#define KILL_AFTER 600		/* accepted joins seen before the kill */
#define MAX_REPORTS 200000

struct dev {
	enum lw_version v;
	uint8_t eui[8], app[16], nwk[16];
};

static struct dev devs[NDEV];
static const uint8_t JOIN_EUI[8] = { 0x70, 0xb3, 0xd5, 0x7e, 0xd0, 0, 0, 2 };
static char dbpath[512];
static uint8_t master[JS_MASTER_KEY_LEN];
static int pipe_w;

/* open_all - keystore and store for the test database */
static void open_all(struct js_keystore **ks, struct js_store **st)
{
	uint8_t kcv[JS_KCV_LEN];
	struct js_store_props sp = { .path = dbpath, .kcv = kcv };

	CHECK(js_keystore_new(master, ks) == DJ_EOK, "keystore");
	js_keystore_kcv(*ks, kcv);
	CHECK(js_store_open(&sp, st) == DJ_EOK, "store open");
}

struct worker {
	struct js_store *st;
	struct js_keystore *ks;
	int first;
};

/* child_worker - join its devices round-robin forever; report each accept after commit */
static void *child_worker(void *arg)
{
	struct worker *w = arg;
	struct js_engine_props ep = { .store = w->st, .ks = w->ks, .session_lifetime = 600 };
	struct js_engine *e;
	struct lw_crypto *cx;
	struct lw_sim_device sims[NDEV / NTHREADS];
	int n = NDEV / NTHREADS;

	CHECK(js_engine_new(&ep, &e) == DJ_EOK, "engine");
	CHECK(lw_crypto_new(&cx) == DJ_EOK, "crypto");
	for (int i = 0; i < n; i++) {
		struct dev *d = &devs[w->first + i];

		CHECK(lw_sim_init(cx, &sims[i], d->eui, JOIN_EUI, d->v, d->app,
				  d->v >= LW_V1_1 ? d->nwk : NULL) == DJ_EOK, "sim");
	}
	for (unsigned k = 0;; k++) {
		int i = (int)(k % (unsigned)n);
		struct lw_sim_device *s = &sims[i];
		uint8_t phy[LW_PHY_MAX];
		size_t len;
		struct js_join_in in = { .dl_settings = s->version >= LW_V1_1 ? LW_DL_OPTNEG : 0 };
		struct js_join_out out;
		char line[64];

		CHECK(lw_sim_join_request(cx, s, phy, &len) == DJ_EOK, "request");
		in.phy = phy;
		in.phy_len = len;
		CHECK(js_engine_join(e, &in, &out) == DJ_EOK, "join");
		if (out.verdict == JS_ACCEPT) {
			int l = snprintf(line, sizeof(line), "%d %u %u\n", w->first + i,
					 (unsigned)out.nonce, (unsigned)out.join_nonce);
			CHECK(write(pipe_w, line, (size_t)l) == l, "pipe write");
		}
		js_join_out_wipe(&out);
	}
	return NULL;
}

/* child - the process that gets killed */
static void child(void)
{
	struct js_keystore *ks;
	struct js_store *st;
	pthread_t t[NTHREADS];
	struct worker w[NTHREADS];

	open_all(&ks, &st);
	for (int i = 0; i < NTHREADS; i++) {
		w[i] = (struct worker){ .st = st, .ks = ks, .first = i * (NDEV / NTHREADS) };
		pthread_create(&t[i], NULL, child_worker, &w[i]);
	}
	for (int i = 0; i < NTHREADS; i++)
		pthread_join(t[i], NULL);
	_exit(0);
}

struct report {
	int dev;
	unsigned dev_nonce, join_nonce;
};

int main(int argc, char **argv)
{
	struct js_keystore *ks;
	struct js_store *st;
	struct js_device *jd = calloc(NDEV, sizeof(*jd));
	static struct report reps[MAX_REPORTS];
	unsigned nrep = 0, max_jn[NDEV] = { 0 };
	const char *tmp = getenv("TMPDIR");
	char buf[1 << 16];
	size_t failed;
	int fds[2], status, ret;
	FILE *in;
	pid_t pid;
	char dir[256];

	(void)argc;
	(void)argv;
	snprintf(dir, sizeof(dir), "%s/dj-crash-XXXXXX", tmp ? tmp : "/tmp");
	CHECK(mkdtemp(dir) != NULL, "mkdtemp");
	snprintf(dbpath, sizeof(dbpath), "%s/js.db", dir);
	CHECK(RAND_bytes(master, sizeof(master)) == 1, "rand");

	/* enroll half 1.1 (counter DevNonce) and half 1.0.3 (random DevNonce) */
	open_all(&ks, &st);
	for (int i = 0; i < NDEV; i++) {
		struct dev *d = &devs[i];
		size_t tl = 0;

		d->v = i % 2 ? LW_V1_1 : LW_V1_0_3;
		CHECK(RAND_bytes(d->app, 16) == 1 && RAND_bytes(d->nwk, 16) == 1, "rand");
		dj_be_put(0xc0ffee0000000000ull + (uint64_t)i, d->eui, 8);
		memcpy(jd[i].dev_eui, d->eui, 8);
		memcpy(jd[i].join_eui, JOIN_EUI, 8);
		jd[i].mac_version = d->v;
		CHECK(js_keystore_seal_root(ks, d->eui, d->app, d->v >= LW_V1_1 ? d->nwk : NULL,
					    jd[i].root_token, &tl) == DJ_EOK, "seal");
		jd[i].root_token_len = (uint32_t)tl;
	}
	CHECK(js_store_devices_add(st, jd, NDEV, "test", &failed) == DJ_EOK, "enroll");
	js_store_close(st);
	js_keystore_free(ks);

	CHECK(pipe(fds) == 0, "pipe");
	pid = fork();
	CHECK(pid >= 0, "fork");
	if (pid == 0) {
		close(fds[0]);
		pipe_w = fds[1];
		child();
	}
	close(fds[1]);
	in = fdopen(fds[0], "r");
	CHECK(in != NULL, "fdopen");
	while (nrep < KILL_AFTER && fgets(buf, sizeof(buf), in) != NULL) {
		struct report *r = &reps[nrep++];

		CHECK(sscanf(buf, "%d %u %u", &r->dev, &r->dev_nonce, &r->join_nonce) == 3,
		      "bad line '%s'", buf);
	}
	CHECK(nrep == KILL_AFTER, "the child stopped early after %u joins", nrep);
	CHECK(kill(pid, SIGKILL) == 0, "kill");
	CHECK(waitpid(pid, &status, 0) == pid, "waitpid");
	CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL, "child was not killed");
	/* everything already in the pipe was committed before it was written */
	while (nrep < MAX_REPORTS && fgets(buf, sizeof(buf), in) != NULL) {
		struct report *r = &reps[nrep++];

		if (sscanf(buf, "%d %u %u", &r->dev, &r->dev_nonce, &r->join_nonce) != 3)
			nrep--;	/* a line cut by the kill cannot be half-written: write() < PIPE_BUF */
	}
	fclose(in);

	/* restart: reopen and check */
	open_all(&ks, &st);
	{
		struct js_engine_props ep = { .store = st, .ks = ks, .session_lifetime = 600 };
		struct js_engine *e;
		struct lw_crypto *cx;
		struct js_device *d = calloc(1, sizeof(*d));
		unsigned refused = 0;

		CHECK(js_engine_new(&ep, &e) == DJ_EOK && lw_crypto_new(&cx) == DJ_EOK, "engine");
		for (unsigned i = 0; i < nrep; i++) {
			struct report *r = &reps[i];
			struct lw_request q;
			struct lw_key k;
			struct js_join_in jin = { .dl_settings = devs[r->dev].v >= LW_V1_1 ?
								 LW_DL_OPTNEG : 0 };
			struct js_join_out out;

			if (r->join_nonce > max_jn[r->dev])
				max_jn[r->dev] = r->join_nonce;
			memset(&q, 0, sizeof(q));
			q.type = LW_REQ_JOIN;
			memcpy(q.join_eui, JOIN_EUI, 8);
			memcpy(q.dev_eui, devs[r->dev].eui, 8);
			q.nonce = (uint16_t)r->dev_nonce;
			lw_key_set(&k, devs[r->dev].v >= LW_V1_1 ? devs[r->dev].nwk : devs[r->dev].app);
			CHECK(lw_frame_build_request(cx, &k, &q) == DJ_EOK, "build");
			jin.phy = q.phy;
			jin.phy_len = q.phy_len;
			CHECK(js_engine_join(e, &jin, &out) == DJ_EOK, "join");
			CHECK(out.verdict == JS_V_DEVNONCE_TOO_LOW || out.verdict == JS_V_DEVNONCE_REPLAY,
			      "device %d: DevNonce %u accepted before the kill was accepted again "
			      "(%s)", r->dev, r->dev_nonce, js_verdict_str(out.verdict));
			refused++;
		}
		for (int i = 0; i < NDEV; i++) {
			struct lw_sim_device sim;
			struct js_join_in jin = { .dl_settings = devs[i].v >= LW_V1_1 ? LW_DL_OPTNEG
										      : 0 };
			struct js_join_out out;
			uint8_t phy[LW_PHY_MAX];
			size_t len;

			CHECK(js_store_device_get(st, devs[i].eui, d) == DJ_EOK, "get");
			CHECK(d->st.join_nonce_last >= (int64_t)max_jn[i],
			      "device %d: stored JoinNonce %lld below issued %u", i,
			      (long long)d->st.join_nonce_last, max_jn[i]);
			CHECK(lw_sim_init(cx, &sim, devs[i].eui, JOIN_EUI, devs[i].v, devs[i].app,
					  devs[i].v >= LW_V1_1 ? devs[i].nwk : NULL) == DJ_EOK, "sim");
			sim.dev_nonce_next = d->st.dev_nonce_last >= 0 ? (uint32_t)d->st.dev_nonce_last + 1 : 0;
			for (int tries = 0;; tries++) {	/* a random DevNonce may collide */
				CHECK(lw_sim_join_request(cx, &sim, phy, &len) == DJ_EOK, "req");
				jin.phy = phy;
				jin.phy_len = len;
				CHECK(js_engine_join(e, &jin, &out) == DJ_EOK, "join");
				if (out.verdict == JS_ACCEPT || tries > 5)
					break;
			}
			CHECK(out.verdict == JS_ACCEPT, "device %d: fresh join refused: %s", i,
			      js_verdict_str(out.verdict));
			CHECK(out.join_nonce > max_jn[i] &&
				      (int64_t)out.join_nonce > d->st.join_nonce_last,
			      "device %d: JoinNonce %u issued again (max before kill %u)", i,
			      out.join_nonce, max_jn[i]);
			js_join_out_wipe(&out);
			lw_sim_wipe(&sim);
		}
		printf("ok: %u joins reported before/at the kill; all %u replays refused; "
		       "%d devices got fresh JoinNonces above every earlier one\n",
		       nrep, refused, NDEV);
		free(d);
		lw_crypto_free(cx);
		js_engine_free(e);
	}
	js_store_close(st);
	js_keystore_free(ks);
	free(jd);
	ret = snprintf(buf, sizeof(buf), "rm -rf '%s'", dir);
	CHECK(ret > 0 && system(buf) == 0, "cleanup");
	return 0;
}
