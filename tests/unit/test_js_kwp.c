/*
 * test_js_kwp.c - our RFC 5649 key wrap against the RFC's vectors and against OpenSSL's own
 * AES-WRAP-PAD, byte for byte, for every plaintext length 1..64 and every AES key size.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/evp.h>

#include "dj_err.h"
#include "dj_hex.h"
#include "js_kwp.h"

/* ecb_ctx - an AES-ECB context of the key's size, for one direction */
static EVP_CIPHER_CTX *ecb_ctx(const uint8_t *key, size_t klen, int enc)
{
	const EVP_CIPHER *c = klen == 16 ? EVP_aes_128_ecb() :
			      klen == 24 ? EVP_aes_192_ecb() : EVP_aes_256_ecb();
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();

	assert_non_null(ctx);
	assert_int_equal(EVP_CipherInit_ex2(ctx, c, key, NULL, enc, NULL), 1);
	assert_int_equal(EVP_CIPHER_CTX_set_padding(ctx, 0), 1);
	return ctx;
}

/* openssl_wrap - the reference: OpenSSL's wrap-pad cipher */
static size_t openssl_wrap(const uint8_t *key, size_t klen, const uint8_t *in, size_t len,
			   uint8_t *out)
{
	const EVP_CIPHER *c = klen == 16 ? EVP_aes_128_wrap_pad() :
			      klen == 24 ? EVP_aes_192_wrap_pad() : EVP_aes_256_wrap_pad();
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
	int outl = 0, fin = 0;

	EVP_CIPHER_CTX_set_flags(ctx, EVP_CIPHER_CTX_FLAG_WRAP_ALLOW);
	assert_int_equal(EVP_EncryptInit_ex2(ctx, c, key, NULL, NULL), 1);
	assert_int_equal(EVP_EncryptUpdate(ctx, out, &outl, in, (int)len), 1);
	assert_int_equal(EVP_EncryptFinal_ex(ctx, out + outl, &fin), 1);
	EVP_CIPHER_CTX_free(ctx);
	return (size_t)(outl + fin);
}

/* RFC 5649 §6, both vectors (192-bit KEK) */
static void test_rfc5649_vectors(void **state)
{
	static const struct {
		const char *key, *want;
	} v[] = {
		{ "c37b7e6492584340bed12207808941155068f738",
		  "138bdeaa9b8fa7fc61f97742e72248ee5ae6ae5360d1ae6a5f54f373fa543b6a" },
		{ "466f7250617369", "afbeb0f07dfbf5419200f2ccb50bb24f" },
	};
	uint8_t kek[24], in[32], want[48], out[48], back[48];
	size_t inl, wl, bl;

	(void)state;
	assert_int_equal(dj_hex_parse("5840df6e29b02af1ab493b705bf16ea1ae8338f4dcc176a8", kek, 24),
			 DJ_EOK);
	for (size_t i = 0; i < 2; i++) {
		EVP_CIPHER_CTX *e = ecb_ctx(kek, 24, 1), *d = ecb_ctx(kek, 24, 0);

		assert_int_equal(dj_hex_parse_var(v[i].key, in, sizeof(in), &inl), DJ_EOK);
		assert_int_equal(dj_hex_parse_var(v[i].want, want, sizeof(want), &wl), DJ_EOK);
		assert_int_equal(js_kwp_wrapped_len(inl), wl);
		assert_int_equal(js_kwp_wrap(e, in, inl, out), DJ_EOK);
		assert_memory_equal(out, want, wl);
		assert_int_equal(js_kwp_unwrap(d, out, wl, back, &bl), DJ_EOK);
		assert_int_equal(bl, inl);
		assert_memory_equal(back, in, inl);
		EVP_CIPHER_CTX_free(e);
		EVP_CIPHER_CTX_free(d);
	}
}

/* every length 1..64, every key size: identical to OpenSSL, and round-trips */
static void test_matches_openssl(void **state)
{
	static const size_t ksizes[] = { 16, 24, 32 };
	uint8_t key[32], in[64], ours[80], ref[80], back[80];
	size_t bl;

	(void)state;
	srand(5649);
	for (size_t k = 0; k < 3; k++) {
		for (size_t len = 1; len <= 64; len++) {
			EVP_CIPHER_CTX *e, *d;

			for (size_t i = 0; i < sizeof(key); i++)
				key[i] = (uint8_t)rand();
			for (size_t i = 0; i < len; i++)
				in[i] = (uint8_t)rand();
			e = ecb_ctx(key, ksizes[k], 1);
			d = ecb_ctx(key, ksizes[k], 0);
			assert_int_equal(js_kwp_wrap(e, in, len, ours), DJ_EOK);
			assert_int_equal(openssl_wrap(key, ksizes[k], in, len, ref),
					 js_kwp_wrapped_len(len));
			assert_memory_equal(ours, ref, js_kwp_wrapped_len(len));
			assert_int_equal(js_kwp_unwrap(d, ours, js_kwp_wrapped_len(len), back, &bl),
					 DJ_EOK);
			assert_int_equal(bl, len);
			assert_memory_equal(back, in, len);
			EVP_CIPHER_CTX_free(e);
			EVP_CIPHER_CTX_free(d);
		}
	}
}

/* any flipped bit, a wrong KEK, a bad length: refused, output wiped */
static void test_integrity(void **state)
{
	uint8_t key[32] = { 7 }, other[32] = { 8 }, in[33], w[48], back[48];
	EVP_CIPHER_CTX *e = ecb_ctx(key, 32, 1), *d = ecb_ctx(key, 32, 0), *d2 = ecb_ctx(other, 32, 0);
	size_t wl = js_kwp_wrapped_len(sizeof(in)), bl = 0;

	(void)state;
	memset(in, 0x5a, sizeof(in));
	assert_int_equal(js_kwp_wrap(e, in, sizeof(in), w), DJ_EOK);
	for (size_t bit = 0; bit < wl * 8; bit += 7) {
		w[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		memset(back, 0x11, sizeof(back));
		assert_int_equal(js_kwp_unwrap(d, w, wl, back, &bl), DJ_EUNWRAP);
		for (size_t i = 0; i < wl - 8; i++)
			assert_int_equal(back[i], 0);
		w[bit / 8] ^= (uint8_t)(1u << (bit % 8));
	}
	assert_int_equal(js_kwp_unwrap(d2, w, wl, back, &bl), DJ_EUNWRAP);
	assert_int_equal(js_kwp_unwrap(d, w, wl, back, &bl), DJ_EOK);
	assert_int_equal(js_kwp_unwrap(d, w, wl - 8, back, &bl), DJ_EUNWRAP);
	assert_int_equal(js_kwp_unwrap(d, w, 8, back, &bl), DJ_EINVAL);
	assert_int_equal(js_kwp_unwrap(d, w, wl - 3, back, &bl), DJ_EINVAL);
	assert_int_equal(js_kwp_wrap(e, in, 0, w), DJ_EINVAL);
	EVP_CIPHER_CTX_free(e);
	EVP_CIPHER_CTX_free(d);
	EVP_CIPHER_CTX_free(d2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rfc5649_vectors),
		cmocka_unit_test(test_matches_openssl),
		cmocka_unit_test(test_integrity),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
