/*
 * srv.c - the HTTPS front of danejoind: evhttp over bufferevent_openssl, TLS 1.3 only, client
 * certificates required: the listeners, the connections and their limits, the requests, the
 * lifecycle. Who the client is: srv_auth.c; the limits watched on a connection: srv_conn.c;
 * the metrics listener: srv_metrics.c.
 *
 * LIMITS
 *	Resource limits: max_body (libevent answers 413 and closes), max_headers_size, one
 *	connection limit counted over the TLS objects' lifetime, a per-identity cap
 *	(max_connections_per_peer), min_rate and two timeouts (see below; srv_conn.c).
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
 *	  it is set to idle_timeout. It times each read, so alone it lets a client trickle a
 *	  request forever. header_timeout and min_rate bound the whole request instead: a
 *	  per-connection clock started at the accept (the handshake), again at the handshake's
 *	  end (the first request) and at the first byte of each later request, and stopped when
 *	  the request is complete (srv_conn.c).
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
 *	creates the event_base. Several srvs, each on its own loop and thread (srv_props.share),
 *	share a struct srv_group under its lock: the TLS context, the connection count and the
 *	per-identity counts, touched once per connection (accept, identity known, close). Each
 *	then listens on its own SO_REUSEPORT socket; the first probes the address without the
 *	option, so that an address another process listens on is still refused.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>
#include <openssl/ssl.h>

#include "backend-auth/da_dns.h"
#include "bi/bi_tls.h"
#include "bi/srv.h"
#include "bi/srv_internal.h"
#include "common/dj_clock.h"
#include "common/dj_err.h"
#include "common/dj_log.h"

#define SRV_HOST_MAX 256 /* host part of a listen address */

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

/* srv__conn_fill_addr - record the peer address of the connection's socket once */
void srv__conn_fill_addr(struct conn *c, evutil_socket_t fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	if (c->addr[0] != '\0' || fd < 0)
		return;
	memset(&ss, 0, sizeof(ss));
	if (getpeername(fd, (struct sockaddr *)&ss, &len) == 0)
		fmt_sockaddr(&ss, c->addr, sizeof(c->addr));
}

/* srv__conn_addr - the address for logs */
const char *srv__conn_addr(const struct conn *c)
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
				srv__conn_addr(c));
		srv__peer_release(c);
		if (c->counted) {
			pthread_mutex_lock(&s->g->lock);
			s->g->connections--;
			pthread_mutex_unlock(&s->g->lock);
		}
		if (c->prev != NULL)
			c->prev->next = c->next;
		else
			s->conns = c->next;
		if (c->next != NULL)
			c->next->prev = c->prev;
	}
	if (c->pending != NULL)
		c->pending->c = NULL;
	/* called from the bufferevent's destructor, before it frees its buffers */
	if (c->bev != NULL && c->in_cbe != NULL)
		evbuffer_remove_cb_entry(bufferevent_get_input(c->bev), c->in_cbe);
	if (c->bev != NULL && c->out_cbe != NULL)
		evbuffer_remove_cb_entry(bufferevent_get_output(c->bev), c->out_cbe);
	da_lookup_cancel(c->lookup);
	if (c->kill_ev != NULL)
		event_free(c->kill_ev);
	if (c->read_ev != NULL)
		event_free(c->read_ev);
	free(c);
}

/* ex_init - allocate the SSL ex_data slot once per process */
static void ex_init(void)
{
	ex_idx = SSL_get_ex_new_index(0, NULL, NULL, NULL, conn_ex_free);
}

/* srv__ssl_conn - the per-connection state of an SSL (NULL if none) */
struct conn *srv__ssl_conn(const SSL *ssl)
{
	return ssl != NULL ? SSL_get_ex_data(ssl, ex_idx) : NULL;
}

/* req_conn - the per-connection state behind an evhttp request */
static struct conn *req_conn(struct evhttp_request *evreq)
{
	struct evhttp_connection *evcon = evhttp_request_get_connection(evreq);
	struct bufferevent *bev = evcon != NULL ? evhttp_connection_get_bufferevent(evcon) : NULL;

	return bev != NULL ? srv__ssl_conn(bufferevent_openssl_get_ssl(bev)) : NULL;
}

/* group_peer - the count of \p id in \p g (under its lock); a new one if \p add, else NULL */
static struct srv_peer_count *group_peer(struct srv_group *g, const char *id, bool add)
{
	struct srv_peer_count *v;

	for (unsigned i = 0; i < g->n_peers; i++)
		if (strcasecmp(g->peers[i].identity, id) == 0)
			return &g->peers[i];
	if (!add)
		return NULL;
	if (g->n_peers == g->cap_peers) {
		unsigned cap = g->cap_peers != 0 ? 2 * g->cap_peers : 8;

		v = realloc(g->peers, cap * sizeof(*v));
		if (v == NULL)
			return NULL;
		g->peers = v;
		g->cap_peers = cap;
	}
	v = &g->peers[g->n_peers++];
	snprintf(v->identity, sizeof(v->identity), "%s", id);
	v->n = 0;
	return v;
}

/* srv__peer_take - admit \p c when its identity holds fewer than \p cap connections over every
 * loop; *held: how many it holds (before this one) */
bool srv__peer_take(struct conn *c, unsigned cap, unsigned *held)
{
	struct srv_group *g = c->s->g;
	struct srv_peer_count *p;
	bool ok = false;

	pthread_mutex_lock(&g->lock);
	p = group_peer(g, c->identity, false);
	*held = p != NULL ? p->n : 0;
	if (*held < cap && (p != NULL || (p = group_peer(g, c->identity, true)) != NULL)) {
		p->n++;
		c->peer_counted = true;
		ok = true;
	}
	pthread_mutex_unlock(&g->lock);
	return ok;
}

void srv__peer_release(struct conn *c)
{
	struct srv_group *g;
	struct srv_peer_count *p;

	if (!c->peer_counted || c->s == NULL)
		return;
	c->peer_counted = false;
	g = c->s->g;
	pthread_mutex_lock(&g->lock);
	p = group_peer(g, c->identity, false);
	if (p != NULL && --p->n == 0)
		*p = g->peers[--g->n_peers];	/* keep the table as short as the peers online */
	pthread_mutex_unlock(&g->lock);
}

/* group_new - the limits and TLS context of a srv (and the srvs that will share them) */
static struct srv_group *group_new(void)
{
	struct srv_group *g = calloc(1, sizeof(*g));

	if (g == NULL)
		return NULL;
	if (pthread_mutex_init(&g->lock, NULL) != 0) {
		free(g);
		return NULL;
	}
	g->refs = 1;
	return g;
}

/* group_unref - a srv is done with its group: the last one frees it */
static void group_unref(struct srv_group *g)
{
	bool last;

	if (g == NULL)
		return;
	pthread_mutex_lock(&g->lock);
	last = --g->refs == 0;
	pthread_mutex_unlock(&g->lock);
	if (!last)
		return;
	SSL_CTX_free(g->ctx);
	free(g->peers);
	pthread_mutex_destroy(&g->lock);
	free(g);
}

/* ssl_new - an SSL of the current context (a reload may swap it from another loop) */
static SSL *ssl_new(struct srv *s)
{
	SSL *ssl;

	pthread_mutex_lock(&s->g->lock);
	ssl = SSL_new(s->g->ctx);
	pthread_mutex_unlock(&s->g->lock);
	/* one read() for all the socket holds, not two per record (header, then body); what it
	 * reads beyond one record is picked up by bi_tls__read_pending (srv_conn.c, srv_auth.c) */
	if (ssl != NULL)
		SSL_set_read_ahead(ssl, 1);
	return ssl;
}

/* bevcb - a TLS bufferevent for each accepted connection, with its state on the SSL */
static struct bufferevent *bevcb(struct event_base *base, void *arg)
{
	struct srv *s = arg;
	struct bufferevent *bev = NULL;
	struct conn *c = NULL;
	SSL *ssl = NULL;
	bool admit;

	c = calloc(1, sizeof(*c));
	ssl = ssl_new(s);
	if (c == NULL || ssl == NULL || SSL_set_ex_data(ssl, ex_idx, c) != 1) {
		free(c);
		c = NULL;
		goto fail;
	}
	/* from here c is owned by ssl (conn_ex_free) */
	c->s = s;
	c->dane = s->props.auth == SRV_AUTH_DANE;
	c->kill_ev = event_new(base, -1, 0, srv__kill_cb, c);
	c->read_ev = event_new(base, -1, 0, srv__read_cb, c);
	if (c->kill_ev == NULL || c->read_ev == NULL)
		goto fail;
	bev = bufferevent_openssl_socket_new(base, -1, ssl, BUFFEREVENT_SSL_ACCEPTING,
					     BEV_OPT_CLOSE_ON_FREE);
	if (bev == NULL)
		goto fail;
	ssl = NULL; /* owned by bev */
	c->bev = bev;
	srv__conn_watch(c);
	c->next = s->conns;
	if (s->conns != NULL)
		s->conns->prev = c;
	s->conns = c;
	pthread_mutex_lock(&s->g->lock);
	admit = s->g->connections < s->props.max_connections;
	if (admit)
		s->g->connections++;
	pthread_mutex_unlock(&s->g->lock);
	if (!admit) {
		c->refused = true;
		event_active(c->kill_ev, EV_TIMEOUT, 0);
	} else {
		c->counted = true;
		/* the first request's clock runs from the accept: header_timeout for the handshake,
		 * then again from its end (srv_auth.c info_cb) for the first request */
		c->timing = true;
		c->t0 = dj_clock_mono_s();
		if (s->props.header_timeout > 0)
			srv__clock_arm(c, c->t0);
	}
	return bev;
fail:
	/*
	 * No memory. evhttp would treat NULL as "plain socket", so hand back a TLS bufferevent
	 * if at all possible; failing that there is nothing safe to return.
	 */
	SSL_free(ssl);
	dj_err("out of memory accepting a connection");
	ssl = ssl_new(s);
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
	dj_info("connection from %s closed before its answer to %s was sent", srv__conn_addr(c),
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
	struct conn *c = req_conn(evreq);

	if (c != NULL)
		c->ours = true;

	evhttp_add_header(evhttp_request_get_output_headers(evreq), "Content-Type", BI_TLS_JSON_TYPE);
	if (evbuffer_add(out, json, strlen(json)) != 0) {
		evhttp_send_error(evreq, HTTP_INTERNAL, NULL);
		goto out;
	}
	evhttp_send_reply(evreq, status, NULL, NULL);
out:
	if (c != NULL)
		c->ours = false;
}

/* gencb - every request on the TLS listener: POST goes to the handler */
static void gencb(struct evhttp_request *evreq, void *arg)
{
	struct srv *s = arg;
	struct conn *c = req_conn(evreq);
	struct srv_req *r = NULL;
	struct evbuffer *in;
	const char *path;

	if (c != NULL) {
		/* the request is complete: its clock stops; idle_timeout covers the wait for the
		 * next one, whose first byte starts a new clock (in_cb) */
		c->first_request = true;
		c->timing = false;
		c->rate_on = false;
		if (!c->kill_now && !c->refused)
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

		srv__refusal_json(c, body, sizeof(body));
		evhttp_add_header(evhttp_request_get_output_headers(evreq), "Connection", "close");
		send_simple(evreq, c->vtemp ? HTTP_SERVUNAVAIL : 403, body);
		return;
	}
	if (!srv__line_ok(c, evhttp_request_get_uri(evreq))) {
		dj_warn("request from %s refused with 400: a space or control character in the "
			"request line (\"%s\")", srv__conn_addr(c), c->reqline);
		evhttp_add_header(evhttp_request_get_output_headers(evreq), "Connection", "close");
		send_simple(evreq, HTTP_BADREQUEST, "{\"error\":\"malformed request line\"}");
		return;
	}
	if (evhttp_request_get_command(evreq) != EVHTTP_REQ_POST) {
		dj_warn("request from %s refused with 405: method not allowed (request line "
			"\"%s\")", srv__conn_addr(c), c->reqline);
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
	dj_err("out of memory for a request from %s", srv__conn_addr(c));
	send_simple(evreq, HTTP_SERVUNAVAIL, "{\"error\":\"unavailable\"}");
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

/* srv__bind_http - bind \p http to "HOST:PORT" */
int srv__bind_http(struct evhttp *http, const char *what, const char *addr,
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
	/* No Nagle (bi_tls__nodelay); accepted sockets inherit the option */
	if (bi_tls__nodelay(evhttp_bound_socket_get_fd(h)) != 0)
		dj_warn("%s %s: TCP_NODELAY: %s", what, addr, strerror(errno));
	if (out != NULL)
		*out = h;
	return DJ_EOK;
}

struct event_base *srv_base_new(void)
{
	struct event_config *cfg = event_config_new();
	struct event_base *base;

	if (cfg == NULL)
		return NULL;
	/* a flag other backends ignore; epoll coalesces add/del of one pass into one call */
	event_config_set_flag(cfg, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
	base = event_base_new_with_config(cfg);
	event_config_free(cfg);
	return base;
}

/* listen_probe - with SO_REUSEPORT any process of ours may bind the address too, so first make
 * sure nothing listens there: a socket without the option fails to bind when something does */
static int listen_probe(const struct sockaddr *sa, socklen_t len)
{
	evutil_socket_t fd = socket(sa->sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int one = 1, ret = 0;

	if (fd < 0)
		return -1;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
	    bind(fd, sa, len) != 0)
		ret = -1;
	evutil_closesocket(fd);
	return ret;
}

/* bind_reuseport - the TLS listener of one of several loops: its own socket on \p addr with
 * SO_REUSEPORT, the kernel spreading new connections over the loops' sockets */
static int bind_reuseport(struct srv *s, const char *addr, bool probe, char *err, size_t errlen)
{
	const unsigned flags = LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC | LEV_OPT_REUSEABLE |
			       LEV_OPT_REUSEABLE_PORT;
	struct evutil_addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
					 .ai_flags = EVUTIL_AI_PASSIVE };
	struct evutil_addrinfo *ai = NULL;
	struct evconnlistener *lev = NULL;
	char host[SRV_HOST_MAX], port_s[8];
	uint16_t port;

	if (parse_hostport(addr, host, sizeof(host), &port) != DJ_EOK) {
		dj_errbuf(err, errlen, "listen_addr %s: not HOST:PORT or [IPv6]:PORT",
			  addr != NULL ? addr : "(none)");
		return DJ_ECONFIG;
	}
	snprintf(port_s, sizeof(port_s), "%u", (unsigned)port);
	if (evutil_getaddrinfo(host, port_s, &hints, &ai) != 0 || ai == NULL) {
		dj_errbuf(err, errlen, "bind %s: cannot resolve %s", addr, host);
		return DJ_EIO;
	}
	errno = 0;
	if (!probe || listen_probe(ai->ai_addr, (socklen_t)ai->ai_addrlen) == 0)
		lev = evconnlistener_new_bind(s->base, NULL, NULL, flags, -1, ai->ai_addr,
					      (int)ai->ai_addrlen);
	evutil_freeaddrinfo(ai);
	if (lev != NULL)
		s->listener = evhttp_bind_listener(s->http, lev);
	if (s->listener == NULL) {
		dj_errbuf(err, errlen, "bind %s: %s", addr,
			  errno != 0 ? strerror(errno) : "cannot bind");
		if (lev != NULL)
			evconnlistener_free(lev);
		return DJ_EIO;
	}
	if (bi_tls__nodelay(evconnlistener_get_fd(lev)) != 0)
		dj_warn("listen_addr %s: TCP_NODELAY: %s", addr, strerror(errno));
	return DJ_EOK;
}

int srv_new(struct event_base *base, const struct srv_props *props, struct srv **out, char *err,
	    size_t errlen)
{
	struct srv *s = NULL;
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
	s->props.sni = NULL;	/* borrowed for srv_new only */
	s->props.n_sni = 0;
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
	if (props->share != NULL) {
		s->g = props->share->g;
		pthread_mutex_lock(&s->g->lock);
		s->g->refs++;
		pthread_mutex_unlock(&s->g->lock);
	} else if ((s->g = group_new()) == NULL) {
		dj_errbuf(err, errlen, "out of memory");
		goto out;
	} else {
		ret = srv__tls_ctx_build(props, props->cert_file, props->key_file,
					 props->client_ca_file, props->sni, props->n_sni, &s->g->ctx,
					 err, errlen);
		if (ret != DJ_EOK)
			goto out;
	}
	s->props.share = NULL;

	ret = DJ_ENOMEM;
	s->http = evhttp_new(base);
	if (s->http == NULL) {
		dj_errbuf(err, errlen, "out of memory");
		goto out;
	}
	evhttp_set_bevcb(s->http, bevcb, s);
	evhttp_set_gencb(s->http, gencb, s);
	srv__http_limits(s->http, props);
	if (props->reuseport || props->share != NULL)
		ret = bind_reuseport(s, props->listen_addr, props->share == NULL, err, errlen);
	else
		ret = srv__bind_http(s->http, "listen_addr", props->listen_addr, &s->listener, err,
				     errlen);
	if (ret != DJ_EOK)
		goto out;

	if (props->metrics_addr != NULL) {
		ret = srv__metrics_listen(s, err, errlen);
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

void srv_conn_stats(const struct srv *s, struct srv_conn_stats *out)
{
	*out = s->conn_stats;
}

unsigned srv_unsent(const struct srv *s)
{
	unsigned n = 0;

	for (const struct conn *c = s->conns; c != NULL; c = c->next)
		if (c->bev != NULL && !c->closing &&
		    evbuffer_get_length(bufferevent_get_output(c->bev)) > 0)
			n++;
	return n;
}

unsigned srv_connections(const struct srv *s)
{
	unsigned n;

	pthread_mutex_lock(&s->g->lock);
	n = s->g->connections;
	pthread_mutex_unlock(&s->g->lock);
	return n;
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
		srv__peer_release(c);
		if (c->counted) {	/* the other loops' limits go on without it */
			pthread_mutex_lock(&s->g->lock);
			s->g->connections--;
			pthread_mutex_unlock(&s->g->lock);
		}
		c->s = NULL;
		/* the resolver may go right after us: no verdict may arrive later */
		da_lookup_cancel(c->lookup);
		c->lookup = NULL;
		if (c->kill_ev != NULL) {
			event_free(c->kill_ev);
			c->kill_ev = NULL;
		}
		if (c->read_ev != NULL) {
			event_free(c->read_ev);
			c->read_ev = NULL;
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
	group_unref(s->g);
	free(s);
}

int srv_reload_tls(struct srv *s, const char *cert_file, const char *key_file,
		   const char *client_ca_file, char *err, size_t errlen)
{
	return srv_reload_tls_sni(s, cert_file, key_file, client_ca_file, NULL, 0, err, errlen);
}

int srv_reload_tls_sni(struct srv *s, const char *cert_file, const char *key_file,
		       const char *client_ca_file, const struct srv_sni *sni, unsigned n_sni,
		       char *err, size_t errlen)
{
	SSL_CTX *ctx = NULL;
	int ret;

	ret = srv__tls_ctx_build(&s->props, cert_file, key_file, client_ca_file, sni, n_sni, &ctx,
				 err, errlen);
	if (ret != DJ_EOK)
		return ret;
	/* live SSL objects hold their own reference to the old context; new connections on
	 * every loop sharing it get the new one */
	pthread_mutex_lock(&s->g->lock);
	SSL_CTX_free(s->g->ctx);
	s->g->ctx = ctx;
	pthread_mutex_unlock(&s->g->lock);
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

void srv_req_close_after(struct srv_req *r)
{
	r->close_after = true;
}

/*
 * reply_date - the Date header for an answer of this second: evhttp would format it for each
 * answer (evutil_date_rfc1123, 3.6 k instructions); it adds none when one is there. NULL when
 * the srv is gone (evhttp then adds its own).
 */
static const char *reply_date(struct srv *s)
{
	time_t now = time(NULL);
	struct tm tm;

	if (s == NULL)
		return NULL;
	if (now != s->date_t || s->date[0] == '\0') {
		if (gmtime_r(&now, &tm) == NULL ||
		    evutil_date_rfc1123(s->date, sizeof(s->date), &tm) <= 0) {
			s->date[0] = '\0';
			return NULL;
		}
		s->date_t = now;
	}
	return s->date;
}

void srv_reply(struct srv_req *r, int status, const char *json, size_t len)
{
	struct evhttp_request *evreq;
	struct conn *c;
	struct srv *s;

	if (r == NULL)
		return;
	evreq = r->evreq;
	c = r->c;
	s = r->s;
	if (r->close_after && s != NULL)
		s->conn_stats.close_after++;
	req_unlink(r);
	if (evreq != NULL && r->detached) {
		/* the client left; evhttp handed the request to us */
		evhttp_request_free(evreq);
	} else if (evreq != NULL) {
		struct evhttp_connection *evcon = evhttp_request_get_connection(evreq);
		const char *date = reply_date(s);

		evhttp_add_header(evhttp_request_get_output_headers(evreq), "Content-Type",
				  BI_TLS_JSON_TYPE);
		if (date != NULL)
			evhttp_add_header(evhttp_request_get_output_headers(evreq), "Date", date);
		if (r->close_after)
			evhttp_add_header(evhttp_request_get_output_headers(evreq), "Connection",
					  "close");
		if (c != NULL)
			c->ours = true;
		if (evbuffer_add(evhttp_request_get_output_buffer(evreq), json, len) != 0) {
			evhttp_send_error(evreq, HTTP_INTERNAL, NULL);
		} else {
			evhttp_send_reply(evreq, status, NULL, NULL);
			bi_tls__one_record(evcon);
			bi_tls__write_now(evcon);
		}
		if (c != NULL)
			c->ours = false;
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

X509 *srv_req_peer_cert(const struct srv_req *r)
{
	SSL *ssl;

	if (r == NULL || r->c == NULL || r->c->bev == NULL)
		return NULL;
	ssl = bufferevent_openssl_get_ssl(r->c->bev);
	return ssl != NULL ? SSL_get0_peer_certificate(ssl) : NULL;
}
