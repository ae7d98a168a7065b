/*
 * ca_tlsa.c - TLSA association data from certificates and keys.
 *
 * The selector-1 data is the DER SubjectPublicKeyInfo exactly as i2d_PUBKEY() encodes it, the
 * same bytes "openssl pkey -pubin -outform DER" writes, so that every tool computes the same
 * hash for the same key (RFC 6698 §2.1.2). Selector 0 hashes the certificate DER as issued.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "ca-tools/ca_tlsa.h"
#include "common/dj_err.h"
#include "common/dj_hex.h"

int ca_tlsa_compute(X509 *cert, EVP_PKEY *key, unsigned usage, unsigned selector, unsigned mtype,
		    struct ca_tlsa *out)
{
	unsigned char *der = NULL, *digest = NULL;
	unsigned int dlen = 0;
	int derlen = -1, rc = DJ_ECRYPTO;
	const char *md;

	memset(out, 0, sizeof(*out));
	if (usage > DJ_TLSA_USAGE_MAX || selector > DJ_TLSA_SEL_SPKI || mtype > DJ_TLSA_MT_SHA512)
		return DJ_ERANGE;
	if (selector == DJ_TLSA_SEL_CERT) {
		if (cert == NULL)
			return DJ_EINVAL;
		derlen = i2d_X509(cert, &der);
	} else {
		if (key == NULL && cert != NULL)
			key = X509_get0_pubkey(cert);
		if (key == NULL)
			return DJ_EINVAL;
		derlen = i2d_PUBKEY(key, &der);
	}
	if (derlen <= 0)
		goto out;
	if (mtype == DJ_TLSA_MT_FULL) {
		out->data = der;
		out->len = (size_t)derlen;
		der = NULL;
	} else {
		md = mtype == DJ_TLSA_MT_SHA256 ? "SHA256" : "SHA512";
		digest = OPENSSL_malloc(EVP_MAX_MD_SIZE);
		if (digest == NULL) {
			rc = DJ_ENOMEM;
			goto out;
		}
		if (EVP_Q_digest(NULL, md, NULL, der, (size_t)derlen, digest, NULL) != 1)
			goto out;
		dlen = mtype == DJ_TLSA_MT_SHA256 ? DJ_TLSA_SHA256_LEN : DJ_TLSA_SHA512_LEN;
		out->data = digest;
		out->len = dlen;
		digest = NULL;
	}
	out->usage = (uint8_t)usage;
	out->selector = (uint8_t)selector;
	out->mtype = (uint8_t)mtype;
	rc = DJ_EOK;
out:
	OPENSSL_free(der);
	OPENSSL_free(digest);
	return rc;
}

void ca_tlsa_clear(struct ca_tlsa *t)
{
	if (t == NULL)
		return;
	OPENSSL_free(t->data);
	t->data = NULL;
	t->len = 0;
}

char *ca_tlsa_rdata(const struct ca_tlsa *t)
{
	char *s;

	s = malloc(2 * t->len + 16);
	if (s == NULL)
		return NULL;
	snprintf(s, 16, "%u %u %u ", t->usage, t->selector, t->mtype);
	dj_hex_format(t->data, t->len, s + strlen(s));
	return s;
}

char *ca_tlsa_line(const char *owner, uint32_t ttl, const struct ca_tlsa *t)
{
	char *rdata, *s;
	size_t n;

	rdata = ca_tlsa_rdata(t);
	if (rdata == NULL)
		return NULL;
	n = strlen(owner) + strlen(rdata) + 32;
	s = malloc(n);
	if (s != NULL)
		snprintf(s, n, "%s %u IN TLSA %s", owner, (unsigned)ttl, rdata);
	free(rdata);
	return s;
}
