/*
 * dj_test.h - helpers shared by the CMocka unit tests. Include after <cmocka.h>.
 */
#ifndef DJ_TESTS_UNIT_DJ_TEST_H
#define DJ_TESTS_UNIT_DJ_TEST_H

#include <stddef.h>
#include <stdint.h>

#include "common/dj_err.h"
#include "common/dj_hex.h"
#include "lorawan/lw_crypto.h"

#define DJ_TEST_HEX_MAX 1024	/* longest fixture, in hex digits */

/*
 * DJ_TEST_MAIN_GROUP - the main() of a unit test program: run the listed CMUnitTest entries
 * as one group, between the group setup and teardown (NULL for none).
 */
#define DJ_TEST_MAIN_GROUP(group_setup, group_teardown, ...)                        \
	int main(void)                                                              \
	{                                                                           \
		const struct CMUnitTest tests[] = { __VA_ARGS__ };                  \
		return cmocka_run_group_tests(tests, group_setup, group_teardown);   \
	}

/* DJ_TEST_MAIN - DJ_TEST_MAIN_GROUP without a group setup or teardown */
#define DJ_TEST_MAIN(...) DJ_TEST_MAIN_GROUP(NULL, NULL, __VA_ARGS__)

/* unhex - decode a hex fixture (spaces ignored) into out; fails the test on bad input or overflow */
static inline size_t unhex(const char *s, uint8_t *out, size_t cap)
{
	char buf[DJ_TEST_HEX_MAX + 1];
	size_t n = 0, len = 0;

	for (; *s != '\0'; s++) {
		if (*s == ' ')
			continue;
		assert_true(n < DJ_TEST_HEX_MAX);
		buf[n++] = *s;
	}
	buf[n] = '\0';
	assert_int_equal(dj_hex_parse_var(buf, out, cap, &len), DJ_EOK);
	return len;
}

/* unhex_exact - decode and insist on exactly len bytes */
static inline void unhex_exact(const char *s, uint8_t *out, size_t len)
{
	assert_int_equal(unhex(s, out, len), len);
}

/* key_from_hex - a live lw_key from exactly LW_KEY_LEN bytes of hex */
static inline void key_from_hex(struct lw_key *key, const char *hex)
{
	uint8_t raw[LW_KEY_LEN];

	unhex_exact(hex, raw, LW_KEY_LEN);
	lw_key_set(key, raw);
}

/* cx_setup - CMocka group/test setup: a struct lw_crypto in *state */
static inline int cx_setup(void **state)
{
	struct lw_crypto *cx = NULL;

	if (lw_crypto_new(&cx) != DJ_EOK)
		return -1;
	*state = cx;
	return 0;
}

/* cx_teardown - frees what cx_setup made */
static inline int cx_teardown(void **state)
{
	lw_crypto_free(*state);
	return 0;
}

/* DJ_CX_TEST - a test entry whose *state is a fresh struct lw_crypto (cx_setup/cx_teardown) */
#define DJ_CX_TEST(fn) cmocka_unit_test_setup_teardown(fn, cx_setup, cx_teardown)

#endif /* DJ_TESTS_UNIT_DJ_TEST_H */
