/*
 * srv_http.c - HTTP/1.1 on each connection of the TLS listener: llhttp parses the requests out
 * of the bufferevent's input, srv_http answers them. The listeners, connections and requests:
 * srv.c; the request clock and the per-peer cap: srv_conn.c.
 *
 * DESCRIPTION
 *	Reading stays enabled for the whole life of a connection (no epoll_ctl per request). The
 *	bytes of one request are parsed as they arrive; when it is complete llhttp pauses
 *	(on_message_complete) and srv.c hands it over. While it is with the handler (or held for
 *	the DANE check) nothing more is parsed: what the peer sends meanwhile (pipelined
 *	requests) waits in the input buffer, bounded by its read watermark (SRV_READ_HIGH:
 *	bufferevent stops reading there). Once the answer is queued, parsing goes on with what
 *	is buffered, so pipelined requests are answered in order.
 *
 *	An answer is one evbuffer extent (status line, Date, Content-Type, Content-Length,
 *	Connection when needed, body): one TLS record, one write(). A connection that is to close
 *	(Connection: close asked or answered, HTTP/1.0 without keep-alive, a refusal, the peer's
 *	EOF) closes once its output is written (the write callback).
 *
 * LIMITS (each refusal is logged once, with the peer and the request line, and closes)
 *	- request line and headers over SRV_MAX_HEADERS_SIZE: 400 (fed to llhttp at most one
 *	  byte past the limit while the headers are not complete)
 *	- a body over max_body: 413 (Content-Length at the headers, chunked as it arrives)
 *	- a method llhttp does not know: 501; anything llhttp refuses (a malformed request line,
 *	  header or chunk; strict mode): 400; a target with a byte <= 0x20 or >= 0x7f: 400
 *	- other methods than POST: 405 (srv.c); idle_timeout: the bufferevent's timeouts;
 *	  header_timeout and min_rate: the request clock (srv_conn.c)
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <llhttp.h>

#include "bi/bi_tls.h"
#include "bi/srv.h"
#include "bi/srv_internal.h"
#include "common/dj_clock.h"
#include "common/dj_log.h"

#define SRV_HEAD_MAX  512 /* status line and headers of an answer (Date, Connection, Allow) */
#define SRV_BODY_HINT 256 /* first allocation of a chunked body */
#define SRV_CONTINUE  "HTTP/1.1 100 Continue\r\n\r\n"

static const llhttp_settings_t *settings(void);

/* reason - the reason phrase of \p status */
static const char *reason(int status)
{
	static const struct {
		int status;
		const char *text;
	} t[] = {
		{200, "OK"},
		{400, "Bad Request"},
		{403, "Forbidden"},
		{404, "Not Found"},
		{405, "Method Not Allowed"},
		{413, "Request Entity Too Large"},
		{429, "Too Many Requests"},
		{500, "Internal Server Error"},
		{501, "Not Implemented"},
		{503, "Service Unavailable"},
	};

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		if (t[i].status == status)
			return t[i].text;
	return "Status";
}

/* refuse - a callback refuses the request: \p status, logged with \p why */
static int refuse(llhttp_t *p, int status, const char *why)
{
	struct conn *c = p->data;

	c->refuse = status;
	c->refuse_why = why;
	return HPE_USER;
}

/* grow - make room for \p add more bytes after \p len in *buf (capacity *cap) */
static bool grow(void **buf, size_t *cap, size_t len, size_t add)
{
	size_t want = *cap != 0 ? *cap : SRV_BODY_HINT;
	void *nb;

	if (len + add <= *cap)
		return true;
	while (want < len + add)
		want *= 2;
	nb = realloc(*buf, want);
	if (nb == NULL)
		return false;
	*buf = nb;
	*cap = want;
	return true;
}

static int on_message_begin(llhttp_t *p)
{
	struct conn *c = p->data;

	c->url_len = 0;
	c->body_len = 0;
	c->expect_100 = false;
	c->hname_len = 0;
	return HPE_OK;
}

/* on_url - the target: no space or control character (llhttp lets some through), no byte
 * over 0x7e */
static int on_url(llhttp_t *p, const char *at, size_t len)
{
	struct conn *c = p->data;

	for (size_t i = 0; i < len; i++)
		if ((unsigned char)at[i] <= ' ' || (unsigned char)at[i] >= 0x7f)
			return refuse(p, 400, "a space or control character in the request line");
	if (!grow((void **)&c->url, &c->url_cap, c->url_len, len + 1))
		return refuse(p, 503, "out of memory");
	memcpy(c->url + c->url_len, at, len);
	c->url_len += len;
	c->url[c->url_len] = '\0';
	return HPE_OK;
}

/* on_header_field - keep the start of the name, to tell Expect */
static int on_header_field(llhttp_t *p, const char *at, size_t len)
{
	struct conn *c = p->data;
	size_t n = len < sizeof(c->hname) - c->hname_len ? len : sizeof(c->hname) - c->hname_len;

	memcpy(c->hname + c->hname_len, at, n);
	c->hname_len += n;
	return HPE_OK;
}

static int on_header_field_complete(llhttp_t *p)
{
	struct conn *c = p->data;

	c->hname_expect = c->hname_len == 6 && strncasecmp(c->hname, "expect", 6) == 0;
	c->hname_len = 0;
	return HPE_OK;
}

/* on_header_value - only Expect's matters (in one piece: 100-continue is short) */
static int on_header_value(llhttp_t *p, const char *at, size_t len)
{
	struct conn *c = p->data;

	if (c->hname_expect && len == 12 && strncasecmp(at, "100-continue", 12) == 0)
		c->expect_100 = true;
	return HPE_OK;
}

/* on_headers_complete - a Content-Length over max_body is refused before its body comes */
static int on_headers_complete(llhttp_t *p)
{
	struct conn *c = p->data;
	size_t max = c->s != NULL ? c->s->props.max_body : 0;

	c->head_done = true;
	if ((p->flags & F_CONTENT_LENGTH) && p->content_length > max)
		return refuse(p, 413, "body over max_body");
	if ((p->flags & F_CONTENT_LENGTH) && p->content_length > 0 &&
	    !grow((void **)&c->body, &c->body_cap, 0, (size_t)p->content_length))
		return refuse(p, 503, "out of memory");
	/* a client waiting for a go-ahead (curl, for large bodies) gets it at once */
	if (c->expect_100 && p->http_major == 1 && p->http_minor == 1 &&
	    (p->flags & (F_CONTENT_LENGTH | F_CHUNKED)) != 0)
		bufferevent_write(c->bev, SRV_CONTINUE, sizeof(SRV_CONTINUE) - 1);
	return HPE_OK;
}

/* on_body - a chunked body over max_body is refused as it arrives */
static int on_body(llhttp_t *p, const char *at, size_t len)
{
	struct conn *c = p->data;
	size_t max = c->s != NULL ? c->s->props.max_body : 0;

	if (len > max || c->body_len > max - len)
		return refuse(p, 413, "body over max_body");
	if (!grow((void **)&c->body, &c->body_cap, c->body_len, len))
		return refuse(p, 503, "out of memory");
	memcpy(c->body + c->body_len, at, len);
	c->body_len += len;
	return HPE_OK;
}

/* on_message_complete - pause: srv.c takes the request before anything after it is parsed */
static int on_message_complete(llhttp_t *p)
{
	struct conn *c = p->data;

	c->done = true;
	c->method = p->method;
	c->minor = p->http_minor;
	/* an Upgrade or CONNECT is answered (405 or the handler's), then the connection ends */
	c->keep_alive = llhttp_should_keep_alive(p) && !p->upgrade;
	return HPE_PAUSED;
}

static const llhttp_settings_t *settings(void)
{
	static llhttp_settings_t st = {
		.on_message_begin = on_message_begin,
		.on_url = on_url,
		.on_header_field = on_header_field,
		.on_header_field_complete = on_header_field_complete,
		.on_header_value = on_header_value,
		.on_headers_complete = on_headers_complete,
		.on_body = on_body,
		.on_message_complete = on_message_complete,
	};

	return &st;
}

/* line_keep - follow the request line through \p n bytes fed to the parser, for the logs */
static void line_keep(struct conn *c, const unsigned char *d, size_t n)
{
	for (size_t i = 0; i < n && !c->line_done; i++) {
		if ((d[i] == '\r' || d[i] == '\n') && c->line_len == 0)
			continue; /* empty lines before a request */
		if (d[i] == '\r' || d[i] == '\n' || c->line_len == sizeof(c->reqline) - 1) {
			c->line_done = true;
			break;
		}
		c->reqline[c->line_len++] = (char)(d[i] < 0x20 || d[i] >= 0x7f ? '?' : d[i]);
	}
	c->reqline[c->line_len] = '\0';
}

/* req_reset - ready for the next request: the parser goes on, the line is forgotten */
static void req_reset(struct conn *c)
{
	llhttp_resume(&c->parser);
	c->done = false;
	c->head_done = false;
	c->head_bytes = 0;
	c->line_len = 0;
	c->line_done = false;
	c->reqline[0] = '\0';
}

/* parse_error - what llhttp refused: status and why */
static int parse_error(struct conn *c, llhttp_errno_t err, const char **why)
{
	if (c->refuse != 0) { /* a callback's (HPE_USER, HPE_CB_HEADERS_COMPLETE) */
		*why = c->refuse_why;
		return c->refuse;
	}
	switch (err) {
	case HPE_INVALID_METHOD:
		*why = "unknown method";
		return HTTP_NOTIMPLEMENTED;
	case HPE_INVALID_CHUNK_SIZE:
		*why = "bad chunk size";
		return HTTP_BADREQUEST;
	default:
		*why = llhttp_get_error_reason(&c->parser);
		if (*why == NULL)
			*why = llhttp_errno_name(err);
		return HTTP_BADREQUEST;
	}
}

/* feed - parse one run of bytes of the input; false when nothing more is to be parsed now;
 * \p now: srv__http_parse's */
static bool feed(struct conn *c, struct evbuffer *in, double now)
{
	struct evbuffer_iovec v;
	llhttp_errno_t err;
	const char *why = NULL;
	size_t n, used;
	int status;
	bool head = !c->head_done;

	if (evbuffer_peek(in, -1, NULL, &v, 1) < 1 || v.iov_len == 0)
		return false;
	n = v.iov_len;
	/* the headers: at most one byte past the limit, so that it is seen */
	if (head && n > SRV_MAX_HEADERS_SIZE + 1 - c->head_bytes)
		n = SRV_MAX_HEADERS_SIZE + 1 - c->head_bytes;
	line_keep(c, v.iov_base, n);
	err = llhttp_execute(&c->parser, v.iov_base, n);
	used = err == HPE_OK ? n : (size_t)(llhttp_get_error_pos(&c->parser) - (char *)v.iov_base);
	if (head)
		c->head_bytes += used;
	if (err != HPE_OK && err != HPE_PAUSED) {
		line_keep(c, (unsigned char *)v.iov_base + n, v.iov_len - n);
		evbuffer_drain(in, evbuffer_get_length(in));
		status = parse_error(c, err, &why);
		srv__http_refuse(c, status, why);
		return false;
	}
	evbuffer_drain(in, used);
	if (!c->head_done && c->head_bytes > SRV_MAX_HEADERS_SIZE) {
		evbuffer_drain(in, evbuffer_get_length(in));
		srv__http_refuse(c, HTTP_BADREQUEST, "headers over the size limit");
		return false;
	}
	if (!c->done)
		return true;
	srv__clock_stop(c);
	srv__request(c, now);
	req_reset(c);
	return true;
}

void srv__http_parse(struct conn *c, double now)
{
	struct evbuffer *in;

	if (c->parsing || c->closing || c->bev == NULL)
		return;
	in = bufferevent_get_input(c->bev);
	c->parsing = true;
	while (!c->closing && c->pending == NULL && !c->sent_close && feed(c, in, now))
		;
	c->parsing = false;
	if (c->closing)
		return;
	c->seen = evbuffer_get_length(in);
	/* the start of the next request is here already: its clock runs (srv_conn.c) */
	if (c->pending == NULL && !c->sent_close && c->seen > 0 && !c->timing) {
		srv__clock_start(c, now > 0 ? now : dj_clock_mono_s());
		srv__clock_bytes(c, c->seen);
	}
	/* reading may have paused at the watermark with records left in OpenSSL's buffer */
	bi_tls__read_pending(c->bev);
}

/* read_cb - decrypted bytes arrived: count them on the request clock, parse */
static void read_cb(struct bufferevent *bev, void *arg)
{
	struct conn *c = arg;
	size_t len = evbuffer_get_length(bufferevent_get_input(bev));
	double now = 0;

	if (c->closing || c->s == NULL)
		return;
	/* one record was decrypted; read-ahead may hold the next ones (bi_tls__read_pending) */
	bi_tls__read_pending(bev);
	if (len > c->seen) {
		/* one reading serves the clock and the request these bytes complete (started) */
		now = dj_clock_mono_s();
		srv__clock_start(c, now);
		srv__clock_bytes(c, len - c->seen);
		c->seen = len;
	}
	srv__http_parse(c, now);
}

/* write_cb - the output is written: a connection to close closes now */
static void write_cb(struct bufferevent *bev, void *arg)
{
	struct conn *c = arg;

	(void)bev;
	if (!c->closing && c->sent_close)
		srv__conn_close(c);
}

/* event_cb - EOF, an error or a timeout of the bufferevent */
static void event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct conn *c = arg;

	if (c->closing || (what & BEV_EVENT_CONNECTED))
		return;
	if ((what & BEV_EVENT_TIMEOUT) && (what & BEV_EVENT_READING) && c->pending != NULL) {
		/* idle_timeout is for a connection that sends nothing, not one that waits */
		bufferevent_enable(bev, EV_READ);
		return;
	}
	if ((what & BEV_EVENT_EOF) && !(what & BEV_EVENT_WRITING) &&
	    (c->pending != NULL || evbuffer_get_length(bufferevent_get_output(bev)) > 0)) {
		/* the peer ended its side after a request: it gets the answer, then we close */
		c->eof = true;
		c->sent_close |= c->pending == NULL;
		bufferevent_disable(bev, EV_READ);
		return;
	}
	if ((what & BEV_EVENT_TIMEOUT) && c->s != NULL)
		dj_debug("connection from %s closed: idle_timeout", srv__conn_addr(c));
	srv__conn_close(c);
}

void srv__http_start(struct conn *c)
{
	struct timeval idle;

	llhttp_init(&c->parser, HTTP_REQUEST, settings());
	c->parser.data = c;
	bufferevent_setcb(c->bev, read_cb, write_cb, event_cb, c);
	bufferevent_setwatermark(c->bev, EV_READ, 0, SRV_READ_HIGH);
	if (c->s != NULL && c->s->props.idle_timeout > 0) {
		idle.tv_sec = (time_t)c->s->props.idle_timeout;
		idle.tv_usec = 0;
		bufferevent_set_timeouts(c->bev, &idle, &idle);
	}
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
}

/*
 * answer_date - the Date header's value for an answer of this second, made once a second
 * (evutil_date_rfc1123); NULL when the srv is gone
 */
static const char *answer_date(struct srv *s)
{
	time_t now = time(NULL);
	struct tm tm;

	if (s == NULL)
		return NULL;
	if (now != s->date_t || s->date[0] == '\0') {
		if (gmtime_r(&now, &tm) == NULL ||
		    evutil_date_rfc1123(s->date, sizeof(s->date), &tm) <= 0) {
			s->date[0] = '\0';
			return NULL;
		}
		s->date_t = now;
	}
	return s->date;
}

/* a status line and headers being written: head_put and head_num append, w->ok turns false
 * (and stays) once they would not fit */
struct head {
	char *p, *end;
	bool ok;
};

/* head_put - append \p len bytes of \p s */
static void head_put(struct head *w, const char *s, size_t len)
{
	if (!w->ok || (size_t)(w->end - w->p) < len) {
		w->ok = false;
		return;
	}
	memcpy(w->p, s, len);
	w->p += len;
}

#define HEAD_PUTS(w, lit) head_put((w), (lit), sizeof(lit) - 1)

/* head_num - append \p v in decimal (as %zu), a '-' first when \p neg (as %d) */
static void head_num(struct head *w, size_t v, bool neg)
{
	char d[24], *q = d + sizeof(d);

	do {
		*--q = (char)('0' + v % 10);
		v /= 10;
	} while (v != 0);
	if (neg)
		*--q = '-';
	head_put(w, q, (size_t)(d + sizeof(d) - q));
}

/*
 * answer_head - the status line and headers of an answer into \p buf: "HTTP/1.1 status
 * reason", Date (when \p date), Content-Type, Content-Length, \p extra, Connection (close, or
 * keep-alive for HTTP/1.0), the empty line. Written piece by piece, not by snprintf (a tenth of
 * the instructions): the bytes are those of the format "HTTP/1.1 %d %s\r\n..." it replaced
 * (tests/integration/test_srv.c compares them). Its length, or 0 when it does not fit.
 */
static size_t answer_head(char *buf, size_t cap, int status, const char *date,
			  const char *extra, size_t len, const char *conn)
{
	struct head w = {buf, buf + cap, true};
	const char *why = reason(status);

	HEAD_PUTS(&w, "HTTP/1.1 ");
	head_num(&w, status < 0 ? 0 - (size_t)status : (size_t)status, status < 0);
	head_put(&w, " ", 1);
	head_put(&w, why, strlen(why));
	if (date != NULL) {
		HEAD_PUTS(&w, "\r\nDate: ");
		head_put(&w, date, strlen(date));
	}
	HEAD_PUTS(&w, "\r\nContent-Type: " BI_TLS_JSON_TYPE "\r\nContent-Length: ");
	head_num(&w, len, false);
	HEAD_PUTS(&w, "\r\n");
	if (extra != NULL)
		head_put(&w, extra, strlen(extra));
	head_put(&w, conn, strlen(conn));
	HEAD_PUTS(&w, "\r\n");
	return w.ok ? (size_t)(w.p - buf) : 0;
}

void srv__http_answer(struct conn *c, int status, const char *extra, const void *body,
		      size_t len, bool close)
{
	struct evbuffer *out;
	struct evbuffer_iovec v;
	char head[SRV_HEAD_MAX];
	size_t n;

	if (c == NULL || c->closing || c->bev == NULL || c->sent_close)
		return;
	close |= c->eof || c->s == NULL;
	n = answer_head(head, sizeof(head), status, answer_date(c->s), extra, len,
			close ? "Connection: close\r\n"
			      : (c->minor == 0 ? "Connection: keep-alive\r\n" : ""));
	if (n == 0)
		close = true;
	out = bufferevent_get_output(c->bev);
	/* one extent, so one TLS record and one write() */
	if (evbuffer_reserve_space(out, (ev_ssize_t)(n + len), &v, 1) == 1 &&
	    v.iov_len >= n + len) {
		memcpy(v.iov_base, head, n);
		if (len > 0)
			memcpy((char *)v.iov_base + n, body, len);
		v.iov_len = n + len;
		if (evbuffer_commit_space(out, &v, 1) != 0)
			close = true;
	} else {
		dj_err("out of memory answering %s", srv__conn_addr(c));
		close = true;
	}
	if (close)
		c->sent_close = true;
	bi_tls__bev_write_now(c->bev);
}

void srv__http_refuse(struct conn *c, int status, const char *why)
{
	char json[SRV_WHY_MAX];
	int n;

	if (c->s != NULL) {
		c->s->conn_stats.http_refused++;
		dj_warn("request from %s refused with %d: %s (request line \"%s\")",
			srv__conn_addr(c), status, why, c->reqline);
	}
	srv__clock_stop(c);
	n = snprintf(json, sizeof(json), "{\"error\":\"%s\"}",
		     status == HTTP_ENTITYTOOLARGE ? "body too large"
		     : status == HTTP_NOTIMPLEMENTED ? "unknown method"
						     : "malformed request");
	srv__http_answer(c, status, NULL, json, (size_t)n, true);
}

char *srv__http_path(const char *url, size_t len)
{
	struct evhttp_uri *u;
	const char *path;
	char *ret;

	if (len > 0 && url[0] == '/')
		return strndup(url, strcspn(url, "?#"));
	/* absolute-form ("https://host/path") or "*": libevent's URI parser, as evhttp did */
	u = evhttp_uri_parse_with_flags(url, 0);
	path = u != NULL ? evhttp_uri_get_path(u) : NULL;
	ret = strdup(path != NULL && path[0] != '\0' ? path : "/");
	if (u != NULL)
		evhttp_uri_free(u);
	return ret;
}

void srv__http_free(struct conn *c)
{
	free(c->url);
	free(c->body);
	c->url = NULL;
	c->body = NULL;
	c->url_cap = c->body_cap = 0;
}
