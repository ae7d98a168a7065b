/*
 * da_tls.c - DANE for TLS peers on OpenSSL's verifier, and the dane_clientid extension.
 *
 * SECURITY
 *	- Only usages DANE-TA(2) and DANE-EE(3) are ever handed to OpenSSL: PKIX-TA(0) and
 *	  PKIX-EE(1) would need a public trust store, which danejoin never loads.
 *	- DANE-EE name checks are off (DANE_FLAG_NO_DANE_EE_NAMECHECKS, RFC 7671 §5.1): the key
 *	  in the DNS is the identity. DANE-TA keeps them: a private CA may have issued other names.
 *	- The server-side check (da_tls_verify) runs the same verifier that a handshake would, on
 *	  a throwaway SSL object that only carries the DANE state, so no rule differs between the
 *	  two directions.
 *	- Names arriving from the network (the extension) are decoded with ldns, refused if they
 *	  use compression or carry bytes outside LDH and '_', and lower-cased before any use.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include <ldns/ldns.h>
#include <openssl/err.h>
#include <openssl/x509_vfy.h>

#include "backend-auth/da_tls.h"
#include "common/dj_err.h"

#define DA_NAME_LEN_MAX 253
#define DA_LABEL_MAX 63
#define DA_WIRE_MAX 255

int da_tls_ctx_enable(SSL_CTX *ctx)
{
	if (SSL_CTX_dane_enable(ctx) <= 0) {
		ERR_clear_error();
		return DJ_ECRYPTO;
	}
	return DJ_EOK;
}

int da_name_normalize(const char *in, char *out, size_t outlen, char *why, size_t whylen)
{
	size_t len, i, label = 0;

	if (in == NULL || in[0] == '\0') {
		dj_errbuf(why, whylen, "empty name");
		return DJ_EMALFORMED;
	}
	len = strlen(in);
	if (len > 1 && in[len - 1] == '.')
		len--;
	if (len > DA_NAME_LEN_MAX || len + 1 > outlen) {
		dj_errbuf(why, whylen, "name longer than %d characters", DA_NAME_LEN_MAX);
		return DJ_EMALFORMED;
	}
	for (i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)in[i];

		if (ch == '.') {
			if (label == 0) {
				dj_errbuf(why, whylen, "empty label in name");
				return DJ_EMALFORMED;
			}
			label = 0;
		} else if (isalnum(ch) || ch == '-' || ch == '_') {
			if (++label > DA_LABEL_MAX) {
				dj_errbuf(why, whylen, "label longer than %d characters",
					  DA_LABEL_MAX);
				return DJ_EMALFORMED;
			}
		} else {
			dj_errbuf(why, whylen, "character 0x%02x not allowed in a name", ch);
			return DJ_EMALFORMED;
		}
		out[i] = (char)tolower(ch);
	}
	if (label == 0) {
		dj_errbuf(why, whylen, "empty label in name");
		return DJ_EMALFORMED;
	}
	out[len] = '\0';
	return DJ_EOK;
}

int da_clientid_encode(const char *name, unsigned char *out, size_t outlen, size_t *len)
{
	char norm[DA_NAME_MAX];
	ldns_rdf *rdf = NULL;
	size_t n;
	int ret = DJ_EMALFORMED;

	if (da_name_normalize(name, norm, sizeof(norm), NULL, 0) != DJ_EOK)
		goto out;
	if (ldns_str2rdf_dname(&rdf, norm) != LDNS_STATUS_OK)
		goto out;
	n = ldns_rdf_size(rdf);
	ret = DJ_ERANGE;
	if (n + 1 > outlen || n > DA_WIRE_MAX)
		goto out;
	out[0] = (unsigned char)n;
	memcpy(out + 1, ldns_rdf_data(rdf), n);
	*len = n + 1;
	ret = DJ_EOK;
out:
	ldns_rdf_deep_free(rdf);
	return ret;
}

int da_clientid_decode(const unsigned char *data, size_t len, char *out, size_t outlen, char *why,
		       size_t whylen)
{
	ldns_rdf *rdf = NULL;
	char *str = NULL;
	size_t pos, wlen;
	int ret = DJ_EMALFORMED;

	if (len == 0 || (len == 1 && data[0] == 0))
		return DJ_ENOENT; /* the identity is in the certificate */
	wlen = data[0];
	if (wlen + 1 != len) {
		dj_errbuf(why, whylen, "dane_clientid: length %zu does not match the data (%zu)",
			  wlen, len - 1);
		goto out;
	}
	/* uncompressed wire format: walk the labels, refuse pointers */
	for (pos = 1; pos < len && data[pos] != 0; pos += 1 + data[pos]) {
		if ((data[pos] & 0xc0) != 0) {
			dj_errbuf(why, whylen, "dane_clientid: compressed or extended label");
			goto out;
		}
	}
	if (pos != len - 1) {
		dj_errbuf(why, whylen, "dane_clientid: not one name ending at the root label");
		goto out;
	}
	if (wlen == 1) {
		dj_errbuf(why, whylen, "dane_clientid: the root name is no identity");
		goto out;
	}
	rdf = ldns_dname_new_frm_data(wlen, data + 1);
	str = rdf != NULL ? ldns_rdf2str(rdf) : NULL;
	if (str == NULL) {
		dj_errbuf(why, whylen, "dane_clientid: not a DNS name");
		goto out;
	}
	if (da_name_normalize(str, out, outlen, why, whylen) != DJ_EOK)
		goto out;
	ret = DJ_EOK;
out:
	free(str);
	ldns_rdf_deep_free(rdf);
	return ret;
}

int da_tls_clientid_get(SSL *ssl, unsigned ext_type, char *out, size_t outlen, char *why,
			size_t whylen)
{
	const unsigned char *data;
	size_t len;

	if (SSL_client_hello_get0_ext(ssl, ext_type, &data, &len) != 1)
		return DJ_ENOENT;
	return da_clientid_decode(data, len, out, outlen, why, whylen);
}

/* The extension bytes live in ex_data of the context so they last as long as it does. */
struct clientid_ext {
	unsigned char data[DA_WIRE_MAX + 1];
	size_t len;
};

static int ctx_ex_idx = -1;
static CRYPTO_ONCE ctx_ex_once = CRYPTO_ONCE_STATIC_INIT;

/* clientid_free - ex_data free hook of the context */
static void clientid_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl,
			  void *argp)
{
	(void)parent;
	(void)ad;
	(void)idx;
	(void)argl;
	(void)argp;
	free(ptr);
}

static void ctx_ex_init(void)
{
	ctx_ex_idx = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, clientid_free);
}

/* clientid_add_cb - put our ClientName into the ClientHello */
static int clientid_add_cb(SSL *s, unsigned int ext_type, unsigned int context,
			   const unsigned char **out, size_t *outlen, X509 *x, size_t chainidx,
			   int *al, void *add_arg)
{
	const struct clientid_ext *e = add_arg;

	(void)s;
	(void)ext_type;
	(void)context;
	(void)x;
	(void)chainidx;
	(void)al;
	*out = e->data;
	*outlen = e->len;
	return 1;
}

/* clientid_parse_cb - a server that echoes the extension: nothing to learn from it */
static int clientid_parse_cb(SSL *s, unsigned int ext_type, unsigned int context,
			     const unsigned char *in, size_t inlen, X509 *x, size_t chainidx,
			     int *al, void *parse_arg)
{
	(void)s;
	(void)ext_type;
	(void)context;
	(void)in;
	(void)inlen;
	(void)x;
	(void)chainidx;
	(void)al;
	(void)parse_arg;
	return 1;
}

int da_tls_clientid_accept(SSL_CTX *ctx, unsigned ext_type)
{
	if (ext_type == 0 || ext_type > 0xffff ||
	    SSL_CTX_add_custom_ext(ctx, ext_type, SSL_EXT_CLIENT_HELLO, NULL, NULL, NULL,
				   clientid_parse_cb, NULL) != 1) {
		ERR_clear_error();
		return DJ_EINVAL;
	}
	return DJ_EOK;
}

int da_tls_clientid_add(SSL_CTX *ctx, unsigned ext_type, const char *name, char *err,
			size_t errlen)
{
	struct clientid_ext *e = NULL;
	int ret = DJ_EINVAL;

	if (ext_type == 0 || ext_type > 0xffff) {
		dj_errbuf(err, errlen, "dane_clientid codepoint %u is not a TLS extension type",
			  ext_type);
		goto out;
	}
	if (!CRYPTO_THREAD_run_once(&ctx_ex_once, ctx_ex_init) || ctx_ex_idx < 0) {
		ret = DJ_ECRYPTO;
		goto out;
	}
	ret = DJ_ENOMEM;
	e = calloc(1, sizeof(*e));
	if (e == NULL)
		goto out;
	ret = DJ_EINVAL;
	if (name == NULL || name[0] == '\0') {
		e->len = 0;
	} else if (da_clientid_encode(name, e->data, sizeof(e->data), &e->len) != DJ_EOK) {
		dj_errbuf(err, errlen, "dane_clientid %s: not a valid DNS name", name);
		goto out;
	}
	if (SSL_CTX_add_custom_ext(ctx, ext_type,
				   SSL_EXT_CLIENT_HELLO | SSL_EXT_TLS1_3_ENCRYPTED_EXTENSIONS,
				   clientid_add_cb, NULL, e, clientid_parse_cb, NULL) != 1) {
		dj_errbuf(err, errlen,
			  "dane_clientid codepoint %u cannot be used (OpenSSL handles it itself, "
			  "or it is registered twice)",
			  ext_type);
		ERR_clear_error();
		goto out;
	}
	if (SSL_CTX_set_ex_data(ctx, ctx_ex_idx, e) != 1) {
		/* the callback holds e: keep it alive rather than dangle (a one-off leak) */
		e = NULL;
		ret = DJ_ECRYPTO;
		goto out;
	}
	e = NULL;
	ret = DJ_EOK;
out:
	free(e);
	return ret;
}

/* add_records - hand the usable records to OpenSSL; returns how many were taken */
static int add_records(SSL *ssl, const struct da_tlsa *rr, size_t n)
{
	size_t i;
	int taken = 0;

	for (i = 0; i < n; i++) {
		if (rr[i].usage != DJ_TLSA_USAGE_DANE_TA && rr[i].usage != DJ_TLSA_USAGE_DANE_EE)
			continue;
		/* > 0 added; 0 unusable (unknown selector/mtype); < 0 malformed or no memory */
		if (SSL_dane_tlsa_add(ssl, rr[i].usage, rr[i].selector, rr[i].mtype, rr[i].data,
				      rr[i].len) > 0)
			taken++;
	}
	ERR_clear_error();
	return taken;
}

int da_tls_client_prepare(SSL *ssl, const char *host, const struct da_tlsa *rr, size_t n)
{
	if (SSL_dane_enable(ssl, host) <= 0) {
		ERR_clear_error();
		return DJ_ECRYPTO;
	}
	SSL_dane_set_flags(ssl, DANE_FLAG_NO_DANE_EE_NAMECHECKS);
	if (add_records(ssl, rr, n) == 0)
		return DJ_EINVAL;
	SSL_set_verify(ssl, SSL_VERIFY_PEER, NULL);
	return DJ_EOK;
}

int da_tls_verify(SSL_CTX *ctx, X509 *leaf, STACK_OF(X509) *chain, const char *name,
		  const struct da_tlsa *rr, size_t n, enum da_peer_role role, struct da_verdict *v)
{
	X509_STORE_CTX *xs = NULL;
	SSL *ssl = NULL;
	uint8_t u, s, m;
	const unsigned char *d;
	size_t dlen;
	int ret = DJ_ENOMEM, rc, depth;

	memset(v, 0, sizeof(*v));
	ssl = SSL_new(ctx);
	xs = X509_STORE_CTX_new();
	if (ssl == NULL || xs == NULL)
		goto out;
	ret = DJ_ECRYPTO;
	if (SSL_dane_enable(ssl, name) <= 0)
		goto out;
	SSL_dane_set_flags(ssl, DANE_FLAG_NO_DANE_EE_NAMECHECKS);
	if (add_records(ssl, rr, n) == 0) {
		dj_errbuf(v->why, sizeof(v->why), "no usable TLSA record (DANE-TA or DANE-EE)");
		ret = DJ_EOK;
		goto out;
	}
	if (X509_STORE_CTX_init(xs, SSL_CTX_get_cert_store(ctx), leaf, chain) != 1)
		goto out;
	X509_STORE_CTX_set0_dane(xs, SSL_get0_dane(ssl));
	/* a client is checked with the "ssl_client" parameters and purpose, a server with
	 * "ssl_server", as libssl does */
	if (X509_STORE_CTX_set_default(xs, role == DA_PEER_SERVER ? "ssl_server" : "ssl_client") !=
		    1 ||
	    X509_VERIFY_PARAM_set1(X509_STORE_CTX_get0_param(xs), SSL_get0_param(ssl)) != 1)
		goto out;
	rc = X509_verify_cert(xs);
	if (rc <= 0) {
		rc = X509_STORE_CTX_get_error(xs);
		dj_errbuf(v->why, sizeof(v->why), "%s",
			  rc == X509_V_ERR_DANE_NO_MATCH ? "no TLSA record matches the certificate"
							 : X509_verify_cert_error_string(rc));
		ret = DJ_EOK;
		goto out;
	}
	depth = SSL_get0_dane_tlsa(ssl, &u, &s, &m, &d, &dlen);
	if (depth < 0) {
		/* X509_verify_cert said yes without a DANE match: never accept that */
		dj_errbuf(v->why, sizeof(v->why), "verified without a DANE match; refused");
		ret = DJ_EOK;
		goto out;
	}
	v->ok = 1;
	v->usage = u;
	v->selector = s;
	v->mtype = m;
	v->depth = depth;
	ret = DJ_EOK;
out:
	if (ret != DJ_EOK)
		ERR_clear_error();
	X509_STORE_CTX_free(xs);
	SSL_free(ssl);
	return ret;
}
