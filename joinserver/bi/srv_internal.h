/*
 * srv_internal.h - the state of the HTTPS server shared by its files: srv.c (listeners,
 *		    connections, requests, lifecycle), srv_http.c (HTTP/1.1 on each connection:
 *		    llhttp parses, srv_http answers), srv_conn.c (the limits watched on each
 *		    connection: request clock, per-peer cap), srv_auth.c (who the client is: the TLS
 *		    context, the SAN identity, the DANE check) and srv_metrics.c (the metrics
 *		    listener). Not installed.
 */
#ifndef DJ_JOINSERVER_BI_SRV_INTERNAL_H
#define DJ_JOINSERVER_BI_SRV_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <time.h>
#include <stddef.h>
#include <stdint.h>

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/listener.h>
#include <llhttp.h>
#include <openssl/ssl.h>

#include "backend-auth/da_dns.h"
#include "backend-auth/da_tls.h"
#include "bi/srv.h"
#include "common/dj_compiler.h"

#define SRV_MAX_HEADERS_SIZE 16384 /* bytes of request line + headers; ample for BI JSON POSTs */
#define SRV_READ_HIGH	     65536 /* bytes of input buffered unparsed (while a request is
				    * with the handler) before reading pauses */
#define SRV_ADDR_MAX	     64	   /* "[v6]:port" text for logs */
#define SRV_ALL_METHODS                                                                            \
	(EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD | EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE | \
	 EVHTTP_REQ_OPTIONS | EVHTTP_REQ_TRACE | EVHTTP_REQ_CONNECT | EVHTTP_REQ_PATCH)
#define SRV_WHY_MAX		    128
#define SRV_REQLINE_MAX	    96	   /* start of a request line kept for refusal logs */
#define SRV_HNAME_MAX		    16	   /* a header name srv_http looks at ("Expect") */
#define SRV_TICK_S		    1.0	   /* seconds between checks of a request's clock */

struct conn;

#define SRV_PATH_INLINE 48 /* a request path up to this (NUL included) is kept in the srv_req */
#define SRV_SPARE_MAX	64 /* freed srv_reqs a srv keeps for reuse */

struct srv_req {
	struct srv *s;		      /* NULL once srv_free ran */
	struct conn *c;		      /* NULL once the connection closed */
	bool detached;		      /* the connection closed before the answer */
	bool held;		      /* waiting for the peer's DANE check, not yet handed over */
	bool close_after;	      /* answer with "Connection: close" (srv_req_close_after) */
	bool close;		      /* the same, for srv's own reasons (HTTP/1.0, a refusal) */
	char peer[SRV_IDENTITY_MAX];
	char *path;		      /* path_in, or malloc'ed when longer */
	char path_in[SRV_PATH_INLINE];
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
	struct event *kill_ev;	 /* header_timeout, min_rate, the per-peer cap */
	struct event *read_ev;	 /* the handshake left records in OpenSSL's buffer */
	struct srv_req *pending; /* the request with the handler (or held), if any */
	bool counted;		 /* included in s->g->connections */
	bool dane;		 /* SRV_AUTH_DANE connection */
	bool handshake_done;
	bool failure_logged;
	bool kill_now;	    /* kill_ev closes at once (peer cap) */
	bool kill_armed;    /* kill_ev is pending (srv__clock_arm; srv__kill_cb clears it) */
	bool peer_counted;  /* admitted: counted in its identity's srv_group count */
	bool closing;	    /* closed (the bufferevent is being freed) */
	bool timing;	    /* a request (or the first, from the accept) is on the clock */
	bool rate_on;	    /* bytes of the current request arrived: min_rate applies */
	double t0;	    /* when the clock of the request started */
	double rate_t0;	    /* when its first byte arrived */
	size_t bytes;	    /* bytes of it since rate_t0 */
	size_t seen;	    /* input bytes the clock has counted (the input's length then) */
	/* HTTP/1.1 (srv_http.c) */
	llhttp_t parser;
	bool parsing;	    /* srv__http_parse is running (no recursion from srv_reply) */
	bool done;	    /* the request parsed is complete (on_message_complete) */
	bool head_done;	    /* its headers are complete */
	bool keep_alive;    /* llhttp_should_keep_alive of the request parsed */
	bool expect_100;    /* it asked "Expect: 100-continue" */
	bool hname_expect;  /* the header being parsed is Expect */
	bool sent_close;    /* an answer with "Connection: close" is queued: close once sent */
	bool eof;	    /* the peer ended its side: close once the answer is sent */
	bool line_done;	    /* reqline holds the whole request line */
	unsigned char method;
	unsigned char minor; /* HTTP/1.minor */
	int refuse;	     /* a status srv_http's callbacks refuse the request with, or 0 */
	const char *refuse_why;
	size_t head_bytes;   /* bytes of request line and headers so far */
	size_t hname_len;
	char hname[SRV_HNAME_MAX];
	char *url;	     /* the request target, url_len bytes (malloc'ed) */
	size_t url_len, url_cap;
	uint8_t *body;	     /* the body so far, body_len bytes (malloc'ed) */
	size_t body_len, body_cap;
	size_t line_len;
	char reqline[SRV_REQLINE_MAX]; /* the current request line, for refusal logs */
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

/* One identity's connections admitted under max_connections_per_peer (srv_group). */
struct srv_peer_count {
	char identity[SRV_IDENTITY_MAX];
	unsigned n;
};

/* What the srvs of several loops (props.share) have in common, under one lock: the TLS context
 * (swapped by a reload for every loop at once) and the connection limits. Each loop touches it
 * once per connection (accept, identity known, close), never per request. */
struct srv_group {
	pthread_mutex_t lock;
	unsigned refs;			/* srvs using it */
	SSL_CTX *ctx;
	unsigned connections;		/* counted against max_connections, over every loop */
	unsigned n_peers, cap_peers;
	struct srv_peer_count *peers;	/* admitted connections per identity (n > 0) */
};

struct srv {
	struct event_base *base;
	time_t date_t;	/* the second date[] is for */
	char date[40];	/* the Date header's value (srv_reply), made once a second */
	struct evconnlistener *listener; /* the TLS listener; NULL once it stopped accepting */
	struct evhttp *metrics_http;
	struct srv_group *g;
	struct srv_props props;
	unsigned in_flight;
	struct srv_auth_stats auth_stats;
	struct srv_conn_stats conn_stats;
	struct conn *conns;
	struct srv_req *reqs;
	struct event *wake_ev;
	pthread_mutex_t q_lock;
	bool q_lock_init;
	struct srv_call *q_head, *q_tail;
	struct srv_req *spare;	/* freed requests kept zeroed for reuse (srv.c req_new) */
	unsigned spare_n;
	bool q_running;	/* wake_cb is running the queued calls */
	double q_now;	/* the clock as it began (srv_now) */
};

/* srv.c */
/* srv__ssl_conn - the per-connection state of an SSL (NULL if none) */
struct conn *srv__ssl_conn(const SSL *ssl);
/* srv__conn_fill_addr - record the peer address of the connection's socket once */
void srv__conn_fill_addr(struct conn *c, evutil_socket_t fd);
/* srv__conn_addr - the address for logs */
const char *srv__conn_addr(const struct conn *c);

/* srv__bind_http - bind \p http to "HOST:PORT" (\p what names the setting in errors) */
int srv__bind_http(struct evhttp *http, const char *what, const char *addr,
		   struct evhttp_bound_socket **out, char *err, size_t errlen) DJ_MUSTCHECK;

/* srv__peer_take - count \p c against its identity's cap over every loop, if under \p cap;
 * *held: the identity's connections before it */
bool srv__peer_take(struct conn *c, unsigned cap, unsigned *held);
/* srv__peer_release - a connection admitted by srv__peer_admit is closing: uncount it */
void srv__peer_release(struct conn *c);
/* srv__request - a request of \p c is complete (srv_http.c): hand it to the handler, hold it
 * for the DANE check, or refuse it (405, a failed DANE check); \p now: the monotonic reading
 * taken as its last bytes arrived, or 0 (then it reads the clock) */
void srv__request(struct conn *c, double now);
/* srv__conn_close - close \p c now: a request with the handler is detached from it (its
 * answer is dropped), one held for the DANE check is freed; \p c is freed later */
void srv__conn_close(struct conn *c);

/* srv_http.c */
/* srv__http_start - HTTP/1.1 on c->bev: its callbacks, limits and timeouts; reading on */
void srv__http_start(struct conn *c);
/* srv__http_parse - parse what c's input holds, a request at a time, while none is pending;
 * \p now: the monotonic reading of the read callback that brought the bytes, or 0 (none taken:
 * read the clock when needed) */
void srv__http_parse(struct conn *c, double now);
/* srv__http_answer - queue the answer \p status with a JSON body (and \p extra header lines,
 * each ending in CRLF, or NULL); \p close: "Connection: close" and close once it is sent */
void srv__http_answer(struct conn *c, int status, const char *extra, const void *body,
		      size_t len, bool close);
/* srv__http_refuse - answer \p status (logged with \p why and the request line) and close */
void srv__http_refuse(struct conn *c, int status, const char *why);
/* srv__http_path - the path of the request target (up to '?' or '#'), malloc'ed */
char *srv__http_path(const char *url, size_t len);
/* srv__http_free - free what the parser of \p c holds */
void srv__http_free(struct conn *c);

/* srv_conn.c */
/* srv__clock_arm - check the request's clock again in SRV_TICK_S, or at its deadline */
void srv__clock_arm(struct conn *c, double now);
/* srv__clock_start - bytes of a request arrived: start its clock if it is not running */
void srv__clock_start(struct conn *c, double now);
/* srv__clock_bytes - \p n more bytes of the current request arrived */
void srv__clock_bytes(struct conn *c, size_t n);
/* srv__clock_stop - the request is complete: its clock stops */
void srv__clock_stop(struct conn *c);
/* srv__kill_cb - kill_ev: refuse an over-limit connection, or end one whose request missed
 * header_timeout or min_rate */
void srv__kill_cb(evutil_socket_t unused, short what, void *arg);
/* srv__peer_admit - the connection's identity is now known: false (and the connection is
 * being closed, logged, counted) when that identity holds max_connections_per_peer already */
bool srv__peer_admit(struct conn *c);
/* srv__read_cb - read_ev: read what read-ahead left after the handshake (srv_conn.c) */
void srv__read_cb(evutil_socket_t unused, short what, void *arg);

/* srv_auth.c */
/* srv__tls_ctx_new - the server context: TLS 1.3, our chain and key, client certificates
 * required (PKIX: chaining to \p ca_file; DANE: judged later by TLSA records) */
int srv__tls_ctx_new(enum srv_auth auth, unsigned clientid_ext, const char *cert_file,
		     const char *key_file, const char *ca_file, SSL_CTX **out, char *err,
		     size_t errlen) DJ_MUSTCHECK;
/* srv_sni.c */
/* srv__tls_ctx_build - srv__tls_ctx_new for the default certificate, plus one context per
 * \p sni entry, chosen by the servername callback */
int srv__tls_ctx_build(const struct srv_props *p, const char *cert_file, const char *key_file,
		       const char *ca_file, const struct srv_sni *sni, unsigned n_sni,
		       SSL_CTX **out, char *err, size_t errlen) DJ_MUSTCHECK;
/* srv__refusal_json - {"error": why the connection failed its DANE check} */
void srv__refusal_json(const struct conn *c, char *out, size_t outlen);

/* srv_metrics.c */
/* srv__metrics_listen - the plain-HTTP GET /metrics listener on s->props.metrics_addr */
int srv__metrics_listen(struct srv *s, char *err, size_t errlen) DJ_MUSTCHECK;

#endif /* DJ_JOINSERVER_BI_SRV_INTERNAL_H */
