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
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
};

struct bench {
	const struct dc_params *p;
	struct dc_client *c;
	struct lw_crypto *cx;
	struct bench_dev *devs;
	unsigned ndev;		/* devices taking part */
	unsigned next;		/* the device whose request goes next (round robin) */
	unsigned sent, done, ok, not_success, conn_fail, rejected;
	double *lat;
	int fault;
	char first_err[DC_ERR_MAX];
};

static void on_answer(int rc, const struct bi_msg *ans, int have, const char *err, void *arg);

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
	bd->t0 = dj_clock_mono_s();
	rc = dc_client_send(b->c, &req, on_answer, bd);
	if (rc == DJ_EOK)
		b->sent++;
	return rc;
}

/* on_answer - count, let the device check the accept, send its next request */
static void on_answer(int rc, const struct bi_msg *ans, int have, const char *err, void *arg)
{
	struct bench_dev *bd = arg;
	struct bench *b = bd->b;
	enum lw_sim_status ss;

	b->lat[b->done++] = dj_clock_mono_s() - bd->t0;
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
	/* One request per connection in flight, as a network server's forwarder keeps it; the
	 * next request comes from the next device in turn (a device is never in flight twice
	 * because there are at least as many devices as connections). */
	if (b->sent < b->p->requests && !b->fault) {
		rc = send_one(&b->devs[b->next]);
		b->next = (b->next + 1) % b->ndev;
		if (rc != DJ_EOK)
			b->fault = rc;
	}
	if (b->done == b->sent)
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

int exec__bench(const struct dc_params *p, struct bi_kek *kek)
{
	struct bench b;
	struct dv_csv *csv = NULL;
	struct st_file *st = NULL;
	char err[DC_ERR_MAX] = "";
	unsigned n = 0, i;
	double t0, el;
	int rc, ret = DC_EXIT_INTERNAL;

	(void)kek;
	memset(&b, 0, sizeof(b));
	b.p = p;
	rc = dv_csv_parse_file(p->sim_path, &csv, err, sizeof(err));
	if (rc != DJ_EOK) {
		fprintf(stderr, "%s: %s\n", DC_PROGRAM, err[0] ? err : dj_strerror(rc));
		ret = rc == DJ_ENOMEM ? DC_EXIT_INTERNAL : DC_EXIT_INPUT;
		goto out;
	}
	if (csv->n < p->devices) {
		fprintf(stderr, "%s: %s has %zu devices, --devices asks for %u\n", DC_PROGRAM,
			p->sim_path, csv->n, p->devices);
		ret = DC_EXIT_INPUT;
		goto out;
	}
	rc = st_load(p->state_path, &st, err, sizeof(err));
	if (rc != DJ_EOK) {
		fprintf(stderr, "%s: %s\n", DC_PROGRAM, err);
		ret = DC_EXIT_INPUT;
		goto out;
	}
	n = p->devices < p->requests ? p->devices : p->requests;
	if (n < p->connections) {
		/* one device must never have two requests in flight (its DevNonce order) */
		fprintf(stderr, "%s: bench: --devices (and --requests) must be at least "
			"--connections (%u)\n", DC_PROGRAM, p->connections);
		ret = DC_EXIT_USAGE;
		goto out;
	}
	b.devs = calloc(n, sizeof(*b.devs));
	b.lat = calloc(p->requests, sizeof(*b.lat));
	if (b.devs == NULL || b.lat == NULL || lw_crypto_new(&b.cx) != DJ_EOK)
		goto out;
	/* reserve the DevNonces of the whole run first */
	for (i = 0; i < n; i++) {
		struct lw_sim_device tmp;
		unsigned joins = p->requests / n + (i < p->requests % n ? 1 : 0);

		b.devs[i].b = &b;
		b.devs[i].idx = i;
		ret = exec__sim_init(b.cx, &csv->rows[i], st, &b.devs[i].d);
		if (ret != DC_EXIT_OK)
			goto out;
		tmp = b.devs[i].d;
		tmp.dev_nonce_next += joins;
		rc = st_update(st, &tmp);
		lw_sim_wipe(&tmp);
		if (rc != DJ_EOK)
			goto out;
	}
	if (st_save(st, p->state_path, err, sizeof(err)) != DJ_EOK) {
		fprintf(stderr, "%s: %s\n", DC_PROGRAM, err);
		ret = DC_EXIT_INPUT;
		goto out;
	}
	ret = exec__client(p, p->connections, &b.c);
	if (ret != DC_EXIT_OK)
		goto out;
	ret = DC_EXIT_INTERNAL;
	b.ndev = n;
	t0 = dj_clock_mono_s();
	for (i = 0; i < n && i < p->connections; i++) {
		rc = send_one(&b.devs[i]);
		if (rc != DJ_EOK) {
			fprintf(stderr, "%s: %s\n", DC_PROGRAM, dj_strerror(rc));
			goto out;
		}
	}
	b.next = i % n;
	while (b.done < b.sent)
		if (event_base_dispatch(dc_client_base(b.c)) < 0)
			goto out;
	el = dj_clock_mono_s() - t0;
	for (i = 0; i < n; i++)
		if (st_update(st, &b.devs[i].d) != DJ_EOK)
			goto out;
	if (st_save(st, p->state_path, err, sizeof(err)) != DJ_EOK)
		fprintf(stderr, "%s: %s\n", DC_PROGRAM, err);
	qsort(b.lat, b.done, sizeof(*b.lat), cmp_double);
	printf("requests %u  devices %u  connections %u\n", b.done, n, p->connections);
	printf("success %u  not-success %u  failed %u  accept-rejected %u\n", b.ok,
	       b.not_success, b.conn_fail, b.rejected);
	printf("elapsed %.3f s  %.1f joins/s  p50 %.2f ms  p99 %.2f ms\n", el,
	       el > 0 ? b.ok / el : 0.0, 1e3 * pct(b.lat, b.done, 0.50),
	       1e3 * pct(b.lat, b.done, 0.99));
	if (b.first_err[0] != '\0')
		fprintf(stderr, "%s: first failure: %s\n", DC_PROGRAM, b.first_err);
	ret = b.fault != 0 ? DC_EXIT_INTERNAL : b.conn_fail > 0 ? DC_EXIT_CONN
	      : b.not_success > 0 ? DC_EXIT_RESULT : b.rejected > 0 ? DC_EXIT_DEVICE : DC_EXIT_OK;
out:
	b.fault = b.fault != 0 ? b.fault : DJ_ESHUTDOWN;	/* cancelled requests send no more */
	dc_client_free(b.c);
	for (i = 0; b.devs != NULL && i < n; i++)
		lw_sim_wipe(&b.devs[i].d);
	free(b.devs);
	free(b.lat);
	lw_crypto_free(b.cx);
	st_free(st);
	dv_csv_free(csv);
	return ret;
}
