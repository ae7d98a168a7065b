/*
 * subscribe.c - danejoin-client subscribe: the join server's MQTT events, one JSON line each.
 *
 * A libmosquitto subscriber over TLS (the broker's certificate checked against --ca and the
 * URL host; --cert/--key for brokers that require client certificates), MQTT v5, QoS 1. Each
 * message is decoded with the generated protobuf code (or read as JSON when the join server
 * publishes JSON) and printed as one line on stdout, with its topic. With --client-id the
 * broker keeps our session (clean start off) across our reconnects and its restarts, so that
 * no event published meanwhile is missed; a lost connection is retried until --timeout.
 * AppSKeys stay inside their wrapped KeyEnvelope: nothing here can unwrap them.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <mosquitto.h>
#include <mqtt_protocol.h>

#include "common/dj_clock.h"
#include "common/dj_err.h"
#include "common/dj_log.h"
#include "events/ev_event.h"
#include "exec.h"

#define SUB_SCHEME "mqtts://"
#define SUB_HOST_MAX 256
#define SUB_KEEPALIVE 30
#define SUB_LOOP_MS 100
#define SUB_RETRY_MS 200
#define SUB_SESSION_EXPIRY 86400	/* s: a --client-id session outlives our disconnects */
#define NS_PER_MS 1000000L

struct sub {
	const struct dc_params *p;
	unsigned seen;		/* events printed */
	bool connected;
	int bad;		/* payloads that did not decode */
	char last_err[256];
};

/* parse_url - mqtts://HOST:PORT */
static bool parse_url(const char *url, char host[SUB_HOST_MAX], int *port)
{
	const char *h, *colon;
	char *end;
	long v;

	if (strncmp(url, SUB_SCHEME, strlen(SUB_SCHEME)) != 0)
		return false;
	h = url + strlen(SUB_SCHEME);
	colon = strrchr(h, ':');
	if (colon == NULL || colon == h || (size_t)(colon - h) >= SUB_HOST_MAX)
		return false;
	v = strtol(colon + 1, &end, 10);
	if ((*end != '\0' && strcmp(end, "/") != 0) || v < 1 || v > 65535)
		return false;
	memcpy(host, h, (size_t)(colon - h));
	host[colon - h] = '\0';
	*port = (int)v;
	return true;
}

/* on_log - keep libmosquitto's last error (TLS detail) */
static void on_log(struct mosquitto *m, void *arg, int level, const char *msg)
{
	struct sub *s = arg;

	(void)m;
	if (level & (MOSQ_LOG_ERR | MOSQ_LOG_WARNING))
		snprintf(s->last_err, sizeof(s->last_err), "%s", msg);
}

/* on_connect - subscribe on every (re)connection */
static void on_connect(struct mosquitto *m, void *arg, int rc, int flags,
		       const mosquitto_property *props)
{
	struct sub *s = arg;

	(void)flags;
	(void)props;
	if (rc != 0) {
		snprintf(s->last_err, sizeof(s->last_err), "broker refused: %s",
			 mosquitto_reason_string(rc));
		return;
	}
	s->connected = true;
	if (mosquitto_subscribe_v5(m, NULL, s->p->topic, 1, 0, NULL) != MOSQ_ERR_SUCCESS)
		snprintf(s->last_err, sizeof(s->last_err), "subscribe failed");
	dj_info("subscribe: connected, topic filter %s", s->p->topic);
}

/* on_message - print one event */
static void on_message(struct mosquitto *m, void *arg, const struct mosquitto_message *msg,
		       const mosquitto_property *props)
{
	struct sub *s = arg;
	char *line = NULL;

	(void)m;
	(void)props;
	if (s->p->count != 0 && s->seen >= s->p->count)
		return;
	if (ev_to_json(msg->payload, (size_t)msg->payloadlen, msg->topic, &line) != DJ_EOK) {
		fprintf(stderr, "%s: %s: a payload that is not an event (%d bytes)\n", DC_PROGRAM,
			msg->topic, msg->payloadlen);
		s->bad++;
		return;
	}
	printf("%s\n", line);
	fflush(stdout);
	free(line);
	s->seen++;
}

int exec__subscribe(const struct dc_params *p)
{
	struct sub s = { .p = p };
	struct mosquitto *m = NULL;
	mosquitto_property *props = NULL;
	char host[SUB_HOST_MAX];
	int port = 0, rc, ret = DC_EXIT_INTERNAL;
	int64_t deadline = p->timeout_ms != 0 ? (int64_t)dj_clock_mono_ms() + p->timeout_ms
					      : INT64_MAX;
	bool up = false;

	if (!parse_url(p->url, host, &port)) {
		fprintf(stderr, "%s: --url %s: expected mqtts://HOST:PORT\n", DC_PROGRAM, p->url);
		return DC_EXIT_USAGE;
	}
	mosquitto_lib_init();
	m = mosquitto_new(p->mqtt_client_id, p->mqtt_client_id == NULL, &s);
	if (m == NULL)
		goto out;
	(void)mosquitto_int_option(m, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V5);
	rc = mosquitto_tls_set(m, p->ca, NULL, p->cert, p->key, NULL);
	if (rc == MOSQ_ERR_SUCCESS)
		rc = mosquitto_tls_opts_set(m, 1 /* SSL_VERIFY_PEER */, NULL, NULL);
	if (rc != MOSQ_ERR_SUCCESS) {
		fprintf(stderr, "%s: --ca/--cert/--key: %s\n", DC_PROGRAM, mosquitto_strerror(rc));
		ret = DC_EXIT_INPUT;
		goto out;
	}
	mosquitto_log_callback_set(m, on_log);
	mosquitto_connect_v5_callback_set(m, on_connect);
	mosquitto_message_v5_callback_set(m, on_message);
	/* MQTT v5 §3.1.2.11.2: without an expiry the broker ends the session on disconnect */
	if (p->mqtt_client_id != NULL &&
	    mosquitto_property_add_int32(&props, MQTT_PROP_SESSION_EXPIRY_INTERVAL,
					 SUB_SESSION_EXPIRY) != MOSQ_ERR_SUCCESS)
		goto out;
	rc = mosquitto_connect_bind_v5(m, host, port, SUB_KEEPALIVE, NULL, props);
	up = rc == MOSQ_ERR_SUCCESS;
	while (p->count == 0 || s.seen < p->count) {
		if ((int64_t)dj_clock_mono_ms() >= deadline) {
			fprintf(stderr, "%s: timeout after %u events%s%s\n", DC_PROGRAM, s.seen,
				s.connected ? "" : "; never connected: ",
				s.connected ? "" : (s.last_err[0] ? s.last_err : "no answer"));
			ret = DC_EXIT_CONN;
			goto out;
		}
		if (up) {
			rc = mosquitto_loop(m, SUB_LOOP_MS, 1);
			if (rc == MOSQ_ERR_SUCCESS)
				continue;
			dj_warn("subscribe: connection lost: %s%s%s", mosquitto_strerror(rc),
				s.last_err[0] ? ": " : "", s.last_err);
		}
		/* broker away: retry (a --client-id session resumes where it was) */
		nanosleep(&(struct timespec){ 0, SUB_RETRY_MS * NS_PER_MS }, NULL);
		up = mosquitto_reconnect(m) == MOSQ_ERR_SUCCESS;
	}
	ret = DC_EXIT_OK;
out:
	mosquitto_property_free_all(&props);
	if (m != NULL) {
		if (s.connected)
			(void)mosquitto_disconnect(m);
		mosquitto_destroy(m);
	}
	mosquitto_lib_cleanup();
	return ret;
}
