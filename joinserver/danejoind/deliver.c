/*
 * deliver.c - where danejoind's answers leave: in the HTTP response, or POSTed to an async peer.
 *
 * Asynchronous mode (TS002 §8), for a peer with async_url (or async_discover): once a request is
 * parsed and the peer known, it gets HTTP 200 with an empty body at once (svc__accept_async()),
 * and the answer (UnknownSender included) is POSTed to async_url through the peer's dc_client,
 * over mutual TLS with our [listen] certificate and the peer's server certificate checked
 * against client_ca_file and the URL's host (or both sides by DANE). A POST that fails is
 * retried ASYNC_TRIES - 1 times after async_backoff_ms, then logged as an error and dropped: the
 * state change (a join) has already happened, and the network server times out and asks again,
 * which TS002 expects of it. A request that fails to parse but has a SenderID is answered the
 * async way too (MalformedRequest: ChirpStack in async mode never reads the response body);
 * a body that is no request, and rate-limited requests, are answered in the response: they
 * cannot be tied to an answer, or were not accepted for processing.
 *
 * The answer waits in its request (struct svc_req) with its envelopes, and is wiped when
 * delivered or dropped. Nothing is logged that holds a key: one line per answer with peer,
 * message type, DevEUI, result and latency.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "common/dj_clock.h"
#include "common/dj_err.h"
#include "common/dj_hex.h"
#include "common/dj_log.h"
#include "ev_join.h"
#include "svc_internal.h"
#include "admin.h"

#define ASYNC_TRIES 3			/* POSTs of one async answer before it is dropped */
#define MS_PER_S 1000
#define US_PER_MS 1000
#define NETID_NAME_MAX (DA_NAME_MAX + 32)	/* a NetID's NAPTR owner name */
#define URL_MAX 128			/* "https://[address]:port/" */

/* async_backoff_ms - wait before POST 2, 3, ... of an async answer */
static const unsigned async_backoff_ms[ASYNC_TRIES - 1] = { 100, 400 };

void svc__req_free(struct svc_req *r)
{
	struct svc *s;

	if (r == NULL)
		return;
	s = r->s;
	if (r->prev != NULL)
		r->prev->next = r->next;
	else if (s->deliveries == r)
		s->deliveries = r->next;
	if (r->next != NULL)
		r->next->prev = r->prev;
	if (r->async)
		atomic_fetch_sub(&s->sh->async_pending, 1);
	if (r->retry_ev != NULL)
		event_free(r->retry_ev);
	js_join_out_wipe(&r->jr.out);
	ev_list_free(r->ev);
	bi_msg_wipe(&r->msg);
	bi_msg_wipe(&r->ans);
	svc__req_put(r);
}

static void delivery_post(struct svc_req *r);

/* delivery_failed - one POST failed: arm the next try, or drop the answer after the last */
static void delivery_failed(struct svc_req *r, const char *why)
{
	unsigned ms = r->tries <= DJ_ARRAY_LEN(async_backoff_ms) ? async_backoff_ms[r->tries - 1]
								 : 0;
	struct timeval tv = { ms / MS_PER_S, (ms % MS_PER_S) * US_PER_MS };

	dj_warn("async peer=%s type=%s transaction=%u: POST %u of %u failed: %s", r->pe->name,
		bi_msg_type_str(r->ans.type), r->ans.transaction_id, r->tries, ASYNC_TRIES, why);
	if (r->s->closing || r->tries >= ASYNC_TRIES || evtimer_add(r->retry_ev, &tv) != 0) {
		/* the state change stands; the network server times out and asks again */
		dj_err("async peer=%s type=%s transaction=%u: answer dropped after %u POSTs%s",
		       r->pe->name, bi_msg_type_str(r->ans.type), r->ans.transaction_id, r->tries,
		       r->s->closing ? " (shutting down)" : "");
		svc__req_free(r);
	}
}

/* delivery_done - dc_client completion of one POST: delivered, or failed */
static void delivery_done(int rc, const struct bi_msg *reply, int have_reply, const char *err,
			  void *arg)
{
	struct svc_req *r = arg;

	(void)reply;
	(void)have_reply;
	/* DJ_EOK includes an empty HTTP 200 (the usual acknowledgement); DJ_EMALFORMED is an HTTP
	 * 200 whose body is no message: the receiver of an async answer
	 * acknowledges it with an empty 200, so that is a delivery too */
	if (rc == DJ_EOK || rc == DJ_EMALFORMED) {
		dj_info("async peer=%s type=%s transaction=%u: delivered, HTTP %d (POST %u)",
			r->pe->name, bi_msg_type_str(r->ans.type), r->ans.transaction_id, HTTP_OK,
			r->tries);
		svc__req_free(r);
		return;
	}
	delivery_failed(r, err);
}

/* delivery_retry - retry_ev: the next POST */
static void delivery_retry(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	delivery_post(arg);
}

/* on_ns_found - async_discover: the NetID's NS (first SRV target); post what waited for it */
static void on_ns_found(const struct da_discovery *dd, void *arg)
{
	struct peer *pe = arg;
	struct svc_req *r, *next;
	char url[URL_MAX], why[DC_ERR_MAX] = "";
	struct js_peer_config pc;
	int ret = DJ_EIO;

	pe->disc = NULL;
	pe->disc_running = false;
	if (dd->status == DA_SECURE && dd->n > 0 && dd->srv[0].n_addr > 0) {
		snprintf(url, sizeof(url),
			 strchr(dd->srv[0].addr[0], ':') != NULL ? "https://[%s]:%u/" : "https://%s:%u/",
			 dd->srv[0].addr[0], dd->srv[0].port);
		pc = *pe->cfg;
		pc.async_url = url;
		pc.async_server_name = (char *)dd->srv[0].host;
		ret = svc__async_client(&pe->s->peers->cfg, &pc, pe->s->base, pe->s->resolver,
					&pe->async, why, sizeof(why));
		if (ret == DJ_EOK)
			dj_info("async peer=%s: %s is %s (%s)", pe->name, dd->name, url,
				dd->srv[0].host);
	} else {
		snprintf(why, sizeof(why), "discovery of %s: %s%s%s", dd->name,
			 da_status_str(dd->status), dd->why != NULL ? ": " : "",
			 dd->why != NULL ? dd->why : "");
	}
	r = pe->waiting;
	pe->waiting = NULL;
	for (; r != NULL; r = next) {
		next = r->wnext;
		r->wnext = NULL;
		if (ret == DJ_EOK) {
			r->tries--; /* the lookup was not a POST */
			delivery_post(r);
		} else {
			delivery_failed(r, why);
		}
	}
}

/* discover_ns - async_discover: park \p r and find the NS of the answer's NetID */
static void discover_ns(struct svc_req *r)
{
	struct peer *pe = r->pe;
	const char *suffix = r->s->peers->cfg.dane_discovery_suffix;
	char name[NETID_NAME_MAX];
	uint8_t nid[LW_NETID_LEN];

	r->wnext = pe->waiting;
	pe->waiting = r;
	if (pe->disc_running)
		return;
	if (r->s->resolver == NULL ||
	    dj_hex_parse(r->ans.receiver_id, nid, LW_NETID_LEN) != DJ_EOK ||
	    da_netid_name((uint32_t)dj_be_get(nid, LW_NETID_LEN),
			  suffix != NULL ? suffix : DISCOVERY_SUFFIX_DEFAULT, name,
			  sizeof(name)) != DJ_EOK) {
		pe->waiting = r->wnext;
		r->wnext = NULL;
		r->tries = ASYNC_TRIES;
		delivery_failed(r, "no NetID to discover the network server by");
		return;
	}
	pe->s = r->s;
	pe->disc_running = true;
	if (da_discover(r->s->resolver, name, "LWNS", on_ns_found, pe, &pe->disc) != DJ_EOK) {
		pe->disc_running = false;
		pe->waiting = r->wnext;
		r->wnext = NULL;
		delivery_failed(r, "cannot start the discovery");
	}
}

/* delivery_post - start one POST of \p r's answer; a failure to start counts as a failed POST */
static void delivery_post(struct svc_req *r)
{
	int ret;

	r->tries++;
	if (r->pe->async == NULL) {
		discover_ns(r);
		return;
	}
	ret = dc_client_send(r->pe->async, &r->ans, delivery_done, r);
	if (ret == DJ_EOK)
		return;		/* delivery_done() runs later, from the loop */
	if (ret == DJ_EINVAL)
		r->tries = ASYNC_TRIES;	/* cannot be encoded: no retry will do better */
	delivery_failed(r, dj_strerror(ret));
}

/* deliver - \p r's answer goes to its peer's async_url; from here on \p r frees itself (and
 * counts down async_pending) once delivered or dropped */
static void deliver(struct svc_req *r)
{
	struct svc *s = r->s;

	r->retry_ev = evtimer_new(s->base, delivery_retry, r);
	if (r->retry_ev == NULL) {
		dj_err("async peer=%s type=%s transaction=%u: answer dropped: %s", r->pe->name,
		       bi_msg_type_str(r->ans.type), r->ans.transaction_id, dj_strerror(DJ_ENOMEM));
		svc__req_free(r);
		return;
	}
	r->next = s->deliveries;
	if (s->deliveries != NULL)
		s->deliveries->prev = r;
	s->deliveries = r;
	delivery_post(r);
}

/* deliver_here - on loop 0: the answer of a request of any loop goes out from here, where the
 * async peers' clients and discovery live */
static void deliver_here(void *arg)
{
	struct svc_req *r = arg;

	r->s = r->s->sh->loops[0];
	deliver(r);
}

enum bi_msg_type svc__answer_type(enum bi_msg_type t)
{
	switch (t) {
	case BI_JOIN_REQ: return BI_JOIN_ANS;
	case BI_REJOIN_REQ: return BI_REJOIN_ANS;
	case BI_APPSKEY_REQ: return BI_APPSKEY_ANS;
	default: return BI_HOMENS_ANS;
	}
}

void svc__accept_async(struct svc_req *r)
{
	if (r->req == NULL || r->pe == NULL || !svc__peer_async(r->pe))
		return;
	srv_reply(r->req, HTTP_OK, "", 0);
	r->req = NULL;
	r->async = true;
	atomic_fetch_add(&r->s->sh->async_pending, 1);
}

void svc__reply(struct svc_req *r, int status, const char *body, size_t len)
{
	srv_reply(r->req, status, body, len);
	r->req = NULL;
	svc__req_free(r);
}

void svc__answer(struct svc_req *r)
{
	struct svc *s = r->s;
	struct bi_msg *ans = &r->ans;
	char *json = NULL, eui[2 * LW_EUI_LEN + 1] = "-";
	size_t len = 0;
	double lat = srv_now(s->srv) - r->started;
	int ret;

	if (r->req != NULL) {
		ret = bi_msg_encode(ans, &json, &len);
		if (ret != DJ_EOK) {
			dj_err("encoding a %s failed: %s", bi_msg_type_str(ans->type),
			       dj_strerror(ret));
			s->m.http_errors++;
			REPLY_LIT(r, HTTP_SERVER_ERROR, "{}");
			return;
		}
	}
	/* log first: without a peer the name is the identity, which srv_reply() frees */
	if (ans->has_dev_eui)
		dj_hex_format(ans->dev_eui, LW_EUI_LEN, eui);
	dj_info("peer=%s type=%s dev_eui=%s transaction=%u result=%s latency_ms=%.3f%s",
		r->pe != NULL ? r->pe->name : srv_req_peer(r->req), bi_msg_type_str(ans->type),
		eui, ans->transaction_id, bi_result_str(ans->result, BI_PROTO_1_1), lat * 1e3,
		r->req == NULL ? " async" : "");
	svc__metrics_answer(s, ans->result, lat);
	svc__note_answer(s, r->pe != NULL ? r->pe->name : srv_req_peer(r->req), ans,
			 r->req != NULL ? srv_req_peer_cert(r->req) : NULL);
	if (r->req == NULL) {
		/* accepted by svc__accept_async(): POSTed, from loop 0 */
		if (svc__to_loop0(s, deliver_here, r) != DJ_EOK) {
			dj_err("async peer=%s type=%s transaction=%u: answer dropped: %s",
			       r->pe->name, bi_msg_type_str(ans->type), ans->transaction_id,
			       dj_strerror(DJ_ENOMEM));
			svc__req_free(r);
		}
		return;
	}
	svc__reply(r, HTTP_OK, json, len);
	/* the encoded answer carries wrapped keys, or plain ones for a plain_keys peer */
	OPENSSL_clear_free(json, len);
}

void svc__refuse(struct svc_req *r, enum bi_result result, const char *desc)
{
	const struct bi_msg *m = &r->msg;
	struct bi_msg *ans = &r->ans;

	bi_msg_wipe(ans);
	bi_msg_answer_init(m, svc__answer_type(m->type), ans);
	ans->result = result;
	/* a Description longer than the field is cut, on purpose */
	snprintf(ans->description, sizeof(ans->description), "%.*s",
		 (int)(sizeof(ans->description) - 1), desc);
	if (m->has_dev_eui) {
		ans->has_dev_eui = true;
		memcpy(ans->dev_eui, m->dev_eui, LW_EUI_LEN);
	}
	svc__answer(r);
}
