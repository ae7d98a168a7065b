/*
 * listen.c - danejoin-client listen: the receiving end of asynchronous answers (TS002 §8).
 *
 * A join server configured with async_url for a peer answers each request with an empty HTTP
 * 200 and POSTs the answer later. This command is that POST's receiver, for tests and for
 * integrators: an HTTPS server (srv, the join server's own front) with client certificates
 * required, which answers every POST with an empty 200 and prints its body as one JSON line on
 * stdout.
 *
 * Security reasoning: the sender is authenticated exactly as danejoind authenticates its
 * clients (TLS 1.3, a client certificate chaining to --ca, a single SAN dNSName); a body that
 * is not a Backend Interfaces message gets HTTP 400 and is not printed. Answers carry key
 * envelopes: they are printed as received (wrapped, or plain for a plain_keys peer), and the
 * parsed copy is wiped; the body itself is srv's, freed with the request.
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include <event2/event.h>
#include <event2/thread.h>

#include <openssl/crypto.h>

#include "backend-auth/da_tls.h"
#include "common/dj_err.h"
#include "exec.h"
#include "bi/srv.h"

#define HTTP_OK 200
#define HTTP_BAD_REQUEST 400
#define LISTEN_HEADER_TIMEOUT 10	/* seconds for a handshake and a request */
#define LISTEN_IDLE_TIMEOUT 60		/* seconds a keep-alive connection may idle */
#define LISTEN_MAX_CONN 64
#define LISTEN_LINGER_MS 200		/* after the last message: let its 200 reach the sender */
#define LISTEN_NSIGS 2

/* listen_state - one run of the command */
struct listen_state {
	struct event_base *base;
	unsigned count;			/* stop after this many messages; 0: never */
	unsigned seen;
	int ret;			/* the exit code */
};

/* on_post - srv handler: one POSTed message, printed and acknowledged */
static void on_post(struct srv_req *req, void *arg)
{
	struct listen_state *ls = arg;
	struct timeval linger = { 0, LISTEN_LINGER_MS * 1000 };
	struct bi_msg m;
	const uint8_t *body;
	char err[BI_ERR_MAX] = "";
	size_t len = 0;
	int rc;

	if (ls->count != 0 && ls->seen >= ls->count) {	/* the linger after the last one */
		srv_reply(req, HTTP_BAD_REQUEST, "{\"error\":\"shutting down\"}",
			  sizeof("{\"error\":\"shutting down\"}") - 1);
		return;
	}
	body = srv_req_body(req, &len);
	rc = bi_msg_parse((const char *)body, len, &m, err, sizeof(err));
	if (rc != DJ_EOK) {
		fprintf(stderr, "%s: from %s: not a Backend Interfaces message: %s\n", DC_PROGRAM,
			srv_req_peer(req), err);
		srv_reply(req, HTTP_BAD_REQUEST, "{\"error\":\"malformed message\"}",
			  sizeof("{\"error\":\"malformed message\"}") - 1);
		bi_msg_wipe(&m);
		return;
	}
	rc = exec__print(&m);	/* one line, flushed */
	bi_msg_wipe(&m);
	/* acknowledged with an empty 200, as TS002 §8 has the receiver of an async answer do */
	srv_reply(req, HTTP_OK, "", 0);
	if (rc != DC_EXIT_OK) {
		ls->ret = rc;
		event_base_loopexit(ls->base, NULL);
		return;
	}
	ls->seen++;
	if (ls->count != 0 && ls->seen == ls->count)
		event_base_loopexit(ls->base, &linger);
}

/* on_signal - SIGTERM/SIGINT: stop, exit 0 */
static void on_signal(evutil_socket_t sig, short what, void *arg)
{
	struct listen_state *ls = arg;

	(void)sig;
	(void)what;
	event_base_loopexit(ls->base, NULL);
}

int exec__listen(const struct dc_params *p)
{
	const int sigs[LISTEN_NSIGS] = { SIGTERM, SIGINT };
	struct event *evs[LISTEN_NSIGS] = { NULL, NULL };
	struct listen_state ls = { .count = p->count, .ret = DC_EXIT_INTERNAL };
	struct srv_props sp;
	struct srv *s = NULL;
	struct event_base *own_base = NULL;
	char err[DC_ERR_MAX] = "";
	int rc, ret = DC_EXIT_INTERNAL;

	signal(SIGPIPE, SIG_IGN);	/* srv.h: OpenSSL writes with plain send() */
	memset(&sp, 0, sizeof(sp));
	if (evthread_use_pthreads() != 0) {
		fprintf(stderr, "%s: cannot create the event loop\n", DC_PROGRAM);
		goto out;
	}
	if (p->ca == NULL) {
		/* DANE: the senders are judged by their TLSA records; the loop is exec's */
		ret = exec__dane(p, &ls.base, &sp.resolver);
		if (ret != DC_EXIT_OK)
			goto out;
		ret = DC_EXIT_INTERNAL;
		sp.auth = SRV_AUTH_DANE;
		sp.clientid_ext = p->clientid_ext != 0 ? p->clientid_ext : DA_CLIENTID_EXT_DEFAULT;
	} else if ((ls.base = own_base = event_base_new()) == NULL) {
		fprintf(stderr, "%s: cannot create the event loop\n", DC_PROGRAM);
		goto out;
	}
	sp.listen_addr = p->listen_addr;
	sp.cert_file = p->cert;
	sp.key_file = p->key;
	sp.client_ca_file = p->ca;
	sp.max_body = DC_BODY_MAX;
	sp.header_timeout = LISTEN_HEADER_TIMEOUT;
	sp.idle_timeout = LISTEN_IDLE_TIMEOUT;
	sp.max_connections = LISTEN_MAX_CONN;
	sp.handler = on_post;
	sp.arg = &ls;
	rc = srv_new(ls.base, &sp, &s, err, sizeof(err));
	if (rc != DJ_EOK) {
		fprintf(stderr, "%s: %s\n", DC_PROGRAM, err[0] ? err : dj_strerror(rc));
		ret = rc == DJ_ECONFIG ? DC_EXIT_INPUT : rc == DJ_EIO ? DC_EXIT_CONN
								 : DC_EXIT_INTERNAL;
		goto out;
	}
	for (int i = 0; i < LISTEN_NSIGS; i++) {
		evs[i] = evsignal_new(ls.base, sigs[i], on_signal, &ls);
		if (evs[i] == NULL || event_add(evs[i], NULL) != 0)
			goto out;
	}
	ls.ret = DC_EXIT_OK;
	fprintf(stderr, "%s: listening on %s\n", DC_PROGRAM, p->listen_addr);
	if (event_base_dispatch(ls.base) < 0)
		goto out;
	ret = ls.ret;
out:
	for (int i = 0; i < LISTEN_NSIGS; i++)
		if (evs[i] != NULL)
			event_free(evs[i]);
	srv_free(s);
	if (own_base != NULL)
		event_base_free(own_base);
	return ret;
}
