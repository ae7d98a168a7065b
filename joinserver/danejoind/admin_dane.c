/*
 * admin_dane.c - mutual TLS on the management API by a DANE identity ([admin] auth = dane):
 *		  a client certificate whose single SAN dNSName is one of [admin]
 *		  client_identities ("_admin-client.HOST") and matches the DNSSEC-secure TLSA
 *		  records at that name.
 *
 * SECURITY
 *	- The listener's context has no roots: a client's chain is accepted at the handshake and
 *	  judged before its request is served, against the TLSA records at its identity, looked
 *	  up through the daemon's [dane] resolver (libdj_auth: only a validated, secure answer
 *	  counts). Insecure, bogus, NXDOMAIN, NODATA or a certificate no record matches: 401 and
 *	  a log line saying why; a resolver failure: 503. Nothing falls back to another method:
 *	  auth = dane has no client_ca_file, and a client whose certificate fails gets no scope.
 *	- Only names listed in client_identities are looked up: a certificate naming anything
 *	  else is refused before any query (no lookups chosen by strangers).
 *	- Every request is judged (from the resolver's cache, capped by [dane] ttl_cap), so a
 *	  withdrawn record shuts a client out once the cached answer expires, even on a kept-alive
 *	  connection; sessions are never resumed (no cache, no tickets).
 *	- The request waits for the verdict (at most [dane] timeout_ms; evhttp does not read
 *	  the connection meanwhile, so a client that left is usually noticed only when the
 *	  answer is written); if evhttp closes the connection first, the lookup is cancelled
 *	  and the request freed (closed_cb). At most ADM_DANE_MAX requests wait at once.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/http.h>
#include <openssl/x509v3.h>

#include "admin_internal.h"
#include "backend-auth/da_dns.h"
#include "backend-auth/da_tls.h"
#include "common/dj_err.h"
#include "common/dj_log.h"

struct adm_dane {
	struct admin *a;
	struct evhttp_request *req;
	struct evhttp_connection *conn;
	struct da_lookup *lookup;
	const struct adm_route *hit;
	X509 *leaf;
	STACK_OF(X509) *chain;
	bool starting, answered;
	int status;			/* 0: authenticated; else the refusal's HTTP status */
	char why[DA_WHY_MAX + 2 * DA_NAME_MAX + 128];
	char identity[DA_NAME_MAX];
	char addr[64];
	char path[512];
	char *seg[ADM_SEG_MAX + 1];
	unsigned nseg;
};

/* normalize_ids - [admin] client_identities, normalized (lower case, no trailing dot) */
static int normalize_ids(const struct js_config *cfg, char ids[][DA_NAME_MAX], char *err,
			 size_t errlen)
{
	char why[DA_WHY_MAX] = "";

	for (unsigned i = 0; i < cfg->admin_client_identities.n; i++) {
		const char *id = cfg->admin_client_identities.v[i];

		if (da_name_normalize(id, ids[i], DA_NAME_MAX, why, sizeof(why)) != DJ_EOK) {
			snprintf(err, errlen, "[admin] client_identities: '%s': %s", id, why);
			return DJ_ECONFIG;
		}
	}
	return DJ_EOK;
}

int admin_check_config(const struct js_config *cfg, char *err, size_t errlen)
{
	char ids[JS_CONFIG_LIST_MAX][DA_NAME_MAX];

	return normalize_ids(cfg, ids, err, errlen);
}

int adm_dane_setup(struct admin *a, const struct js_config *cfg, char *err, size_t errlen)
{
	int ret;

	if (cfg->admin_client_identities.n == 0 ||
	    (cfg->admin_auth != NULL && strcmp(cfg->admin_auth, "dane") != 0))
		return DJ_EOK;
	if (a->s->resolver == NULL) {
		snprintf(err, errlen, "[admin] auth = dane needs [listen] auth = dane (the TLSA "
			 "records are read through the [dane] resolver)");
		return DJ_ECONFIG;
	}
	a->ids = calloc(cfg->admin_client_identities.n, sizeof(*a->ids));
	if (a->ids == NULL)
		return DJ_ENOMEM;
	ret = normalize_ids(cfg, a->ids, err, errlen);
	if (ret != DJ_EOK)
		return ret;
	a->n_ids = cfg->admin_client_identities.n;
	a->dane = true;
	return DJ_EOK;
}

/* conn_ssl - the TLS object of the request's connection */
static SSL *conn_ssl(struct evhttp_request *req)
{
	struct evhttp_connection *c = evhttp_request_get_connection(req);
	struct bufferevent *bev = c != NULL ? evhttp_connection_get_bufferevent(c) : NULL;

	return bev != NULL ? bufferevent_openssl_get_ssl(bev) : NULL;
}

bool adm_dane_presented(struct admin *a, struct evhttp_request *req)
{
	SSL *ssl = a->dane ? conn_ssl(req) : NULL;

	return ssl != NULL && SSL_get0_peer_certificate(ssl) != NULL;
}

/* leaf_identity - the single SAN dNSName of \p x, normalized; false: \p why says why not */
static bool leaf_identity(X509 *x, char *out, size_t cap, char *why, size_t whylen)
{
	GENERAL_NAMES *names = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
	char raw[DA_NAME_MAX] = "", nwhy[DA_WHY_MAX] = "";
	int n_dns = 0;

	for (int i = 0; names != NULL && i < sk_GENERAL_NAME_num(names); i++) {
		const GENERAL_NAME *g = sk_GENERAL_NAME_value(names, i);
		int len;

		if (g->type != GEN_DNS)
			continue;
		n_dns++;
		len = ASN1_STRING_length(g->d.dNSName);
		if (len > 0 && (size_t)len < sizeof(raw) &&
		    memchr(ASN1_STRING_get0_data(g->d.dNSName), '\0', (size_t)len) == NULL)
			snprintf(raw, sizeof(raw), "%.*s", len,
				 (const char *)ASN1_STRING_get0_data(g->d.dNSName));
	}
	GENERAL_NAMES_free(names);
	if (n_dns != 1) {
		snprintf(why, whylen, "the client certificate has %d SAN dNSNames, not one", n_dns);
		return false;
	}
	if (da_name_normalize(raw, out, cap, nwhy, sizeof(nwhy)) != DJ_EOK) {
		snprintf(why, whylen, "the client certificate's SAN dNSName is not a DNS name: %s",
			 nwhy);
		return false;
	}
	return true;
}

/* pending_drop - forget a waiting request's state (not the request: evhttp owns it) */
static void pending_drop(struct adm_dane *p)
{
	struct admin *a = p->a;

	for (unsigned i = 0; i < ADM_DANE_MAX; i++)
		if (a->dane_pending[i] == p)
			a->dane_pending[i] = NULL;
	if (p->conn != NULL)
		evhttp_connection_set_closecb(p->conn, NULL, NULL);
	X509_free(p->leaf);
	sk_X509_pop_free(p->chain, X509_free);
	free(p);
}

/* finish - the verdict is in: serve the request or refuse it */
static void finish(struct adm_dane *p)
{
	struct admin *a = p->a;
	struct evhttp_request *req = p->req;
	const struct adm_route *hit = p->hit;
	struct adm_who who = { .scope = a->mtls_scope };
	char *seg[ADM_SEG_MAX + 1], path[sizeof(p->path)], why[sizeof(p->why)];
	unsigned n = p->nseg <= ADM_SEG_MAX ? p->nseg : 0;	/* a route matched: <= */
	int status = p->status;

	if (status != 0) {
		if (status == 401)
			adm_auth_failed(a, p->addr, p->why);
		else
			dj_warn("admin: client %s (%s): %s", p->addr, p->identity, p->why);
		snprintf(why, sizeof(why), "%s", p->why);
		pending_drop(p);
		adm_error(req, status, "%s", why);
		return;
	}
	snprintf(who.actor, sizeof(who.actor), "mtls:%s", p->identity);
	memcpy(path, p->path, sizeof(path));
	for (unsigned i = 0; i < n; i++)
		seg[i] = path + (p->seg[i] - p->path);
	pending_drop(p);	/* before the route: GET /events sets its own close callback */
	adm_serve(a, req, &who, hit, seg, n);
}

/* tlsa_why - "DANE identity NAME: TLSA nxdomain: the name does not exist ..." (the
 * resolver's reason, which may already start with the verdict's name) */
static void tlsa_why(const struct da_tlsa_set *set, const char *name, char *out, size_t cap)
{
	const char *st = da_status_str(set->status), *why = set->why;

	if (why == NULL || strcmp(why, st) == 0)
		snprintf(out, cap, "DANE identity %s: TLSA %s", name, st);
	else if (strncmp(why, st, strlen(st)) == 0)
		snprintf(out, cap, "DANE identity %s: TLSA %s", name, why);
	else
		snprintf(out, cap, "DANE identity %s: TLSA %s: %s", name, st, why);
}

/* on_tlsa - the TLSA verdict on the client's identity: check its chain against it */
static void on_tlsa(const struct da_tlsa_set *set, void *arg)
{
	struct adm_dane *p = arg;
	struct da_verdict v;

	p->lookup = NULL;
	p->status = 401;
	if (set->status != DA_SECURE) {
		p->status = set->status == DA_TEMPFAIL ? 503 : 401;
		tlsa_why(set, p->identity, p->why, sizeof(p->why));
	} else if (da_tls_verify(p->a->ctx, p->leaf, p->chain, p->identity, set->rr, set->n,
				 DA_PEER_CLIENT, &v) != DJ_EOK) {
		p->status = 503;
		snprintf(p->why, sizeof(p->why), "DANE identity %s: the check failed: %s",
			 p->identity, dj_openssl_reason());
	} else if (!v.ok) {
		snprintf(p->why, sizeof(p->why), "DANE identity %s: the client certificate does "
			 "not match its TLSA records: %s", p->identity, v.why);
	} else {
		p->status = 0;
		dj_info("admin: client %s authenticated as %s by DANE (TLSA %d %d %d at depth %d)",
			p->addr, p->identity, v.usage, v.selector, v.mtype, v.depth);
	}
	if (p->starting) {
		p->answered = true;	/* a cache hit: adm_dane_start finishes */
		return;
	}
	finish(p);
}

/* closed_cb - the client went away while its request waited for the verdict */
static void closed_cb(struct evhttp_connection *c, void *arg)
{
	struct adm_dane *p = arg;

	(void)c;
	dj_info("admin: client %s (%s) left before its DANE check ended", p->addr, p->identity);
	da_lookup_cancel(p->lookup);
	p->lookup = NULL;
	p->conn = NULL;
	/* evhttp detached the unanswered request from the failed connection: answering it
	 * frees it */
	evhttp_send_reply(p->req, 503, "closed", NULL);
	pending_drop(p);
}

/* refuse - a refusal before any lookup */
static void refuse(struct admin *a, struct evhttp_request *req, const char *addr, int status,
		   const char *why)
{
	if (status == 401)
		adm_auth_failed(a, addr, why);
	adm_error(req, status, "%s", why);
}

void adm_dane_start(struct admin *a, struct evhttp_request *req, const char *addr,
		    const struct adm_route *hit, const char *path)
{
	SSL *ssl = conn_ssl(req);
	X509 *leaf = ssl != NULL ? SSL_get0_peer_certificate(ssl) : NULL;
	char id[DA_NAME_MAX], why[DA_WHY_MAX + 2 * DA_NAME_MAX + 128];
	struct adm_dane *p;
	struct da_lookup *h = NULL;
	unsigned slot, i;
	int rc;

	if (leaf == NULL || !leaf_identity(leaf, id, sizeof(id), why, sizeof(why))) {
		refuse(a, req, addr, 401, leaf == NULL ? "no client certificate" : why);
		return;
	}
	for (i = 0; i < a->n_ids && strcmp(a->ids[i], id) != 0; i++)
		;
	if (i == a->n_ids) {
		snprintf(why, sizeof(why), "DANE identity %s is not in [admin] client_identities",
			 id);
		refuse(a, req, addr, 401, why);
		return;
	}
	for (slot = 0; slot < ADM_DANE_MAX && a->dane_pending[slot] != NULL; slot++)
		;
	p = slot < ADM_DANE_MAX ? calloc(1, sizeof(*p)) : NULL;
	if (p == NULL) {
		adm_error(req, 503, "too many requests waiting for their DANE check");
		return;
	}
	p->a = a;
	p->req = req;
	p->hit = hit;
	snprintf(p->identity, sizeof(p->identity), "%s", id);
	snprintf(p->addr, sizeof(p->addr), "%s", addr);
	snprintf(p->path, sizeof(p->path), "%s", path);
	p->nseg = adm_split(p->path, p->seg);
	p->leaf = X509_dup(leaf);
	p->chain = SSL_get_peer_cert_chain(ssl) != NULL ?
			   X509_chain_up_ref(SSL_get_peer_cert_chain(ssl)) : NULL;
	if (p->leaf == NULL) {
		free(p);
		adm_error(req, 500, "out of memory");
		return;
	}
	a->dane_pending[slot] = p;
	p->conn = evhttp_request_get_connection(req);
	evhttp_connection_set_closecb(p->conn, closed_cb, p);
	p->starting = true;
	rc = da_tlsa_lookup(a->s->resolver, p->identity, on_tlsa, p, &h);
	p->starting = false;
	if (rc != DJ_EOK) {
		p->status = 503;
		snprintf(p->why, sizeof(p->why), "DANE identity %s: the lookup cannot start: %s",
			 p->identity, dj_strerror(rc));
		finish(p);
		return;
	}
	if (p->answered) {
		finish(p);
		return;
	}
	p->lookup = h;
}

void adm_dane_free(struct admin *a)
{
	for (unsigned i = 0; i < ADM_DANE_MAX; i++) {
		struct adm_dane *p = a->dane_pending[i];

		if (p == NULL)
			continue;
		da_lookup_cancel(p->lookup);
		p->lookup = NULL;
		pending_drop(p);	/* evhttp_free() then frees the request with its connection */
	}
	free(a->ids);
	a->ids = NULL;
}
