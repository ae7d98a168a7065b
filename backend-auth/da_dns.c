/*
 * da_dns.c - the resolver: one libunbound context on the caller's libevent loop (its backend
 *	      is da_ub.c), one query in flight per (type, name), a timer per query, the verdict
 *	      cache, and TLSA and TXT lookups.
 *
 * DESIGN
 *	libunbound offers two asynchronous modes. ub_resolve_async() always hands the work to a
 *	background worker, a thread (ub_ctx_async(ctx, 1)) or a forked process (the default,
 *	ub_ctx_async(ctx, 0)), and returns answers through a pipe read with ub_fd()/ub_process().
 *	We want no extra thread and no fork (a forked copy of a daemon that holds root keys is one
 *	copy too many, and a thread brings locking into an otherwise single-threaded loop), so we
 *	use the event mode instead: ub_ctx_create_event() makes libunbound register its sockets and
 *	timers on our own event_base and ub_resolve_event() answers on the loop's thread. Debian's
 *	libunbound8 is built against the same libevent 2.1 that we link, which that mode requires.
 *	In that mode ub_cancel() only marks the query cancelled (no callback will follow), which is
 *	what da_lookup_cancel and the timeout need.
 *
 *	libunbound may answer inside ub_resolve_event() (local data, its own cache). Every answer is
 *	therefore parked on the query and delivered from the query's own event (the same event is
 *	the timeout timer), so callbacks never run inside libunbound and never before
 *	da_tlsa_lookup() has set the caller's handle; only cache hits are delivered at once.
 *
 * SECURITY
 *	See da_answer.c for how a verdict is made (only libunbound's own validation counts) and
 *	da_cache.c for how long it is kept. Here: a timeout is DA_TEMPFAIL and cancels the upstream
 *	query; DA_TEMPFAIL is never cached; a failed background refresh leaves the old entry to
 *	expire on time, never extends it. libunbound's own cache gets the same caps (cache-max-ttl,
 *	cache-max-negative-ttl, val-bogus-ttl), or it would hand back an answer past ttl_cap.
 */
#include <assert.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <unbound-event.h>
#include <unbound.h>

#include "backend-auth/da_internal.h"
#include "common/dj_clock.h"
#include "common/dj_err.h"
#include "common/dj_log.h"

#define DEF_CACHE_MAX 10000u
#define DEF_TIMEOUT_MS 5000u
#define DEF_REFRESH_PCT 10u
#define MS_PER_S 1000u



struct event_base *da__resolver_base(struct da_resolver *r)
{
	return r->base;
}

/* ---- queries --------------------------------------------------------------------------- */

/* find_query - the query in flight for (type, name), or NULL */
static struct da_query *find_query(struct da_resolver *r, uint16_t type, const char *name)
{
	struct da_query *q;

	LIST_FOREACH(q, &r->queries, link)
		if (q->type == type && strcmp(q->name, name) == 0)
			return q;
	return NULL;
}

/* query_drop - stop and free \p q (its waiters must already be gone); no callback */
static void query_drop(struct da_query *q)
{
	if (q->upstream && q->r->be.cancel != NULL)
		q->r->be.cancel(q, q->r->be.arg);
	q->upstream = 0;
	LIST_REMOVE(q, link);	/* out of the in-flight list */
	if (q->ev != NULL)
		event_free(q->ev);
	da__answer_unref(q->result);
	free(q);
}

void da__query_answer(struct da_query *q, struct da_answer *a)
{
	q->upstream = 0;
	if (q->result != NULL) {	/* already timed out: keep the first verdict */
		da__answer_unref(a);
		return;
	}
	q->result = a;
	event_del(q->ev);
	event_active(q->ev, EV_TIMEOUT, 1);
}

/* deliver - hand \p a to the caller of \p l; \p ttl_left seconds of validity */
static void deliver(struct da_lookup *l, const struct da_answer *a, uint32_t ttl_left,
		    int from_cache)
{
	struct da_tlsa_set s;

	if (l->rcb != NULL) {
		l->rcb(a, l->arg);
		return;
	}
	if (l->xcb != NULL) {
		struct da_txt_set x;

		memset(&x, 0, sizeof(x));
		x.name = l->name;
		x.status = a->status;
		x.ttl = a->status == DA_TEMPFAIL ? 0 : ttl_left;
		x.n = a->status == DA_SECURE ? a->n : 0;
		x.txt = x.n > 0 ? (const char *const *)a->txt : NULL;
		x.len = x.n > 0 ? a->txt_len : NULL;
		x.why = a->why != NULL ? a->why : da_status_str(a->status);
		x.from_cache = from_cache;
		l->xcb(&x, l->arg);
		return;
	}
	memset(&s, 0, sizeof(s));
	s.name = l->name;
	s.status = a->status;
	s.ttl = a->status == DA_TEMPFAIL ? 0 : ttl_left;
	s.n = a->status == DA_SECURE ? a->n : 0;
	s.rr = s.n > 0 ? a->tlsa : NULL;
	s.why = a->why != NULL ? a->why : da_status_str(a->status);
	s.from_cache = from_cache;
	l->tcb(&s, l->arg);
}

/* count - the per-verdict counters */
static void count(struct da_stats *st, enum da_status s)
{
	switch (s) {
	case DA_SECURE:
		st->secure++;
		break;
	case DA_NXDOMAIN:
		st->nxdomain++;
		break;
	case DA_NODATA:
		st->nodata++;
		break;
	case DA_UNUSABLE:
		st->unusable++;
		break;
	case DA_INSECURE:
		st->insecure++;
		break;
	case DA_BOGUS:
		st->bogus++;
		break;
	case DA_TEMPFAIL:
		st->tempfail++;
		break;
	}
}

/* query_finish - cache the verdict of \p q and call its waiters; frees \p q */
static void query_finish(struct da_query *q)
{
	struct da_resolver *r = q->r;
	struct da_answer oom = { .refs = 1, .status = DA_TEMPFAIL, .why = (char *)"out of memory" };
	struct da_answer *a = q->result;
	struct da_lookup *list, *l;
	uint32_t life;

	q->result = NULL;
	if (a == NULL)
		a = &oom;
	count(&r->st, a->status);
	life = da__lifetime(a, r->ttl_cap, r->neg_ttl);
	if (a->status != DA_TEMPFAIL) {
		int ret;

		pthread_mutex_lock(&r->cache->lock);
		ret = da__cache_put(r->cache, q->type, q->name, a, life, r->clock(r->clock_arg));
		pthread_mutex_unlock(&r->cache->lock);
		if (ret != DJ_EOK)
			dj_warn("da_dns: cannot cache %s: out of memory", q->name);
	}
	if (a->status != DA_SECURE)
		dj_debug("da_dns: %s type %u: %s (%s)", q->name, q->type, da_status_str(a->status),
			 a->why ? a->why : "");
	/* the waiters move to a local list: a callback may cancel any of them, or start new
	 * lookups of the same name (which then hit the cache or make a new query) */
	list = q->waiters;
	q->waiters = NULL;
	q->wtail = &q->waiters;
	if (list != NULL)
		list->pprev = &list;
	for (l = list; l != NULL; l = l->next)
		l->q = NULL;
	query_drop(q);
	r->depth++;
	while ((l = list) != NULL) {
		list = l->next;
		if (list != NULL)
			list->pprev = &list;
		l->pprev = NULL;
		l->next = NULL;
		l->delivering = 1;
		deliver(l, a, life, 0);
		free(l);
	}
	r->depth--;
	if (a != &oom)
		da__answer_unref(a);
}

/* query_event - the query's event: an answer parked by da__query_answer, or the timeout */
static void query_event(evutil_socket_t fd, short what, void *arg)
{
	struct da_query *q = arg;
	char why[DA_REASON_MAX];

	(void)fd;
	(void)what;
	if (q->result == NULL) {
		if (q->upstream && q->r->be.cancel != NULL)
			q->r->be.cancel(q, q->r->be.arg);
		q->upstream = 0;
		snprintf(why, sizeof(why), "timeout after %u ms", (unsigned)q->r->timeout_ms);
		if (da__answer_new(q->type, DA_TEMPFAIL, 0, why, &q->result) != DJ_EOK)
			q->result = NULL;
	}
	query_finish(q);
}

/* query_new - start a query for (type, name); it answers later, from the loop */
static int query_new(struct da_resolver *r, uint16_t type, const char *name, int refresh,
		     struct da_query **out)
{
	struct da_query *q;
	struct da_answer *a = NULL;
	struct timeval tv;
	int ret;

	q = calloc(1, sizeof(*q));
	if (q == NULL)
		return DJ_ENOMEM;
	q->r = r;
	q->type = type;
	q->refresh = refresh;
	q->wtail = &q->waiters;
	snprintf(q->name, sizeof(q->name), "%s", name);
	q->ev = event_new(r->base, -1, 0, query_event, q);
	if (q->ev == NULL) {
		free(q);
		return DJ_ENOMEM;
	}
	tv = dj_clock_tv_ms(r->timeout_ms);
	if (event_add(q->ev, &tv) != 0) {
		event_free(q->ev);
		free(q);
		return DJ_EIO;
	}
	LIST_INSERT_HEAD(&r->queries, q, link);
	r->st.queries++;
	da__ub_refresh(r);	/* test builds: libunbound afresh after a test-clock jump */
	q->upstream = 1;
	ret = r->be.start(q, name, type, r->be.arg);
	if (ret != DJ_EOK) {
		/* answered as a TEMPFAIL from the loop, like any other failure */
		q->upstream = 0;
		if (da__answer_new(type, DA_TEMPFAIL, 0, "resolver failure (cannot start query)",
				   &a) == DJ_EOK)
			da__query_answer(q, a);
	}
	*out = q;
	return DJ_EOK;
}

/* ---- lookups --------------------------------------------------------------------------- */

/* life_left - whole seconds left to the cached entry \p e at \p now, rounded up */
static uint32_t life_left(const struct da_centry *e, uint64_t now)
{
	return (uint32_t)((e->life.expires_ms - now + MS_PER_S - 1) / MS_PER_S);
}

/* lookup_fill - \p l as a fresh RR lookup of \p name for one callback (the others NULL) */
static void lookup_fill(struct da_lookup *l, struct da_resolver *r, const char *name,
			da_tlsa_cb tcb, da_txt_cb xcb, da_rr_cb rcb, void *arg)
{
	memset(l, 0, sizeof(*l));
	l->kind = DA_LK_RR;
	l->r = r;
	l->tcb = tcb;
	l->xcb = xcb;
	l->rcb = rcb;
	l->arg = arg;
	snprintf(l->name, sizeof(l->name), "%s", name);
}

/* deliver_cached - hand the cached answer \p a (a reference, dropped here) for \p name to one
 * callback at once, through a lookup that lives on the stack for the call */
static void deliver_cached(struct da_resolver *r, const char *name, struct da_answer *a,
			   uint32_t left, da_tlsa_cb tcb, da_txt_cb xcb, da_rr_cb rcb, void *arg)
{
	struct da_lookup tmp;

	lookup_fill(&tmp, r, name, tcb, xcb, rcb, arg);
	tmp.delivering = 1;
	r->depth++;
	deliver(&tmp, a, left, 1);
	r->depth--;
	da__answer_unref(a);
}

/* lookup_start - the common path of TLSA and internal RR lookups; \p name is canonical */
static int lookup_start(struct da_resolver *r, uint16_t type, const char *name, da_tlsa_cb tcb,
			da_txt_cb xcb, da_rr_cb rcb, void *arg, struct da_lookup **handle)
{
	uint64_t now = r->clock(r->clock_arg);
	struct da_centry *e;
	struct da_query *q, *rq;
	struct da_lookup *l;
	int ret;

	pthread_mutex_lock(&r->cache->lock);
	e = da__cache_get(r->cache, type, name, now);
	if (e != NULL) {
		struct da_answer *a = da__answer_ref(e->ans);
		uint32_t left = life_left(e, now);
		bool refresh = da__cache_in_refresh(e, r->refresh_pct, now);

		pthread_mutex_unlock(&r->cache->lock);
		r->st.cache_hits++;
		if (refresh && find_query(r, type, name) == NULL) {
			if (query_new(r, type, name, 1, &rq) == DJ_EOK)
				r->st.refreshes++;
			else
				dj_warn("da_dns: cannot refresh %s: out of memory", name);
		}
		deliver_cached(r, name, a, left, tcb, xcb, rcb, arg);
		return DJ_EOK;
	}
	pthread_mutex_unlock(&r->cache->lock);
	r->st.cache_misses++;
	l = malloc(sizeof(*l));
	if (l == NULL)
		return DJ_ENOMEM;
	lookup_fill(l, r, name, tcb, xcb, rcb, arg);
	q = find_query(r, type, name);
	if (q != NULL) {
		r->st.coalesced++;
	} else {
		ret = query_new(r, type, name, 0, &q);
		if (ret != DJ_EOK) {
			free(l);
			return ret;
		}
	}
	l->q = q;
	l->next = NULL;
	l->pprev = q->wtail;
	*q->wtail = l;
	q->wtail = &l->next;
	if (handle != NULL)
		*handle = l;
	return DJ_EOK;
}

/* lookup_named - the head of every lookup: a caller's name made canonical, then lookup_start;
 * exactly one of \p tcb, \p xcb, \p rcb is set (the others NULL) */
static int lookup_named(struct da_resolver *r, uint16_t type, const char *name, da_tlsa_cb tcb,
			da_txt_cb xcb, da_rr_cb rcb, void *arg, struct da_lookup **handle)
{
	char canon[DA_QNAME_MAX + 1];

	if (handle != NULL)
		*handle = NULL;
	if (r == NULL || (tcb == NULL && xcb == NULL && rcb == NULL) ||
	    da__name_canon(name, canon, sizeof(canon)) != DJ_EOK)
		return DJ_EINVAL;
	return lookup_start(r, type, canon, tcb, xcb, rcb, arg, handle);
}

int da__rr_lookup(struct da_resolver *r, uint16_t type, const char *name, da_rr_cb cb, void *arg,
		  struct da_lookup **handle)
{
	return lookup_named(r, type, name, NULL, NULL, cb, arg, handle);
}

int da_tlsa_lookup(struct da_resolver *r, const char *name, da_tlsa_cb cb, void *arg,
		   struct da_lookup **handle)
{
	return lookup_named(r, DA_T_TLSA, name, cb, NULL, NULL, arg, handle);
}

int da_txt_lookup(struct da_resolver *r, const char *name, da_txt_cb cb, void *arg,
		  struct da_lookup **handle)
{
	return lookup_named(r, DA_T_TXT, name, NULL, cb, NULL, arg, handle);
}

int da_tlsa_peek(struct da_resolver *r, const char *name, da_tlsa_cb cb, void *arg)
{
	char canon[DA_QNAME_MAX + 1];
	uint64_t now;
	struct da_centry *e;
	struct da_answer *a;
	uint32_t left;

	if (r == NULL || cb == NULL || da__name_canon(name, canon, sizeof(canon)) != DJ_EOK)
		return DJ_EINVAL;
	now = r->clock(r->clock_arg);
	pthread_mutex_lock(&r->cache->lock);
	e = da__cache_get(r->cache, DA_T_TLSA, canon, now);
	if (e == NULL) {
		pthread_mutex_unlock(&r->cache->lock);
		return DJ_ENOENT;
	}
	a = da__answer_ref(e->ans);
	left = life_left(e, now);
	pthread_mutex_unlock(&r->cache->lock);
	deliver_cached(r, canon, a, left, cb, NULL, NULL, arg);
	return DJ_EOK;
}

void da_lookup_cancel(struct da_lookup *l)
{
	struct da_query *q;

	if (l == NULL || l->delivering)
		return;
	if (l->kind == DA_LK_DISC) {
		da__disc_cancel(l->disc);
		return;
	}
	q = l->q;
	if (l->pprev != NULL) {
		*l->pprev = l->next;
		if (l->next != NULL)
			l->next->pprev = l->pprev;
		else if (q != NULL)
			q->wtail = l->pprev;
	}
	free(l);
	/* nobody waits any more: stop the query too, unless it is a background refresh */
	if (q != NULL && q->waiters == NULL && !q->refresh)
		query_drop(q);
}

/* ---- construction ---------------------------------------------------------------------- */

int da__resolver_new_backend(struct event_base *base, const struct da_resolver_props *props,
			     const struct da_backend *be, da_clock_fn clock, void *clock_arg,
			     struct da_resolver **out)
{
	struct da_resolver *r;
	int ret;

	if (base == NULL || props == NULL || be == NULL || be->start == NULL || out == NULL)
		return DJ_EINVAL;
	r = calloc(1, sizeof(*r));
	if (r == NULL)
		return DJ_ENOMEM;
	LIST_INIT(&r->queries);
	LIST_INIT(&r->discs);
	r->base = base;
	r->be = *be;
	r->clock = clock != NULL ? clock : dj_clock_mono_ms_cb;	/* monotonic: immune to steps */
	r->clock_arg = clock_arg;
	r->ttl_cap = props->ttl_cap ? props->ttl_cap : DA_DEF_TTL_CAP;
	r->neg_ttl = props->neg_ttl ? props->neg_ttl : DA_DEF_NEG_TTL;
	r->timeout_ms = props->timeout_ms ? props->timeout_ms : DEF_TIMEOUT_MS;
	r->refresh_pct = props->refresh_pct ? props->refresh_pct : DEF_REFRESH_PCT;
	if (props->share_cache != NULL) {
		r->cache = props->share_cache->cache;	/* it outlives us (da_dns.h) */
	} else {
		ret = da__cache_init(&r->own_cache,
				     props->cache_max ? props->cache_max : DEF_CACHE_MAX);
		if (ret != DJ_EOK) {
			free(r);
			return ret;
		}
		r->cache = &r->own_cache;
	}
	*out = r;
	return DJ_EOK;
}

void da_resolver_free(struct da_resolver *r)
{
	struct da_query *q;
	struct da_lookup *l;

	if (r == NULL)
		return;
	assert(r->depth == 0);	/* not from a callback of this resolver (da_dns.h) */
	while (!LIST_EMPTY(&r->discs))
		da__disc_cancel(LIST_FIRST(&r->discs));
	while ((q = LIST_FIRST(&r->queries)) != NULL) {
		while ((l = q->waiters) != NULL) {
			q->waiters = l->next;
			free(l);
		}
		query_drop(q);	/* ub_cancel: libunbound calls nobody back for it */
	}
	da__ub_free(r);
	if (r->cache == &r->own_cache)
		da__cache_clear(&r->own_cache);
	free(r);
}

void da_resolver_stats(const struct da_resolver *r, struct da_stats *out)
{
	if (out == NULL)
		return;
	memset(out, 0, sizeof(*out));
	if (r == NULL)
		return;
	*out = r->st;
	pthread_mutex_lock(&r->cache->lock);
	out->evictions = r->cache->evictions;
	out->cached = r->cache->count;
	pthread_mutex_unlock(&r->cache->lock);
}

int da_resolver_wait(struct da_resolver *r)
{
	int rc;

	if (r == NULL)
		return DJ_EINVAL;
	/* every pending lookup (and discovery step) waits on a query, and every query has a
	 * timer, so the loop always has something to wake up for */
	while (!LIST_EMPTY(&r->queries)) {
		rc = event_base_loop(r->base, EVLOOP_ONCE);
		if (rc < 0 || (rc == 1 && !LIST_EMPTY(&r->queries)))
			return DJ_EIO;
	}
	return DJ_EOK;
}
