/*
 * srv.c - the HTTPS front of danejoind: our own HTTP/1.1 (srv_http.c, parsed by llhttp) over
 * bufferevent_openssl, TLS 1.3 only, client certificates required: the listeners, the
 * connections and their limits, the requests, the lifecycle. Who the client is: srv_auth.c;
 * the limits watched on a connection: srv_conn.c; the metrics listener (evhttp):
 * srv_metrics.c.
 *
 * LIMITS
 *	Resource limits: max_body (413, srv_http.c), SRV_MAX_HEADERS_SIZE, max_connections
 *	(counted from the accept to the close; over it a connection is closed at once, before
 *	any TLS), a per-identity cap (max_connections_per_peer), min_rate and header_timeout (the
 *	request clock, srv_conn.c) and idle_timeout (the bufferevent's read and write timeouts).
 *
 * CONNECTIONS
 *	The per-connection state hangs on the SSL object (an ex_data slot), where the TLS
 *	callbacks find it; its free function runs when the bufferevent (BEV_OPT_CLOSE_ON_FREE)
 *	frees the SSL, which libevent does a loop pass after bufferevent_free. srv__conn_close
 *	uncounts and unlinks the connection at once and frees the bufferevent.
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

/* conn_unlink - the connection is closing: uncount it, take it off s->conns */
static void conn_unlink(struct conn *c)
{
	struct srv *s = c->s;

	if (s == NULL)
		return;
	if (!c->handshake_done && !c->failure_logged)
		dj_info("TLS connection from %s closed before the handshake completed",
			srv__conn_addr(c));
	srv__peer_release(c);
	if (c->counted) {
		pthread_mutex_lock(&s->g->lock);
		s->g->connections--;
		pthread_mutex_unlock(&s->g->lock);
		c->counted = false;
	}
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		s->conns = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	c->prev = c->next = NULL;
	c->s = NULL;
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
	if (s != NULL)
		conn_unlink(c); /* not closed by srv__conn_close (cannot happen) */
	if (c->pending != NULL)
		c->pending->c = NULL;
	da_lookup_cancel(c->lookup);
	if (c->kill_ev != NULL)
		event_free(c->kill_ev);
	if (c->read_ev != NULL)
		event_free(c->read_ev);
	srv__http_free(c);
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

/* conn_new - the state and TLS bufferevent of an accepted connection on \p fd; NULL when
 * out of memory */
static struct conn *conn_new(struct srv *s, evutil_socket_t fd)
{
	struct conn *c = calloc(1, sizeof(*c));
	SSL *ssl = ssl_new(s);

	if (c == NULL || ssl == NULL || SSL_set_ex_data(ssl, ex_idx, c) != 1) {
		free(c);
		SSL_free(ssl);
		evutil_closesocket(fd);
		return NULL;
	}
	/* from here c is owned by ssl (conn_ex_free), ssl by the bufferevent */
	c->s = s;
	c->dane = s->props.auth == SRV_AUTH_DANE;
	c->kill_ev = event_new(s->base, -1, 0, srv__kill_cb, c);
	c->read_ev = event_new(s->base, -1, 0, srv__read_cb, c);
	c->bev = bufferevent_openssl_socket_new(s->base, fd, ssl, BUFFEREVENT_SSL_ACCEPTING,
						BEV_OPT_CLOSE_ON_FREE);
	if (c->bev == NULL) {
		SSL_free(ssl); /* frees c */
		evutil_closesocket(fd);
		return NULL;
	}
	c->next = s->conns;
	if (s->conns != NULL)
		s->conns->prev = c;
	s->conns = c;
	if (c->kill_ev == NULL || c->read_ev == NULL) {
		srv__conn_close(c);
		return NULL;
	}
	return c;
}

/* accept_cb - a connection: refused at once over max_connections, else TLS and HTTP/1.1 */
static void accept_cb(struct evconnlistener *lev, evutil_socket_t fd, struct sockaddr *sa,
		      int salen, void *arg)
{
	struct srv *s = arg;
	struct sockaddr_storage ss;
	char addr[SRV_ADDR_MAX];
	struct conn *c;
	bool admit;

	(void)lev;
	pthread_mutex_lock(&s->g->lock);
	admit = s->g->connections < s->props.max_connections;
	if (admit)
		s->g->connections++;
	pthread_mutex_unlock(&s->g->lock);
	memset(&ss, 0, sizeof(ss));
	memcpy(&ss, sa, (size_t)salen < sizeof(ss) ? (size_t)salen : sizeof(ss));
	fmt_sockaddr(&ss, addr, sizeof(addr));
	if (!admit) {
		dj_warn("connection from %s refused: max_connections reached", addr);
		evutil_closesocket(fd);
		return;
	}
	c = conn_new(s, fd);
	if (c == NULL) {
		dj_err("out of memory accepting a connection from %s", addr);
		pthread_mutex_lock(&s->g->lock);
		s->g->connections--;
		pthread_mutex_unlock(&s->g->lock);
		return;
	}
	c->counted = true;
	memcpy(c->addr, addr, sizeof(c->addr));
	/* the first request's clock runs from the accept: header_timeout for the handshake,
	 * then again from its end (srv_auth.c info_cb) for the first request */
	c->timing = true;
	c->t0 = dj_clock_mono_s();
	if (s->props.header_timeout > 0)
		srv__clock_arm(c, c->t0);
	srv__http_start(c);
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

/* req_free - free what \p r holds, and \p r itself or keep it zeroed on \p s's spare list
 * (\p s NULL: the srv is gone, free it) */
static void req_free(struct srv *s, struct srv_req *r)
{
	if (r == NULL)
		return;
	if (r->path != r->path_in)
		free(r->path);
	free(r->body);
	if (s == NULL || s->spare_n >= SRV_SPARE_MAX) {
		free(r);
		return;
	}
	memset(r, 0, sizeof(*r));
	r->next = s->spare;
	s->spare = r;
	s->spare_n++;
}

/* conn_detach - the connection of \p c's pending request is closing: the request stays the
 * handler's (srv_reply then only frees it); one held for the DANE check never reached the
 * handler and is freed */
static void conn_detach(struct conn *c)
{
	struct srv_req *r = c->pending;

	c->pending = NULL;
	if (r == NULL)
		return;
	if (c->s != NULL)
		dj_info("connection from %s closed before its answer to %s was sent",
			srv__conn_addr(c), r->path);
	r->detached = true;
	r->c = NULL;
	if (r->held) {
		r->held = false;
		srv_reply(r, HTTP_SERVUNAVAIL, "{}", 2); /* detached: only frees */
	}
}

void srv__conn_close(struct conn *c)
{
	struct bufferevent *bev = c->bev;

	if (c->closing)
		return;
	c->closing = true;
	c->timing = false;
	conn_detach(c);
	conn_unlink(c);
	if (c->kill_ev != NULL)
		event_del(c->kill_ev);
	if (c->read_ev != NULL)
		event_del(c->read_ev);
	da_lookup_cancel(c->lookup);
	c->lookup = NULL;
	/* the SSL, and with it c (conn_ex_free), goes a loop pass later */
	if (bev != NULL) {
		bufferevent_disable(bev, EV_READ | EV_WRITE);
		bufferevent_setcb(bev, NULL, NULL, NULL, NULL);
		bufferevent_free(bev);
	}
}

/* answer_simple - an answer of srv itself (no srv_req) */
static void answer_simple(struct conn *c, int status, const char *extra, const char *json,
			  bool close)
{
	srv__http_answer(c, status, extra, json, strlen(json), close);
}

/* req_path - the path of \p c's request: in r->path_in when it is short and origin-form */
static char *req_path(struct srv_req *r, const struct conn *c)
{
	size_t n;

	if (c->url == NULL || c->url_len == 0)
		return srv__http_path("/", 1);
	n = c->url[0] == '/' ? strcspn(c->url, "?#") : sizeof(r->path_in);
	if (n >= sizeof(r->path_in))
		return srv__http_path(c->url, c->url_len);
	memcpy(r->path_in, c->url, n);
	r->path_in[n] = '\0';
	return r->path_in;
}

/* req_new - the srv_req of the request \p c parsed (a spare one of \p s if any): its path and
 * body (taken from c) */
static struct srv_req *req_new(struct srv *s, struct conn *c)
{
	struct srv_req *r = s->spare;

	if (r != NULL) {
		s->spare = r->next;
		s->spare_n--;
		r->next = NULL;
	} else if ((r = calloc(1, sizeof(*r))) == NULL) {
		return NULL;
	}
	r->path = req_path(r, c);
	if (c->body != NULL) {
		r->body = c->body;
		r->body_len = c->body_len;
		c->body = NULL;
		c->body_cap = c->body_len = 0;
	} else {
		r->body = malloc(1);
	}
	if (r->path == NULL || r->body == NULL) {
		req_free(NULL, r);
		return NULL;
	}
	return r;
}

/* request_refused - answer a request srv refuses itself; true if it did */
static bool request_refused(struct conn *c)
{
	char body[sizeof(c->vwhy) + 64];

	if (c->vstate == V_NONE || (c->vstate == V_OK && c->identity[0] == '\0')) {
		/* cannot happen: the handshake refused unidentified peers */
		dj_err("request without an identified TLS peer; refused");
		answer_simple(c, HTTP_INTERNAL, NULL, "{\"error\":\"internal\"}", true);
		return true;
	}
	if (c->vstate == V_FAILED) {
		srv__refusal_json(c, body, sizeof(body));
		answer_simple(c, c->vtemp ? HTTP_SERVUNAVAIL : 403, NULL, body, true);
		return true;
	}
	if (c->method != HTTP_POST) {
		dj_warn("request from %s refused with 405: method not allowed (request line "
			"\"%s\")", srv__conn_addr(c), c->reqline);
		answer_simple(c, HTTP_BADMETHOD, "Allow: POST\r\n",
			      "{\"error\":\"method not allowed\"}", !c->keep_alive);
		return true;
	}
	return false;
}

void srv__request(struct conn *c, double now)
{
	struct srv *s = c->s;
	struct srv_req *r;

	if (s == NULL || request_refused(c))
		return;
	r = req_new(s, c);
	if (r == NULL) {
		dj_err("out of memory for a request from %s", srv__conn_addr(c));
		answer_simple(c, HTTP_SERVUNAVAIL, NULL, "{\"error\":\"unavailable\"}", true);
		return;
	}
	memcpy(r->peer, c->identity, sizeof(r->peer));
	r->started = now > 0 ? now : dj_clock_mono_s();
	r->close = !c->keep_alive;
	r->c = c;
	r->s = s;
	c->pending = r;
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
}

/* wake_cb - on the loop thread: run everything srv_call_in_loop() queued, in order */
static void wake_cb(evutil_socket_t unused, short what, void *arg)
{
	struct srv *s = arg;
	struct srv_call *q, *next;
	bool owned;

	(void)unused;
	(void)what;
	pthread_mutex_lock(&s->q_lock);
	q = s->q_head;
	s->q_head = s->q_tail = NULL;
	pthread_mutex_unlock(&s->q_lock);
	/* one clock reading for the calls of this pass (srv_now) */
	s->q_now = dj_clock_mono_s();
	s->q_running = true;
	for (; q != NULL; q = next) {
		next = q->next;		/* read before fn: a caller's storage is fn's to free */
		owned = q->owned;
		q->fn(q->arg);
		if (owned)
			free(q);
	}
	s->q_running = false;
}

double srv_now(const struct srv *s)
{
	return s != NULL && s->q_running ? s->q_now : dj_clock_mono_s();
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

/* bind_listener - the TLS listener on \p addr; \p reuseport: one of several loops' sockets with
 * SO_REUSEPORT, the kernel spreading new connections over them (\p probe: the first) */
static int bind_listener(struct srv *s, const char *addr, bool reuseport, bool probe, char *err,
			 size_t errlen)
{
	unsigned flags = LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC | LEV_OPT_REUSEABLE;
	struct evutil_addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
					 .ai_flags = EVUTIL_AI_PASSIVE };
	struct evutil_addrinfo *ai = NULL;
	char host[SRV_HOST_MAX], port_s[8];
	uint16_t port;

	if (reuseport)
		flags |= LEV_OPT_REUSEABLE_PORT;
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
		s->listener = evconnlistener_new_bind(s->base, accept_cb, s, flags, -1,
						      ai->ai_addr, (int)ai->ai_addrlen);
	evutil_freeaddrinfo(ai);
	if (s->listener == NULL) {
		dj_errbuf(err, errlen, "bind %s: %s", addr,
			  errno != 0 ? strerror(errno) : "cannot bind");
		return DJ_EIO;
	}
	/* No Nagle (bi_tls__nodelay); accepted sockets inherit the option */
	if (bi_tls__nodelay(evconnlistener_get_fd(s->listener)) != 0)
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

	ret = bind_listener(s, props->listen_addr, props->reuseport || props->share != NULL,
			    props->reuseport && props->share == NULL, err, errlen);
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
	evconnlistener_free(s->listener);
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
	struct conn *c, *next_c;
	struct srv_req *r, *next_r;
	struct srv_call *q, *next;

	if (s == NULL)
		return;
	/*
	 * The handler may still hold requests: cut their links back (srv_reply then only frees
	 * them). Requests held for a DANE check were never the handler's: closing their
	 * connections frees them.
	 */
	for (r = s->reqs; r != NULL; r = next_r) {
		next_r = r->next;
		if (!r->held)
			r->s = NULL;
	}
	for (c = s->conns; c != NULL; c = next_c) {
		next_c = c->next;
		if (c->pending != NULL && !c->pending->held) {
			c->pending->detached = true;
			c->pending->c = NULL;
			c->pending = NULL;
		}
		srv__conn_close(c);
	}
	s->conns = NULL;
	s->reqs = NULL;
	if (s->listener != NULL)
		evconnlistener_free(s->listener);
	if (s->metrics_http != NULL)
		evhttp_free(s->metrics_http);
	if (s->wake_ev != NULL)
		event_free(s->wake_ev);
	for (q = s->q_head; q != NULL; q = next) {
		next = q->next;
		if (q->owned)
			free(q);
	}
	if (s->q_lock_init)
		pthread_mutex_destroy(&s->q_lock);
	while ((r = s->spare) != NULL) {
		s->spare = r->next;
		free(r);
	}
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

void srv_reply(struct srv_req *r, int status, const char *json, size_t len)
{
	struct conn *c;
	struct srv *s;
	bool close;

	if (r == NULL)
		return;
	c = r->c;
	s = r->s;
	close = r->close || r->close_after;
	if (r->close_after && s != NULL)
		s->conn_stats.close_after++;
	req_unlink(r);
	if (c != NULL && !r->detached) {
		srv__http_answer(c, status, NULL, json, len, close);
		/* pipelined requests waited in the input: on with them (unless in the parse
		 * loop already, which goes on by itself) */
		srv__http_parse(c, 0);
	}
	req_free(s, r);
}

/* call_queue - append q (filled in but for next) to the loop's calls; any thread */
static void call_queue(struct srv *s, struct srv_call *q)
{
	q->next = NULL;
	pthread_mutex_lock(&s->q_lock);
	if (s->q_tail != NULL) {
		/* not empty: the activation that came with its first call has not been run yet
		 * (wake_cb empties the queue under this lock), and that run takes this one too */
		s->q_tail->next = q;
		s->q_tail = q;
		pthread_mutex_unlock(&s->q_lock);
		return;
	}
	s->q_head = s->q_tail = q;
	/* under the lock: wake_cb cannot run between the append and the activation. Only the
	 * first call of a batch activates: each activation takes the loop's event_base lock, which
	 * the loop holds for each of its own event changes, and every contended take is a futex
	 * call on both threads (a group commit hands back a JoinReq per call) */
	event_active(s->wake_ev, EV_TIMEOUT, 0);
	pthread_mutex_unlock(&s->q_lock);
}

int srv_call_in_loop(struct srv *s, void (*fn)(void *arg), void *arg)
{
	struct srv_call *q = malloc(sizeof(*q));

	if (q == NULL)
		return DJ_ENOMEM;
	q->fn = fn;
	q->arg = arg;
	q->owned = true;
	call_queue(s, q);
	return DJ_EOK;
}

void srv_call_in_loop_at(struct srv *s, struct srv_call *c, void (*fn)(void *arg), void *arg)
{
	c->fn = fn;
	c->arg = arg;
	c->owned = false;
	call_queue(s, c);
}

X509 *srv_req_peer_cert(const struct srv_req *r)
{
	SSL *ssl;

	if (r == NULL || r->c == NULL || r->c->bev == NULL)
		return NULL;
	ssl = bufferevent_openssl_get_ssl(r->c->bev);
	return ssl != NULL ? SSL_get0_peer_certificate(ssl) : NULL;
}
