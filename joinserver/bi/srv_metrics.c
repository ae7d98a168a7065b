/*
 * srv_metrics.c - the metrics listener of the HTTPS server: plain HTTP, GET /metrics only, the
 *		   text the program's metrics callback returns (Prometheus text format).
 *
 * It carries no secret and takes no input but the path, so it needs no TLS; it listens on
 * metrics_addr, loopback by default, with the same header limit and idle timeout as the main
 * listener and no body at all.
 */
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "bi/srv_internal.h"
#include "common/dj_err.h"

#define SRV_METRICS_TYPE "text/plain; version=0.0.4" /* Prometheus text exposition format */
#define SRV_METRICS_PATH "/metrics"

/* metrics_cb - GET /metrics on the plain listener */
static void metrics_cb(struct evhttp_request *evreq, void *arg)
{
	struct srv *s = arg;
	const char *path = evhttp_uri_get_path(evhttp_request_get_evhttp_uri(evreq));
	struct evkeyvalq *hdr = evhttp_request_get_output_headers(evreq);
	char *text;

	if (path == NULL || strcmp(path, SRV_METRICS_PATH) != 0) {
		evhttp_send_error(evreq, HTTP_NOTFOUND, NULL);
		return;
	}
	if (evhttp_request_get_command(evreq) != EVHTTP_REQ_GET) {
		evhttp_add_header(hdr, "Allow", "GET");
		evhttp_send_error(evreq, HTTP_BADMETHOD, NULL);
		return;
	}
	text = s->props.metrics != NULL ? s->props.metrics(s->props.arg) : strdup("");
	if (text == NULL) {
		evhttp_send_error(evreq, HTTP_INTERNAL, NULL);
		return;
	}
	evhttp_add_header(hdr, "Content-Type", SRV_METRICS_TYPE);
	if (evbuffer_add(evhttp_request_get_output_buffer(evreq), text, strlen(text)) != 0) {
		free(text);
		evhttp_send_error(evreq, HTTP_INTERNAL, NULL);
		return;
	}
	free(text);
	evhttp_send_reply(evreq, HTTP_OK, NULL, NULL);
}

int srv__metrics_listen(struct srv *s, char *err, size_t errlen)
{
	struct timeval idle = { .tv_sec = (time_t)s->props.idle_timeout, .tv_usec = 0 };

	s->metrics_http = evhttp_new(s->base);
	if (s->metrics_http == NULL) {
		dj_errbuf(err, errlen, "out of memory");
		return DJ_ENOMEM;
	}
	evhttp_set_gencb(s->metrics_http, metrics_cb, s);
	evhttp_set_allowed_methods(s->metrics_http, SRV_ALL_METHODS);
	evhttp_set_max_body_size(s->metrics_http, 0);
	evhttp_set_max_headers_size(s->metrics_http, SRV_MAX_HEADERS_SIZE);
	if (s->props.idle_timeout > 0)
		evhttp_set_timeout_tv(s->metrics_http, &idle);
	return srv__bind_http(s->metrics_http, "metrics_addr", s->props.metrics_addr, NULL, err,
			      errlen);
}
