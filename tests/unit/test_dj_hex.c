/*
 * test_dj_hex.c - hex parsing as network servers send it (vectors.md interop facts: an optional
 * 0x prefix, either case), and the big-endian helpers.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
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

DJ_TEST_MAIN(
	cmocka_unit_test(test_parse_forms),
	cmocka_unit_test(test_parse_refusals),
	cmocka_unit_test(test_var_and_format))
