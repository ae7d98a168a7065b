/*
 * test_bi_kek.c - KeyEnvelopes: RFC 3394 vectors (§4.1 with a 128-bit KEK, §4.3 with a 256-bit
 * KEK), round trips, and the refusals of bi_kek_open (wrong KEK, wrong label, plaintext).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/rand.h>

#include "dj_test.h"

#include "bi/bi_kek.h"
#include "common/dj_err.h"

#define KEK128 "000102030405060708090A0B0C0D0E0F"
#define KEK256 "000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F"
#define KEYDATA "00112233445566778899AABBCCDDEEFF"
#define WRAP_4_1 "1FA68B0A8112B447AEF34BD8FB5A7B829D3E862371D2CFE5"	/* RFC 3394 §4.1 */
#define WRAP_4_3 "64E8C3F9CE0F5BA263E9777905818A2A93C8191E7D6E8AE7"	/* RFC 3394 §4.3 */
#define WRAPPED_LEN 24

/* make_kek - a KEK from hex, failing the test on error */
static struct bi_kek *make_kek(const char *label, const char *hex)
{
	uint8_t k[32];
	size_t n = unhex(hex, k, sizeof(k));
	struct bi_kek *kek = NULL;

	assert_int_equal(bi_kek_new(label, k, n, &kek), DJ_EOK);
	assert_non_null(kek);
	return kek;
}

/* seal_keydata - KEYDATA (raw bytes in data, live in key) sealed into env under kek (NULL: plaintext) */
static void seal_keydata(struct bi_kek *kek, struct lw_key *key, struct bi_key_envelope *env,
			 uint8_t data[LW_KEY_LEN])
{
	unhex_exact(KEYDATA, data, LW_KEY_LEN);
	lw_key_set(key, data);
	memset(env, 0, sizeof(*env));
	assert_int_equal(bi_kek_envelope(kek, key, env), DJ_EOK);
}

/* expect_env - env is present, under label, and carries exactly len bytes of want */
static void expect_env(const struct bi_key_envelope *env, const char *label, const uint8_t *want,
		       size_t len)
{
	assert_true(env->present);
	assert_string_equal(env->kek_label, label);
	assert_int_equal(env->aes_key_len, len);
	assert_memory_equal(env->aes_key, want, len);
}

/* vector - wrap KEYDATA under kek_hex and compare with want, then open it again */
static void vector(const char *kek_hex, const char *want_hex)
{
	struct bi_kek *kek = make_kek("kek-1", kek_hex);
	struct bi_key_envelope env;
	struct lw_key key;
	uint8_t raw[LW_KEY_LEN], want[WRAPPED_LEN], data[LW_KEY_LEN];

	unhex_exact(want_hex, want, sizeof(want));
	seal_keydata(kek, &key, &env, data);
	expect_env(&env, "kek-1", want, WRAPPED_LEN);
	assert_int_equal(bi_kek_open(kek, &env, false, raw), DJ_EOK);
	assert_memory_equal(raw, data, LW_KEY_LEN);
	lw_key_wipe(&key);
	bi_kek_free(kek);
}

static void test_rfc3394_4_1(void **state)
{
	(void)state;
	vector(KEK128, WRAP_4_1);
}

static void test_rfc3394_4_3(void **state)
{
	(void)state;
	vector(KEK256, WRAP_4_3);
}

/* A well-formed envelope with the published ciphertext opens to the published key. */
static void test_open_published(void **state)
{
	struct bi_kek *kek = make_kek("nsA", KEK128);
	struct bi_key_envelope env = { .present = true, .kek_label = "nsA" };
	uint8_t raw[LW_KEY_LEN], data[LW_KEY_LEN];

	(void)state;
	env.aes_key_len = unhex(WRAP_4_1, env.aes_key, sizeof(env.aes_key));
	unhex_exact(KEYDATA, data, sizeof(data));
	assert_int_equal(bi_kek_open(kek, &env, false, raw), DJ_EOK);
	assert_memory_equal(raw, data, LW_KEY_LEN);
	assert_string_equal(bi_kek_label(kek), "nsA");
	bi_kek_free(kek);
}

/* two_keks - KEYDATA sealed under KEK a; KEK b is the wrong one to open it */
struct two_keks {
	struct bi_kek *a, *b;
	struct bi_key_envelope env;
	struct lw_key key;
	uint8_t data[LW_KEY_LEN], raw[LW_KEY_LEN];
};

static void two_keks_make(struct two_keks *t, const char *label_a, const char *label_b,
			  const char *hex_b)
{
	t->a = make_kek(label_a, KEK128);
	t->b = make_kek(label_b, hex_b);
	seal_keydata(t->a, &t->key, &t->env, t->data);
}

static void two_keks_free(struct two_keks *t)
{
	lw_key_wipe(&t->key);
	bi_kek_free(t->a);
	bi_kek_free(t->b);
}

static void test_wrong_kek(void **state)
{
	struct two_keks t;

	(void)state;
	two_keks_make(&t, "same", "same", "0f0e0d0c0b0a09080706050403020100");
	memset(t.raw, 0xee, sizeof(t.raw));
	assert_int_equal(bi_kek_open(t.b, &t.env, false, t.raw), DJ_EUNWRAP);
	assert_int_equal(t.raw[0], 0xee);	/* untouched on failure */
	/* a flipped bit fails the integrity check under the right KEK too */
	t.env.aes_key[5] ^= 1;
	assert_int_equal(bi_kek_open(t.a, &t.env, false, t.raw), DJ_EUNWRAP);
	two_keks_free(&t);
}

static void test_wrong_label(void **state)
{
	struct two_keks t;

	(void)state;
	two_keks_make(&t, "label-a", "label-b", KEK128);	/* same bytes, another label */
	assert_int_equal(bi_kek_open(t.b, &t.env, false, t.raw), DJ_EACCES);
	assert_int_equal(bi_kek_open(t.b, &t.env, true, t.raw), DJ_EACCES);
	/* a labelled envelope without a KEK to open it */
	assert_int_equal(bi_kek_open(NULL, &t.env, true, t.raw), DJ_EACCES);
	two_keks_free(&t);
}

static void test_plaintext(void **state)
{
	struct bi_kek *kek = make_kek("k", KEK128);
	struct bi_key_envelope env;
	struct lw_key key;
	uint8_t data[LW_KEY_LEN], raw[LW_KEY_LEN];

	(void)state;
	seal_keydata(NULL, &key, &env, data);
	expect_env(&env, "", data, LW_KEY_LEN);	/* in plain */
	/* refused unless the peer's policy allows plaintext, with or without a KEK at hand */
	assert_int_equal(bi_kek_open(kek, &env, false, raw), DJ_EACCES);
	assert_int_equal(bi_kek_open(NULL, &env, false, raw), DJ_EACCES);
	memset(raw, 0, sizeof(raw));
	assert_int_equal(bi_kek_open(NULL, &env, true, raw), DJ_EOK);
	assert_memory_equal(raw, data, LW_KEY_LEN);
	assert_int_equal(bi_kek_open(kek, &env, true, raw), DJ_EOK);
	/* a plaintext envelope of the wrong length */
	env.aes_key_len = WRAPPED_LEN;
	assert_int_equal(bi_kek_open(NULL, &env, true, raw), DJ_EMALFORMED);
	lw_key_wipe(&key);
	bi_kek_free(kek);
}

static void test_malformed_envelopes(void **state)
{
	struct bi_kek *kek = make_kek("k", KEK128);
	struct bi_key_envelope env = { .present = false };
	uint8_t raw[LW_KEY_LEN];

	(void)state;
	assert_int_equal(bi_kek_open(kek, &env, true, raw), DJ_EMALFORMED);
	assert_int_equal(bi_kek_open(kek, NULL, true, raw), DJ_EMALFORMED);
	/* labelled but not 24 bytes */
	env.present = true;
	strcpy(env.kek_label, "k");
	env.aes_key_len = unhex(WRAP_4_1, env.aes_key, sizeof(env.aes_key)) - 8;
	assert_int_equal(bi_kek_open(kek, &env, false, raw), DJ_EMALFORMED);
	env.aes_key_len = 0;
	assert_int_equal(bi_kek_open(kek, &env, false, raw), DJ_EMALFORMED);
	bi_kek_free(kek);
}

static void test_new_refusals(void **state)
{
	uint8_t k[33] = { 0 };
	struct bi_kek *kek = NULL;
	static const size_t bad_len[] = { 0, 8, 15, 17, 24, 31, 33 };
	char long_label[BI_KEK_LABEL_MAX + 1];

	(void)state;
	for (size_t i = 0; i < DJ_ARRAY_LEN(bad_len); i++) {
		assert_int_equal(bi_kek_new("x", k, bad_len[i], &kek), DJ_EINVAL);
		assert_null(kek);
	}
	assert_int_equal(bi_kek_new("", k, 16, &kek), DJ_EINVAL);
	assert_int_equal(bi_kek_new(NULL, k, 16, &kek), DJ_EINVAL);
	assert_int_equal(bi_kek_new("tab\tlabel", k, 16, &kek), DJ_EINVAL);
	assert_int_equal(bi_kek_new("x", NULL, 16, &kek), DJ_EINVAL);
	memset(long_label, 'a', sizeof(long_label) - 1);
	long_label[sizeof(long_label) - 1] = '\0';
	assert_int_equal(bi_kek_new(long_label, k, 16, &kek), DJ_EINVAL);
	long_label[BI_KEK_LABEL_MAX - 1] = '\0';	/* the longest that fits */
	assert_int_equal(bi_kek_new(long_label, k, 16, &kek), DJ_EOK);
	assert_string_equal(bi_kek_label(kek), long_label);
	bi_kek_free(kek);
	bi_kek_free(NULL);
}

static void test_envelope_args(void **state)
{
	struct bi_key_envelope env;
	struct lw_key key;
	uint8_t data[LW_KEY_LEN] = { 0 };

	(void)state;
	lw_key_set(&key, data);
	assert_int_equal(bi_kek_envelope(NULL, NULL, &env), DJ_EINVAL);
	assert_int_equal(bi_kek_envelope(NULL, &key, NULL), DJ_EINVAL);
	lw_key_wipe(&key);
}

/* many_vs_one - n keys through bi_kek_envelope_many under kek_hex (KEYDATA last, the others
 * random) give exactly the envelopes bi_kek_envelope (CRYPTO_128_wrap) gives one by one, the
 * published one among them, and each opens to its key */
static void many_vs_one(const char *kek_hex, const char *want_hex, size_t n)
{
	struct bi_kek *kek = make_kek("kek-m", kek_hex);
	struct bi_key_envelope env[BI_KEK_MANY_MAX], one;
	struct bi_key_envelope *envs[BI_KEK_MANY_MAX];
	const struct lw_key *keys[BI_KEK_MANY_MAX];
	struct lw_key key[BI_KEK_MANY_MAX];
	uint8_t data[BI_KEK_MANY_MAX][LW_KEY_LEN], want[WRAPPED_LEN], raw[LW_KEY_LEN];

	unhex_exact(want_hex, want, sizeof(want));
	for (size_t i = 0; i < n; i++) {
		if (i + 1 == n)
			unhex_exact(KEYDATA, data[i], LW_KEY_LEN);
		else
			assert_int_equal(RAND_bytes(data[i], LW_KEY_LEN), 1);
		lw_key_set(&key[i], data[i]);
		keys[i] = &key[i];
		envs[i] = &env[i];
		memset(&env[i], 0x5a, sizeof(env[i]));
	}
	assert_int_equal(bi_kek_envelope_many(kek, n, keys, envs), DJ_EOK);
	expect_env(&env[n - 1], "kek-m", want, WRAPPED_LEN);
	for (size_t i = 0; i < n; i++) {
		memset(&one, 0, sizeof(one));
		assert_int_equal(bi_kek_envelope(kek, &key[i], &one), DJ_EOK);
		assert_memory_equal(&env[i], &one, sizeof(one));
		assert_int_equal(bi_kek_open(kek, &env[i], false, raw), DJ_EOK);
		assert_memory_equal(raw, data[i], LW_KEY_LEN);
		lw_key_wipe(&key[i]);
	}
	bi_kek_free(kek);
}

/* The lockstep wraps of a JoinAns's session keys: the same envelopes as one by one, with a
 * 128-bit and a 256-bit KEK, for every count it takes (pipeline.c session_envelopes: 1 for a
 * 1.0 NwkSKey, 2 with the AppSKey of appskey_in_joinans, 3 for 1.1's network keys, 4 with the
 * AppSKey), random keys in several rounds. */
static void test_envelope_many(void **state)
{
	(void)state;
	for (int round = 0; round < 8; round++) {
		for (size_t n = 1; n <= BI_KEK_MANY_MAX; n++) {
			many_vs_one(KEK128, WRAP_4_1, n);
			many_vs_one(KEK256, WRAP_4_3, n);
		}
	}
}

/* Without a KEK the envelopes are plain (the plain_keys policy), as bi_kek_envelope's. */
static void test_envelope_many_plain(void **state)
{
	struct bi_key_envelope env[3], *envs[3] = { &env[0], &env[1], &env[2] };
	struct lw_key key[3];
	const struct lw_key *keys[3] = { &key[0], &key[1], &key[2] };
	uint8_t data[3][LW_KEY_LEN];

	(void)state;
	for (size_t i = 0; i < 3; i++) {
		memset(data[i], (int)(0x11 * (i + 1)), LW_KEY_LEN);
		lw_key_set(&key[i], data[i]);
	}
	assert_int_equal(bi_kek_envelope_many(NULL, 3, keys, envs), DJ_EOK);
	for (size_t i = 0; i < 3; i++) {
		expect_env(&env[i], "", data[i], LW_KEY_LEN);
		lw_key_wipe(&key[i]);
	}
}

/* Bad arguments are refused and write no envelope. */
static void test_envelope_many_args(void **state)
{
	struct bi_kek *kek = make_kek("kek-a", KEK128);
	struct bi_key_envelope env[BI_KEK_MANY_MAX + 1], untouched;
	struct bi_key_envelope *envs[BI_KEK_MANY_MAX + 1];
	const struct lw_key *keys[BI_KEK_MANY_MAX + 1];
	struct lw_key key;
	uint8_t data[LW_KEY_LEN] = { 0 };

	(void)state;
	lw_key_set(&key, data);
	memset(&untouched, 0x5a, sizeof(untouched));
	for (size_t i = 0; i <= BI_KEK_MANY_MAX; i++) {
		keys[i] = &key;
		envs[i] = &env[i];
		env[i] = untouched;
	}
	assert_int_equal(bi_kek_envelope_many(kek, 0, keys, envs), DJ_EINVAL);
	assert_int_equal(bi_kek_envelope_many(kek, BI_KEK_MANY_MAX + 1, keys, envs), DJ_EINVAL);
	assert_int_equal(bi_kek_envelope_many(kek, 2, NULL, envs), DJ_EINVAL);
	assert_int_equal(bi_kek_envelope_many(kek, 2, keys, NULL), DJ_EINVAL);
	keys[1] = NULL;
	assert_int_equal(bi_kek_envelope_many(kek, 2, keys, envs), DJ_EINVAL);
	keys[1] = &key;
	envs[1] = NULL;
	assert_int_equal(bi_kek_envelope_many(kek, 2, keys, envs), DJ_EINVAL);
	assert_int_equal(bi_kek_envelope_many(NULL, 2, keys, envs), DJ_EINVAL);
	for (size_t i = 0; i <= BI_KEK_MANY_MAX; i++)
		assert_memory_equal(&env[i], &untouched, sizeof(untouched));
	lw_key_wipe(&key);
	bi_kek_free(kek);
}

DJ_TEST_MAIN(
	cmocka_unit_test(test_rfc3394_4_1),
	cmocka_unit_test(test_rfc3394_4_3),
	cmocka_unit_test(test_open_published),
	cmocka_unit_test(test_wrong_kek),
	cmocka_unit_test(test_wrong_label),
	cmocka_unit_test(test_plaintext),
	cmocka_unit_test(test_malformed_envelopes),
	cmocka_unit_test(test_new_refusals),
	cmocka_unit_test(test_envelope_args),
	cmocka_unit_test(test_envelope_many),
	cmocka_unit_test(test_envelope_many_plain),
	cmocka_unit_test(test_envelope_many_args))
