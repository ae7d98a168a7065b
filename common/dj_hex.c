/*
 * dj_hex.c - hexadecimal text <-> bytes.
 */
#include <stdbool.h>
#include <string.h>

#include "common/dj_err.h"
#include "common/dj_hex.h"

/*
 * hexval - what each byte is as a hex digit: 0x10 | its value for 0-9, a-f and A-F, 0 for any other
 * byte. A text is checked with one AND per character (the 0x10 bit survives only when every
 * character is a digit) and decoded with two loads per byte, no branch per character.
 */
#define HEX_OK 0x10
static const uint8_t hexval[256] = {
	['0'] = 0x10, ['1'] = 0x11, ['2'] = 0x12, ['3'] = 0x13, ['4'] = 0x14,
	['5'] = 0x15, ['6'] = 0x16, ['7'] = 0x17, ['8'] = 0x18, ['9'] = 0x19,
	['a'] = 0x1a, ['b'] = 0x1b, ['c'] = 0x1c, ['d'] = 0x1d, ['e'] = 0x1e, ['f'] = 0x1f,
	['A'] = 0x1a, ['B'] = 0x1b, ['C'] = 0x1c, ['D'] = 0x1d, ['E'] = 0x1e, ['F'] = 0x1f,
};

/* hex_pairs - the two lowercase digits of every byte value, at 2 * value */
static const char hex_pairs[2 * 256 + 1] =
	"000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
	"202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f"
	"404142434445464748494a4b4c4d4e4f505152535455565758595a5b5c5d5e5f"
	"606162636465666768696a6b6c6d6e6f707172737475767778797a7b7c7d7e7f"
	"808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f"
	"a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf"
	"c0c1c2c3c4c5c6c7c8c9cacbcccdcecfd0d1d2d3d4d5d6d7d8d9dadbdcdddedf"
	"e0e1e2e3e4e5e6e7e8e9eaebecedeeeff0f1f2f3f4f5f6f7f8f9fafbfcfdfeff";

/* digits_ok - whether all n bytes at s are hex digits */
static bool digits_ok(const char *s, size_t n)
{
	unsigned acc = HEX_OK;

	for (size_t i = 0; i < n; i++)
		acc &= hexval[(unsigned char)s[i]];
	return acc != 0;
}

/* decode - n checked digit pairs at s into n bytes at out */
static void decode(const char *s, size_t n, uint8_t *out)
{
	const unsigned char *u = (const unsigned char *)s;

	for (size_t i = 0; i < n; i++)
		out[i] = (uint8_t)(hexval[u[2 * i]] << 4 | (hexval[u[2 * i + 1]] & 0x0f));
}

/* skip_prefix - s past an "0x"/"0X" prefix, n shortened to match */
static const char *skip_prefix(const char *s, size_t *n)
{
	if (*n >= 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		*n -= 2;
		return s + 2;
	}
	return s;
}

int dj_hex_parse_n(const char *text, size_t n, uint8_t *out, size_t cap, size_t *out_len)
{
	if (text == NULL)
		return DJ_EMALFORMED;
	text = skip_prefix(text, &n);
	if (n % 2 != 0 || n / 2 > cap || !digits_ok(text, n))
		return DJ_EMALFORMED;
	decode(text, n / 2, out);	/* checked first: out is untouched on failure */
	*out_len = n / 2;
	return DJ_EOK;
}

int dj_hex_parse_var(const char *text, uint8_t *out, size_t cap, size_t *out_len)
{
	if (text == NULL)
		return DJ_EMALFORMED;
	return dj_hex_parse_n(text, strlen(text), out, cap, out_len);
}

/* dj_hex_parse - the text is checked whole before a byte of out is written, so nothing is
 * decoded into a temporary buffer (that then would need a wipe: it may be a key) */
int dj_hex_parse(const char *text, uint8_t *out, size_t len)
{
	size_t n;

	if (len > DJ_HEX_PARSE_MAX)
		return DJ_EINVAL;
	if (text == NULL)
		return DJ_EMALFORMED;
	n = strlen(text);
	text = skip_prefix(text, &n);
	if (n != 2 * len || !digits_ok(text, n))
		return DJ_EMALFORMED;
	decode(text, len, out);
	return DJ_EOK;
}

/* dj_hex_format - two bytes per round (the loop's own count and test once per four digits) */
void dj_hex_format(const uint8_t *in, size_t len, char *out)
{
	size_t i = 0;

	for (; i + 2 <= len; i += 2) {
		memcpy(out + 2 * i, hex_pairs + 2 * in[i], 2);
		memcpy(out + 2 * i + 2, hex_pairs + 2 * in[i + 1], 2);
	}
	if (i < len)
		memcpy(out + 2 * i, hex_pairs + 2 * in[i], 2);
	out[2 * len] = '\0';
}

void dj_hex_format_upper(const uint8_t *in, size_t len, char *out)
{
	static const char digits[] = "0123456789ABCDEF";

	for (size_t i = 0; i < len; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 15];
	}
	out[2 * len] = '\0';
}

uint64_t dj_be_get(const uint8_t *in, size_t len)
{
	uint64_t v = 0;

	for (size_t i = 0; i < len; i++)
		v = v << 8 | in[i];
	return v;
}

void dj_be_put(uint64_t v, uint8_t *out, size_t len)
{
	for (size_t i = len; i-- > 0;) {
		out[i] = (uint8_t)v;
		v >>= 8;
	}
}
