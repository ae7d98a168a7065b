/*
 * ca_lookup.c - confirm published records with a validating resolver (libunbound).
 *
 * A fresh ub_ctx per lookup: a cached answer from before the update must not confirm it. The
 * order of the calls follows the recipe (recipes/dnssec-test-zone.md): options, stub, trust
 * anchors, and the local-zone override last, because ub_ctx_zone_add() finalizes the context.
 * Unbound serves some names (test., invalid., home.arpa. ...) as local zones by default; the
 * stub zone is made transparent so that its queries go to the server.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <unbound.h>

#include "ca-tools/ca_lookup.h"
#include "common/dj_clock.h"
#include "common/dj_err.h"

#define CA_LOOKUP_INTERVAL_MS 200	/* between two tries of ca_lookup_until() */
#define NS_PER_MS 1000000L

int ca_rdset_add(struct ca_rdset *s, const uint8_t *data, size_t len)
{
	uint8_t *copy;

	if (s->n >= CA_RRSET_MAX)
		return DJ_ENOSPC;
	copy = malloc(len > 0 ? len : 1);
	if (copy == NULL)
		return DJ_ENOMEM;
	memcpy(copy, data, len);
	s->data[s->n] = copy;
	s->len[s->n] = len;
	s->n++;
	return DJ_EOK;
}

bool ca_rdset_has(const struct ca_rdset *s, const uint8_t *data, size_t len)
{
	size_t i;

	for (i = 0; i < s->n; i++)
		if (s->len[i] == len && memcmp(s->data[i], data, len) == 0)
			return true;
	return false;
}

bool ca_rdset_equal(const struct ca_rdset *a, const struct ca_rdset *b)
{
	size_t i;

	for (i = 0; i < a->n; i++)
		if (!ca_rdset_has(b, a->data[i], a->len[i]))
			return false;
	for (i = 0; i < b->n; i++)
		if (!ca_rdset_has(a, b->data[i], b->len[i]))
			return false;
	return true;
}

void ca_rdset_clear(struct ca_rdset *s)
{
	size_t i;

	for (i = 0; i < s->n; i++)
		free(s->data[i]);
	memset(s, 0, sizeof(*s));
}

void ca_verdict_clear(struct ca_verdict *v)
{
	ca_rdset_clear(&v->rd);
}

/* make_ctx - a validating resolver configured from \p p */
static int make_ctx(const struct ca_lookup_props *p, struct ub_ctx **out, char *why, size_t len)
{
	struct ub_ctx *ctx;
	int ub;

	*out = NULL;
	ctx = ub_ctx_create();
	if (ctx == NULL)
		return DJ_ENOMEM;
	ub = ub_ctx_set_option(ctx, "do-not-query-localhost:", "no");
	if (ub == 0 && p->stub_zone != NULL && p->stub_addr != NULL)
		ub = ub_ctx_set_stub(ctx, p->stub_zone, p->stub_addr, 0);
	if (ub != 0) {
		dj_errbuf(why, len, "resolver setup: %s", ub_strerror(ub));
		goto fail;
	}
	if (p->ta_file == NULL) {
		dj_errbuf(why, len, "no trust anchor file");
		goto fail;
	}
	ub = ub_ctx_add_ta_file(ctx, p->ta_file);
	if (ub != 0) {
		dj_errbuf(why, len, "trust anchors %s: %s", p->ta_file, ub_strerror(ub));
		goto fail;
	}
	if (p->stub_zone != NULL)
		(void)ub_ctx_zone_add(ctx, p->stub_zone, "transparent");	/* last: finalizes */
	*out = ctx;
	return DJ_EOK;
fail:
	ub_ctx_delete(ctx);
	return DJ_ECONFIG;
}

int ca_lookup(const struct ca_lookup_props *p, const char *name, uint16_t type,
	      const struct ca_rdset *expect, struct ca_verdict *out)
{
	struct ub_ctx *ctx = NULL;
	struct ub_result *res = NULL;
	int rc, ub, i;

	memset(out, 0, sizeof(*out));
	rc = make_ctx(p, &ctx, out->why, sizeof(out->why));
	if (rc != DJ_EOK)
		return rc;
	ub = ub_resolve(ctx, name, type, 1 /* IN */, &res);
	if (ub != 0 || res == NULL) {
		dj_errbuf(out->why, sizeof(out->why), "resolver: %s", ub_strerror(ub));
		rc = DJ_EAGAIN;
		goto out;
	}
	out->rcode = res->rcode;
	out->ttl = res->ttl > 0 ? (uint32_t)res->ttl : 0;
	out->status = res->secure ? DA_SECURE : res->bogus ? DA_BOGUS : DA_INSECURE;
	if (res->bogus && res->why_bogus != NULL)
		dj_errbuf(out->why, sizeof(out->why), "%s", res->why_bogus);
	if (res->rcode == 2 /* SERVFAIL */ && !res->bogus) {
		dj_errbuf(out->why, sizeof(out->why), "SERVFAIL (server unreachable or broken)");
		rc = DJ_EAGAIN;
		goto out;
	}
	for (i = 0; res->havedata && res->data[i] != NULL; i++) {
		rc = ca_rdset_add(&out->rd, (const uint8_t *)res->data[i], (size_t)res->len[i]);
		if (rc != DJ_EOK)
			goto out;
	}
	rc = DJ_EOK;
	if (expect != NULL) {
		out->matches = out->status == DA_SECURE && ca_rdset_equal(expect, &out->rd) &&
			       (res->rcode == 0 || (res->rcode == 3 && expect->n == 0));
		if (!out->matches && out->status == DA_SECURE)
			dj_errbuf(out->why, sizeof(out->why), "the secure answer holds %zu record(s),"
				  " not the %zu expected", out->rd.n, expect->n);
	}
out:
	ub_resolve_free(res);
	ub_ctx_delete(ctx);
	return rc;
}

int ca_lookup_until(const struct ca_lookup_props *p, const char *name, uint16_t type,
		    const struct ca_rdset *expect, unsigned timeout_ms, struct ca_verdict *out)
{
	struct timespec pause = { 0, CA_LOOKUP_INTERVAL_MS * NS_PER_MS };
	uint64_t start = dj_clock_mono_ms(), elapsed;
	int rc;

	for (;;) {
		rc = ca_lookup(p, name, type, expect, out);
		if (rc == DJ_ECONFIG || rc == DJ_ENOMEM || (rc == DJ_EOK && out->matches))
			return rc;
		elapsed = dj_clock_mono_ms() - start;
		if (elapsed + CA_LOOKUP_INTERVAL_MS > timeout_ms)
			return rc;
		ca_verdict_clear(out);
		nanosleep(&pause, NULL);
	}
}
