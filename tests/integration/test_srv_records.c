/*
 * test_srv_records.c - srv (joinserver/bi/srv.h) answers every request whose TLS records reach
 * it together, in one TCP segment, now that OpenSSL reads ahead (srv.c ssl_new).
 *
 * With read-ahead one read() takes all the socket holds, but libevent 2.1's bufferevent_openssl
 * decrypts one record per pass unless SSL_pending (decrypted bytes only) says more, and epoll
 * then sees an empty socket: a record left in OpenSSL's buffer would wait until the client
 * sent more, which it does not before it has its answer. bi_tls__read_pending closes that.
 * This driver makes each such case happen with a client whose records go out exactly as
 * arranged: OpenSSL on memory BIOs, and each batch of records sent with a single send().
 *	- the client's Finished and its first request in one segment (the handshake ends with
 *	  the request in OpenSSL's buffer)
 *	- a request whose headers and body are two records in one segment
 *	- two pipelined requests, one record each, in one segment
 *	- two pipelined requests, headers and body each a record: four records, one segment
 * Each must be answered (200, its own path and body length) within WAIT_MS, which only bounds a
 * stall; nothing is timed. A real srv runs on its loop (srv_base_new, as the daemon) in a thread;
 * the PKI is made with the openssl CLI in a temporary directory, removed at exit.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
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

#include <event2/event.h>
#include <event2/thread.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "bi/srv.h"
#include "common/dj_err.h"
#include "common/dj_log.h"

#include "it_check.h"
#include "it_net.h"

#define WAIT_MS 5000 /* bound on every wait: a stalled request is not answered within it */

static char dir[256];
static unsigned port;
static struct event_base *base;
static struct srv *srv;
static pthread_t loop_thread;
static unsigned handled; /* requests the handler answered (loop thread; read after join) */

/* One client connection: OpenSSL on memory BIOs over a plain socket. */
struct cli {
	int fd;
	SSL *ssl;
	BIO *rbio, *wbio; /* network side: what arrived, what is to be sent */
	char got[16384];  /* plaintext received */
	size_t got_len;
};

/* cleanup - remove the temporary PKI (atexit) */
static void cleanup(void)
{
	it_rm_dir(dir);
}

/* log_sink - srv's log lines to stderr, for a failing run */
static void log_sink(int level, const char *line, void *arg)
{
	(void)level;
	(void)arg;
	fprintf(stderr, "srv: %s\n", line);
}

/* make_pki - a root, the server's certificate (js.test) and a client's (ns1.test) */
static void make_pki(void)
{
	char cmd[2048];
	int rc;

	snprintf(cmd, sizeof(cmd),
		 "set -e; cd '%s'; exec 2>pki.log\n"
		 "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
		 "-keyout root.key -out root.pem -subj /CN=root -days 2\n"
		 "leaf() { openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
		 "-keyout $1.key -out $1.csr -subj /CN=$1; printf '%%s\\n' \"$2\" > $1.ext; "
		 "openssl x509 -req -in $1.csr -CA root.pem -CAkey root.key -CAcreateserial "
		 "-days 2 -extfile $1.ext -out $1.pem; }\n"
		 "leaf server subjectAltName=DNS:js.test\n"
		 "leaf good subjectAltName=DNS:ns1.test\n",
		 dir);
	rc = system(cmd);
	CHECK(rc != -1 && WEXITSTATUS(rc) == 0, "making the PKI failed (see %s/pki.log)", dir);
}

/* handler - {"path":..., "len":N} */
static void handler(struct srv_req *r, void *arg)
{
	char json[256];
	size_t len;
	int n;

	(void)arg;
	(void)srv_req_body(r, &len);
	n = snprintf(json, sizeof(json), "{\"path\":\"%s\",\"len\":%zu}", srv_req_path(r), len);
	handled++;
	srv_reply(r, 200, json, (size_t)n);
}

static void *loop_main(void *arg)
{
	(void)arg;
	event_base_loop(base, EVLOOP_NO_EXIT_ON_EMPTY);
	return NULL;
}

static void stop(void *arg)
{
	(void)arg;
	event_base_loopbreak(base);
}

static unsigned q_conns;
static int q_done;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;

/* query - on the loop: how many connections srv holds */
static void query(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&mu);
	q_conns = srv_connections(srv);
	q_done = 1;
	pthread_cond_broadcast(&cv);
	pthread_mutex_unlock(&mu);
}

/* wait_closed - poll until srv has dropped every connection the client closed */
static void wait_closed(void)
{
	struct timespec ts = {0, 10 * 1000 * 1000};
	unsigned n = 1;

	for (int i = 0; i < WAIT_MS / 10 && n != 0; i++) {
		pthread_mutex_lock(&mu);
		q_done = 0;
		pthread_mutex_unlock(&mu);
		CHECK(srv_call_in_loop(srv, query, NULL) == DJ_EOK, "srv_call_in_loop");
		pthread_mutex_lock(&mu);
		while (!q_done)
			pthread_cond_wait(&cv, &mu);
		n = q_conns;
		pthread_mutex_unlock(&mu);
		if (n != 0)
			nanosleep(&ts, NULL);
	}
	CHECK(n == 0, "srv still holds %u connections the client closed", n);
}

/* flush - send all the client's pending records with ONE send(): one TCP segment */
static void flush(struct cli *k)
{
	char buf[16384];
	int n = BIO_read(k->wbio, buf, sizeof(buf));

	if (n <= 0)
		return;
	CHECK(BIO_ctrl_pending(k->wbio) == 0, "more than %zu bytes of records", sizeof(buf));
	CHECK(send(k->fd, buf, (size_t)n, 0) == n, "send of %d bytes: %s", n, strerror(errno));
}

/* fill - wait up to WAIT_MS for bytes from the server, into the client's read BIO;
 * false if none came (or the server closed) */
static bool fill(struct cli *k)
{
	struct pollfd pfd = {.fd = k->fd, .events = POLLIN};
	char buf[16384];
	ssize_t n;

	if (poll(&pfd, 1, WAIT_MS) != 1)
		return false;
	n = recv(k->fd, buf, sizeof(buf), 0);
	if (n <= 0)
		return false;
	CHECK(BIO_write(k->rbio, buf, (int)n) == (int)n, "BIO_write");
	return true;
}

/* cli_open - connect and handshake; the client's Finished is left unsent (in wbio) */
static void cli_open(struct cli *k, SSL_CTX *ctx)
{
	int r;

	memset(k, 0, sizeof(*k));
	k->fd = it_tcp_connect(port, true);
	CHECK(k->fd >= 0, "connect: %s", strerror(errno));
	k->ssl = SSL_new(ctx);
	k->rbio = BIO_new(BIO_s_mem());
	k->wbio = BIO_new(BIO_s_mem());
	CHECK(k->ssl != NULL && k->rbio != NULL && k->wbio != NULL, "SSL_new");
	SSL_set_bio(k->ssl, k->rbio, k->wbio);
	CHECK(SSL_set_tlsext_host_name(k->ssl, "js.test") == 1 && SSL_set1_host(k->ssl, "js.test"),
	      "SNI");
	SSL_set_connect_state(k->ssl);
	while ((r = SSL_do_handshake(k->ssl)) != 1) {
		CHECK(SSL_get_error(k->ssl, r) == SSL_ERROR_WANT_READ, "handshake: %s",
		      ERR_reason_error_string(ERR_get_error()));
		flush(k);
		CHECK(fill(k), "no handshake answer from the server");
	}
}

/* put - one TLS record of \p text into wbio (not sent yet) */
static void put(struct cli *k, const char *text)
{
	size_t before = BIO_ctrl_pending(k->wbio);

	CHECK(SSL_write(k->ssl, text, (int)strlen(text)) == (int)strlen(text), "SSL_write");
	/* one SSL_write of a few hundred bytes is one record: 5-byte header, then the rest */
	CHECK(BIO_ctrl_pending(k->wbio) > before + 5, "no record written");
}

/* put_request - a POST of \p body to \p path, as one record or as two (headers, body) */
static void put_request(struct cli *k, const char *path, const char *body, bool split)
{
	char head[256], all[512];

	snprintf(head, sizeof(head),
		 "POST %s HTTP/1.1\r\nHost: js.test\r\nContent-Type: application/json\r\n"
		 "Content-Length: %zu\r\n\r\n",
		 path, strlen(body));
	if (split) {
		put(k, head);
		put(k, body);
	} else {
		snprintf(all, sizeof(all), "%s%s", head, body);
		put(k, all);
	}
}

/* answers - how many complete answers k->got holds (each ends with its JSON's closing brace) */
static unsigned answers(const struct cli *k)
{
	unsigned n = 0;

	for (const char *p = k->got; (p = strstr(p, "HTTP/1.1 ")) != NULL; p++)
		if (strstr(p, "\r\n\r\n") != NULL && strchr(strstr(p, "\r\n\r\n"), '}') != NULL)
			n++;
	return n;
}

/* expect - read until \p n answers came, or fail naming \p what: a stall leaves them missing */
static void expect(struct cli *k, unsigned n, const char *what)
{
	int r;

	while (answers(k) < n) {
		r = SSL_read(k->ssl, k->got + k->got_len, (int)(sizeof(k->got) - 1 - k->got_len));
		if (r > 0) {
			k->got_len += (size_t)r;
			k->got[k->got_len] = '\0';
			continue;
		}
		CHECK(SSL_get_error(k->ssl, r) == SSL_ERROR_WANT_READ, "%s: SSL_read failed", what);
		CHECK(fill(k), "%s: %u of %u answers within %d ms (a stall): got '%s'", what,
		      answers(k), n, WAIT_MS, k->got);
	}
}

/* dates - each of the \p n answers in k->got has one Date header, in the RFC 9110 format (srv
 * adds it from a per-second cache; evhttp would add a second one if the name were wrong) */
static void dates(const struct cli *k, unsigned n, const char *what)
{
	char day[4], mon[4], zone[4];
	unsigned count = 0;
	int d, y, hh, mm, ss;

	for (const char *p = k->got; (p = strstr(p, "\r\nDate: ")) != NULL; p++, count++)
		CHECK(sscanf(p, "\r\nDate: %3s, %d %3s %d %d:%d:%d %3s", day, &d, mon, &y, &hh, &mm,
			     &ss, zone) == 8 &&
			  day[3] == '\0' && p[11] == ',' && strcmp(zone, "GMT") == 0 && d >= 1 &&
			  d <= 31 && y >= 2024,
		      "%s: bad Date header in '%s'", what, p + 2);
	CHECK(count == n, "%s: %u Date headers in %u answers: '%s'", what, count, n, k->got);
}

/* has - k->got holds the answer for \p path with body length \p len */
static void has(const struct cli *k, const char *path, size_t len, const char *what)
{
	char want[128];

	snprintf(want, sizeof(want), "{\"path\":\"%s\",\"len\":%zu}", path, len);
	CHECK(strstr(k->got, want) != NULL && strstr(k->got, "HTTP/1.1 200") != NULL,
	      "%s: no %s in '%s'", what, want, k->got);
}

static void cli_close(struct cli *k)
{
	SSL_free(k->ssl);
	close(k->fd);
}

/* client_ctx - TLS 1.3, the good client's certificate, the test root */
static SSL_CTX *client_ctx(void)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	char f[3][300];

	snprintf(f[0], sizeof(f[0]), "%s/good.pem", dir);
	snprintf(f[1], sizeof(f[1]), "%s/good.key", dir);
	snprintf(f[2], sizeof(f[2]), "%s/root.pem", dir);
	CHECK(ctx != NULL && SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) == 1 &&
		  SSL_CTX_use_certificate_file(ctx, f[0], SSL_FILETYPE_PEM) == 1 &&
		  SSL_CTX_use_PrivateKey_file(ctx, f[1], SSL_FILETYPE_PEM) == 1 &&
		  SSL_CTX_load_verify_locations(ctx, f[2], NULL) == 1,
	      "client context");
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	return ctx;
}

int main(void)
{
	static const char body[] = "{\"MessageType\":\"JoinReq\",\"pad\":\"0123456789\"}";
	struct srv_props p = {0};
	char err[256], addr[64], path[3][300];
	struct cli k;
	SSL_CTX *ctx;
	int i, rc;

	CHECK(evthread_use_pthreads() == 0, "evthread_use_pthreads");
	signal(SIGPIPE, SIG_IGN);
	dj_log_set(log_sink, NULL, LOG_WARNING);
	it_tmpdir(dir, sizeof(dir), "dj_srvrec");
	atexit(cleanup);
	make_pki();
	snprintf(path[0], sizeof(path[0]), "%s/server.pem", dir);
	snprintf(path[1], sizeof(path[1]), "%s/server.key", dir);
	snprintf(path[2], sizeof(path[2]), "%s/root.pem", dir);

	base = srv_base_new();
	CHECK(base != NULL, "srv_base_new");
	p.cert_file = path[0];
	p.key_file = path[1];
	p.client_ca_file = path[2];
	p.max_body = 4096;
	p.header_timeout = 30;
	p.idle_timeout = 30;
	p.max_connections = 8;
	p.handler = handler;
	for (i = 0, rc = DJ_EIO; i < 5 && rc == DJ_EIO; i++) {
		port = it_free_port();
		snprintf(addr, sizeof(addr), "127.0.0.1:%u", port);
		p.listen_addr = addr;
		rc = srv_new(base, &p, &srv, err, sizeof(err));
	}
	CHECK(rc == DJ_EOK, "srv_new: %s (%s)", err, dj_strerror(rc));
	CHECK(pthread_create(&loop_thread, NULL, loop_main, NULL) == 0, "pthread_create");
	it_wait_ready(port, WAIT_MS);
	ctx = client_ctx();

	/* the client's Finished and its first request (headers, body) in one segment */
	cli_open(&k, ctx);
	put_request(&k, "/hs", body, true);
	flush(&k);
	expect(&k, 1, "Finished + request in one segment");
	has(&k, "/hs", strlen(body), "Finished + request");

	/* on the same connection: headers and body as two records in one segment */
	k.got_len = 0;
	k.got[0] = '\0';
	put_request(&k, "/split", body, true);
	flush(&k);
	expect(&k, 1, "headers and body, two records, one segment");
	has(&k, "/split", strlen(body), "split request");

	/* two pipelined requests, one record each, in one segment */
	k.got_len = 0;
	k.got[0] = '\0';
	put_request(&k, "/one", body, false);
	put_request(&k, "/two", "{}", false);
	flush(&k);
	expect(&k, 2, "two pipelined requests in one segment");
	has(&k, "/one", strlen(body), "pipelined, first");
	has(&k, "/two", 2, "pipelined, second");
	dates(&k, 2, "pipelined");

	/* two pipelined requests, each headers + body: four records in one segment */
	k.got_len = 0;
	k.got[0] = '\0';
	put_request(&k, "/three", body, true);
	put_request(&k, "/four", "{\"x\":1}", true);
	flush(&k);
	expect(&k, 2, "two pipelined split requests (four records) in one segment");
	has(&k, "/three", strlen(body), "pipelined split, first");
	has(&k, "/four", 7, "pipelined split, second");
	cli_close(&k);

	/* a fresh connection whose first segment after the handshake is two whole requests */
	cli_open(&k, ctx);
	put_request(&k, "/five", body, false);
	put_request(&k, "/six", body, true);
	flush(&k);
	expect(&k, 2, "Finished + two pipelined requests in one segment");
	has(&k, "/five", strlen(body), "Finished + pipelined, first");
	has(&k, "/six", strlen(body), "Finished + pipelined, second");
	cli_close(&k);

	SSL_CTX_free(ctx);
	wait_closed();
	CHECK(srv_call_in_loop(srv, stop, NULL) == DJ_EOK, "stop");
	pthread_join(loop_thread, NULL);
	CHECK(handled == 8, "the handler answered %u requests, not 8", handled);
	srv_free(srv);
	event_base_free(base);
	printf("ok: 8 requests in 5 arrangements of records per segment, all answered\n");
	return 0;
}
