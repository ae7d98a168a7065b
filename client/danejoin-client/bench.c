/*
 * bench.c - danejoin-client bench: R JoinReqs from N simulated devices over M keep-alive
 * connections on one event loop; reports joins/s and p50/p99 latency. It asserts nothing about
 * time (tests label it "bench").
 *
 * Each device has at most one request in flight, as a real device does. Every Join-accept is
 * handled by the device (so its JoinNonce state stays right) but session keys are not compared
 * (join --sim does that). Before the run, each device's DevNonce counter is advanced in the state
 * file by the number of joins it will send, so that a crash mid-run never leads a later run to
 * reuse a DevNonce (the join server would refuse it as a replay).
 *
 * --raw FILE posts FILE's bytes as every body and checks only the HTTP status (the reference
 * server of tests/bench/bench_floor.sh). --rate N sends open loop: request k is due at
 * start + k/N whatever the answers do, and its latency counts from that due time (so a slow
 * answer cannot hide the requests queued behind it); a device still in flight is skipped. A
 * one-shot timer wakes the loop when the next request is due (the client's event_base has
 * precise timers, dc_client.c); if every device is in flight, the next answer sends it.
 *
 * An answer's time is when the loop pass that handed it over began (answer_time), not when its
 * callback ran: the answers of one group commit arrive together, and the client's own work on
 * the ones before it (TLS, parse, the device's check of the accept) is not the server's.
 *
 * Before the clock starts, one request goes on each connection and all are answered (warm_up):
 * the TLS handshakes are not counted in any request's latency, since the figures are those of
 * established keep-alive connections. These requests are counted as sent and answered (the
 * success line, --requests) but not in the latencies, the elapsed time or joins/s. --on-clock CMD
 * runs CMD between the two (the benchmarks sample the server's CPU there).
 */
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <sys/wait.h>

#include <event2/event.h>

#include <openssl/crypto.h>

#include "common/dj_clock.h"
#include "common/dj_err.h"
#include "exec.h"
#include "state.h"

struct bench_dev {
	struct bench *b;
	unsigned idx;
	struct lw_sim_device d;
	double t0;
	bool busy;
};

struct bench_raw {		/* --raw: one per request */
	struct bench *b;
	double t0;
};

struct bench {
	const struct dc_params *p;
	struct dc_client *c;
	struct lw_crypto *cx;
	struct bench_dev *devs;
	unsigned ndev;		/* devices taking part */
	unsigned next;		/* the device whose request goes next (round robin) */
	unsigned sent, done, ok, not_success, conn_fail, rejected;
	unsigned warm;		/* warm-up requests (warm_up), the first ones sent */
	bool warming;		/* in the warm-up: no latency kept, no next request */
	unsigned nlat;		/* latencies kept (those after the warm-up) */
	double *lat;
	char *raw;		/* --raw: the body */
	size_t raw_len;
	struct bench_raw *rq;
	double start;		/* --rate: request k is due at start + k / rate */
	struct event *tick;	/* --rate: one-shot, at the next request's due time */
	bool stalled;		/* --rate: a request is due and every device is in flight */
	int fault;
	char first_err[DC_ERR_MAX];
};

static void on_answer(int rc, const struct bi_msg *ans, int have, const char *err, void *arg);

/* due_time - --rate: when the next request is due (the warm-up's are not on the clock) */
static double due_time(const struct bench *b)
{
	return b->start + (double)(b->sent - b->warm) / b->p->rate;
}

/*
 * answer_time - monotonic time at which the current loop pass began: libevent caches the time
 * once per pass, after the poll (and the reads, for the deferred callbacks that hand the answer
 * over), and gives it as wall-clock time; the difference to the wall clock now is how long ago
 * that was. Never later than now; never earlier than \p due (a wall-clock step in between: now).
 */
static double answer_time(struct bench *b, double due)
{
	struct timeval pass, wall;
	double now = dj_clock_mono_s(), ago, t;

	if (event_base_gettimeofday_cached(dc_client_base(b->c), &pass) != 0 ||
	    gettimeofday(&wall, NULL) != 0)
		return now;
	ago = (double)(wall.tv_sec - pass.tv_sec) + (double)(wall.tv_usec - pass.tv_usec) / 1e6;
	t = now - ago;
	return t >= due && t <= now ? t : now;
}

/* keep_latency - an answer came: its latency counts unless it is a warm-up request's */
static void keep_latency(struct bench *b, double t0)
{
	double t = answer_time(b, t0) - t0;

	b->done++;
	if (!b->warming)
		b->lat[b->nlat++] = t;
}

/* warm_answered - in the warm-up: nothing more is sent; the last answer ends it */
static bool warm_answered(struct bench *b)
{
	if (!b->warming)
		return false;
	if (b->done == b->sent)
		event_base_loopbreak(dc_client_base(b->c));
	return true;
}

/* send_one - the next Join-request of device \p bd */
static int send_one(struct bench_dev *bd)
{
	struct bench *b = bd->b;
	struct bi_msg req;
	uint8_t phy[LW_PHY_MAX];
	size_t len;
	int rc;

	rc = lw_sim_join_request(b->cx, &bd->d, phy, &len);
	if (rc != DJ_EOK)
		return rc;
	exec__sim_req(b->p, &bd->d, bd->idx + 1, BI_JOIN_REQ, phy, len, &req);
	bd->t0 = b->p->rate > 0 ? due_time(b) : dj_clock_mono_s();
	rc = dc_client_send(b->c, &req, on_answer, bd);
	if (rc == DJ_EOK) {
		b->sent++;
		bd->busy = true;
	}
	return rc;
}

/* on_raw - --raw: count the status, send the next (closed loop) */
static void on_raw(int rc, const struct bi_msg *ans, int have, const char *err, void *arg);

/* send_raw - --raw: the next request */
static int send_raw(struct bench *b)
{
	struct bench_raw *r = &b->rq[b->sent];
	int rc;

	r->b = b;
	r->t0 = b->p->rate > 0 ? due_time(b) : dj_clock_mono_s();
	rc = dc_client_send_raw(b->c, b->raw, b->raw_len, on_raw, r);
	if (rc == DJ_EOK)
		b->sent++;
	return rc;
}

/* send_next - closed loop: the next request, if any is left */
static void send_next(struct bench *b)
{
	unsigned tries;
	int rc;

	if (b->p->rate > 0 || b->sent >= b->p->requests || b->fault)
		return;
	if (b->raw != NULL) {
		rc = send_raw(b);
	} else {
		/* the next device in turn that is not in flight: answers come back in any order,
		 * and a device's second JoinReq beside its first would be refused or reordered.
		 * One is free: the caller's device, or (at the start) there are at least as many
		 * devices as connections. */
		for (tries = 0; tries < b->ndev && b->devs[b->next].busy; tries++)
			b->next = (b->next + 1) % b->ndev;
		rc = send_one(&b->devs[b->next]);
		b->next = (b->next + 1) % b->ndev;
	}
	if (rc != DJ_EOK)
		b->fault = rc;
}

/* arm_tick - --rate: wake when the next request is due (at once if it already is) */
static void arm_tick(struct bench *b)
{
	double wait = due_time(b) - dj_clock_mono_s();
	struct timeval tv = { 0, 0 };

	if (wait > 0) {
		tv.tv_sec = (time_t)wait;
		tv.tv_usec = (suseconds_t)((wait - (double)tv.tv_sec) * 1e6);
	}
	if (evtimer_add(b->tick, &tv) != 0)
		b->fault = DJ_ENOMEM;
}

/* send_due - --rate: send every request now due; then wait for the next one (timer) or, if
 * every device is in flight, for an answer */
static void send_due(struct bench *b)
{
	double due = b->warm + (dj_clock_mono_s() - b->start) * b->p->rate + 1;
	unsigned want = due >= b->p->requests ? b->p->requests : (unsigned)due, tries;
	int rc = DJ_EOK;

	b->stalled = false;
	while (b->sent < want && !b->fault && rc == DJ_EOK) {
		if (b->raw != NULL) {
			rc = send_raw(b);
			continue;
		}
		for (tries = 0; tries < b->ndev && b->devs[b->next].busy; tries++)
			b->next = (b->next + 1) % b->ndev;
		if (b->devs[b->next].busy) {
			b->stalled = true;	/* sent late by on_answer, its latency says so */
			break;
		}
		rc = send_one(&b->devs[b->next]);
		b->next = (b->next + 1) % b->ndev;
	}
	if (rc != DJ_EOK)
		b->fault = rc;
	if (b->sent >= b->p->requests || b->fault) {
		if (b->done == b->sent)
			event_base_loopbreak(dc_client_base(b->c));
	} else if (!b->stalled) {
		arm_tick(b);
	}
}

/* on_tick - --rate: the next request is due */
static void on_tick(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	send_due(arg);
}

/* finished - every request sent is answered and no more will be sent */
static bool finished(const struct bench *b)
{
	return b->done == b->sent && (b->sent >= b->p->requests || b->fault);
}

static void on_raw(int rc, const struct bi_msg *ans, int have, const char *err, void *arg)
{
	struct bench_raw *r = arg;
	struct bench *b = r->b;

	(void)ans;
	(void)have;
	keep_latency(b, r->t0);
	if (rc == DJ_EOK) {
		b->ok++;
	} else {
		b->conn_fail++;
		if (b->first_err[0] == '\0')
			snprintf(b->first_err, sizeof(b->first_err), "%s", err);
	}
	if (warm_answered(b))
		return;
	send_next(b);
	if (finished(b))
		event_base_loopbreak(dc_client_base(b->c));
}

/* on_answer - count, let the device check the accept, send its next request */
static void on_answer(int rc, const struct bi_msg *ans, int have, const char *err, void *arg)
{
	struct bench_dev *bd = arg;
	struct bench *b = bd->b;
	enum lw_sim_status ss;

	keep_latency(b, bd->t0);
	bd->busy = false;
	if (rc != DJ_EOK && !have) {
		b->conn_fail++;
		if (b->first_err[0] == '\0')
			snprintf(b->first_err, sizeof(b->first_err), "%s", err);
	} else if (!have || ans->result != BI_SUCCESS) {
		b->not_success++;
		if (b->first_err[0] == '\0' && have)
			snprintf(b->first_err, sizeof(b->first_err), "Result %s: %s",
				 bi_result_str(ans->result, ans->proto), ans->description);
	} else if (lw_sim_handle_accept(b->cx, &bd->d, ans->phy, ans->phy_len, &ss) != DJ_EOK ||
		   ss != LW_SIM_OK) {
		b->rejected++;
	} else {
		b->ok++;
	}
	if (warm_answered(b))
		return;
	/* closed loop: one request per connection in flight, as a network server's forwarder
	 * keeps it; open loop: what waited for a device */
	send_next(b);
	if (b->stalled)
		send_due(b);
	if (finished(b))
		event_base_loopbreak(dc_client_base(b->c));
}

/* cmp_double - qsort order */
static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* pct - the \p q quantile of sorted \p v (nearest rank) */
static double pct(const double *v, unsigned n, double q)
{
	unsigned i = (unsigned)ceil(q * n);

	return n == 0 ? 0 : v[i == 0 ? 0 : i - 1];
}

/* load_raw - --raw: the body file, whole */
static int load_raw(struct bench *b, const char *path)
{
	FILE *f = fopen(path, "rb");
	long n;

	if (f == NULL || fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) <= 0 ||
	    fseek(f, 0, SEEK_SET) != 0 || (b->raw = malloc((size_t)n)) == NULL ||
	    fread(b->raw, 1, (size_t)n, f) != (size_t)n) {
		fprintf(stderr, "%s: --raw %s: cannot read it (or it is empty)\n", DC_PROGRAM, path);
		if (f != NULL)
			fclose(f);
		return DC_EXIT_INPUT;
	}
	fclose(f);
	b->raw_len = (size_t)n;
	b->rq = calloc(b->p->requests, sizeof(*b->rq));
	return b->rq != NULL ? DC_EXIT_OK : DC_EXIT_INTERNAL;
}

/* load_sim - the simulated devices; reserve the DevNonces of the whole run in the state file */
static int load_sim(struct bench *b, struct dv_csv **csv, struct st_file **st, unsigned n)
{
	const struct dc_params *p = b->p;
	char err[DC_ERR_MAX] = "";
	unsigned i;
	int rc, ret;

	rc = dv_csv_parse_file(p->sim_path, csv, err, sizeof(err));
	if (rc != DJ_EOK) {
		fprintf(stderr, "%s: %s\n", DC_PROGRAM, err[0] ? err : dj_strerror(rc));
		return rc == DJ_ENOMEM ? DC_EXIT_INTERNAL : DC_EXIT_INPUT;
	}
	if ((*csv)->n < p->devices) {
		fprintf(stderr, "%s: %s has %zu devices, --devices asks for %u\n", DC_PROGRAM,
			p->sim_path, (*csv)->n, p->devices);
		return DC_EXIT_INPUT;
	}
	rc = st_load(p->state_path, st, err, sizeof(err));
	if (rc != DJ_EOK) {
		fprintf(stderr, "%s: %s\n", DC_PROGRAM, err);
		return DC_EXIT_INPUT;
	}
	b->devs = calloc(n, sizeof(*b->devs));
	if (b->devs == NULL)
		return DC_EXIT_INTERNAL;
	for (i = 0; i < n; i++) {
		struct lw_sim_device tmp;
		unsigned joins = p->requests / n + (i < p->requests % n ? 1 : 0);

		b->devs[i].b = b;
		b->devs[i].idx = i;
		ret = exec__sim_init(b->cx, &(*csv)->rows[i], *st, &b->devs[i].d);
		if (ret != DC_EXIT_OK)
			return ret;
		tmp = b->devs[i].d;
		tmp.dev_nonce_next += joins;
		rc = st_update(*st, &tmp);
		lw_sim_wipe(&tmp);
		if (rc != DJ_EOK)
			return DC_EXIT_INTERNAL;
	}
	if (st_save(*st, p->state_path, err, sizeof(err)) != DJ_EOK) {
		fprintf(stderr, "%s: %s\n", DC_PROGRAM, err);
		return DC_EXIT_INPUT;
	}
	return DC_EXIT_OK;
}

/* on_clock - --on-clock CMD: run CMD by the shell once the warm-up is answered, before the clock
 * starts (the benchmarks sample the server's CPU there, so that the timed phase alone counts);
 * DC_BENCH_WARM in its environment: the warm-up requests. DJ_EOK when it exited 0. */
static int on_clock(const struct bench *b)
{
	char warm[16];
	int st;

	snprintf(warm, sizeof(warm), "%u", b->warm);
	if (setenv("DC_BENCH_WARM", warm, 1) != 0)
		return DJ_ENOMEM;
	fflush(stdout);
	st = system(b->p->on_clock);
	if (st == -1 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		fprintf(stderr, "%s: bench --on-clock: the command failed (%s %d)\n", DC_PROGRAM,
			st != -1 && WIFEXITED(st) ? "exit" : "status", st != -1 && WIFEXITED(st) ?
			WEXITSTATUS(st) : st);
		return DJ_EIO;
	}
	return DJ_EOK;
}

/* warm_up - one request on each connection, all answered, before the clock starts */
static int warm_up(struct bench *b)
{
	const struct dc_params *p = b->p;
	unsigned i;
	int rc;

	b->warming = true;
	for (i = 0; i < p->connections && i < p->requests; i++) {
		rc = b->raw != NULL ? send_raw(b) : send_one(&b->devs[i]);
		if (rc != DJ_EOK)
			return rc;
	}
	b->warm = i;
	b->next = b->ndev > 0 ? i % b->ndev : 0;
	while (b->done < b->sent && !b->fault)
		if (event_base_dispatch(dc_client_base(b->c)) < 0)
			return DJ_EIO;
	b->warming = false;
	return b->fault;
}

int exec__bench(const struct dc_params *p, struct bi_kek *kek)
{
	struct bench b;
	struct dv_csv *csv = NULL;
	struct st_file *st = NULL;
	char err[DC_ERR_MAX] = "";
	unsigned n = 0, i, ok_warm;
	double t0, el;
	int rc, ret = DC_EXIT_INTERNAL;

	(void)kek;
	/* a server that closes a connection (a drain) fails the requests on it; a write to it
	 * must not end the bench with SIGPIPE, before it has said anything */
	signal(SIGPIPE, SIG_IGN);
	memset(&b, 0, sizeof(b));
	b.p = p;
	n = p->devices < p->requests ? p->devices : p->requests;
	if (p->raw_path == NULL && n < p->connections) {
		/* one device must never have two requests in flight (its DevNonce order) */
		fprintf(stderr, "%s: bench: --devices (and --requests) must be at least "
			"--connections (%u)\n", DC_PROGRAM, p->connections);
		ret = DC_EXIT_USAGE;
		goto out;
	}
	b.lat = calloc(p->requests, sizeof(*b.lat));
	if (b.lat == NULL || lw_crypto_new(&b.cx) != DJ_EOK)
		goto out;
	ret = p->raw_path != NULL ? load_raw(&b, p->raw_path) : load_sim(&b, &csv, &st, n);
	if (ret != DC_EXIT_OK)
		goto out;
	ret = exec__client(p, p->connections, &b.c);
	if (ret != DC_EXIT_OK)
		goto out;
	ret = DC_EXIT_INTERNAL;
	b.ndev = n;
	rc = warm_up(&b);
	if (rc != DJ_EOK) {
		fprintf(stderr, "%s: %s\n", DC_PROGRAM, dj_strerror(rc));
		goto out;
	}
	ok_warm = b.ok;
	if (p->on_clock != NULL && on_clock(&b) != DJ_EOK) {
		ret = DC_EXIT_INPUT;
		goto out;
	}
	t0 = b.start = dj_clock_mono_s();
	if (p->rate > 0) {
		b.tick = evtimer_new(dc_client_base(b.c), on_tick, &b);
		if (b.tick == NULL)
			goto out;
		arm_tick(&b);
	} else {
		for (i = 0; i < b.warm && b.sent < p->requests; i++)
			send_next(&b);
	}
	while (!finished(&b))
		if (event_base_dispatch(dc_client_base(b.c)) < 0)
			goto out;
	el = dj_clock_mono_s() - t0;
	if (st != NULL) {
		for (i = 0; i < n; i++)
			if (st_update(st, &b.devs[i].d) != DJ_EOK)
				goto out;
		if (st_save(st, p->state_path, err, sizeof(err)) != DJ_EOK)
			fprintf(stderr, "%s: %s\n", DC_PROGRAM, err);
	}
	qsort(b.lat, b.nlat, sizeof(*b.lat), cmp_double);
	printf("requests %u  devices %u  connections %u%s\n", b.done,
	       p->raw_path != NULL ? 0 : n, p->connections, p->raw_path != NULL ? "  (raw)" : "");
	if (p->rate > 0)
		printf("open loop: offered %u/s\n", p->rate);
	printf("success %u  not-success %u  failed %u  accept-rejected %u\n", b.ok,
	       b.not_success, b.conn_fail, b.rejected);
	printf("warm-up %u (one request per connection before the clock; not in what follows)\n",
	       b.warm);
	printf("elapsed %.3f s  %.1f joins/s  p50 %.2f ms  p99 %.2f ms  p99.9 %.2f ms\n", el,
	       el > 0 ? (b.ok - ok_warm) / el : 0.0, 1e3 * pct(b.lat, b.nlat, 0.50),
	       1e3 * pct(b.lat, b.nlat, 0.99), 1e3 * pct(b.lat, b.nlat, 0.999));
	if (b.first_err[0] != '\0')
		fprintf(stderr, "%s: first failure: %s\n", DC_PROGRAM, b.first_err);
	ret = b.fault != 0 ? DC_EXIT_INTERNAL : b.conn_fail > 0 ? DC_EXIT_CONN
	      : b.not_success > 0 ? DC_EXIT_RESULT : b.rejected > 0 ? DC_EXIT_DEVICE : DC_EXIT_OK;
out:
	b.fault = b.fault != 0 ? b.fault : DJ_ESHUTDOWN;	/* cancelled requests send no more */
	if (b.tick != NULL)
		event_free(b.tick);
	dc_client_free(b.c);
	for (i = 0; b.devs != NULL && i < n; i++)
		lw_sim_wipe(&b.devs[i].d);
	free(b.devs);
	free(b.lat);
	free(b.raw);
	free(b.rq);
	lw_crypto_free(b.cx);
	st_free(st);
	dv_csv_free(csv);
	return ret;
}
