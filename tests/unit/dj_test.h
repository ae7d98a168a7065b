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

#endif /* DJ_TESTS_UNIT_DJ_TEST_H */
