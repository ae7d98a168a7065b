/*
 * ca_cert.c - build, sign, read, write and describe certificates.
 *
 * Security: the extensions come from the role alone (ca_cert.h has the table). A CSR brings its
 * public key and nothing else, so a requester cannot ask for CA:TRUE or for names or usages it
 * was not given. An issuer is checked before use: its key must match its certificate, it must be
 * a CA, and its pathLenConstraint must leave room for an intermediate (RFC 5280 §4.2.1.9).
 */
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include "ca-tools/ca_cert.h"
#include "ca-tools/ca_key.h"
#include "ca-tools/ca_name.h"
#include "ca-tools/ca_tlsa.h"
#include "common/dj_err.h"
#include "common/dj_hex.h"

#define CA_SERIAL_LEN 16	/* 128 random bits, top bit cleared: a positive INTEGER */

static const char *const role_names[] = {
	[CA_ROLE_ROOT] = "root", [CA_ROLE_INTERMEDIATE] = "intermediate", [CA_ROLE_JS] = "js",
	[CA_ROLE_NS] = "ns", [CA_ROLE_AS] = "as", [CA_ROLE_DEVICE] = "device",
};

int ca_role_parse(const char *text, enum ca_role *out)
{
	enum ca_role r;

	for (r = CA_ROLE_JS; r <= CA_ROLE_DEVICE; r++)
		if (strcmp(text, role_names[r]) == 0) {
			*out = r;
			return DJ_EOK;
		}
	return DJ_EINVAL;
}

const char *ca_role_name(enum ca_role role)
{
	return role <= CA_ROLE_DEVICE ? role_names[role] : "?";
}

/* role_is_ca - roots and intermediates */
static bool role_is_ca(enum ca_role role)
{
	return role == CA_ROLE_ROOT || role == CA_ROLE_INTERMEDIATE;
}

int ca_cert_check_issuer(X509 *cert, EVP_PKEY *key, enum ca_role role, int pathlen, char *err,
			 size_t errlen)
{
	long issuer_pathlen;

	if (X509_check_private_key(cert, key) != 1) {
		ERR_clear_error();
		dj_errbuf(err, errlen, "the CA key does not belong to the CA certificate");
		return DJ_EINVAL;
	}
	if (!ca_key_usable(key, err, errlen))
		return DJ_EINVAL;
	if (X509_check_ca(cert) != 1) {
		dj_errbuf(err, errlen, "the CA certificate is not a CA (basicConstraints CA:TRUE "
			  "with keyCertSign)");
		return DJ_EINVAL;
	}
	if (role == CA_ROLE_INTERMEDIATE) {
		issuer_pathlen = X509_get_pathlen(cert);
		if (issuer_pathlen == 0) {
			dj_errbuf(err, errlen, "the issuing CA has pathlen 0: it may not issue an "
				  "intermediate");
			return DJ_EINVAL;
		}
		if (issuer_pathlen > 0 && (pathlen < 0 || pathlen >= issuer_pathlen)) {
			dj_errbuf(err, errlen, "--pathlen must be below the issuer's pathlen %ld",
				  issuer_pathlen);
			return DJ_EINVAL;
		}
	}
	return DJ_EOK;
}

/* add_bc - basicConstraints, critical (RFC 5280 §4.2.1.9) */
static int add_bc(X509 *x, bool ca, int pathlen)
{
	BASIC_CONSTRAINTS *bc = BASIC_CONSTRAINTS_new();
	int ok = 0;

	if (bc == NULL)
		return DJ_ENOMEM;
	bc->ca = ca ? 0xff : 0;
	if (ca && pathlen >= 0) {
		bc->pathlen = ASN1_INTEGER_new();
		if (bc->pathlen == NULL || ASN1_INTEGER_set(bc->pathlen, pathlen) != 1)
			goto out;
	}
	ok = X509_add1_ext_i2d(x, NID_basic_constraints, bc, 1, X509V3_ADD_DEFAULT);
out:
	BASIC_CONSTRAINTS_free(bc);
	return ok == 1 ? DJ_EOK : DJ_ECRYPTO;
}

/* add_ku - keyUsage, critical (RFC 5280 §4.2.1.3); bits are the named bit numbers */
static int add_ku(X509 *x, const int *bits, size_t n)
{
	ASN1_BIT_STRING *ku = ASN1_BIT_STRING_new();
	int ok = 1;
	size_t i;

	if (ku == NULL)
		return DJ_ENOMEM;
	for (i = 0; i < n && ok == 1; i++)
		ok = ASN1_BIT_STRING_set_bit(ku, bits[i], 1);
	if (ok == 1)
		ok = X509_add1_ext_i2d(x, NID_key_usage, ku, 1, X509V3_ADD_DEFAULT);
	ASN1_BIT_STRING_free(ku);
	return ok == 1 ? DJ_EOK : DJ_ECRYPTO;
}

/* add_eku - extendedKeyUsage (RFC 5280 §4.2.1.12), in the order given */
static int add_eku(X509 *x, const int *nids, size_t n)
{
	EXTENDED_KEY_USAGE *eku = sk_ASN1_OBJECT_new_null();
	int ok = 1;
	size_t i;

	if (eku == NULL)
		return DJ_ENOMEM;
	for (i = 0; i < n && ok > 0; i++)
		ok = sk_ASN1_OBJECT_push(eku, OBJ_nid2obj(nids[i]));
	if (ok > 0)
		ok = X509_add1_ext_i2d(x, NID_ext_key_usage, eku, 0, X509V3_ADD_DEFAULT);
	sk_ASN1_OBJECT_free(eku);	/* the objects are static */
	return ok == 1 ? DJ_EOK : DJ_ECRYPTO;
}

/* add_key_ids - subjectKeyIdentifier (SHA-1 of the key, RFC 5280 §4.2.1.2 method 1) and
 *               authorityKeyIdentifier = the issuer's SKI (or our own when self-signed) */
static int add_key_ids(X509 *x, X509 *issuer)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int len = 0;
	ASN1_OCTET_STRING *ski = NULL;
	AUTHORITY_KEYID *akid = NULL;
	const ASN1_OCTET_STRING *iski;
	int rc = DJ_ECRYPTO;

	if (X509_pubkey_digest(x, EVP_sha1(), md, &len) != 1)
		return DJ_ECRYPTO;
	ski = ASN1_OCTET_STRING_new();
	akid = AUTHORITY_KEYID_new();
	if (ski == NULL || akid == NULL || ASN1_OCTET_STRING_set(ski, md, (int)len) != 1)
		goto out;
	if (X509_add1_ext_i2d(x, NID_subject_key_identifier, ski, 0, X509V3_ADD_DEFAULT) != 1)
		goto out;
	iski = issuer != NULL ? X509_get0_subject_key_id(issuer) : ski;
	if (iski == NULL) {
		if (X509_pubkey_digest(issuer, EVP_sha1(), md, &len) != 1 ||
		    (akid->keyid = ASN1_OCTET_STRING_new()) == NULL ||
		    ASN1_OCTET_STRING_set(akid->keyid, md, (int)len) != 1)
			goto out;
	} else if ((akid->keyid = ASN1_OCTET_STRING_dup(iski)) == NULL) {
		goto out;
	}
	if (X509_add1_ext_i2d(x, NID_authority_key_identifier, akid, 0, X509V3_ADD_DEFAULT) != 1)
		goto out;
	rc = DJ_EOK;
out:
	ASN1_OCTET_STRING_free(ski);
	AUTHORITY_KEYID_free(akid);
	return rc;
}

/* add_san - the SAN extension from checked names */
static int add_san(X509 *x, const char *const *names, size_t n, char *err, size_t errlen)
{
	GENERAL_NAMES *gens = NULL;
	GENERAL_NAME *gen;
	ASN1_IA5STRING *ia5;
	size_t i, len;
	int rc = DJ_ECRYPTO;

	gens = sk_GENERAL_NAME_new_null();
	if (gens == NULL)
		return DJ_ENOMEM;
	for (i = 0; i < n; i++) {
		/* "*.NAME": a wildcard for one label (JoinEUI names, ca_joineui.h) */
		rc = ca_name_check(strncmp(names[i], "*.", 2) == 0 ? names[i] + 2 : names[i], err,
				   errlen);
		if (rc != DJ_EOK)
			goto out;
		rc = DJ_ECRYPTO;
		len = strlen(names[i]);
		if (names[i][len - 1] == '.')
			len--;	/* SAN dNSNames have no final dot (RFC 5280 §4.2.1.6) */
		gen = GENERAL_NAME_new();
		ia5 = ASN1_IA5STRING_new();
		if (gen == NULL || ia5 == NULL || ASN1_STRING_set(ia5, names[i], (int)len) != 1) {
			GENERAL_NAME_free(gen);
			ASN1_IA5STRING_free(ia5);
			goto out;
		}
		GENERAL_NAME_set0_value(gen, GEN_DNS, ia5);
		if (sk_GENERAL_NAME_push(gens, gen) <= 0) {
			GENERAL_NAME_free(gen);
			goto out;
		}
	}
	if (X509_add1_ext_i2d(x, NID_subject_alt_name, gens, 0, X509V3_ADD_DEFAULT) != 1)
		goto out;
	rc = DJ_EOK;
out:
	GENERAL_NAMES_free(gens);
	return rc;
}

/* set_raw_spki - the SubjectPublicKeyInfo of an EC (named curve, RFC 5480 §2) or Ed25519
 *                (RFC 8410 §4) key from its encoded public key; other keys by X509_set_pubkey */
static int set_raw_spki(X509 *x, EVP_PKEY *key)
{
	unsigned char *pub = NULL;
	char group[64];
	size_t len = 0;
	int nid_alg, nid_curve = NID_undef, rc = DJ_ECRYPTO;

	if (EVP_PKEY_is_a(key, "EC")) {
		nid_alg = NID_X9_62_id_ecPublicKey;
		if (EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, group,
						   sizeof(group), NULL) != 1)
			return DJ_ECRYPTO;
		nid_curve = OBJ_sn2nid(group);
		if (nid_curve == NID_undef)
			nid_curve = EC_curve_nist2nid(group);
		if (nid_curve == NID_undef)
			return DJ_ECRYPTO;
	} else if (EVP_PKEY_is_a(key, "ED25519")) {
		nid_alg = NID_ED25519;
	} else {
		return X509_set_pubkey(x, key) == 1 ? DJ_EOK : DJ_ECRYPTO;
	}
	if (EVP_PKEY_get_octet_string_param(key, OSSL_PKEY_PARAM_PUB_KEY, NULL, 0, &len) != 1 ||
	    len == 0 || len > INT_MAX || (pub = OPENSSL_malloc(len)) == NULL ||
	    EVP_PKEY_get_octet_string_param(key, OSSL_PKEY_PARAM_PUB_KEY, pub, len, &len) != 1)
		goto out;
	if (X509_PUBKEY_set0_param(X509_get_X509_PUBKEY(x), OBJ_nid2obj(nid_alg),
				   nid_curve != NID_undef ? V_ASN1_OBJECT : V_ASN1_UNDEF,
				   nid_curve != NID_undef ? OBJ_nid2obj(nid_curve) : NULL, pub,
				   (int)len) != 1)
		goto out;
	pub = NULL;		/* taken by the certificate */
	rc = DJ_EOK;
out:
	OPENSSL_free(pub);
	return rc;
}

/* sign_md - the digest for a signing key: none for Ed25519, SHA-384 for P-384, else SHA-256 */
static const EVP_MD *sign_md(EVP_PKEY *key)
{
	char desc[64];

	if (EVP_PKEY_is_a(key, "ED25519"))
		return NULL;
	if (strcmp(ca_key_describe(key, desc, sizeof(desc)), "EC P-384") == 0)
		return EVP_sha384();
	return EVP_sha256();
}

int ca_cert_build(const struct ca_cert_props *p, X509 **out, char *err, size_t errlen)
{
	X509 *x = NULL;
	X509_NAME *name = NULL;
	ASN1_INTEGER *serial = NULL;
	BIGNUM *bn = NULL;
	unsigned char rnd[CA_SERIAL_LEN];
	char subject[CA_NAME_BUF];
	const char *cn;
	EVP_PKEY *signer;
	const EVP_MD *md;
	int rc = DJ_EINVAL;
	size_t len;

	*out = NULL;
	if (p->subject_key == NULL || p->days <= 0 || p->days > CA_DAYS_MAX ||
	    (!role_is_ca(p->role) && p->nnames == 0) ||
	    (role_is_ca(p->role) && p->subject_cn == NULL)) {
		dj_errbuf(err, errlen, "incomplete certificate request (key, days, names)");
		return DJ_EINVAL;
	}
	signer = p->issuer_cert != NULL ? p->issuer_key : (p->issuer_key != NULL ? p->issuer_key :
							  p->subject_key);
	if (!ca_key_usable(p->subject_key, err, errlen) || !ca_key_usable(signer, err, errlen))
		return DJ_EINVAL;
	cn = p->subject_cn;
	if (cn == NULL) {
		len = strlen(p->names[0]);
		if (len > CA_NAME_MAX + 1)
			len = CA_NAME_MAX + 1;
		memcpy(subject, p->names[0], len);
		subject[len] = '\0';
		if (len > 0 && subject[len - 1] == '.')
			subject[len - 1] = '\0';
		cn = subject;
	}
	if (strlen(cn) == 0 || strlen(cn) > 64) {	/* RFC 5280 ub-common-name */
		dj_errbuf(err, errlen, "the subject CN '%.80s' is empty or longer than 64 characters "
			  "(give a shorter --subject)", cn);
		return DJ_EMALFORMED;
	}
	rc = DJ_ECRYPTO;
	x = X509_new();
	name = X509_NAME_new();
	if (x == NULL || name == NULL)
		goto out;
	if (RAND_bytes(rnd, sizeof(rnd)) != 1)
		goto out;
	rnd[0] &= 0x7f;
	rnd[0] |= 0x01;		/* full length, positive */
	bn = BN_bin2bn(rnd, sizeof(rnd), NULL);
	if (bn == NULL || (serial = BN_to_ASN1_INTEGER(bn, NULL)) == NULL)
		goto out;
	if (X509_set_version(x, X509_VERSION_3) != 1 || X509_set_serialNumber(x, serial) != 1)
		goto out;
	if (X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1,
				       -1, 0) != 1)
		goto out;
	if (X509_set_subject_name(x, name) != 1 ||
	    X509_set_issuer_name(x, p->issuer_cert != NULL ?
				 X509_get_subject_name(p->issuer_cert) : name) != 1)
		goto out;
	if (X509_gmtime_adj(X509_getm_notBefore(x), -CA_BACKDATE_SECS) == NULL ||
	    X509_time_adj_ex(X509_getm_notAfter(x), p->days, 0, NULL) == NULL)
		goto out;
	if (p->raw_spki ? set_raw_spki(x, p->subject_key) != DJ_EOK :
	    X509_set_pubkey(x, p->subject_key) != 1)
		goto out;

	if (role_is_ca(p->role)) {
		static const int ca_ku[] = { 5 /* keyCertSign */, 6 /* cRLSign */ };

		if (add_bc(x, true, p->pathlen) != DJ_EOK || add_ku(x, ca_ku, 2) != DJ_EOK)
			goto out;
	} else {
		static const int ku_sig[] = { 0 /* digitalSignature */ };
		static const int ku_rsa[] = { 0, 2 /* keyEncipherment */ };
		static const int eku_js[] = { NID_server_auth, NID_client_auth };
		static const int eku_peer[] = { NID_client_auth, NID_server_auth };
		static const int eku_dev[] = { NID_client_auth };

		if (add_bc(x, false, -1) != DJ_EOK)
			goto out;
		if (EVP_PKEY_is_a(p->subject_key, "RSA"))
			rc = add_ku(x, ku_rsa, 2);
		else
			rc = add_ku(x, ku_sig, 1);
		if (rc != DJ_EOK)
			goto out;
		switch (p->role) {
		case CA_ROLE_JS:	/* a server, and a client when it posts async answers */
			rc = add_eku(x, eku_js, 2);
			break;
		case CA_ROLE_NS:	/* a client of the JS, and a server for its answers */
		case CA_ROLE_AS:
			rc = add_eku(x, eku_peer, 2);
			break;
		default:		/* a device only ever connects out */
			rc = add_eku(x, eku_dev, 1);
			break;
		}
		if (rc != DJ_EOK)
			goto out;
		rc = add_san(x, p->names, p->nnames, err, errlen);
		if (rc != DJ_EOK)
			goto out;
		rc = DJ_ECRYPTO;
	}
	if (add_key_ids(x, p->issuer_cert) != DJ_EOK)
		goto out;
	md = p->md != NULL && !EVP_PKEY_is_a(signer, "ED25519") ? p->md : sign_md(signer);
	if (X509_sign(x, signer, md) <= 0)
		goto out;
	*out = x;
	x = NULL;
	rc = DJ_EOK;
out:
	if (rc == DJ_ECRYPTO)
		dj_errbuf(err, errlen, "cannot build the certificate: %s", dj_openssl_reason());
	OPENSSL_cleanse(rnd, sizeof(rnd));
	BN_free(bn);
	ASN1_INTEGER_free(serial);
	X509_NAME_free(name);
	X509_free(x);
	return rc;
}

/* open_pem - a read BIO on a file, with a clear error */
static BIO *open_pem(const char *path, int *rc, char *err, size_t errlen)
{
	BIO *bio;
	FILE *f;

	f = fopen(path, "rb");
	if (f == NULL) {
		dj_errbuf(err, errlen, "%s: %s", path, strerror(errno));
		*rc = errno == ENOENT ? DJ_ENOENT : DJ_EIO;
		return NULL;
	}
	bio = BIO_new_fp(f, BIO_CLOSE);
	if (bio == NULL) {
		fclose(f);
		*rc = DJ_ENOMEM;
	}
	return bio;
}

int ca_cert_read_chain(const char *path, STACK_OF(X509) **out, char *err, size_t errlen)
{
	STACK_OF(X509) *sk = NULL;
	BIO *bio;
	X509 *x;
	int rc = DJ_EMALFORMED;

	*out = NULL;
	bio = open_pem(path, &rc, err, errlen);
	if (bio == NULL)
		return rc;
	sk = sk_X509_new_null();
	if (sk == NULL) {
		rc = DJ_ENOMEM;
		goto out;
	}
	while ((x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {
		if (sk_X509_push(sk, x) <= 0) {
			X509_free(x);
			rc = DJ_ENOMEM;
			goto out;
		}
	}
	ERR_clear_error();	/* the end of the file */
	if (sk_X509_num(sk) == 0) {
		dj_errbuf(err, errlen, "%s: no PEM certificate in the file", path);
		rc = DJ_EMALFORMED;
		goto out;
	}
	*out = sk;
	sk = NULL;
	rc = DJ_EOK;
out:
	sk_X509_pop_free(sk, X509_free);
	BIO_free(bio);
	return rc;
}

int ca_cert_read(const char *path, X509 **out, char *err, size_t errlen)
{
	STACK_OF(X509) *sk = NULL;
	int rc;

	*out = NULL;
	rc = ca_cert_read_chain(path, &sk, err, errlen);
	if (rc != DJ_EOK)
		return rc;
	*out = sk_X509_shift(sk);
	sk_X509_pop_free(sk, X509_free);
	return DJ_EOK;
}

int ca_csr_read(const char *path, X509_REQ **out, char *err, size_t errlen)
{
	X509_REQ *req = NULL;
	EVP_PKEY *pub;
	BIO *bio;
	int rc = DJ_EMALFORMED;

	*out = NULL;
	bio = open_pem(path, &rc, err, errlen);
	if (bio == NULL)
		return rc;
	req = PEM_read_bio_X509_REQ(bio, NULL, NULL, NULL);
	if (req == NULL) {
		dj_errbuf(err, errlen, "%s: not a PEM certificate request", path);
		goto out;
	}
	pub = X509_REQ_get0_pubkey(req);
	if (pub == NULL || X509_REQ_verify(req, pub) != 1) {
		dj_errbuf(err, errlen, "%s: the request's self-signature does not verify", path);
		goto out;
	}
	if (!ca_key_usable(pub, err, errlen))
		goto out;
	*out = req;
	req = NULL;
	rc = DJ_EOK;
out:
	ERR_clear_error();
	X509_REQ_free(req);
	BIO_free(bio);
	return rc;
}

int ca_cert_pem(BIO *bio, X509 *cert)
{
	return PEM_write_bio_X509(bio, cert) == 1 ? DJ_EOK : DJ_ECRYPTO;
}

int ca_cert_write(const char *path, X509 *cert, STACK_OF(X509) *extra, bool force, char *err,
		  size_t errlen)
{
	BIO *mem;
	char *data;
	long len;
	int i, rc = DJ_ECRYPTO;

	mem = BIO_new(BIO_s_mem());
	if (mem == NULL)
		return DJ_ENOMEM;
	if (ca_cert_pem(mem, cert) != DJ_EOK)
		goto out;
	for (i = 0; extra != NULL && i < sk_X509_num(extra); i++)
		if (ca_cert_pem(mem, sk_X509_value(extra, i)) != DJ_EOK)
			goto out;
	len = BIO_get_mem_data(mem, &data);
	rc = ca_file_write_new(path, data, (size_t)len, 0644, force, err, errlen);
out:
	BIO_free(mem);
	return rc;
}

/* print_ext - "  label: value" for one extension, if present */
static void print_ext(BIO *out, X509 *cert, int nid, const char *label)
{
	int idx = X509_get_ext_by_NID(cert, nid, -1);
	X509_EXTENSION *ext;

	if (idx < 0)
		return;
	ext = X509_get_ext(cert, idx);
	BIO_printf(out, "%-18s%s", label, X509_EXTENSION_get_critical(ext) ? "(critical) " : "");
	if (!X509V3_EXT_print(out, ext, 0, 0))
		BIO_printf(out, "(unprintable)");
	BIO_printf(out, "\n");
}

/* print_tlsa - "  TLSA U S M: hex" */
static int print_tlsa(BIO *out, X509 *cert, unsigned u, unsigned s, unsigned m)
{
	struct ca_tlsa t;
	char *rd;
	int rc;

	rc = ca_tlsa_compute(cert, NULL, u, s, m, &t);
	if (rc != DJ_EOK)
		return rc;
	rd = ca_tlsa_rdata(&t);
	ca_tlsa_clear(&t);
	if (rd == NULL)
		return DJ_ENOMEM;
	BIO_printf(out, "TLSA %u %u %u:       %s\n", u, s, m, rd + 6);
	free(rd);
	return DJ_EOK;
}

int ca_cert_describe(X509 *cert, BIO *out)
{
	char keydesc[64], *hex;
	const ASN1_INTEGER *serial;
	BIGNUM *bn;
	int rc;

	BIO_printf(out, "%-18s", "Subject:");
	X509_NAME_print_ex(out, X509_get_subject_name(cert), 0, XN_FLAG_ONELINE);
	BIO_printf(out, "\n%-18s", "Issuer:");
	X509_NAME_print_ex(out, X509_get_issuer_name(cert), 0, XN_FLAG_ONELINE);
	serial = X509_get0_serialNumber(cert);
	bn = ASN1_INTEGER_to_BN(serial, NULL);
	hex = bn != NULL ? BN_bn2hex(bn) : NULL;
	BIO_printf(out, "\n%-18s%s\n", "Serial:", hex != NULL ? hex : "?");
	OPENSSL_free(hex);
	BN_free(bn);
	BIO_printf(out, "%-18s", "Not before:");
	ASN1_TIME_print(out, X509_get0_notBefore(cert));
	BIO_printf(out, "\n%-18s", "Not after:");
	ASN1_TIME_print(out, X509_get0_notAfter(cert));
	BIO_printf(out, "\n%-18s%s\n", "Key:", ca_key_describe(X509_get0_pubkey(cert), keydesc,
							 sizeof(keydesc)));
	BIO_printf(out, "%-18s%s\n", "Self-signed:",
		   X509_NAME_cmp(X509_get_subject_name(cert), X509_get_issuer_name(cert)) == 0 &&
		   X509_verify(cert, X509_get0_pubkey(cert)) == 1 ? "yes" : "no");
	ERR_clear_error();
	print_ext(out, cert, NID_subject_alt_name, "SAN:");
	print_ext(out, cert, NID_basic_constraints, "Basic constr.:");
	print_ext(out, cert, NID_key_usage, "Key usage:");
	print_ext(out, cert, NID_ext_key_usage, "Extended usage:");
	print_ext(out, cert, NID_subject_key_identifier, "Subject key id:");
	print_ext(out, cert, NID_authority_key_identifier, "Authority key id:");
	rc = print_tlsa(out, cert, 3, 1, 1);
	if (rc == DJ_EOK)
		rc = print_tlsa(out, cert, 2, 0, 1);
	return rc;
}
