/*
 * ca_joineui.h - the DNS names of JoinEUIs, as a network server looks a Join Server up.
 *
 * DESCRIPTION
 *	ChirpStack's JoinEUI resolution (and TS002 §19's JoinEUI NAPTR) turn a JoinEUI into a name
 *	by writing its 16 hex digits in lower case, least significant first, one label each, then
 *	appending a suffix: 70b3d57ed0000001 with "joineuis.lora-alliance.org" becomes
 *	"1.0.0.0.0.0.0.d.e.7.5.d.3.b.0.7.joineuis.lora-alliance.org". ChirpStack then connects to
 *	https://<that name>:443/ and checks the server's certificate against that name (PKIX).
 *
 *	A prefix of the JoinEUI space becomes the names a certificate must carry to serve every
 *	JoinEUI in it. A PKIX wildcard covers exactly one label (RFC 6125 §6.4.3), that is the last
 *	nibble, so:
 *	  /64           one name;
 *	  /61 to /63    2^(64-BITS) names (the last nibble spelt out);
 *	  /60           one wildcard "*.<15 nibbles>.<suffix>";
 *	  /BITS < 60    2^(60-BITS) such wildcards (the free nibbles above the last spelt out),
 *	                at most CA_JOINEUI_NAMES_MAX names, i.e. BITS >= 52.
 *	The same names carry the A/AAAA and TLSA records (a DNS wildcard also answers for
 *	_443._tcp.<JoinEUI name>, RFC 4592).
 */
#ifndef DJ_CA_TOOLS_CA_JOINEUI_H
#define DJ_CA_TOOLS_CA_JOINEUI_H

#include <stddef.h>

#include "ca-tools/ca_name.h"
#include "common/dj_compiler.h"

#define CA_JOINEUI_NAMES_MAX 256	/* names one prefix may expand to (BITS >= 52) */
#define CA_JOINEUI_BITS_MIN 52

/* The names of one prefix, each absolute (final dot) in CA_NAME_BUF bytes. */
struct ca_joineui_names {
	size_t n;
	char (*v)[CA_NAME_BUF];	/* owned; free with ca_joineui_names_clear() */
};

/*!
 * \brief Expand "HEX16[/BITS]" (BITS 52..64, default 64) under \p suffix (a DNS name, final dot
 *        optional) into the names that cover it (see the file comment).
 * \param out  filled on success; release with ca_joineui_names_clear().
 * \param err  one line naming what is wrong, on failure.
 * \retval DJ_EOK, DJ_EMALFORMED (not 16 hex digits, bits that the prefix sets beyond BITS, a
 *         bad suffix, a name too long), DJ_ERANGE (BITS outside 52..64), DJ_ENOMEM
 */
int ca_joineui_names(const char *prefix, const char *suffix, struct ca_joineui_names *out,
		     char *err, size_t errlen) DJ_MUSTCHECK;

/*! \brief Free the names (zeroed structs allowed). */
void ca_joineui_names_clear(struct ca_joineui_names *n);

#endif /* DJ_CA_TOOLS_CA_JOINEUI_H */
