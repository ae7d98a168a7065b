/*
 * dj_hex.c - hexadecimal text <-> bytes.
 */
#include <string.h>

#include <openssl/crypto.h>

#include "common/dj_err.h"
#include "common/dj_hex.h"

/* nibble - value of one hex digit, or -1 */
static int nibble(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int dj_hex_parse_var(const char *text, uint8_t *out, size_t cap, size_t *out_len)
{
	size_t n, i;

	if (text == NULL)
		return DJ_EMALFORMED;
	if (text[0] == '0' && (text[1] == 'x' || text[1] == 'X'))
		text += 2;
	n = strlen(text);
	if (n % 2 != 0 || n / 2 > cap)
		return DJ_EMALFORMED;
	for (i = 0; i < n; i++)
		if (nibble(text[i]) < 0)
			return DJ_EMALFORMED;
	for (i = 0; i < n / 2; i++)
		out[i] = (uint8_t)(nibble(text[2 * i]) << 4 | nibble(text[2 * i + 1]));
	*out_len = n / 2;
	return DJ_EOK;
}

int dj_hex_parse(const char *text, uint8_t *out, size_t len)
{
	uint8_t tmp[64];
	size_t got = 0;
	int ret;

	if (len > sizeof(tmp))
		return DJ_EINVAL;
	ret = dj_hex_parse_var(text, tmp, len, &got);
	if (ret == DJ_EOK && got != len)
		ret = DJ_EMALFORMED;
	if (ret == DJ_EOK)
		memcpy(out, tmp, len);
	OPENSSL_cleanse(tmp, sizeof(tmp)); /* may hold a key */
	return ret;
}

/* format - shared body of the two formatters */
static void format(const uint8_t *in, size_t len, char *out, const char *digits)
{
	for (size_t i = 0; i < len; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 15];
	}
	out[2 * len] = '\0';
}

void dj_hex_format(const uint8_t *in, size_t len, char *out)
{
	format(in, len, out, "0123456789abcdef");
}

void dj_hex_format_upper(const uint8_t *in, size_t len, char *out)
{
	format(in, len, out, "0123456789ABCDEF");
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
