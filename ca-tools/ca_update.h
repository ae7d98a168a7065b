/*
 * ca_update.h - RFC 2136 dynamic updates with TSIG (RFC 8945), guarded by prerequisites.
 *
 * DESCRIPTION
 *	One change touches one RRset (one owner name, one type) and is sent as one UPDATE message,
 *	so the server applies all of it or none of it. The message carries prerequisites
 *	(RFC 2136 §2.4) that state the RRset as we read it just before: "RRset exists (value
 *	dependent)" with every record we saw, or "RRset does not exist" when we saw none. If anyone
 *	changed the RRset in between, the server answers NXRRSET or YXRRSET and changes nothing:
 *	a concurrent change is detected, never overwritten.
 *
 *	The caller may state the expected RRset itself (--expect / --expect-none); the prerequisite
 *	then checks the caller's belief instead of our read.
 */
#ifndef DJ_CA_TOOLS_CA_UPDATE_H
#define DJ_CA_TOOLS_CA_UPDATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <ldns/ldns.h>

#include "ca-tools/ca_lookup.h"
#include "ca-tools/ca_name.h"
#include "common/dj_compiler.h"

#define CA_DNS_PORT 53
#define CA_TIMEOUT_MS_DEFAULT 5000
#define CA_TSIG_SECRET_MAX 256

/* A TSIG key: "[ALG:]NAME:SECRET" as knsupdate -y takes it. Wipe with ca_tsig_clear(). */
struct ca_tsig {
	char alg[32];		/* "hmac-sha256." or "hmac-sha512." (what ldns can sign with) */
	char name[CA_NAME_BUF];	/* absolute */
	char secret[CA_TSIG_SECRET_MAX];	/* base64 */
};

/* The authoritative server to update. */
struct ca_server {
	char addr[64];		/* IPv4 or IPv6 literal */
	uint16_t port;
	unsigned timeout_ms;
};

enum ca_op {
	CA_OP_ADD,		/* add the records to the RRset */
	CA_OP_REPLACE,		/* the RRset becomes exactly the records */
	CA_OP_DELETE,		/* remove the records from the RRset */
};

/* One change. Everything is borrowed. */
struct ca_change {
	enum ca_op op;
	const char *zone;		/* absolute zone name */
	const ldns_rr_list *rrs;	/* one owner and type (ca_rr_parse) */
	const ldns_rr_list *expect;	/* if expect_given: the RRset the caller believes is there */
	bool expect_given;
};

struct ca_update_result {
	bool changed;			/* the update section was not empty */
	int rcode;			/* the server's rcode (0 when none) */
	struct ca_rdset before;		/* the RRset the prerequisites asserted */
	struct ca_rdset after;		/* the RRset after the change (for ca_lookup) */
};

/*!
 * \brief Read a TSIG key file ("hmac-sha256:name:secret", one line, the file should be 0600).
 * \retval DJ_EOK, DJ_ENOENT, DJ_EMALFORMED, DJ_EINVAL (an algorithm we cannot sign with)
 */
int ca_tsig_read(const char *path, struct ca_tsig *out, char *err, size_t errlen) DJ_MUSTCHECK;

/*! \brief Wipe a TSIG key. */
void ca_tsig_clear(struct ca_tsig *t);

/*! \brief Parse "IP[@PORT]". \retval DJ_EOK, DJ_EMALFORMED */
int ca_server_parse(const char *text, struct ca_server *out, char *err, size_t errlen)
	DJ_MUSTCHECK;

/*!
 * \brief Parse zone-file lines ("OWNER [TTL] [IN] TYPE RDATA", absolute owners) into one RRset.
 * \param out      the caller's; free with ldns_rr_list_deep_free().
 * \retval DJ_EOK, DJ_EMALFORMED (a bad line, a bad name, owners or types that differ, class not IN)
 */
int ca_rr_parse(const char *const *lines, size_t n, ldns_rr_list **out, char *err, size_t errlen)
	DJ_MUSTCHECK;

/*!
 * \brief Read the RRset \p owner / \p type from the server (TCP, no recursion).
 * \param out  the caller's (maybe empty); \p ttl the RRset's TTL (0 if empty).
 * \retval DJ_EOK, DJ_EAGAIN (no answer), DJ_EACCES (REFUSED: not authoritative), DJ_EIO
 */
int ca_update_read(const struct ca_server *srv, const char *owner, uint16_t type,
		   ldns_rr_list **out, uint32_t *ttl, char *err, size_t errlen) DJ_MUSTCHECK;

/*!
 * \brief An ldns resolver for exactly one server: TCP, one try, srv's timeout, TSIG when \p tsig
 *        is not NULL (the secret is copied into ldns). Free with ca_resolver_free(), which
 *        wipes that copy. \retval DJ_EOK, DJ_ENOMEM, DJ_EINVAL (bad address)
 */
int ca_resolver_new(const struct ca_server *srv, const struct ca_tsig *tsig,
		    ldns_resolver **out) DJ_MUSTCHECK;
void ca_resolver_free(ldns_resolver *r);

/*!
 * \brief Apply one change as one TSIG-signed UPDATE guarded by prerequisites.
 * \param res  filled on DJ_EOK (and rcode on failure); clear with ca_update_result_clear().
 * \retval DJ_EOK          the server applied it (or there was nothing to change).
 * \retval DJ_ECONFLICT    a prerequisite failed (YXRRSET, NXRRSET): someone else changed it.
 * \retval DJ_EACCES       the server refused: TSIG (NOTAUTH, BADSIG/BADKEY/BADTIME), REFUSED.
 * \retval DJ_EAGAIN       no answer (server down, timeout).
 * \retval DJ_EINVAL       a record outside the zone, or NOTZONE.
 * \retval DJ_EIO          another rcode.
 */
int ca_update_apply(const struct ca_server *srv, const struct ca_tsig *tsig,
		    const struct ca_change *c, struct ca_update_result *res, char *err,
		    size_t errlen) DJ_MUSTCHECK;

/*!
 * \brief Give the UPDATE \p q a random ID, TSIG-sign it with \p r's key and send it;
 *        ldns_send() verifies the answer's TSIG. *\p st is ldns_send()'s status and *\p a its
 *        answer (NULL when none came; the caller frees it).
 * \retval DJ_EOK     sent (look at *\p st and *\p a), DJ_EINVAL cannot sign (bad key?)
 */
int ca_update_sign_send(ldns_resolver *r, ldns_pkt *q, ldns_pkt **a, ldns_status *st, char *err,
			size_t errlen) DJ_MUSTCHECK;

/*!
 * \brief The error code and message for an UPDATE answer's \p rcode other than NOERROR, in
 *        \p zone: the mapping ca_update_apply() documents. Shared by every sender of UPDATEs.
 */
int ca_update_rcode_error(int rcode, const char *zone, char *err, size_t errlen) DJ_MUSTCHECK;

/*! \brief Free what \p r holds. */
void ca_update_result_clear(struct ca_update_result *r);

/*! \brief Add the wire rdata of every record of \p l to \p s. \retval DJ_EOK, DJ_ENOMEM, DJ_ENOSPC */
int ca_rdset_from_list(struct ca_rdset *s, const ldns_rr_list *l) DJ_MUSTCHECK;

#endif /* DJ_CA_TOOLS_CA_UPDATE_H */
