/*
 * ca_lookup.h - DNSSEC-validated lookups (libunbound) to confirm what was published.
 *
 * DESCRIPTION
 *	After an update, danejoin-ca looks the RRset up again through a validating resolver and
 *	compares it with what it meant to publish. The answer is a verdict, not a bool (STYLE.md
 *	rule 4): secure, insecure or bogus, the rcode, the TTL, the rdata, and why it was bogus.
 *	Only a secure answer that holds exactly the expected rdata confirms an update (DESIGN.md
 *	trust rule 1).
 *
 *	The resolver trusts only the anchors of --ta-file (DS or DNSKEY lines) and, with a stub,
 *	asks the given authoritative server for the zone directly (docs: recipes/dnssec-test-zone).
 */
#ifndef DJ_CA_TOOLS_CA_LOOKUP_H
#define DJ_CA_TOOLS_CA_LOOKUP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/dj_compiler.h"
#include "common/dj_dns.h"	/* enum da_status: one verdict vocabulary */

#define CA_RRSET_MAX 64		/* records per RRset we handle in one change */
#define CA_WHY_MAX 256

/* A set of rdata in wire form (no length prefix). Owned: free with ca_rdset_clear(). */
struct ca_rdset {
	size_t n;
	uint8_t *data[CA_RRSET_MAX];
	size_t len[CA_RRSET_MAX];
};

struct ca_verdict {
	enum da_status status;		/* DA_SECURE, DA_INSECURE or DA_BOGUS (the rcode says
					 * whether a secure answer is a denial) */
	int rcode;			/* DNS rcode of the answer */
	uint32_t ttl;
	bool matches;			/* the rdata are exactly the expected set */
	struct ca_rdset rd;		/* what the answer held */
	char why[CA_WHY_MAX];		/* why bogus, or what did not match */
};

/* Where and how to look up. Strings are borrowed. */
struct ca_lookup_props {
	const char *ta_file;		/* trust anchors (DS/DNSKEY zone-file lines) */
	const char *stub_zone;		/* with stub_addr: send queries for this zone there */
	const char *stub_addr;		/* "IP@PORT" */
};

/*! \brief Add a copy of \p len bytes to \p s. \retval DJ_EOK, DJ_ENOMEM, DJ_ENOSPC (full) */
int ca_rdset_add(struct ca_rdset *s, const uint8_t *data, size_t len) DJ_MUSTCHECK;

/*! \brief Whether \p s holds \p data (bytewise). */
bool ca_rdset_has(const struct ca_rdset *s, const uint8_t *data, size_t len);

/*! \brief Whether two sets hold the same rdata (order does not matter). */
bool ca_rdset_equal(const struct ca_rdset *a, const struct ca_rdset *b);

/*! \brief Free the rdata of \p s and empty it. */
void ca_rdset_clear(struct ca_rdset *s);

/*!
 * \brief Look \p name / \p type up with validation, once. \p out is filled (clear it with
 *        ca_verdict_clear) and matches is set against \p expect if not NULL.
 * \retval DJ_EOK (a verdict, whatever it says), DJ_ECONFIG (bad trust anchors or stub),
 *         DJ_EAGAIN (the resolver failed: no answer), DJ_ENOMEM
 */
int ca_lookup(const struct ca_lookup_props *p, const char *name, uint16_t type,
	      const struct ca_rdset *expect, struct ca_verdict *out) DJ_MUSTCHECK;

/*!
 * \brief ca_lookup() repeated every \p interval_ms until a secure answer matches \p expect or
 *        \p timeout_ms passed (the server may take a moment to sign). The last verdict is kept.
 */
int ca_lookup_until(const struct ca_lookup_props *p, const char *name, uint16_t type,
		    const struct ca_rdset *expect, unsigned timeout_ms, struct ca_verdict *out)
	DJ_MUSTCHECK;

/*! \brief Free what \p v holds. */
void ca_verdict_clear(struct ca_verdict *v);

#endif /* DJ_CA_TOOLS_CA_LOOKUP_H */
