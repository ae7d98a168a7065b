/*
 * metrics.c - danejoind's counters and their Prometheus text exposition (the [listen]
 * metrics_address, plain HTTP on loopback by default): requests, answers by Result, joins by
 * verdict, latency, group commit, connections, peer authentication, DNS, ownership checks and
 * the MQTT event stream. Counters hold no key and no identity, only counts.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/dj_err.h"

#include "backend-auth/da_dns.h"
#include "ev_pub.h"
#include "ownership/js_owner.h"
#include "svc_internal.h"

/* lat_bounds - the latency histogram's buckets: upper bounds in seconds */
static const double lat_bounds[LAT_BUCKETS] = { 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02,
						0.05, 0.1, 0.2, 0.5, 1.0, 5.0 };

void svc__metrics_answer(struct svc *s, enum bi_result result, double latency)
{
	s->m.results[result]++;
	s->m.lat_count++;
	s->m.lat_sum += latency;
	for (unsigned i = 0; i < LAT_BUCKETS; i++)
		if (latency <= lat_bounds[i])
			s->m.lat_bucket[i]++;
}

/* events_metrics - [mqtt] on: the outbox and the publisher (dj_events_*) */
static void events_metrics(struct svc *s, FILE *f)
{
	struct js_store_stats st;
	struct ev_pub_stats ps;

	if (s->pub == NULL)
		return;
	js_store_stats(s->store, &st);
	ev_pub_stats(s->pub, &ps);
	fprintf(f, "# TYPE dj_events_outbox gauge\ndj_events_outbox %llu\n"
		   "# TYPE dj_events_written_total counter\ndj_events_written_total %llu\n"
		   "# TYPE dj_events_published_total counter\ndj_events_published_total %llu\n"
		   "# TYPE dj_events_dropped_total counter\ndj_events_dropped_total %llu\n"
		   "# TYPE dj_events_inflight gauge\ndj_events_inflight %u\n"
		   "# TYPE dj_events_broker_connected gauge\ndj_events_broker_connected %d\n"
		   "# TYPE dj_events_broker_connects_total counter\n"
		   "dj_events_broker_connects_total %llu\n"
		   "# TYPE dj_events_broker_connect_failures_total counter\n"
		   "dj_events_broker_connect_failures_total %llu\n"
		   "# TYPE dj_events_undecodable_total counter\ndj_events_undecodable_total %llu\n",
		(unsigned long long)st.outbox_rows, (unsigned long long)st.events_written,
		(unsigned long long)ps.published, (unsigned long long)st.events_dropped,
		ps.inflight, ps.connected ? 1 : 0, (unsigned long long)ps.connects,
		(unsigned long long)ps.connect_failures, (unsigned long long)ps.render_failures);
}

/* Counters summed over the loops: structs made of 64-bit counters only (size_t counts too) */
_Static_assert(sizeof(size_t) == sizeof(uint64_t) && sizeof(unsigned long long) == sizeof(uint64_t),
	       "counters are 64-bit");
_Static_assert(sizeof(struct srv_conn_stats) % sizeof(uint64_t) == 0 &&
	       sizeof(struct srv_auth_stats) % sizeof(uint64_t) == 0 &&
	       sizeof(struct da_stats) % sizeof(uint64_t) == 0 &&
	       sizeof(struct js_owner_stats) % sizeof(uint64_t) == 0, "counter structs");

/* add_u64 - dst += src, counter by counter, for a struct of \p size bytes of 64-bit counters */
static void add_u64(void *dst, const void *src, size_t size)
{
	for (size_t i = 0; i < size; i += sizeof(uint64_t)) {
		uint64_t a, b;

		memcpy(&a, (char *)dst + i, sizeof(a));
		memcpy(&b, (const char *)src + i, sizeof(b));
		a += b;
		memcpy((char *)dst + i, &a, sizeof(a));
	}
}

/* add_metrics - the counters of one loop into the sum */
static void add_metrics(struct metrics *t, const struct metrics *m)
{
	for (unsigned i = 0; i < DJ_ARRAY_LEN(t->requests); i++)
		t->requests[i] += m->requests[i];
	for (unsigned i = 0; i < DJ_ARRAY_LEN(t->results); i++)
		t->results[i] += m->results[i];
	for (unsigned i = 0; i < DJ_ARRAY_LEN(t->verdicts); i++)
		t->verdicts[i] += m->verdicts[i];
	for (unsigned i = 0; i < LAT_BUCKETS; i++)
		t->lat_bucket[i] += m->lat_bucket[i];
	t->http_errors += m->http_errors;
	t->rate_limited += m->rate_limited;
	t->lat_count += m->lat_count;
	t->lat_sum += m->lat_sum;
	t->handled += m->handled;
}

/* loops_metrics - the per-loop lines, and the sum of every loop's counters into \p t */
static int loops_metrics(struct svc *s, FILE *f, struct loop_stats *t)
{
	unsigned n = s->sh->n_loops;
	struct loop_stats *v = calloc(n, sizeof(*v));

	if (v == NULL)
		return DJ_ENOMEM;
	svc__loop_stats(s, v);
	memset(t, 0, sizeof(*t));
	fprintf(f, "# TYPE danejoin_loops gauge\ndanejoin_loops %u\n"
		   "# TYPE danejoin_loop_requests_total counter\n", n);
	for (unsigned k = 0; k < n; k++) {
		fprintf(f, "danejoin_loop_requests_total{loop=\"%u\"} %llu\n", k,
			(unsigned long long)v[k].m.handled);
		add_metrics(&t->m, &v[k].m);
		add_u64(&t->cs, &v[k].cs, sizeof(t->cs));
		add_u64(&t->as, &v[k].as, sizeof(t->as));
		add_u64(&t->ds, &v[k].ds, sizeof(t->ds));
		add_u64(&t->os, &v[k].os, sizeof(t->os));
	}
	/* the loops share one DNS cache (loops.c): its size and evictions once */
	t->ds.cached = v[0].ds.cached;
	t->ds.evictions = v[0].ds.evictions;
	free(v);
	return DJ_EOK;
}

char *svc__metrics_text(void *arg)
{
	struct svc *s = arg;
	struct js_store_stats st;
	struct loop_stats all;
	const struct metrics *m = &all.m;
	const struct srv_conn_stats *cs = &all.cs;
	char *buf = NULL;
	size_t size = 0;
	FILE *f = open_memstream(&buf, &size);
	uint64_t cum = 0;

	if (f == NULL)
		return NULL;
	if (loops_metrics(s, f, &all) != DJ_EOK) {
		fclose(f);
		free(buf);
		return NULL;
	}
	js_store_stats(s->store, &st);
	fprintf(f, "# TYPE danejoin_requests_total counter\n");
	for (int t = BI_JOIN_REQ; t <= BI_HOMENS_REQ; t += 2)
		fprintf(f, "danejoin_requests_total{type=\"%s\"} %llu\n", bi_msg_type_str(t),
			(unsigned long long)m->requests[t]);
	fprintf(f, "# TYPE danejoin_answers_total counter\n");
	for (int r = 0; r < BI_RESULT_COUNT; r++)
		fprintf(f, "danejoin_answers_total{result=\"%s\"} %llu\n",
			bi_result_str(r, BI_PROTO_1_1), (unsigned long long)m->results[r]);
	fprintf(f, "# TYPE danejoin_joins_total counter\n");
	for (int v = 0; v <= JS_V_BUSY; v++)
		fprintf(f, "danejoin_joins_total{verdict=\"%s\"} %llu\n", js_verdict_str(v),
			(unsigned long long)m->verdicts[v]);
	fprintf(f, "# TYPE danejoin_request_seconds histogram\n");
	for (unsigned i = 0; i < LAT_BUCKETS; i++) {
		cum = m->lat_bucket[i];
		fprintf(f, "danejoin_request_seconds_bucket{le=\"%g\"} %llu\n", lat_bounds[i],
			(unsigned long long)cum);
	}
	fprintf(f, "danejoin_request_seconds_bucket{le=\"+Inf\"} %llu\n",
		(unsigned long long)m->lat_count);
	fprintf(f, "danejoin_request_seconds_sum %.6f\ndanejoin_request_seconds_count %llu\n",
		m->lat_sum, (unsigned long long)m->lat_count);
	fprintf(f, "# TYPE danejoin_group_commit_transactions_total counter\n"
		   "danejoin_group_commit_transactions_total %llu\n"
		   "# TYPE danejoin_group_commit_items_total counter\n"
		   "danejoin_group_commit_items_total %llu\n"
		   "# TYPE danejoin_group_commit_batch_max gauge\n"
		   "danejoin_group_commit_batch_max %llu\n",
		(unsigned long long)st.transactions, (unsigned long long)st.commits,
		(unsigned long long)st.batch_max_seen);
	/* the store's faults (docs/danejoind.md "Store faults") */
	fprintf(f, "# TYPE danejoin_store_faults_total counter\ndanejoin_store_faults_total %llu\n"
		   "# TYPE danejoin_store_disk_full_total counter\n"
		   "danejoin_store_disk_full_total %llu\n"
		   "# TYPE danejoin_store_disk_full gauge\ndanejoin_store_disk_full %d\n"
		   "# TYPE danejoin_store_files_replaced gauge\ndanejoin_store_files_replaced %d\n",
		(unsigned long long)st.faults, (unsigned long long)st.disk_full,
		st.disk_full_now ? 1 : 0, st.files_replaced ? 1 : 0);
	fprintf(f, "# TYPE danejoin_open_connections gauge\ndanejoin_open_connections %u\n"
		   "# TYPE danejoin_http_errors_total counter\ndanejoin_http_errors_total %llu\n"
		   "# TYPE danejoin_rate_limited_total counter\ndanejoin_rate_limited_total %llu\n",
		srv_connections(s->srv), (unsigned long long)m->http_errors,
		(unsigned long long)m->rate_limited);
	fprintf(f, "# TYPE danejoin_connections_closed_total counter\n"
		   "danejoin_connections_closed_total{reason=\"header_timeout\"} %llu\n"
		   "danejoin_connections_closed_total{reason=\"min_rate\"} %llu\n"
		   "danejoin_connections_closed_total{reason=\"peer_cap\"} %llu\n"
		   "danejoin_connections_closed_total{reason=\"unknown_peer\"} %llu\n"
		   "# TYPE danejoin_http_parser_refusals_total counter\n"
		   "danejoin_http_parser_refusals_total %llu\n",
		cs->header_timeout, cs->min_rate, cs->peer_cap, cs->close_after, cs->http_refused);
	if (s->resolver != NULL) {
		const struct srv_auth_stats as = all.as;
		const struct da_stats ds = all.ds;

		fprintf(f, "# TYPE danejoin_peer_auth_total counter\n"
			   "danejoin_peer_auth_total{result=\"ok\"} %llu\n"
			   "danejoin_peer_auth_total{result=\"rejected\"} %llu\n"
			   "danejoin_peer_auth_total{result=\"tempfail\"} %llu\n"
			   "# TYPE danejoin_peer_auth_held_requests_total counter\n"
			   "danejoin_peer_auth_held_requests_total %llu\n",
			as.ok, as.rejected, as.tempfail, as.held);
		fprintf(f, "# TYPE danejoin_dns_queries_total counter\ndanejoin_dns_queries_total %llu\n"
			   "# TYPE danejoin_dns_cache_hits_total counter\n"
			   "danejoin_dns_cache_hits_total %llu\n"
			   "# TYPE danejoin_dns_cache_entries gauge\ndanejoin_dns_cache_entries %zu\n"
			   "# TYPE danejoin_dns_answers_total counter\n"
			   "danejoin_dns_answers_total{status=\"secure\"} %llu\n"
			   "danejoin_dns_answers_total{status=\"insecure\"} %llu\n"
			   "danejoin_dns_answers_total{status=\"bogus\"} %llu\n"
			   "danejoin_dns_answers_total{status=\"nxdomain\"} %llu\n"
			   "danejoin_dns_answers_total{status=\"nodata\"} %llu\n"
			   "danejoin_dns_answers_total{status=\"tempfail\"} %llu\n",
			(unsigned long long)ds.queries, (unsigned long long)ds.cache_hits, ds.cached,
			(unsigned long long)ds.secure, (unsigned long long)ds.insecure,
			(unsigned long long)ds.bogus, (unsigned long long)ds.nxdomain,
			(unsigned long long)ds.nodata, (unsigned long long)ds.tempfail);
	}
	if (s->owner != NULL && s->peers->cfg.js_ownership) {
		const struct js_owner_stats os = all.os;

		fprintf(f, "# TYPE danejoin_ownership_checks_total counter\n"
			   "danejoin_ownership_checks_total{verdict=\"allowed\"} %llu\n"
			   "danejoin_ownership_checks_total{verdict=\"refused\"} %llu\n"
			   "danejoin_ownership_checks_total{verdict=\"tempfail\"} %llu\n"
			   "# TYPE danejoin_ownership_cache_hits_total counter\n"
			   "danejoin_ownership_cache_hits_total %llu\n"
			   "# TYPE danejoin_ownership_fetches_total counter\n"
			   "danejoin_ownership_fetches_total %llu\n"
			   "# TYPE danejoin_ownership_cache_entries gauge\n"
			   "danejoin_ownership_cache_entries %zu\n",
			(unsigned long long)os.allowed, (unsigned long long)os.refused,
			(unsigned long long)os.tempfail, (unsigned long long)os.hits,
			(unsigned long long)os.fetches, os.cached);
	}
	events_metrics(s, f);
	fclose(f);
	return buf;
}
