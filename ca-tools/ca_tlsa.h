/*
 * ca_tlsa.h - TLSA certificate association data (RFC 6698 §2.1, RFC 7218 mnemonics).
 *
 * DESCRIPTION
 *	Computes the association data of a TLSA record from a certificate (selector 0: the whole
 *	DER certificate, selector 1: its DER SubjectPublicKeyInfo) or from a bare key (selector 1
 *	only), with matching type 0 (the data itself), 1 (SHA-256) or 2 (SHA-512). Formats the rdata
 *	"U S M HEX" (lowercase) and the zone-file line "OWNER TTL IN TLSA U S M HEX".
 */
#ifndef DJ_CA_TOOLS_CA_TLSA_H
#define DJ_CA_TOOLS_CA_TLSA_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "common/dj_compiler.h"
#include "common/dj_dns.h"	/* DJ_TLSA_*: usage, selector, matching type */

#define CA_TLSA_TTL_DEFAULT 3600	/* our default TTL for zone-file lines (docs/danejoin-ca.md) */

struct ca_tlsa {
	uint8_t usage, selector, mtype;
	uint8_t *data;		/* owned; free with ca_tlsa_clear() */
	size_t len;
};

/*!
 * \brief Compute the association data. Give \p cert, or \p key for selector 1 only.
 * \param out  filled on success; release with ca_tlsa_clear().
 * \retval DJ_EOK, DJ_ERANGE (usage/selector/mtype out of range), DJ_EINVAL (selector 0 without a
 *         certificate), DJ_ECRYPTO
 */
int ca_tlsa_compute(X509 *cert, EVP_PKEY *key, unsigned usage, unsigned selector, unsigned mtype,
		    struct ca_tlsa *out) DJ_MUSTCHECK;

/*! \brief Free the data of \p t (NULL and zeroed structs allowed). */
void ca_tlsa_clear(struct ca_tlsa *t);

/*!
 * \brief "U S M hex" as a heap string (the caller frees it with free()), or NULL (no memory).
 */
char *ca_tlsa_rdata(const struct ca_tlsa *t);

/*! \brief "OWNER TTL IN TLSA U S M hex" as a heap string, or NULL. */
char *ca_tlsa_line(const char *owner, uint32_t ttl, const struct ca_tlsa *t);

#endif /* DJ_CA_TOOLS_CA_TLSA_H */
