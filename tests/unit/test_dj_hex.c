/*
 * test_dj_hex.c - hex parsing as network servers send it (vectors.md interop facts: an optional
 * 0x prefix, either case), and the big-endian helpers.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "common/dj_err.h"
#include "common/dj_hex.h"
#include "dj_test.h"

static void test_parse_forms(void **state)
{
	static const char *const ok[] = { "0102aBcD", "0x0102abcd", "0X0102ABCD", "0102ABCD" };
	static const uint8_t want[4] = { 0x01, 0x02, 0xab, 0xcd };
	uint8_t out[4];

	(void)state;
	for (size_t i = 0; i < DJ_ARRAY_LEN(ok); i++) {
		memset(out, 0, sizeof(out));
		assert_int_equal(dj_hex_parse(ok[i], out, 4), DJ_EOK);
		assert_memory_equal(out, want, 4);
	}
}

static void test_parse_refusals(void **state)
{
	static const char *const bad[] = { "", "0x", "010", "0102abc", "0102abcdef", "01 2abcd",
					   "0g02abcd", "x0102abc", "0x0x0102", "+102abcd" };
	uint8_t out[4] = { 0xee, 0xee, 0xee, 0xee };

	(void)state;
	for (size_t i = 0; i < DJ_ARRAY_LEN(bad); i++) {
		assert_int_equal(dj_hex_parse(bad[i], out, 4), DJ_EMALFORMED);
		assert_int_equal(out[0], 0xee);	/* untouched on failure */
	}
	assert_int_equal(dj_hex_parse(NULL, out, 4), DJ_EMALFORMED);
}

static void test_var_and_format(void **state)
{
	uint8_t out[8];
	char txt[17];
	size_t n = 99;

	(void)state;
	assert_int_equal(dj_hex_parse_var("0xDEADbeef", out, sizeof(out), &n), DJ_EOK);
	assert_int_equal(n, 4);
	dj_hex_format(out, n, txt);
	assert_string_equal(txt, "deadbeef");
	dj_hex_format_upper(out, n, txt);
	assert_string_equal(txt, "DEADBEEF");
	assert_int_equal(dj_hex_parse_var("00112233445566778899", out, sizeof(out), &n),
			 DJ_EMALFORMED);	/* longer than the room */
	assert_int_equal(dj_be_get((const uint8_t *)"\x01\x02\x03", 3), 0x010203);
	dj_be_put(0xa1b2c3, out, 3);
	assert_memory_equal(out, "\xa1\xb2\xc3", 3);
}

/* ref_nibble - the digit's value by the definition, or -1 (what dj_hex's table must agree with) */
static int ref_nibble(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Every byte value goes through both formatters and back, in both digit orders. */
static void test_every_byte_round_trips(void **state)
{
	uint8_t in[256], out[256];
	char txt[2 * 256 + 1], ref[3];
	size_t n = 0;

	(void)state;
	for (size_t i = 0; i < sizeof(in); i++)
		in[i] = (uint8_t)i;
	dj_hex_format(in, sizeof(in), txt);
	assert_int_equal(strlen(txt), 2 * sizeof(in));
	for (size_t i = 0; i < sizeof(in); i++) {
		snprintf(ref, sizeof(ref), "%02x", (unsigned)i);
		assert_memory_equal(txt + 2 * i, ref, 2);
	}
	memset(out, 0, sizeof(out));
	assert_int_equal(dj_hex_parse_var(txt, out, sizeof(out), &n), DJ_EOK);
	assert_int_equal(n, sizeof(in));
	assert_memory_equal(out, in, sizeof(in));
	dj_hex_format_upper(in, sizeof(in), txt);
	for (size_t i = 0; i < sizeof(in); i++) {
		snprintf(ref, sizeof(ref), "%02X", (unsigned)i);
		assert_memory_equal(txt + 2 * i, ref, 2);
	}
	memset(out, 0, sizeof(out));
	assert_int_equal(dj_hex_parse_n(txt, strlen(txt), out, sizeof(out), &n), DJ_EOK);
	assert_memory_equal(out, in, sizeof(in));
	for (size_t i = 0; i < sizeof(in); i++) {
		snprintf(ref, sizeof(ref), "%02x", (unsigned)i);
		assert_int_equal(dj_hex_parse(ref, out, 1), DJ_EOK);
		assert_int_equal(out[0], i);
	}
	/* every length up to 7, odd ones too, ends where it should */
	for (size_t len = 0; len < 8; len++) {
		memset(txt, '#', sizeof(txt));
		dj_hex_format(in + 0xf8, len, txt);
		assert_int_equal(strlen(txt), 2 * len);
		assert_memory_equal(txt, "f8f9fafbfcfdfeff", 2 * len);
		assert_int_equal(txt[2 * len + 1], '#');
	}
}

/* Every character that is not a hex digit is refused, in either position of a pair, with out
 * untouched; every digit is taken with its value. */
static void test_every_char(void **state)
{
	uint8_t out[2];
	size_t n = 0;
	char txt[5];

	(void)state;
	for (int c = 1; c < 256; c++) {
		for (int pos = 0; pos < 4; pos++) {
			memcpy(txt, "a5F0", 5);
			txt[pos] = (char)c;
			out[0] = out[1] = 0xee;
			if (ref_nibble(c) < 0) {
				assert_int_equal(dj_hex_parse(txt, out, 2), DJ_EMALFORMED);
				assert_int_equal(dj_hex_parse_n(txt, 4, out, 2, &n), DJ_EMALFORMED);
				assert_int_equal(dj_hex_parse_var(txt, out, 2, &n), DJ_EMALFORMED);
				assert_int_equal(out[0], 0xee);
				assert_int_equal(out[1], 0xee);
				continue;
			}
			assert_int_equal(dj_hex_parse(txt, out, 2), DJ_EOK);
			assert_int_equal(pos % 2 == 0 ? out[pos / 2] >> 4 : out[pos / 2] & 15,
					 ref_nibble(c));
		}
	}
}

/* dj_hex_parse_n reads exactly n characters: what follows is not looked at, a NUL among them
 * is refused, the prefix counts in n. */
static void test_parse_n(void **state)
{
	uint8_t out[4] = { 0xee, 0xee, 0xee, 0xee };
	size_t n = 99;

	(void)state;
	assert_int_equal(dj_hex_parse_n("0x0102zz", 6, out, sizeof(out), &n), DJ_EOK);
	assert_int_equal(n, 2);
	assert_memory_equal(out, "\x01\x02", 2);
	assert_int_equal(dj_hex_parse_n("0x", 2, out, sizeof(out), &n), DJ_EOK);
	assert_int_equal(n, 0);
	memset(out, 0xee, sizeof(out));
	assert_int_equal(dj_hex_parse_n("01\0002", 4, out, sizeof(out), &n), DJ_EMALFORMED);
	assert_int_equal(dj_hex_parse_n("0x0102", 5, out, sizeof(out), &n), DJ_EMALFORMED);
	assert_int_equal(dj_hex_parse_n("0", 1, out, sizeof(out), &n), DJ_EMALFORMED);
	assert_int_equal(dj_hex_parse_n("0102030405", 10, out, sizeof(out), &n), DJ_EMALFORMED);
	assert_int_equal(dj_hex_parse_n(NULL, 2, out, sizeof(out), &n), DJ_EMALFORMED);
	assert_int_equal(out[0], 0xee);
	/* more than dj_hex_parse takes: a caller's error, not the text's */
	assert_int_equal(dj_hex_parse("00", out, DJ_HEX_PARSE_MAX + 1), DJ_EINVAL);
}

DJ_TEST_MAIN(
	cmocka_unit_test(test_parse_forms),
	cmocka_unit_test(test_parse_refusals),
	cmocka_unit_test(test_var_and_format),
	cmocka_unit_test(test_every_byte_round_trips),
	cmocka_unit_test(test_every_char),
	cmocka_unit_test(test_parse_n))
