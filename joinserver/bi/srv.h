/*
 * srv.h - the HTTPS front of danejoind: HTTP/1.1 keep-alive (pipelining too) over TLS 1.3
 * with client certificates required, on a libevent loop.
 *
 * DESCRIPTION
 *	srv owns the listening socket, the TLS context, the connections and the limits (body size,
 *	header and idle timeouts, connection count). It authenticates each client and hands every
 *	POST to the handler with the peer's authenticated identity. The handler answers with
 *	srv_reply(), at once or later: an answer that waits for a durable commit is completed from
 *	another thread through srv_call_in_loop().
 *
 *	Peer verification has two modes (TLS 1.3 only, no session resumption, so every connection
 *	is verified in full):
 *	- SRV_AUTH_DANE (the default of danejoind): the client's identity is the name in its
 *	  dane_clientid extension or else the single SAN dNSName of its leaf; its certificate is
 *	  checked against the DNSSEC-secure TLSA records at that name (backend-auth/da_tls.h).
 *	  The TLSA lookup is asynchronous, so this check runs after the handshake: a request that
 *	  arrives before it ends waits; a connection that fails it gets 403 (503 when the DNS
 *	  could not answer) and is closed, and no request of it reaches the handler.
 *	- SRV_AUTH_PKIX: the chain must reach a root in client_ca_file; the identity is the single
 *	  SAN dNSName of the leaf. A certificate with none or several names is refused at the
 *	  handshake.
 *
 *	A second listener (metrics_addr, loopback by default) serves GET /metrics in the Prometheus
 *	text format from the text the metrics callback returns.
 *
 *	Everything runs on the loop thread of its srv except srv_call_in_loop() and
 *	srv_connections(); srvs on several loops share their limits and TLS context
 *	(srv_props.share).
 */
#ifndef DJ_JOINSERVER_BI_SRV_H
#define DJ_JOINSERVER_BI_SRV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>
#include <openssl/x509.h>

#include "common/dj_compiler.h"

#define SRV_IDENTITY_MAX 256
#define SRV_RATE_GRACE_S 1.0 /* seconds of a request before min_rate applies */

struct srv;
struct srv_req;
struct da_resolver;

enum srv_auth {
	SRV_AUTH_PKIX = 0, /* private roots in client_ca_file */
	SRV_AUTH_DANE = 1, /* TLSA records, DNSSEC-validated through props.resolver */
};

/* Counters of client authentication (DANE mode), for metrics. */
struct srv_auth_stats {
	unsigned long long ok, rejected, tempfail, held;
};

/* Counters of connections srv closed on its own, for metrics. */
struct srv_conn_stats {
	unsigned long long header_timeout; /* a request not complete within header_timeout */
	unsigned long long min_rate;	   /* a request slower than min_rate */
	unsigned long long peer_cap;	   /* over max_connections_per_peer */
	unsigned long long close_after;	   /* closed after one answer (srv_req_close_after) */
	unsigned long long http_refused;   /* refused by the HTTP layer (400, 413, 501) */
};

/* A certificate served instead of the default one to clients whose SNI is one of names
 * (srv_sni.c): exact host names, or "*.DOMAIN" for one label under DOMAIN. */
struct srv_sni {
	const char *what;		/* how errors name it: "[listen.sni.NAME]" */
	const char *cert_file;		/* its chain (PEM) */
	const char *key_file;		/* its key (PEM) */
	char *const *names;		/* n_names host names (borrowed; copied) */
	unsigned n_names;
};

struct srv_props {
	const char *listen_addr;	/* "HOST:PORT"; IPv6 as "[::1]:PORT" */
	const char *cert_file;		/* our certificate chain (PEM) */
	const char *key_file;		/* our private key (PEM) */
	const char *client_ca_file;	/* PKIX: roots that client certificates must chain to */
	const struct srv_sni *sni;	/* n_sni certificates chosen by SNI; read by srv_new only */
	unsigned n_sni;
	enum srv_auth auth;
	struct da_resolver *resolver;	/* DANE: borrowed, on the same loop; outlives the srv */
	unsigned clientid_ext;		/* DANE: dane_clientid codepoint; 0: ignore the extension */
	size_t max_body;		/* bytes; larger bodies get 413 */
	unsigned header_timeout;	/* seconds for a whole request, from its first byte (the
					 * first request: from the accept, handshake included) */
	unsigned min_rate;		/* bytes/s a request must average after a grace of
					 * SRV_RATE_GRACE_S; 0: no minimum */
	unsigned idle_timeout;		/* seconds a keep-alive connection may sit idle */
	unsigned max_connections;	/* further connections are closed at once */
	unsigned max_connections_per_peer; /* per authenticated identity; 0: the default,
					    * max(1, max_connections / 4) */
	const char *metrics_addr;	/* "HOST:PORT" or NULL for none */
	/* Several loops: each runs its own srv (on its own event_base and thread). The first is
	 * made with share NULL and reuseport true; each other one with share pointing at it. They
	 * share the TLS context (srv_reload_tls_sni on any of them swaps it for all) and the
	 * connection limits (max_connections, max_connections_per_peer count over all of them),
	 * and each listens on its own socket bound to listen_addr with SO_REUSEPORT. */
	struct srv *share;
	bool reuseport;
	/* called for each POST on the loop thread; must lead to exactly one srv_reply() */
	void (*handler)(struct srv_req *req, void *arg);
	/* returns the metrics text (malloc'ed; srv frees it); called on the loop thread */
	char *(*metrics)(void *arg);
	void *arg;
};

/*!
 * \brief A new event_base for a loop that runs a srv: epoll's changes coalesced per loop pass.
 *
 * bufferevent_openssl enables writing for each answer and disables it once the answer has
 * gone (reading stays enabled: srv_http.c). With EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST libevent
 * applies the net change of one pass with one epoll_ctl instead of one per enable/disable, and
 * the two of one answer written in its own pass cancel out (docs/performance.md, steps 2, 13). The program must not
 * add dup()ed descriptors to this base (libevent's caveat for the flag).
 * \return NULL when out of memory
 */
struct event_base *srv_base_new(void);

/*!
 * \brief Create the server on \p base: load certificates, bind both listeners.
 * \param err  receives a one-line reason on failure ("cert_file /x: no such file", "bind
 *             127.0.0.1:4430: address in use", …).
 * \retval DJ_EOK, DJ_ECONFIG (bad certificate/key/CA or address), DJ_EIO (bind), DJ_ENOMEM
 */
int srv_new(struct event_base *base, const struct srv_props *props, struct srv **out, char *err,
	    size_t errlen) DJ_MUSTCHECK;

/*! \brief Stop accepting; requests in flight still get their answers. */
void srv_stop_accepting(struct srv *s);

/*! \brief Number of requests handed to the handler and not yet answered. */
unsigned srv_in_flight(const struct srv *s);

/*! \brief Number of connections with answer bytes not yet written to their socket. */
unsigned srv_unsent(const struct srv *s);

/*! \brief Number of open client connections (of every srv sharing this one's limits). */
unsigned srv_connections(const struct srv *s);

/*! \brief Client authentication counters (all zero in PKIX mode). */
void srv_auth_stats(const struct srv *s, struct srv_auth_stats *out);

/*! \brief Counters of connections closed by srv itself. */
void srv_conn_stats(const struct srv *s, struct srv_conn_stats *out);

/*! \brief Close everything and free (NULL is accepted). */
void srv_free(struct srv *s);

/*!
 * \brief Reload the TLS material (certificate, key, client roots) for new connections; existing
 *        connections keep theirs. On failure nothing changes.
 */
int srv_reload_tls(struct srv *s, const char *cert_file, const char *key_file,
		   const char *client_ca_file, char *err, size_t errlen) DJ_MUSTCHECK;

/*!
 * \brief srv_reload_tls, with the certificates chosen by SNI (\p sni, \p n_sni borrowed;
 *        none: only the default certificate is served from now on). On failure nothing
 *        changes.
 */
int srv_reload_tls_sni(struct srv *s, const char *cert_file, const char *key_file,
		       const char *client_ca_file, const struct srv_sni *sni, unsigned n_sni,
		       char *err, size_t errlen) DJ_MUSTCHECK;

/*! \brief The authenticated identity of the request's peer (never NULL, never empty): in DANE
 *         mode the TLSA owner name it was verified at, e.g. "_ns-client.ns1.example.net". */
const char *srv_req_peer(const struct srv_req *r);

/*! \brief The leaf certificate the request's peer presented (borrowed, valid while \p r is;
 *         NULL when the connection is gone). For the management API's view of peers. */
X509 *srv_req_peer_cert(const struct srv_req *r);

/*! \brief The request path ("/" or whatever the client posted to). */
const char *srv_req_path(const struct srv_req *r);

/*! \brief The request body (not NUL-terminated) and its length. */
const uint8_t *srv_req_body(const struct srv_req *r, size_t *len);

/*! \brief Monotonic time (seconds, double) when the request was complete (its last bytes
 * read), for latency. */
double srv_req_started(const struct srv_req *r);

/*!
 * \brief Monotonic time (seconds, double; dj_clock_mono_s) for latency: in a srv_call_in_loop
 * callback, the one reading taken as the loop began running the calls queued (the calls of
 * one pass run back to back: a later one's time is early by the run time of those before it,
 * some microseconds each); elsewhere a fresh reading.
 */
double srv_now(const struct srv *s);

/*!
 * \brief Close the connection once the answer to \p r is sent ("Connection: close"), e.g.
 *        for a peer that is authenticated but not configured: it gets one answer, not a
 *        connection to hold. Counted in srv_conn_stats.close_after.
 */
void srv_req_close_after(struct srv_req *r);

/*!
 * \brief Answer: status and a body with Content-Type application/json. Frees \p r. The body is
 *        copied (the caller wipes its own copy if it held keys).
 */
void srv_reply(struct srv_req *r, int status, const char *json, size_t len);

/*!
 * \brief Storage for one srv_call_in_loop_at(): the caller's, untouched by it from the call until
 *        fn starts (fn may then free or reuse it). Its fields are srv's.
 */
struct srv_call {
	void (*fn)(void *arg);
	void *arg;
	struct srv_call *next;
	bool owned;		/* srv_call_in_loop()'s own allocation: freed after fn */
};

/*!
 * \brief Run \p fn(\p arg) on the loop thread soon. Thread-safe, as srv_call_in_loop_at() is;
 *        the only srv calls that are.
 * \retval DJ_EOK, DJ_ENOMEM
 */
int srv_call_in_loop(struct srv *s, void (*fn)(void *arg), void *arg) DJ_MUSTCHECK;

/*!
 * \brief srv_call_in_loop() in the caller's storage \p c: cannot fail (the committer hands each
 *        finished JoinReq back this way, in the request's own srv_call). Calls still queued
 *        when the srv is freed are dropped, not run.
 */
void srv_call_in_loop_at(struct srv *s, struct srv_call *c, void (*fn)(void *arg), void *arg);

#endif /* DJ_JOINSERVER_BI_SRV_H */
