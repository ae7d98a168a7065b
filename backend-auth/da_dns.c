/*
 * da_dns.c - the resolver: one libunbound context on the caller's libevent loop, one query in
 *	      flight per (type, name), a timer per query, the verdict cache, and TLSA and TXT
 *	      lookups.
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
#define DEF_TTL_CAP 3600u
#define DEF_NEG_TTL 60u
#define DEF_TIMEOUT_MS 5000u
#define DEF_REFRESH_PCT 10u
#define MS_PER_S 1000u
#define DNS_CLASS_IN 1			/* RFC 1035 §3.2.4 */
#define ROOT_KEY_FILE "/usr/share/dns/root.key" /* Debian dns-root-data */
#define PROP_TOKEN_MAX 512

struct da_query {
	struct da_resolver *r;
	LIST_ENTRY(da_query) link;	/* r->queries */
	uint16_t type;
	char name[DA_QNAME_MAX + 1];
	struct event *ev;		/* the timeout, and the deferred delivery of an answer */
	struct da_answer *result;	/* parked answer, delivered from ev */
	struct da_lookup *waiters;	/* in arrival order */
	struct da_lookup **wtail;
	int refresh;			/* a background refresh: lives without waiters */
	int upstream;			/* the backend still owes an answer */
	int async_id;			/* libunbound's id, for ub_cancel */
};

static void test_ub_refresh(struct da_resolver *r);

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
	if (a->status != DA_TEMPFAIL &&
	    da__cache_put(&r->cache, q->type, q->name, a, life, r->clock(r->clock_arg)) != DJ_EOK)
		dj_warn("da_dns: cannot cache %s: out of memory", q->name);
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
	test_ub_refresh(r);
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

	e = da__cache_get(&r->cache, type, name, now);
	if (e != NULL) {
		struct da_answer *a = da__answer_ref(e->ans);
		uint32_t left = life_left(e, now);

		r->st.cache_hits++;
		if (da__cache_in_refresh(e, r->refresh_pct, now) &&
		    find_query(r, type, name) == NULL) {
			if (query_new(r, type, name, 1, &rq) == DJ_EOK)
				r->st.refreshes++;
			else
				dj_warn("da_dns: cannot refresh %s: out of memory", name);
		}
		deliver_cached(r, name, a, left, tcb, xcb, rcb, arg);
		return DJ_EOK;
	}
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

	if (r == NULL || cb == NULL || da__name_canon(name, canon, sizeof(canon)) != DJ_EOK)
		return DJ_EINVAL;
	now = r->clock(r->clock_arg);
	e = da__cache_get(&r->cache, DA_T_TLSA, canon, now);
	if (e == NULL)
		return DJ_ENOENT;
	deliver_cached(r, canon, da__answer_ref(e->ans), life_left(e, now), cb, NULL, NULL, arg);
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

/* ---- the libunbound backend ------------------------------------------------------------ */

/* ub_answer - ub_resolve_event's callback: make the verdict and park it on the query */
static void ub_answer(void *arg, int rcode, void *pkt, int len, int sec, char *why_bogus,
		      int was_ratelimited)
{
	struct da_query *q = arg;
	struct da_answer *a = NULL;

	(void)was_ratelimited;
	if (da__answer_from_packet(q->type, rcode, pkt, len > 0 ? (size_t)len : 0, sec,
				   why_bogus, q->r->neg_ttl, &a) != DJ_EOK &&
	    da__answer_new(q->type, DA_TEMPFAIL, 0, "out of memory", &a) != DJ_EOK) {
		/* not even that: the query's event delivers a TEMPFAIL of its own */
		q->upstream = 0;
		event_del(q->ev);
		event_active(q->ev, EV_TIMEOUT, 1);
		return;
	}
	da__query_answer(q, a);
}

/* ub_start - backend start: ub_resolve_event (it may answer before returning) */
static int ub_start(struct da_query *q, const char *name, uint16_t type, void *arg)
{
	struct ub_ctx *ctx = arg;
	int id = 0, rc;

	rc = ub_resolve_event(ctx, name, type, DNS_CLASS_IN, q, ub_answer, &id);
	if (rc != 0) {
		dj_warn("da_dns: ub_resolve_event %s: %s", name, ub_strerror(rc));
		return DJ_EIO;
	}
	q->async_id = id;
	return DJ_EOK;
}

/* ub_stop - backend cancel: no callback follows ub_cancel in event mode */
static void ub_stop(struct da_query *q, void *arg)
{
	if (q->async_id != 0)
		(void)ub_cancel((struct ub_ctx *)arg, q->async_id);
}

#ifdef DJ_TEST_HOOKS
/*
 * Test builds only (DJ_TEST_HOOKS): the test clock (common/dj_clock.h) moves our cache's time,
 * but libunbound keeps its own cache on the wall clock, where an answer would outlive a jump of
 * the test clock. So after each jump the resolver starts over with a fresh libunbound context
 * made from the same properties, once no query of the old one is in flight (a jump happens
 * while the test waits, so that is at once). Release builds have none of this.
 */
struct da_test_ub {
	struct da_resolver_props props;	/* the strings below, owned */
	char *ta_file, *auto_ta_file, *stubs, *forwarders;
	uint64_t epoch;			/* the test clock's offset when the context was made */
};

static int ub_setup(struct ub_ctx *ctx, const struct da_resolver_props *props, uint32_t ttl_cap,
		    uint32_t neg_ttl, char *err, size_t errlen);

/* test_ub_free - accepts NULL */
static void test_ub_free(struct da_test_ub *t)
{
	if (t == NULL)
		return;
	free(t->ta_file);
	free(t->auto_ta_file);
	free(t->stubs);
	free(t->forwarders);
	free(t);
}

/* dup_or_null - strdup that keeps NULL; *bad set when a copy failed */
static char *dup_or_null(const char *s, int *bad)
{
	char *d = s != NULL ? strdup(s) : NULL;

	if (s != NULL && d == NULL)
		*bad = 1;
	return d;
}

/* test_ub_new - keep a copy of \p props for later rebuilds; NULL when out of memory */
static struct da_test_ub *test_ub_new(const struct da_resolver_props *props)
{
	struct da_test_ub *t = calloc(1, sizeof(*t));
	int bad = 0;

	if (t == NULL)
		return NULL;
	t->props = *props;
	t->props.ta_file = t->ta_file = dup_or_null(props->ta_file, &bad);
	t->props.auto_ta_file = t->auto_ta_file = dup_or_null(props->auto_ta_file, &bad);
	t->props.stubs = t->stubs = dup_or_null(props->stubs, &bad);
	t->props.forwarders = t->forwarders = dup_or_null(props->forwarders, &bad);
	t->epoch = dj_clock_test_offset_ms();
	if (bad) {
		test_ub_free(t);
		return NULL;
	}
	return t;
}

/* test_ub_refresh - after a test-clock jump, a fresh libunbound context (see above) */
static void test_ub_refresh(struct da_resolver *r)
{
	uint64_t now = dj_clock_test_offset_ms();
	struct ub_ctx *ctx;
	char err[256];

	if (r->test_ub == NULL || r->ub == NULL || now == r->test_ub->epoch)
		return;
	for (struct da_query *q = r->queries; q != NULL; q = q->next)
		if (q->upstream)
			return;	/* the old context still owes an answer: next time */
	ctx = ub_ctx_create_event(r->base);
	if (ctx == NULL || ub_setup(ctx, &r->test_ub->props, r->ttl_cap, r->neg_ttl, err,
				    sizeof(err)) != DJ_EOK) {
		if (ctx != NULL)
			ub_ctx_delete(ctx);
		return;	/* keep the old one: the test sees the stale answer and fails */
	}
	ub_ctx_delete(r->ub);
	r->ub = ctx;
	r->be.arg = ctx;
	r->test_ub->epoch = now;
}
#else
/* test_ub_refresh - release builds: nothing */
static void test_ub_refresh(struct da_resolver *r)
{
	(void)r;
}
#endif

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
	r->ttl_cap = props->ttl_cap ? props->ttl_cap : DEF_TTL_CAP;
	r->neg_ttl = props->neg_ttl ? props->neg_ttl : DEF_NEG_TTL;
	r->timeout_ms = props->timeout_ms ? props->timeout_ms : DEF_TIMEOUT_MS;
	r->refresh_pct = props->refresh_pct ? props->refresh_pct : DEF_REFRESH_PCT;
	ret = da__cache_init(&r->cache, props->cache_max ? props->cache_max : DEF_CACHE_MAX);
	if (ret != DJ_EOK) {
		free(r);
		return ret;
	}
	*out = r;
	return DJ_EOK;
}

/* is_loopback - whether a stub/forwarder address is on loopback (libunbound refuses those
 * unless do-not-query-localhost is off) */
static int is_loopback(const char *addr)
{
	return strncmp(addr, "127.", 4) == 0 || strncmp(addr, "::1", 3) == 0 ||
	       strncmp(addr, "localhost", 9) == 0;
}

/* next_token - the next item of a list separated by spaces or commas; 0 at the end */
static int next_token(const char **p, char *tok, size_t toklen)
{
	const char *s = *p;
	size_t n;

	s += strspn(s, " ,\t");
	n = strcspn(s, " ,\t");
	if (n == 0)
		return 0;
	if (n >= toklen)
		n = toklen - 1;	/* the caller rejects it: it cannot parse as an address */
	memcpy(tok, s, n);
	tok[n] = '\0';
	*p = s + strcspn(s, " ,\t");
	return 1;
}

/* default_local_parent - the unbound default local zone (RFC 6761 names) that would hide
 * \p zone, or NULL: a stub under it needs that zone made transparent */
static const char *default_local_parent(const char *zone)
{
	static const char *const tlds[] = { "test", "invalid", "onion", "local", "home.arpa" };
	size_t zl = strlen(zone), i;

	for (i = 0; i < DJ_ARRAY_LEN(tlds); i++) {
		size_t tl = strlen(tlds[i]);

		if (zl >= tl && strcmp(zone + zl - tl, tlds[i]) == 0 &&
		    (zl == tl || zone[zl - tl - 1] == '.'))
			return tlds[i];
	}
	return NULL;
}

/* ub_setup - configure \p ctx from \p props; DJ_ECONFIG names the bad value in \p err */
static int ub_setup(struct ub_ctx *ctx, const struct da_resolver_props *props, uint32_t ttl_cap,
		    uint32_t neg_ttl, char *err, size_t errlen)
{
	const char *p, *local[8];
	char tok[PROP_TOKEN_MAX], zone[DA_QNAME_MAX + 1], fq[DA_QNAME_MAX + 2];
	size_t nlocal = 0, i;
	int rc, loop = 0, anchors = 0;

	/* libraries never print: libunbound's own log goes nowhere, its reasons come back to us
	 * as why_bogus and error codes */
	if (ub_ctx_set_option(ctx, "use-syslog:", "no") != 0 ||
	    ub_ctx_set_option(ctx, "logfile:", "/dev/null") != 0) {
		dj_errbuf(err, errlen, "libunbound rejected its log options");
		return DJ_ECONFIG;
	}
	/* libunbound keeps a cache of its own: cap it like ours, or an answer past ttl_cap would
	 * come back from there as a fresh secure answer (while the DNS is down, for instance) */
	snprintf(tok, sizeof(tok), "%u", (unsigned)ttl_cap);
	snprintf(zone, sizeof(zone), "%u", (unsigned)neg_ttl);
	if (ub_ctx_set_option(ctx, "cache-max-ttl:", tok) != 0 ||
	    ub_ctx_set_option(ctx, "cache-max-negative-ttl:", zone) != 0 ||
	    ub_ctx_set_option(ctx, "val-bogus-ttl:", zone) != 0) {
		dj_errbuf(err, errlen, "libunbound rejected cache-max-ttl %s / negative %s", tok,
			  zone);
		return DJ_ECONFIG;
	}
	/* libunbound keeps a cache of its own: cap it like ours, or a record we let expire (a
	 * rollover, the DNS down) would come back from it for its full TTL */
	{
		char cap[16], neg[16];

		snprintf(cap, sizeof(cap), "%u", props->ttl_cap ? props->ttl_cap : DEF_TTL_CAP);
		snprintf(neg, sizeof(neg), "%u", props->neg_ttl ? props->neg_ttl : DEF_NEG_TTL);
		if (ub_ctx_set_option(ctx, "cache-max-ttl:", cap) != 0 ||
		    ub_ctx_set_option(ctx, "cache-max-negative-ttl:", neg) != 0) {
			dj_errbuf(err, errlen, "libunbound rejected the cache TTL caps");
			return DJ_ECONFIG;
		}
	}
	for (p = props->stubs ? props->stubs : ""; next_token(&p, tok, sizeof(tok));) {
		char *at = strchr(tok, '@');

		if (at == NULL || at == tok || at[1] == '\0') {
			dj_errbuf(err, errlen, "stub \"%s\": want zone@addr[@port]", tok);
			return DJ_ECONFIG;
		}
		*at = '\0';
		if (da__name_canon(tok, zone, sizeof(zone)) != DJ_EOK) {
			dj_errbuf(err, errlen, "stub zone \"%s\": not a domain name", tok);
			return DJ_ECONFIG;
		}
		loop |= is_loopback(at + 1);
		snprintf(fq, sizeof(fq), "%s.", zone);
		rc = ub_ctx_set_stub(ctx, fq, at + 1, 0);
		if (rc != 0) {
			dj_errbuf(err, errlen, "stub \"%s@%s\": %s", tok, at + 1, ub_strerror(rc));
			return DJ_ECONFIG;
		}
		local[nlocal] = default_local_parent(zone);
		if (local[nlocal] != NULL && nlocal < DJ_ARRAY_LEN(local) - 1)
			nlocal++;
	}
	for (p = props->forwarders ? props->forwarders : ""; next_token(&p, tok, sizeof(tok));) {
		loop |= is_loopback(tok);
		rc = ub_ctx_set_fwd(ctx, tok);
		if (rc != 0) {
			dj_errbuf(err, errlen, "forwarder \"%s\": %s", tok, ub_strerror(rc));
			return DJ_ECONFIG;
		}
	}
	if (loop && ub_ctx_set_option(ctx, "do-not-query-localhost:", "no") != 0) {
		dj_errbuf(err, errlen, "libunbound rejected do-not-query-localhost");
		return DJ_ECONFIG;
	}
	if (props->ta_file != NULL) {
		if (access(props->ta_file, R_OK) != 0) {
			dj_errbuf(err, errlen, "ta_file \"%s\": not readable", props->ta_file);
			return DJ_ECONFIG;
		}
		if ((rc = ub_ctx_add_ta_file(ctx, props->ta_file)) != 0) {
			dj_errbuf(err, errlen, "ta_file \"%s\": %s", props->ta_file,
				  ub_strerror(rc));
			return DJ_ECONFIG;
		}
		anchors++;
	}
	if (props->auto_ta_file != NULL) {
		if (access(props->auto_ta_file, R_OK | W_OK) != 0) {
			dj_errbuf(err, errlen, "auto_ta_file \"%s\": not readable and writable",
				  props->auto_ta_file);
			return DJ_ECONFIG;
		}
		if ((rc = ub_ctx_add_ta_autr(ctx, props->auto_ta_file)) != 0) {
			dj_errbuf(err, errlen, "auto_ta_file \"%s\": %s", props->auto_ta_file,
				  ub_strerror(rc));
			return DJ_ECONFIG;
		}
		anchors++;
	}
	if (props->builtin_root) {
		if (access(ROOT_KEY_FILE, R_OK) != 0) {
			dj_errbuf(err, errlen, "builtin_root: %s is not there (dns-root-data)",
				  ROOT_KEY_FILE);
			return DJ_ECONFIG;
		}
		if ((rc = ub_ctx_add_ta_file(ctx, ROOT_KEY_FILE)) != 0) {
			dj_errbuf(err, errlen, "builtin_root %s: %s", ROOT_KEY_FILE,
				  ub_strerror(rc));
			return DJ_ECONFIG;
		}
		anchors++;
	}
	if (anchors == 0) {
		dj_errbuf(err, errlen, "no trust anchor: set ta_file, auto_ta_file or builtin_root");
		return DJ_ECONFIG;
	}
	/* Last: ub_ctx_zone_add finalizes the context (it reads the anchors now, so a bad file
	 * is a DJ_ECONFIG here rather than a TEMPFAIL on every lookup). Stubs under a name that
	 * unbound serves locally by default (RFC 6761: test., invalid., ...) need that zone made
	 * transparent; otherwise "invalid." is re-added with its default type, only to finalize. */
	for (i = 0; i < nlocal; i++) {
		snprintf(fq, sizeof(fq), "%s.", local[i]);
		if ((rc = ub_ctx_zone_add(ctx, fq, "transparent")) != 0)
			break;
	}
	if (nlocal == 0)
		rc = ub_ctx_zone_add(ctx, "invalid.", "static");
	if (rc != 0) {
		dj_errbuf(err, errlen, "libunbound rejected the configuration (%s): check ta_file "
			  "\"%s\" / auto_ta_file \"%s\"", ub_strerror(rc),
			  props->ta_file ? props->ta_file : "",
			  props->auto_ta_file ? props->auto_ta_file : "");
		return DJ_ECONFIG;
	}
	return DJ_EOK;
}

int da_resolver_new(struct event_base *base, const struct da_resolver_props *props,
		    struct da_resolver **out, char *err, size_t errlen)
{
	struct da_resolver *r = NULL;
	struct da_backend be;
	struct ub_ctx *ctx = NULL;
	int ret = DJ_EINVAL;

	if (base == NULL || props == NULL || out == NULL) {
		dj_errbuf(err, errlen, "da_resolver_new: missing argument");
		goto out;
	}
	if (props->refresh_pct > 99) {
		dj_errbuf(err, errlen, "refresh_pct %u: want 0..99", props->refresh_pct);
		ret = DJ_ECONFIG;
		goto out;
	}
	ctx = ub_ctx_create_event(base);
	if (ctx == NULL) {
		dj_errbuf(err, errlen, "ub_ctx_create_event failed");
		ret = DJ_ENOMEM;
		goto out;
	}
	ret = ub_setup(ctx, props, props->ttl_cap ? props->ttl_cap : DEF_TTL_CAP,
		       props->neg_ttl ? props->neg_ttl : DEF_NEG_TTL, err, errlen);
	if (ret != DJ_EOK)
		goto out;
	be.start = ub_start;
	be.cancel = ub_stop;
	be.arg = ctx;
	ret = da__resolver_new_backend(base, props, &be, NULL, NULL, &r);
	if (ret != DJ_EOK) {
		dj_errbuf(err, errlen, "%s", dj_strerror(ret));
		goto out;
	}
	r->ub = ctx;
	ctx = NULL;
#ifdef DJ_TEST_HOOKS
	r->test_ub = test_ub_new(props);
	if (r->test_ub == NULL) {
		ret = DJ_ENOMEM;
		goto out;
	}
#endif
	*out = r;
	r = NULL;
out:
	if (ctx != NULL)
		ub_ctx_delete(ctx);
	da_resolver_free(r);
	return ret;
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
	if (r->ub != NULL)
		ub_ctx_delete(r->ub);
#ifdef DJ_TEST_HOOKS
	test_ub_free(r->test_ub);
#endif
	da__cache_clear(&r->cache);
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
	out->evictions = r->cache.evictions;
	out->cached = r->cache.count;
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
