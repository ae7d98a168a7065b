/*
 * da_tls.h - DANE (RFC 6698, RFC 7671) for TLS 1.3 peers in both directions, on OpenSSL's own
 *	      DANE verifier, and the dane_clientid extension (draft-ietf-dance-tls-clientid).
 *
 * DESCRIPTION
 *	Client side: da_tls_client_prepare() arms an SSL object with the server's TLSA records
 *	before the handshake; OpenSSL then checks the server's chain against them (SSL_dane_*).
 *	da_tls_clientid_add() makes every handshake of a context carry our DANE client identity.
 *
 *	Server side: the TLS handshake only proves that the client holds the key of the certificate
 *	it sent (CertificateVerify). Its DANE identity is known at the ClientHello (extension) or
 *	from the certificate (its single SAN dNSName), and its TLSA records come from an
 *	asynchronous DNSSEC lookup that a handshake cannot wait for. So the server verifies after
 *	the handshake and before serving any request: da_tls_verify() runs OpenSSL's verifier with
 *	the DANE records on the chain the client presented.
 *
 *	Matching rules (OpenSSL's, which implement RFC 7671): only DANE-TA(2) and DANE-EE(3)
 *	records are used. DANE-EE(3) matches the leaf and ignores its names and dates (RFC 7671
 *	§5.1). DANE-TA(2) matches a CA certificate or key in the chain the peer sent (the TA must
 *	be in the chain, RFC 7671 §5.2.2) and then requires a valid chain to it and the reference
 *	name in the leaf's SAN dNSNames.
 *
 *	The dane_clientid extension: extension_data is opaque ClientName<0..255>: empty ("my
 *	identity is in my certificate"), or the client's DANE identity, which is the owner name of
 *	its TLSA records (e.g. "_ns-client.ns1.example.net"), in uncompressed DNS wire format
 *	(RFC 1035 §3.1). The codepoint is configurable: none has been assigned (default 65290, in
 *	the private-use range).
 */
#ifndef DJ_BACKEND_AUTH_DA_TLS_H
#define DJ_BACKEND_AUTH_DA_TLS_H

#include <stddef.h>

#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "backend-auth/da_dns.h"
#include "common/dj_compiler.h"

#define DA_CLIENTID_EXT_DEFAULT 65290u
#define DA_NAME_MAX 256 /* a presentation-form name and its NUL */
#define DA_WHY_MAX 200

/*! \brief Enable DANE on a context (SSL_CTX_dane_enable). \retval DJ_EOK, DJ_ECRYPTO */
int da_tls_ctx_enable(SSL_CTX *ctx) DJ_MUSTCHECK;

/*!
 * \brief Client side: verify the server of \p ssl against \p rr (usages 2 and 3 only; others
 *        are skipped) with \p host as the reference name (also sent as SNI). The context must
 *        have had da_tls_ctx_enable(). \retval DJ_EOK, DJ_EINVAL (no usable record), DJ_ECRYPTO
 */
int da_tls_client_prepare(SSL *ssl, const char *host, const struct da_tlsa *rr,
			  size_t n) DJ_MUSTCHECK;

/*!
 * \brief Client side: send \p name (NULL or "": an empty extension) in the dane_clientid
 *        extension of every ClientHello made from \p ctx. \p name is copied; the copy lives as
 *        long as \p ctx. \retval DJ_EOK, DJ_EINVAL (malformed name or codepoint), DJ_ECRYPTO
 */
int da_tls_clientid_add(SSL_CTX *ctx, unsigned ext_type, const char *name, char *err,
			size_t errlen) DJ_MUSTCHECK;

/*!
 * \brief Server side: let handshakes of \p ctx carry the dane_clientid extension (OpenSSL keeps
 *        only the extensions it knows of for SSL_client_hello_get0_ext). Nothing is echoed.
 * \retval DJ_EOK, DJ_EINVAL (codepoint unusable)
 */
int da_tls_clientid_accept(SSL_CTX *ctx, unsigned ext_type) DJ_MUSTCHECK;

/*!
 * \brief Server side, in a ClientHello callback: the client's claimed DANE identity.
 * \param out  the name in presentation form, lower case, no trailing dot.
 * \retval DJ_EOK (found), DJ_ENOENT (no extension, or an empty one), DJ_EMALFORMED (\p why says
 *         what is wrong)
 */
int da_tls_clientid_get(SSL *ssl, unsigned ext_type, char *out, size_t outlen, char *why,
			size_t whylen) DJ_MUSTCHECK;

/*! \brief Encode/decode a ClientName (for tests and tools). */
int da_clientid_encode(const char *name, unsigned char *out, size_t outlen,
		       size_t *len) DJ_MUSTCHECK;
int da_clientid_decode(const unsigned char *data, size_t len, char *out, size_t outlen, char *why,
		       size_t whylen) DJ_MUSTCHECK;

/*!
 * \brief Normalise a DNS name for use as an identity: lower case, no trailing dot, valid label
 *        lengths (1..63), total <= 253, LDH plus '_' only. \retval DJ_EOK, DJ_EMALFORMED
 */
int da_name_normalize(const char *in, char *out, size_t outlen, char *why,
		      size_t whylen) DJ_MUSTCHECK;

/* The verdict of a DANE check. */
struct da_verdict {
	int ok;			/* 1: the chain matched a record under RFC 7671's rules */
	int usage, selector, mtype; /* the record that matched (ok only) */
	int depth;		/* depth of the matched certificate (0: the leaf) */
	char why[DA_WHY_MAX];	/* !ok: the reason, for logs and errors */
};

/* Which side the checked peer is: the purpose OpenSSL checks under DANE-TA (EKU clientAuth or
 * serverAuth, as libssl does for a handshake). */
enum da_peer_role {
	DA_PEER_CLIENT = 0,
	DA_PEER_SERVER = 1,
};

/*!
 * \brief Verify a peer's \p leaf (and the \p chain it sent, may be NULL) against \p rr, with
 *        \p name as the reference identity for DANE-TA, for a peer in \p role (the server side
 *        checks a client after the handshake; a client whose TLS library cannot carry DANE
 *        state, like libmosquitto, checks a server). \p ctx must have had da_tls_ctx_enable();
 *        its trust store is not used for DANE-TA/EE (no PKIX usages are ever added).
 * \retval DJ_EOK (\p v holds the verdict, ok or not), DJ_ENOMEM, DJ_ECRYPTO
 */
int da_tls_verify(SSL_CTX *ctx, X509 *leaf, STACK_OF(X509) *chain, const char *name,
		  const struct da_tlsa *rr, size_t n, enum da_peer_role role,
		  struct da_verdict *v) DJ_MUSTCHECK;

#endif /* DJ_BACKEND_AUTH_DA_TLS_H */
