/*
 * bi_tls.h - internals shared by the two HTTPS ends of the Backend Interfaces, the server
 *	      (srv*.c) and the client (dc_client.c). Not installed.
 *
 * DESCRIPTION
 *	Both ends speak the same TLS (DESIGN.md: mutual TLS 1.3 between every backend peer) over
 *	evhttp and bufferevent_openssl. What they share is here once: the context that carries our
 *	certificate and key with the protocol rules, the text of a TLSA verdict that refuses a peer,
 *	and the two socket habits that keep an answer in one TLS record and out of Nagle's delay.
 */
#ifndef DJ_JOINSERVER_BI_BI_TLS_H
#define DJ_JOINSERVER_BI_BI_TLS_H

#include <stdbool.h>
#include <stddef.h>

#include <event2/http.h>
#include <event2/util.h>
#include <openssl/ssl.h>

#include "backend-auth/da_dns.h"
#include "common/dj_compiler.h"

#define BI_TLS_JSON_TYPE "application/json"	/* TS002 §10: JSON over HTTP POST */

/* What bi_tls__ctx_new builds. */
struct bi_tls_ctx_props {
	bool server;		/* the server's method, else the client's */
	bool dane;		/* no roots at all: peers are judged by TLSA records (da_tls) */
	const char *cert_file;	/* our chain, PEM */
	const char *key_file;	/* its key, PEM */
	const char *cert_what;	/* how errors name them: "cert_file" / "cert" */
	const char *key_what;
};

/*!
 * \brief A TLS context with our chain and key, TLS 1.3 only, and nothing that resumes a session.
 *
 * Session caching and tickets are off, so every connection is verified in full (a peer whose
 * root or TLSA record went away cannot ride an earlier session); renegotiation is off. The
 * caller adds the verification (roots or DANE peers, callbacks) that differ between the ends.
 * \param out  the context, the caller's; written on success only.
 * \retval DJ_EOK, DJ_ECONFIG (a file, or a key that does not match), DJ_ECRYPTO; \p err says why.
 */
int bi_tls__ctx_new(const struct bi_tls_ctx_props *p, SSL_CTX **out, char *err,
		    size_t errlen) DJ_MUSTCHECK;

/*! \brief "TLSA NAME: STATUS[: WHY]": why a TLSA answer that is not DA_SECURE refuses a peer. */
void bi_tls__tlsa_why(const struct da_tlsa_set *set, const char *name, char *out, size_t len);

/*!
 * \brief Turn Nagle off on \p fd: evhttp writes headers and body as separate TLS records, and
 * Nagle with the peer's delayed ACK would hold the second ~40 ms.
 * \retval 0, or -1 with errno.
 */
int bi_tls__nodelay(evutil_socket_t fd);

/*!
 * \brief Make what \p evcon has queued one chain, so one TLS record and one write(): evhttp
 * queues headers and body as separate chains, which bufferevent_openssl writes as two.
 */
void bi_tls__one_record(struct evhttp_connection *evcon);

/* bi_tls__write_now - write what the connection's output holds in this loop pass (bi_tls.c) */
void bi_tls__write_now(struct evhttp_connection *evcon);
/* bi_tls__bev_write_now - the same for a bufferevent_openssl (srv_http.c) */
void bi_tls__bev_write_now(struct bufferevent *bev);

/*!
 * \brief With read-ahead on, TLS records OpenSSL has read from the socket but not decrypted
 * yet are invisible to bufferevent_openssl 2.1 (it asks SSL_pending, which counts decrypted
 * bytes only) and to epoll (the socket holds nothing). If \p bev's SSL holds such bytes
 * (SSL_has_pending), activate its read event, so they are read in this loop pass; its callback
 * reads only while EV_READ is enabled. Call it where a stall could start (bi_tls.c).
 */
void bi_tls__read_pending(struct bufferevent *bev);

#endif /* DJ_JOINSERVER_BI_BI_TLS_H */
