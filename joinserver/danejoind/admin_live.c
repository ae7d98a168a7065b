/*
 * admin_live.c - what the management API sees happen: answers counted per peer, the join
 *		  rates of the last ADM_SERIES seconds (refused joins by TS002 Result too: a fixed
 *		  array per second, so the memory is bounded), and GET /api/v1/events, a stream of
 *		  server-sent events, one per join answered (DevEUI, peer, result; never a key).
 */
#include <stdio.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/http.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <time.h>

#include "admin_internal.h"
#include "common/dj_hex.h"

/* second_of - the slot of second \p t, cleared when it held an older second */
static struct adm_second *second_of(struct admin *a, int64_t t)
{
	struct adm_second *sl = &a->series[(uint64_t)t % ADM_SERIES];

	if (sl->t != t) {
		sl->t = t;
		sl->accepted = sl->refused = 0;
		memset(sl->refused_by, 0, sizeof(sl->refused_by));
	}
	return sl;
}

static struct adm_peer_stats *peer_stats(struct admin *a, const char *name)
{
	for (unsigned i = 0; i < a->n_peers; i++)
		if (strcmp(a->peers[i].name, name) == 0)
			return &a->peers[i];
	if (a->n_peers == ADM_PEERS_MAX)
		return NULL;
	snprintf(a->peers[a->n_peers].name, sizeof(a->peers[0].name), "%s", name);
	return &a->peers[a->n_peers++];
}

/* stream_closed - the client of a stream went away: forget its request, which evhttp frees */
static void stream_closed(struct evhttp_connection *c, void *arg)
{
	struct admin *a = arg;

	for (unsigned i = 0; i < ADM_STREAMS_MAX; i++) {
		if (a->stream_conns[i] == c) {
			/* evhttp detached the unfinished request from the failed connection and
			 * leaves it to us: ending it frees it */
			evhttp_send_reply_end(a->streams[i]);
			a->streams[i] = NULL;
			a->stream_conns[i] = NULL;
		}
	}
}



/* note_cert - subject, SPKI SHA-256 and notAfter of the certificate a peer presented */
static void note_cert(struct adm_peer_stats *ps, X509 *x)
{
	unsigned char *der = NULL, md[32];
	unsigned mdlen = 0;
	struct tm tm;
	int len;

	X509_NAME_oneline(X509_get_subject_name(x), ps->subject, sizeof(ps->subject));
	len = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(x), &der);
	if (len > 0 && EVP_Digest(der, (size_t)len, md, &mdlen, EVP_sha256(), NULL) == 1)
		dj_hex_format(md, sizeof(md), ps->spki_sha256);
	OPENSSL_free(der);
	ps->not_after[0] = '\0';
	if (ASN1_TIME_to_tm(X509_get0_notAfter(x), &tm) == 1)
		strftime(ps->not_after, sizeof(ps->not_after), "%Y-%m-%dT%H:%M:%SZ", &tm);
	ps->has_cert = true;
}

void admin_note_answer(struct admin *a, const char *peer, const struct bi_msg *ans, X509 *cert)
{
	struct adm_peer_stats *ps;
	int64_t now;
	char eui[2 * LW_EUI_LEN + 1] = "", line[512];
	bool join;

	if (a == NULL)
		return;
	now = adm_now();
	ps = peer_stats(a, peer != NULL ? peer : "?");
	if (ps != NULL) {
		ps->requests++;
		if ((unsigned)ans->result < BI_RESULT_COUNT)
			ps->results[ans->result]++;
		ps->last_seen = now;
		if (cert != NULL)
			note_cert(ps, cert);
	}
	join = ans->type == BI_JOIN_ANS || ans->type == BI_REJOIN_ANS;
	if (!join)
		return;
	if (ans->result == BI_SUCCESS) {
		second_of(a, now)->accepted++;
	} else {
		struct adm_second *sl = second_of(a, now);

		sl->refused++;
		a->joins_refused++;
		if ((unsigned)ans->result < BI_RESULT_COUNT) {
			sl->refused_by[ans->result]++;
			a->refused_by[ans->result]++;
		}
	}
	a->joins_total++;
	if (ans->has_dev_eui)
		dj_hex_format(ans->dev_eui, LW_EUI_LEN, eui);
	{
		json_t *j = json_pack("{s:I,s:s,s:s,s:s,s:b}", "at", (json_int_t)now, "dev_eui",
				      eui, "peer", peer != NULL ? peer : "?", "result",
				      bi_result_str(ans->result, BI_PROTO_1_1), "accepted",
				      ans->result == BI_SUCCESS);
		char *text = j != NULL ? json_dumps(j, JSON_COMPACT) : NULL;

		json_decref(j);
		if (text == NULL)
			return;
		snprintf(line, sizeof(line), "event: join\ndata: %s\n\n", text);
		free(text);
	}
	for (unsigned i = 0; i < ADM_STREAMS_MAX; i++) {
		struct evbuffer *b;

		if (a->streams[i] == NULL || (b = evbuffer_new()) == NULL)
			continue;
		evbuffer_add(b, line, strlen(line));
		evhttp_send_reply_chunk(a->streams[i], b);
		evbuffer_free(b);
	}
}

void adm_live_ping(struct admin *a)
{
	for (unsigned i = 0; i < ADM_STREAMS_MAX; i++) {
		struct evbuffer *b;

		if (a->streams[i] == NULL || (b = evbuffer_new()) == NULL)
			continue;
		evbuffer_add_printf(b, ": ping\n\n");	/* keeps the stream inside its timeout */
		evhttp_send_reply_chunk(a->streams[i], b);
		evbuffer_free(b);
	}
}

void adm_live_events(struct admin *a, struct evhttp_request *req)
{
	struct evkeyvalq *h = evhttp_request_get_output_headers(req);
	struct evbuffer *b;
	unsigned i;

	for (i = 0; i < ADM_STREAMS_MAX && a->streams[i] != NULL; i++)
		;
	if (i == ADM_STREAMS_MAX) {
		adm_error(req, 503, "too many event streams");
		return;
	}
	evhttp_add_header(h, "Content-Type", "text/event-stream");
	evhttp_add_header(h, "Cache-Control", "no-store");
	evhttp_add_header(h, "X-Content-Type-Options", "nosniff");
	evhttp_send_reply_start(req, 200, "OK");
	a->streams[i] = req;
	a->stream_conns[i] = evhttp_request_get_connection(req);
	evhttp_connection_set_closecb(a->stream_conns[i], stream_closed, a);
	b = evbuffer_new();
	if (b != NULL) {
		evbuffer_add_printf(b, ": danejoind join events\nretry: 2000\n\n");
		evhttp_send_reply_chunk(req, b);
		evbuffer_free(b);
	}
}

/* by_reason - {"MICFailed": n, ...}: the non-zero counts of \p n by TS002 Result name */
static json_t *by_reason(const unsigned *n32, const uint64_t *n64)
{
	json_t *by = json_object();

	for (unsigned r = 0; r < BI_RESULT_COUNT; r++) {
		uint64_t v = n32 != NULL ? n32[r] : n64[r];

		if (v != 0)
			json_object_set_new(by, bi_result_str((enum bi_result)r, BI_PROTO_1_1),
					    json_integer((json_int_t)v));
	}
	return by;
}

json_t *adm_live_series(struct admin *a)
{
	json_t *pts = json_array(), *peers = json_object();
	int64_t now = adm_now();

	for (int64_t t = now - ADM_SERIES + 1; t <= now; t++) {
		const struct adm_second *sl = &a->series[(uint64_t)t % ADM_SERIES];
		bool cur = sl->t == t;

		json_array_append_new(pts, json_pack("{s:I,s:i,s:i,s:o}", "t", (json_int_t)t,
						     "accepted", cur ? (int)sl->accepted : 0,
						     "refused", cur ? (int)sl->refused : 0,
						     "refused_by_reason", cur ? by_reason(sl->refused_by,
											  NULL)
									  : json_object()));
	}
	for (unsigned i = 0; i < a->n_peers; i++) {
		const struct adm_peer_stats *ps = &a->peers[i];
		json_t *by = json_object();

		for (unsigned r = 0; r < BI_RESULT_COUNT; r++)
			if (ps->results[r] != 0)
				json_object_set_new(by, bi_result_str((enum bi_result)r,
								      BI_PROTO_1_1),
						    json_integer((json_int_t)ps->results[r]));
		json_object_set_new(peers, ps->name,
				    json_pack("{s:I,s:o}", "requests", (json_int_t)ps->requests,
					      "results", by));
	}
	return json_pack("{s:I,s:I,s:o,s:i,s:o,s:o}", "joins_total", (json_int_t)a->joins_total,
			 "joins_refused", (json_int_t)a->joins_refused, "refused_by_reason",
			 by_reason(NULL, a->refused_by), "seconds", ADM_SERIES, "series", pts,
			 "answers_by_peer", peers);
}

void adm_live_free(struct admin *a)
{
	for (unsigned i = 0; i < ADM_PEERS_MAX; i++) {
		if (a->tlsa[i].lookup != NULL)
			da_lookup_cancel(a->tlsa[i].lookup);
		a->tlsa[i].lookup = NULL;
	}
	/* end the streams still open; evhttp_free() then closes their connections */
	for (unsigned i = 0; i < ADM_STREAMS_MAX; i++) {
		if (a->stream_conns[i] != NULL) {
			evhttp_connection_set_closecb(a->stream_conns[i], NULL, NULL);
			evhttp_send_reply_end(a->streams[i]);
		}
		a->streams[i] = NULL;
		a->stream_conns[i] = NULL;
	}
}
