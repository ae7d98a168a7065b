/*
 * dv_identity.h - a message signed by a device's own key, checked against the device's
 *		   identity TLSA record (docs/dns-records.md; danejoin-devices verify).
 *
 * SYNOPSIS
 *	struct dv_identity_verdict v;
 *	dv_identity_verify(&(struct dv_identity_props){ .ta_file = ta, .dev_eui = eui,
 *			   .zone = "opa.test.", .msg = m, .msglen = n, .sig = s, .siglen = k }, &v);
 *	if (v.status == DV_ID_GOOD) ...
 *
 * DESCRIPTION
 *	The key comes from the DNS only through a DNSSEC-validated lookup of
 *	<deveui>._device.<zone> TLSA: an insecure or bogus answer is refused whatever it holds
 *	(DESIGN.md trust rule 1), and so is a secure denial. Only usage DANE-EE, selector SPKI
 *	records count, matching type Full, SHA-256 or SHA-512 (RFC 6698 §2.1). A Full record
 *	carries the key itself; a digest record only names it, so the verifier brings the key
 *	and it must match one record bytewise (constant time) before its signature means
 *	anything.
 *
 *	Each way of failing is its own verdict, never confused with a fault of ours (the DNS
 *	unreachable, OpenSSL failing), which is a return code.
 */
#ifndef DJ_DEVICES_OWNERSHIP_DV_IDENTITY_H
#define DJ_DEVICES_OWNERSHIP_DV_IDENTITY_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "common/dj_compiler.h"
#include "common/dj_dns.h"
#include "lorawan/lw_frame.h"
#include "ownership/dv_records.h"

#define DV_ID_WHY_MAX 600

enum dv_identity_status {
	DV_ID_GOOD = 0,		/* the signature verifies under the device's identity key */
	DV_ID_BADSIG,		/* it does not */
	DV_ID_NOTLSA,		/* secure NXDOMAIN or NODATA, or no usable 3 1 x record */
	DV_ID_INSECURE,		/* the answer is not DNSSEC-secure (insecure or bogus) */
	DV_ID_KEYMISMATCH,	/* the verifier's key matches none of the records */
	DV_ID_NEEDKEY,		/* only digests are published: the verifier must bring the key */
};

struct dv_identity_verdict {
	enum dv_identity_status status;
	char name[DV_NAME_MAX];		/* the TLSA owner name looked up */
	int mtype;			/* DV_ID_GOOD: the matching type of the record used */
	size_t usable;			/* usable records in the secure RRset */
	char why[DV_ID_WHY_MAX];	/* a one-line reason (or the fault's) */
};

/* One check. Everything is borrowed for the call. */
struct dv_identity_props {
	const char *ta_file;		/* trust anchors for the validated lookup */
	const char *stub_addr;		/* "IP@PORT" to ask for \p zone, or NULL: recursion */
	uint8_t dev_eui[LW_EUI_LEN];
	const char *zone;		/* normalized */
	EVP_PKEY *device_key;		/* NULL, or the key the verifier holds (P-256/Ed25519) */
	const uint8_t *msg;
	size_t msglen;
	const uint8_t *sig;
	size_t siglen;
};

/*!
 * \brief Judge one lookup's answer (no DNS here): \p status and \p rcode of the answer,
 *        and its \p n TLSA rdata. \p v->name is the caller's, left as it is.
 * \retval DJ_EOK (see v->status), DJ_EAGAIN (rcode neither NOERROR nor NXDOMAIN: v->why),
 *         DJ_ENOMEM, DJ_ECRYPTO
 */
int dv_identity_judge(const struct dv_identity_props *p, enum da_status status, int rcode,
		      const uint8_t *const *rd, const size_t *len, size_t n,
		      struct dv_identity_verdict *v) DJ_MUSTCHECK;

/*!
 * \brief Look the device's identity TLSA up (validated) and judge it.
 * \retval DJ_EOK (see v->status), DJ_ERANGE (the device name would be too long),
 *         DJ_ECONFIG (trust anchors or stub: v->why), DJ_EAGAIN (no answer now: v->why),
 *         DJ_ENOMEM, DJ_ECRYPTO
 */
int dv_identity_verify(const struct dv_identity_props *p, struct dv_identity_verdict *v)
	DJ_MUSTCHECK;

#endif /* DJ_DEVICES_OWNERSHIP_DV_IDENTITY_H */
