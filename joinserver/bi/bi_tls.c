/*
 * bi_tls.c - the TLS both HTTPS ends of the Backend Interfaces share (bi_tls.h).
 *
 * SECURITY
 *	TLS 1.3 only (RFC 8446; DESIGN.md: every backend peer speaks mutual TLS 1.3), so no
 *	renegotiation and no static-RSA key exchange. Session caching and tickets are off on both
 *	ends, and a server sends zero tickets: no connection is ever resumed on the strength of an
 *	earlier verification. With DANE the context has no roots at all, so nothing but the TLSA
 *	records can vouch for a peer (no public CA, no default verify paths).
 */
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/bufferevent_struct.h>
#include <event2/event.h>
#include <openssl/err.h>

#include "backend-auth/da_tls.h"
#include "bi/bi_tls.h"
#include "common/dj_err.h"
#include "common/dj_log.h"

int bi_tls__ctx_new(const struct bi_tls_ctx_props *p, SSL_CTX **out, char *err, size_t errlen)
{
	SSL_CTX *ctx = NULL;
	int ret = DJ_ECRYPTO;

	*out = NULL;
	ERR_clear_error();
	ctx = SSL_CTX_new(p->server ? TLS_server_method() : TLS_client_method());
	if (ctx == NULL) {
		dj_errbuf(err, errlen, "TLS: %s", dj_openssl_reason());
		goto out;
	}
	if (SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) != 1 ||
	    SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION) != 1) {
		dj_errbuf(err, errlen, "TLS: cannot restrict to TLS 1.3: %s", dj_openssl_reason());
		goto out;
	}
	SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET | SSL_OP_NO_RENEGOTIATION);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	if (SSL_CTX_set_num_tickets(ctx, 0) != 1) {
		dj_errbuf(err, errlen, "SSL_CTX_set_num_tickets: %s", dj_openssl_reason());
		goto out;
	}
	ret = DJ_ECONFIG;
	if (SSL_CTX_use_certificate_chain_file(ctx, p->cert_file) != 1) {
		dj_errbuf(err, errlen, "%s %s: %s", p->cert_what, p->cert_file,
			  dj_openssl_reason());
		goto out;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, p->key_file, SSL_FILETYPE_PEM) != 1) {
		dj_errbuf(err, errlen, "%s %s: %s", p->key_what, p->key_file, dj_openssl_reason());
		goto out;
	}
	if (SSL_CTX_check_private_key(ctx) != 1) {
		dj_errbuf(err, errlen, "%s %s: does not match %s %s", p->key_what, p->key_file,
			  p->cert_what, p->cert_file);
		ERR_clear_error();
		goto out;
	}
	if (p->dane && da_tls_ctx_enable(ctx) != DJ_EOK) {
		ret = DJ_ECRYPTO;
		dj_errbuf(err, errlen, "TLS: cannot enable DANE");
		goto out;
	}
	*out = ctx;
	ctx = NULL;
	ret = DJ_EOK;
out:
	SSL_CTX_free(ctx);
	return ret;
}

void bi_tls__tlsa_why(const struct da_tlsa_set *set, const char *name, char *out, size_t len)
{
	snprintf(out, len, "TLSA %s: %s%s%s", name, da_status_str(set->status),
		 set->why != NULL ? ": " : "", set->why != NULL ? set->why : "");
}

int bi_tls__nodelay(evutil_socket_t fd)
{
	int on = 1;

	return setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
}

void bi_tls__one_record(struct evhttp_connection *evcon)
{
	struct bufferevent *bev = evcon != NULL ? evhttp_connection_get_bufferevent(evcon) : NULL;

	if (bev != NULL)
		(void)evbuffer_pullup(bufferevent_get_output(bev), -1);
}

/*
 * bufferevent_openssl 2.1 writes only when epoll reports the socket writable, one loop pass
 * later, and its flush is a stub. Activating its write event runs the write in this pass, and
 * with the epoll changelist (srv_base_new) the pass's enable and disable of EV_WRITE cancel
 * out: one epoll_ctl fewer per answer. If the socket cannot take the record, SSL_write wants
 * to write and the event stays pending, as before. The event is the bufferevent's own
 * (event2/bufferevent_struct.h, libevent 2.1's public layout): deleting it when the connection
 * goes also takes it off the active queue.
 */
void bi_tls__write_now(struct evhttp_connection *evcon)
{
	bi_tls__bev_write_now(evcon != NULL ? evhttp_connection_get_bufferevent(evcon) : NULL);
}

void bi_tls__bev_write_now(struct bufferevent *bev)
{
	if (bev != NULL && evbuffer_get_length(bufferevent_get_output(bev)) > 0 &&
	    event_pending(&bev->ev_write, EV_WRITE, NULL))
		event_active(&bev->ev_write, EV_WRITE, 1);
}

/*
 * Read-ahead (srv.c ssl_new) lets one read() take every record the socket holds, but
 * bufferevent_openssl 2.1 decrypts one record per consider_reading unless SSL_pending (the
 * decrypted bytes left) says more: the next records stay in OpenSSL's buffer while epoll sees
 * an empty socket. Activating the read event runs consider_reading again in this pass; while
 * EV_READ is disabled it reads nothing and takes the event off again (the same event as
 * bi_tls__write_now's neighbour, so freeing the connection takes it off the active queue).
 */
void bi_tls__read_pending(struct bufferevent *bev)
{
	SSL *ssl = bev != NULL ? bufferevent_openssl_get_ssl(bev) : NULL;

	if (ssl != NULL && SSL_has_pending(ssl))
		event_active(&bev->ev_read, EV_READ, 1);
}
