/*
 * da_ub.c - the resolver's libunbound backend (da_dns.c holds the queries, the cache and the
 *	     lookups): the context in event mode on the caller's loop, its configuration from
 *	     da_resolver_props (anchors, stubs, forwarders, the caps of libunbound's own cache),
 *	     and in test builds a fresh context after each jump of the test clock.
 *
 * SECURITY
 *	libunbound's own cache gets the same caps as ours (cache-max-ttl, cache-max-negative-ttl,
 *	val-bogus-ttl), or it would hand back an answer past ttl_cap. Its log goes nowhere: a
 *	library never prints (STYLE.md rule 6); its reasons come back as why_bogus and codes.
 */
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

#define DNS_CLASS_IN 1			/* RFC 1035 §3.2.4 */
#define ROOT_KEY_FILE "/usr/share/dns/root.key" /* Debian dns-root-data */
#define PROP_TOKEN_MAX 512

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
	struct da_query *q;
	struct ub_ctx *ctx;
	char err[256];

	if (r->test_ub == NULL || r->ub == NULL || now == r->test_ub->epoch)
		return;
	LIST_FOREACH(q, &r->queries, link)
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
#endif

void da__ub_refresh(struct da_resolver *r)
{
#ifdef DJ_TEST_HOOKS
	test_ub_refresh(r);
#else
	(void)r;
#endif
}

void da__ub_free(struct da_resolver *r)
{
	if (r->ub != NULL)
		ub_ctx_delete(r->ub);
#ifdef DJ_TEST_HOOKS
	test_ub_free(r->test_ub);
#endif
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

		snprintf(cap, sizeof(cap), "%u", props->ttl_cap ? props->ttl_cap : DA_DEF_TTL_CAP);
		snprintf(neg, sizeof(neg), "%u", props->neg_ttl ? props->neg_ttl : DA_DEF_NEG_TTL);
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
	ret = ub_setup(ctx, props, props->ttl_cap ? props->ttl_cap : DA_DEF_TTL_CAP,
		       props->neg_ttl ? props->neg_ttl : DA_DEF_NEG_TTL, err, errlen);
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

