/*
 * ca_joineui.c - JoinEUI prefixes to the names ChirpStack's JoinEUI lookup asks for
 *		  (ca_joineui.h has the mapping and why wildcards stop at one nibble).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ca-tools/ca_joineui.h"
#include "common/dj_err.h"

#define EUI_NIBBLES 16	/* an EUI-64 in hex */
#define NIBBLE_BITS 4

/* parse_prefix - "HEX16[/BITS]" into the value and the bit count */
static int parse_prefix(const char *s, uint64_t *val, unsigned *bits, char *err, size_t errlen)
{
	const char *slash = strchr(s, '/');
	size_t n = slash != NULL ? (size_t)(slash - s) : strlen(s);
	uint64_t v = 0;
	unsigned b = 64;

	if (n != EUI_NIBBLES) {
		dj_errbuf(err, errlen, "JoinEUI prefix '%.40s': expected 16 hex digits, optionally "
			  "/BITS", s);
		return DJ_EMALFORMED;
	}
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		unsigned d;

		if (c >= '0' && c <= '9')
			d = (unsigned)(c - '0');
		else if (c >= 'a' && c <= 'f')
			d = (unsigned)(c - 'a' + 10);
		else if (c >= 'A' && c <= 'F')
			d = (unsigned)(c - 'A' + 10);
		else {
			dj_errbuf(err, errlen, "JoinEUI prefix '%.40s': '%c' is not a hex digit", s,
				  c);
			return DJ_EMALFORMED;
		}
		v = v << NIBBLE_BITS | d;
	}
	if (slash != NULL) {
		char *end;
		unsigned long l;

		if (slash[1] < '0' || slash[1] > '9') {
			dj_errbuf(err, errlen, "JoinEUI prefix '%.40s': /BITS must be a number", s);
			return DJ_EMALFORMED;
		}
		l = strtoul(slash + 1, &end, 10);
		if (*end != '\0' || l > 64) {
			dj_errbuf(err, errlen, "JoinEUI prefix '%.40s': /BITS must be a number from "
				  "%d to 64", s, CA_JOINEUI_BITS_MIN);
			return *end != '\0' ? DJ_EMALFORMED : DJ_ERANGE;
		}
		b = (unsigned)l;
	}
	if (b < CA_JOINEUI_BITS_MIN) {
		dj_errbuf(err, errlen, "JoinEUI prefix '%.40s': /%u is too wide: a certificate "
			  "wildcard covers one nibble label, so /%u would need 2^%u names (at "
			  "most %d: /%d or longer)", s, b, b, 60 - b, CA_JOINEUI_NAMES_MAX,
			  CA_JOINEUI_BITS_MIN);
		return DJ_ERANGE;
	}
	if (b < 64 && (v & ((UINT64_C(1) << (64 - b)) - 1)) != 0) {
		dj_errbuf(err, errlen, "JoinEUI prefix '%.40s': sets bits beyond its /%u", s, b);
		return DJ_EMALFORMED;
	}
	*val = v;
	*bits = b;
	return DJ_EOK;
}

/* nibble_name - the name of \p v's top 16 - \p skip nibbles, least significant first, with
 * "*." in place of the skipped (lowest) nibble when \p skip is 1 */
static int nibble_name(uint64_t v, unsigned skip, const char *suffix, char *out, char *err,
		       size_t errlen)
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0;
	int n;

	if (skip == 1) {
		memcpy(out, "*.", 2);
		o = 2;
	}
	for (unsigned i = skip; i < EUI_NIBBLES; i++) {
		out[o++] = hex[(v >> (NIBBLE_BITS * i)) & 0xf];
		out[o++] = '.';
	}
	n = snprintf(out + o, CA_NAME_BUF - o, "%s", suffix);
	if (n < 0 || (size_t)n >= CA_NAME_BUF - o || o + (size_t)n > CA_NAME_MAX + 1) {
		dj_errbuf(err, errlen, "JoinEUI names under '%.80s' are longer than %d characters",
			  suffix, CA_NAME_MAX);
		return DJ_EMALFORMED;
	}
	return DJ_EOK;
}

int ca_joineui_names(const char *prefix, const char *suffix, struct ca_joineui_names *out,
		     char *err, size_t errlen)
{
	char abs[CA_NAME_BUF];
	struct ca_joineui_names r = { 0, NULL };
	uint64_t v;
	unsigned bits, skip, count;
	int rc;

	rc = parse_prefix(prefix, &v, &bits, err, errlen);
	if (rc != DJ_EOK)
		return rc;
	rc = ca_name_absolute(suffix, abs, err, errlen);
	if (rc != DJ_EOK)
		return rc;
	/* /61..64: spell every nibble (2^(64-bits) names); /52..60: wildcard the last one */
	skip = bits > 60 ? 0 : 1;
	count = bits > 60 ? 1u << (64 - bits) : 1u << (60 - bits);
	r.v = calloc(count, sizeof(*r.v));
	if (r.v == NULL)
		return DJ_ENOMEM;
	for (unsigned i = 0; i < count; i++) {
		uint64_t each = v | (uint64_t)i << (skip * NIBBLE_BITS);

		rc = nibble_name(each, skip, abs, r.v[i], err, errlen);
		if (rc != DJ_EOK) {
			free(r.v);
			return rc;
		}
		r.n = i + 1;
	}
	*out = r;
	return DJ_EOK;
}

void ca_joineui_names_clear(struct ca_joineui_names *n)
{
	if (n == NULL)
		return;
	free(n->v);
	n->v = NULL;
	n->n = 0;
}
