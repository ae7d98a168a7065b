/*
 * test_srv.c - srv (joinserver/danejoind/srv.h) against real TLS clients.
 *
 * A throwaway PKI is made at run time with the openssl CLI in a temporary directory: a private
 * root (EC P-256), the server's certificate (SAN DNS:js.test), a good client (SAN DNS:ns1.test),
 * a client under another root, a client with two SAN dNSNames and one with none. srv runs on
 * its loop in a thread; curl is the client. Checked: the identity reaches the handler; no
 * certificate, a foreign root, two SANs, no SAN and a TLS 1.2-only client are all refused at the
 * handshake; 413 over max_body; 405 for GET; two requests share one keep-alive connection; the
 * metrics listener; srv_call_in_loop from another thread; a deferred reply; a client that leaves
 * before its deferred reply; max_connections and header_timeout; reload; stop accepting.
 * HTTP/1.1 as srv_http.c decides it, over raw TLS (our own client, one record per SSL_write):
 * pipelined requests answered in order (the first one deferred), a request one byte per record,
 * bodies over max_body (Content-Length, chunked: 413), headers over the limit, a bad chunk size,
 * bad bytes in the request line (400), Connection: close and HTTP/1.0 honoured, and a flood
 * behind a held request buffered no further than the read watermark; idle_timeout, but not for a request held longer.
 *
 * Readiness is a connect-retry loop, never a fixed sleep; the temporary directory is removed at
 * exit on every path.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/thread.h>
#include <openssl/ssl.h>

#include "common/dj_err.h"
#include "common/dj_log.h"
#include "bi/srv.h"
#include "bi/srv_internal.h" /* the input buffered on a connection (the flood test) */

#include "it_check.h"
#include "it_net.h"

#define MAX_BODY       1024
#define HEADER_TIMEOUT 3 /* seconds; long enough that 4 connects under a loaded CI land within it */
#define IDLE_TIMEOUT   5
#define MAX_CONNS      4
#define CURL	       "timeout 10 curl -sS --noproxy '*' "
#define WAIT_MS	       5000 /* upper bound for every condition we poll for */

static char dir[256];
static unsigned port, mport;
static struct event_base *base;
static struct srv *srv;
static pthread_t loop_thread;

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static char logbuf[16384];
static struct srv_req *held; /* a request the handler kept for a later answer */
static int ran_on_loop = -1;
static unsigned q_conns, q_flight;
static int q_done;

/* cleanup - remove the temporary PKI (atexit) */
static void cleanup(void)
{
	it_rm_dir(dir);
}

/* log_sink - keep srv's log lines for assertions */
static void log_sink(int level, const char *line, void *arg)
{
	(void)arg;
	pthread_mutex_lock(&mu);
	if (strlen(logbuf) + strlen(line) + 2 < sizeof(logbuf)) {
		strcat(logbuf, line);
		strcat(logbuf, "\n");
	}
	pthread_mutex_unlock(&mu);
	if (getenv("TEST_SRV_VERBOSE") != NULL)
		fprintf(stderr, "log %d: %s\n", level, line);
}

/* sh - run a shell command, return its exit status */
static int sh(const char *fmt, ...) DJ_PRINTF(1, 2);
static int sh(const char *fmt, ...)
{
	char cmd[4096];
	va_list ap;
	int rc;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	rc = system(cmd);
	return rc == -1 ? -1 : WEXITSTATUS(rc);
}

/* run - run a command and capture its stdout; returns the exit status */
static int run(char *out, size_t outlen, const char *fmt, ...) DJ_PRINTF(3, 4);
static int run(char *out, size_t outlen, const char *fmt, ...)
{
	char cmd[4096];
	va_list ap;
	FILE *p;
	size_t n;
	int rc;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	p = popen(cmd, "r");
	CHECK(p != NULL, "popen");
	n = fread(out, 1, outlen - 1, p);
	out[n] = '\0';
	rc = pclose(p);
	return rc == -1 ? -1 : WEXITSTATUS(rc);
}

/* make_pki - the throwaway certificates */
static void make_pki(void)
{
	int rc = sh("set -e; cd '%s'; exec 2>pki.log\n"
		    "ca() { openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
		    "-keyout $1.key -out $1.pem -subj /CN=$1 -days 2; }\n"
		    "leaf() { openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
		    "-keyout $1.key -out $1.csr -subj /CN=$1; printf '%%s\\n' \"$3\" > $1.ext; "
		    "openssl x509 -req -in $1.csr -CA $2.pem -CAkey $2.key -CAcreateserial -days 2 "
		    "-extfile $1.ext -out $1.pem; }\n"
		    "ca root; ca other\n"
		    "leaf server root subjectAltName=DNS:js.test\n"
		    "leaf good root subjectAltName=DNS:ns1.test\n"
		    "leaf foreign other subjectAltName=DNS:ns1.test\n"
		    "leaf twosan root subjectAltName=DNS:ns1.test,DNS:ns2.test\n"
		    "leaf nosan root basicConstraints=CA:FALSE\n",
		    dir);
	CHECK(rc == 0, "making the PKI failed (see %s/pki.log)", dir);
}

/* closed_within - whether the peer closes \p fd within \p ms */
static int closed_within(int fd, int ms)
{
	struct pollfd pfd = {.fd = fd, .events = POLLIN};
	char b[64];

	if (poll(&pfd, 1, ms) != 1)
		return 0;
	return recv(fd, b, sizeof(b), 0) <= 0;
}

/* defer_thread - another thread answers a held request through srv_call_in_loop */
static void reply_held(void *arg);
static void *defer_thread(void *arg)
{
	CHECK(srv_call_in_loop(srv, reply_held, arg) == DJ_EOK, "srv_call_in_loop");
	return NULL;
}

/* reply_held - on the loop: answer the deferred request */
static void reply_held(void *arg)
{
	struct srv_req *r = arg;
	char json[SRV_IDENTITY_MAX + 64];
	int n = snprintf(json, sizeof(json), "{\"deferred\":\"%s\"}", srv_req_peer(r));
	double now = srv_now(srv);

	/* a srv_call_in_loop callback: one reading for the whole pass, after the request's */
	CHECK(now >= srv_req_started(r) && srv_now(srv) == now, "srv_now in a call: %f then %f",
	      now, srv_now(srv));
	srv_reply(r, 200, json, (size_t)n);
}

/* answer_size - a 200 whose body is \p n bytes ('a' to 'z' over and over) */
static void answer_size(struct srv_req *r, size_t n)
{
	char *body = malloc(n + 1);

	CHECK(body != NULL, "malloc");
	for (size_t i = 0; i < n; i++)
		body[i] = (char)('a' + i % 26);
	srv_reply(r, 200, body, n);
	free(body);
}

/* handler - echo {"peer":..., "len":N}; /defer answers from another thread; /hold keeps it;
 * /size/N answers N bytes, /status/N answers {} with status N, /path/... {"path":PATH} */
static void handler(struct srv_req *r, void *arg)
{
	char json[SRV_IDENTITY_MAX + 64];
	size_t len;
	pthread_t t;
	int n;

	(void)arg;
	(void)srv_req_body(r, &len);
	CHECK(srv_req_started(r) > 0, "started");
	if (strcmp(srv_req_path(r), "/defer") == 0) {
		CHECK(pthread_create(&t, NULL, defer_thread, r) == 0, "pthread_create");
		pthread_detach(t);
		return;
	}
	if (strcmp(srv_req_path(r), "/hold") == 0) {
		pthread_mutex_lock(&mu);
		held = r;
		pthread_cond_broadcast(&cv);
		pthread_mutex_unlock(&mu);
		return;
	}
	if (strncmp(srv_req_path(r), "/size/", 6) == 0) {
		answer_size(r, strtoul(srv_req_path(r) + 6, NULL, 10));
		return;
	}
	if (strncmp(srv_req_path(r), "/path/", 6) == 0) {
		n = snprintf(json, sizeof(json), "{\"path\":\"%s\"}", srv_req_path(r));
		srv_reply(r, 200, json, (size_t)n);
		return;
	}
	if (strncmp(srv_req_path(r), "/status/", 8) == 0) {
		srv_reply(r, atoi(srv_req_path(r) + 8), "{}", 2);
		return;
	}
	n = snprintf(json, sizeof(json), "{\"peer\":\"%s\",\"len\":%zu}", srv_req_peer(r), len);
	srv_reply(r, 200, json, (size_t)n);
}

/* metrics - the metrics text */
static char *metrics(void *arg)
{
	(void)arg;
	return strdup("# TYPE dj_test counter\ndj_test 42\n");
}

/* loop_main - the loop thread */
static void *loop_main(void *arg)
{
	(void)arg;
	event_base_loop(base, EVLOOP_NO_EXIT_ON_EMPTY);
	return NULL;
}

/* on_loop - records whether it ran on the loop thread */
static void on_loop(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&mu);
	ran_on_loop = pthread_equal(pthread_self(), loop_thread) ? 1 : 0;
	pthread_cond_broadcast(&cv);
	pthread_mutex_unlock(&mu);
}

/* Calls from two other threads, in their own storage (srv_call_in_loop_at) and srv's
 * (srv_call_in_loop), interleaved: each runs once, on the loop, and each thread's in order. */
#define SEQ_N 2000
struct seq {
	struct srv_call call[SEQ_N];
	unsigned ran[SEQ_N];	/* how many times call k ran (on the loop) */
	unsigned next;		/* the next k expected, this thread's order */
	bool order_ok, on_loop_ok;
};
static struct seq seq[2];
static unsigned seq_done;

struct seq_arg {
	struct seq *q;
	unsigned k;
};
static struct seq_arg seq_args[2][SEQ_N];

static void seq_run(void *arg)
{
	struct seq_arg *a = arg;

	pthread_mutex_lock(&mu);
	a->q->ran[a->k]++;
	if (a->k != a->q->next++)
		a->q->order_ok = false;
	if (!pthread_equal(pthread_self(), loop_thread))
		a->q->on_loop_ok = false;
	seq_done++;
	pthread_cond_broadcast(&cv);
	pthread_mutex_unlock(&mu);
}

static void *seq_thread(void *arg)
{
	struct seq *q = arg;
	unsigned k;

	for (k = 0; k < SEQ_N; k++) {
		seq_args[q - seq][k] = (struct seq_arg){ q, k };
		if (k % 3 == 2)
			CHECK(srv_call_in_loop(srv, seq_run, &seq_args[q - seq][k]) == DJ_EOK,
			      "srv_call_in_loop");
		else
			srv_call_in_loop_at(srv, &q->call[k], seq_run, &seq_args[q - seq][k]);
	}
	return NULL;
}

static void test_call_seq(void)
{
	pthread_t t[2];
	unsigned i, k, bad = 0;

	for (i = 0; i < 2; i++) {
		seq[i].order_ok = seq[i].on_loop_ok = true;
		CHECK(pthread_create(&t[i], NULL, seq_thread, &seq[i]) == 0, "pthread_create");
	}
	for (i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	pthread_mutex_lock(&mu);
	while (seq_done < 2 * SEQ_N)
		pthread_cond_wait(&cv, &mu);
	for (i = 0; i < 2; i++) {
		for (k = 0; k < SEQ_N; k++)
			bad += seq[i].ran[k] != 1;
		CHECK(seq[i].order_ok, "calls of thread %u ran out of order", i);
		CHECK(seq[i].on_loop_ok, "calls of thread %u ran off the loop thread", i);
	}
	CHECK(bad == 0, "%u calls did not run exactly once", bad);
	pthread_mutex_unlock(&mu);
}

/* query - on the loop: read the counters */
static void query(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&mu);
	q_conns = srv_connections(srv);
	q_flight = srv_in_flight(srv);
	q_done = 1;
	pthread_cond_broadcast(&cv);
	pthread_mutex_unlock(&mu);
}

/* counters - the counters, read on the loop thread */
static void counters(unsigned *conns, unsigned *flight)
{
	pthread_mutex_lock(&mu);
	q_done = 0;
	pthread_mutex_unlock(&mu);
	CHECK(srv_call_in_loop(srv, query, NULL) == DJ_EOK, "srv_call_in_loop");
	pthread_mutex_lock(&mu);
	while (!q_done)
		pthread_cond_wait(&cv, &mu);
	*conns = q_conns;
	*flight = q_flight;
	pthread_mutex_unlock(&mu);
}

/* wait_counters - poll until the counters reach the expected values */
static void wait_counters(unsigned conns, unsigned flight, int line)
{
	struct timespec ts = {0, 10 * 1000 * 1000};
	unsigned c = 0, f = 0;
	int i;

	for (i = 0; i < WAIT_MS / 10; i++) {
		counters(&c, &f);
		if (c == conns && f == flight)
			return;
		nanosleep(&ts, NULL);
	}
	CHECK(0, "line %d: connections %u in_flight %u, want %u %u", line, c, f, conns, flight);
}

/* stop_accepting - on the loop: srv_stop_accepting */
static void stop_accepting(void *arg)
{
	(void)arg;
	srv_stop_accepting(srv);
}

static char reload_err[256];
static int reload_rc = 1;

/* reload - on the loop: srv_reload_tls with the files in arg (3 paths) */
static void reload(void *arg)
{
	char(*paths)[300] = arg;
	int rc = srv_reload_tls(srv, paths[0], paths[1], paths[2], reload_err, sizeof(reload_err));

	pthread_mutex_lock(&mu);
	reload_rc = rc;
	pthread_cond_broadcast(&cv);
	pthread_mutex_unlock(&mu);
}

/* reload_wait - run reload on the loop and wait for its result */
static int reload_wait(char (*paths)[300])
{
	int rc;

	pthread_mutex_lock(&mu);
	reload_rc = 1;
	pthread_mutex_unlock(&mu);
	CHECK(srv_call_in_loop(srv, reload, paths) == DJ_EOK, "srv_call_in_loop");
	pthread_mutex_lock(&mu);
	while (reload_rc == 1)
		pthread_cond_wait(&cv, &mu);
	rc = reload_rc;
	pthread_mutex_unlock(&mu);
	return rc;
}

/* stop - on the loop: end it */
static void stop(void *arg)
{
	(void)arg;
	event_base_loopbreak(base);
}

/* curl_tls - POST with client cert \p who (NULL: none); returns curl's status, output in out */
static int curl_tls(char *out, size_t outlen, const char *who, const char *extra, const char *path)
{
	char cert[600] = "";

	if (who != NULL)
		snprintf(cert, sizeof(cert), "--cert '%s/%s.pem' --key '%s/%s.key'", dir, who, dir,
			 who);
	return run(out, outlen,
		   CURL "--cacert '%s/root.pem' %s --resolve js.test:%u:127.0.0.1 %s "
			"-w ' %%{http_code}' https://js.test:%u%s 2>/dev/null",
		   dir, cert, port, extra, port, path);
}

/* ---- raw TLS: our own client, so that records, pipelining and floods are ours to shape ---- */

/* tls_open - a TLS connection as \p who ("good"); blocking, 5 s socket timeouts */
static SSL *tls_open(const char *who)
{
	struct timeval tv = {.tv_sec = 5};
	char cert[300], key[300], ca[300];
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	SSL *ssl;
	int fd = it_tcp_connect(port, true);

	CHECK(ctx != NULL && fd >= 0, "tls_open: context or connect");
	snprintf(cert, sizeof(cert), "%s/%s.pem", dir, who);
	snprintf(key, sizeof(key), "%s/%s.key", dir, who);
	snprintf(ca, sizeof(ca), "%s/root.pem", dir);
	CHECK(SSL_CTX_use_certificate_file(ctx, cert, SSL_FILETYPE_PEM) == 1 &&
		      SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) == 1 &&
		      SSL_CTX_load_verify_locations(ctx, ca, NULL) == 1,
	      "tls_open: client files");
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	/* srv closes without close_notify: its EOF is SSL_ERROR_ZERO_RETURN, a timeout is not */
	SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	ssl = SSL_new(ctx);
	SSL_CTX_free(ctx);
	CHECK(ssl != NULL && SSL_set_fd(ssl, fd) == 1 && SSL_set_tlsext_host_name(ssl, "js.test") &&
		      SSL_connect(ssl) == 1,
	      "tls_open: handshake");
	return ssl;
}

/* tls_close - close the client side */
static void tls_close(SSL *ssl)
{
	int fd = SSL_get_fd(ssl);

	SSL_free(ssl);
	close(fd);
}

/* tls_send - \p len bytes, \p step bytes per record (0: all in one); the bytes written */
static size_t tls_send(SSL *ssl, const char *d, size_t len, size_t step)
{
	size_t off = 0, n;
	int w;

	while (off < len) {
		n = step == 0 || len - off < step ? len - off : step;
		w = SSL_write(ssl, d + off, (int)n);
		if (w <= 0)
			break;
		off += (size_t)w;
	}
	return off;
}

/* answers_in - how many complete answers \p buf holds (Content-Length bodies) */
static int answers_in(const char *buf, size_t len)
{
	const char *p = buf, *end = buf + len, *hend, *cl;
	int n = 0;
	size_t body;

	while (p < end && (hend = strstr(p, "\r\n\r\n")) != NULL) {
		cl = strstr(p, "Content-Length: ");
		body = cl != NULL && cl < hend ? strtoul(cl + 16, NULL, 10) : 0;
		if ((size_t)(end - (hend + 4)) < body)
			break;
		p = hend + 4 + body;
		n++;
	}
	return n;
}

/* tls_answers - read until \p n answers are in (or the server closes, or 5 s pass); whether
 * the server closed is in *closed when not NULL (then it reads on until it does) */
static size_t tls_answers(SSL *ssl, char *out, size_t outlen, int n, bool *closed)
{
	size_t len = 0;
	int r;

	if (closed != NULL)
		*closed = false;
	while (len < outlen - 1) {
		out[len] = '\0';
		if (closed == NULL && answers_in(out, len) >= n)
			break;
		r = SSL_read(ssl, out + len, (int)(outlen - 1 - len));
		if (r <= 0) {
			int e = SSL_get_error(ssl, r);

			if (closed != NULL)
				*closed = e == SSL_ERROR_ZERO_RETURN ||
					  (e == SSL_ERROR_SYSCALL && errno != EAGAIN &&
					   errno != EWOULDBLOCK);
			break;
		}
		len += (size_t)r;
	}
	out[len] = '\0';
	return len;
}

/* status_of - the status of the \p i-th answer in \p out, or 0 */
static int status_of(const char *out, int i)
{
	const char *p = out;

	for (int k = 0; p != NULL; k++) {
		p = strstr(p, "HTTP/1.1 ");
		if (p == NULL)
			return 0;
		if (k == i)
			return atoi(p + 9);
		p += 9;
	}
	return 0;
}

static size_t q_input_max;

/* input_query - on the loop: the most input any connection holds unparsed */
static void input_query(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&mu);
	q_input_max = 0;
	for (struct conn *c = srv->conns; c != NULL; c = c->next) {
		size_t n = c->bev != NULL ? evbuffer_get_length(bufferevent_get_input(c->bev)) : 0;

		if (n > q_input_max)
			q_input_max = n;
	}
	q_done = 1;
	pthread_cond_broadcast(&cv);
	pthread_mutex_unlock(&mu);
}

/* input_max - the most input a connection holds unparsed (read on the loop) */
static size_t input_max(void)
{
	size_t n;

	pthread_mutex_lock(&mu);
	q_done = 0;
	pthread_mutex_unlock(&mu);
	CHECK(srv_call_in_loop(srv, input_query, NULL) == DJ_EOK, "srv_call_in_loop");
	pthread_mutex_lock(&mu);
	while (!q_done)
		pthread_cond_wait(&cv, &mu);
	n = q_input_max;
	pthread_mutex_unlock(&mu);
	return n;
}

/* log_has - whether srv logged \p what */
static bool log_has(const char *what)
{
	bool yes;

	pthread_mutex_lock(&mu);
	yes = strstr(logbuf, what) != NULL;
	pthread_mutex_unlock(&mu);
	return yes;
}

#define POST(path, body) "POST " path " HTTP/1.1\r\nHost: js.test\r\nContent-Length: %zu\r\n\r\n" body

#define POST0(path) "POST " path " HTTP/1.1\r\nHost: js.test\r\nContent-Length: 0\r\n\r\n"

/* raw_one - send \p req (\p step bytes per record) on a new connection; the answers until
 * the server closes (or 5 s); *closed: whether it closed */
static void raw_one(const char *req, size_t len, size_t step, char *out, size_t outlen,
		    bool *closed)
{
	SSL *ssl = tls_open("good");

	tls_send(ssl, req, len, step);
	tls_answers(ssl, out, outlen, 1, closed);
	tls_close(ssl);
}

/* test_pipelined - three requests in one record, the first answered from another thread:
 * answered in order on one connection; then one request a byte per record */
static void test_pipelined(void)
{
	char req[1024], out[8192];
	SSL *ssl = tls_open("good");
	int n = snprintf(req, sizeof(req), POST("/defer", "x") POST("/a", "bb") POST("/b", "ccc"),
			 (size_t)1, (size_t)2, (size_t)3);

	CHECK(tls_send(ssl, req, (size_t)n, 0) == (size_t)n, "pipelined: send");
	tls_answers(ssl, out, sizeof(out), 3, NULL);
	CHECK(answers_in(out, strlen(out)) == 3 && status_of(out, 0) == 200 &&
		      status_of(out, 2) == 200 && strstr(out, "{\"deferred\":\"ns1.test\"}") != NULL &&
		      strstr(out, "{\"deferred\"") < strstr(out, "\"len\":2}") &&
		      strstr(out, "\"len\":2}") < strstr(out, "\"len\":3}"),
	      "pipelined requests not answered in order:\n%s", out);
	/* the same connection still serves, a byte per TLS record */
	n = snprintf(req, sizeof(req), POST("/split", "split"), (size_t)5);
	CHECK(tls_send(ssl, req, (size_t)n, 1) == (size_t)n, "split: send");
	tls_answers(ssl, out, sizeof(out), 1, NULL);
	CHECK(status_of(out, 0) == 200 && strstr(out, "\"len\":5}") != NULL &&
		      strstr(out, "Content-Type: application/json\r\n") != NULL &&
		      strstr(out, "Date: ") != NULL && strstr(out, "Connection: close") == NULL,
	      "a request a byte per record:\n%s", out);
	tls_close(ssl);
}

/* head_want - the status line and headers srv_http must send, by the snprintf format it used
 * before answer_head wrote them piece by piece, with the Date value \p date */
static int head_want(char *buf, size_t cap, int status, const char *why, const char *date,
		     size_t len, const char *extra, const char *conn)
{
	return snprintf(buf, cap,
			"HTTP/1.1 %d %s\r\n%s%s%sContent-Type: application/json"
			"\r\nContent-Length: %zu\r\n%s%s\r\n",
			status, why, "Date: ", date, "\r\n", len, extra, conn);
}

/* rfc1123 - whether \p d starts with a date shaped "Sun, 06 Nov 1994 08:49:37 GMT" */
static bool rfc1123(const char *d)
{
	static const char shape[] = "Aaa, 00 Aaa 0000 00:00:00 GMT";

	for (size_t i = 0; i < sizeof(shape) - 1; i++) {
		char c = d[i], k = shape[i];

		if (k == 'A' ? !(c >= 'A' && c <= 'Z')
		    : k == 'a' ? !(c >= 'a' && c <= 'z')
		    : k == '0' ? !(c >= '0' && c <= '9')
			       : c != k)
			return false;
	}
	return true;
}

/* test_heads - the exact bytes of answers' status lines and headers (the Date value aside,
 * checked to be an RFC 1123 date), Content-Length across digit counts, and their bodies; the
 * answers of one keep-alive connection, the last one closing it */
static void test_heads(void)
{
	static const struct {
		const char *req;
		int status;
		const char *why, *extra, *conn;
		size_t len;	/* the body's; /size/N answers a-z repeated */
		bool closes;
	} t[] = {
		{POST0("/size/0"), 200, "OK", "", "", 0, false},
		{POST0("/size/9"), 200, "OK", "", "", 9, false},
		{POST0("/size/10"), 200, "OK", "", "", 10, false},
		{POST0("/size/99"), 200, "OK", "", "", 99, false},
		{POST0("/size/99999"), 200, "OK", "", "", 99999, false},
		{POST0("/size/100000"), 200, "OK", "", "", 100000, false},
		{POST0("/status/299"), 299, "Status", "", "", 2, false},
		{POST0("/status/503"), 503, "Service Unavailable", "", "", 2, false},
		{"GET / HTTP/1.1\r\nHost: js.test\r\n\r\n", 405, "Method Not Allowed",
		 "Allow: POST\r\n", "", 30, false},
		{"POST /size/1 HTTP/1.0\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n",
		 200, "OK", "", "Connection: keep-alive\r\n", 1, false},
		{"POST /size/3 HTTP/1.1\r\nConnection: close\r\nContent-Length: 0\r\n\r\n", 200,
		 "OK", "", "Connection: close\r\n", 3, true},
	};
	static char out[110000], want[512], dv[32];
	const char *date, *body;
	bool closed = false;
	SSL *ssl = tls_open("good");
	int n, w;

	/* one connection, one request at a time: the last one closes it */
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		n = (int)strlen(t[i].req);
		CHECK(tls_send(ssl, t[i].req, (size_t)n, 0) == (size_t)n, "heads %zu: send", i);
		tls_answers(ssl, out, sizeof(out), 1, t[i].closes ? &closed : NULL);
		date = strstr(out, "\r\nDate: ");
		CHECK(date != NULL && strlen(date) > 37 && date[37] == '\r' && rfc1123(date + 8),
		      "heads %zu: no RFC 1123 Date:\n%.300s\nlog:\n%s", i, out, logbuf);
		snprintf(dv, sizeof(dv), "%.29s", date + 8);
		w = head_want(want, sizeof(want), t[i].status, t[i].why, dv, t[i].len,
			      t[i].extra, t[i].conn);
		CHECK(strlen(out) == (size_t)w + t[i].len && memcmp(out, want, (size_t)w) == 0,
		      "heads %zu: want %zu bytes, head\n%s\ngot %zu bytes:\n%.300s", i,
		      (size_t)w + t[i].len, want, strlen(out), out);
		body = out + w;
		for (size_t k = 0; strncmp(t[i].req + 6, "size", 4) == 0 && k < t[i].len; k++)
			CHECK(body[k] == 'a' + (char)(k % 26), "heads %zu: body byte %zu", i, k);
		CHECK(!t[i].closes || closed, "heads %zu: not closed", i);
	}
	tls_close(ssl);
}

/* test_refusals - what srv_http refuses itself: the status, a log line, the connection closed */
static void test_refusals(void)
{
	static const struct {
		const char *pre;  /* the request: pre, pad times 'a', post */
		size_t pad;
		const char *post, *log;
		int status;
	} t[] = {
		{"POST / HTTP/1.1\r\nHost: js.test\r\nContent-Length: 1025\r\n\r\n", 0, "",
		 "refused with 413: body over max_body", 413},
		/* chunked: 1024 bytes (MAX_BODY), then one more */
		{"POST / HTTP/1.1\r\nHost: js.test\r\nTransfer-Encoding: chunked\r\n\r\n400\r\n",
		 1024, "\r\n1\r\nx\r\n0\r\n\r\n", "refused with 413: body over max_body", 413},
		{"POST / HTTP/1.1\r\nHost: js.test\r\nX-Big: ", 20000, "\r\n\r\n",
		 "refused with 400: headers over the size limit", 400},
		{"POST / HTTP/1.1\r\nHost: js.test\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n"
		 "0\r\n\r\n", 0, "", "refused with 400: bad chunk size", 400},
		{"POST /a\001b HTTP/1.1\r\nHost: js.test\r\nContent-Length: 0\r\n\r\n", 0, "",
		 "(request line \"POST /a?b HTTP/1.1\")", 400},
		{"POST /\377 HTTP/1.1\r\nHost: js.test\r\nContent-Length: 0\r\n\r\n", 0, "",
		 "(request line \"POST /? HTTP/1.1\")", 400},
		{"POST / x HTTP/1.1\r\nHost: js.test\r\nContent-Length: 0\r\n\r\n", 0, "",
		 "(request line \"POST / x HTTP/1.1\")", 400},
		{"BREW / HTTP/1.1\r\nHost: js.test\r\n\r\n", 0, "",
		 "refused with 501: unknown method (request line \"BREW / HTTP/1.1\")", 501},
	};
	static char req[24000], out[8192];
	bool closed;
	size_t n;

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		n = strlen(t[i].pre);
		memcpy(req, t[i].pre, n);
		memset(req + n, 'a', t[i].pad);
		n += t[i].pad;
		memcpy(req + n, t[i].post, strlen(t[i].post));
		n += strlen(t[i].post);
		raw_one(req, n, 0, out, sizeof(out), &closed);
		CHECK(status_of(out, 0) == t[i].status && closed &&
			      strstr(out, "Connection: close\r\n") != NULL,
		      "refusal %zu: want %d and closed, got closed=%d:\n%s", i, t[i].status, closed,
		      out);
		CHECK(log_has(t[i].log), "refusal %zu: no log \"%s\" in:\n%s", i, t[i].log, logbuf);
	}
}

/* test_close - Connection: close and HTTP/1.0 close after the answer; 1.0 keep-alive keeps */
static void test_close(void)
{
	char req[512], out[4096];
	bool closed;
	int n;

	n = snprintf(req, sizeof(req),
		     "POST / HTTP/1.1\r\nHost: js.test\r\nConnection: close\r\n"
		     "Content-Length: 2\r\n\r\n{}");
	raw_one(req, (size_t)n, 0, out, sizeof(out), &closed);
	CHECK(status_of(out, 0) == 200 && closed && strstr(out, "Connection: close\r\n") != NULL,
	      "Connection: close not honoured (closed=%d):\n%s", closed, out);
	n = snprintf(req, sizeof(req), "POST / HTTP/1.0\r\nContent-Length: 2\r\n\r\n{}");
	raw_one(req, (size_t)n, 0, out, sizeof(out), &closed);
	CHECK(status_of(out, 0) == 200 && closed, "HTTP/1.0 not closed (closed=%d):\n%s", closed,
	      out);
	n = snprintf(req, sizeof(req),
		     "POST / HTTP/1.0\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\n{}"
		     "POST / HTTP/1.0\r\nContent-Length: 2\r\n\r\n{}");
	raw_one(req, (size_t)n, 0, out, sizeof(out), &closed);
	CHECK(answers_in(out, strlen(out)) == 2 && closed &&
		      strstr(out, "Connection: keep-alive\r\n") != NULL,
	      "HTTP/1.0 keep-alive (closed=%d):\n%s", closed, out);
}

/* test_idle - a keep-alive connection that sends nothing after its answer is closed at
 * idle_timeout (the read below waits up to twice as long) */
static void test_idle(void)
{
	struct timeval tv = {.tv_sec = 2 * IDLE_TIMEOUT};
	char req[256], out[4096];
	SSL *ssl = tls_open("good");
	int n = snprintf(req, sizeof(req), POST("/", "{}"), (size_t)2);
	bool closed;

	CHECK(tls_send(ssl, req, (size_t)n, 0) == (size_t)n, "idle: send");
	tls_answers(ssl, out, sizeof(out), 1, NULL);
	CHECK(status_of(out, 0) == 200, "idle: first answer:\n%s", out);
	setsockopt(SSL_get_fd(ssl), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	tls_answers(ssl, out, sizeof(out), 1, &closed);
	CHECK(closed && out[0] == '\0', "idle connection not closed (closed=%d):\n%s", closed, out);
	tls_close(ssl);
}

/* test_slow_next - header_timeout for a later request of a keep-alive connection, trickled a
 * byte every half second: sent right after the previous answer (the clock's check still armed
 * from that request) and after a pause longer than SRV_TICK_S (that check fired and is not
 * armed any more): both closed within header_timeout (the trickle would go on 4 times
 * longer), and logged */
static void test_slow_next(void)
{
	static const char part[] = "POST / HTTP/1.1\r\nHost: js.test\r\nX-Pad: "
				   "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
	struct timespec half = {.tv_nsec = 500000000}, pause = {.tv_sec = 2};
	char req[256], out[4096];
	int n = snprintf(req, sizeof(req), POST("/", "{}"), (size_t)2);

	for (int k = 0; k < 2; k++) {
		SSL *ssl = tls_open("good");
		struct pollfd pfd = {.fd = SSL_get_fd(ssl), .events = POLLIN};
		bool closed = false;
		size_t i;

		CHECK(tls_send(ssl, req, (size_t)n, 0) == (size_t)n, "slow next %d: send", k);
		tls_answers(ssl, out, sizeof(out), 1, NULL);
		CHECK(status_of(out, 0) == 200, "slow next %d: first answer:\n%s", k, out);
		if (k == 1)
			nanosleep(&pause, NULL);
		for (i = 0; i < sizeof(part) - 1 && i < 8 * HEADER_TIMEOUT && !closed; i++) {
			closed = SSL_write(ssl, part + i, 1) != 1;
			if (!closed && poll(&pfd, 1, 0) == 1)
				closed = SSL_read(ssl, out, sizeof(out)) <= 0;
			if (!closed)
				nanosleep(&half, NULL);
		}
		CHECK(closed && i <= 2 * (HEADER_TIMEOUT + 3),
		      "slow next %d: %s after %zu bytes", k, closed ? "closed" : "still open", i);
		tls_close(ssl);
	}
	CHECK(log_has("request not complete within header_timeout"),
	      "slow next: no header_timeout log in:\n%s", logbuf);
}

/* test_idle_held - a request with the handler longer than idle_timeout is still answered:
 * idle_timeout is for a connection that waits for nothing */
static void test_idle_held(void)
{
	struct timespec ts = {.tv_sec = IDLE_TIMEOUT + 1};
	char req[256], out[4096];
	SSL *ssl = tls_open("good");
	int n = snprintf(req, sizeof(req), POST("/hold", "{}"), (size_t)2);

	pthread_mutex_lock(&mu);
	held = NULL;
	pthread_mutex_unlock(&mu);
	CHECK(tls_send(ssl, req, (size_t)n, 0) == (size_t)n, "idle held: send");
	pthread_mutex_lock(&mu);
	while (held == NULL)
		pthread_cond_wait(&cv, &mu);
	pthread_mutex_unlock(&mu);
	nanosleep(&ts, NULL); /* past idle_timeout with the request held */
	CHECK(srv_call_in_loop(srv, reply_held, held) == DJ_EOK, "srv_call_in_loop");
	tls_answers(ssl, out, sizeof(out), 1, NULL);
	CHECK(status_of(out, 0) == 200 && strstr(out, "deferred") != NULL,
	      "a request held past idle_timeout was not answered:\n%s", out);
	tls_close(ssl);
	pthread_mutex_lock(&mu);
	held = NULL;
	pthread_mutex_unlock(&mu);
}

/* test_flood - a held request, then bytes without end: reading pauses at the watermark */
static void test_flood(void)
{
	static char junk[16384];
	char req[256], out[4096];
	size_t sent = 0, peak;
	SSL *ssl = tls_open("good");
	int n = snprintf(req, sizeof(req), POST("/hold", "h"), (size_t)1);
	bool closed;

	pthread_mutex_lock(&mu);
	held = NULL;
	pthread_mutex_unlock(&mu);
	memset(junk, 'X', sizeof(junk));
	CHECK(tls_send(ssl, req, (size_t)n, 0) == (size_t)n, "flood: send");
	pthread_mutex_lock(&mu);
	while (held == NULL)
		pthread_cond_wait(&cv, &mu);
	pthread_mutex_unlock(&mu);
	/* 8 MiB, more than the socket buffers take: the writes stall (SO_SNDTIMEO ends them) */
	while (sent < 8u << 20 && tls_send(ssl, junk, sizeof(junk), 0) == sizeof(junk))
		sent += sizeof(junk);
	peak = input_max();
	CHECK(peak >= SRV_READ_HIGH / 2 && peak <= SRV_READ_HIGH,
	      "flood behind a held request: %zu bytes buffered (watermark %d; %zu sent)", peak,
	      SRV_READ_HIGH, sent);
	/* the held request is answered; then the flood is parsed: not a method, 501, closed */
	CHECK(srv_call_in_loop(srv, reply_held, held) == DJ_EOK, "srv_call_in_loop");
	tls_answers(ssl, out, sizeof(out), 2, &closed);
	CHECK(status_of(out, 0) == 200 && status_of(out, 1) == 501 && closed,
	      "after the flood (closed=%d):\n%s", closed, out);
	tls_close(ssl);
	pthread_mutex_lock(&mu);
	held = NULL;
	pthread_mutex_unlock(&mu);
}

int main(void)
{
	struct srv_props p = {0};
	char out[8192], err[256], addr[64], maddr[64], path[3][300], bad[3][300], big[400];
	int fds[MAX_CONNS + 1], i, rc, fd;
	unsigned c, f;

	CHECK(evthread_use_pthreads() == 0, "evthread_use_pthreads");
	signal(SIGPIPE, SIG_IGN); /* as the daemon does: OpenSSL writes with plain send() */
	dj_log_set(log_sink, NULL, LOG_DEBUG);
	it_tmpdir(dir, sizeof(dir), "dj_srv");
	atexit(cleanup);
	make_pki();
	snprintf(path[0], sizeof(path[0]), "%s/server.pem", dir);
	snprintf(path[1], sizeof(path[1]), "%s/server.key", dir);
	snprintf(path[2], sizeof(path[2]), "%s/root.pem", dir);

	base = event_base_new();
	CHECK(base != NULL, "event_base_new");
	p.cert_file = path[0];
	p.key_file = path[1];
	p.client_ca_file = path[2];
	p.max_body = MAX_BODY;
	p.header_timeout = HEADER_TIMEOUT;
	p.idle_timeout = IDLE_TIMEOUT;
	p.max_connections = MAX_CONNS;
	p.handler = handler;
	p.metrics = metrics;

	/* bad inputs: the messages name the file or address */
	p.listen_addr = "127.0.0.1";
	CHECK(srv_new(base, &p, &srv, err, sizeof(err)) == DJ_ECONFIG && strstr(err, "127.0.0.1"),
	      "no port: %s", err);
	p.listen_addr = "[::1:4430";
	CHECK(srv_new(base, &p, &srv, err, sizeof(err)) == DJ_ECONFIG && strstr(err, "[::1:4430"),
	      "bad v6: %s", err);
	p.listen_addr = "127.0.0.1:1";
	p.cert_file = "/nonexistent.pem";
	CHECK(srv_new(base, &p, &srv, err, sizeof(err)) == DJ_ECONFIG &&
		  strstr(err, "/nonexistent.pem"),
	      "bad cert: %s", err);
	p.cert_file = path[0];

	/* a free port can be taken between our probe and the bind: retry a few times */
	for (i = 0, rc = DJ_EIO; i < 5 && rc == DJ_EIO; i++) {
		port = it_free_port();
		mport = it_free_port();
		snprintf(addr, sizeof(addr), "127.0.0.1:%u", port);
		snprintf(maddr, sizeof(maddr), "127.0.0.1:%u", mport);
		p.listen_addr = addr;
		p.metrics_addr = maddr;
		rc = srv_new(base, &p, &srv, err, sizeof(err));
	}
	CHECK(rc == DJ_EOK, "srv_new: %s (%s)", err, dj_strerror(rc));
	CHECK(pthread_create(&loop_thread, NULL, loop_main, NULL) == 0, "pthread_create");
	it_wait_ready(port, WAIT_MS);
	it_wait_ready(mport, WAIT_MS);

	/* a good client: 200 and its identity */
	rc = curl_tls(out, sizeof(out), "good", "-X POST --data hello", "/x");
	CHECK(rc == 0 && strcmp(out, "{\"peer\":\"ns1.test\",\"len\":5} 200") == 0,
	      "good client: rc %d out '%s'", rc, out);

	/* refused at the handshake */
	rc = curl_tls(out, sizeof(out), NULL, "-X POST --data x", "/");
	CHECK(rc != 0 && strstr(out, "200") == NULL, "no client cert: rc %d out '%s'", rc, out);
	rc = curl_tls(out, sizeof(out), "foreign", "-X POST --data x", "/");
	CHECK(rc != 0 && strstr(out, "200") == NULL, "foreign root: rc %d out '%s'", rc, out);
	rc = curl_tls(out, sizeof(out), "twosan", "-X POST --data x", "/");
	CHECK(rc != 0 && strstr(out, "200") == NULL, "two SANs: rc %d out '%s'", rc, out);
	rc = curl_tls(out, sizeof(out), "nosan", "-X POST --data x", "/");
	CHECK(rc != 0 && strstr(out, "200") == NULL, "no SAN: rc %d out '%s'", rc, out);
	rc = curl_tls(out, sizeof(out), "good", "--tls-max 1.2 -X POST --data x", "/");
	CHECK(rc != 0 && strstr(out, "200") == NULL, "TLS 1.2: rc %d out '%s'", rc, out);
	pthread_mutex_lock(&mu);
	CHECK(strstr(logbuf, "failed: client certificate has 2 SAN dNSNames") != NULL &&
		  strstr(logbuf, "failed: client certificate has no SAN dNSName") != NULL &&
		  strstr(logbuf, "TLS handshake from 127.0.0.1:") != NULL,
	      "handshake failures not logged:\n%s", logbuf);
	pthread_mutex_unlock(&mu);

	/* limits and methods: a body of 4 x max_body (not this file, whose size would decide
	 * whether curl has sent all of it before the 413 and its close) */
	rc = run(out, sizeof(out), "head -c %d /dev/zero | tr '\\0' x >'%s/big.txt'",
		 4 * MAX_BODY, dir);
	CHECK(rc == 0, "big.txt: rc %d", rc);
	snprintf(big, sizeof(big), "-o /dev/null -X POST --data-binary @'%s/big.txt'", dir);
	rc = curl_tls(out, sizeof(out), "good", big, "/");
	CHECK(strstr(out, "413") != NULL, "large body: rc %d out '%s'", rc, out);
	rc = curl_tls(out, sizeof(out), "good", "-o /dev/null", "/");
	CHECK(rc == 0 && strcmp(out, " 405") == 0, "GET: rc %d out '%s'", rc, out);

	/* two requests, one connection */
	rc = run(out, sizeof(out),
		 CURL "--cacert '%s/root.pem' --cert '%s/good.pem' --key '%s/good.key' "
		      "--resolve js.test:%u:127.0.0.1 -X POST --data ab -w ' %%{http_code} "
		      "%%{num_connects}\\n' https://js.test:%u/a https://js.test:%u/b",
		 dir, dir, dir, port, port, port);
	CHECK(rc == 0 && strstr(out, "\"len\":2} 200 1\n") != NULL &&
		  strstr(out, "\"len\":2} 200 0\n") != NULL,
	      "keep-alive: rc %d out '%s'", rc, out);

	/* the path without query or fragment, short (kept in the srv_req) and long (malloc'ed) */
	rc = curl_tls(out, sizeof(out), "good", "-X POST --data x", "/path/a?b=1#c");
	CHECK(rc == 0 && strcmp(out, "{\"path\":\"/path/a\"} 200") == 0, "short path: rc %d out '%s'",
	      rc, out);
	rc = curl_tls(out, sizeof(out), "good", "-X POST --data x",
		      "/path/0123456789012345678901234567890123456789/0123456789?q=1");
	CHECK(rc == 0 &&
		      strcmp(out, "{\"path\":\"/path/0123456789012345678901234567890123456789/"
				  "0123456789\"} 200") == 0,
	      "long path: rc %d out '%s'", rc, out);
	/* SRV_PATH_INLINE - 1 bytes, and one more */
	for (i = 47; i <= 48; i++) {
		char upath[64], want[128];

		snprintf(upath, sizeof(upath), "/path/%.*s", i - 6,
			 "012345678901234567890123456789012345678901234567890123456789");
		snprintf(want, sizeof(want), "{\"path\":\"%s\"} 200", upath);
		strcat(upath, "?q");
		rc = curl_tls(out, sizeof(out), "good", "-X POST --data x", upath);
		CHECK(rc == 0 && strcmp(out, want) == 0, "%d-byte path: rc %d out '%s'", i, rc, out);
	}

	/* HTTP/1.1 as srv_http.c decides it */
	test_pipelined();
	test_heads();
	test_refusals();
	test_close();
	test_idle();
	test_slow_next();
	test_idle_held();
	test_flood();
	wait_counters(0, 0, __LINE__);

	/* metrics */
	rc = run(out, sizeof(out), CURL "-i http://%s/metrics", maddr);
	CHECK(rc == 0 && strstr(out, " 200 ") != NULL && strstr(out, "dj_test 42\n") != NULL &&
		  strstr(out, "text/plain; version=0.0.4") != NULL,
	      "metrics: rc %d out '%s'", rc, out);
	rc = run(out, sizeof(out), CURL "-o /dev/null -w '%%{http_code}' http://%s/other", maddr);
	CHECK(strcmp(out, "404") == 0, "metrics 404: rc %d out '%s'", rc, out);

	/* srv_call_in_loop from this (non-loop) thread runs on the loop */
	CHECK(srv_call_in_loop(srv, on_loop, NULL) == DJ_EOK, "srv_call_in_loop");
	pthread_mutex_lock(&mu);
	while (ran_on_loop < 0)
		pthread_cond_wait(&cv, &mu);
	CHECK(ran_on_loop == 1, "callback ran off the loop thread");
	pthread_mutex_unlock(&mu);
	test_call_seq();

	/* a reply deferred to another thread */
	rc = curl_tls(out, sizeof(out), "good", "-X POST --data x", "/defer");
	CHECK(rc == 0 && strcmp(out, "{\"deferred\":\"ns1.test\"} 200") == 0,
	      "deferred: rc %d out '%s'", rc, out);

	/* a client that leaves before its answer: the late reply must not crash */
	rc = curl_tls(out, sizeof(out), "good", "-m 1 -X POST --data x", "/hold");
	CHECK(rc != 0, "hold: curl should have timed out");
	pthread_mutex_lock(&mu);
	CHECK(held != NULL, "handler never saw /hold");
	pthread_mutex_unlock(&mu);
	counters(&c, &f);
	CHECK(f == 1, "in_flight %u, want 1", f);
	CHECK(srv_call_in_loop(srv, reply_held, held) == DJ_EOK, "srv_call_in_loop");
	wait_counters(0, 0, __LINE__);

	/* reload: a bad file names itself and changes nothing; good files work */
	memcpy(bad, path, sizeof(bad));
	snprintf(bad[0], sizeof(bad[0]), "/nonexistent.pem");
	CHECK(reload_wait(bad) == DJ_ECONFIG && strstr(reload_err, "/nonexistent.pem"),
	      "reload bad: %s", reload_err);
	CHECK(reload_wait(path) == DJ_EOK, "reload: %s", reload_err);
	rc = curl_tls(out, sizeof(out), "good", "-X POST --data x", "/");
	CHECK(rc == 0 && strstr(out, " 200") != NULL, "after reload: rc %d out '%s'", rc, out);

	/* max_connections: the one over the limit is closed at once; header_timeout ends the rest.
	 * curl's connection above may still be open until the loop reads its EOF: wait for it, or
	 * it takes one of the MAX_CONNS slots.
	 */
	wait_counters(0, 0, __LINE__);
	for (i = 0; i < MAX_CONNS; i++) {
		fds[i] = it_tcp_connect(port, false);
		CHECK(fds[i] >= 0, "connect %d", i);
	}
	wait_counters(MAX_CONNS, 0, __LINE__);
	fds[MAX_CONNS] = it_tcp_connect(port, false);
	CHECK(fds[MAX_CONNS] >= 0, "connect over the limit");
	CHECK(closed_within(fds[MAX_CONNS], 500), "over-limit connection not closed at once");
	for (i = 0; i < MAX_CONNS; i++)
		CHECK(closed_within(fds[i], (HEADER_TIMEOUT + 2) * 1000),
		      "connection %d outlived header_timeout", i);
	for (i = 0; i <= MAX_CONNS; i++)
		close(fds[i]);
	wait_counters(0, 0, __LINE__);
	pthread_mutex_lock(&mu);
	CHECK(strstr(logbuf, "max_connections reached") != NULL, "refusal not logged");
	pthread_mutex_unlock(&mu);

	/* a request still held when srv_free runs: the late reply only frees it */
	pthread_mutex_lock(&mu);
	held = NULL;
	pthread_mutex_unlock(&mu);
	rc = curl_tls(out, sizeof(out), "good", "-m 1 -X POST --data x", "/hold");
	CHECK(rc != 0 && held != NULL, "second hold");

	/* stop accepting: new connections are refused by the kernel */
	CHECK(srv_call_in_loop(srv, stop_accepting, NULL) == DJ_EOK, "stop");
	for (i = 0, fd = 0; i < WAIT_MS / 10 && fd >= 0; i++) {
		fd = it_tcp_connect(port, false);
		if (fd >= 0)
			close(fd);
	}
	CHECK(fd < 0, "still accepting after srv_stop_accepting");

	CHECK(srv_call_in_loop(srv, stop, NULL) == DJ_EOK, "stop");
	pthread_join(loop_thread, NULL);
	srv_free(srv);
	srv_reply(held, 200, "{}", 2);
	event_base_free(base);
	printf("test_srv: ok\n");
	return 0;
}
