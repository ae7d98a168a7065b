/*
 * dc_client.h - the network-server / application-server side of the LoRaWAN Backend Interfaces
 * (TS002): one bi_msg POSTed to a join server over HTTPS with mutual TLS 1.3.
 *
 * SYNOPSIS
 *	struct dc_props p = { .url = "https://js.example:4430/", .cert_file = "ns.pem",
 *			      .key_file = "ns.key", .ca_file = "root.pem" };
 *	struct dc_client *c;
 *	struct bi_msg req = { ... }, ans;
 *	char err[DC_ERR_MAX];
 *
 *	if (dc_client_new(&p, &c, err, sizeof(err)) != DJ_EOK) ...
 *	if (dc_client_call(c, &req, &ans, err, sizeof(err)) != DJ_EOK) ...
 *	bi_msg_wipe(&ans);
 *	dc_client_free(c);
 *
 * DESCRIPTION
 *	A dc_client holds one TLS context and up to DC_CONNECTIONS_MAX HTTP/1.1 keep-alive
 *	connections to one join server URL, on one libevent event_base (its own, or the caller's).
 *	dc_client_call() is synchronous: it runs the event_base until the answer arrives or the
 *	timeout expires. dc_client_send() is the asynchronous form: many requests may be in flight
 *	over the connections (each connection carries one request at a time; further requests wait
 *	in its queue), and each completion is reported through a callback on the loop thread.
 *
 *	Security: TLS 1.3 only, and one of two ways to verify the server, never both, never a
 *	fallback from one to the other:
 *	- DANE (props.resolver set): the server's chain must match the DNSSEC-secure TLSA records
 *	  at tlsa_name (default "_<port>._tcp.<host>", RFC 6698 §3); DANE-TA also checks the host
 *	  name. Requests wait for the lookup (asynchronously); a lookup that is not secure fails
 *	  them with "DANE: TLSA <name>: <status>: <why>". The records are reused until their TTL
 *	  ends. clientid, when set, is sent in the dane_clientid extension.
 *	- PKIX (ca_file): the chain must reach a root in ca_file (the system trust store is never
 *	  loaded) and carry the expected name: the URL host, or server_name (RFC 6125 DNS-ID, or
 *	  an IP address).
 *	A certificate that fails verification fails the call with "TLS: certificate verify
 *	failed: REASON". The client authenticates with cert_file/key_file.
 *
 *	Answers may carry key envelopes; callers wipe them with bi_msg_wipe(). The library never
 *	prints and does not log key material.
 *
 *	Not thread-safe: a dc_client is used from one thread (its loop's).
 */
#ifndef DJ_CLIENT_DC_CLIENT_H
#define DJ_CLIENT_DC_CLIENT_H

#include <stddef.h>

#include <event2/event.h>

#include "bi/bi_msg.h"
#include "common/dj_compiler.h"

#define DC_ERR_MAX 512			/* room for any message this library writes */
#define DC_CONNECTIONS_MAX 1024
#define DC_TIMEOUT_MS_DEFAULT 10000	/* per request: connect, handshake, answer */
#define DC_BODY_MAX (64u << 10)		/* the largest answer body accepted (bytes) */

struct dc_client;
struct da_resolver;

struct dc_props {
	const char *url;		/* "https://HOST:PORT/" (path optional; "/" by default) */
	const char *cert_file;		/* our certificate chain, PEM */
	const char *key_file;		/* our private key, PEM */
	const char *ca_file;		/* PKIX: the roots the server must chain to, PEM */
	const char *server_name;	/* expected server name; NULL: the URL host */
	struct da_resolver *resolver;	/* DANE: borrowed, on \p base (required then) */
	const char *tlsa_name;		/* DANE: NULL: "_<port>._tcp.<server name>" */
	const char *clientid;		/* DANE: our identity for dane_clientid; NULL: not sent */
	unsigned clientid_ext;		/* DANE: its codepoint; 0: DA_CLIENTID_EXT_DEFAULT */
	unsigned timeout_ms;		/* 0: DC_TIMEOUT_MS_DEFAULT */
	unsigned connections;		/* keep-alive connections; 0: 1 */
	struct event_base *base;	/* borrowed; NULL: the client creates its own */
};

/*!
 * \brief Completion of dc_client_send(), on the loop thread.
 * \param rc   DJ_EOK (HTTP 200 and a valid body in \p ans; or HTTP 200 with an empty body, the
 *             TS002 asynchronous acceptance: then \p have_ans is 0), DJ_EIO (connection, TLS or HTTP
 *             failure; \p ans holds the parsed body if a non-200 answer had a valid one, see
 *             \p have_ans), DJ_EMALFORMED (a 200 answer whose body is not a valid message),
 *             DJ_ENOMEM.
 * \param ans  the answer, borrowed for the duration of the callback (wiped afterwards); valid
 *             when \p have_ans.
 * \param err  a one-line reason when rc != DJ_EOK, else "".
 */
typedef void (*dc_done_cb)(int rc, const struct bi_msg *ans, int have_ans, const char *err,
			   void *arg);

/*!
 * \brief Create a client: parse the URL, load the certificate, key and roots. No connection is
 *        opened until the first request.
 * \param p    borrowed; its strings are copied.
 * \param out  receives the client on success only; free with dc_client_free().
 * \param err  receives a one-line reason on failure.
 * \retval DJ_EOK
 * \retval DJ_EINVAL   bad URL (not https, no host, bad port) or bad props
 * \retval DJ_ECONFIG  certificate, key or CA file cannot be loaded or do not match
 * \retval DJ_ENOMEM, DJ_ECRYPTO
 */
int dc_client_new(const struct dc_props *p, struct dc_client **out, char *err,
		  size_t errlen) DJ_MUSTCHECK;

/*!
 * \brief Send \p req and wait for the answer (runs the event_base; do not call from inside a
 *        callback of the same base).
 * \param req  borrowed.
 * \param ans  receives the parsed answer on DJ_EOK, and on DJ_EIO when the HTTP status was not
 *             200 but the body was a valid message (*have_ans says so; may be NULL). The caller
 *             wipes it with bi_msg_wipe().
 * \retval DJ_EOK       HTTP 200 and a valid answer
 * \retval DJ_EIO       connection, TLS (err: "TLS: certificate verify failed: ...") or HTTP
 *                      failure (err: "HTTP 403: ...") or timeout
 * \retval DJ_EMALFORMED  HTTP 200 with a body that is not a valid message
 * \retval DJ_EINVAL    \p req cannot be encoded
 * \retval DJ_ENOMEM
 */
int dc_client_call(struct dc_client *c, const struct bi_msg *req, struct bi_msg *ans,
		   int *have_ans, char *err, size_t errlen) DJ_MUSTCHECK;

/*!
 * \brief Queue \p req on the next connection in turn that carries nothing (if every one carries
 *        a request, on the next in turn, where it waits for that answer) and return; \p cb runs
 *        once, on the loop thread, when it completes or fails. The caller runs the event_base.
 * \param req  borrowed; encoded before the call returns.
 * \retval DJ_EOK (cb will run), DJ_EINVAL (cannot encode), DJ_ENOMEM (cb will not run)
 */
int dc_client_send(struct dc_client *c, const struct bi_msg *req, dc_done_cb cb,
		   void *arg) DJ_MUSTCHECK;

/*!
 * \brief Benchmarks: like dc_client_send() but POST the bytes \p body as they are and check only
 *        the HTTP status: \p cb gets DJ_EOK for 200 (never an answer: have_ans is 0), else
 *        DJ_EIO. PKIX only (a DANE client refuses with DJ_EINVAL).
 */
int dc_client_send_raw(struct dc_client *c, const char *body, size_t len, dc_done_cb cb,
		       void *arg) DJ_MUSTCHECK;

/*! \brief The event_base the client runs on (its own or the one in the props). */
struct event_base *dc_client_base(struct dc_client *c);

/*!
 * \brief A new event loop for a client: precise timers (not the coarse clock, whose step is the
 *        kernel tick) and the epoll changelist. dc_client_new makes its own with this; a caller
 *        that brings its own loop (props.base) should make it so too.
 * \return the loop, or NULL when libevent cannot make one
 */
struct event_base *dc_base_new(void);

/*!
 * \brief Free a loop that carried clients, after they are freed: one non-blocking pass first,
 *        so that connections closed in its last pass release their buffers and TLS state.
 * \param base the loop (may be NULL); no other events of the caller may be pending on it
 */
void dc_base_free(struct event_base *base);

/*! \brief Requests sent and not yet completed. */
unsigned dc_client_in_flight(const struct dc_client *c);

/*!
 * \brief Close every connection and free (NULL is accepted). Requests still in flight complete
 *        with DJ_EIO ("cancelled") before this returns.
 */
void dc_client_free(struct dc_client *c);

#endif /* DJ_CLIENT_DC_CLIENT_H */
