/*
 * dv_ownerkey.h - the one owner-key lookup: an organisation's `_owner.<zone>` TLSA 3 1 0 record
 *		   turned into the public key that signs its ownership links.
 *
 * SYNOPSIS
 *	// asynchronous (danejoind, js_owner.c): records parsed by da_dns
 *	st = dv_ownerkey_status(set->status);
 *	if (st == DV_KEY_OK && dv_ownerkey_from_tlsa(set->rr, set->n, link, &key) != DJ_EOK)
 *		st = DV_KEY_ABSENT;
 *
 *	// synchronous (danejoin-devices): a keyring of one run, a dv_key_fn
 *	dv_keyring_new(&(struct dv_keyring_props){ .ta_file = ta, .stub_addr = "IP@PORT" }, &kr);
 *	st = dv_keyring_get("opa.test.", kr, &key);
 *	dv_keyring_free(kr);
 *
 * DESCRIPTION
 *	DESIGN.md: an owner's key is the full SubjectPublicKeyInfo in `_owner.<zone>` TLSA
 *	3 1 0 (DANE-EE, SPKI, Full: RFC 6698 §2.1), so that a signature can be checked from the
 *	DNS alone. Only a DNSSEC-secure answer counts (trust rule 1): insecure and bogus give
 *	DV_KEY_INSECURE, a secure denial or an RRset without a usable 3 1 0 record of an EC P-256
 *	or Ed25519 key gives DV_KEY_ABSENT, and a resolver failure DV_KEY_TEMPFAIL (try again,
 *	never accept). Records are parsed by backend-auth's one TLSA parser (da_tlsa_parse).
 *
 *	During a key rollover the RRset holds two keys; given the link the zone signed, the key
 *	that verifies it is taken, else the first usable one.
 */
#ifndef DJ_DEVICES_OWNERSHIP_DV_OWNERKEY_H
#define DJ_DEVICES_OWNERSHIP_DV_OWNERKEY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "backend-auth/da_dns.h"
#include "common/dj_compiler.h"
#include "ownership/dv_chain.h"

#define DV_KEYRING_MAX 16	/* zones whose _owner key one keyring keeps */

/*!
 * \brief The owner key among parsed TLSA records \p rr (borrowed): the first 3 1 0 record
 *        holding a usable SPKI, or, when \p signed_link is not NULL, the first that verifies it.
 * \param out  a new key on DJ_EOK only (the caller frees it).
 * \retval DJ_EOK, DJ_ENOENT (no usable 3 1 0 record)
 */
int dv_ownerkey_from_tlsa(const struct da_tlsa *rr, size_t n, const struct dv_link *signed_link,
			  EVP_PKEY **out) DJ_MUSTCHECK;

/*!
 * \brief As dv_ownerkey_from_tlsa, on \p n raw TLSA rdata (wire form, as a synchronous lookup
 *        returns them); each is parsed by da_tlsa_parse and a malformed one is skipped.
 * \retval DJ_EOK, DJ_ENOENT, DJ_ENOMEM
 */
int dv_ownerkey_from_rdata(const uint8_t *const *rd, const size_t *len, size_t n,
			   const struct dv_link *signed_link, EVP_PKEY **out) DJ_MUSTCHECK;

/*!
 * \brief What a lookup verdict means for a key before its records are read: DV_KEY_OK for
 *        DA_SECURE (the records decide), DV_KEY_INSECURE for insecure or bogus,
 *        DV_KEY_TEMPFAIL for a resolver failure, DV_KEY_ABSENT for the secure denials.
 */
enum dv_key_status dv_ownerkey_status(enum da_status st);

/*! \brief Why a zone's key cannot be used ("_owner record is not DNSSEC-secure ..."). */
const char *dv_key_status_text(enum dv_key_status st);

/*!
 * \brief Whether \p priv (borrowed) is the _owner key that \p key_fn finds for \p zone.
 * \param st    the lookup's status, always set.
 * \param same  set on DJ_EOK: true when \p st is DV_KEY_OK and the keys are equal.
 * \retval DJ_EOK
 */
int dv_ownerkey_matches(dv_key_fn key_fn, void *arg, const char *zone, EVP_PKEY *priv,
			enum dv_key_status *st, bool *same) DJ_MUSTCHECK;

/* A keyring: the _owner keys one CLI run looked up (synchronously, ca_lookup), kept for the
 * run so that a batch of 1,000 devices asks for each zone once. Not thread-safe. */
struct dv_keyring;

struct dv_keyring_props {
	const char *ta_file;	/* trust anchors (DS/DNSKEY lines); borrowed, outlives the ring */
	const char *stub_addr;	/* "IP@PORT": ask this server for each zone; NULL: recursion */
};

/*! \brief A keyring (strings of \p p are copied). \retval DJ_EOK, DJ_EINVAL, DJ_ENOMEM */
int dv_keyring_new(const struct dv_keyring_props *p, struct dv_keyring **out) DJ_MUSTCHECK;

/*! \brief Free the ring and its keys. NULL is accepted. */
void dv_keyring_free(struct dv_keyring *k);

/*!
 * \brief The _owner key of \p zone (a dv_key_fn; \p keyring is a struct dv_keyring). A
 *        temporary failure is not kept; every other answer is, for the ring's life.
 */
enum dv_key_status dv_keyring_get(const char *zone, void *keyring, EVP_PKEY **out);

#endif /* DJ_DEVICES_OWNERSHIP_DV_OWNERKEY_H */
