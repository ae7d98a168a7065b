/*
 * dv_chain.h - ownership chains: signed links from the manufacturer to the current owner.
 *
 * SYNOPSIS
 *	struct dv_link l = { ... };		// dev_eui, zones, rights, serial, nonce, auth
 *	dv_link_sign(&l, owner_key);		// EVP_DigestSign over the canonical encoding
 *	dv_chain_append(chain, &l, &why);	// continuity rules (serial, zones, EUIs, auth)
 *	dv_chain_encode(chain, &buf, &len);	// protobuf (dv_chain.proto), then base64 for TXT
 *	dv_chain_verify(chain, key_for_zone, arg, &verdict);
 *
 * DESCRIPTION
 *	A chain is the list of hand-overs of one device, oldest first (docs/dns-records.md). Link 1
 *	is signed by the manufacturer (AUTH_MANUFACTURER, signer = from_zone). Each later link is
 *	signed by the previous owner (AUTH_SIGNED_REQUEST, signer = from_zone), or, when the
 *	previous owner authorized it with an auth code, by the registry, which is the signer of
 *	link 1 (AUTH_CODE). Every signer's key is the full SPKI in `_owner.<signer zone>` TLSA
 *	3 1 0, taken from a DNSSEC-secure answer by the caller's key callback.
 *
 *	The canonical encoding of a link is its protobuf-c serialization with the signature field
 *	empty (protobuf-c writes fields in field-number order and omits empty proto3 fields, so it
 *	is deterministic). The signed message is DV_LINK_SIG_CONTEXT (NUL included) followed by
 *	that encoding: the context keeps an owner key's signature over a link from being valid for
 *	anything else the same key signs. A decoded link must re-encode to exactly the bytes it
 *	came from, and may carry no unknown field: there is one encoding per link, so what was
 *	signed is what is verified.
 *
 *	Keys are ECDSA P-256 (signature over SHA-256, DER) or Ed25519. Nothing here reads the DNS
 *	or the clock: verification is a pure function of the chain and the keys the callback gives.
 */
#ifndef DJ_DEVICES_DV_CHAIN_H
#define DJ_DEVICES_DV_CHAIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "common/dj_compiler.h"
#include "common/dj_dns.h"
#include "lorawan/lw_frame.h"

#define DV_ZONE_MAX 256		/* a zone in presentation form, trailing dot, NUL (RFC 1035 §2.3.4) */
#define DV_NONCE_LEN 16		/* request nonce */
#define DV_NETID_LEN 3		/* LoRaWAN NetID (TS002 §6.1) */
#define DV_RIGHTS_MAX 16	/* NetIDs, and AS-IDs, per link */
#define DV_ASID_MAX 128		/* an AS-ID, NUL included */
#define DV_SIG_MAX 80		/* DER ECDSA P-256 (<= 72) or Ed25519 (64) */
#define DV_CHAIN_MAX 32		/* links per chain */
#define DV_CHAIN_WIRE_MAX 16384	/* an encoded chain: well inside one TXT RRset */
#define DV_LINK_SIG_CONTEXT "danejoin-ownership-link-v1"	/* signed with its NUL */

/* How a link was authorized (dv_chain.proto enum Auth). */
enum dv_auth {
	DV_AUTH_MANUFACTURER = 1,
	DV_AUTH_SIGNED = 2,
	DV_AUTH_CODE = 3,
};

struct dv_link {
	uint8_t dev_eui[LW_EUI_LEN];
	uint8_t join_eui[LW_EUI_LEN];
	char from_zone[DV_ZONE_MAX];
	char to_zone[DV_ZONE_MAX];
	size_t n_net_ids;
	uint8_t net_ids[DV_RIGHTS_MAX][DV_NETID_LEN];
	size_t n_as_ids;
	char as_ids[DV_RIGHTS_MAX][DV_ASID_MAX];
	uint64_t serial;
	int64_t not_before;
	uint8_t nonce[DV_NONCE_LEN];
	char signer_zone[DV_ZONE_MAX];
	enum dv_auth auth;
	size_t sig_len;			/* 0: not signed yet */
	uint8_t sig[DV_SIG_MAX];
};

struct dv_chain {
	size_t n;
	struct dv_link links[DV_CHAIN_MAX];	/* oldest first */
};

/* The verdict on a chain (STYLE.md rule 4: a verdict, not a fault). */
enum dv_chain_status {
	DV_CHAIN_OK = 0,
	DV_CHAIN_MALFORMED,	/* not a chain: decoding, bounds, a bad field */
	DV_CHAIN_BROKEN,	/* links do not follow: serial, zones, EUIs, auth rule, order */
	DV_CHAIN_BADSIG,	/* a signature does not verify under its signer's key */
	DV_CHAIN_NOKEY,		/* a signer's _owner key is absent, insecure or bogus */
	DV_CHAIN_TEMPFAIL,	/* a key could not be looked up now (resolver failure) */
};

struct dv_chain_verdict {
	enum dv_chain_status status;
	int link;		/* 0-based index of the link at fault, -1 when none */
	char why[256];
};

/* What a key callback found for a zone. */
enum dv_key_status {
	DV_KEY_OK = 0,		/* *out holds the key (the caller of the callback frees it) */
	DV_KEY_ABSENT,		/* secure denial, or no usable 3 1 0 TLSA */
	DV_KEY_INSECURE,	/* the answer is not DNSSEC-secure (insecure or bogus) */
	DV_KEY_TEMPFAIL,	/* the resolver failed */
};

/*!
 * \brief The _owner key of \p zone. \p out receives a new reference on DV_KEY_OK only.
 */
typedef enum dv_key_status (*dv_key_fn)(const char *zone, void *arg, EVP_PKEY **out);

/*!
 * \brief Normalize a zone name: lower case, trailing dot, LDH/underscore labels of 1..63
 *        octets, at most 253 octets in all.
 * \retval DJ_EOK, DJ_EMALFORMED
 */
int dv_zone_normalize(const char *in, char out[DV_ZONE_MAX]) DJ_MUSTCHECK;

/*! \brief Whether \p s is a valid AS-ID (printable ASCII without space, comma or quote). */
bool dv_asid_valid(const char *s);

/*!
 * \brief The canonical encoding of \p l (its serialization without the signature).
 * \param out  receives a malloc'd buffer on success only.
 * \retval DJ_EOK, DJ_EINVAL (a field out of range), DJ_ENOMEM
 */
int dv_link_canonical(const struct dv_link *l, uint8_t **out, size_t *len) DJ_MUSTCHECK;

/*!
 * \brief Sign \p l with \p key (borrowed; EC P-256 or Ed25519) into l->sig.
 * \retval DJ_EOK, DJ_EINVAL (another key type, a bad field), DJ_ECRYPTO, DJ_ENOMEM
 */
int dv_link_sign(struct dv_link *l, EVP_PKEY *key) DJ_MUSTCHECK;

/*!
 * \brief Check l->sig under \p key (borrowed).
 * \retval DJ_EOK        the signature verifies
 * \retval DJ_EACCES     it does not (or the key is not P-256/Ed25519, or there is none)
 * \retval DJ_EINVAL, DJ_ENOMEM, DJ_ECRYPTO
 */
int dv_link_verify(const struct dv_link *l, EVP_PKEY *key) DJ_MUSTCHECK;

/*! \brief Serialize one signed link (a transfer request). \p out: malloc'd, success only. */
int dv_link_encode(const struct dv_link *l, uint8_t **out, size_t *len) DJ_MUSTCHECK;

/*!
 * \brief Parse one link, strictly (canonical bytes, no unknown field, sizes, normalized zones).
 * \retval DJ_EOK, DJ_EMALFORMED, DJ_ENOMEM
 */
int dv_link_decode(const uint8_t *buf, size_t len, struct dv_link *out) DJ_MUSTCHECK;

/*! \brief Serialize a chain (protobuf). \p out: malloc'd, success only. */
int dv_chain_encode(const struct dv_chain *c, uint8_t **out, size_t *len) DJ_MUSTCHECK;

/*! \brief Parse a chain strictly (as dv_link_decode, for every link). \p out: the caller's. */
int dv_chain_decode(const uint8_t *buf, size_t len, struct dv_chain *out) DJ_MUSTCHECK;

/*!
 * \brief Whether \p next may follow the chain \p c (which may be empty: then \p next must be a
 *        first link). Signatures are not checked here.
 * \param why  receives the reason when the answer is no (may be NULL).
 */
bool dv_chain_may_append(const struct dv_chain *c, const struct dv_link *next, char *why,
			 size_t whylen);

/*! \brief Append \p l (copied) if dv_chain_may_append() says so. \retval DJ_EOK, DJ_EINVAL,
 *         DJ_ENOSPC (DV_CHAIN_MAX links already) */
int dv_chain_append(struct dv_chain *c, const struct dv_link *l, char *why, size_t whylen)
	DJ_MUSTCHECK;

/*!
 * \brief Verify a whole chain: its structure (dv_chain_may_append for every link) and every
 *        signature under the key \p key_fn gives for the link's signer zone (asked once per
 *        zone).
 * \param v  the verdict, always filled.
 * \retval DJ_EOK (see \p v), DJ_ENOMEM, DJ_ECRYPTO (faults: no verdict)
 */
int dv_chain_verify(const struct dv_chain *c, dv_key_fn key_fn, void *arg,
		    struct dv_chain_verdict *v) DJ_MUSTCHECK;

/*!
 * \brief Verify link \p i (0-based) of \p c on its own: that it is signed, that it may follow
 *        links 0..i-1 (the rules of dv_chain_may_append, which are not re-checked for them),
 *        and its signature under the key \p key_fn gives for its signer zone. These are the
 *        checks dv_chain_verify makes of every link; dv_chain_verify stops at the first fault,
 *        this gives a verdict per link (an operator's view of a chain, link by link).
 * \param key_fn  NULL: the structure only (v->status DV_CHAIN_OK says nothing of the signature).
 * \param v       the verdict, always filled (v->link = \p i).
 * \retval DJ_EOK (see \p v), DJ_ENOMEM, DJ_ECRYPTO (faults: no verdict)
 */
int dv_chain_verify_link(const struct dv_chain *c, size_t i, dv_key_fn key_fn, void *arg,
			 struct dv_chain_verdict *v) DJ_MUSTCHECK;

/*! \brief "ok", "malformed", "broken", "bad signature", "no key", "temporary failure". */
const char *dv_chain_status_name(enum dv_chain_status s);

/*!
 * \brief Base64 (RFC 4648 §4, no line breaks) of \p len bytes. \p out: malloc'd, NUL-ended.
 * \retval DJ_EOK, DJ_ENOMEM
 */
int dv_b64_encode(const uint8_t *in, size_t len, char **out) DJ_MUSTCHECK;

/*! \brief Decode base64 (no whitespace). \retval DJ_EOK, DJ_EMALFORMED, DJ_ENOMEM */
int dv_b64_decode(const char *in, size_t len, uint8_t **out, size_t *outlen) DJ_MUSTCHECK;

/*!
 * \brief Read an ownership private key (PEM, EC P-256 or Ed25519) from a file that is a
 *        regular file of mode 0600 or 0400.
 * \retval DJ_EOK, DJ_ENOENT, DJ_EFILEMODE, DJ_EMALFORMED (not a key, or another type)
 */
int dv_key_read(const char *path, EVP_PKEY **out) DJ_MUSTCHECK;

/*! \brief Whether \p key is EC P-256 or Ed25519. */
bool dv_key_usable(EVP_PKEY *key);

/*! \brief The DER SubjectPublicKeyInfo of \p key (TLSA 3 1 0 data). \p out: malloc'd. */
int dv_key_spki(EVP_PKEY *key, uint8_t **out, size_t *len) DJ_MUSTCHECK;

/*! \brief A public key from DER SPKI. \retval DJ_EOK, DJ_EMALFORMED (or unusable type) */
int dv_key_from_spki(const uint8_t *der, size_t len, EVP_PKEY **out) DJ_MUSTCHECK;

/*!
 * \brief Verify \p sig over \p msg under \p key: ECDSA P-256 with SHA-256 (DER signature) or
 *        Ed25519 (PureEdDSA), with EVP_DigestVerify. No context string is prepended: the
 *        device signs the message bytes themselves. All pointers are borrowed.
 * \retval DJ_EOK (good), DJ_EACCES (bad signature, or a key that is not P-256/Ed25519 -- a
 *         verdict), DJ_ENOMEM, DJ_ECRYPTO (OpenSSL failed -- a fault)
 */
int dv_key_verify_msg(EVP_PKEY *key, const uint8_t *msg, size_t len, const uint8_t *sig,
		      size_t siglen) DJ_MUSTCHECK;

/*!
 * \brief Whether \p key is the key that a TLSA record with selector SPKI and matching type
 *        \p mtype (DJ_TLSA_MT_*, common/dj_dns.h) and association data \p data names.
 *        Borrowed pointers.
 * \param match  set on DJ_EOK only.
 * \retval DJ_EOK, DJ_EINVAL (an unknown matching type), DJ_ENOMEM, DJ_ECRYPTO
 */
int dv_key_match_tlsa(EVP_PKEY *key, uint8_t mtype, const uint8_t *data, size_t len,
		      bool *match) DJ_MUSTCHECK;

#endif /* DJ_DEVICES_DV_CHAIN_H */
