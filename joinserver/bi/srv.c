/*
 * srv.c - the HTTPS front of danejoind: evhttp over bufferevent_openssl, TLS 1.3 only, client
 * certificates required, plus a plain-HTTP metrics listener.
 *
 * SECURITY
 *	Every client is authenticated at the TLS layer before a byte of HTTP is parsed: the
 *	context requires a client certificate (SSL_VERIFY_FAIL_IF_NO_PEER_CERT) chaining to
 *	client_ca_file. Session caching and tickets are off (and TLS 1.3 sends zero tickets), so
 *	no connection is ever resumed on the strength of an earlier verification: a certificate
 *	revoked by removing its root on reload cannot ride an old session. TLS 1.2 and older are
 *	refused (RFC 8446 only; no renegotiation, no static-RSA key exchange).
 *
 *	The peer's identity is the single SAN dNSName of its leaf (RFC 5280 §4.2.1.6); the CN is
 *	never looked at (RFC 6125 §6.4.4). A leaf with no dNSName, or with more than one, is refused
 *	at the handshake in the verify callback: with several names the identity would be ambiguous
 *	and a peer could choose which of its names it acts as. Names with control characters,
 *	non-ASCII bytes or an embedded NUL are refused too, since the identity ends up in logs and
 *	in lookups.
 *
 *	Resource limits: max_body (libevent answers 413 and closes), max_headers_size, one
 *	connection limit counted over the TLS objects' lifetime, and two timeouts (see below).
 *
 * LIBEVENT 2.1 NOTES
 *	- The bevcb of evhttp cannot refuse a connection: a NULL return makes evhttp fall back to a
 *	  plain-socket bufferevent, i.e. cleartext HTTP. Refused connections therefore get a TLS
 *	  bufferevent and a "kill" event activated at once, which shuts the socket down before the
 *	  loop reads from it; evhttp then sees EOF and frees the connection.
 *	- evhttp calls the close callback only for connections that reached a request, so the
 *	  connection count and the per-connection state hang on the SSL object instead: an SSL
 *	  ex_data slot whose free function runs when the bufferevent (BEV_OPT_CLOSE_ON_FREE) frees
 *	  the SSL. That happens on every path, including handshake failures.
 *	- libevent 2.1 has a single per-connection timeout (evhttp_set_timeout_tv), used as the
 *	  bufferevent read/write timeout while reading a request and while idle between requests:
 *	  it is set to idle_timeout. header_timeout is enforced by our own per-connection timer,
 *	  armed when the connection is accepted and disarmed when its first request is complete:
 *	  it bounds the TLS handshake plus the first request (headers and body). Later requests on a
 *	  keep-alive connection are bounded by idle_timeout per read only.
 *	- When a client goes away while its request is with the handler, evhttp (EVREQ_HTTP_EOF)
 *	  detaches the request from the connection and leaves it to us; when the connection is
 *	  freed with the request still attached (srv_free), evhttp frees it. The close callback
 *	  tells the two apart (evhttp_request_get_connection) before either happens.
 *
 * SIGNALS
 *	OpenSSL writes to sockets with plain send(): a peer that vanished mid-write raises SIGPIPE.
 *	The program must ignore SIGPIPE (signal(SIGPIPE, SIG_IGN)) before it runs the loop.
 *
 * THREADS
 *	Everything runs on the loop thread except srv_call_in_loop(), which event_active()s an
 *	event from another thread: the program must call evthread_use_pthreads() before it
 *	creates the event_base.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>
#include <jansson.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "backend-auth/da_dns.h"
#include "backend-auth/da_tls.h"
#include "common/dj_clock.h"
#include "common/dj_err.h"
#include "common/dj_log.h"
#include "bi/srv.h"

#define SRV_MAX_HEADERS_SIZE 16384 /* bytes of request line + headers; ample for BI JSON POSTs */
#define SRV_ADDR_MAX	     64	   /* "[v6]:port" text for logs */
#define SRV_HOST_MAX	     256   /* host part of a listen address */
#define SRV_ALL_METHODS                                                                            \
	(EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD | EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE | \
	 EVHTTP_REQ_OPTIONS | EVHTTP_REQ_TRACE | EVHTTP_REQ_CONNECT | EVHTTP_REQ_PATCH)
#define SRV_JSON_TYPE		    "application/json"
#define SRV_METRICS_TYPE	    "text/plain; version=0.0.4" /* Prometheus text exposition format */
#define SRV_METRICS_PATH	    "/metrics"
#define SRV_WHY_MAX		    128
#define SRV_AL_CERTIFICATE_REQUIRED 116 /* RFC 8446 §6.2 certificate_required alert */

struct srv_call {
	void (*fn)(void *arg);
	void *arg;
	struct srv_call *next;
};

struct conn;

struct srv_req {
	struct srv *s;		      /* NULL once srv_free ran */
	struct evhttp_request *evreq; /* NULL when evhttp freed it */
	struct conn *c;		      /* NULL once the connection closed */
	bool detached;		      /* the connection closed; evreq (if any) is ours to free */
	bool held;		      /* waiting for the peer's DANE check, not yet handed over */
	char peer[SRV_IDENTITY_MAX];
	char *path;
	uint8_t *body;
	size_t body_len;
	double started;
	struct srv_req *prev, *next; /* s->reqs */
};

/* where the DANE check of a connection stands */
enum vstate {
	V_NONE = 0, /* handshake not done */
	V_PENDING,  /* TLSA lookup under way */
	V_OK,	    /* identity verified (or PKIX mode) */
	V_FAILED,   /* refused: no request is served */
};

struct conn {
	struct srv *s; /* NULL once srv_free ran */
	struct bufferevent *bev;
	struct event *kill_ev;	 /* refusal (activated now) or header_timeout */
	struct srv_req *pending; /* the request with the handler, if any */
	bool counted;		 /* included in s->connections */
	bool dane;		 /* SRV_AUTH_DANE connection */
	bool refused;
	bool handshake_done;
	bool failure_logged;
	bool first_request; /* header timer disarmed */
	char addr[SRV_ADDR_MAX];
	char identity[SRV_IDENTITY_MAX];
	char why[SRV_WHY_MAX];	  /* why the verify callback refused the leaf */
	char claimed[DA_NAME_MAX]; /* DANE: the dane_clientid name, or "" */
	char vwhy[2 * DA_NAME_MAX + DA_WHY_MAX + 64]; /* DANE: why the check failed */
	enum vstate vstate;
	bool vtemp;		   /* the failure was temporary (DNS), not a verdict */
	struct da_lookup *lookup;  /* DANE: pending TLSA lookup */
	struct conn *prev, *next; /* s->conns */
};

struct srv {
	struct event_base *base;
	struct evhttp *http;
	struct evhttp_bound_socket *listener;
	struct evhttp *metrics_http;
	SSL_CTX *ctx;
	struct srv_props props;
	unsigned connections;
	unsigned in_flight;
	struct srv_auth_stats auth_stats;
	struct conn *conns;
	struct srv_req *reqs;
	struct event *wake_ev;
	pthread_mutex_t q_lock;
	bool q_lock_init;
	struct srv_call *q_head, *q_tail;
};

static pthread_once_t ex_once = PTHREAD_ONCE_INIT;
static int ex_idx = -1;

/* fmt_sockaddr - "a.b.c.d:port" or "[v6]:port" */
static void fmt_sockaddr(const struct sockaddr_storage *ss, char *out, size_t outlen)
{
	char host[INET6_ADDRSTRLEN] = "?";
	unsigned port = 0;

	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *a = (const struct sockaddr_in *)ss;

		inet_ntop(AF_INET, &a->sin_addr, host, sizeof(host));
		port = ntohs(a->sin_port);
		snprintf(out, outlen, "%s:%u", host, port);
	} else if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)ss;

		inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof(host));
		port = ntohs(a->sin6_port);
		snprintf(out, outlen, "[%s]:%u", host, port);
	} else {
		snprintf(out, outlen, "?");
	}
}

/* conn_fill_addr - record the peer address of the connection's socket once */
static void conn_fill_addr(struct conn *c, evutil_socket_t fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	if (c->addr[0] != '\0' || fd < 0)
		return;
	memset(&ss, 0, sizeof(ss));
	if (getpeername(fd, (struct sockaddr *)&ss, &len) == 0)
		fmt_sockaddr(&ss, c->addr, sizeof(c->addr));
}

/* conn_addr - the address for logs */
static const char *conn_addr(const struct conn *c)
{
	return c->addr[0] != '\0' ? c->addr : "(unknown peer)";
}

/* conn_ex_free - SSL_free hook: the connection is gone; uncount it and free its state */
static void conn_ex_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl,
			 void *argp)
{
	struct conn *c = ptr;
	struct srv *s;

	(void)parent;
	(void)ad;
	(void)idx;
	(void)argl;
	(void)argp;
	if (c == NULL)
		return;
	s = c->s;
	if (s != NULL) {
		if (!c->handshake_done && !c->failure_logged && !c->refused)
			dj_info("TLS connection from %s closed before the handshake completed",
				conn_addr(c));
		if (c->counted)
			s->connections--;
		if (c->prev != NULL)
			c->prev->next = c->next;
		else
			s->conns = c->next;
		if (c->next != NULL)
			c->next->prev = c->prev;
	}
	if (c->pending != NULL)
		c->pending->c = NULL;
	da_lookup_cancel(c->lookup);
	if (c->kill_ev != NULL)
		event_free(c->kill_ev);
	free(c);
}

/* ex_init - allocate the SSL ex_data slot once per process */
static void ex_init(void)
{
	ex_idx = SSL_get_ex_new_index(0, NULL, NULL, NULL, conn_ex_free);
}

/* ssl_conn - the per-connection state of an SSL (NULL if none) */
static struct conn *ssl_conn(const SSL *ssl)
{
	return ssl != NULL ? SSL_get_ex_data(ssl, ex_idx) : NULL;
}

/* req_conn - the per-connection state behind an evhttp request */
static struct conn *req_conn(struct evhttp_request *evreq)
{
	struct evhttp_connection *evcon = evhttp_request_get_connection(evreq);
	struct bufferevent *bev = evcon != NULL ? evhttp_connection_get_bufferevent(evcon) : NULL;

	return bev != NULL ? ssl_conn(bufferevent_openssl_get_ssl(bev)) : NULL;
}

/* leaf_identity - the single SAN dNSName of \p x, or a reason why there is none */
static int leaf_identity(X509 *x, char *out, size_t outlen, char *why, size_t whylen)
{
	GENERAL_NAMES *gens;
	const unsigned char *name = NULL;
	int crit = -1, n_dns = 0, name_len = 0, i, ret = DJ_EMALFORMED;

	gens = X509_get_ext_d2i(x, NID_subject_alt_name, &crit, NULL);
	if (gens == NULL) {
		/* crit == -2: the extension occurs more than once (RFC 5280 §4.2 forbids it) */
		dj_errbuf(why, whylen,
			crit == -2 ? "client certificate has several SAN extensions"
				   : "client certificate has no SAN dNSName");
		goto out;
	}
	for (i = 0; i < sk_GENERAL_NAME_num(gens); i++) {
		const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);

		if (g->type != GEN_DNS)
			continue;
		n_dns++;
		name = ASN1_STRING_get0_data(g->d.dNSName);
		name_len = ASN1_STRING_length(g->d.dNSName);
	}
	if (n_dns != 1) {
		if (n_dns == 0)
			dj_errbuf(why, whylen, "client certificate has no SAN dNSName");
		else
			dj_errbuf(why, whylen, "client certificate has %d SAN dNSNames, not one",
				n_dns);
		goto out;
	}
	if (name_len <= 0 || (size_t)name_len >= outlen) {
		dj_errbuf(why, whylen, "client certificate SAN dNSName is empty or too long");
		goto out;
	}
	for (i = 0; i < name_len; i++) {
		if (name[i] <= 0x20 || name[i] >= 0x7f) {
			dj_errbuf(why, whylen, "client certificate SAN dNSName has a forbidden byte");
			goto out;
		}
	}
	memcpy(out, name, (size_t)name_len);
	out[name_len] = '\0';
	ret = DJ_EOK;
out:
	GENERAL_NAMES_free(gens);
	return ret;
}

/* verify_cb - after OpenSSL's own chain check, insist on exactly one SAN dNSName at depth 0 */
static int verify_cb(int preverify_ok, X509_STORE_CTX *xs)
{
	SSL *ssl = X509_STORE_CTX_get_ex_data(xs, SSL_get_ex_data_X509_STORE_CTX_idx());
	struct conn *c = ssl_conn(ssl);
	X509 *leaf;

	if (c != NULL && c->dane) {
		/*
		 * DANE: the chain is judged against TLSA records after the handshake (conn_verify
		 * below); here only the identity must be clear. With a dane_clientid the name is
		 * the claimed one; without, the leaf must carry exactly one SAN dNSName.
		 */
		if (X509_STORE_CTX_get_error_depth(xs) != 0 || c->claimed[0] != '\0')
			return 1;
		leaf = X509_STORE_CTX_get_current_cert(xs);
		if (leaf == NULL || leaf_identity(leaf, c->identity, sizeof(c->identity), c->why,
						  sizeof(c->why)) != DJ_EOK) {
			c->identity[0] = '\0';
			X509_STORE_CTX_set_error(xs, X509_V_ERR_APPLICATION_VERIFICATION);
			return 0;
		}
		return 1;
	}
	if (!preverify_ok || X509_STORE_CTX_get_error_depth(xs) != 0)
		return preverify_ok;
	leaf = X509_STORE_CTX_get_current_cert(xs);
	if (c == NULL || leaf == NULL ||
	    leaf_identity(leaf, c->identity, sizeof(c->identity), c->why, sizeof(c->why)) !=
		DJ_EOK) {
		if (c != NULL)
			c->identity[0] = '\0';
		X509_STORE_CTX_set_error(xs, X509_V_ERR_APPLICATION_VERIFICATION);
		return 0;
	}
	return 1;
}

/* refusal_json - {"error": why the connection failed its DANE check} */
static void refusal_json(const struct conn *c, char *out, size_t outlen)
{
	json_t *j = json_pack("{s:s}", "error", c->vwhy);
	char *txt = j != NULL ? json_dumps(j, JSON_COMPACT) : NULL;

	snprintf(out, outlen, "%s", txt != NULL ? txt : "{\"error\":\"not authenticated\"}");
	free(txt);
	json_decref(j);
}

/* reply_refused - answer a request of a connection that failed its DANE check, and close */
static void reply_refused(struct srv_req *r, const struct conn *c)
{
	char body[sizeof(c->vwhy) + 64];

	if (r->evreq != NULL && !r->detached)
		evhttp_add_header(evhttp_request_get_output_headers(r->evreq), "Connection",
				  "close");
	refusal_json(c, body, sizeof(body));
	srv_reply(r, c->vtemp ? HTTP_SERVUNAVAIL : 403, body, strlen(body));
}

/* conn_verified - the DANE check ended: release or refuse a held request, or drop the peer */
static void conn_verified(struct conn *c)
{
	struct srv_req *r = c->pending;
	struct srv *s = c->s;

	if (r != NULL && r->held) {
		r->held = false;
		if (c->vstate == V_OK && s != NULL) {
			memcpy(r->peer, c->identity, sizeof(r->peer));
			s->props.handler(r, s->props.arg);
		} else {
			reply_refused(r, c);
		}
		return;
	}
	/* Nothing asked yet: a refused peer may still send its request and be told why (gencb
	 * answers it 403/503 and closes); header_timeout, still armed, ends it otherwise. */
}

/* on_tlsa - the TLSA verdict for the connection's identity: check its chain against it */
static void on_tlsa(const struct da_tlsa_set *set, void *arg)
{
	struct conn *c = arg;
	SSL *ssl = bufferevent_openssl_get_ssl(c->bev);
	struct da_verdict v;
	X509 *leaf = ssl != NULL ? SSL_get0_peer_certificate(ssl) : NULL;
	const char *name = c->claimed[0] != '\0' ? c->claimed : c->identity;

	c->lookup = NULL;
	c->vstate = V_FAILED;
	if (set->status != DA_SECURE) {
		c->vtemp = set->status == DA_TEMPFAIL;
		snprintf(c->vwhy, sizeof(c->vwhy), "TLSA %s: %s%s%s", set->name,
			 da_status_str(set->status), set->why != NULL ? ": " : "",
			 set->why != NULL ? set->why : "");
	} else if (leaf == NULL) {
		snprintf(c->vwhy, sizeof(c->vwhy), "no client certificate");
	} else if (da_tls_verify(SSL_get_SSL_CTX(ssl), leaf, SSL_get_peer_cert_chain(ssl), name,
				 set->rr, set->n, DA_PEER_CLIENT, &v) != DJ_EOK) {
		c->vtemp = true;
		snprintf(c->vwhy, sizeof(c->vwhy), "DANE check of %s failed: %s", name,
			 dj_openssl_reason());
	} else if (!v.ok) {
		snprintf(c->vwhy, sizeof(c->vwhy), "certificate does not match TLSA %s: %s", name,
			 v.why);
	} else {
		c->vstate = V_OK;
		if (c->claimed[0] != '\0')
			snprintf(c->identity, sizeof(c->identity), "%s", c->claimed);
		dj_info("client %s authenticated as %s by DANE (TLSA %d %d %d at depth %d%s)",
			conn_addr(c), c->identity, v.usage, v.selector, v.mtype, v.depth,
			c->claimed[0] != '\0' ? ", dane_clientid" : "");
	}
	if (c->s != NULL) {
		if (c->vstate == V_OK)
			c->s->auth_stats.ok++;
		else if (c->vtemp)
			c->s->auth_stats.tempfail++;
		else
			c->s->auth_stats.rejected++;
	}
	if (c->vstate != V_OK) {
		c->failure_logged = true;
		if (c->vtemp)
			dj_warn("client %s: temporary failure checking %s: %s", conn_addr(c), name,
				c->vwhy);
		else
			dj_warn("client %s refused: %s", conn_addr(c), c->vwhy);
	}
	conn_verified(c);
}

/* conn_verify_start - after the handshake: look up the TLSA records of the peer's identity */
static void conn_verify_start(struct conn *c)
{
	const char *name = c->claimed[0] != '\0' ? c->claimed : c->identity;
	char norm[DA_NAME_MAX], why[DA_WHY_MAX] = "";
	int rc = DJ_ESHUTDOWN;

	c->vstate = V_PENDING;
	if (c->s != NULL && c->s->props.resolver != NULL &&
	    (rc = da_name_normalize(name, norm, sizeof(norm), why, sizeof(why))) == DJ_EOK)
		rc = da_tlsa_lookup(c->s->props.resolver, norm, on_tlsa, c, &c->lookup);
	if (rc == DJ_EOK)
		return; /* on_tlsa ran already, or will */
	c->vstate = V_FAILED;
	c->vtemp = rc != DJ_EMALFORMED && rc != DJ_EINVAL;
	snprintf(c->vwhy, sizeof(c->vwhy), "identity %s: %s", name,
		 why[0] != '\0' ? why : dj_strerror(rc));
	c->failure_logged = true;
	dj_warn("client %s refused: %s", conn_addr(c), c->vwhy);
	if (c->s != NULL) {
		if (c->vtemp)
			c->s->auth_stats.tempfail++;
		else
			c->s->auth_stats.rejected++;
	}
	conn_verified(c);
}

/* prefetch_cb - the answer to an early lookup: it only warms the cache */
static void prefetch_cb(const struct da_tlsa_set *set, void *arg)
{
	(void)set;
	(void)arg;
}

/* hello_cb - DANE: read the claimed identity (dane_clientid) and start its lookup early */
static int hello_cb(SSL *ssl, int *al, void *arg)
{
	struct conn *c = ssl_conn(ssl);
	struct srv *s = c != NULL ? c->s : NULL;
	int rc;

	(void)arg;
	if (s == NULL || !c->dane || s->props.clientid_ext == 0 || c->claimed[0] != '\0')
		return SSL_CLIENT_HELLO_SUCCESS;
	rc = da_tls_clientid_get(ssl, s->props.clientid_ext, c->claimed, sizeof(c->claimed), c->why,
				 sizeof(c->why));
	if (rc == DJ_EMALFORMED) {
		c->claimed[0] = '\0';
		*al = SSL_AD_DECODE_ERROR;
		return SSL_CLIENT_HELLO_ERROR;
	}
	if (rc != DJ_EOK) {
		c->claimed[0] = '\0';
		return SSL_CLIENT_HELLO_SUCCESS;
	}
	if (s->props.resolver != NULL &&
	    da_tlsa_lookup(s->props.resolver, c->claimed, prefetch_cb, NULL, NULL) != DJ_EOK)
		dj_debug("prefetch of TLSA %s not started", c->claimed);
	return SSL_CLIENT_HELLO_SUCCESS;
}

/* info_cb - note the peer address, handshake completion, and log fatal alerts we send */
static void info_cb(const SSL *ssl, int where, int ret)
{
	struct conn *c = ssl_conn(ssl);
	const char *reason;
	long vr;

	if (c == NULL)
		return;
	if (where & SSL_CB_HANDSHAKE_START)
		conn_fill_addr(c, SSL_get_fd(ssl));
	if ((where & SSL_CB_HANDSHAKE_DONE) && !c->handshake_done) {
		c->handshake_done = true;
		if (c->dane)
			conn_verify_start(c);
		else
			c->vstate = V_OK;
	}
	if ((where & SSL_CB_WRITE_ALERT) == SSL_CB_WRITE_ALERT && (ret >> 8) == SSL3_AL_FATAL &&
	    !c->handshake_done && !c->failure_logged) {
		vr = SSL_get_verify_result(ssl);
		if (c->why[0] != '\0')
			reason = c->why;
		else if (vr != X509_V_OK)
			reason = X509_verify_cert_error_string(vr);
		else if ((ret & 0xff) == SRV_AL_CERTIFICATE_REQUIRED)
			reason = "no client certificate";
		else
			reason = SSL_alert_desc_string_long(ret);
		dj_warn("TLS handshake from %s failed: %s", conn_addr(c), reason);
		c->failure_logged = true;
	}
}

/* kill_cb - refuse an over-limit connection, or end one that missed header_timeout */
static void kill_cb(evutil_socket_t unused, short what, void *arg)
{
	struct conn *c = arg;
	evutil_socket_t fd = bufferevent_getfd(c->bev);

	(void)unused;
	(void)what;
	conn_fill_addr(c, fd);
	if (c->refused)
		dj_warn("connection from %s refused: max_connections reached", conn_addr(c));
	else if (c->vstate == V_FAILED)
		; /* the DANE check said why already */
	else
		dj_info("connection from %s: no request within header_timeout", conn_addr(c));
	c->failure_logged = true;
	/* evhttp owns the socket: shut it down and let it see EOF and free the connection */
	if (fd >= 0)
		shutdown(fd, SHUT_RDWR);
}

/* bevcb - a TLS bufferevent for each accepted connection, with its state on the SSL */
static struct bufferevent *bevcb(struct event_base *base, void *arg)
{
	struct srv *s = arg;
	struct bufferevent *bev = NULL;
	struct conn *c = NULL;
	SSL *ssl = NULL;
	struct timeval tv = {.tv_sec = (time_t)s->props.header_timeout, .tv_usec = 0};

	c = calloc(1, sizeof(*c));
	ssl = SSL_new(s->ctx);
	if (c == NULL || ssl == NULL || SSL_set_ex_data(ssl, ex_idx, c) != 1) {
		free(c);
		c = NULL;
		goto fail;
	}
	/* from here c is owned by ssl (conn_ex_free) */
	c->s = s;
	c->dane = s->props.auth == SRV_AUTH_DANE;
	c->kill_ev = event_new(base, -1, 0, kill_cb, c);
	if (c->kill_ev == NULL)
		goto fail;
	bev = bufferevent_openssl_socket_new(base, -1, ssl, BUFFEREVENT_SSL_ACCEPTING,
					     BEV_OPT_CLOSE_ON_FREE);
	if (bev == NULL)
		goto fail;
	ssl = NULL; /* owned by bev */
	c->bev = bev;
	c->next = s->conns;
	if (s->conns != NULL)
		s->conns->prev = c;
	s->conns = c;
	if (s->connections >= s->props.max_connections) {
		c->refused = true;
		event_active(c->kill_ev, EV_TIMEOUT, 0);
	} else {
		c->counted = true;
		s->connections++;
		if (s->props.header_timeout > 0)
			event_add(c->kill_ev, &tv);
	}
	return bev;
fail:
	/*
	 * No memory. evhttp would treat NULL as "plain socket", so hand back a TLS bufferevent
	 * if at all possible; failing that there is nothing safe to return.
	 */
	SSL_free(ssl);
	dj_err("out of memory accepting a connection");
	ssl = SSL_new(s->ctx);
	bev = ssl != NULL ? bufferevent_openssl_socket_new(base, -1, ssl, BUFFEREVENT_SSL_ACCEPTING,
							   BEV_OPT_CLOSE_ON_FREE)
			  : NULL;
	if (bev == NULL)
		SSL_free(ssl);
	return bev;
}

/* req_unlink - take \p r off s->reqs and its connection, and uncount it */
static void req_unlink(struct srv_req *r)
{
	struct srv *s = r->s;

	if (r->c != NULL) {
		r->c->pending = NULL;
		r->c = NULL;
	}
	if (s == NULL)
		return;
	if (r->prev != NULL)
		r->prev->next = r->next;
	else
		s->reqs = r->next;
	if (r->next != NULL)
		r->next->prev = r->prev;
	s->in_flight--;
	r->s = NULL;
}

/* req_free - free a srv_req (not its evhttp request) */
static void req_free(struct srv_req *r)
{
	if (r == NULL)
		return;
	free(r->path);
	free(r->body);
	free(r);
}

/* drop_held - free a held request whose connection closed before its DANE check ended */
static void drop_held(void *arg)
{
	struct srv_req *r = arg;

	r->held = false;
	srv_reply(r, HTTP_SERVUNAVAIL, "{}", 2); /* detached: only frees */
}

/* closecb - the connection of a pending request is going away: detach the request */
static void closecb(struct evhttp_connection *evcon, void *arg)
{
	struct conn *c = arg;
	struct srv_req *r = c->pending;

	(void)evcon;
	if (r == NULL)
		return;
	/*
	 * Still attached: evhttp frees the request with the connection (right after this
	 * callback). Detached (client EOF/timeout): evhttp left it to us, srv_reply frees it.
	 */
	if (r->evreq != NULL && evhttp_request_get_connection(r->evreq) != NULL)
		r->evreq = NULL;
	dj_info("connection from %s closed before its answer to %s was sent", conn_addr(c),
		r->path);
	r->detached = true;
	r->c = NULL;
	c->pending = NULL;
	/* a request held for the DANE check never reaches the handler: drop it from the loop
	 * (not from inside evhttp's close path); srv_free drops it itself when it is the cause */
	if (r->held && r->s != NULL && srv_call_in_loop(r->s, drop_held, r) != DJ_EOK)
		dj_err("out of memory dropping a request of a closed connection");
}

/* send_simple - a srv-level answer with a small JSON body */
static void send_simple(struct evhttp_request *evreq, int status, const char *json)
{
	struct evbuffer *out = evhttp_request_get_output_buffer(evreq);

	evhttp_add_header(evhttp_request_get_output_headers(evreq), "Content-Type", SRV_JSON_TYPE);
	if (evbuffer_add(out, json, strlen(json)) != 0) {
		evhttp_send_error(evreq, HTTP_INTERNAL, NULL);
		return;
	}
	evhttp_send_reply(evreq, status, NULL, NULL);
}

/* gencb - every request on the TLS listener: POST goes to the handler */
static void gencb(struct evhttp_request *evreq, void *arg)
{
	struct srv *s = arg;
	struct conn *c = req_conn(evreq);
	struct srv_req *r = NULL;
	struct evbuffer *in;
	const char *path;

	if (c != NULL && !c->first_request) {
		c->first_request = true;
		event_del(c->kill_ev);
	}
	if (c == NULL || c->pending != NULL ||
	    (c->vstate == V_OK && c->identity[0] == '\0') || c->vstate == V_NONE) {
		/* cannot happen: the handshake refused unidentified peers, evhttp serialises */
		dj_err("request without an identified TLS peer; refused");
		send_simple(evreq, HTTP_INTERNAL, "{\"error\":\"internal\"}");
		return;
	}
	if (c->vstate == V_FAILED) {
		char body[sizeof(c->vwhy) + 64];

		refusal_json(c, body, sizeof(body));
		evhttp_add_header(evhttp_request_get_output_headers(evreq), "Connection", "close");
		send_simple(evreq, c->vtemp ? HTTP_SERVUNAVAIL : 403, body);
		return;
	}
	if (evhttp_request_get_command(evreq) != EVHTTP_REQ_POST) {
		evhttp_add_header(evhttp_request_get_output_headers(evreq), "Allow", "POST");
		send_simple(evreq, HTTP_BADMETHOD, "{\"error\":\"method not allowed\"}");
		return;
	}
	r = calloc(1, sizeof(*r));
	if (r == NULL)
		goto nomem;
	path = evhttp_uri_get_path(evhttp_request_get_evhttp_uri(evreq));
	r->path = strdup(path != NULL && path[0] != '\0' ? path : "/");
	in = evhttp_request_get_input_buffer(evreq);
	r->body_len = evbuffer_get_length(in);
	r->body = malloc(r->body_len > 0 ? r->body_len : 1);
	if (r->path == NULL || r->body == NULL ||
	    evbuffer_copyout(in, r->body, r->body_len) != (ev_ssize_t)r->body_len)
		goto nomem;
	memcpy(r->peer, c->identity, sizeof(r->peer));
	r->started = dj_clock_mono_s();
	r->evreq = evreq;
	r->c = c;
	r->s = s;
	c->pending = r;
	evhttp_connection_set_closecb(evhttp_request_get_connection(evreq), closecb, c);
	r->next = s->reqs;
	if (s->reqs != NULL)
		s->reqs->prev = r;
	s->reqs = r;
	s->in_flight++;
	if (c->vstate == V_PENDING) {
		/* the DANE check is still under way: conn_verified() releases or refuses it */
		r->held = true;
		s->auth_stats.held++;
		return;
	}
	s->props.handler(r, s->props.arg);
	return;
nomem:
	req_free(r);
	dj_err("out of memory for a request from %s", conn_addr(c));
	send_simple(evreq, HTTP_SERVUNAVAIL, "{\"error\":\"unavailable\"}");
}

/* metrics_cb - GET /metrics on the plain listener */
static void metrics_cb(struct evhttp_request *evreq, void *arg)
{
	struct srv *s = arg;
	const char *path = evhttp_uri_get_path(evhttp_request_get_evhttp_uri(evreq));
	struct evkeyvalq *hdr = evhttp_request_get_output_headers(evreq);
	char *text;

	if (path == NULL || strcmp(path, SRV_METRICS_PATH) != 0) {
		evhttp_send_error(evreq, HTTP_NOTFOUND, NULL);
		return;
	}
	if (evhttp_request_get_command(evreq) != EVHTTP_REQ_GET) {
		evhttp_add_header(hdr, "Allow", "GET");
		evhttp_send_error(evreq, HTTP_BADMETHOD, NULL);
		return;
	}
	text = s->props.metrics != NULL ? s->props.metrics(s->props.arg) : strdup("");
	if (text == NULL) {
		evhttp_send_error(evreq, HTTP_INTERNAL, NULL);
		return;
	}
	evhttp_add_header(hdr, "Content-Type", SRV_METRICS_TYPE);
	if (evbuffer_add(evhttp_request_get_output_buffer(evreq), text, strlen(text)) != 0) {
		free(text);
		evhttp_send_error(evreq, HTTP_INTERNAL, NULL);
		return;
	}
	free(text);
	evhttp_send_reply(evreq, HTTP_OK, NULL, NULL);
}

/* wake_cb - on the loop thread: run everything srv_call_in_loop() queued, in order */
static void wake_cb(evutil_socket_t unused, short what, void *arg)
{
	struct srv *s = arg;
	struct srv_call *q, *next;

	(void)unused;
	(void)what;
	pthread_mutex_lock(&s->q_lock);
	q = s->q_head;
	s->q_head = s->q_tail = NULL;
	pthread_mutex_unlock(&s->q_lock);
	for (; q != NULL; q = next) {
		next = q->next;
		q->fn(q->arg);
		free(q);
	}
}

/* parse_hostport - "HOST:PORT" or "[V6]:PORT" into host and port */
static int parse_hostport(const char *in, char *host, size_t hostlen, uint16_t *port)
{
	const char *colon, *hs, *he;
	char *end;
	unsigned long p;
	size_t n;

	if (in == NULL)
		return DJ_ECONFIG;
	if (in[0] == '[') {
		hs = in + 1;
		he = strchr(hs, ']');
		if (he == NULL || he[1] != ':')
			return DJ_ECONFIG;
		colon = he + 1;
	} else {
		hs = in;
		colon = strrchr(in, ':');
		if (colon == NULL || memchr(in, ':', (size_t)(colon - in)) != NULL)
			return DJ_ECONFIG; /* bare IPv6 needs brackets */
		he = colon;
	}
	n = (size_t)(he - hs);
	if (n == 0 || n >= hostlen || colon[1] == '\0')
		return DJ_ECONFIG;
	errno = 0;
	p = strtoul(colon + 1, &end, 10);
	if (errno != 0 || *end != '\0' || p > UINT16_MAX || colon[1] < '0' || colon[1] > '9')
		return DJ_ECONFIG;
	memcpy(host, hs, n);
	host[n] = '\0';
	*port = (uint16_t)p;
	return DJ_EOK;
}

/* bind_http - bind \p http to "HOST:PORT" */
static int bind_http(struct evhttp *http, const char *what, const char *addr,
		     struct evhttp_bound_socket **out, char *err, size_t errlen)
{
	char host[SRV_HOST_MAX];
	uint16_t port;
	struct evhttp_bound_socket *h;

	if (parse_hostport(addr, host, sizeof(host), &port) != DJ_EOK) {
		dj_errbuf(err, errlen, "%s %s: not HOST:PORT or [IPv6]:PORT", what,
			addr != NULL ? addr : "(none)");
		return DJ_ECONFIG;
	}
	errno = 0;
	h = evhttp_bind_socket_with_handle(http, host, port);
	if (h == NULL) {
		dj_errbuf(err, errlen, "bind %s: %s", addr,
			errno != 0 ? strerror(errno) : "cannot bind");
		return DJ_EIO;
	}
	/* No Nagle: evhttp writes headers and body as separate TLS records, and Nagle with the
	 * peer's delayed ACK would hold the second ~40 ms. Accepted sockets inherit the option. */
	if (setsockopt(evhttp_bound_socket_get_fd(h), IPPROTO_TCP, TCP_NODELAY, &(int){ 1 },
		       sizeof(int)) != 0)
		dj_warn("%s %s: TCP_NODELAY: %s", what, addr, strerror(errno));
	if (out != NULL)
		*out = h;
	return DJ_EOK;
}

/* tls_ctx_new - the server context: TLS 1.3, our chain and key, client certificates required */
static int tls_ctx_new(enum srv_auth auth, unsigned clientid_ext, const char *cert_file,
		       const char *key_file, const char *ca_file, SSL_CTX **out, char *err,
		       size_t errlen)
{
	SSL_CTX *ctx = NULL;
	STACK_OF(X509_NAME) *names = NULL;
	int ret = DJ_ECONFIG;

	*out = NULL;
	ERR_clear_error();
	if (cert_file == NULL || key_file == NULL || (auth == SRV_AUTH_PKIX && ca_file == NULL)) {
		dj_errbuf(err, errlen, "cert_file, key_file and (PKIX) client_ca_file are required");
		goto out;
	}
	ctx = SSL_CTX_new(TLS_server_method());
	if (ctx == NULL) {
		ret = DJ_ECRYPTO;
		dj_errbuf(err, errlen, "SSL_CTX_new: %s", dj_openssl_reason());
		goto out;
	}
	if (SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) != 1) {
		ret = DJ_ECRYPTO;
		dj_errbuf(err, errlen, "TLS 1.3: %s", dj_openssl_reason());
		goto out;
	}
	SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET | SSL_OP_NO_RENEGOTIATION);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	if (SSL_CTX_set_num_tickets(ctx, 0) != 1) {
		ret = DJ_ECRYPTO;
		dj_errbuf(err, errlen, "SSL_CTX_set_num_tickets: %s", dj_openssl_reason());
		goto out;
	}
	if (SSL_CTX_use_certificate_chain_file(ctx, cert_file) != 1) {
		dj_errbuf(err, errlen, "cert_file %s: %s", cert_file, dj_openssl_reason());
		goto out;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, key_file, SSL_FILETYPE_PEM) != 1) {
		dj_errbuf(err, errlen, "key_file %s: %s", key_file, dj_openssl_reason());
		goto out;
	}
	if (SSL_CTX_check_private_key(ctx) != 1) {
		dj_errbuf(err, errlen, "key_file %s: does not match cert_file %s", key_file,
			cert_file);
		ERR_clear_error();
		goto out;
	}
	if (auth == SRV_AUTH_DANE) {
		/* no roots at all: every client is judged by its TLSA records (conn_verify_start) */
		if (da_tls_ctx_enable(ctx) != DJ_EOK) {
			ret = DJ_ECRYPTO;
			dj_errbuf(err, errlen, "SSL_CTX_dane_enable failed");
			goto out;
		}
		if (clientid_ext != 0 && da_tls_clientid_accept(ctx, clientid_ext) != DJ_EOK) {
			dj_errbuf(err, errlen, "dane_clientid codepoint %u cannot be used",
				  clientid_ext);
			goto out;
		}
		SSL_CTX_set_client_hello_cb(ctx, hello_cb, NULL);
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT,
				   verify_cb);
		SSL_CTX_set_info_callback(ctx, info_cb);
		*out = ctx;
		ctx = NULL;
		ret = DJ_EOK;
		goto out;
	}
	if (SSL_CTX_load_verify_locations(ctx, ca_file, NULL) != 1) {
		dj_errbuf(err, errlen, "client_ca_file %s: %s", ca_file, dj_openssl_reason());
		goto out;
	}
	/* tell clients which roots we accept (CertificateRequest certificate_authorities) */
	names = SSL_load_client_CA_file(ca_file);
	if (names == NULL) {
		dj_errbuf(err, errlen, "client_ca_file %s: no certificates", ca_file);
		ERR_clear_error();
		goto out;
	}
	SSL_CTX_set_client_CA_list(ctx, names);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, verify_cb);
	SSL_CTX_set_info_callback(ctx, info_cb);
	*out = ctx;
	ctx = NULL;
	ret = DJ_EOK;
out:
	SSL_CTX_free(ctx);
	return ret;
}

int srv_new(struct event_base *base, const struct srv_props *props, struct srv **out, char *err,
	    size_t errlen)
{
	struct srv *s = NULL;
	struct timeval idle;
	int ret = DJ_EINVAL;

	*out = NULL;
	if (base == NULL || props == NULL || props->handler == NULL ||
	    props->max_connections == 0) {
		dj_errbuf(err, errlen, "srv_new: base, handler and max_connections are required");
		goto out;
	}
	pthread_once(&ex_once, ex_init);
	if (ex_idx < 0) {
		ret = DJ_ECRYPTO;
		dj_errbuf(err, errlen, "SSL_get_ex_new_index failed");
		goto out;
	}
	ret = DJ_ENOMEM;
	s = calloc(1, sizeof(*s));
	if (s == NULL) {
		dj_errbuf(err, errlen, "out of memory");
		goto out;
	}
	s->base = base;
	s->props = *props;
	if (pthread_mutex_init(&s->q_lock, NULL) != 0) {
		dj_errbuf(err, errlen, "pthread_mutex_init failed");
		goto out;
	}
	s->q_lock_init = true;
	s->wake_ev = event_new(base, -1, 0, wake_cb, s);
	if (s->wake_ev == NULL) {
		dj_errbuf(err, errlen, "out of memory");
		goto out;
	}
	if (props->auth == SRV_AUTH_DANE && props->resolver == NULL) {
		ret = DJ_ECONFIG;
		dj_errbuf(err, errlen, "DANE client authentication needs a resolver");
		goto out;
	}
	ret = tls_ctx_new(props->auth, props->clientid_ext, props->cert_file, props->key_file,
			  props->client_ca_file, &s->ctx, err, errlen);
	if (ret != DJ_EOK)
		goto out;

	ret = DJ_ENOMEM;
	s->http = evhttp_new(base);
	if (s->http == NULL) {
		dj_errbuf(err, errlen, "out of memory");
		goto out;
	}
	evhttp_set_bevcb(s->http, bevcb, s);
	evhttp_set_gencb(s->http, gencb, s);
	/* all methods reach gencb, which answers 405 to anything but POST */
	evhttp_set_allowed_methods(s->http, SRV_ALL_METHODS);
	evhttp_set_max_body_size(s->http, (ev_ssize_t)props->max_body);
	evhttp_set_max_headers_size(s->http, SRV_MAX_HEADERS_SIZE);
	if (props->idle_timeout > 0) {
		idle.tv_sec = (time_t)props->idle_timeout;
		idle.tv_usec = 0;
		evhttp_set_timeout_tv(s->http, &idle);
	}
	ret = bind_http(s->http, "listen_addr", props->listen_addr, &s->listener, err, errlen);
	if (ret != DJ_EOK)
		goto out;

	if (props->metrics_addr != NULL) {
		ret = DJ_ENOMEM;
		s->metrics_http = evhttp_new(base);
		if (s->metrics_http == NULL) {
			dj_errbuf(err, errlen, "out of memory");
			goto out;
		}
		evhttp_set_gencb(s->metrics_http, metrics_cb, s);
		evhttp_set_allowed_methods(s->metrics_http, SRV_ALL_METHODS);
		evhttp_set_max_body_size(s->metrics_http, 0);
		evhttp_set_max_headers_size(s->metrics_http, SRV_MAX_HEADERS_SIZE);
		if (props->idle_timeout > 0)
			evhttp_set_timeout_tv(s->metrics_http, &idle);
		ret = bind_http(s->metrics_http, "metrics_addr", props->metrics_addr, NULL, err,
				errlen);
		if (ret != DJ_EOK)
			goto out;
	}
	*out = s;
	s = NULL;
	ret = DJ_EOK;
out:
	srv_free(s);
	return ret;
}

void srv_stop_accepting(struct srv *s)
{
	if (s == NULL || s->listener == NULL)
		return;
	evhttp_del_accept_socket(s->http, s->listener);
	s->listener = NULL;
}

unsigned srv_in_flight(const struct srv *s)
{
	return s->in_flight;
}

void srv_auth_stats(const struct srv *s, struct srv_auth_stats *out)
{
	*out = s->auth_stats;
}

unsigned srv_connections(const struct srv *s)
{
	return s->connections;
}

void srv_free(struct srv *s)
{
	struct conn *c;
	struct srv_req *r, *held, *next_r;
	struct srv_call *q, *next;

	if (s == NULL)
		return;
	/*
	 * Connections and requests may outlive us: bufferevents are finalized later in the loop
	 * (or by event_base_free), and the handler may still hold requests. Cut their links back.
	 */
	for (c = s->conns; c != NULL; c = c->next) {
		c->s = NULL;
		/* the resolver may go right after us: no verdict may arrive later */
		da_lookup_cancel(c->lookup);
		c->lookup = NULL;
		if (c->kill_ev != NULL) {
			event_free(c->kill_ev);
			c->kill_ev = NULL;
		}
	}
	s->conns = NULL;
	held = s->reqs;
	for (r = s->reqs; r != NULL; r = r->next)
		r->s = NULL;
	s->reqs = NULL;
	if (s->http != NULL)
		evhttp_free(s->http); /* frees attached requests; closecb detaches ours */
	/* requests held for a DANE check were never the handler's: they are ours to free */
	for (r = held; r != NULL; r = next_r) {
		next_r = r->next;
		if (!r->held)
			continue;
		if (r->evreq != NULL && r->detached)
			evhttp_request_free(r->evreq);
		req_free(r);
	}
	if (s->metrics_http != NULL)
		evhttp_free(s->metrics_http);
	if (s->wake_ev != NULL)
		event_free(s->wake_ev);
	for (q = s->q_head; q != NULL; q = next) {
		next = q->next;
		free(q);
	}
	if (s->q_lock_init)
		pthread_mutex_destroy(&s->q_lock);
	SSL_CTX_free(s->ctx);
	free(s);
}

int srv_reload_tls(struct srv *s, const char *cert_file, const char *key_file,
		   const char *client_ca_file, char *err, size_t errlen)
{
	SSL_CTX *ctx = NULL;
	int ret;

	ret = tls_ctx_new(s->props.auth, s->props.clientid_ext, cert_file, key_file,
			  client_ca_file, &ctx, err, errlen);
	if (ret != DJ_EOK)
		return ret;
	/* live SSL objects hold their own reference to the old context */
	SSL_CTX_free(s->ctx);
	s->ctx = ctx;
	return DJ_EOK;
}

const char *srv_req_peer(const struct srv_req *r)
{
	return r->peer;
}

const char *srv_req_path(const struct srv_req *r)
{
	return r->path;
}

const uint8_t *srv_req_body(const struct srv_req *r, size_t *len)
{
	*len = r->body_len;
	return r->body;
}

double srv_req_started(const struct srv_req *r)
{
	return r->started;
}

void srv_reply(struct srv_req *r, int status, const char *json, size_t len)
{
	struct evhttp_request *evreq;

	if (r == NULL)
		return;
	evreq = r->evreq;
	req_unlink(r);
	if (evreq != NULL && r->detached) {
		/* the client left; evhttp handed the request to us */
		evhttp_request_free(evreq);
	} else if (evreq != NULL) {
		struct evhttp_connection *evcon = evhttp_request_get_connection(evreq);

		evhttp_add_header(evhttp_request_get_output_headers(evreq), "Content-Type",
				  SRV_JSON_TYPE);
		if (evbuffer_add(evhttp_request_get_output_buffer(evreq), json, len) != 0) {
			evhttp_send_error(evreq, HTTP_INTERNAL, NULL);
		} else {
			evhttp_send_reply(evreq, status, NULL, NULL);
			/* One chain, so one TLS record and one write(): evhttp queues headers and
			 * body as separate chains, which bufferevent_openssl writes as two. */
			if (evcon != NULL)
				(void)evbuffer_pullup(bufferevent_get_output(
					evhttp_connection_get_bufferevent(evcon)), -1);
		}
	}
	req_free(r);
}

int srv_call_in_loop(struct srv *s, void (*fn)(void *arg), void *arg)
{
	struct srv_call *q = malloc(sizeof(*q));

	if (q == NULL)
		return DJ_ENOMEM;
	q->fn = fn;
	q->arg = arg;
	q->next = NULL;
	pthread_mutex_lock(&s->q_lock);
	if (s->q_tail != NULL)
		s->q_tail->next = q;
	else
		s->q_head = q;
	s->q_tail = q;
	/* under the lock: wake_cb cannot run between the append and the activation */
	event_active(s->wake_ev, EV_TIMEOUT, 0);
	pthread_mutex_unlock(&s->q_lock);
	return DJ_EOK;
}
