/*
 * srv_auth.c - who the client of the HTTPS server is: the TLS context, the identity in the
 *		leaf's SAN (PKIX) or claimed by dane_clientid, and the DANE check of the chain
 *		against the TLSA records at that name.
 *
 * SECURITY
 *	Every client is authenticated at the TLS layer before a byte of HTTP is parsed: the
 *	context requires a client certificate (SSL_VERIFY_FAIL_IF_NO_PEER_CERT) chaining to
 *	client_ca_file. Session caching and tickets are off (and TLS 1.3 sends zero tickets), so
 *	no connection is ever resumed on the strength of an earlier verification: a certificate
 *	revoked by removing its root on reload cannot ride an old session. TLS 1.2 and older are
 *	refused (RFC 8446 only; no renegotiation, no static-RSA key exchange).
 *
 *	The peer's identity is the single SAN dNSName of its leaf (RFC 5280 §4.2.1.6); the CN is
 *	never looked at (RFC 6125 §6.4.4). A leaf with no dNSName, or with more than one, is refused
 *	at the handshake in the verify callback: with several names the identity would be ambiguous
 *	and a peer could choose which of its names it acts as. Names with control characters,
 *	non-ASCII bytes or an embedded NUL are refused too, since the identity ends up in logs and
 *	in lookups.
 *
 *	DANE (SRV_AUTH_DANE): the context has no roots; the chain is judged after the handshake
 *	against the DNSSEC-secure TLSA records of the identity (da_tls), and until that verdict
 *	no request of the connection reaches the handler.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/bufferevent_ssl.h>
#include <event2/http.h>
#include <jansson.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "backend-auth/da_dns.h"
#include "backend-auth/da_tls.h"
#include "bi/bi_tls.h"
#include "bi/srv_internal.h"
#include "common/dj_clock.h"
#include "common/dj_err.h"
#include "common/dj_log.h"

#define SRV_AL_CERTIFICATE_REQUIRED 116 /* RFC 8446 §6.2 certificate_required alert */

/* leaf_identity - the single SAN dNSName of \p x, or a reason why there is none */
static int leaf_identity(X509 *x, char *out, size_t outlen, char *why, size_t whylen)
{
	GENERAL_NAMES *gens;
	const unsigned char *name = NULL;
	int crit = -1, n_dns = 0, name_len = 0, i, ret = DJ_EMALFORMED;

	gens = X509_get_ext_d2i(x, NID_subject_alt_name, &crit, NULL);
	if (gens == NULL) {
		/* crit == -2: the extension occurs more than once (RFC 5280 §4.2 forbids it) */
		dj_errbuf(why, whylen,
			crit == -2 ? "client certificate has several SAN extensions"
				   : "client certificate has no SAN dNSName");
		goto out;
	}
	for (i = 0; i < sk_GENERAL_NAME_num(gens); i++) {
		const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);

		if (g->type != GEN_DNS)
			continue;
		n_dns++;
		name = ASN1_STRING_get0_data(g->d.dNSName);
		name_len = ASN1_STRING_length(g->d.dNSName);
	}
	if (n_dns != 1) {
		if (n_dns == 0)
			dj_errbuf(why, whylen, "client certificate has no SAN dNSName");
		else
			dj_errbuf(why, whylen, "client certificate has %d SAN dNSNames, not one",
				n_dns);
		goto out;
	}
	if (name_len <= 0 || (size_t)name_len >= outlen) {
		dj_errbuf(why, whylen, "client certificate SAN dNSName is empty or too long");
		goto out;
	}
	for (i = 0; i < name_len; i++) {
		if (name[i] <= 0x20 || name[i] >= 0x7f) {
			dj_errbuf(why, whylen, "client certificate SAN dNSName has a forbidden byte");
			goto out;
		}
	}
	memcpy(out, name, (size_t)name_len);
	out[name_len] = '\0';
	ret = DJ_EOK;
out:
	GENERAL_NAMES_free(gens);
	return ret;
}

/* verify_cb - after OpenSSL's own chain check, insist on exactly one SAN dNSName at depth 0 */
static int verify_cb(int preverify_ok, X509_STORE_CTX *xs)
{
	SSL *ssl = X509_STORE_CTX_get_ex_data(xs, SSL_get_ex_data_X509_STORE_CTX_idx());
	struct conn *c = srv__ssl_conn(ssl);
	X509 *leaf;

	if (c != NULL && c->dane) {
		/*
		 * DANE: the chain is judged against TLSA records after the handshake (conn_verify
		 * below); here only the identity must be clear. With a dane_clientid the name is
		 * the claimed one; without, the leaf must carry exactly one SAN dNSName.
		 */
		if (X509_STORE_CTX_get_error_depth(xs) != 0 || c->claimed[0] != '\0')
			return 1;
		leaf = X509_STORE_CTX_get_current_cert(xs);
		if (leaf == NULL || leaf_identity(leaf, c->identity, sizeof(c->identity), c->why,
						  sizeof(c->why)) != DJ_EOK) {
			c->identity[0] = '\0';
			X509_STORE_CTX_set_error(xs, X509_V_ERR_APPLICATION_VERIFICATION);
			return 0;
		}
		return 1;
	}
	if (!preverify_ok || X509_STORE_CTX_get_error_depth(xs) != 0)
		return preverify_ok;
	leaf = X509_STORE_CTX_get_current_cert(xs);
	if (c == NULL || leaf == NULL ||
	    leaf_identity(leaf, c->identity, sizeof(c->identity), c->why, sizeof(c->why)) !=
		DJ_EOK) {
		if (c != NULL)
			c->identity[0] = '\0';
		X509_STORE_CTX_set_error(xs, X509_V_ERR_APPLICATION_VERIFICATION);
		return 0;
	}
	return 1;
}

/* srv__refusal_json - {"error": why the connection failed its DANE check} */
void srv__refusal_json(const struct conn *c, char *out, size_t outlen)
{
	json_t *j = json_pack("{s:s}", "error", c->vwhy);
	char *txt = j != NULL ? json_dumps(j, JSON_COMPACT) : NULL;

	snprintf(out, outlen, "%s", txt != NULL ? txt : "{\"error\":\"not authenticated\"}");
	free(txt);
	json_decref(j);
}

/* reply_refused - answer a request of a connection that failed its DANE check, and close */
static void reply_refused(struct srv_req *r, const struct conn *c)
{
	char body[sizeof(c->vwhy) + 64];

	r->close = true;
	srv__refusal_json(c, body, sizeof(body));
	srv_reply(r, c->vtemp ? HTTP_SERVUNAVAIL : 403, body, strlen(body));
}

/* conn_verified - the DANE check ended: release or refuse a held request, or drop the peer */
static void conn_verified(struct conn *c)
{
	struct srv_req *r = c->pending;
	struct srv *s = c->s;

	if (r != NULL && r->held) {
		r->held = false;
		if (c->vstate == V_OK && s != NULL) {
			memcpy(r->peer, c->identity, sizeof(r->peer));
			s->props.handler(r, s->props.arg);
		} else {
			reply_refused(r, c);
		}
		return;
	}
	/* Nothing asked yet: a refused peer may still send its request and be told why (gencb
	 * answers it 403/503 and closes); header_timeout, still armed, ends it otherwise. */
}

/* on_tlsa - the TLSA verdict for the connection's identity: check its chain against it */
static void on_tlsa(const struct da_tlsa_set *set, void *arg)
{
	struct conn *c = arg;
	SSL *ssl = bufferevent_openssl_get_ssl(c->bev);
	struct da_verdict v;
	X509 *leaf = ssl != NULL ? SSL_get0_peer_certificate(ssl) : NULL;
	const char *name = c->claimed[0] != '\0' ? c->claimed : c->identity;

	c->lookup = NULL;
	c->vstate = V_FAILED;
	if (set->status != DA_SECURE) {
		c->vtemp = set->status == DA_TEMPFAIL;
		bi_tls__tlsa_why(set, set->name, c->vwhy, sizeof(c->vwhy));
	} else if (leaf == NULL) {
		snprintf(c->vwhy, sizeof(c->vwhy), "no client certificate");
	} else if (da_tls_verify(SSL_get_SSL_CTX(ssl), leaf, SSL_get_peer_cert_chain(ssl), name,
				 set->rr, set->n, DA_PEER_CLIENT, &v) != DJ_EOK) {
		c->vtemp = true;
		snprintf(c->vwhy, sizeof(c->vwhy), "DANE check of %s failed: %s", name,
			 dj_openssl_reason());
	} else if (!v.ok) {
		snprintf(c->vwhy, sizeof(c->vwhy), "certificate does not match TLSA %s: %s", name,
			 v.why);
	} else {
		c->vstate = V_OK;
		if (c->claimed[0] != '\0')
			snprintf(c->identity, sizeof(c->identity), "%s", c->claimed);
		if (!srv__peer_admit(c)) {
			c->vstate = V_FAILED;
			c->vtemp = true;
			snprintf(c->vwhy, sizeof(c->vwhy), "too many connections for %s",
				 c->identity);
			conn_verified(c);
			return;
		}
		dj_info("client %s authenticated as %s by DANE (TLSA %d %d %d at depth %d%s)",
			srv__conn_addr(c), c->identity, v.usage, v.selector, v.mtype, v.depth,
			c->claimed[0] != '\0' ? ", dane_clientid" : "");
	}
	if (c->s != NULL) {
		if (c->vstate == V_OK)
			c->s->auth_stats.ok++;
		else if (c->vtemp)
			c->s->auth_stats.tempfail++;
		else
			c->s->auth_stats.rejected++;
	}
	if (c->vstate != V_OK) {
		c->failure_logged = true;
		if (c->vtemp)
			dj_warn("client %s: temporary failure checking %s: %s", srv__conn_addr(c), name,
				c->vwhy);
		else
			dj_warn("client %s refused: %s", srv__conn_addr(c), c->vwhy);
	}
	conn_verified(c);
}

/* conn_verify_start - after the handshake: look up the TLSA records of the peer's identity */
static void conn_verify_start(struct conn *c)
{
	const char *name = c->claimed[0] != '\0' ? c->claimed : c->identity;
	char norm[DA_NAME_MAX], why[DA_WHY_MAX] = "";
	int rc = DJ_ESHUTDOWN;

	c->vstate = V_PENDING;
	if (c->s != NULL && c->s->props.resolver != NULL &&
	    (rc = da_name_normalize(name, norm, sizeof(norm), why, sizeof(why))) == DJ_EOK)
		rc = da_tlsa_lookup(c->s->props.resolver, norm, on_tlsa, c, &c->lookup);
	if (rc == DJ_EOK)
		return; /* on_tlsa ran already, or will */
	c->vstate = V_FAILED;
	c->vtemp = rc != DJ_EMALFORMED && rc != DJ_EINVAL;
	snprintf(c->vwhy, sizeof(c->vwhy), "identity %s: %s", name,
		 why[0] != '\0' ? why : dj_strerror(rc));
	c->failure_logged = true;
	dj_warn("client %s refused: %s", srv__conn_addr(c), c->vwhy);
	if (c->s != NULL) {
		if (c->vtemp)
			c->s->auth_stats.tempfail++;
		else
			c->s->auth_stats.rejected++;
	}
	conn_verified(c);
}

/* prefetch_cb - the answer to an early lookup: it only warms the cache */
static void prefetch_cb(const struct da_tlsa_set *set, void *arg)
{
	(void)set;
	(void)arg;
}

/* hello_cb - DANE: read the claimed identity (dane_clientid) and start its lookup early */
static int hello_cb(SSL *ssl, int *al, void *arg)
{
	struct conn *c = srv__ssl_conn(ssl);
	struct srv *s = c != NULL ? c->s : NULL;
	int rc;

	(void)arg;
	if (s == NULL || !c->dane || s->props.clientid_ext == 0 || c->claimed[0] != '\0')
		return SSL_CLIENT_HELLO_SUCCESS;
	rc = da_tls_clientid_get(ssl, s->props.clientid_ext, c->claimed, sizeof(c->claimed), c->why,
				 sizeof(c->why));
	if (rc == DJ_EMALFORMED) {
		c->claimed[0] = '\0';
		*al = SSL_AD_DECODE_ERROR;
		return SSL_CLIENT_HELLO_ERROR;
	}
	if (rc != DJ_EOK) {
		c->claimed[0] = '\0';
		return SSL_CLIENT_HELLO_SUCCESS;
	}
	if (s->props.resolver != NULL &&
	    da_tlsa_lookup(s->props.resolver, c->claimed, prefetch_cb, NULL, NULL) != DJ_EOK)
		dj_debug("prefetch of TLSA %s not started", c->claimed);
	return SSL_CLIENT_HELLO_SUCCESS;
}

/* info_cb - note the peer address, handshake completion, and log fatal alerts we send */
static void info_cb(const SSL *ssl, int where, int ret)
{
	struct conn *c = srv__ssl_conn(ssl);
	const char *reason;
	long vr;

	if (c == NULL)
		return;
	if (where & SSL_CB_HANDSHAKE_START)
		srv__conn_fill_addr(c, SSL_get_fd(ssl));
	if ((where & SSL_CB_HANDSHAKE_DONE) && !c->handshake_done) {
		c->handshake_done = true;
		/* the client's first records may have come with its Finished: libevent enables
		 * reading on the socket only, so read them once the handshake has returned */
		if (SSL_has_pending(ssl) && c->read_ev != NULL)
			event_active(c->read_ev, EV_TIMEOUT, 0);
		/* the handshake was within header_timeout; the first request gets its own */
		if (c->timing && !c->rate_on)
			c->t0 = dj_clock_mono_s();
		if (c->dane) {
			conn_verify_start(c);
		} else if (srv__peer_admit(c)) {
			c->vstate = V_OK;
		} else {
			c->vstate = V_FAILED;
			c->vtemp = true;
			snprintf(c->vwhy, sizeof(c->vwhy), "too many connections for %s",
				 c->identity);
		}
	}
	if ((where & SSL_CB_WRITE_ALERT) == SSL_CB_WRITE_ALERT && (ret >> 8) == SSL3_AL_FATAL &&
	    !c->handshake_done && !c->failure_logged) {
		vr = SSL_get_verify_result(ssl);
		if (c->why[0] != '\0')
			reason = c->why;
		else if (vr != X509_V_OK)
			reason = X509_verify_cert_error_string(vr);
		else if ((ret & 0xff) == SRV_AL_CERTIFICATE_REQUIRED)
			reason = "no client certificate";
		else
			reason = SSL_alert_desc_string_long(ret);
		dj_warn("TLS handshake from %s failed: %s", srv__conn_addr(c), reason);
		c->failure_logged = true;
	}
}

int srv__tls_ctx_new(enum srv_auth auth, unsigned clientid_ext, const char *cert_file,
		     const char *key_file, const char *ca_file, SSL_CTX **out, char *err,
		     size_t errlen)
{
	const struct bi_tls_ctx_props tp = {
		.server = true, .dane = auth == SRV_AUTH_DANE,
		.cert_file = cert_file, .cert_what = "cert_file",
		.key_file = key_file, .key_what = "key_file",
	};
	SSL_CTX *ctx = NULL;
	STACK_OF(X509_NAME) *names = NULL;
	int ret = DJ_ECONFIG;

	*out = NULL;
	if (cert_file == NULL || key_file == NULL || (auth == SRV_AUTH_PKIX && ca_file == NULL)) {
		dj_errbuf(err, errlen, "cert_file, key_file and (PKIX) client_ca_file are required");
		goto out;
	}
	ret = bi_tls__ctx_new(&tp, &ctx, err, errlen);
	if (ret != DJ_EOK)
		goto out;
	ret = DJ_ECONFIG;
	if (auth == SRV_AUTH_DANE) {
		/* no roots at all: every client is judged by its TLSA records (conn_verify_start) */
		if (clientid_ext != 0 && da_tls_clientid_accept(ctx, clientid_ext) != DJ_EOK) {
			dj_errbuf(err, errlen, "dane_clientid codepoint %u cannot be used",
				  clientid_ext);
			goto out;
		}
		SSL_CTX_set_client_hello_cb(ctx, hello_cb, NULL);
	} else {
		if (SSL_CTX_load_verify_locations(ctx, ca_file, NULL) != 1) {
			dj_errbuf(err, errlen, "client_ca_file %s: %s", ca_file,
				  dj_openssl_reason());
			goto out;
		}
		/* tell clients which roots we accept (CertificateRequest certificate_authorities) */
		names = SSL_load_client_CA_file(ca_file);
		if (names == NULL) {
			dj_errbuf(err, errlen, "client_ca_file %s: no certificates", ca_file);
			ERR_clear_error();
			goto out;
		}
		SSL_CTX_set_client_CA_list(ctx, names);
	}
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, verify_cb);
	SSL_CTX_set_info_callback(ctx, info_cb);
	*out = ctx;
	ctx = NULL;
	ret = DJ_EOK;
out:
	SSL_CTX_free(ctx);
	return ret;
}
