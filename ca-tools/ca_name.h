/*
 * ca_name.h - DNS owner names for certificates and TLSA records.
 *
 * DESCRIPTION
 *	Checks the presentation form of a DNS name before it goes into a certificate SAN or a DNS
 *	update: labels of 1..63 octets, at most 253 characters without the final dot (RFC 1035
 *	§2.3.4, RFC 1123 §2.1). Letters, digits, '-' and '_' are allowed: '_' starts the DANE labels
 *	(`_443._tcp`, `_ns-client`) and the LoRaWAN labels (`_device`). There is no limit on the
 *	number of labels: a JoinEUI in reversed nibbles has 16 labels plus its suffix.
 *
 *	Builds the TLSA owner names of DESIGN.md: `_<port>._tcp.<host>.` (RFC 6698 §3),
 *	`_ns-client.<host>.` / `_as-client.<host>.` (DANCE client identity) and `_rootcert.<zone>.`.
 */
#ifndef DJ_CA_TOOLS_CA_NAME_H
#define DJ_CA_TOOLS_CA_NAME_H

#include <stddef.h>

#include "common/dj_compiler.h"

#define CA_NAME_MAX 253		/* RFC 1035 §2.3.4: 255 octets on the wire = 253 characters */
#define CA_LABEL_MAX 63		/* RFC 1035 §2.3.4 */
#define CA_NAME_BUF (CA_NAME_MAX + 2)	/* room for the final dot and the NUL */

/*!
 * \brief Check a DNS name in presentation form; one final dot is allowed.
 * \param err  receives a one-line reason on failure (may be NULL).
 * \retval DJ_EOK, DJ_EMALFORMED (empty, a label too long or empty, the name too long, a
 *         character outside [A-Za-z0-9_-]).
 */
int ca_name_check(const char *name, char *err, size_t errlen) DJ_MUSTCHECK;

/*!
 * \brief Copy a checked name into \p out (CA_NAME_BUF bytes) in absolute form (final dot).
 * \retval DJ_EOK, DJ_EMALFORMED (see ca_name_check)
 */
int ca_name_absolute(const char *name, char *out, char *err, size_t errlen) DJ_MUSTCHECK;

/*!
 * \brief `_<port>._tcp.<host>.` into \p out (CA_NAME_BUF bytes).
 * \retval DJ_EOK, DJ_EMALFORMED (bad host, or the result is too long), DJ_ERANGE (port 0)
 */
int ca_name_server(const char *host, unsigned port, char *out, char *err, size_t errlen)
	DJ_MUSTCHECK;

/*!
 * \brief `_<role>-client.<host>.` into \p out; \p role is "ns" or "as".
 * \retval DJ_EOK, DJ_EINVAL (unknown role), DJ_EMALFORMED
 */
int ca_name_client(const char *role, const char *host, char *out, char *err, size_t errlen)
	DJ_MUSTCHECK;

/*!
 * \brief `_rootcert.<zone>.` into \p out.
 * \retval DJ_EOK, DJ_EMALFORMED
 */
int ca_name_rootcert(const char *zone, char *out, char *err, size_t errlen) DJ_MUSTCHECK;

/*! \brief Whether \p name is \p zone or below it (both absolute or both relative; case-blind). */
int ca_name_in_zone(const char *name, const char *zone);

#endif /* DJ_CA_TOOLS_CA_NAME_H */
