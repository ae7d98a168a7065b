/*
 * admin.c - the management API's listener (admin.h): TLS, authentication, scopes, the rate
 *	     limit on failed authentications, strict headers, routing, console files.
 *
 * SECURITY
 *	- Every /api/ route names the scope it needs (adm_routes[]); a request without a valid
 *	  credential gets 401, one whose scope is too small 403. Credentials: an API key as
 *	  "Authorization: Bearer djk_...", a console session cookie (HttpOnly, Secure,
 *	  SameSite=Strict) whose changes must carry its CSRF token in X-CSRF-Token, or an mTLS
 *	  client certificate chaining to [admin] client_ca_file (auth = pkix) or matching the
 *	  DNSSEC-secure TLSA records of its DANE identity (auth = dane, admin_dane.c), with
 *	  [admin] mtls_scope.
 *	- More than auth_fail_max failed authentications from one address in a minute: 429 for
 *	  every request of that address until the minute ends, before any key is looked at.
 *	- No CORS: no Access-Control-* header is ever sent, OPTIONS is refused, and a request
 *	  whose Origin is not this listener's is refused (403) before authentication.
 *	- Content-Security-Policy forbids inline script and every other origin.
 *	- Keys never appear in answers or logs; a new API key's token is shown once, in the
 *	  answer to its creation.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/keyvalq_struct.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include "admin_internal.h"
#include "common/dj_err.h"
#include "common/dj_hex.h"
#include "common/dj_log.h"

#define ADM_COOKIE "dj_session"
#define ADM_CSP "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " \
		"connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; " \
		"frame-ancestors 'none'"
#define ADM_STATIC_MAX (4u << 20)

int64_t adm_now(void)
{
	return (int64_t)time(NULL);
}

/* common_headers - on every answer: no caching, no sniffing, no framing, the CSP */
static void common_headers(struct evhttp_request *req)
{
	struct evkeyvalq *h = evhttp_request_get_output_headers(req);

	evhttp_add_header(h, "Cache-Control", "no-store");
	evhttp_add_header(h, "X-Content-Type-Options", "nosniff");
	evhttp_add_header(h, "X-Frame-Options", "DENY");
	evhttp_add_header(h, "Referrer-Policy", "no-referrer");
	evhttp_add_header(h, "Content-Security-Policy", ADM_CSP);
	evhttp_add_header(h, "Strict-Transport-Security", "max-age=31536000");
}

void adm_headers(struct evhttp_request *req)
{
	common_headers(req);
}

void adm_reply_json(struct evhttp_request *req, int status, json_t *body)
{
	struct evbuffer *b = evbuffer_new();
	char *text = body != NULL ? json_dumps(body, JSON_COMPACT) : NULL;

	json_decref(body);
	common_headers(req);
	evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
			  "application/json");
	if (b != NULL && text != NULL)
		evbuffer_add(b, text, strlen(text));
	free(text);
	evhttp_send_reply(req, status, NULL, b);
	if (b != NULL)
		evbuffer_free(b);
}

void adm_error(struct evhttp_request *req, int status, const char *fmt, ...)
{
	char msg[600];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	adm_reply_json(req, status, json_pack("{s:s}", "error", msg));
}

char *adm_body(struct evhttp_request *req, size_t *len)
{
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	size_t n = evbuffer_get_length(in);
	char *p;

	if (n > ADM_BODY_MAX || (p = malloc(n + 1)) == NULL)
		return NULL;
	evbuffer_remove(in, p, n);
	p[n] = '\0';
	*len = n;
	return p;
}

const char *adm_query(struct evhttp_request *req, const char *key, char *buf, size_t cap)
{
	const struct evhttp_uri *u = evhttp_request_get_evhttp_uri(req);
	const char *q = u != NULL ? evhttp_uri_get_query(u) : NULL;
	struct evkeyvalq kv = { 0 };
	const char *v;

	if (q == NULL)
		return NULL;
	if (evhttp_parse_query_str(q, &kv) != 0)
		return NULL;
	v = evhttp_find_header(&kv, key);
	if (v != NULL)
		snprintf(buf, cap, "%s", v);
	evhttp_clear_headers(&kv);
	return v != NULL ? buf : NULL;
}

/* peer_addr - the client's address text */
static void peer_addr(struct evhttp_request *req, char *out, size_t cap)
{
	struct evhttp_connection *c = evhttp_request_get_connection(req);
	char *host = NULL;
	ev_uint16_t port = 0;

	if (c != NULL)
		evhttp_connection_get_peer(c, &host, &port);
	snprintf(out, cap, "%s", host != NULL ? host : "?");
}

/* fail_slot - the failure counter of \p addr (recycling the oldest) */
static struct adm_fail *fail_slot(struct admin *a, const char *addr)
{
	struct adm_fail *old = &a->fails[0];
	int64_t now = adm_now();

	for (unsigned i = 0; i < ADM_FAIL_SLOTS; i++) {
		struct adm_fail *f = &a->fails[i];

		if (strcmp(f->addr, addr) == 0) {
			if (now - f->window_start >= ADM_FAIL_WINDOW) {
				f->window_start = now;
				f->n = 0;
			}
			return f;
		}
		if (f->window_start < old->window_start)
			old = f;
	}
	snprintf(old->addr, sizeof(old->addr), "%s", addr);
	old->window_start = now;
	old->n = 0;
	return old;
}

static bool rate_limited(struct admin *a, const char *addr)
{
	return fail_slot(a, addr)->n >= a->fail_max;
}

void adm_auth_failed(struct admin *a, const char *addr, const char *why)
{
	struct adm_fail *f = fail_slot(a, addr);

	f->n++;
	dj_notice("admin: authentication refused from %s: %s (%u in this minute)", addr, why,
		  f->n);
}

/* cookie_value - the dj_session cookie of the request (copied into \p out) */
static bool cookie_value(struct evhttp_request *req, char *out, size_t cap)
{
	const char *c = evhttp_find_header(evhttp_request_get_input_headers(req), "Cookie");
	const char *p;
	size_t n;

	for (p = c; p != NULL && *p != '\0';) {
		while (*p == ' ' || *p == ';')
			p++;
		if (strncmp(p, ADM_COOKIE "=", strlen(ADM_COOKIE) + 1) == 0) {
			p += strlen(ADM_COOKIE) + 1;
			n = strcspn(p, ";");
			if (n >= cap)
				return false;
			memcpy(out, p, n);
			out[n] = '\0';
			return true;
		}
		p = strchr(p, ';');
	}
	return false;
}

static struct adm_session *session_find(struct admin *a, const char *token)
{
	int64_t now = adm_now();

	for (unsigned i = 0; i < ADM_SESSIONS_MAX; i++) {
		struct adm_session *s = &a->sessions[i];

		if (s->used && s->expires <= now)
			memset(s, 0, sizeof(*s));
		if (s->used && strlen(token) == ADM_TOKEN_HEX &&
		    CRYPTO_memcmp(s->token, token, ADM_TOKEN_HEX) == 0)
			return s;
	}
	return NULL;
}

static int random_hex(char out[ADM_TOKEN_HEX + 1])
{
	uint8_t r[ADM_TOKEN_HEX / 2];

	if (RAND_bytes(r, sizeof(r)) != 1)
		return DJ_ECRYPTO;
	dj_hex_format(r, sizeof(r), out);
	OPENSSL_cleanse(r, sizeof(r));
	return DJ_EOK;
}

/* mtls_identity - the verified client certificate's single SAN dNSName (or its subject CN) */
static bool mtls_identity(struct admin *a, struct evhttp_request *req, char *out, size_t cap)
{
	struct evhttp_connection *c = evhttp_request_get_connection(req);
	struct bufferevent *bev = c != NULL ? evhttp_connection_get_bufferevent(c) : NULL;
	SSL *ssl = bev != NULL ? bufferevent_openssl_get_ssl(bev) : NULL;
	X509 *x;
	GENERAL_NAMES *names;
	bool ok = false;

	if (a->mtls_scope == JS_SCOPE_NONE || a->dane || ssl == NULL)
		return false;
	x = SSL_get_peer_certificate(ssl);
	if (x == NULL)
		return false;
	if (SSL_get_verify_result(ssl) != X509_V_OK)
		goto out;
	names = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
	for (int i = 0; names != NULL && i < sk_GENERAL_NAME_num(names); i++) {
		const GENERAL_NAME *g = sk_GENERAL_NAME_value(names, i);

		if (g->type == GEN_DNS && !ok) {
			snprintf(out, cap, "%.*s", ASN1_STRING_length(g->d.dNSName),
				 (const char *)ASN1_STRING_get0_data(g->d.dNSName));
			ok = strlen(out) > 0 && strlen(out) == (size_t)ASN1_STRING_length(
								   g->d.dNSName);
		}
	}
	GENERAL_NAMES_free(names);
out:
	X509_free(x);
	return ok;
}

enum adm_auth {
	ADM_AUTH_ANSWERED,	/* refused: the answer (401/403/429/503) was sent */
	ADM_AUTH_OK,		/* *who is filled in */
	ADM_AUTH_DANE,		/* a client certificate to judge by its TLSA (adm_dane_start) */
};

/* authenticate - who the client is */
static enum adm_auth authenticate(struct admin *a, struct evhttp_request *req, const char *addr,
				  bool change, struct adm_who *who)
{
	struct evkeyvalq *h = evhttp_request_get_input_headers(req);
	const char *auth = evhttp_find_header(h, "Authorization");
	char tok[ADM_TOKEN_HEX + 8], ident[ADM_ACTOR_MAX - 8];
	struct js_apikey k;
	int ret;

	memset(who, 0, sizeof(*who));
	if (rate_limited(a, addr)) {
		adm_error(req, 429, "too many failed authentications; wait a minute");
		return ADM_AUTH_ANSWERED;
	}
	if (auth != NULL) {
		if (strncmp(auth, "Bearer ", 7) != 0) {
			adm_auth_failed(a, addr, "Authorization is not Bearer");
			adm_error(req, 401, "Authorization must be \"Bearer KEY\"");
			return ADM_AUTH_ANSWERED;
		}
		ret = js_apikey_check(a->s->store, auth + 7, &k);
		if (ret != DJ_EOK) {
			adm_auth_failed(a, addr, ret == DJ_EACCES ? "unknown or revoked API key"
							      : dj_strerror(ret));
			adm_error(req, ret == DJ_EACCES ? 401 : 503, "%s",
				  ret == DJ_EACCES ? "unknown or revoked API key"
						   : "the key store cannot be read");
			return ADM_AUTH_ANSWERED;
		}
		snprintf(who->actor, sizeof(who->actor), "apikey:%s", k.name);
		who->scope = k.scope;
		OPENSSL_cleanse(&k, sizeof(k));
		return ADM_AUTH_OK;
	}
	if (cookie_value(req, tok, sizeof(tok))) {
		struct adm_session *s = session_find(a, tok);
		const char *csrf = evhttp_find_header(h, "X-CSRF-Token");

		OPENSSL_cleanse(tok, sizeof(tok));
		if (s == NULL) {
			adm_auth_failed(a, addr, "unknown or expired session");
			adm_error(req, 401, "the session is unknown or has expired; log in again");
			return ADM_AUTH_ANSWERED;
		}
		if (change && (csrf == NULL || strlen(csrf) != ADM_TOKEN_HEX ||
			       CRYPTO_memcmp(csrf, s->csrf, ADM_TOKEN_HEX) != 0)) {
			adm_auth_failed(a, addr, "missing or wrong X-CSRF-Token");
			adm_error(req, 403, "a change needs the session's X-CSRF-Token header");
			return ADM_AUTH_ANSWERED;
		}
		snprintf(who->actor, sizeof(who->actor), "apikey:%s", s->name);
		who->scope = s->scope;
		who->cookie = true;
		return ADM_AUTH_OK;
	}
	if (adm_dane_presented(a, req))
		return ADM_AUTH_DANE;	/* no fallback: its TLSA records decide */
	if (mtls_identity(a, req, ident, sizeof(ident))) {
		snprintf(who->actor, sizeof(who->actor), "mtls:%s", ident);
		who->scope = a->mtls_scope;
		return ADM_AUTH_OK;
	}
	adm_auth_failed(a, addr, "no credential");
	adm_error(req, 401, "authenticate with \"Authorization: Bearer KEY\", a session or a "
		  "client certificate");
	return ADM_AUTH_ANSWERED;
}

/* session_login - POST /api/v1/session {"key": "djk_..."}: a console session */
static void session_login(struct admin *a, struct evhttp_request *req, const char *addr)
{
	size_t len = 0;
	char *body, cookie[256];
	json_t *j = NULL;
	const char *key = NULL;
	struct js_apikey k;
	struct adm_session *s = NULL;
	int ret;

	if (rate_limited(a, addr)) {
		adm_error(req, 429, "too many failed authentications; wait a minute");
		return;
	}
	body = adm_body(req, &len);
	if (body != NULL)
		j = json_loadb(body, len, 0, NULL);
	if (body != NULL)
		OPENSSL_clear_free(body, len);
	if (j == NULL || json_unpack(j, "{s:s}", "key", &key) != 0) {
		json_decref(j);
		adm_error(req, 400, "the body must be {\"key\": \"API key\"}");
		return;
	}
	ret = js_apikey_check(a->s->store, key, &k);
	json_decref(j);
	if (ret != DJ_EOK) {
		adm_auth_failed(a, addr, "console login with an unknown or revoked API key");
		adm_error(req, 401, "unknown or revoked API key");
		return;
	}
	for (unsigned i = 0; i < ADM_SESSIONS_MAX && s == NULL; i++)
		if (!a->sessions[i].used || a->sessions[i].expires <= adm_now())
			s = &a->sessions[i];
	if (s == NULL) {
		adm_error(req, 503, "too many console sessions");
		return;
	}
	memset(s, 0, sizeof(*s));
	if (random_hex(s->token) != DJ_EOK || random_hex(s->csrf) != DJ_EOK) {
		memset(s, 0, sizeof(*s));
		adm_error(req, 500, "no randomness");
		return;
	}
	s->used = true;
	snprintf(s->name, sizeof(s->name), "%s", k.name);
	s->scope = k.scope;
	s->expires = adm_now() + ADM_SESSION_TTL;
	snprintf(cookie, sizeof(cookie),
		 ADM_COOKIE "=%s; Path=/; HttpOnly; Secure; SameSite=Strict; Max-Age=%d",
		 s->token, ADM_SESSION_TTL);
	evhttp_add_header(evhttp_request_get_output_headers(req), "Set-Cookie", cookie);
	OPENSSL_cleanse(cookie, sizeof(cookie));
	dj_notice("admin: console session for key %s (%s) from %s", k.name,
		  js_apikey_scope_name(k.scope), addr);
	adm_reply_json(req, 200, json_pack("{s:s,s:s,s:s}", "name", s->name, "scope",
					   js_apikey_scope_name(s->scope), "csrf", s->csrf));
}

/* session_logout - DELETE /api/v1/session */
static void session_logout(struct admin *a, struct evhttp_request *req)
{
	char tok[ADM_TOKEN_HEX + 8];
	struct adm_session *s = cookie_value(req, tok, sizeof(tok)) ? session_find(a, tok) : NULL;

	if (s != NULL)
		memset(s, 0, sizeof(*s));
	evhttp_add_header(evhttp_request_get_output_headers(req), "Set-Cookie",
			  ADM_COOKIE "=; Path=/; HttpOnly; Secure; SameSite=Strict; Max-Age=0");
	adm_reply_json(req, 200, json_pack("{s:b}", "ok", 1));
}

static const char *method_name(enum evhttp_cmd_type m)
{
	switch (m) {
	case EVHTTP_REQ_GET: return "GET";
	case EVHTTP_REQ_POST: return "POST";
	case EVHTTP_REQ_DELETE: return "DELETE";
	case EVHTTP_REQ_PUT: return "PUT";
	case EVHTTP_REQ_HEAD: return "HEAD";
	default: return "OTHER";
	}
}

unsigned adm_split(char *buf, char **seg)
{
	unsigned n = 0;

	for (char *p = strtok(buf, "/"); p != NULL; p = strtok(NULL, "/")) {
		if (n == ADM_SEG_MAX)
			return ADM_SEG_MAX + 1;
		seg[n++] = p;
	}
	return n;
}

static bool route_match(const struct adm_route *r, char **seg, unsigned n)
{
	char pat[128];
	char *ps[ADM_SEG_MAX + 1];
	unsigned pn;

	snprintf(pat, sizeof(pat), "%s", r->path);
	pn = adm_split(pat, ps);
	if (pn != n)
		return false;
	for (unsigned i = 0; i < n; i++)
		if (ps[i][0] != '{' && strcmp(ps[i], seg[i]) != 0)
			return false;
	return true;
}

/* serve_static - a console file under console_dir (GET only, no "..") */
static void serve_static(struct admin *a, struct evhttp_request *req, const char *path)
{
	static const struct { const char *ext, *type; } types[] = {
		{ ".html", "text/html; charset=utf-8" }, { ".css", "text/css" },
		{ ".js", "text/javascript" }, { ".svg", "image/svg+xml" },
		{ ".png", "image/png" },
	};
	const char *type = NULL, *dot;
	char full[4096];
	struct evbuffer *b;
	struct stat st;
	int fd;

	if (a->console_dir == NULL || evhttp_request_get_command(req) != EVHTTP_REQ_GET ||
	    strstr(path, "..") != NULL || path[0] != '/') {
		adm_error(req, 404, "no such page");
		return;
	}
	if (strcmp(path, "/") == 0)
		path = "/index.html";
	dot = strrchr(path, '.');
	for (size_t i = 0; dot != NULL && i < DJ_ARRAY_LEN(types); i++)
		if (strcmp(dot, types[i].ext) == 0)
			type = types[i].type;
	snprintf(full, sizeof(full), "%s%s", a->console_dir, path);
	fd = type != NULL ? open(full, O_RDONLY | O_CLOEXEC | O_NOFOLLOW) : -1;
	if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) ||
	    (size_t)st.st_size > ADM_STATIC_MAX || (b = evbuffer_new()) == NULL) {
		if (fd >= 0)
			close(fd);
		adm_error(req, 404, "no such page");
		return;
	}
	if (evbuffer_add_file(b, fd, 0, st.st_size) != 0) {
		evbuffer_free(b);
		adm_error(req, 500, "cannot read the page");
		return;
	}
	common_headers(req);
	evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", type);
	evhttp_send_reply(req, 200, "OK", b);
	evbuffer_free(b);
}

/* origin_ok - no Origin, or exactly this listener's (https://Host) */
static bool origin_ok(struct evhttp_request *req)
{
	struct evkeyvalq *h = evhttp_request_get_input_headers(req);
	const char *origin = evhttp_find_header(h, "Origin");
	const char *host = evhttp_find_header(h, "Host");

	if (origin == NULL)
		return true;
	return host != NULL && strncmp(origin, "https://", 8) == 0 && strcmp(origin + 8, host) == 0;
}

void adm_serve(struct admin *a, struct evhttp_request *req, const struct adm_who *who,
	       const struct adm_route *hit, char **seg, unsigned nseg)
{
	const struct evhttp_uri *u = evhttp_request_get_evhttp_uri(req);
	const char *path = u != NULL ? evhttp_uri_get_path(u) : "?";
	const char *mname = method_name(evhttp_request_get_command(req));

	if (hit == NULL) {
		adm_error(req, 405, "method %s not allowed here", mname);
		return;
	}
	if (who->scope < hit->scope) {
		dj_notice("admin: %s refused %s %s: needs scope %s", who->actor, mname, path,
			  js_apikey_scope_name(hit->scope));
		adm_error(req, 403, "this needs scope %s; %s has %s",
			  js_apikey_scope_name(hit->scope), who->actor,
			  js_apikey_scope_name(who->scope));
		return;
	}
	hit->fn(a, req, who, seg, nseg);
}

static void dispatch(struct evhttp_request *req, void *arg)
{
	struct admin *a = arg;
	const struct evhttp_uri *u = evhttp_request_get_evhttp_uri(req);
	const char *path = u != NULL ? evhttp_uri_get_path(u) : NULL;
	enum evhttp_cmd_type m = evhttp_request_get_command(req);
	const char *mname = method_name(m);
	char addr[64], buf[512];
	char *seg[ADM_SEG_MAX + 1];
	const struct adm_route *hit = NULL;
	bool path_known = false;
	struct adm_who who;
	unsigned n;

	peer_addr(req, addr, sizeof(addr));
	if (path == NULL || strlen(path) >= sizeof(buf)) {
		adm_error(req, 400, "bad request target");
		return;
	}
	if (m == EVHTTP_REQ_OPTIONS) {	/* no CORS preflight is ever granted */
		adm_error(req, 405, "no cross-origin requests");
		return;
	}
	if (!origin_ok(req)) {
		adm_error(req, 403, "cross-origin requests are refused");
		return;
	}
	if (strncmp(path, "/api/", 5) != 0) {
		serve_static(a, req, path);
		return;
	}
	if (strcmp(path, "/api/v1/session") == 0) {
		if (m == EVHTTP_REQ_POST)
			session_login(a, req, addr);
		else if (m == EVHTTP_REQ_DELETE)
			session_logout(a, req);
		else
			adm_error(req, 405, "POST to log in, DELETE to log out");
		return;
	}
	snprintf(buf, sizeof(buf), "%s", path);
	n = adm_split(buf, seg);
	for (unsigned i = 0; n <= ADM_SEG_MAX && i < adm_n_routes; i++) {
		if (!route_match(&adm_routes[i], seg, n))
			continue;
		path_known = true;
		if (strcmp(adm_routes[i].method, mname) == 0)
			hit = &adm_routes[i];
	}
	if (!path_known) {
		adm_error(req, 404, "no such route");
		return;
	}
	switch (authenticate(a, req, addr, m != EVHTTP_REQ_GET && m != EVHTTP_REQ_HEAD, &who)) {
	case ADM_AUTH_ANSWERED:
		return;
	case ADM_AUTH_DANE:
		adm_dane_start(a, req, addr, hit, path);
		return;
	case ADM_AUTH_OK:
		break;
	}
	adm_serve(a, req, &who, hit, seg, n);
}

static struct bufferevent *bevcb(struct event_base *base, void *arg)
{
	struct admin *a = arg;
	SSL *ssl = SSL_new(a->ctx);

	if (ssl == NULL)
		return NULL;
	return bufferevent_openssl_socket_new(base, -1, ssl, BUFFEREVENT_SSL_ACCEPTING,
					      BEV_OPT_CLOSE_ON_FREE);
}

static void ping_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd, (void)what;
	adm_live_ping(arg);
}

/* dane_verify_cb - auth = dane: any chain passes the handshake; admin_dane.c judges it by
 * its TLSA records before the request is served */
static int dane_verify_cb(int preverify_ok, X509_STORE_CTX *xs)
{
	(void)preverify_ok, (void)xs;
	return 1;
}

static int tls_ctx(struct admin *a, const char *cert, const char *key, const char *ca,
		   char *err, size_t errlen)
{
	a->ctx = SSL_CTX_new(TLS_server_method());
	if (a->ctx == NULL)
		return DJ_ENOMEM;
	SSL_CTX_set_min_proto_version(a->ctx, TLS1_2_VERSION);
	if (SSL_CTX_use_certificate_chain_file(a->ctx, cert) != 1) {
		snprintf(err, errlen, "[admin] cert_file %s: cannot be loaded", cert);
		return DJ_ECONFIG;
	}
	if (SSL_CTX_use_PrivateKey_file(a->ctx, key, SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_check_private_key(a->ctx) != 1) {
		snprintf(err, errlen, "[admin] key_file %s: cannot be loaded or does not match",
			 key);
		return DJ_ECONFIG;
	}
	if (ca != NULL) {
		STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(ca);

		if (names == NULL || SSL_CTX_load_verify_locations(a->ctx, ca, NULL) != 1) {
			sk_X509_NAME_pop_free(names, X509_NAME_free);
			snprintf(err, errlen, "[admin] client_ca_file %s: cannot be loaded", ca);
			return DJ_ECONFIG;
		}
		SSL_CTX_set_client_CA_list(a->ctx, names);
		/* a certificate is optional (API keys work without one); one given must verify */
		SSL_CTX_set_verify(a->ctx, SSL_VERIFY_PEER, NULL);
	}
	if (a->dane) {
		/* no roots; DANE state for da_tls_verify; every connection judged afresh */
		if (da_tls_ctx_enable(a->ctx) != DJ_EOK) {
			snprintf(err, errlen, "[admin] auth = dane: %s", dj_openssl_reason());
			return DJ_ECRYPTO;
		}
		SSL_CTX_set_session_cache_mode(a->ctx, SSL_SESS_CACHE_OFF);
		SSL_CTX_set_options(a->ctx, SSL_OP_NO_TICKET);
		SSL_CTX_set_num_tickets(a->ctx, 0);
		SSL_CTX_set_verify(a->ctx, SSL_VERIFY_PEER, dane_verify_cb);
	}
	return DJ_EOK;
}

int admin_new(struct svc *s, struct admin **out, char *err, size_t errlen)
{
	const struct js_config *cfg = &s->peers->cfg;
	const char *cert = cfg->admin_cert_file != NULL ? cfg->admin_cert_file : cfg->cert_file;
	const char *key = cfg->admin_key_file != NULL ? cfg->admin_key_file : cfg->key_file;
	char host[256];
	const char *colon;
	struct admin *a;
	int ret;

	*out = NULL;
	if (cfg->admin_address == NULL)
		return DJ_EOK;
	if (cert == NULL || key == NULL) {
		snprintf(err, errlen, "[admin] address needs cert_file and key_file ([admin] or "
			 "[listen])");
		return DJ_ECONFIG;
	}
	a = calloc(1, sizeof(*a));
	if (a == NULL)
		return DJ_ENOMEM;
	a->s = s;
	a->fail_max = cfg->admin_auth_fail_max != 0 ? cfg->admin_auth_fail_max
						    : ADM_FAIL_DEFAULT;
	a->mtls_scope = JS_SCOPE_NONE;
	ret = adm_dane_setup(a, cfg, err, errlen);
	if (ret != DJ_EOK)
		goto fail;
	/* the scope of mTLS clients, PKIX or DANE alike (read unless mtls_scope says otherwise) */
	if (cfg->admin_client_ca_file != NULL || a->dane) {
		a->mtls_scope = JS_SCOPE_READ;
		if (cfg->admin_mtls_scope != NULL &&
		    js_apikey_scope_parse(cfg->admin_mtls_scope, &a->mtls_scope) != DJ_EOK) {
			snprintf(err, errlen, "[admin] mtls_scope: read, operate or admin");
			ret = DJ_ECONFIG;
			goto fail;
		}
	}
	ret = DJ_ENOMEM;
	a->cert_file = strdup(cert);
	if (a->cert_file == NULL)
		goto fail;
	if (cfg->admin_console_dir != NULL &&
	    (a->console_dir = strdup(cfg->admin_console_dir)) == NULL)
		goto fail;
	ret = tls_ctx(a, cert, key, cfg->admin_client_ca_file, err, errlen);
	if (ret != DJ_EOK)
		goto fail;
	ret = DJ_ENOMEM;
	a->http = evhttp_new(s->base);
	if (a->http == NULL)
		goto fail;
	evhttp_set_bevcb(a->http, bevcb, a);
	evhttp_set_gencb(a->http, dispatch, a);
	evhttp_set_max_body_size(a->http, ADM_BODY_MAX);
	evhttp_set_max_headers_size(a->http, 16384);
	evhttp_set_timeout(a->http, 60);
	evhttp_set_allowed_methods(a->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_DELETE |
				   EVHTTP_REQ_HEAD | EVHTTP_REQ_OPTIONS);
	/* "HOST:PORT" or "[V6]:PORT" (checked by js_config) */
	colon = strrchr(cfg->admin_address, ':');
	if (colon == NULL) {
		ret = DJ_ECONFIG;
		goto fail;
	}
	if (cfg->admin_address[0] == '[')
		snprintf(host, sizeof(host), "%.*s", (int)(colon - cfg->admin_address - 2),
			 cfg->admin_address + 1);
	else
		snprintf(host, sizeof(host), "%.*s", (int)(colon - cfg->admin_address),
			 cfg->admin_address);
	a->sock = evhttp_bind_socket_with_handle(a->http, host, (ev_uint16_t)atoi(colon + 1));
	if (a->sock == NULL) {
		snprintf(err, errlen, "[admin] address %s: cannot bind: %s", cfg->admin_address,
			 strerror(errno));
		ret = DJ_EIO;
		goto fail;
	}
	ret = adm_xfer_new(a, err, errlen);
	if (ret != DJ_EOK)
		goto fail;
	a->ping_ev = event_new(s->base, -1, EV_PERSIST, ping_cb, a);
	if (a->ping_ev == NULL || event_add(a->ping_ev, &(struct timeval){ ADM_PING_S, 0 }) != 0) {
		ret = DJ_ENOMEM;
		goto fail;
	}
	dj_notice("admin: management API on https://%s/%s%s", cfg->admin_address,
		  a->console_dir != NULL ? " (console)" : "",
		  a->dane ? " (mTLS by DANE identity)" : "");
	*out = a;
	return DJ_EOK;
fail:
	admin_free(a);
	return ret;
}

void admin_free(struct admin *a)
{
	if (a == NULL)
		return;
	adm_xfer_free(a);
	adm_live_free(a);
	adm_dane_free(a);
	if (a->ping_ev != NULL)
		event_free(a->ping_ev);
	adm_routes_free(a);	/* before evhttp_free() frees their requests */
	if (a->http != NULL)
		evhttp_free(a->http);
	SSL_CTX_free(a->ctx);
	OPENSSL_cleanse(a->sessions, sizeof(a->sessions));
	free(a->console_dir);
	free(a->cert_file);
	free(a);
}
