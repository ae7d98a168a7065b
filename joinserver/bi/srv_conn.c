/*
 * srv_conn.c - what srv watches on a connection: the clock of each request (header_timeout
 * for the whole request from its first byte, min_rate), the per-identity connection cap, and
 * the refusals libevent's HTTP parser makes on its own (logged once, a bad chunk's 413 made a
 * 400). The listeners, connections and requests themselves: srv.c.
 *
 * LIBEVENT 2.1 NOTES
 *	- evhttp times each read (idle_timeout), never a whole request, and has no callback at
 *	  the start of a request. srv therefore watches the bufferevent's input buffer
 *	  (evbuffer_add_cb): its callbacks run as decrypted bytes are added, before evhttp's read
 *	  callback parses them. The first byte of a request starts its clock; gencb stops it.
 *	- evhttp answers malformed requests (400), unknown methods (501) and large bodies (413)
 *	  without telling the program. The output buffer is watched as well: an answer written
 *	  while srv itself is not answering (conn.ours) is such a refusal.
 *	- evhttp answers 413 to a chunk size it cannot parse too. The line it failed on is the
 *	  last one it consumed; srv keeps the last bytes received (conn.tail) to find it, and
 *	  rewrites the status in place to a 400 of the same length.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>

#include "bi/bi_tls.h"
#include "bi/srv.h"
#include "bi/srv_internal.h"
#include "common/dj_clock.h"
#include "common/dj_log.h"

/* libevent's 413 status text, and the 400 of the same length that replaces it for a bad chunk */
#define SRV_413_TEXT	   "413 Request Entity Too Large"
#define SRV_400_CHUNK_TEXT "400 Bad Request (chunk size)"

/* conn_kill - close the connection now: evhttp owns the socket, so shut it down and let
 * evhttp see EOF and free the connection */
static void conn_kill(struct conn *c)
{
	evutil_socket_t fd = bufferevent_getfd(c->bev);

	c->closing = true;
	c->timing = false;
	c->failure_logged = true;
	srv__peer_release(c);	/* a closing connection holds no slot of its identity */
	if (fd >= 0)
		shutdown(fd, SHUT_RDWR);
}

/* srv__clock_arm - check the request's clock again in SRV_TICK_S, or at its deadline if sooner */
void srv__clock_arm(struct conn *c, double now)
{
	double left = c->t0 + (double)c->s->props.header_timeout - now;
	struct timeval tv;

	if (left > SRV_TICK_S)
		left = SRV_TICK_S;
	if (left < 0)
		left = 0;
	tv.tv_sec = (time_t)left;
	tv.tv_usec = (suseconds_t)((left - (double)tv.tv_sec) * 1e6);
	event_add(c->kill_ev, &tv);
}

/* srv__kill_cb - refuse an over-limit connection, or end one whose request missed header_timeout
 * or min_rate; otherwise look again later */
void srv__kill_cb(evutil_socket_t unused, short what, void *arg)
{
	struct conn *c = arg;
	struct srv *s = c->s;
	double now = dj_clock_mono_s(), took;

	(void)unused;
	(void)what;
	if (c->closing || s == NULL)
		return;
	srv__conn_fill_addr(c, bufferevent_getfd(c->bev));
	if (c->refused) {
		dj_warn("connection from %s refused: max_connections reached", srv__conn_addr(c));
		conn_kill(c);
		return;
	}
	if (c->kill_now) {
		conn_kill(c); /* srv__peer_admit logged it */
		return;
	}
	if (!c->timing)
		return;
	if (c->pending != NULL) {
		/* we owe an answer: bytes that came meanwhile (pipelined) start their clock after */
		c->t0 = c->rate_t0 = now;
		c->bytes = 0;
		srv__clock_arm(c, now);
		return;
	}
	took = now - c->t0;
	if (took >= (double)s->props.header_timeout) {
		if (c->vstate == V_FAILED)
			; /* the DANE check said why already */
		else if (c->rate_on)
			dj_warn("connection from %s closed: request not complete within "
				"header_timeout (%u s; %zu bytes so far)",
				srv__conn_addr(c), s->props.header_timeout, c->bytes);
		else
			dj_info("connection from %s: no request within header_timeout",
				srv__conn_addr(c));
		s->conn_stats.header_timeout++;
		conn_kill(c);
		return;
	}
	took = now - c->rate_t0;
	if (c->rate_on && s->props.min_rate > 0 && took >= SRV_RATE_GRACE_S &&
	    (double)c->bytes < (double)s->props.min_rate * took) {
		dj_warn("connection from %s closed: request slower than min_rate (%zu bytes in "
			"%.1f s; min_rate %u B/s)",
			srv__conn_addr(c), c->bytes, took, s->props.min_rate);
		s->conn_stats.min_rate++;
		conn_kill(c);
		return;
	}
	srv__clock_arm(c, now);
}

/* tail_keep - keep the last SRV_TAIL_MAX bytes received (after \p info's addition) */
static void tail_keep(struct conn *c, struct evbuffer *buf, const struct evbuffer_cb_info *info)
{
	struct evbuffer_ptr pos;
	size_t n = info->n_added, drop;

	if (n > sizeof(c->tail)) {
		n = sizeof(c->tail);
		c->tail_len = 0;
	}
	if (c->tail_len + n > sizeof(c->tail)) {
		drop = c->tail_len + n - sizeof(c->tail);
		memmove(c->tail, c->tail + drop, c->tail_len - drop);
		c->tail_len -= drop;
	}
	if (evbuffer_ptr_set(buf, &pos, info->orig_size + info->n_added - n, EVBUFFER_PTR_SET) != 0 ||
	    evbuffer_copyout_from(buf, &pos, c->tail + c->tail_len, n) != (ev_ssize_t)n) {
		c->tail_len = 0; /* unknown from here on: no guess */
		return;
	}
	c->tail_len += n;
}

/*
 * bad_chunk - whether libevent's 413 is for a chunk size line it could not parse (libevent 2.1
 * answers both with 413). The line it failed on is the last it consumed: it ends where the
 * input buffer now begins, \p unread bytes before the newest byte received. Parsed as
 * libevent does (evhttp_handle_chunked_read); a valid size is a real 413.
 */
static bool bad_chunk(const struct conn *c, size_t unread)
{
	char line[SRV_TAIL_MAX + 1], *end;
	size_t e, b, n;
	long long v;

	if (unread > c->tail_len)
		return false;
	e = c->tail_len - unread;
	if (e < 2 || c->tail[e - 1] != '\n')
		return false;
	n = e - 1;
	if (c->tail[n - 1] == '\r')
		n--;
	for (b = n; b > 0 && c->tail[b - 1] != '\n'; b--)
		;
	if (b == 0 || b == n)
		return false; /* the line began before what we kept, or it is the blank one */
	memcpy(line, c->tail + b, n - b);
	line[n - b] = '\0';
	errno = 0;
	v = strtoll(line, &end, 16);
	return errno != 0 || (*end != '\0' && *end != ' ') || v < 0;
}

/* patch - overwrite the first \p old after \p from in \p buf with \p neu (same length) */
static void patch(struct evbuffer *buf, size_t from, const char *old, const char *neu)
{
	struct evbuffer_ptr start, at;
	struct evbuffer_iovec v[4];
	size_t len = strlen(old), k = 0;
	int n;

	if (evbuffer_ptr_set(buf, &start, from, EVBUFFER_PTR_SET) != 0)
		return;
	at = evbuffer_search(buf, old, len, &start);
	if (at.pos < 0)
		return;
	n = evbuffer_peek(buf, (ev_ssize_t)len, &at, v, 4);
	for (int i = 0; i < n && i < 4 && k < len; i++)
		for (size_t j = 0; j < v[i].iov_len && k < len; j++)
			((char *)v[i].iov_base)[j] = neu[k++];
}

/*
 * line_scan - follow the request line through the bytes just added: keep its start (printable)
 * for the logs, and note what libevent would let through but has no place there: a control
 * character (NUL included, where libevent's C strings cut the line), a CR not before LF, a
 * byte over 0x7e, or other than two spaces (libevent takes "POST / x HTTP/1.1" and
 * "POST / HTTP/1.1 ")
 */
static void line_scan(struct conn *c, struct evbuffer *buf, const struct evbuffer_cb_info *info)
{
	struct evbuffer_ptr pos;
	unsigned char chunk[SRV_TAIL_MAX];
	size_t done = 0, n;

	if (c->line_done ||
	    evbuffer_ptr_set(buf, &pos, info->orig_size, EVBUFFER_PTR_SET) != 0)
		return;
	while (!c->line_done && done < info->n_added) {
		n = info->n_added - done < sizeof(chunk) ? info->n_added - done : sizeof(chunk);
		if (evbuffer_copyout_from(buf, &pos, chunk, n) != (ev_ssize_t)n ||
		    evbuffer_ptr_set(buf, &pos, n, EVBUFFER_PTR_ADD) != 0)
			return;
		done += n;
		for (size_t i = 0; i < n && !c->line_done; i++) {
			if (chunk[i] == '\n' && c->line_len == 0 && !c->line_bad) {
				c->line_cr = false; /* an empty line before the request: skipped */
				continue;
			}
			if (chunk[i] == '\n') {
				/* "METHOD SP TARGET SP VERSION", nothing more */
				c->line_bad |= c->line_spaces != 2;
				c->line_done = true;
				break;
			}
			c->line_spaces += chunk[i] == ' ';
			if (c->line_cr)
				c->line_bad = true; /* a CR inside the line */
			c->line_cr = chunk[i] == '\r';
			if (c->line_cr)
				continue;
			if (chunk[i] < 0x20 || chunk[i] >= 0x7f)
				c->line_bad = true;
			if (c->line_len < sizeof(c->reqline) - 1)
				c->reqline[c->line_len++] =
					chunk[i] < 0x20 || chunk[i] >= 0x7f ? '?' : (char)chunk[i];
		}
	}
	c->reqline[c->line_len] = '\0';
}

/* in_cb - bytes of a request arrived (decrypted, before evhttp parses them): the first byte
 * of a request starts its clock; keep its request line for refusal logs */
static void in_cb(struct evbuffer *buf, const struct evbuffer_cb_info *info, void *arg)
{
	struct conn *c = arg;
	double now;

	if (info->n_added == 0 || c->s == NULL || c->closing)
		return;
	/* one record was decrypted; read-ahead may hold the next ones (bi_tls__read_pending) */
	bi_tls__read_pending(c->bev);
	now = dj_clock_mono_s();
	if (!c->rate_on) {
		c->rate_on = true;
		c->rate_t0 = now;
		c->bytes = 0;
		c->line_len = 0;
		c->line_done = false;
		c->line_bad = false;
		c->line_cr = false;
		c->line_spaces = 0;
	}
	c->bytes += info->n_added;
	if (!c->timing) {
		c->timing = true;
		c->t0 = now;
		if (c->s->props.header_timeout > 0)
			srv__clock_arm(c, now);
	}
	tail_keep(c, buf, info);
	line_scan(c, buf, info);
}

/* http_why - what libevent's parser refused, by the status it answers */
static const char *http_why(int status)
{
	switch (status) {
	case HTTP_BADREQUEST:
		return "malformed request line, header or chunk, or headers over "
		       "the size limit";
	case HTTP_ENTITYTOOLARGE:
		return "body over max_body";
	case HTTP_BADMETHOD:
		return "method not allowed";
	case HTTP_NOTIMPLEMENTED:
		return "unknown method";
	default:
		return "refused by the HTTP parser";
	}
}

/* out_cb - an answer srv did not write is libevent's own refusal (400, 413): log it once */
static void out_cb(struct evbuffer *buf, const struct evbuffer_cb_info *info, void *arg)
{
	struct conn *c = arg;
	struct evbuffer_ptr pos;
	char head[sizeof("HTTP/1.1 999")];
	const char *why;
	int status;

	/* an answer: evhttp enables EV_READ now, and read-ahead may hold the next request */
	if (info->n_added > 0 && !c->closing)
		bi_tls__read_pending(c->bev);
	if (c->patch_413 && info->n_added > 0) /* the body of the refusal */
		patch(buf, info->orig_size, SRV_413_TEXT, SRV_400_CHUNK_TEXT);
	if (info->n_added < sizeof(head) - 1 || c->ours || c->s == NULL || c->closing ||
	    evbuffer_ptr_set(buf, &pos, info->orig_size, EVBUFFER_PTR_SET) != 0 ||
	    evbuffer_copyout_from(buf, &pos, head, sizeof(head) - 1) != (ev_ssize_t)sizeof(head) - 1)
		return;
	head[sizeof(head) - 1] = '\0';
	if (strncmp(head, "HTTP/1.", 7) != 0 || sscanf(head + 9, "%3d", &status) != 1 ||
	    status < HTTP_BADREQUEST)
		return;
	c->s->conn_stats.http_refused++;
	if (status == HTTP_ENTITYTOOLARGE &&
	    bad_chunk(c, evbuffer_get_length(bufferevent_get_input(c->bev)))) {
		/* a malformed request, not a large one: 400 (same length, so patched in place) */
		patch(buf, info->orig_size, SRV_413_TEXT, SRV_400_CHUNK_TEXT);
		c->patch_413 = true;
		status = HTTP_BADREQUEST;
		why = "bad chunk size";
	} else {
		why = http_why(status);
	}
	dj_warn("request from %s refused with %d: %s (request line \"%s\")", srv__conn_addr(c),
		status, why, c->reqline);
	c->rate_on = false;
	c->timing = false;
}

/* srv__read_cb - read_ev: the handshake is over and read-ahead holds records after it */
void srv__read_cb(evutil_socket_t unused, short what, void *arg)
{
	struct conn *c = arg;

	(void)unused;
	(void)what;
	if (!c->closing)
		bi_tls__read_pending(c->bev);
}

/* srv__peer_admit - under max_connections_per_peer, or refused (closed, logged, counted) */
bool srv__peer_admit(struct conn *c)
{
	struct srv *s = c->s;
	unsigned cap, n = 0;

	if (s == NULL || c->identity[0] == '\0')
		return true;
	cap = s->props.max_connections_per_peer;
	if (cap == 0)
		cap = s->props.max_connections / 4 > 0 ? s->props.max_connections / 4 : 1;
	/* counted over every loop (srv_group); a connection refused by max_connections is
	 * being closed already and holds no slot */
	if (!c->counted || srv__peer_take(c, cap, &n))
		return true;
	dj_warn("connection from %s refused: %s holds %u connections already "
		"(max_connections_per_peer)", srv__conn_addr(c), c->identity, n);
	s->conn_stats.peer_cap++;
	c->kill_now = true;
	c->failure_logged = true;
	event_active(c->kill_ev, EV_TIMEOUT, 0);
	return false;
}

/* srv__http_limits - the limits of the TLS listener's evhttp */
void srv__http_limits(struct evhttp *http, const struct srv_props *props)
{
	struct timeval idle;

	/* all methods reach gencb, which answers 405 to anything but POST */
	evhttp_set_allowed_methods(http, SRV_ALL_METHODS);
	evhttp_set_max_body_size(http, (ev_ssize_t)props->max_body);
	evhttp_set_max_headers_size(http, SRV_MAX_HEADERS_SIZE);
	if (props->idle_timeout > 0) {
		idle.tv_sec = (time_t)props->idle_timeout;
		idle.tv_usec = 0;
		evhttp_set_timeout_tv(http, &idle);
	}
}

/* srv__conn_watch - watch c->bev's buffers: request clocks, request lines, parser refusals */
void srv__conn_watch(struct conn *c)
{
	c->in_cbe = evbuffer_add_cb(bufferevent_get_input(c->bev), in_cb, c);
	c->out_cbe = evbuffer_add_cb(bufferevent_get_output(c->bev), out_cb, c);
}

/*
 * srv__line_ok - the request line libevent accepted is one: no byte that has no place there
 * (line_scan), and a target without spaces. libevent 2.1 takes everything between the
 * method's space and the last space as the target ("POST / x HTTP/1.1"), and cuts a line at a
 * NUL ("POST / HTTP/1.1\0junk"); both reached the handler (found by fuzz_http).
 */
bool srv__line_ok(const struct conn *c, const char *uri)
{
	if (c->line_bad || uri == NULL || uri[0] == '\0')
		return false;
	for (const unsigned char *p = (const unsigned char *)uri; *p != '\0'; p++)
		if (*p <= ' ' || *p >= 0x7f)
			return false;
	return true;
}
