/*
 * test_lw_crypto.c - unit tests of lw_crypto: AES-128 ECB, the hand-written AES-CMAC on a reused
 * context and its key-schedule cache, and the struct lw_key helpers.
 *
 * Fixtures: RFC 4493 §4 (AES-CMAC examples) and FIPS-197 Appendix C.1 (AES-128). The CMAC is also
 * checked against OpenSSL's EVP_MAC "CMAC" on pseudo-random keys and messages of every length
 * 0..100, with key changes and repeated keys between calls, because the context caches key
 * schedules and subkeys by key serial.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include "common/dj_err.h"
#include "dj_test.h"
#include "lorawan/lw_crypto.h"

/* ---- helpers -------------------------------------------------------------------------------- */

/* Deterministic xorshift64*, so that a failure is reproducible. */
static uint64_t rng_state = 0x9e3779b97f4a7c15u;

static uint8_t rng_byte(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return (uint8_t)((rng_state * 0x2545f4914f6cdd1du) >> 56);
}

static void rng_fill(uint8_t *p, size_t len)
{
	for (size_t i = 0; i < len; i++)
		p[i] = rng_byte();
}

/* ref_cmac - AES-CMAC through OpenSSL's EVP_MAC, the reference for the hand-written one */
static void ref_cmac(const uint8_t key[LW_KEY_LEN], const uint8_t *msg, size_t len,
		     uint8_t tag[LW_BLOCK_LEN])
{
	char cipher[] = "AES-128-CBC";
	OSSL_PARAM params[] = {
		OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_CIPHER, cipher, 0),
		OSSL_PARAM_construct_end(),
	};
	EVP_MAC *mac = EVP_MAC_fetch(NULL, "CMAC", NULL);
	EVP_MAC_CTX *ctx;
	size_t outl = 0;

	assert_non_null(mac);
	ctx = EVP_MAC_CTX_new(mac);
	assert_non_null(ctx);
	assert_int_equal(EVP_MAC_init(ctx, key, LW_KEY_LEN, params), 1);
	assert_int_equal(EVP_MAC_update(ctx, msg, len), 1);
	assert_int_equal(EVP_MAC_final(ctx, tag, &outl, LW_BLOCK_LEN), 1);
	assert_int_equal(outl, LW_BLOCK_LEN);
	EVP_MAC_CTX_free(ctx);
	EVP_MAC_free(mac);
}

/* ref_ecb - AES-128-ECB through a fresh EVP context */
static void ref_ecb(const uint8_t key[LW_KEY_LEN], int enc, const uint8_t *in, uint8_t *out,
		    size_t len)
{
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
	int outl = 0;

	assert_non_null(ctx);
	assert_int_equal(EVP_CipherInit_ex2(ctx, EVP_aes_128_ecb(), key, NULL, enc, NULL), 1);
	assert_int_equal(EVP_CIPHER_CTX_set_padding(ctx, 0), 1);
	assert_int_equal(EVP_CipherUpdate(ctx, out, &outl, in, (int)len), 1);
	assert_int_equal((size_t)outl, len);
	EVP_CIPHER_CTX_free(ctx);
}

/* ---- fixtures ------------------------------------------------------------------------------- */

/* RFC 4493 §4: K, M (64 bytes), and the tags of its first 0, 16, 40 and 64 bytes. */
static const char rfc4493_key[] = "2b7e151628aed2a6abf7158809cf4f3c";
static const char rfc4493_msg[] = "6bc1bee22e409f96e93d7e117393172a"
				  "ae2d8a571e03ac9c9eb76fac45af8e51"
				  "30c81c46a35ce411e5fbc1191a0a52ef"
				  "f69f2445df4f9b17ad2b417be66c3710";

static const struct {
	size_t len;
	const char *tag;
} rfc4493[] = {
	{ 0, "bb1d6929e95937287fa37d129b756746" },	/* Example 1 */
	{ 16, "070a16b46b4d4144f79bdd9dd04a287c" },	/* Example 2 */
	{ 40, "dfa66747de9ae63030ca32611497c827" },	/* Example 3 */
	{ 64, "51f0bebf7e3b9d92fc49741779363cfe" },	/* Example 4 */
};

/* FIPS-197 Appendix C.1, AES-128 */
static const char fips197_key[] = "000102030405060708090a0b0c0d0e0f";
static const char fips197_pt[] = "00112233445566778899aabbccddeeff";
static const char fips197_ct[] = "69c4e0d86a7b0430d8cdb78070b4c55a";

/* ECB lengths that are not a positive multiple of the block */
static const size_t ecb_bad_len[] = { 0, 1, 15, 17, 31, 33 };

/* ---- CMAC ----------------------------------------------------------------------------------- */

static void test_cmac_rfc4493(void **state)
{
	struct lw_crypto *cx = *state;
	uint8_t msg[64], tag[LW_BLOCK_LEN], want[LW_BLOCK_LEN];
	struct lw_key key;

	assert_int_equal(unhex(rfc4493_msg, msg, sizeof(msg)), sizeof(msg));
	key_from_hex(&key, rfc4493_key);
	/* Twice: first run fills the subkey cache, second run uses it. */
	for (int pass = 0; pass < 2; pass++) {
		for (size_t i = 0; i < DJ_ARRAY_LEN(rfc4493); i++) {
			assert_int_equal(unhex(rfc4493[i].tag, want, sizeof(want)), LW_BLOCK_LEN);
			memset(tag, 0xa5, sizeof(tag));
			assert_int_equal(lw_crypto_cmac(cx, &key, msg, rfc4493[i].len, tag),
					 DJ_EOK);
			assert_memory_equal(tag, want, LW_BLOCK_LEN);
		}
	}
	lw_key_wipe(&key);
}

/* The reference itself must agree with RFC 4493, or the comparisons below prove nothing. */
static void test_cmac_reference_sane(void **state)
{
	uint8_t k[LW_KEY_LEN], msg[64], tag[LW_BLOCK_LEN], want[LW_BLOCK_LEN];

	(void)state;
	unhex(rfc4493_key, k, sizeof(k));
	unhex(rfc4493_msg, msg, sizeof(msg));
	for (size_t i = 0; i < DJ_ARRAY_LEN(rfc4493); i++) {
		unhex(rfc4493[i].tag, want, sizeof(want));
		ref_cmac(k, msg, rfc4493[i].len, tag);
		assert_memory_equal(tag, want, LW_BLOCK_LEN);
	}
}

static void check_cmac(struct lw_crypto *cx, const struct lw_key *key,
		       const uint8_t raw[LW_KEY_LEN], const uint8_t *msg, size_t len,
		       const char *what)
{
	uint8_t tag[LW_BLOCK_LEN], want[LW_BLOCK_LEN];

	ref_cmac(raw, msg, len, want);
	memset(tag, 0x5a, sizeof(tag));
	assert_int_equal(lw_crypto_cmac(cx, key, msg, len, tag), DJ_EOK);
	if (memcmp(tag, want, LW_BLOCK_LEN) != 0) {
		print_error("CMAC mismatch: %s, len %zu\n", what, len);
		fail();
	}
}

/*
 * Every length 0..100: a fresh key (cache miss), the same key again (cache hit), a second key
 * (switch), the first key again (A,B,A), and the first key after lw_crypto_forget().
 */
static void test_cmac_vs_evp_every_length(void **state)
{
	struct lw_crypto *cx = *state;
	uint8_t ra[LW_KEY_LEN], rb[LW_KEY_LEN], msg[100];
	struct lw_key a, b, a_copy;

	for (size_t len = 0; len <= sizeof(msg); len++) {
		rng_fill(ra, sizeof(ra));
		rng_fill(rb, sizeof(rb));
		rng_fill(msg, sizeof(msg));
		lw_key_set(&a, ra);
		lw_key_set(&b, rb);
		a_copy = a;	/* a copy carries the serial: the cache must still be right */

		check_cmac(cx, &a, ra, msg, len, "new key A");
		check_cmac(cx, &a, ra, msg, len, "A repeated");
		check_cmac(cx, &b, rb, msg, len, "switch to B");
		check_cmac(cx, &a, ra, msg, len, "back to A");
		check_cmac(cx, &a_copy, ra, msg, len, "copy of A");
		lw_crypto_forget(cx);
		check_cmac(cx, &a, ra, msg, len, "A after forget");
		check_cmac(cx, &b, rb, msg, len, "B after forget");
		/* Same message, different lengths under the cached key. */
		if (len > 0)
			check_cmac(cx, &b, rb, msg, len - 1, "B shorter");
		lw_key_wipe(&a);
		lw_key_wipe(&b);
		lw_key_wipe(&a_copy);
	}
}

/* Reloading a key struct with new bytes must invalidate the cache (new serial). */
static void test_cmac_key_struct_reused(void **state)
{
	struct lw_crypto *cx = *state;
	uint8_t r1[LW_KEY_LEN], r2[LW_KEY_LEN], msg[37];
	struct lw_key k;

	for (int i = 0; i < 20; i++) {
		rng_fill(r1, sizeof(r1));
		rng_fill(r2, sizeof(r2));
		rng_fill(msg, sizeof(msg));
		lw_key_set(&k, r1);
		check_cmac(cx, &k, r1, msg, sizeof(msg), "struct first load");
		lw_key_wipe(&k);
		lw_key_set(&k, r2);
		check_cmac(cx, &k, r2, msg, sizeof(msg), "struct reloaded");
		lw_key_set(&k, r1);
		check_cmac(cx, &k, r1, msg, (size_t)i, "struct reloaded back");
		lw_key_wipe(&k);
	}
}

/* Interleaving ECB decryptions and encryptions under other keys must not disturb the CMAC. */
static void test_cmac_interleaved_with_ecb(void **state)
{
	struct lw_crypto *cx = *state;
	uint8_t ra[LW_KEY_LEN], rb[LW_KEY_LEN], msg[48], blk[LW_BLOCK_LEN];
	struct lw_key a, b;

	rng_fill(ra, sizeof(ra));
	rng_fill(rb, sizeof(rb));
	rng_fill(msg, sizeof(msg));
	lw_key_set(&a, ra);
	lw_key_set(&b, rb);
	check_cmac(cx, &a, ra, msg, 48, "A");
	assert_int_equal(lw_crypto_ecb(cx, &b, 1, msg, blk, LW_BLOCK_LEN), DJ_EOK);
	check_cmac(cx, &a, ra, msg, 33, "A after ECB-enc under B");
	assert_int_equal(lw_crypto_ecb(cx, &a, 0, msg, blk, LW_BLOCK_LEN), DJ_EOK);
	check_cmac(cx, &a, ra, msg, 17, "A after ECB-dec under A");
	assert_int_equal(lw_crypto_ecb(cx, &b, 0, msg, blk, LW_BLOCK_LEN), DJ_EOK);
	check_cmac(cx, &b, rb, msg, 16, "B after ECB-dec under B");
	lw_key_wipe(&a);
	lw_key_wipe(&b);
}

/* Two contexts with the same key give the same tag (nothing is shared between contexts). */
static void test_cmac_two_contexts(void **state)
{
	struct lw_crypto *cx = *state, *cx2 = NULL;
	uint8_t r[LW_KEY_LEN], msg[64], t1[LW_BLOCK_LEN], t2[LW_BLOCK_LEN];
	struct lw_key k;

	assert_int_equal(lw_crypto_new(&cx2), DJ_EOK);
	rng_fill(r, sizeof(r));
	rng_fill(msg, sizeof(msg));
	lw_key_set(&k, r);
	assert_int_equal(lw_crypto_cmac(cx, &k, msg, sizeof(msg), t1), DJ_EOK);
	assert_int_equal(lw_crypto_cmac(cx2, &k, msg, sizeof(msg), t2), DJ_EOK);
	assert_memory_equal(t1, t2, LW_BLOCK_LEN);
	lw_crypto_free(cx2);
	lw_key_wipe(&k);
}

static void test_cmac_wiped_key_rejected(void **state)
{
	struct lw_crypto *cx = *state;
	uint8_t r[LW_KEY_LEN] = { 1 }, msg[16] = { 0 }, tag[LW_BLOCK_LEN];
	struct lw_key k;

	lw_key_set(&k, r);
	assert_int_equal(lw_crypto_cmac(cx, &k, msg, sizeof(msg), tag), DJ_EOK);
	lw_key_wipe(&k);
	assert_int_not_equal(lw_crypto_cmac(cx, &k, msg, sizeof(msg), tag), DJ_EOK);
	lw_crypto_forget(cx);
	assert_int_not_equal(lw_crypto_cmac(cx, &k, msg, sizeof(msg), tag), DJ_EOK);
}

/* ---- ECB ------------------------------------------------------------------------------------ */

static void test_ecb_fips197(void **state)
{
	struct lw_crypto *cx = *state;
	uint8_t pt[LW_BLOCK_LEN], ct[LW_BLOCK_LEN], out[LW_BLOCK_LEN], buf[LW_BLOCK_LEN];
	uint8_t two[2 * LW_BLOCK_LEN];
	struct lw_key k;

	key_from_hex(&k, fips197_key);
	unhex(fips197_pt, pt, sizeof(pt));
	unhex(fips197_ct, ct, sizeof(ct));
	for (int pass = 0; pass < 2; pass++) {	/* second pass: cached schedules */
		assert_int_equal(lw_crypto_ecb(cx, &k, 1, pt, out, LW_BLOCK_LEN), DJ_EOK);
		assert_memory_equal(out, ct, LW_BLOCK_LEN);
		assert_int_equal(lw_crypto_ecb(cx, &k, 0, ct, out, LW_BLOCK_LEN), DJ_EOK);
		assert_memory_equal(out, pt, LW_BLOCK_LEN);
	}
	/* In place. */
	memcpy(buf, pt, sizeof(buf));
	assert_int_equal(lw_crypto_ecb(cx, &k, 1, buf, buf, LW_BLOCK_LEN), DJ_EOK);
	assert_memory_equal(buf, ct, LW_BLOCK_LEN);
	assert_int_equal(lw_crypto_ecb(cx, &k, 0, buf, buf, LW_BLOCK_LEN), DJ_EOK);
	assert_memory_equal(buf, pt, LW_BLOCK_LEN);
	/* Two blocks: ECB, so each block independently. */
	memcpy(two, pt, LW_BLOCK_LEN);
	memcpy(two + LW_BLOCK_LEN, pt, LW_BLOCK_LEN);
	assert_int_equal(lw_crypto_ecb(cx, &k, 1, two, two, sizeof(two)), DJ_EOK);
	assert_memory_equal(two, ct, LW_BLOCK_LEN);
	assert_memory_equal(two + LW_BLOCK_LEN, ct, LW_BLOCK_LEN);
	/* After forget. */
	lw_crypto_forget(cx);
	assert_int_equal(lw_crypto_ecb(cx, &k, 0, ct, out, LW_BLOCK_LEN), DJ_EOK);
	assert_memory_equal(out, pt, LW_BLOCK_LEN);
	lw_key_wipe(&k);
}

/* ECB against a fresh OpenSSL context, several lengths and keys, both directions. */
static void test_ecb_vs_evp(void **state)
{
	struct lw_crypto *cx = *state;
	uint8_t ra[LW_KEY_LEN], rb[LW_KEY_LEN], in[8 * LW_BLOCK_LEN], out[sizeof(in)];
	uint8_t want[sizeof(in)];
	struct lw_key a, b;

	for (size_t n = 1; n <= 8; n++) {
		size_t len = n * LW_BLOCK_LEN;

		rng_fill(ra, sizeof(ra));
		rng_fill(rb, sizeof(rb));
		rng_fill(in, sizeof(in));
		lw_key_set(&a, ra);
		lw_key_set(&b, rb);
		for (int enc = 0; enc <= 1; enc++) {
			ref_ecb(ra, enc, in, want, len);
			assert_int_equal(lw_crypto_ecb(cx, &a, enc, in, out, len), DJ_EOK);
			assert_memory_equal(out, want, len);
			ref_ecb(rb, enc, in, want, len);
			assert_int_equal(lw_crypto_ecb(cx, &b, enc, in, out, len), DJ_EOK);
			assert_memory_equal(out, want, len);
			ref_ecb(ra, enc, in, want, len);
			assert_int_equal(lw_crypto_ecb(cx, &a, enc, in, out, len), DJ_EOK);
			assert_memory_equal(out, want, len);
		}
		lw_key_wipe(&a);
		lw_key_wipe(&b);
	}
}

static void test_ecb_rejects(void **state)
{
	struct lw_crypto *cx = *state;
	uint8_t in[3 * LW_BLOCK_LEN] = { 0 }, out[sizeof(in)];
	struct lw_key k;

	key_from_hex(&k, fips197_key);
	for (size_t i = 0; i < DJ_ARRAY_LEN(ecb_bad_len); i++) {
		for (int enc = 0; enc <= 1; enc++)
			assert_int_equal(lw_crypto_ecb(cx, &k, enc, in, out, ecb_bad_len[i]),
					 DJ_EINVAL);
	}
	/* A wiped key (serial 0) is refused, both directions, even with nothing cached... */
	lw_key_wipe(&k);
	lw_crypto_forget(cx);
	for (int enc = 0; enc <= 1; enc++)
		assert_int_equal(lw_crypto_ecb(cx, &k, enc, in, out, LW_BLOCK_LEN), DJ_EINVAL);
	/* ...and with a key cached in the contexts. */
	key_from_hex(&k, fips197_key);
	for (int enc = 0; enc <= 1; enc++)
		assert_int_equal(lw_crypto_ecb(cx, &k, enc, in, out, LW_BLOCK_LEN), DJ_EOK);
	lw_key_wipe(&k);
	for (int enc = 0; enc <= 1; enc++)
		assert_int_equal(lw_crypto_ecb(cx, &k, enc, in, out, LW_BLOCK_LEN), DJ_EINVAL);
}

/* ---- derive, keys --------------------------------------------------------------------------- */

static void test_derive_is_ecb_encrypt(void **state)
{
	struct lw_crypto *cx = *state;
	uint8_t pt[LW_BLOCK_LEN], ct[LW_BLOCK_LEN], raw[LW_KEY_LEN];
	struct lw_key k, d;

	key_from_hex(&k, fips197_key);
	unhex(fips197_pt, pt, sizeof(pt));
	unhex(fips197_ct, ct, sizeof(ct));
	assert_int_equal(lw_crypto_derive(cx, &k, pt, &d), DJ_EOK);
	lw_key_export(&d, raw);
	assert_memory_equal(raw, ct, LW_KEY_LEN);
	/* The derived key is a usable key: CMAC under it equals the reference. */
	check_cmac(cx, &d, ct, pt, sizeof(pt), "derived key");
	lw_key_wipe(&d);
	lw_key_wipe(&k);
	/* A wiped root key is refused. */
	assert_int_not_equal(lw_crypto_derive(cx, &k, pt, &d), DJ_EOK);
}

static void test_key_export_roundtrip(void **state)
{
	uint8_t raw[LW_KEY_LEN], back[LW_KEY_LEN];
	struct lw_key k;

	(void)state;
	unhex(rfc4493_key, raw, sizeof(raw));
	lw_key_set(&k, raw);
	memset(back, 0, sizeof(back));
	lw_key_export(&k, back);
	assert_memory_equal(raw, back, LW_KEY_LEN);
	lw_key_wipe(&k);
}

static void test_key_equal(void **state)
{
	static const size_t flip_at[] = { 0, 1, 7, 8, 14, 15 };
	uint8_t raw[LW_KEY_LEN], other[LW_KEY_LEN];
	struct lw_key a, b;

	(void)state;
	unhex(rfc4493_key, raw, sizeof(raw));
	lw_key_set(&a, raw);
	lw_key_set(&b, raw);	/* same value, different serial */
	assert_true(lw_key_equal(&a, &b));
	assert_true(lw_key_equal(&a, &a));
	for (size_t i = 0; i < DJ_ARRAY_LEN(flip_at); i++) {
		memcpy(other, raw, sizeof(other));
		other[flip_at[i]] ^= 0x01;
		lw_key_set(&b, other);
		assert_false(lw_key_equal(&a, &b));
		assert_false(lw_key_equal(&b, &a));
	}
	lw_key_wipe(&a);
	lw_key_wipe(&b);
}

static void test_key_wipe(void **state)
{
	static const uint8_t zero[sizeof(struct lw_key)];
	uint8_t raw[LW_KEY_LEN];
	struct lw_key k;

	(void)state;
	memset(raw, 0xff, sizeof(raw));
	lw_key_set(&k, raw);
	assert_int_not_equal(k.priv_serial, 0);
	lw_key_wipe(&k);
	assert_memory_equal(&k, zero, sizeof(k));
	assert_int_equal(k.priv_serial, 0);
	lw_key_wipe(NULL);
}

static void test_context_lifecycle(void **state)
{
	struct lw_crypto *cx = NULL;

	(void)state;
	lw_crypto_free(NULL);
	assert_int_equal(lw_crypto_new(&cx), DJ_EOK);
	assert_non_null(cx);
	lw_crypto_forget(cx);	/* nothing cached */
	lw_crypto_forget(cx);
	lw_crypto_free(cx);
}

DJ_TEST_MAIN(
	cmocka_unit_test(test_cmac_reference_sane),
	DJ_CX_TEST(test_cmac_rfc4493),
	DJ_CX_TEST(test_cmac_vs_evp_every_length),
	DJ_CX_TEST(test_cmac_key_struct_reused),
	DJ_CX_TEST(test_cmac_interleaved_with_ecb),
	DJ_CX_TEST(test_cmac_two_contexts),
	DJ_CX_TEST(test_cmac_wiped_key_rejected),
	DJ_CX_TEST(test_ecb_fips197),
	DJ_CX_TEST(test_ecb_vs_evp),
	DJ_CX_TEST(test_ecb_rejects),
	DJ_CX_TEST(test_derive_is_ecb_encrypt),
	cmocka_unit_test(test_key_export_roundtrip),
	cmocka_unit_test(test_key_equal),
	cmocka_unit_test(test_key_wipe),
	cmocka_unit_test(test_context_lifecycle))
