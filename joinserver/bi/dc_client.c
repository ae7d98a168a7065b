/*
 * dc_client.c - a TS002 Backend Interfaces client: bi_msg over HTTPS (mutual TLS 1.3) with
 * libevent's evhttp client on bufferevent_openssl, HTTP/1.1 keep-alive.
 *
 * Security reasoning:
 *   - The server certificate is checked by OpenSSL against ca_file alone (the private root of
 *     the join server's organisation; SSL_CTX_set_default_verify_paths() is never called, so no
 *     public CA can vouch for a join server), with SSL_VERIFY_PEER, and against the expected
 *     name (X509_VERIFY_PARAM host or IP check: RFC 6125 DNS-ID, no CN fallback because
 *     X509_CHECK_FLAG_NEVER_CHECK_SUBJECT is set). A failure aborts the handshake; the call
 *     fails and says why. Nothing is retried without verification.
 *   - TLS 1.3 only (DESIGN.md: every backend peer speaks mutual TLS 1.3).
 *   - Dirty TLS shutdowns are allowed because HTTP/1.1 framing (Content-Length) already detects
 *     a truncated answer, and many servers close idle keep-alive connections without
 *     close_notify; an answer that is cut short fails to parse instead.
 *   - Answers carry key envelopes: the answer buffer is wiped after parsing, the parsed copy is
 *     the caller's to wipe.
 *   - Answer bodies are bounded (DC_BODY_MAX) and parsed by bi_msg_parse() with explicit
 *     lengths.
 *
 * Connection life: an evhttp_connection whose TLS session failed or closed cannot start a new
 * handshake on the same SSL object, so a connection that failed or closed is marked dead and
 * replaced (a fresh SSL and bufferevent) by the next request that would use it while it carries
 * nothing; the old one is freed from a zero-delay timer, never from inside its own callback.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "backend-auth/da_dns.h"
#include "backend-auth/da_tls.h"
#include "bi/bi_tls.h"
#include "bi/dc_client.h"
#include "common/dj_clock.h"
#include "common/dj_err.h"
#include "common/dj_log.h"

#define DC_HTTPS_PORT 443		/* RFC 9110 §4.2.2 */
#define DC_WATCHDOG_SLACK_MS 2000	/* dc_client_call(): beyond the evhttp timeout */
#define DC_SHOWN_MAX 300		/* bytes of a non-message error body put in the error */

struct dc_conn {
	struct dc_client *c;
	struct evhttp_connection *evcon;
	unsigned in_flight;
	bool dead;
	evutil_socket_t nodelay_fd;	/* the socket TCP_NODELAY was set on, or -1 */
};

struct dc_req {
	LIST_ENTRY(dc_req) link;	/* the client's in-flight list */
	struct dc_client *c;
	struct dc_conn *conn;
	dc_done_cb cb;			/* NULL once abandoned */
	void *arg;
	char *json;			/* parked (DANE: waiting for TLSA): the encoded request */
	size_t json_len;
	struct dc_req *pnext;		/* the client's parked list */
	bool has_http_err;
	enum evhttp_request_error http_err;
	bool raw;			/* dc_client_send_raw(): the status only */
};

struct dc_client {
	struct event_base *base;
	bool own_base;
	SSL_CTX *ctx;
	char *host;			/* for connect() and the name check: no brackets */
	char *host_header;		/* "host:port" as the URL had it */
	char *server_name;		/* the name the certificate must carry */
	bool name_is_ip;
	int port;
	char *path;
	struct timeval timeout;
	unsigned timeout_ms;
	unsigned nconn, next;
	struct dc_conn *conns;
	LIST_HEAD(dc_req_list, dc_req) reqs;
	unsigned in_flight;
	struct evhttp_connection **grave;	/* replaced connections, freed by the reaper */
	unsigned ngrave, capgrave;
	struct event *reaper;
	/* DANE */
	struct da_resolver *resolver;
	char *tlsa_name;
	struct da_tlsa *tlsa;		/* the last secure records (with their data) */
	size_t n_tlsa;
	double tlsa_expires;		/* monotonic seconds */
	char tlsa_err[DC_ERR_MAX];	/* the last lookup's failure, "" if it was secure */
	struct da_lookup *lookup;
	bool lookup_running;
	struct dc_req *parked, *parked_tail;
	struct event *flush_ev;
};

/* parse_url - fill host, port, path, host_header from an https URL */
static int parse_url(struct dc_client *c, const char *url, char *err, size_t errlen)
{
	struct evhttp_uri *u = NULL;
	const char *scheme, *host, *path;
	size_t hl;
	int ret = DJ_EINVAL, port;

	u = evhttp_uri_parse(url);
	if (u == NULL) {
		dj_errbuf(err, errlen, "url %s: not a valid URL", url);
		goto out;
	}
	scheme = evhttp_uri_get_scheme(u);
	if (scheme == NULL || strcasecmp(scheme, "https") != 0) {
		dj_errbuf(err, errlen, "url %s: the scheme must be https", url);
		goto out;
	}
	if (evhttp_uri_get_userinfo(u) != NULL) {
		dj_errbuf(err, errlen, "url %s: user information is not allowed", url);
		goto out;
	}
	host = evhttp_uri_get_host(u);
	if (host == NULL || host[0] == '\0') {
		dj_errbuf(err, errlen, "url %s: no host", url);
		goto out;
	}
	port = evhttp_uri_get_port(u);
	if (port == -1)
		port = DC_HTTPS_PORT;
	if (port <= 0 || port > 65535) {
		dj_errbuf(err, errlen, "url %s: bad port", url);
		goto out;
	}
	path = evhttp_uri_get_path(u);
	if (path == NULL || path[0] == '\0')
		path = "/";

	ret = DJ_ENOMEM;
	hl = strlen(host);
	if (host[0] == '[' && hl >= 2 && host[hl - 1] == ']')
		c->host = strndup(host + 1, hl - 2);
	else
		c->host = strdup(host);
	c->path = strdup(path);
	c->host_header = malloc(hl + 8);
	if (c->host == NULL || c->path == NULL || c->host_header == NULL)
		goto out;
	if (port == DC_HTTPS_PORT)
		snprintf(c->host_header, hl + 8, "%s", host);
	else
		snprintf(c->host_header, hl + 8, "%s:%d", host, port);
	c->port = port;
	ret = DJ_EOK;
out:
	if (u != NULL)
		evhttp_uri_free(u);
	return ret;
}

/* make_ctx - the TLS 1.3 client context: our certificate and key, the private roots only */
static int make_ctx(struct dc_client *c, const struct dc_props *p, char *err, size_t errlen)
{
	const struct bi_tls_ctx_props tp = {
		.server = false, .dane = p->resolver != NULL,
		.cert_file = p->cert_file, .cert_what = "cert",
		.key_file = p->key_file, .key_what = "key",
	};
	SSL_CTX *ctx = NULL;
	int ret;

	ret = bi_tls__ctx_new(&tp, &ctx, err, errlen);
	if (ret != DJ_EOK)
		goto out;
	if (p->resolver != NULL) {
		/* DANE: no roots at all; each connection gets the server's TLSA records */
		if (p->clientid != NULL &&
		    da_tls_clientid_add(ctx, p->clientid_ext != 0 ? p->clientid_ext
								 : DA_CLIENTID_EXT_DEFAULT,
					p->clientid, err, errlen) != DJ_EOK) {
			ret = DJ_EINVAL;
			goto out;
		}
	} else if (SSL_CTX_load_verify_locations(ctx, p->ca_file, NULL) != 1) {
		ret = DJ_ECONFIG;
		dj_errbuf(err, errlen, "ca %s: %s", p->ca_file, dj_openssl_reason());
		goto out;
	}
	/* every request is verified against the full chain (bi_tls__ctx_new: no resumption) */
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	c->ctx = ctx;
	ctx = NULL;
	ret = DJ_EOK;
out:
	SSL_CTX_free(ctx);
	return ret;
}

/* on_close - evhttp saw the connection close: it must be replaced before reuse */
static void on_close(struct evhttp_connection *evcon, void *arg)
{
	struct dc_conn *k = arg;

	(void)evcon;
	k->dead = true;
}

/* reap - free the replaced connections (from a timer, outside of their own callbacks) */
static void reap(evutil_socket_t fd, short what, void *arg)
{
	struct dc_client *c = arg;

	(void)fd;
	(void)what;
	while (c->ngrave > 0)
		evhttp_connection_free(c->grave[--c->ngrave]);
}

/* bury - hand a dead connection to the reaper */
static int bury(struct dc_client *c, struct evhttp_connection *evcon)
{
	struct timeval zero = { 0, 0 };
	struct evhttp_connection **g;

	if (c->ngrave == c->capgrave) {
		g = realloc(c->grave, (c->capgrave * 2 + 4) * sizeof(*g));
		if (g == NULL)
			return DJ_ENOMEM;
		c->grave = g;
		c->capgrave = c->capgrave * 2 + 4;
	}
	c->grave[c->ngrave++] = evcon;
	if (evtimer_add(c->reaper, &zero) != 0)
		return DJ_ENOMEM;	/* still freed by dc_client_free() */
	return DJ_EOK;
}

/* conn_open - a fresh SSL, bufferevent and evhttp_connection for slot \p k */
static int conn_open(struct dc_client *c, struct dc_conn *k)
{
	struct bufferevent *bev = NULL;
	struct evhttp_connection *evcon;
	X509_VERIFY_PARAM *vp;
	SSL *ssl = NULL;
	int ret = DJ_ENOMEM;

	ssl = SSL_new(c->ctx);
	if (ssl == NULL)
		goto out;
	ret = DJ_ECRYPTO;
	vp = SSL_get0_param(ssl);
	X509_VERIFY_PARAM_set_hostflags(vp, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS |
					    X509_CHECK_FLAG_NEVER_CHECK_SUBJECT);
	if (c->resolver != NULL) {
		/* DANE: the records from the last secure lookup; the host for DANE-TA and SNI */
		if (da_tls_client_prepare(ssl, c->server_name, c->tlsa, c->n_tlsa) != DJ_EOK)
			goto out;
	} else if (c->name_is_ip) {
		if (X509_VERIFY_PARAM_set1_ip_asc(vp, c->server_name) != 1)
			goto out;
	} else {
		if (SSL_set1_host(ssl, c->server_name) != 1 ||
		    SSL_set_tlsext_host_name(ssl, c->server_name) != 1)
			goto out;
	}
	ret = DJ_ENOMEM;
	bev = bufferevent_openssl_socket_new(c->base, -1, ssl, BUFFEREVENT_SSL_CONNECTING,
					     BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
	if (bev == NULL)
		goto out;
	ssl = NULL;	/* the bufferevent owns it now */
	bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
	evcon = evhttp_connection_base_bufferevent_new(c->base, NULL, bev, c->host,
						       (unsigned short)c->port);
	if (evcon == NULL)
		goto out;
	bev = NULL;	/* the connection owns it now */
	evhttp_connection_set_timeout_tv(evcon, &c->timeout);
	evhttp_connection_set_retries(evcon, 0);
	evhttp_connection_set_max_body_size(evcon, DC_BODY_MAX);
	evhttp_connection_set_closecb(evcon, on_close, k);
	k->evcon = evcon;
	k->dead = false;
	k->nodelay_fd = -1;
	ret = DJ_EOK;
out:
	if (ret != DJ_EOK)
		ERR_clear_error();
	if (bev != NULL)
		bufferevent_free(bev);
	SSL_free(ssl);
	return ret;
}

/* conn_pick - the next connection in turn that carries nothing, else simply the next one: a
 * request queued behind another on a busy connection would wait for that one's answer (HTTP/1.1
 * sends one at a time) while another connection sits idle */
static struct dc_conn *conn_pick(struct dc_client *c)
{
	unsigned i, n;

	for (i = 0; i < c->nconn; i++) {
		n = (c->next + i) % c->nconn;
		if (c->conns[n].in_flight == 0)
			break;
	}
	if (i == c->nconn)
		n = c->next;
	c->next = (n + 1) % c->nconn;
	return &c->conns[n];
}

/* conn_get - the connection for the next request; replaces a dead idle one */
static int conn_get(struct dc_client *c, struct dc_conn **out)
{
	struct dc_conn *k = conn_pick(c);
	int ret;

	if (k->evcon != NULL && k->dead && k->in_flight == 0) {
		ret = bury(c, k->evcon);
		k->evcon = NULL;
		if (ret != DJ_EOK)
			return ret;
	}
	if (k->evcon == NULL) {
		ret = conn_open(c, k);
		if (ret != DJ_EOK)
			return ret;
	}
	*out = k;
	return DJ_EOK;
}

/* describe_failure - why a request got no HTTP answer: TLS first, then the HTTP layer */
static void describe_failure(struct dc_req *q, int saved_errno, char *err, size_t errlen)
{
	struct dc_client *c = q->c;
	struct bufferevent *bev = NULL;
	unsigned long e = 0, first = 0;
	SSL *ssl = NULL;
	long vr = X509_V_OK;
	const char *r;

	if (q->conn->evcon != NULL)
		bev = evhttp_connection_get_bufferevent(q->conn->evcon);
	if (bev != NULL)
		ssl = bufferevent_openssl_get_ssl(bev);
	if (ssl != NULL)
		vr = SSL_get_verify_result(ssl);
	while (bev != NULL && (e = bufferevent_get_openssl_error(bev)) != 0)
		if (first == 0)
			first = e;
	ERR_clear_error();
	if (vr != X509_V_OK && c->resolver != NULL) {
		dj_errbuf(err, errlen, "TLS: certificate verify failed: %s (server %s, DANE TLSA %s)",
		       X509_verify_cert_error_string(vr), c->host_header, c->tlsa_name);
	} else if (vr != X509_V_OK) {
		dj_errbuf(err, errlen, "TLS: certificate verify failed: %s (server %s, expected name "
		       "%s)", X509_verify_cert_error_string(vr), c->host_header, c->server_name);
	} else if (first != 0 && (r = ERR_reason_error_string(first)) != NULL) {
		dj_errbuf(err, errlen, "TLS: %s (server %s)", r, c->host_header);
	} else if (q->has_http_err && q->http_err == EVREQ_HTTP_TIMEOUT) {
		dj_errbuf(err, errlen, "timeout: no answer from %s within %u ms", c->host_header,
		       c->timeout_ms);
	} else if (q->has_http_err && q->http_err == EVREQ_HTTP_DATA_TOO_LONG) {
		dj_errbuf(err, errlen, "answer from %s larger than %u bytes", c->host_header,
		       DC_BODY_MAX);
	} else if (q->has_http_err && q->http_err == EVREQ_HTTP_INVALID_HEADER) {
		dj_errbuf(err, errlen, "invalid HTTP answer from %s", c->host_header);
	} else if (saved_errno == ECONNREFUSED || saved_errno == ETIMEDOUT ||
		   saved_errno == EHOSTUNREACH || saved_errno == ENETUNREACH ||
		   saved_errno == ECONNRESET) {
		dj_errbuf(err, errlen, "cannot talk to %s: %s", c->host_header, strerror(saved_errno));
	} else {
		dj_errbuf(err, errlen, "connection to %s failed or closed before an answer",
		       c->host_header);
	}
}

/* req_finish - unlink \p q, report to its callback (unless abandoned), free it */
static void req_finish(struct dc_req *q, int rc, const struct bi_msg *ans, int have_ans,
		       const char *err)
{
	struct dc_client *c = q->c;

	LIST_REMOVE(q, link);
	c->in_flight--;
	if (q->conn != NULL)
		q->conn->in_flight--;
	if (q->cb != NULL)
		q->cb(rc, ans, have_ans, rc == DJ_EOK ? "" : err, q->arg);
	if (q->json != NULL)
		OPENSSL_clear_free(q->json, q->json_len);
	free(q);
}

/* on_error - evhttp's reason for a failed request, kept for on_done */
static void on_error(enum evhttp_request_error e, void *arg)
{
	struct dc_req *q = arg;

	q->has_http_err = true;
	q->http_err = e;
}

/* on_done - the request completed (r != NULL with a status) or failed */
static void on_done(struct evhttp_request *r, void *arg)
{
	struct dc_req *q = arg;
	struct bi_msg ans;
	struct evbuffer *in;
	char err[DC_ERR_MAX] = "", perr[BI_ERR_MAX] = "";
	unsigned char *body = NULL;
	size_t len = 0;
	int saved_errno = errno, code, have = 0, rc;

	memset(&ans, 0, sizeof(ans));
	code = r != NULL ? evhttp_request_get_response_code(r) : 0;
	if (code == 0) {
		q->conn->dead = true;
		describe_failure(q, saved_errno, err, sizeof(err));
		rc = DJ_EIO;
		goto out;
	}
	if (q->raw) {
		rc = code == HTTP_OK ? DJ_EOK : DJ_EIO;
		if (rc != DJ_EOK)
			dj_errbuf(err, sizeof(err), "HTTP %d from %s", code, q->c->host_header);
		goto out;
	}
	in = evhttp_request_get_input_buffer(r);
	len = in != NULL ? evbuffer_get_length(in) : 0;
	if (len > 0) {
		body = evbuffer_pullup(in, -1);
		if (body == NULL) {
			rc = DJ_ENOMEM;
			dj_errbuf(err, sizeof(err), "out of memory reading the answer");
			goto out;
		}
		rc = bi_msg_parse((const char *)body, len, &ans, perr, sizeof(perr));
		if (rc == DJ_EOK)
			have = 1;
		else
			bi_msg_wipe(&ans);
	} else {
		/* HTTP 200 with no body: TS002 asynchronous mode, the answer comes as a POST of its
		 * own; DJ_EOK with no answer (have = 0). Any other status with no body fails below. */
		rc = DJ_EOK;
		snprintf(perr, sizeof(perr), "empty body");
	}
	if (code != HTTP_OK) {
		const char *reason = evhttp_request_get_response_code_line(r);
		char shown[DC_SHOWN_MAX + 1];
		size_t i, n = len < DC_SHOWN_MAX ? len : DC_SHOWN_MAX;

		/* not a message: show what the server said (printable bytes only) */
		for (i = 0; i < n; i++)
			shown[i] = body[i] >= 0x20 && body[i] < 0x7f ? (char)body[i] : '?';
		shown[n] = '\0';
		dj_errbuf(err, sizeof(err), "HTTP %d %s from %s%s%s", code,
		       reason != NULL ? reason : "", q->c->host_header,
		       have ? "" : ": ", have ? "" : n > 0 ? shown : perr);
		rc = DJ_EIO;
	} else if (rc == DJ_EMALFORMED) {
		dj_errbuf(err, sizeof(err), "answer from %s is not a valid message: %s",
		       q->c->host_header, perr);
	} else if (rc != DJ_EOK) {
		dj_errbuf(err, sizeof(err), "answer from %s: %s", q->c->host_header,
		       dj_strerror(rc));
	}
out:
	if (body != NULL)
		OPENSSL_cleanse(body, len);
	req_finish(q, rc, &ans, have, err);
	bi_msg_wipe(&ans);
}

/* req_start - put \p q (already on c->reqs) on a connection with the request \p json */
static int req_start(struct dc_client *c, struct dc_req *q, const char *json, size_t len)
{
	evutil_socket_t fd;
	struct evhttp_request *r = NULL;
	struct bufferevent *bev;
	struct evkeyvalq *h;
	struct dc_conn *k;
	SSL *ssl;
	char clen[24];
	int ret;

	ret = conn_get(c, &k);
	if (ret != DJ_EOK)
		return ret;
	r = evhttp_request_new(on_done, q);
	if (r == NULL)
		return DJ_ENOMEM;
	evhttp_request_set_error_cb(r, on_error);
	h = evhttp_request_get_output_headers(r);
	snprintf(clen, sizeof(clen), "%zu", len);
	if (evhttp_add_header(h, "Host", c->host_header) != 0 ||
	    evhttp_add_header(h, "Content-Type", BI_TLS_JSON_TYPE) != 0 ||
	    evhttp_add_header(h, "Accept", BI_TLS_JSON_TYPE) != 0 ||
	    evhttp_add_header(h, "Content-Length", clen) != 0 ||
	    evbuffer_add(evhttp_request_get_output_buffer(r), json, len) != 0) {
		evhttp_request_free(r);
		return DJ_ENOMEM;
	}
	/* on failure evhttp_make_request() frees r itself */
	if (evhttp_make_request(k->evcon, r, EVHTTP_REQ_POST, c->path) != 0) {
		k->dead = true;
		return DJ_EIO;
	}
	bi_tls__one_record(k->evcon);
	/* No Nagle (the socket exists once the request is made): should two records still leave
	 * back to back, they must not wait for the server's delayed ACK. Once per connection. */
	bev = evhttp_connection_get_bufferevent(k->evcon);
	fd = bufferevent_getfd(bev);
	if (fd >= 0 && fd != k->nodelay_fd && bi_tls__nodelay(fd) == 0)
		k->nodelay_fd = fd;	/* evhttp may connect again: a new socket is set again */
	/* an established connection writes the request in this loop pass, not the next one */
	ssl = bufferevent_openssl_get_ssl(bev);
	if (fd >= 0 && ssl != NULL && SSL_is_init_finished(ssl))
		bi_tls__write_now(k->evcon);
	q->conn = k;
	k->in_flight++;
	return DJ_EOK;
}

/* tlsa_fresh - DANE: records from a secure lookup that have not expired */
static bool tlsa_fresh(const struct dc_client *c)
{
	return c->n_tlsa > 0 && dj_clock_mono_s() < c->tlsa_expires;
}

/* flush_parked - DANE: the lookup ended; send or fail the requests that waited for it */
static void flush_parked(evutil_socket_t fd, short what, void *arg)
{
	struct dc_client *c = arg;
	struct dc_req *q, *next;
	char err[DC_ERR_MAX];
	int rc;

	(void)fd;
	(void)what;
	q = c->parked;
	c->parked = c->parked_tail = NULL;
	for (; q != NULL; q = next) {
		next = q->pnext;
		q->pnext = NULL;
		if (c->tlsa_err[0] != '\0') {
			req_finish(q, DJ_EIO, NULL, 0, c->tlsa_err);
			continue;
		}
		rc = req_start(c, q, q->json, q->json_len);
		OPENSSL_clear_free(q->json, q->json_len);
		q->json = NULL;
		if (rc != DJ_EOK) {
			dj_errbuf(err, sizeof(err), "cannot send the request to %s: %s",
				  c->host_header, dj_strerror(rc));
			req_finish(q, rc == DJ_ENOMEM ? DJ_ENOMEM : DJ_EIO, NULL, 0, err);
		}
	}
}

/* on_tlsa - DANE: keep the server's records (secure) or the reason (anything else) */
static void on_tlsa(const struct da_tlsa_set *set, void *arg)
{
	struct dc_client *c = arg;
	struct da_tlsa *rr = NULL;
	uint8_t *p;
	size_t i, total = 0;

	c->lookup = NULL;
	c->lookup_running = false;
	if (set->status == DA_SECURE) {
		for (i = 0; i < set->n; i++)
			total += set->rr[i].len;
		rr = malloc(set->n * sizeof(*rr) + total);
		if (rr == NULL) {
			dj_errbuf(c->tlsa_err, sizeof(c->tlsa_err), "out of memory");
		} else {
			p = (uint8_t *)(rr + set->n);
			for (i = 0; i < set->n; i++) {
				rr[i] = set->rr[i];
				memcpy(p, set->rr[i].data, set->rr[i].len);
				rr[i].data = p;
				p += set->rr[i].len;
			}
			free(c->tlsa);
			c->tlsa = rr;
			c->n_tlsa = set->n;
			c->tlsa_expires = dj_clock_mono_s() + (set->ttl > 0 ? set->ttl : 1);
			c->tlsa_err[0] = '\0';
		}
	} else {
		char why[DC_ERR_MAX];

		bi_tls__tlsa_why(set, c->tlsa_name, why, sizeof(why));
		dj_errbuf(c->tlsa_err, sizeof(c->tlsa_err), "DANE: %s", why);
	}
	/* from the loop, never from inside dc_client_send() (a cache hit answers at once) */
	event_active(c->flush_ev, EV_TIMEOUT, 0);
}

int dc_client_send(struct dc_client *c, const struct bi_msg *req, dc_done_cb cb, void *arg)
{
	struct dc_req *q = NULL;
	char *json = NULL;
	size_t len = 0;
	int ret;

	ret = bi_msg_encode(req, &json, &len);
	if (ret != DJ_EOK)
		goto out;
	ret = DJ_ENOMEM;
	q = calloc(1, sizeof(*q));
	if (q == NULL)
		goto out;
	q->c = c;
	q->cb = cb;
	q->arg = arg;
	if (c->resolver != NULL && !tlsa_fresh(c)) {
		/* DANE: wait for the server's records */
		if (!c->lookup_running) {
			c->lookup_running = true;
			ret = da_tlsa_lookup(c->resolver, c->tlsa_name, on_tlsa, c, &c->lookup);
			if (ret != DJ_EOK) {
				c->lookup_running = false;
				goto out;
			}
		}
		q->json = json;
		q->json_len = len;
		json = NULL;
		if (c->parked_tail != NULL)
			c->parked_tail->pnext = q;
		else
			c->parked = q;
		c->parked_tail = q;
	} else {
		ret = req_start(c, q, json, len);
		if (ret != DJ_EOK)
			goto out;
	}
	LIST_INSERT_HEAD(&c->reqs, q, link);
	c->in_flight++;
	q = NULL;
	ret = DJ_EOK;
out:
	free(q);
	if (json != NULL)
		OPENSSL_clear_free(json, len);
	return ret;
}

int dc_client_send_raw(struct dc_client *c, const char *body, size_t len, dc_done_cb cb,
		       void *arg)
{
	struct dc_req *q;
	int ret;

	if (c->resolver != NULL)
		return DJ_EINVAL;
	q = calloc(1, sizeof(*q));
	if (q == NULL)
		return DJ_ENOMEM;
	q->c = c;
	q->cb = cb;
	q->arg = arg;
	q->raw = true;
	ret = req_start(c, q, body, len);
	if (ret != DJ_EOK) {
		free(q);
		return ret;
	}
	LIST_INSERT_HEAD(&c->reqs, q, link);
	c->in_flight++;
	return DJ_EOK;
}

struct sync_call {
	bool done;
	int rc;
	int have;
	struct bi_msg *ans;
	char err[DC_ERR_MAX];
};

/* sync_done - completion of dc_client_call()'s request: copy the answer out */
static void sync_done(int rc, const struct bi_msg *ans, int have_ans, const char *err, void *arg)
{
	struct sync_call *s = arg;

	s->done = true;
	s->rc = rc;
	s->have = have_ans;
	if (have_ans)
		*s->ans = *ans;
	snprintf(s->err, sizeof(s->err), "%s", err);
}

/* sync_watchdog - dc_client_call() waited too long (evhttp's own timeout did not fire) */
static void sync_watchdog(evutil_socket_t fd, short what, void *arg)
{
	struct sync_call *s = arg;

	(void)fd;
	(void)what;
	if (!s->done) {
		s->done = true;
		s->rc = DJ_EIO;
		snprintf(s->err, sizeof(s->err), "timeout: no answer");
	}
}

int dc_client_call(struct dc_client *c, const struct bi_msg *req, struct bi_msg *ans,
		   int *have_ans, char *err, size_t errlen)
{
	struct sync_call s = { .done = false, .rc = DJ_ERROR };
	struct bi_msg tmp;
	struct event *wd = NULL;
	struct dc_req *q;
	struct timeval tv;
	unsigned ms = c->timeout_ms + DC_WATCHDOG_SLACK_MS;
	int ret;

	memset(&tmp, 0, sizeof(tmp));
	s.ans = &tmp;
	wd = evtimer_new(c->base, sync_watchdog, &s);
	if (wd == NULL) {
		ret = DJ_ENOMEM;
		dj_errbuf(err, errlen, "out of memory");
		goto out;
	}
	tv = dj_clock_tv_ms(ms);
	ret = dc_client_send(c, req, sync_done, &s);
	if (ret != DJ_EOK) {
		dj_errbuf(err, errlen, "cannot send the request: %s", dj_strerror(ret));
		goto out;
	}
	if (evtimer_add(wd, &tv) != 0) {
		ret = DJ_ENOMEM;
		dj_errbuf(err, errlen, "cannot arm the timeout");
		goto out;
	}
	while (!s.done) {
		if (event_base_loop(c->base, EVLOOP_ONCE) < 0) {
			ret = DJ_ERROR;
			dj_errbuf(err, errlen, "event loop failed");
			goto out;
		}
	}
	ret = s.rc;
	if (ret != DJ_EOK)
		dj_errbuf(err, errlen, "%s", s.err);
	if (s.have) {
		*ans = tmp;
		memset(&tmp, 0, sizeof(tmp));
	}
	if (have_ans != NULL)
		*have_ans = s.have;
out:
	/* a request still in flight must not report into this stack frame */
	LIST_FOREACH(q, &c->reqs, link) {
		if (q->arg == &s) {
			q->cb = NULL;
			if (q->conn != NULL)
				q->conn->dead = true;
		}
	}
	if (wd != NULL)
		event_free(wd);
	bi_msg_wipe(&tmp);
	return ret;
}

struct event_base *dc_client_base(struct dc_client *c)
{
	return c->base;
}

unsigned dc_client_in_flight(const struct dc_client *c)
{
	return c->in_flight;
}

/*
 * dc_base_new - the client's own event_base. Precise timers: without the flag libevent 2.1 reads
 * CLOCK_MONOTONIC_COARSE, whose step is the kernel tick (4 ms at HZ=250), so a timer fires up
 * to a tick late (a benchmark's open-loop sends went out 0-4 ms after they were due). With the
 * epoll changelist, a loop pass's enable and disable of the same event cost one epoll_ctl, not
 * two (the base holds only this client's sockets, none of them dup()ed).
 */
struct event_base *dc_base_new(void)
{
	struct event_config *cfg = event_config_new();
	struct event_base *base;

	if (cfg == NULL)
		return NULL;
	event_config_set_flag(cfg, EVENT_BASE_FLAG_PRECISE_TIMER |
			      EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
	base = event_base_new_with_config(cfg);
	event_config_free(cfg);
	return base;
}

/*
 * dc_base_free - one pass of the loop, then free it. A bufferevent freed while one of its
 * deferred callbacks is queued (BEV_OPT_DEFER_CALLBACKS) stays alive until that callback has
 * run: the callback holds a reference. event_base_free() cancels queued callbacks without
 * dropping it, so a connection closed in the pass that ended the loop (a server draining, say)
 * leaked its bufferevent, SSL and buffers. The pass runs those callbacks (their user callbacks
 * are already cleared) and the finalizers they queue run in event_base_free().
 */
void dc_base_free(struct event_base *base)
{
	if (base == NULL)
		return;
	event_base_loop(base, EVLOOP_NONBLOCK);
	event_base_free(base);
}

int dc_client_new(const struct dc_props *p, struct dc_client **out, char *err, size_t errlen)
{
	struct dc_client *c = NULL;
	unsigned char ipbuf[sizeof(struct in6_addr)];
	int ret = DJ_EINVAL;

	if (p == NULL || p->url == NULL || p->cert_file == NULL || p->key_file == NULL ||
	    (p->ca_file == NULL && p->resolver == NULL)) {
		dj_errbuf(err, errlen, "url, cert, key and (PKIX) ca or (DANE) a resolver are all "
				       "required");
		goto out;
	}
	if (p->resolver != NULL && p->base == NULL) {
		dj_errbuf(err, errlen, "DANE: the resolver's event base is required");
		goto out;
	}
	if (p->connections > DC_CONNECTIONS_MAX) {
		dj_errbuf(err, errlen, "at most %u connections", DC_CONNECTIONS_MAX);
		goto out;
	}
	ret = DJ_ENOMEM;
	c = calloc(1, sizeof(*c));
	if (c == NULL)
		goto out;
	LIST_INIT(&c->reqs);
	c->nconn = p->connections != 0 ? p->connections : 1;
	c->timeout_ms = p->timeout_ms != 0 ? p->timeout_ms : DC_TIMEOUT_MS_DEFAULT;
	c->timeout = dj_clock_tv_ms(c->timeout_ms);
	ret = parse_url(c, p->url, err, errlen);
	if (ret != DJ_EOK)
		goto out;
	ret = DJ_ENOMEM;
	c->server_name = strdup(p->server_name != NULL ? p->server_name : c->host);
	if (c->server_name == NULL)
		goto out;
	c->name_is_ip = inet_pton(AF_INET, c->server_name, ipbuf) == 1 ||
			inet_pton(AF_INET6, c->server_name, ipbuf) == 1;
	if (p->resolver != NULL) {
		char name[DA_NAME_MAX + 16], norm[DA_NAME_MAX], why[DA_WHY_MAX];

		ret = DJ_EINVAL;
		if (c->name_is_ip && p->tlsa_name == NULL) {
			dj_errbuf(err, errlen, "DANE needs a server host name, not the address %s",
				  c->server_name);
			goto out;
		}
		if (p->tlsa_name != NULL)
			snprintf(name, sizeof(name), "%s", p->tlsa_name);
		else
			snprintf(name, sizeof(name), "_%d._tcp.%s", c->port, c->server_name);
		if (da_name_normalize(name, norm, sizeof(norm), why, sizeof(why)) != DJ_EOK) {
			dj_errbuf(err, errlen, "DANE: TLSA name %s: %s", name, why);
			goto out;
		}
		ret = DJ_ENOMEM;
		c->tlsa_name = strdup(norm);
		if (c->tlsa_name == NULL)
			goto out;
		c->resolver = p->resolver;
	}
	c->conns = calloc(c->nconn, sizeof(*c->conns));
	if (c->conns == NULL)
		goto out;
	for (unsigned i = 0; i < c->nconn; i++) {
		c->conns[i].c = c;
		c->conns[i].nodelay_fd = -1;
	}
	ret = make_ctx(c, p, err, errlen);
	if (ret != DJ_EOK)
		goto out;
	if (p->base != NULL) {
		c->base = p->base;
	} else {
		ret = DJ_ENOMEM;
		c->base = dc_base_new();
		if (c->base == NULL)
			goto out;
		c->own_base = true;
	}
	ret = DJ_ENOMEM;
	c->reaper = evtimer_new(c->base, reap, c);
	c->flush_ev = event_new(c->base, -1, 0, flush_parked, c);
	if (c->reaper == NULL || c->flush_ev == NULL)
		goto out;
	*out = c;
	c = NULL;
	ret = DJ_EOK;
out:
	if (ret == DJ_ENOMEM)
		dj_errbuf(err, errlen, "out of memory");
	dc_client_free(c);
	return ret;
}

void dc_client_free(struct dc_client *c)
{
	unsigned i;

	if (c == NULL)
		return;
	da_lookup_cancel(c->lookup);
	c->lookup = NULL;
	c->parked = c->parked_tail = NULL; /* they are on c->reqs too */
	while (!LIST_EMPTY(&c->reqs))
		req_finish(LIST_FIRST(&c->reqs), DJ_EIO, NULL, 0, "cancelled");
	/* evhttp_connection_free() frees queued requests without calling their callbacks */
	for (i = 0; c->conns != NULL && i < c->nconn; i++)
		if (c->conns[i].evcon != NULL)
			evhttp_connection_free(c->conns[i].evcon);
	if (c->reaper != NULL)
		event_free(c->reaper);
	if (c->flush_ev != NULL)
		event_free(c->flush_ev);
	free(c->tlsa);
	free(c->tlsa_name);
	reap(-1, 0, c);
	free(c->grave);
	if (c->own_base)
		dc_base_free(c->base);
	SSL_CTX_free(c->ctx);
	free(c->conns);
	free(c->host);
	free(c->host_header);
	free(c->server_name);
	free(c->path);
	free(c);
}
