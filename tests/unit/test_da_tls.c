/*
 * test_da_tls.c - DANE verification of a peer's chain (da_tls_verify), the dane_clientid
 * encoding, and name normalisation. Certificates are made in memory for each case; the
 * verifier's matrix (usage x selector x matching type, over throwaway chains of depth 0, 1 and
 * 2, each also with a wrong name, a missing TA, a wrong digest and truncated data) is
 * generated, as Postfix's tls_dane.sh does.
 */
#include <setjmp.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "backend-auth/da_tls.h"
#include "common/dj_compiler.h"
#include "common/dj_err.h"
#include "dj_test.h"

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

/* ---- the generated matrix: usage x selector x matching type over throwaway chains ---------
 * As Postfix's tls_dane.sh does (STYLE.md rule 10): chains made now (a self-signed leaf, a
 * private root and a leaf, a root, an intermediate and a leaf), then one record per usage
 * {0,1,2,3} x selector {0,1} x matching type {0,1,2} in each variant below, each with the
 * verdict DESIGN.md rule 1 and RFC 7671 require. */

#define TLSA_PKIX_TA 0	/* RFC 6698 §2.1.1 */
#define TLSA_PKIX_EE 1
#define TLSA_DANE_TA 2
#define TLSA_DANE_EE 3
#define N_USAGES 4
#define N_SELECTORS 2	/* RFC 6698 §2.1.2: full certificate, SubjectPublicKeyInfo */
#define N_MTYPES 3	/* RFC 6698 §2.1.3: exact, SHA2-256, SHA2-512 */
#define CHAIN_MAX 3
#define REF_NAME "_ns-client.ns1.example.net"
#define WRONG_NAME "_ns-client.ns2.example.net"

/* What is done to the record or the chain before the check. */
enum variant {
	V_PLAIN,	/* the record as published, the chain as sent */
	V_WRONG_NAME,	/* another reference name than the leaf's SAN */
	V_MISSING_TA,	/* the chain sent without the trust anchor */
	V_WRONG_DIGEST,	/* one byte of the association data changed */
	V_TRUNCATED,	/* the association data one byte short */
	V_COUNT
};

/* One chain: certs[0] the leaf, then its issuers as the peer sends them; ta the index of the
 * certificate a DANE-TA record names. */
struct chain {
	const char *what;
	X509 *certs[CHAIN_MAX];
	size_t n;
	size_t ta;
};

/* want_plain - V_PLAIN's verdict per chain and usage (rows: the chains of make_chains). PKIX
 * usages authenticate nobody (DESIGN.md rule 1); DANE-EE matches the leaf whatever its chain
 * (RFC 7671 §5.1); DANE-TA needs a CA above the leaf (§5.2): a record naming the self-signed
 * leaf itself is no trust anchor ("TA at depth 0"), except as a bare key, see want(). */
static const bool want_plain[][N_USAGES] = {
	/*   PKIX-TA PKIX-EE DANE-TA DANE-EE */
	{ false, false, false, true },	/* self-signed leaf: the TA at depth 0 */
	{ false, false, true, true },	/* root + leaf: the TA at depth 1 */
	{ false, false, true, true },	/* root + intermediate + leaf: the TA at depth 2 */
	{ false, false, true, true },	/* the same, the intermediate as TA: depth 1 */
};

/* want - the verdict of one case: V_PLAIN's, unless the variant breaks what the usage checks:
 * a digest or its length always; the name and the chain under DANE-TA only. A DANE-TA record
 * of matching type Full(0) carries the trust anchor itself, so the peer may leave it out of
 * its chain (RFC 7671 §5.2.2), and a full SubjectPublicKeyInfo (2 1 0) is a bare TA key
 * (§5.2.3) that also anchors a leaf it signed itself. */
static bool want(size_t chain, int usage, int selector, int mtype, enum variant var)
{
	bool ta_key = usage == TLSA_DANE_TA && selector == 1 && mtype == 0;

	if (!want_plain[chain][usage] && !ta_key)
		return false;
	switch (var) {
	case V_WRONG_DIGEST:
	case V_TRUNCATED:
		return false;
	case V_WRONG_NAME:
		return usage != TLSA_DANE_TA;
	case V_MISSING_TA:
		return usage != TLSA_DANE_TA || mtype == 0;
	default:
		return true;
	}
}

/* want_depth - the depth at which a match is reported: the leaf's for DANE-EE, the TA's for
 * DANE-TA; a bare TA key (2 1 0) that is no certificate of the chain sent anchors at the
 * certificate it signed */
static int want_depth(const struct chain *c, int usage, int selector, int mtype, enum variant var)
{
	if (usage == TLSA_DANE_EE)
		return 0;
	if (selector == 1 && mtype == 0 && (var == V_MISSING_TA || c->ta == 0))
		return c->ta == 0 ? 0 : (int)c->ta - 1;
	return (int)c->ta;
}

static const char *const variant_str[V_COUNT] = {
	"plain", "wrong name", "missing TA", "wrong digest", "truncated rdata",
};

/* make_chains - the throwaway chains (4, the rows of want_plain); keys in \p keys (freed by
 * the caller, as are the certificates) */
static size_t make_chains(struct chain *c, EVP_PKEY **keys)
{
	X509 *root1, *root2, *int2;
	size_t i;

	for (i = 0; i < 5; i++)
		keys[i] = ec_key();
	memset(c, 0, 4 * sizeof(*c));
	c[0].what = "self-signed leaf";
	c[0].certs[0] = cert(keys[0], "ns1", "DNS:" REF_NAME, NULL, NULL, 0, -3600, 86400);
	c[0].n = 1;
	root1 = cert(keys[1], "root 1", NULL, NULL, NULL, 1, -3600, 86400);
	c[1].what = "root + leaf";
	c[1].certs[0] = cert(keys[0], "ns1", "DNS:" REF_NAME, root1, keys[1], 0, -3600, 86400);
	c[1].certs[1] = root1;
	c[1].n = 2;
	c[1].ta = 1;
	root2 = cert(keys[2], "root 2", NULL, NULL, NULL, 1, -3600, 86400);
	int2 = cert(keys[3], "intermediate 2", NULL, root2, keys[2], 1, -3600, 86400);
	c[2].what = "root + intermediate + leaf";
	c[2].certs[0] = cert(keys[4], "ns1", "DNS:" REF_NAME, int2, keys[3], 0, -3600, 86400);
	c[2].certs[1] = int2;
	c[2].certs[2] = root2;
	c[2].n = 3;
	c[2].ta = 2;
	c[3] = c[2];
	c[3].what = "root + intermediate + leaf, intermediate as TA";
	c[3].ta = 1;
	for (i = 0; i < 3; i++)
		X509_up_ref(c[3].certs[i]);
	return 4;
}

/* matrix_case - one check: \p c's leaf against one record made for (usage, selector, mtype)
 * and changed as \p var says; the verdict (ok) */
static int matrix_case(SSL_CTX *ctx, const struct chain *c, int usage, int selector, int mtype,
		       enum variant var, struct da_verdict *v)
{
	unsigned char buf[4096];
	STACK_OF(X509) *sent = sk_X509_new_null();
	X509 *named = usage == TLSA_DANE_TA || usage == TLSA_PKIX_TA ? c->certs[c->ta] : c->certs[0];
	struct da_tlsa rr;
	size_t i;

	assert_non_null(sent);
	for (i = 1; i < c->n; i++)
		if (var != V_MISSING_TA || i != c->ta)
			assert_true(sk_X509_push(sent, c->certs[i]) > 0);
	rr.usage = (uint8_t)usage;
	rr.selector = (uint8_t)selector;
	rr.mtype = (uint8_t)mtype;
	rr.len = rdata(named, selector, mtype, buf);
	rr.data = buf;
	if (var == V_WRONG_DIGEST)
		buf[rr.len / 2] ^= 0x01;
	if (var == V_TRUNCATED)
		rr.len--;
	assert_int_equal(da_tls_verify(ctx, c->certs[0], sent, var == V_WRONG_NAME ? WRONG_NAME
										   : REF_NAME,
				       &rr, 1, DA_PEER_CLIENT, v),
			 DJ_EOK);
	sk_X509_free(sent);
	return v->ok;
}

static void test_matrix(void **state)
{
	struct pki *p = *state;
	struct chain c[4];
	EVP_PKEY *keys[5];
	struct da_verdict v;
	size_t nc = make_chains(c, keys), i, cases = 0, bad = 0;
	int u, s, m, var;

	assert_int_equal(nc, DJ_ARRAY_LEN(want_plain));
	for (i = 0; i < nc; i++)
		for (u = 0; u < N_USAGES; u++)
			for (s = 0; s < N_SELECTORS; s++)
				for (m = 0; m < N_MTYPES; m++)
					for (var = 0; var < V_COUNT; var++) {
						bool w = want(i, u, s, m, (enum variant)var);
						int got = matrix_case(p->ctx, &c[i], u, s, m,
								      (enum variant)var, &v);

						cases++;
						if (got != w) {
							print_error("%s, %d %d %d, %s: %s, "
								    "expected %s (%s)\n",
								    c[i].what, u, s, m,
								    variant_str[var],
								    got ? "pass" : "fail",
								    w ? "pass" : "fail", v.why);
							bad++;
						} else if (got) {
							/* the record that matched, at its depth */
							assert_int_equal(v.usage, u);
							assert_int_equal(v.selector, s);
							assert_int_equal(v.mtype, m);
							assert_int_equal(v.depth,
									 want_depth(&c[i], u, s, m,
										    (enum variant)var));
						} else if (u < TLSA_DANE_TA) {
							assert_non_null(strstr(v.why, "usable"));
						}
					}
	assert_int_equal(cases, nc * N_USAGES * N_SELECTORS * N_MTYPES * V_COUNT);
	assert_int_equal(bad, 0);
	for (i = 0; i < nc; i++)
		for (s = 0; s < (int)c[i].n; s++)
			X509_free(c[i].certs[s]);
	for (i = 0; i < DJ_ARRAY_LEN(keys); i++)
		EVP_PKEY_free(keys[i]);
}

DJ_TEST_MAIN_GROUP(setup, teardown,
	cmocka_unit_test(test_ee_matches),
	cmocka_unit_test(test_ee_mismatch),
	cmocka_unit_test(test_ee_expired_accepted),
	cmocka_unit_test(test_ta),
	cmocka_unit_test(test_pkix_usages_ignored),
	cmocka_unit_test(test_clientid_roundtrip),
	cmocka_unit_test(test_clientid_malformed),
	cmocka_unit_test(test_name_normalize),
	cmocka_unit_test(test_matrix))
