/*
 * fuzz_http.c - libFuzzer target: the HTTP request path of the BI listener (bi/srv_http.c,
 * llhttp). The input is the byte stream of one client connection, served by srv's HTTP/1.1
 * layer with its limits (srv__http_start) and srv's own answers (srv__request: 405 but to
 * POST, which a handler answers 200); plain bytes over a socketpair, no TLS, no clock.
 * The loop runs until the server closes the connection or FUZZ_BOUND_MS pass.
 *
 * Invariants: no crash, leak or sanitizer report; a first request line that is not
 * "METHOD SP URI SP HTTP/d.d" is never answered 200; no request stays in flight.
 */
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>

#include "bi/srv.h"
#include "bi/srv_internal.h"
#include "common/dj_log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_BOUND_MS 500
#define FUZZ_OUT_MAX  65536
#define FUZZ_MAX_BODY 4096 /* small, so that 413 is reachable */

static struct event_base *base;
static struct srv srv_state;
static uint8_t out[FUZZ_OUT_MAX];
static size_t out_len;

static void no_log(int level, const char *line, void *arg)
{
	(void)level;
	(void)line;
	(void)arg;
}

/* handler - every POST is answered 200 at once */
static void handler(struct srv_req *r, void *arg)
{
	(void)arg;
	srv_reply(r, HTTP_OK, "{}", 2);
}

/* read_cb - the client side: collect the answers until the server closes */
static void read_cb(evutil_socket_t fd, short what, void *arg)
{
	ssize_t n;
	uint8_t sink[4096];

	(void)what;
	(void)arg;
	for (;;) {
		n = out_len < sizeof(out) ? read(fd, out + out_len, sizeof(out) - out_len)
					  : read(fd, sink, sizeof(sink));
		if (n > 0) {
			if (out_len < sizeof(out))
				out_len += (size_t)n;
			continue;
		}
		if (n == 0 || errno != EAGAIN)
			event_base_loopbreak(base); /* the server closed the connection */
		return;
	}
}

static void init(void)
{
	struct srv_props p = {.max_body = FUZZ_MAX_BODY, .idle_timeout = 1, .handler = handler};

	dj_log_set(no_log, NULL, 0);
	/* the server may write to a connection the client has reset, as danejoind does (srv.h) */
	signal(SIGPIPE, SIG_IGN);
	base = event_base_new();
	if (base == NULL)
		abort();
	srv_state.props = p;
	srv_state.base = base;
}

/* conn_open - the server side of a connection on \p fd, its peer identified */
static struct conn *conn_open(evutil_socket_t fd)
{
	struct conn *c = calloc(1, sizeof(*c));

	if (c == NULL)
		abort();
	c->s = &srv_state;
	c->vstate = V_OK;
	c->handshake_done = true;
	snprintf(c->identity, sizeof(c->identity), "fuzz.test");
	c->bev = bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (c->bev == NULL)
		abort();
	srv_state.conns = c;
	srv__http_start(c);
	return c;
}

/* well_formed - "METHOD SP URI SP HTTP/d.d" then CRLF or LF, with a method libevent knows */
static bool well_formed(const uint8_t *d, size_t n)
{
	static const char *const methods[] = {"GET",     "POST",  "HEAD",    "PUT",  "DELETE",
					      "OPTIONS", "TRACE", "CONNECT", "PATCH"};
	const uint8_t *eol = memchr(d, '\n', n), *sp1, *sp2;
	size_t len, i;
	bool known = false;

	if (eol == NULL)
		return false;
	len = (size_t)(eol - d);
	if (len > 0 && d[len - 1] == '\r')
		len--;
	sp1 = memchr(d, ' ', len);
	if (sp1 == NULL)
		return false;
	sp2 = memchr(sp1 + 1, ' ', len - (size_t)(sp1 + 1 - d));
	if (sp2 == NULL || sp2 == sp1 + 1 || memchr(sp2 + 1, ' ', len - (size_t)(sp2 + 1 - d)))
		return false; /* exactly three parts */
	for (i = 0; i < sizeof(methods) / sizeof(methods[0]); i++)
		known |= strlen(methods[i]) == (size_t)(sp1 - d) &&
			 memcmp(methods[i], d, (size_t)(sp1 - d)) == 0;
	len -= (size_t)(sp2 + 1 - d);
	return known && len >= 8 && memcmp(sp2 + 1, "HTTP/", 5) == 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct timeval bound = {.tv_sec = 0, .tv_usec = FUZZ_BOUND_MS * 1000};
	struct event *rev;
	struct conn *c;
	int sv[2];
	size_t off = 0;
	ssize_t n;

	if (base == NULL)
		init();
	out_len = 0;
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0 || evutil_make_socket_nonblocking(sv[0]) != 0 ||
	    evutil_make_socket_nonblocking(sv[1]) != 0)
		abort();
	c = conn_open(sv[0]);
	/* what fits the socket buffers now; the rest is not sent */
	while (off < size && (n = write(sv[1], data + off, size - off)) > 0)
		off += (size_t)n;
	if (off == size)
		shutdown(sv[1], SHUT_WR);
	rev = event_new(base, sv[1], EV_READ | EV_PERSIST, read_cb, NULL);
	event_add(rev, NULL);
	event_base_loopexit(base, &bound);
	event_base_dispatch(base);
	event_free(rev);
	close(sv[1]);
	c->s = &srv_state;
	srv__conn_close(c); /* if the server had not closed it */
	for (int i = 0; i < 4; i++)
		event_base_loop(base, EVLOOP_NONBLOCK);
	if (c->pending != NULL || srv_state.in_flight != 0)
		abort(); /* the handler answers at once: nothing may stay in flight */
	srv__http_free(c);
	free(c);

	if (getenv("FUZZ_HTTP_SHOW") != NULL) /* to see what the server answered an input */
		fwrite(out, 1, out_len, stderr);
	if (out_len >= 12 && memcmp(out, "HTTP/1.", 7) == 0 && memcmp(out + 9, "200", 3) == 0 &&
	    !well_formed(data, size))
		abort(); /* a malformed request line answered 200 */
	return 0;
}
