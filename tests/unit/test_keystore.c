/*
 * test_keystore.c - unit tests of js_keystore: the RFC 5649 primitive against the published
 * vectors, token sealing and opening (and every way a token must fail to open), the master key
 * file checks, and the key check value.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "common/dj_err.h"
#include "common/dj_hex.h"
#include "store/js_keystore.h"
#include "store/js_keystore_internal.h"
#include "dj_test.h"

#define PATH_MAX_LEN 512
#define KWP_OUT_MAX 64

static const uint8_t master_a[JS_MASTER_KEY_LEN] = {
	0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f,
	0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f,
};
static const uint8_t master_b[JS_MASTER_KEY_LEN] = { 0xff, 0xee, 0xdd };
static const uint8_t dev_eui[LW_EUI_LEN] = { 0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77 };
static const uint8_t dev_eui2[LW_EUI_LEN] = { 0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x78 };
static const uint8_t app_key[LW_KEY_LEN] = { 0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7, 0xa8,
					     0xa9, 0xaa, 0xab, 0xac, 0xad, 0xae, 0xaf, 0xb0 };
static const uint8_t nwk_key[LW_KEY_LEN] = { 0xc1, 0xc2, 0xc3, 0xc4, 0xc5, 0xc6, 0xc7, 0xc8,
					     0xc9, 0xca, 0xcb, 0xcc, 0xcd, 0xce, 0xcf, 0xd0 };

/* tmp_path - a fresh path in the scratch dir */
static void tmp_path(char *out, const char *name)
{
	const char *dir = getenv("DJ_TEST_TMPDIR");

	snprintf(out, PATH_MAX_LEN, "%s/ks-%d-%s", dir != NULL ? dir : "/tmp", (int)getpid(),
		 name);
	unlink(out);
}

/* write_file - write bytes to a new file with the given mode */
static void write_file(const char *path, const void *data, size_t len, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	assert_int_equal(fchmod(fd, mode), 0);
	close(fd);
}

/* kwp - RFC 5649 wrap, then unwrap, through the primitive js_keystore.c uses */
static void kwp(const uint8_t *kek, size_t kek_len, const uint8_t *in, size_t in_len,
		uint8_t *out, size_t *out_len)
{
	EVP_CIPHER_CTX *w = NULL, *u = NULL;
	uint8_t back[KWP_OUT_MAX];
	size_t back_len = 0;

	assert_int_equal(lw_crypto_block128_ctx_new(kek, kek_len, 1, &w), DJ_EOK);
	assert_int_equal(lw_crypto_block128_ctx_new(kek, kek_len, 0, &u), DJ_EOK);
	assert_int_equal(js_keystore__kwp(w, 1, in, in_len, out, KWP_OUT_MAX, out_len), DJ_EOK);
	/* a second use of the same context gives the same bytes (no state carried over) */
	assert_int_equal(js_keystore__kwp(w, 1, in, in_len, back, sizeof(back), &back_len),
			 DJ_EOK);
	assert_int_equal(back_len, *out_len);
	assert_memory_equal(back, out, back_len);
	assert_int_equal(js_keystore__kwp(u, 0, out, *out_len, back, sizeof(back), &back_len),
			 DJ_EOK);
	assert_int_equal(back_len, in_len);
	assert_memory_equal(back, in, in_len);
	EVP_CIPHER_CTX_free(w);
	EVP_CIPHER_CTX_free(u);
}

/* provider_kwp - the same wrap by OpenSSL's own AES-*-WRAP-PAD cipher, for comparison */
static void provider_kwp(const char *cipher, const uint8_t *kek, const uint8_t *in, int in_len,
			 uint8_t *out, int *out_len)
{
	EVP_CIPHER *c = EVP_CIPHER_fetch(NULL, cipher, NULL);
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
	int outl = 0, finl = 0;

	assert_non_null(c);
	assert_non_null(ctx);
	EVP_CIPHER_CTX_set_flags(ctx, EVP_CIPHER_CTX_FLAG_WRAP_ALLOW);
	assert_int_equal(EVP_CipherInit_ex2(ctx, c, kek, NULL, 1, NULL), 1);
	assert_int_equal(EVP_CipherUpdate(ctx, out, &outl, in, in_len), 1);
	assert_int_equal(EVP_CipherFinal_ex(ctx, out + outl, &finl), 1);
	*out_len = outl + finl;
	EVP_CIPHER_CTX_free(ctx);
	EVP_CIPHER_free(c);
}

/* hexbytes - parse a hex vector of known length */
static void hexbytes(const char *hex, uint8_t *out, size_t len)
{
	assert_int_equal(dj_hex_parse(hex, out, len), DJ_EOK);
}

/* RFC 5649 §6: both published vectors (192-bit KEK); then the primitive agrees with OpenSSL's
 * AES-256-WRAP-PAD provider for every plaintext length a token can have, and its unwrap refuses
 * a damaged input */
static void test_rfc5649_vectors(void **state)
{
	uint8_t kek[24], key20[20], exp20[32], key7[7], exp7[16], out[KWP_OUT_MAX];
	uint8_t kek256[JS_MASTER_KEY_LEN], in[KWP_OUT_MAX - 16], ref[KWP_OUT_MAX];
	EVP_CIPHER_CTX *u = NULL;
	size_t out_len = 0, n = 0;
	int ref_len = 0;

	(void)state;
	hexbytes("5840df6e29b02af1ab493b705bf16ea1ae8338f4dcc176a8", kek, sizeof(kek));
	hexbytes("c37b7e6492584340bed12207808941155068f738", key20, sizeof(key20));
	hexbytes("138bdeaa9b8fa7fc61f97742e72248ee5ae6ae5360d1ae6a5f54f373fa543b6a", exp20,
		 sizeof(exp20));
	hexbytes("466f7250617369", key7, sizeof(key7));
	hexbytes("afbeb0f07dfbf5419200f2ccb50bb24f", exp7, sizeof(exp7));

	kwp(kek, sizeof(kek), key20, sizeof(key20), out, &out_len);
	assert_int_equal(out_len, sizeof(exp20));
	assert_memory_equal(out, exp20, sizeof(exp20));
	kwp(kek, sizeof(kek), key7, sizeof(key7), out, &out_len);
	assert_int_equal(out_len, sizeof(exp7));
	assert_memory_equal(out, exp7, sizeof(exp7));

	/* the provider agrees on the vector, and on every length with a 256-bit KEK */
	provider_kwp("AES-192-WRAP-PAD", kek, key20, sizeof(key20), ref, &ref_len);
	assert_memory_equal(ref, exp20, sizeof(exp20));
	memcpy(kek256, master_a, sizeof(kek256));
	for (size_t i = 0; i < sizeof(in); i++)
		in[i] = (uint8_t)(i * 7 + 1);
	for (size_t len = 1; len <= sizeof(in); len++) {
		kwp(kek256, sizeof(kek256), in, len, out, &out_len);
		provider_kwp("AES-256-WRAP-PAD", kek256, in, (int)len, ref, &ref_len);
		assert_int_equal(out_len, (size_t)ref_len);
		assert_memory_equal(out, ref, out_len);
	}

	/* a flipped bit fails the integrity check */
	kwp(kek, sizeof(kek), key20, sizeof(key20), out, &out_len);
	out[3] ^= 0x80;
	assert_int_equal(lw_crypto_block128_ctx_new(kek, sizeof(kek), 0, &u), DJ_EOK);
	assert_int_equal(js_keystore__kwp(u, 0, out, out_len, ref, sizeof(ref), &n), DJ_EUNWRAP);
	EVP_CIPHER_CTX_free(u);
}

/* seal, then open with the same label; also open_root for 1.1 and 1.0 devices */
static void test_roundtrip(void **state)
{
	struct js_keystore *ks = NULL;
	uint8_t label[JS_LABEL_MAX], tok[JS_TOKEN_MAX], secret[64];
	size_t label_len, tok_len = 0, slen = 0;
	struct js_root_keys rk;
	struct lw_key expect;
	uint8_t big[64];

	(void)state;
	assert_int_equal(js_keystore_new(master_a, &ks), DJ_EOK);
	label_len = js_keystore_label(JS_PURPOSE_SESSION, (const uint8_t *)"sess-1", 6, label);
	assert_int_equal(label_len, strlen("sk") + 1 + 6);
	assert_int_equal(label[2], 0x00);
	assert_int_equal(js_keystore_seal(ks, label, label_len, app_key, sizeof(app_key), tok,
					  &tok_len), DJ_EOK);
	assert_true(tok_len <= JS_TOKEN_MAX);
	assert_int_equal(tok[0], 0x01);
	assert_int_equal(js_keystore_open(ks, label, label_len, tok, tok_len, secret,
					  sizeof(secret), &slen), DJ_EOK);
	assert_int_equal(slen, sizeof(app_key));
	assert_memory_equal(secret, app_key, sizeof(app_key));

	/* largest secret with a root label fits; too small a buffer is refused */
	memset(big, 0x5a, sizeof(big));
	label_len = js_keystore_label(JS_PURPOSE_ROOT, dev_eui, LW_EUI_LEN, label);
	assert_int_equal(js_keystore_seal(ks, label, label_len, big, sizeof(big), tok, &tok_len),
			 DJ_EOK);
	assert_int_equal(js_keystore_open(ks, label, label_len, tok, tok_len, secret, 8, &slen),
			 DJ_ERANGE);

	/* root keys with NwkKey */
	assert_int_equal(js_keystore_seal_root(ks, dev_eui, app_key, nwk_key, tok, &tok_len),
			 DJ_EOK);
	assert_int_equal(js_keystore_open_root(ks, dev_eui, tok, tok_len, &rk), DJ_EOK);
	assert_true(rk.has_nwk_key);
	lw_key_set(&expect, app_key);
	assert_true(lw_key_equal(&rk.app_key, &expect));
	lw_key_set(&expect, nwk_key);
	assert_true(lw_key_equal(&rk.nwk_key, &expect));
	js_root_keys_wipe(&rk);

	/* 1.0.x: no NwkKey, nwk_key equals app_key */
	assert_int_equal(js_keystore_seal_root(ks, dev_eui, app_key, NULL, tok, &tok_len), DJ_EOK);
	assert_int_equal(js_keystore_open_root(ks, dev_eui, tok, tok_len, &rk), DJ_EOK);
	assert_false(rk.has_nwk_key);
	lw_key_set(&expect, app_key);
	assert_true(lw_key_equal(&rk.app_key, &expect));
	assert_true(lw_key_equal(&rk.nwk_key, &expect));
	js_root_keys_wipe(&rk);
	js_root_keys_wipe(NULL);
	js_keystore_free(ks);
	js_keystore_free(NULL);
}

/* a token does not open under another label, another master, or with any byte flipped */
static void test_refusals(void **state)
{
	struct js_keystore *a = NULL, *b = NULL, *a2 = NULL;
	uint8_t tok[JS_TOKEN_MAX], bad[JS_TOKEN_MAX], label[JS_LABEL_MAX], secret[64];
	size_t tok_len = 0, slen = 0, label_len;
	struct js_root_keys rk;

	(void)state;
	assert_int_equal(js_keystore_new(master_a, &a), DJ_EOK);
	assert_int_equal(js_keystore_new(master_b, &b), DJ_EOK);
	assert_int_equal(js_keystore_seal_root(a, dev_eui, app_key, nwk_key, tok, &tok_len), DJ_EOK);

	/* another device's label (a row copied onto another device) */
	assert_int_equal(js_keystore_open_root(a, dev_eui2, tok, tok_len, &rk), DJ_EUNWRAP);
	/* same id, other purpose */
	label_len = js_keystore_label(JS_PURPOSE_SESSION, dev_eui, LW_EUI_LEN, label);
	assert_int_equal(js_keystore_open(a, label, label_len, tok, tok_len, secret,
					  sizeof(secret), &slen), DJ_EUNWRAP);
	/* a label that is a prefix of the right one */
	label_len = js_keystore_label(JS_PURPOSE_ROOT, dev_eui, LW_EUI_LEN - 1, label);
	assert_int_equal(js_keystore_open(a, label, label_len, tok, tok_len, secret,
					  sizeof(secret), &slen), DJ_EUNWRAP);
	/* another master */
	assert_int_equal(js_keystore_open_root(b, dev_eui, tok, tok_len, &rk), DJ_EUNWRAP);
	/* every single flipped bit of the wrapped part */
	for (size_t i = 1; i < tok_len; i++) {
		memcpy(bad, tok, tok_len);
		bad[i] ^= 0x01;
		assert_int_equal(js_keystore_open_root(a, dev_eui, bad, tok_len, &rk), DJ_EUNWRAP);
	}
	/* a wrong version byte, a truncated token */
	memcpy(bad, tok, tok_len);
	bad[0] = 0x02;
	assert_int_equal(js_keystore_open_root(a, dev_eui, bad, tok_len, &rk), DJ_EMALFORMED);
	assert_int_equal(js_keystore_open_root(a, dev_eui, tok, tok_len - 8, &rk), DJ_EUNWRAP);
	assert_int_equal(js_keystore_open_root(a, dev_eui, tok, 5, &rk), DJ_EMALFORMED);

	/* a dup opens it (same master); the original still works after the dup */
	assert_int_equal(js_keystore_dup(a, &a2), DJ_EOK);
	assert_int_equal(js_keystore_open_root(a2, dev_eui, tok, tok_len, &rk), DJ_EOK);
	js_root_keys_wipe(&rk);

	/* rewrap: opens under b afterwards, no longer under a */
	assert_int_equal(js_keystore_rewrap(a, b, (const uint8_t *)"root\0\x00\x11\x22\x33\x44\x55"
						  "\x66\x77", 13, tok, tok_len, bad, &slen), DJ_EOK);
	assert_int_equal(js_keystore_open_root(b, dev_eui, bad, slen, &rk), DJ_EOK);
	js_root_keys_wipe(&rk);
	assert_int_equal(js_keystore_open_root(a, dev_eui, bad, slen, &rk), DJ_EUNWRAP);

	js_keystore_free(a);
	js_keystore_free(a2);
	js_keystore_free(b);
}

/* first_refused - a batch of two through kwp_many: the first item refused (DJ_EINVAL) and the
 * second still done */
static void first_refused(EVP_CIPHER_CTX *ctx, int enc, const uint8_t *const in[2],
			  const size_t len[2], uint8_t *const out[2], size_t out_len[2])
{
	int rets[2];

	assert_int_equal(js_keystore__kwp_many(ctx, enc, 2, in, len, out, JS_TOKEN_MAX, out_len,
					       rets), DJ_EOK);
	assert_int_equal(rets[0], DJ_EINVAL);
	assert_int_equal(rets[1], DJ_EOK);
}

/*
 * The lockstep (batched) RFC 5649 path gives the same bytes as the one-at-a-time path, which the
 * vectors above pin to RFC 5649 and to OpenSSL's provider: every plaintext length 1..88 in mixed
 * batches, each token unwrapped in a batch with tampered ones (each refused alone), and the
 * root-key and seal helpers against their single forms.
 */
static void test_batched(void **state)
{
	static const uint8_t kek[32] = { 0x5e, 0x11, 0x0a, 0x42 };
	EVP_CIPHER_CTX *w = NULL, *u = NULL;
	uint8_t plain[JS_KS_BATCH_MAX][96], wr[JS_KS_BATCH_MAX][JS_TOKEN_MAX];
	uint8_t back[JS_KS_BATCH_MAX][JS_TOKEN_MAX], one[JS_TOKEN_MAX];
	const uint8_t *in[JS_KS_BATCH_MAX];
	uint8_t *out[JS_KS_BATCH_MAX];
	size_t len[JS_KS_BATCH_MAX], ol[JS_KS_BATCH_MAX], bl[JS_KS_BATCH_MAX], one_len;
	int rets[JS_KS_BATCH_MAX];
	size_t next = 1, n, i;

	(void)state;
	assert_int_equal(lw_crypto_block128_ctx_new(kek, sizeof(kek), 1, &w), DJ_EOK);
	assert_int_equal(lw_crypto_block128_ctx_new(kek, sizeof(kek), 0, &u), DJ_EOK);
	while (next <= 88) {
		n = next % JS_KS_BATCH_MAX + 1;	/* batch sizes vary */
		for (i = 0; i < n; i++) {
			len[i] = next <= 88 ? next++ : 1 + i;
			for (size_t b = 0; b < len[i]; b++)
				plain[i][b] = (uint8_t)(len[i] * 31 + b * 7 + i);
			in[i] = plain[i];
			out[i] = wr[i];
		}
		assert_int_equal(js_keystore__kwp_many(w, 1, n, in, len, out, JS_TOKEN_MAX, ol, rets),
				 DJ_EOK);
		for (i = 0; i < n; i++) {
			assert_int_equal(rets[i], DJ_EOK);
			assert_int_equal(js_keystore__kwp(w, 1, plain[i], len[i], one, sizeof(one),
							  &one_len), DJ_EOK);
			assert_int_equal(ol[i], one_len);
			assert_memory_equal(wr[i], one, one_len);
			in[i] = wr[i];
			out[i] = back[i];
		}
		/* tamper with every third token: it alone fails */
		for (i = 0; i < n; i += 3)
			wr[i][ol[i] - 1 - i % ol[i]] ^= 0x80;
		assert_int_equal(js_keystore__kwp_many(u, 0, n, in, ol, out, JS_TOKEN_MAX, bl, rets),
				 DJ_EOK);
		for (i = 0; i < n; i++) {
			if (i % 3 == 0) {
				assert_int_equal(rets[i], DJ_EUNWRAP);
				assert_int_equal(js_keystore__kwp(u, 0, wr[i], ol[i], one, sizeof(one),
								  &one_len), DJ_EUNWRAP);
				continue;
			}
			assert_int_equal(rets[i], DJ_EOK);
			assert_int_equal(bl[i], len[i]);
			assert_memory_equal(back[i], plain[i], len[i]);
		}
	}
	/* lengths the primitive refuses are refused item by item, the rest still done */
	len[0] = 0;
	len[1] = 24;
	in[0] = in[1] = plain[0];
	out[0] = wr[0];
	out[1] = wr[1];
	first_refused(w, 1, in, len, out, ol);
	len[0] = 20;	/* not whole semiblocks */
	in[1] = wr[1];
	len[1] = ol[1];
	out[0] = back[0];
	out[1] = back[1];
	first_refused(u, 0, in, len, out, bl);
	assert_memory_equal(back[1], plain[0], 24);
	assert_int_equal(js_keystore__kwp_many(u, 0, JS_KS_BATCH_MAX + 1, in, len, out,
					       JS_TOKEN_MAX, bl, rets), DJ_EINVAL);
	EVP_CIPHER_CTX_free(w);
	EVP_CIPHER_CTX_free(u);
}

/* open_root_many and seal_many agree with open_root and seal, item by item */
static void test_batched_tokens(void **state)
{
	struct js_keystore *ks = NULL;
	uint8_t euis[4][LW_EUI_LEN], toks[4][JS_TOKEN_MAX], sealed[4][JS_TOKEN_MAX];
	uint8_t labels[4][JS_LABEL_MAX], secret[64], src[65];
	const uint8_t *eu[4], *tk[4], *lb[4], *sc[4];
	uint8_t *so[4];
	size_t tl[4], ll[4], sl[4], sol[4], slen;
	struct js_root_keys rk[4], one;
	int rets[4];

	(void)state;
	assert_int_equal(js_keystore_new(master_a, &ks), DJ_EOK);
	for (int i = 0; i < 4; i++) {
		memcpy(euis[i], dev_eui, LW_EUI_LEN);
		euis[i][7] = (uint8_t)i;
		/* two 1.1 devices, two 1.0.x devices: two token lengths in one batch */
		assert_int_equal(js_keystore_seal_root(ks, euis[i], app_key, i % 2 ? NULL : nwk_key,
						       toks[i], &tl[i]), DJ_EOK);
		eu[i] = euis[i];
		tk[i] = toks[i];
	}
	eu[3] = dev_eui2;	/* a token opened for another device: refused alone */
	assert_int_equal(js_keystore_open_root_many(ks, 4, eu, tk, tl, rk, rets), DJ_EOK);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(rets[i], DJ_EOK);
		assert_int_equal(js_keystore_open_root(ks, euis[i], toks[i], tl[i], &one), DJ_EOK);
		assert_int_equal(rk[i].has_nwk_key, one.has_nwk_key);
		assert_true(lw_key_equal(&rk[i].app_key, &one.app_key));
		assert_true(lw_key_equal(&rk[i].nwk_key, &one.nwk_key));
		js_root_keys_wipe(&rk[i]);
		js_root_keys_wipe(&one);
	}
	assert_int_equal(rets[3], DJ_EUNWRAP);

	for (size_t b = 0; b < sizeof(src); b++)
		src[b] = (uint8_t)(b * 13 + 1);
	for (int i = 0; i < 4; i++) {
		ll[i] = js_keystore_label(JS_PURPOSE_SESSION, euis[i], (size_t)(i + 4), labels[i]);
		lb[i] = labels[i];
		sc[i] = src;
		sl[i] = (size_t)(8 + 8 * i);
		so[i] = sealed[i];
	}
	sl[2] = 65;	/* too large a secret: refused alone */
	assert_int_equal(js_keystore_seal_many(ks, 4, lb, ll, sc, sl, so, sol, rets), DJ_EOK);
	for (int i = 0; i < 4; i++) {
		if (i == 2) {
			assert_int_equal(rets[i], DJ_EINVAL);
			continue;
		}
		assert_int_equal(rets[i], DJ_EOK);
		assert_int_equal(js_keystore_open(ks, labels[i], ll[i], sealed[i], sol[i], secret,
						  sizeof(secret), &slen), DJ_EOK);
		assert_int_equal(slen, sl[i]);
		assert_memory_equal(secret, src, slen);
	}
	js_keystore_free(ks);
}

/* the KCV tells keys apart, is stable, and is shared by a dup */
static void test_kcv(void **state)
{
	struct js_keystore *a = NULL, *b = NULL, *a2 = NULL;
	uint8_t ka[JS_KCV_LEN], kb[JS_KCV_LEN], ka2[JS_KCV_LEN];

	(void)state;
	assert_int_equal(js_keystore_new(master_a, &a), DJ_EOK);
	assert_int_equal(js_keystore_new(master_b, &b), DJ_EOK);
	assert_int_equal(js_keystore_dup(a, &a2), DJ_EOK);
	js_keystore_kcv(a, ka);
	js_keystore_kcv(b, kb);
	js_keystore_kcv(a2, ka2);
	assert_memory_not_equal(ka, kb, JS_KCV_LEN);
	assert_memory_equal(ka, ka2, JS_KCV_LEN);
	/* it is not a prefix of the key itself */
	assert_memory_not_equal(ka, master_a, JS_KCV_LEN);
	js_keystore_free(a);
	js_keystore_free(a2);
	js_keystore_free(b);
}

/* master key file: mode, size, hex and raw forms, create_master */
static void test_master_file(void **state)
{
	char path[PATH_MAX_LEN], text[2 * JS_MASTER_KEY_LEN + 2];
	uint8_t key[JS_MASTER_KEY_LEN], key2[JS_MASTER_KEY_LEN];
	struct stat st;

	(void)state;
	tmp_path(path, "raw");
	write_file(path, master_a, sizeof(master_a), 0644);
	assert_int_equal(js_keystore_read_master(path, key), DJ_EFILEMODE);
	assert_int_equal(chmod(path, 0640), 0);
	assert_int_equal(js_keystore_read_master(path, key), DJ_EFILEMODE);
	assert_int_equal(chmod(path, 0600), 0);
	assert_int_equal(js_keystore_read_master(path, key), DJ_EOK);
	assert_memory_equal(key, master_a, sizeof(key));
	unlink(path);

	write_file(path, master_a, 31, 0600);
	assert_int_equal(js_keystore_read_master(path, key), DJ_EMALFORMED);
	unlink(path);
	{
		uint8_t b33[33] = { 0 };
		write_file(path, b33, sizeof(b33), 0600);
		assert_int_equal(js_keystore_read_master(path, key), DJ_EMALFORMED);
		unlink(path);
	}

	dj_hex_format(master_a, sizeof(master_a), text);
	write_file(path, text, 2 * JS_MASTER_KEY_LEN, 0600);
	memset(key, 0, sizeof(key));
	assert_int_equal(js_keystore_read_master(path, key), DJ_EOK);
	assert_memory_equal(key, master_a, sizeof(key));
	unlink(path);
	strcat(text, "\n");
	write_file(path, text, strlen(text), 0400);
	memset(key, 0, sizeof(key));
	assert_int_equal(js_keystore_read_master(path, key), DJ_EOK);
	assert_memory_equal(key, master_a, sizeof(key));
	unlink(path);
	text[5] = 'g';
	write_file(path, text, strlen(text), 0600);
	assert_int_equal(js_keystore_read_master(path, key), DJ_EMALFORMED);
	unlink(path);

	assert_int_equal(js_keystore_read_master(path, key), DJ_ENOENT);

	/* a directory is not a regular file */
	tmp_path(path, "dir");
	assert_int_equal(mkdir(path, 0700), 0);
	assert_int_equal(js_keystore_read_master(path, key), DJ_EFILEMODE);
	rmdir(path);

	/* create_master: 0600 even under a permissive umask, readable back, no overwrite */
	tmp_path(path, "new");
	{
		mode_t old = umask(0);
		assert_int_equal(js_keystore_create_master(path), DJ_EOK);
		umask(old);
	}
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	assert_int_equal(st.st_size, 2 * JS_MASTER_KEY_LEN + 1);
	assert_int_equal(js_keystore_read_master(path, key), DJ_EOK);
	assert_int_equal(js_keystore_create_master(path), DJ_EEXIST);
	assert_int_equal(js_keystore_read_master(path, key2), DJ_EOK);
	assert_memory_equal(key, key2, sizeof(key));	/* not overwritten */
	unlink(path);
}

DJ_TEST_MAIN(
	cmocka_unit_test(test_rfc5649_vectors),
	cmocka_unit_test(test_roundtrip),
	cmocka_unit_test(test_refusals),
	cmocka_unit_test(test_batched),
	cmocka_unit_test(test_batched_tokens),
	cmocka_unit_test(test_kcv),
	cmocka_unit_test(test_master_file))
