/*
 * srv_conn.c - what srv watches on a connection: the clock of each request (header_timeout
 * for the whole request from its first byte, min_rate) and the per-identity connection cap.
 * The listeners, connections and requests themselves: srv.c; HTTP/1.1: srv_http.c.
 *
 * THE REQUEST CLOCK
 *	The bufferevent's timeouts (idle_timeout) time each read, never a whole request: alone
 *	they let a client trickle a request forever. The clock of a request starts at its first
 *	byte (srv_http.c read_cb, or the bytes left after the previous request) and stops when
 *	it is complete; the first request's runs from the accept, so it covers the handshake.
 *
 *	kill_ev checks the clock every SRV_TICK_S (or at the deadline if sooner) while it runs.
 *	A clock that stops leaves kill_ev armed (an event_del per request, and an event_add for
 *	the next, cost more than the one idle wake-up it may cause): when it fires with no clock
 *	running it does nothing and is not armed again. A clock that starts while kill_ev is still
 *	armed from the previous request keeps that check, which comes no later than its own
 *	would (armed no later, for no longer); the check arms the next one from the new t0.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "bi/bi_tls.h"
#include "bi/srv.h"
#include "bi/srv_internal.h"
#include "common/dj_clock.h"
#include "common/dj_log.h"

/* conn_kill - close the connection now, its failure logged */
static void conn_kill(struct conn *c)
{
	c->timing = false;
	c->failure_logged = true;
	srv__conn_close(c);
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
	c->kill_armed = event_add(c->kill_ev, &tv) == 0;
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
	c->kill_armed = false;	/* fired: libevent deleted it (not EV_PERSIST) */
	if (c->closing || s == NULL)
		return;
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

/* srv__clock_start - bytes of a request arrived: start its clock if it is not running */
void srv__clock_start(struct conn *c, double now)
{
	if (!c->rate_on) {
		c->rate_on = true;
		c->rate_t0 = now;
		c->bytes = 0;
	}
	if (!c->timing) {
		c->timing = true;
		c->t0 = now;
		/* still armed from the previous request: that check comes first (file comment) */
		if (c->s != NULL && c->s->props.header_timeout > 0 && !c->kill_armed)
			srv__clock_arm(c, now);
	}
}

void srv__clock_bytes(struct conn *c, size_t n)
{
	c->bytes += n;
}

/* srv__clock_stop - the request is complete: idle_timeout covers the wait for the next one,
 * whose first byte starts a new clock; kill_ev stays armed (file comment) */
void srv__clock_stop(struct conn *c)
{
	c->timing = false;
	c->rate_on = false;
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
