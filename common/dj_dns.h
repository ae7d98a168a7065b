/*
 * dj_dns.h - the DNS vocabulary every layer shares: the verdict of a DNSSEC-validated lookup
 *	      and the TLSA field values (RFC 6698, RFC 7218 mnemonics).
 *
 * DESCRIPTION
 *	backend-auth (asynchronous lookups for the daemon), ca-tools (synchronous lookups that
 *	confirm what was published) and devices (owner keys, device identities) all judge TLSA
 *	answers. They share one verdict vocabulary and one set of TLSA numbers, defined here
 *	because common/ is the one layer all of them may include (tests/lint/layers.sh).
 *
 *	The verdict keeps backend-auth's names (enum da_status, DA_*): the resolver is where it
 *	was first defined, and the daemon, the client and the tests use those names. Only
 *	DA_SECURE authenticates anything (DESIGN.md trust rule 1).
 */
#ifndef DJ_COMMON_DJ_DNS_H
#define DJ_COMMON_DJ_DNS_H

#define DJ_DNS_T_TLSA 52		/* RFC 6698 §7.1 */

/* TLSA certificate usage, RFC 6698 §2.1.1 (RFC 7218 names) */
#define DJ_TLSA_USAGE_PKIX_TA 0
#define DJ_TLSA_USAGE_PKIX_EE 1
#define DJ_TLSA_USAGE_DANE_TA 2
#define DJ_TLSA_USAGE_DANE_EE 3
#define DJ_TLSA_USAGE_MAX DJ_TLSA_USAGE_DANE_EE
/* TLSA selector, RFC 6698 §2.1.2 */
#define DJ_TLSA_SEL_CERT 0		/* the whole DER certificate */
#define DJ_TLSA_SEL_SPKI 1		/* its DER SubjectPublicKeyInfo */
#define DJ_TLSA_SEL_MAX DJ_TLSA_SEL_SPKI
/* TLSA matching type, RFC 6698 §2.1.3 */
#define DJ_TLSA_MT_FULL 0		/* the selected data itself */
#define DJ_TLSA_MT_SHA256 1
#define DJ_TLSA_MT_SHA512 2
#define DJ_TLSA_MT_MAX DJ_TLSA_MT_SHA512
#define DJ_TLSA_SHA256_LEN 32		/* association data of matching type 1 */
#define DJ_TLSA_SHA512_LEN 64		/* association data of matching type 2 */
#define DJ_TLSA_FIXED_LEN 3		/* usage, selector, matching type (RFC 6698 §2.1) */

/* The verdict of a lookup. Only DA_SECURE authenticates anything. */
enum da_status {
	DA_SECURE = 0,	    /* validated; usable records present */
	DA_NXDOMAIN = 1,    /* secure denial: the name does not exist */
	DA_NODATA = 2,	    /* secure denial: the name exists, the type does not */
	DA_UNUSABLE = 3,    /* secure, but no usable record (TLSA: no usage 2 or 3) */
	DA_INSECURE = 4,    /* no chain of trust to the answer (unsigned zone) */
	DA_BOGUS = 5,	    /* validation failed: wrong anchor, tampered or expired data */
	DA_TEMPFAIL = 6,    /* resolver failure, SERVFAIL, timeout: try again later */
};

/*! \brief A short name for a status ("secure", "nxdomain", ...). Never NULL. */
const char *da_status_str(enum da_status st);

#endif /* DJ_COMMON_DJ_DNS_H */
