/*
 * da_probe.c - a test driver for da_dns (backend-auth): one resolver on one libevent loop,
 * commands on stdin, one result line per command on stdout. test_da_dns.sh runs it against a
 * real knotd on loopback. Keeping one process across commands is what lets the test see the
 * cache (stop knotd, the answer is still served within its TTL, then TEMPFAIL).
 *
 * Usage: da_probe [--ta FILE] [--stubs "zone@addr@port ..."] [--timeout MS] [--ttl-cap S]
 *                 [--neg-ttl S] [--cache-max N]
 * Commands:
 *	tlsa NAME              one lookup, waited for
 *	tlsa2 NAME             two lookups of NAME at once (coalescing), waited for
 *	cancel NAME            a lookup cancelled at once: its callback must never run
 *	pending NAME           a lookup left pending (quit then frees the resolver under it)
 *	joineui HEX SUFFIX     da_joineui_name
 *	netid HEX SUFFIX       da_netid_name
 *	disc NAME SERVICE      da_discover, waited for
 *	stats                  da_resolver_stats
 *	quit
 * Exit: 0, 1 on a failed call, 2 if the resolver could not be made (the reason on stdout).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "backend-auth/da_dns.h"
#include "common/dj_err.h"

#define LINE_MAX_LEN 1024

struct result {
	int calls;
	char line[4096];
};

/* hex - append \p n bytes of \p p as hex to \p out */
static void hex(char *out, size_t outlen, const uint8_t *p, size_t n)
{
	size_t used = strlen(out), i;

	for (i = 0; i < n && used + 3 < outlen; i++, used += 2)
		snprintf(out + used, outlen - used, "%02x", p[i]);
}

/* on_tlsa - one line: status, count, ttl, cache flag, records, reason */
static void on_tlsa(const struct da_tlsa_set *s, void *arg)
{
	struct result *res = arg;
	size_t i, used;

	res->calls++;
	snprintf(res->line, sizeof(res->line), "tlsa %s status=%s n=%zu ttl=%" PRIu32 " cache=%d rr=",
		 s->name, da_status_str(s->status), s->n, s->ttl, s->from_cache);
	for (i = 0; i < s->n; i++) {
		used = strlen(res->line);
		snprintf(res->line + used, sizeof(res->line) - used, "%s%u:%u:%u:", i ? "," : "",
			 s->rr[i].usage, s->rr[i].selector, s->rr[i].mtype);
		hex(res->line, sizeof(res->line) - 200, s->rr[i].data,
		    s->rr[i].len > 8 ? 8 : s->rr[i].len);
	}
	used = strlen(res->line);
	snprintf(res->line + used, sizeof(res->line) - used, " why=%s", s->why ? s->why : "-");
}

/* on_disc - one line: status, servers (host:port/prio/weight[addr|addr]), reason */
static void on_disc(const struct da_discovery *d, void *arg)
{
	struct result *res = arg;
	size_t i, k, used;

	res->calls++;
	snprintf(res->line, sizeof(res->line), "disc %s status=%s n=%zu srv=", d->name,
		 da_status_str(d->status), d->n);
	for (i = 0; i < d->n; i++) {
		used = strlen(res->line);
		snprintf(res->line + used, sizeof(res->line) - used, "%s%s:%u/%u/%u[", i ? ";" : "",
			 d->srv[i].host, d->srv[i].port, d->srv[i].priority, d->srv[i].weight);
		for (k = 0; k < d->srv[i].n_addr; k++) {
			used = strlen(res->line);
			snprintf(res->line + used, sizeof(res->line) - used, "%s%s", k ? "|" : "",
				 d->srv[i].addr[k]);
		}
		used = strlen(res->line);
		snprintf(res->line + used, sizeof(res->line) - used, "]");
	}
	used = strlen(res->line);
	snprintf(res->line + used, sizeof(res->line) - used, " why=%s", d->why ? d->why : "-");
}

static void print_stats(struct da_resolver *r)
{
	struct da_stats st;

	da_resolver_stats(r, &st);
	printf("stats queries=%" PRIu64 " cache_hits=%" PRIu64 " cache_misses=%" PRIu64
	       " coalesced=%" PRIu64 " refreshes=%" PRIu64 " evictions=%" PRIu64
	       " secure=%" PRIu64 " insecure=%" PRIu64 " bogus=%" PRIu64 " nxdomain=%" PRIu64
	       " nodata=%" PRIu64 " unusable=%" PRIu64 " tempfail=%" PRIu64 " cached=%zu\n",
	       st.queries, st.cache_hits, st.cache_misses, st.coalesced, st.refreshes,
	       st.evictions, st.secure, st.insecure, st.bogus, st.nxdomain, st.nodata,
	       st.unusable, st.tempfail, st.cached);
}

/* run - one command; 0 or 1 (failed call) */
static int run(struct da_resolver *r, char *cmd)
{
	struct result a, b;
	struct da_lookup *h = NULL;
	struct da_stats s0, s1;
	char *verb = strtok(cmd, " \t\n"), *x = strtok(NULL, " \t\n"), *y = strtok(NULL, " \t\n");
	char name[300];
	int ret;

	memset(&a, 0, sizeof(a));
	memset(&b, 0, sizeof(b));
	if (verb == NULL)
		return 0;
	if (strcmp(verb, "stats") == 0) {
		print_stats(r);
		return 0;
	}
	if (x == NULL) {
		printf("error missing argument\n");
		return 1;
	}
	if (strcmp(verb, "tlsa") == 0 || strcmp(verb, "tlsa2") == 0) {
		da_resolver_stats(r, &s0);
		ret = da_tlsa_lookup(r, x, on_tlsa, &a, &h);
		if (ret == DJ_EOK && verb[4] == '2')
			ret = da_tlsa_lookup(r, x, on_tlsa, &b, &h);
		if (ret != DJ_EOK || da_resolver_wait(r) != DJ_EOK) {
			printf("error %s\n", dj_strerror(ret));
			return 1;
		}
		printf("%s calls=%d\n", a.line, a.calls);
		if (verb[4] == '2') {
			da_resolver_stats(r, &s1);
			printf("%s calls=%d queries+%" PRIu64 " coalesced+%" PRIu64 "\n", b.line,
			       b.calls, s1.queries - s0.queries, s1.coalesced - s0.coalesced);
		}
		return 0;
	}
	if (strcmp(verb, "cancel") == 0 || strcmp(verb, "pending") == 0) {
		static struct result pend;	/* must outlive this call: never written */

		ret = da_tlsa_lookup(r, x, on_tlsa, verb[0] == 'c' ? &a : &pend, &h);
		if (ret != DJ_EOK) {
			printf("error %s\n", dj_strerror(ret));
			return 1;
		}
		if (verb[0] == 'c') {
			da_lookup_cancel(h);
			if (da_resolver_wait(r) != DJ_EOK)
				return 1;
			printf("cancel %s handle=%d calls=%d\n", x, h != NULL, a.calls);
		} else {
			printf("pending %s handle=%d\n", x, h != NULL);
		}
		return 0;
	}
	if (strcmp(verb, "joineui") == 0 || strcmp(verb, "netid") == 0) {
		uint64_t v = strtoull(x, NULL, 16);

		ret = verb[0] == 'j' ? da_joineui_name(v, y, name, sizeof(name))
				     : da_netid_name((uint32_t)v, y, name, sizeof(name));
		if (ret != DJ_EOK) {
			printf("error %s\n", dj_strerror(ret));
			return 1;
		}
		printf("%s\n", name);
		return 0;
	}
	if (strcmp(verb, "disc") == 0 && y != NULL) {
		ret = da_discover(r, x, y, on_disc, &a, &h);
		if (ret != DJ_EOK || da_resolver_wait(r) != DJ_EOK) {
			printf("error %s\n", dj_strerror(ret));
			return 1;
		}
		printf("%s calls=%d\n", a.line, a.calls);
		return 0;
	}
	printf("error unknown command %s\n", verb);
	return 1;
}

int main(int argc, char **argv)
{
	struct da_resolver_props p;
	struct event_base *base = NULL;
	struct da_resolver *r = NULL;
	char err[256] = "", line[LINE_MAX_LEN];
	int i, ret, rc = 1;

	memset(&p, 0, sizeof(p));
	for (i = 1; i + 1 < argc; i += 2) {
		if (strcmp(argv[i], "--ta") == 0)
			p.ta_file = argv[i + 1];
		else if (strcmp(argv[i], "--stubs") == 0)
			p.stubs = argv[i + 1];
		else if (strcmp(argv[i], "--forwarders") == 0)
			p.forwarders = argv[i + 1];
		else if (strcmp(argv[i], "--timeout") == 0)
			p.timeout_ms = (unsigned)atoi(argv[i + 1]);
		else if (strcmp(argv[i], "--ttl-cap") == 0)
			p.ttl_cap = (unsigned)atoi(argv[i + 1]);
		else if (strcmp(argv[i], "--neg-ttl") == 0)
			p.neg_ttl = (unsigned)atoi(argv[i + 1]);
		else if (strcmp(argv[i], "--cache-max") == 0)
			p.cache_max = (unsigned)atoi(argv[i + 1]);
		else if (strcmp(argv[i], "--refresh-pct") == 0)
			p.refresh_pct = (unsigned)atoi(argv[i + 1]);
		else
			break;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	base = event_base_new();
	if (base == NULL)
		goto out;
	ret = da_resolver_new(base, &p, &r, err, sizeof(err));
	if (ret != DJ_EOK) {
		printf("resolver %s: %s\n", dj_strerror(ret), err);
		rc = 2;
		goto out;
	}
	printf("ready\n");
	rc = 0;
	while (fgets(line, sizeof(line), stdin) != NULL) {
		if (strncmp(line, "quit", 4) == 0)
			break;
		if (run(r, line) != 0)
			rc = 1;
	}
out:
	da_resolver_free(r);
	if (base != NULL)
		event_base_free(base);
	printf("bye\n");
	return rc;
}
