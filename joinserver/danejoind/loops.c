/*
 * loops.c - danejoind's event loops beyond the first ([listen] threads): their start and stop,
 * and what they hand each other.
 *
 * Each loop is a struct svc on its own event_base and thread, with its own srv listening on its
 * own SO_REUSEPORT socket (the kernel spreads connections over the loops), its own join engine
 * and its own resolver (svc_internal.h, SEVERAL LOOPS). A request stays on its loop from its
 * arrival to its answer. The loops meet only where this file says:
 *   - a reload (loop 0, SIGHUP) hands the new peer table to each loop (peers_swap on that
 *     loop's thread); the old table is freed on loop 0 once every loop took the new one and
 *     none had a request in flight, else kept until the end (as with one loop);
 *   - a drain (loop 0, SIGTERM) tells each loop to stop accepting; each leaves its loop once
 *     nothing is in flight; loop 0 leaves last;
 *   - asynchronous deliveries and the management API's notes go to loop 0 (svc__to_loop0);
 *   - /metrics on loop 0 asks each loop for a copy of its counters (svc__loop_stats) and waits
 *     for them: no loop ever waits for loop 0, so this cannot deadlock; a loop that has left
 *     its event loop is read directly.
 * The srv limits (max_connections, max_connections_per_peer) and TLS context are shared in srv
 * (srv_props.share), the rate buckets in the peer table (peers.lock), the store is
 * thread-safe and has one committer for all loops.
 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/x509.h>

#include "common/dj_err.h"
#include "common/dj_log.h"
#include "common/dj_thread.h"
#include "admin.h"
#include "svc_internal.h"

unsigned svc__threads(const struct js_config *cfg)
{
	long n;

	if (cfg->threads != 0)
		return cfg->threads;
	n = sysconf(_SC_NPROCESSORS_ONLN);
	if (n < 1)
		return 1;
	return n > JS_CONFIG_THREADS_MAX ? JS_CONFIG_THREADS_MAX : (unsigned)n;
}

int svc__to_loop0(struct svc *s, void (*fn)(void *arg), void *arg)
{
	if (s->idx == 0) {
		fn(arg);
		return DJ_EOK;
	}
	return srv_call_in_loop(s->sh->loops[0]->srv, fn, arg);
}

/* An answer noted for the management API, on its way to loop 0. */
struct note {
	struct svc *s0;
	char peer[SRV_IDENTITY_MAX];
	struct bi_msg ans;	/* type, result and DevEUI only: never a key */
	X509 *cert;		/* a reference of its own, or NULL */
};

static void note_here(void *arg)
{
	struct note *n = arg;

	admin_note_answer(n->s0->admin, n->peer, &n->ans, n->cert);
	X509_free(n->cert);
	free(n);
}

void svc__note_answer(struct svc *s, const char *peer, const struct bi_msg *ans, X509 *cert)
{
	struct svc *s0 = s->sh->loops[0];
	struct note *n;

	if (s->idx == 0 || s0->admin == NULL) {
		admin_note_answer(s->admin, peer, ans, cert);
		return;
	}
	n = calloc(1, sizeof(*n));
	if (n == NULL)
		return;		/* a note lost: counters of the console, nothing else */
	n->s0 = s0;
	snprintf(n->peer, sizeof(n->peer), "%s", peer);
	n->ans.type = ans->type;
	n->ans.result = ans->result;
	n->ans.has_dev_eui = ans->has_dev_eui;
	memcpy(n->ans.dev_eui, ans->dev_eui, LW_EUI_LEN);
	if (cert != NULL && X509_up_ref(cert) == 1)
		n->cert = cert;
	if (srv_call_in_loop(s0->srv, note_here, n) != DJ_EOK) {
		X509_free(n->cert);
		free(n);
	}
}

/* One loop's copy of its counters, asked for by loop 0. */
struct stats_ask {
	struct svc *s;
	struct loop_stats *out;
	bool *done;
};

/* stats_fill - \p s's counters, on its own thread (or once it has left its loop) */
static void stats_fill(struct svc *s, struct loop_stats *st)
{
	memset(st, 0, sizeof(*st));
	st->m = s->m;
	srv_conn_stats(s->srv, &st->cs);
	srv_auth_stats(s->srv, &st->as);
	if (s->resolver != NULL)
		da_resolver_stats(s->resolver, &st->ds);
	if (s->owner != NULL)
		js_owner_stats(s->owner, &st->os);
}

static void stats_here(void *arg)
{
	struct stats_ask *a = arg;
	struct svc_shared *sh = a->s->sh;

	stats_fill(a->s, a->out);
	pthread_mutex_lock(&sh->lock);
	*a->done = true;
	pthread_cond_broadcast(&sh->cond);
	pthread_mutex_unlock(&sh->lock);
	free(a);
}

void svc__loop_stats(struct svc *s0, struct loop_stats *v)
{
	struct svc_shared *sh = s0->sh;
	bool done[JS_CONFIG_THREADS_MAX] = { false };
	bool asked[JS_CONFIG_THREADS_MAX] = { false };

	stats_fill(s0, &v[0]);
	for (unsigned k = 1; k < sh->n_loops; k++) {
		struct stats_ask *a = malloc(sizeof(*a));

		if (a == NULL)
			continue;
		a->s = sh->loops[k];
		a->out = &v[k];
		a->done = &done[k];
		if (srv_call_in_loop(sh->loops[k]->srv, stats_here, a) != DJ_EOK) {
			free(a);
			continue;
		}
		asked[k] = true;
	}
	pthread_mutex_lock(&sh->lock);
	for (unsigned k = 1; k < sh->n_loops; k++) {
		struct svc *l = sh->loops[k];

		while (asked[k] && !done[k] && !l->exited)
			pthread_cond_wait(&sh->cond, &sh->lock);
		/* left its loop (or never asked): nothing runs there any more, read it here */
		if (!done[k])
			stats_fill(l, &v[k]);
	}
	pthread_mutex_unlock(&sh->lock);
}

/* One reload, handed to every loop. */
struct swap {
	struct svc_shared *sh;
	struct peers *old, *np;
	atomic_uint left;	/* loops that have not taken np yet */
	atomic_bool pinned;	/* a loop had requests in flight that may point into old */
};

struct swap_ask {
	struct svc *s;
	struct swap *w;
};

/* swap_done - on loop 0, once every loop took the new table: free the old one if no request
 * could point into it, else keep it to the end */
static void swap_done(void *arg)
{
	struct swap *w = arg;
	struct svc_shared *sh = w->sh;

	if (!atomic_load(&w->pinned)) {
		struct peers **pp = &sh->tables;

		while (*pp != NULL && *pp != w->old)
			pp = &(*pp)->prev;
		if (*pp != NULL) {
			*pp = w->old->prev;
			svc__peers_free(w->old);
		}
	}
	dj_notice("configuration reloaded: %u peers%s", w->np->n,
		  sh->n_loops > 1 ? " (every loop)" : "");
	free(w);
}

/* peers_take - on loop \p s's thread: from now on its requests use \p w->np */
static void peers_take(struct svc *s, struct swap *w)
{
	if (srv_in_flight(s->srv) != 0 || s->join_n != 0 ||
	    atomic_load(&s->sh->async_pending) != 0)
		atomic_store(&w->pinned, true);
	s->peers = w->np;
	if (atomic_fetch_sub(&w->left, 1) == 1 &&
	    svc__to_loop0(s, swap_done, w) != DJ_EOK) {
		dj_err("reload: out of memory: the old peer table is kept");
		free(w);
	}
}

static void peers_here(void *arg)
{
	struct swap_ask *a = arg;

	peers_take(a->s, a->w);
	free(a);
}

int svc__loops_swap(struct svc *s0, struct peers *np)
{
	struct svc_shared *sh = s0->sh;
	struct swap *w = calloc(1, sizeof(*w));
	struct swap_ask *a[JS_CONFIG_THREADS_MAX] = { NULL };

	if (w == NULL)
		return DJ_ENOMEM;
	for (unsigned k = 1; k < sh->n_loops; k++) {
		a[k] = malloc(sizeof(*a[k]));
		if (a[k] == NULL) {
			while (k-- > 1)
				free(a[k]);
			free(w);
			return DJ_ENOMEM;
		}
	}
	w->sh = sh;
	w->old = s0->peers;
	w->np = np;
	atomic_init(&w->left, sh->n_loops);
	atomic_init(&w->pinned, false);
	np->prev = sh->tables;
	sh->tables = np;
	for (unsigned k = 1; k < sh->n_loops; k++) {
		a[k]->s = sh->loops[k];
		a[k]->w = w;
		/* a loop that left (draining) never takes it: the table stays to the end */
		if (srv_call_in_loop(sh->loops[k]->srv, peers_here, a[k]) != DJ_EOK) {
			free(a[k]);
			atomic_store(&w->pinned, true);
			atomic_fetch_sub(&w->left, 1);
		}
	}
	peers_take(s0, w);
	return DJ_EOK;
}

/* loop_main - the thread of loop 1..: its loop, until its drain ends it */
static void *loop_main(void *arg)
{
	struct svc *s = arg;
	char name[16];

	snprintf(name, sizeof(name), "loop %u", s->idx);	/* /proc/PID/task/TID/comm */
	dj_thread_name(name);
	if (event_base_loop(s->base, EVLOOP_NO_EXIT_ON_EMPTY) < 0)
		dj_err("event loop %u failed", s->idx);
	pthread_mutex_lock(&s->sh->lock);
	s->exited = true;
	pthread_cond_broadcast(&s->sh->cond);
	pthread_mutex_unlock(&s->sh->lock);
	atomic_fetch_sub(&s->sh->loops_running, 1);
	return NULL;
}

/* loop_new - loop \p k: its base, resolver, ownership cache, engine, srv (sharing loop 0's
 * limits and TLS context) and join group */
static int loop_new(struct svc *s0, unsigned k, const struct srv_props *sp0, char *err,
		    size_t errlen)
{
	const struct js_config *cfg = &s0->peers->cfg;
	struct js_engine_props ep = { .store = s0->store, .ks = s0->ks,
				      .session_lifetime = cfg->session_lifetime };
	struct srv_props sp = *sp0;
	struct svc *s = calloc(1, sizeof(*s));
	int ret = DJ_ENOMEM;

	if (s == NULL)
		return DJ_ENOMEM;
	s->sh = s0->sh;
	s->idx = k;
	s0->sh->loops[k] = s;
	s0->sh->n_loops = k + 1;
	s->store = s0->store;
	s->pub = s0->pub;
	s->peers = s0->peers;
	s->base = srv_base_new();
	if (s->base == NULL)
		goto fail;
	if (s0->resolver != NULL) {
		struct da_resolver_props rp;
		char why[JS_CONFIG_ERR_MAX] = "";

		svc__resolver_props(cfg, &rp);
		rp.share_cache = s0->resolver;	/* one DNS cache: what a loop learnt serves all */
		ret = da_resolver_new(s->base, &rp, &s->resolver, why, sizeof(why));
		if (ret != DJ_EOK) {
			snprintf(err, errlen, "loop %u: [dane] %s", k, why);
			return ret;
		}
		ret = svc__owner_new(s, cfg, err, errlen);
		if (ret != DJ_EOK)
			return ret;
	}
	ret = js_engine_new(&ep, &s->engine);
	if (ret != DJ_EOK) {
		snprintf(err, errlen, "loop %u: join engine: %s", k, dj_strerror(ret));
		return ret;
	}
	sp.resolver = s->resolver;
	sp.metrics_addr = NULL;		/* loop 0 serves /metrics for all */
	sp.arg = s;
	sp.share = s0->srv;
	sp.reuseport = true;
	ret = srv_new(s->base, &sp, &s->srv, err, errlen);
	if (ret != DJ_EOK)
		return ret;
	s->join_ev = event_new(s->base, -1, 0, svc__join_flush_cb, s);
	if (s->join_ev == NULL)
		goto fail;
	return DJ_EOK;
fail:
	snprintf(err, errlen, "loop %u: out of memory", k);
	return DJ_ENOMEM;
}

int svc__loops_start(struct svc *s0, const struct srv_props *sp, char *err, size_t errlen)
{
	struct svc_shared *sh = s0->sh;
	unsigned n = svc__threads(&s0->peers->cfg);
	sigset_t all, old;
	int ret;

	for (unsigned k = 1; k < n; k++) {
		ret = loop_new(s0, k, sp, err, errlen);
		if (ret != DJ_EOK)
			return ret;
	}
	/* signals go to loop 0 (main.c's evsignal events), never to the other loops */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	for (unsigned k = 1; k < sh->n_loops; k++) {
		struct svc *s = sh->loops[k];

		atomic_fetch_add(&sh->loops_running, 1);
		if (pthread_create(&s->thread, NULL, loop_main, s) != 0) {
			atomic_fetch_sub(&sh->loops_running, 1);
			pthread_sigmask(SIG_SETMASK, &old, NULL);
			snprintf(err, errlen, "loop %u: cannot start its thread", k);
			return DJ_ENOMEM;
		}
		s->thread_started = true;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (sh->n_loops > 1)
		dj_notice("%u event loops on %s", sh->n_loops, s0->peers->cfg.listen_address);
	return DJ_EOK;
}

/* drain_here - on loop \p arg's thread: stop accepting, leave once nothing is in flight */
static void drain_here(void *arg)
{
	svc__drain_loop(arg);
}

void svc__loops_drain(struct svc *s0)
{
	struct svc_shared *sh = s0->sh;

	for (unsigned k = 1; k < sh->n_loops; k++)
		if (srv_call_in_loop(sh->loops[k]->srv, drain_here, sh->loops[k]) != DJ_EOK)
			event_base_loopexit(sh->loops[k]->base, NULL);	/* not drained, but ended */
}

bool svc__loop_done(const struct svc *s)
{
	/* answered, and the answers written out: leaving the loop would drop what is unsent */
	return srv_in_flight(s->srv) == 0 && srv_unsent(s->srv) == 0 && s->join_n == 0 &&
	       atomic_load(&s->sh->async_pending) == 0 &&
	       (s->idx != 0 || atomic_load(&s->sh->loops_running) == 0);
}

/* loop_free - what loop_new made (its thread ended) */
static void loop_free(struct svc *s)
{
	for (unsigned i = 0; i < s->join_n; i++)
		svc__req_free(s->join_q[i]);
	if (s->join_ev != NULL)
		event_free(s->join_ev);
	srv_free(s->srv);
	js_engine_free(s->engine);
	if (s->drain_ev != NULL)
		event_free(s->drain_ev);
	js_owner_ctx_free(s->owner);
	da_resolver_free(s->resolver);
	if (s->base != NULL)
		event_base_free(s->base);
	svc__req_spares_free(s);
	free(s);
}

void svc__loops_stop(struct svc *s0)
{
	struct svc_shared *sh = s0->sh;

	for (unsigned k = 1; k < sh->n_loops; k++) {
		struct svc *s = sh->loops[k];

		if (s == NULL)
			continue;
		if (s->thread_started) {
			/* normally ended by its drain; on a failed start or an early exit, now */
			event_base_loopexit(s->base, NULL);
			pthread_join(s->thread, NULL);
		}
		loop_free(s);
		sh->loops[k] = NULL;
	}
	sh->n_loops = 1;
}
