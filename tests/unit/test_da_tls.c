/*
 * test_da_tls.c - DANE verification of a peer's chain (da_tls_verify), the dane_clientid
 * encoding, and name normalisation. Certificates are made in memory for each case.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "backend-auth/da_tls.h"
#include "common/dj_err.h"

struct pki {
	EVP_PKEY *ca_key, *leaf_key, *other_key;
	X509 *ca, *leaf, *expired_leaf, *other_ca_leaf;
	SSL_CTX *ctx;
};

static EVP_PKEY *ec_key(void)
{
	EVP_PKEY *k = EVP_EC_gen("P-256");

	assert_non_null(k);
	return k;
}

static void add_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX v3;
	X509_EXTENSION *e;

	X509V3_set_ctx(&v3, issuer, x, NULL, NULL, 0);
	e = X509V3_EXT_conf_nid(NULL, &v3, nid, value);
	assert_non_null(e);
	assert_int_equal(X509_add_ext(x, e, -1), 1);
	X509_EXTENSION_free(e);
}

/* cert - a certificate for \p key named \p cn, signed by \p ikey (issuer \p issuer or self) */
static X509 *cert(EVP_PKEY *key, const char *cn, const char *san, X509 *issuer, EVP_PKEY *ikey,
		  int ca, long not_before, long not_after)
{
	X509 *x = X509_new();
	static long serial = 1;

	assert_non_null(x);
	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), serial++);
	X509_gmtime_adj(X509_getm_notBefore(x), not_before);
	X509_gmtime_adj(X509_getm_notAfter(x), not_after);
	X509_set_pubkey(x, key);
	X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
				   (const unsigned char *)cn, -1, -1, 0);
	X509_set_issuer_name(x, X509_get_subject_name(issuer != NULL ? issuer : x));
	if (ca) {
		add_ext(x, issuer != NULL ? issuer : x, NID_basic_constraints, "critical,CA:TRUE");
		add_ext(x, issuer != NULL ? issuer : x, NID_key_usage, "critical,keyCertSign");
		add_ext(x, issuer != NULL ? issuer : x, NID_subject_key_identifier, "hash");
	} else {
		add_ext(x, issuer, NID_basic_constraints, "critical,CA:FALSE");
		add_ext(x, issuer, NID_ext_key_usage, "clientAuth,serverAuth");
		if (san != NULL)
			add_ext(x, issuer, NID_subject_alt_name, san);
	}
	assert_true(X509_sign(x, ikey != NULL ? ikey : key, EVP_sha256()) > 0);
	return x;
}

static int setup(void **state)
{
	struct pki *p = calloc(1, sizeof(*p));
	EVP_PKEY *ok;
	X509 *oca;

	p->ca_key = ec_key();
	p->leaf_key = ec_key();
	p->other_key = ec_key();
	p->ca = cert(p->ca_key, "root", NULL, NULL, NULL, 1, -3600, 86400);
	p->leaf = cert(p->leaf_key, "ns1", "DNS:_ns-client.ns1.example.net", p->ca, p->ca_key, 0,
		       -3600, 86400);
	p->expired_leaf = cert(p->leaf_key, "ns1", "DNS:_ns-client.ns1.example.net", NULL, NULL, 0,
			       -86400 * 10, -86400);
	ok = ec_key();
	oca = cert(ok, "other root", NULL, NULL, NULL, 1, -3600, 86400);
	p->other_ca_leaf = cert(p->other_key, "ns1", "DNS:_ns-client.ns1.example.net", oca, ok, 0,
				-3600, 86400);
	X509_free(oca);
	EVP_PKEY_free(ok);
	p->ctx = SSL_CTX_new(TLS_server_method());
	assert_non_null(p->ctx);
	assert_int_equal(da_tls_ctx_enable(p->ctx), DJ_EOK);
	*state = p;
	return 0;
}

static int teardown(void **state)
{
	struct pki *p = *state;

	X509_free(p->ca);
	X509_free(p->leaf);
	X509_free(p->expired_leaf);
	X509_free(p->other_ca_leaf);
	EVP_PKEY_free(p->ca_key);
	EVP_PKEY_free(p->leaf_key);
	EVP_PKEY_free(p->other_key);
	SSL_CTX_free(p->ctx);
	free(p);
	return 0;
}

/* rdata - the TLSA association data of \p x for selector/mtype (DER, digest as asked) */
static size_t rdata(X509 *x, int selector, int mtype, unsigned char *out)
{
	unsigned char *der = NULL;
	unsigned int mdlen = 0;
	int len;

	len = selector == 0 ? i2d_X509(x, &der) : i2d_PUBKEY(X509_get0_pubkey(x), &der);
	assert_true(len > 0);
	if (mtype == 0) {
		memcpy(out, der, (size_t)len);
		mdlen = (unsigned int)len;
	} else {
		assert_int_equal(EVP_Digest(der, (size_t)len, out, &mdlen,
					    mtype == 1 ? EVP_sha256() : EVP_sha512(), NULL),
				 1);
	}
	OPENSSL_free(der);
	return mdlen;
}

/* check - verify \p leaf (+ \p chain_cert if not NULL) against one record */
static int check(struct pki *p, X509 *leaf, X509 *chain_cert, const char *name, int usage,
		 int selector, int mtype, X509 *rec_cert, struct da_verdict *v)
{
	unsigned char buf[4096];
	struct da_tlsa rr;
	STACK_OF(X509) *chain = sk_X509_new_null();

	if (chain_cert != NULL)
		sk_X509_push(chain, chain_cert);
	rr.usage = (uint8_t)usage;
	rr.selector = (uint8_t)selector;
	rr.mtype = (uint8_t)mtype;
	rr.len = rdata(rec_cert, selector, mtype, buf);
	rr.data = buf;
	assert_int_equal(da_tls_verify(p->ctx, leaf, chain, name, &rr, 1, DA_PEER_CLIENT, v),
			 DJ_EOK);
	sk_X509_free(chain);
	return v->ok;
}

static void test_ee_matches(void **state)
{
	struct pki *p = *state;
	struct da_verdict v;
	const char *n = "_ns-client.ns1.example.net";

	assert_true(check(p, p->leaf, NULL, n, 3, 1, 1, p->leaf, &v));
	assert_int_equal(v.usage, 3);
	assert_int_equal(v.depth, 0);
	assert_true(check(p, p->leaf, NULL, n, 3, 0, 0, p->leaf, &v));
	assert_true(check(p, p->leaf, NULL, n, 3, 1, 2, p->leaf, &v));
	/* DANE-EE ignores names: another reference name still matches */
	assert_true(check(p, p->leaf, NULL, "_ns-client.elsewhere.example", 3, 1, 1, p->leaf, &v));
}

static void test_ee_mismatch(void **state)
{
	struct pki *p = *state;
	struct da_verdict v;

	/* the record is for another key: a client claiming a name it holds no key for */
	assert_false(check(p, p->other_ca_leaf, NULL, "_ns-client.ns1.example.net", 3, 1, 1,
			   p->leaf, &v));
	assert_non_null(strstr(v.why, "TLSA"));
}

static void test_ee_expired_accepted(void **state)
{
	struct pki *p = *state;
	struct da_verdict v;

	assert_true(check(p, p->expired_leaf, NULL, "x.example", 3, 1, 1, p->expired_leaf, &v));
}

static void test_ta(void **state)
{
	struct pki *p = *state;
	struct da_verdict v;
	const char *n = "_ns-client.ns1.example.net";

	/* 2 0 1 with the TA in the chain sent */
	assert_true(check(p, p->leaf, p->ca, n, 2, 0, 1, p->ca, &v));
	assert_int_equal(v.usage, 2);
	assert_int_equal(v.depth, 1);
	/* the TA missing from the chain: rejected */
	assert_false(check(p, p->leaf, NULL, n, 2, 0, 1, p->ca, &v));
	/* DANE-TA checks the name: the leaf does not carry this one */
	assert_false(check(p, p->leaf, p->ca, "_ns-client.ns2.example.net", 2, 0, 1, p->ca, &v));
	/* a leaf from another CA with our TA in its chain: no path, rejected */
	assert_false(check(p, p->other_ca_leaf, p->ca, n, 2, 0, 1, p->ca, &v));
	/* a leaf record given as TA: the leaf is no CA */
	assert_false(check(p, p->leaf, p->ca, n, 2, 0, 1, p->leaf, &v));
}

static void test_pkix_usages_ignored(void **state)
{
	struct pki *p = *state;
	struct da_verdict v;

	/* usage 1 (PKIX-EE) would match the key, but PKIX usages are never used */
	assert_false(check(p, p->leaf, NULL, "x.example", 1, 1, 1, p->leaf, &v));
	assert_non_null(strstr(v.why, "usable"));
	assert_false(check(p, p->leaf, p->ca, "_ns-client.ns1.example.net", 0, 0, 1, p->ca, &v));
}

static void test_clientid_roundtrip(void **state)
{
	unsigned char buf[300];
	char out[DA_NAME_MAX], why[DA_WHY_MAX];
	size_t len;

	(void)state;
	assert_int_equal(da_clientid_encode("_NS-client.Ns1.Example.NET.", buf, sizeof(buf), &len),
			 DJ_EOK);
	assert_int_equal(buf[0], len - 1);
	assert_int_equal(buf[1], 10); /* "_ns-client" */
	assert_int_equal(da_clientid_decode(buf, len, out, sizeof(out), why, sizeof(why)), DJ_EOK);
	assert_string_equal(out, "_ns-client.ns1.example.net");
	/* empty extension: identity from the certificate */
	assert_int_equal(da_clientid_decode(buf, 0, out, sizeof(out), why, sizeof(why)), DJ_ENOENT);
}

static void test_clientid_malformed(void **state)
{
	char out[DA_NAME_MAX], why[DA_WHY_MAX];
	const unsigned char badlen[] = {6, 3, 'a', 'b', 'c', 0};
	const unsigned char ptr[] = {4, 1, 'a', 0xc0, 0x00};
	const unsigned char noroot[] = {4, 3, 'a', 'b', 'c'};
	const unsigned char root[] = {1, 0};
	const unsigned char space[] = {5, 3, 'a', ' ', 'c', 0};
	const unsigned char overrun[] = {4, 9, 'a', 'b', 0};

	(void)state;
	assert_int_equal(da_clientid_decode(badlen, sizeof(badlen), out, sizeof(out), why,
					    sizeof(why)),
			 DJ_EMALFORMED);
	assert_non_null(strstr(why, "length"));
	assert_int_equal(da_clientid_decode(ptr, sizeof(ptr), out, sizeof(out), why, sizeof(why)),
			 DJ_EMALFORMED);
	assert_non_null(strstr(why, "compressed"));
	assert_int_equal(da_clientid_decode(noroot, sizeof(noroot), out, sizeof(out), why,
					    sizeof(why)),
			 DJ_EMALFORMED);
	assert_int_equal(da_clientid_decode(root, sizeof(root), out, sizeof(out), why, sizeof(why)),
			 DJ_EMALFORMED);
	assert_int_equal(da_clientid_decode(space, sizeof(space), out, sizeof(out), why,
					    sizeof(why)),
			 DJ_EMALFORMED);
	assert_int_equal(da_clientid_decode(overrun, sizeof(overrun), out, sizeof(out), why,
					    sizeof(why)),
			 DJ_EMALFORMED);
}

static void test_name_normalize(void **state)
{
	char out[DA_NAME_MAX], why[DA_WHY_MAX], long_name[300];

	(void)state;
	assert_int_equal(da_name_normalize("A.B_c.", out, sizeof(out), why, sizeof(why)), DJ_EOK);
	assert_string_equal(out, "a.b_c");
	assert_int_equal(da_name_normalize("a..b", out, sizeof(out), why, sizeof(why)),
			 DJ_EMALFORMED);
	assert_int_equal(da_name_normalize("a b", out, sizeof(out), why, sizeof(why)),
			 DJ_EMALFORMED);
	memset(long_name, 'a', 64);
	long_name[64] = '\0';
	assert_int_equal(da_name_normalize(long_name, out, sizeof(out), why, sizeof(why)),
			 DJ_EMALFORMED);
	assert_non_null(strstr(why, "label"));
	for (int i = 0; i < 127; i++) {
		long_name[2 * i] = 'a';
		long_name[2 * i + 1] = '.';
	}
	long_name[254] = 'a';
	long_name[255] = '\0';
	assert_int_equal(da_name_normalize(long_name, out, sizeof(out), why, sizeof(why)),
			 DJ_EMALFORMED);
	assert_non_null(strstr(why, "253"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ee_matches),
		cmocka_unit_test(test_ee_mismatch),
		cmocka_unit_test(test_ee_expired_accepted),
		cmocka_unit_test(test_ta),
		cmocka_unit_test(test_pkix_usages_ignored),
		cmocka_unit_test(test_clientid_roundtrip),
		cmocka_unit_test(test_clientid_malformed),
		cmocka_unit_test(test_name_normalize),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
