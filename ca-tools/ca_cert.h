/*
 * ca_cert.h - certificate profiles: roots, intermediates and leaves for each backend role.
 *
 * DESCRIPTION
 *	Every certificate danejoin-ca makes comes from one function, ca_cert_build(), and the role
 *	decides its extensions (never a CSR):
 *
 *	| role   | basicConstraints       | keyUsage (critical)        | extendedKeyUsage         |
 *	| root   | CA:TRUE[,pathlen] crit | keyCertSign, cRLSign       | -                        |
 *	| inter. | CA:TRUE[,pathlen] crit | keyCertSign, cRLSign       | -                        |
 *	| js     | CA:FALSE critical      | digitalSignature (+keyEnc.  for RSA) | serverAuth, clientAuth |
 *	| ns, as | CA:FALSE critical      | same                       | clientAuth, serverAuth   |
 *	| device | CA:FALSE critical      | same                       | clientAuth               |
 *
 *	All have a subjectKeyIdentifier and an authorityKeyIdentifier (keyid), a random positive
 *	128-bit serial (CA/B BR §7.1 asks for 64 bits of entropy), and leaves carry their names as
 *	SAN dNSNames, each checked with ca_name_check() first.
 */
#ifndef DJ_CA_TOOLS_CA_CERT_H
#define DJ_CA_TOOLS_CA_CERT_H

#include <stdbool.h>
#include <stddef.h>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "common/dj_compiler.h"

enum ca_role {
	CA_ROLE_ROOT,
	CA_ROLE_INTERMEDIATE,
	CA_ROLE_JS,
	CA_ROLE_NS,
	CA_ROLE_AS,
	CA_ROLE_DEVICE,
};

#define CA_DAYS_MAX 36500	/* a sanity bound on --days */
#define CA_BACKDATE_SECS 60	/* notBefore is a minute ago, for peers with a slow clock */

/* What to put into one certificate. Everything is borrowed. */
struct ca_cert_props {
	enum ca_role role;
	const char *subject_cn;		/* NULL: the first name (leaves), required for CAs */
	const char *const *names;	/* SAN dNSNames (leaves) */
	size_t nnames;
	int days;			/* validity from now */
	int pathlen;			/* CAs: pathLenConstraint, or -1 for none */
	EVP_PKEY *subject_key;		/* the public key to certify */
	X509 *issuer_cert;		/* NULL: self-signed with subject_key */
	EVP_PKEY *issuer_key;		/* the signing key (== subject_key if self-signed) */
	const EVP_MD *md;		/* optional pre-fetched digest (bulk); NULL: by key type */
	bool raw_spki;			/* bulk: put an EC or Ed25519 public key into the SPKI
					 * directly, not through OpenSSL 3.0's encoder and decoder
					 * (most of the cost of a device certificate). The result's
					 * X509_get0_pubkey() is then NULL; X509_get_X509_PUBKEY()
					 * and i2d work. */
};

/*! \brief "js", "ns", "as", "device" to a leaf role. \retval DJ_EOK, DJ_EINVAL */
int ca_role_parse(const char *text, enum ca_role *out) DJ_MUSTCHECK;

/*! \brief The role's name. */
const char *ca_role_name(enum ca_role role);

/*!
 * \brief Check that \p key is the private key of \p cert, that \p cert is a CA certificate and
 *        that it may issue a certificate of \p role (pathlen).
 * \retval DJ_EOK, DJ_EINVAL (with a reason in \p err)
 */
int ca_cert_check_issuer(X509 *cert, EVP_PKEY *key, enum ca_role role, int pathlen, char *err,
			 size_t errlen) DJ_MUSTCHECK;

/*!
 * \brief Build and sign one certificate. *\p out is the caller's.
 * \retval DJ_EOK, DJ_EMALFORMED (a bad name), DJ_EINVAL (bad props), DJ_ECRYPTO
 */
int ca_cert_build(const struct ca_cert_props *p, X509 **out, char *err, size_t errlen)
	DJ_MUSTCHECK;

/*! \brief Read the first certificate of a PEM file. \retval DJ_EOK, DJ_ENOENT, DJ_EMALFORMED */
int ca_cert_read(const char *path, X509 **out, char *err, size_t errlen) DJ_MUSTCHECK;

/*! \brief Read every certificate of a PEM file, leaf first. \retval as ca_cert_read */
int ca_cert_read_chain(const char *path, STACK_OF(X509) **out, char *err, size_t errlen)
	DJ_MUSTCHECK;

/*!
 * \brief Read a PEM CSR and check its self-signature (proof of possession).
 * \retval DJ_EOK, DJ_ENOENT, DJ_EMALFORMED (not a CSR, or a bad signature)
 */
int ca_csr_read(const char *path, X509_REQ **out, char *err, size_t errlen) DJ_MUSTCHECK;

/*!
 * \brief Write \p cert (and, if not NULL, \p extra after it: the issuer chain) as PEM to a new
 *        file of mode 0644 (\p force replaces). \retval DJ_EOK, DJ_EEXIST, DJ_EIO
 */
int ca_cert_write(const char *path, X509 *cert, STACK_OF(X509) *extra, bool force, char *err,
		  size_t errlen) DJ_MUSTCHECK;

/*! \brief PEM of \p cert appended to \p bio. \retval DJ_EOK, DJ_ECRYPTO */
int ca_cert_pem(BIO *bio, X509 *cert) DJ_MUSTCHECK;

/*!
 * \brief A human-readable summary of \p cert written to \p out: subject, issuer, serial,
 *        validity, key type, SANs, constraints, usages, and the TLSA 3 1 1 and 2 0 1 data.
 * \retval DJ_EOK, DJ_ECRYPTO
 */
int ca_cert_describe(X509 *cert, BIO *out) DJ_MUSTCHECK;

#endif /* DJ_CA_TOOLS_CA_CERT_H */
