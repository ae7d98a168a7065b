/*
 * fuzz_http.c - libFuzzer target: the HTTP request path as libevent sees it. The input is the
 * byte stream of one client connection to an evhttp server with srv's limits
 * (srv__http_limits) and srv's watch on the connection's buffers (srv__conn_watch: request
 * clock, request line, refusals of the parser, a bad chunk's 413 made a 400); plain TCP, no TLS.
 *
 * libevent 2.1 cannot be handed a connected socket (evhttp_get_request is private), so the
 * connection is a real one to a loopback listener, closed with RST (no TIME_WAIT pile-up).
 * The loop runs until the server closes the connection or FUZZ_BOUND_MS pass.
 *
 * Invariants: no crash, leak or sanitizer report; a first request line that is not
 * "METHOD SP URI SP HTTP/d.d" is never answered 200.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
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
static struct evhttp *http;
static struct sockaddr_in laddr;
static struct srv srv_state;
static struct conn conn_state; /* one connection per run */
static uint8_t out[FUZZ_OUT_MAX];
static size_t out_len;

static void no_log(int level, const char *line, void *arg)
{
	(void)level;
	(void)line;
	(void)arg;
}

/* bevcb - a plain bufferevent, watched the way srv watches its TLS ones */
static struct bufferevent *bevcb(struct event_base *b, void *arg)
{
	struct bufferevent *bev = bufferevent_socket_new(b, -1, BEV_OPT_CLOSE_ON_FREE);

	(void)arg;
	if (bev == NULL)
		abort();
	memset(&conn_state, 0, sizeof(conn_state));
	conn_state.s = &srv_state;
	conn_state.bev = bev;
	conn_state.vstate = V_OK;
	srv__conn_watch(&conn_state);
	return bev;
}

/* gencb - srv's answers without the handler: 400 for a bad line (srv__line_ok), 405 but
 * to POST, which gets 200 */
static void gencb(struct evhttp_request *req, void *arg)
{
	(void)arg;
	conn_state.ours = true;
	evbuffer_add(evhttp_request_get_output_buffer(req), "{}", 2);
	if (!srv__line_ok(&conn_state, evhttp_request_get_uri(req)))
		evhttp_send_reply(req, HTTP_BADREQUEST, NULL, NULL);
	else if (evhttp_request_get_command(req) == EVHTTP_REQ_POST)
		evhttp_send_reply(req, HTTP_OK, NULL, NULL);
	else
		evhttp_send_reply(req, HTTP_BADMETHOD, NULL, NULL);
	conn_state.ours = false;
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
	struct srv_props p = {.max_body = FUZZ_MAX_BODY, .idle_timeout = 1};
	socklen_t len = sizeof(laddr);
	evutil_socket_t lfd;

	dj_log_set(no_log, NULL, 0);
	/* the server may write to a connection the client has reset, as danejoind does (srv.h) */
	signal(SIGPIPE, SIG_IGN);
	base = event_base_new();
	http = base != NULL ? evhttp_new(base) : NULL;
	lfd = socket(AF_INET, SOCK_STREAM, 0);
	if (http == NULL || lfd < 0)
		abort();
	memset(&laddr, 0, sizeof(laddr));
	laddr.sin_family = AF_INET;
	laddr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(lfd, (struct sockaddr *)&laddr, sizeof(laddr)) != 0 || listen(lfd, 16) != 0 ||
	    getsockname(lfd, (struct sockaddr *)&laddr, &len) != 0 ||
	    evutil_make_socket_nonblocking(lfd) != 0 || evhttp_accept_socket(http, lfd) != 0)
		abort();
	srv_state.props = p;
	srv_state.base = base;
	srv__http_limits(http, &p);
	evhttp_set_bevcb(http, bevcb, NULL);
	evhttp_set_gencb(http, gencb, NULL);
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
	struct linger rst = {.l_onoff = 1, .l_linger = 0};
	struct timeval bound = {.tv_sec = 0, .tv_usec = FUZZ_BOUND_MS * 1000};
	struct event *rev;
	evutil_socket_t fd;
	size_t off = 0;
	ssize_t n;

	if (base == NULL)
		init();
	out_len = 0;
	fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&laddr, sizeof(laddr)) != 0)
		abort();
	setsockopt(fd, SOL_SOCKET, SO_LINGER, &rst, sizeof(rst));
	evutil_make_socket_nonblocking(fd);
	/* what fits the socket buffers now; the rest after the loop has drained some */
	while (off < size && (n = write(fd, data + off, size - off)) > 0)
		off += (size_t)n;
	if (off == size)
		shutdown(fd, SHUT_WR);
	rev = event_new(base, fd, EV_READ | EV_PERSIST, read_cb, NULL);
	event_add(rev, NULL);
	event_base_loopexit(base, &bound);
	event_base_dispatch(base);
	event_free(rev);
	close(fd); /* RST: the server side ends now if it had not */
	for (int i = 0; i < 4; i++)
		event_base_loop(base, EVLOOP_NONBLOCK);

	if (getenv("FUZZ_HTTP_SHOW") != NULL) /* to see what the server answered an input */
		fwrite(out, 1, out_len, stderr);
	if (out_len >= 12 && memcmp(out, "HTTP/1.", 7) == 0 && memcmp(out + 9, "200", 3) == 0 &&
	    !well_formed(data, size))
		abort(); /* a malformed request line answered 200 */
	return 0;
}
