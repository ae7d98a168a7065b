/*
 * js_kwp.c - RFC 5649 key wrap with padding on a pre-keyed AES-ECB context.
 *
 * RFC 5649 §3: the alternative initial value is A65959A6 | MLI (the plaintext length, 32-bit big
 * endian); the plaintext is zero-padded to a multiple of 8 bytes. One semiblock is wrapped as a
 * single AES block; more use the RFC 3394 §2.2.1 wrapping process (6n AES operations, the
 * counter t = n*j + i XORed into A). Unwrapping checks the constant, that MLI fits the length,
 * and that the padding is zero, and reveals nothing else: every failure is DJ_EUNWRAP.
 */
#include <string.h>

#include <openssl/crypto.h>

#include "dj_err.h"
#include "js_kwp.h"

#define SEMI 8			/* RFC 3394 semiblock */
#define AIV_CONST 0xa65959a6u	/* RFC 5649 §3 */
#define ROUNDS 6		/* RFC 3394 §2.2.1: j = 0..5 */

/* aes_block - one AES operation through the context */
static int aes_block(EVP_CIPHER_CTX *ctx, uint8_t b[2 * SEMI])
{
	return EVP_Cipher(ctx, b, b, 2 * SEMI) > 0 ? DJ_EOK : DJ_ECRYPTO;
}

/* xor_t - A ^= t, t as 64-bit big endian */
static void xor_t(uint8_t a[SEMI], uint64_t t)
{
	for (int k = SEMI - 1; k >= 0 && t != 0; k--, t >>= 8)
		a[k] ^= (uint8_t)t;
}

size_t js_kwp_wrapped_len(size_t len)
{
	return ((len + SEMI - 1) / SEMI + 1) * SEMI;
}

int js_kwp_wrap(EVP_CIPHER_CTX *enc, const uint8_t *in, size_t len, uint8_t *out)
{
	uint8_t b[2 * SEMI];
	size_t n, i;
	int ret = DJ_EOK;

	if (len == 0 || len > JS_KWP_MAX_IN)
		return DJ_EINVAL;
	n = (len + SEMI - 1) / SEMI;
	/* out = AIV | P | zero padding; R[i] lives at out + 8i */
	out[0] = (uint8_t)(AIV_CONST >> 24);
	out[1] = (uint8_t)(AIV_CONST >> 16);
	out[2] = (uint8_t)(AIV_CONST >> 8);
	out[3] = (uint8_t)AIV_CONST;
	out[4] = (uint8_t)(len >> 24);
	out[5] = (uint8_t)(len >> 16);
	out[6] = (uint8_t)(len >> 8);
	out[7] = (uint8_t)len;
	memcpy(out + SEMI, in, len);
	memset(out + SEMI + len, 0, n * SEMI - len);
	if (n == 1)
		return aes_block(enc, out);
	memcpy(b, out, SEMI);	/* A */
	for (unsigned j = 0; j < ROUNDS; j++) {
		for (i = 1; i <= n; i++) {
			memcpy(b + SEMI, out + i * SEMI, SEMI);
			ret = aes_block(enc, b);
			if (ret != DJ_EOK)
				goto out;
			xor_t(b, (uint64_t)n * j + i);
			memcpy(out + i * SEMI, b + SEMI, SEMI);
		}
	}
	memcpy(out, b, SEMI);
out:
	OPENSSL_cleanse(b, sizeof(b));
	return ret;
}

int js_kwp_unwrap(EVP_CIPHER_CTX *dec, const uint8_t *in, size_t in_len, uint8_t *out,
		  size_t *out_len)
{
	uint8_t b[2 * SEMI];
	size_t n, i, mli, pad;
	unsigned bad = 0;
	int ret = DJ_EOK;

	if (in_len < 2 * SEMI || in_len % SEMI != 0 || in_len > JS_KWP_MAX_IN + SEMI)
		return DJ_EINVAL;
	n = in_len / SEMI - 1;
	if (n == 1) {
		memcpy(b, in, 2 * SEMI);
		ret = aes_block(dec, b);
		if (ret != DJ_EOK)
			goto out;
		memcpy(out, b + SEMI, SEMI);
	} else {
		memcpy(b, in, SEMI);
		memcpy(out, in + SEMI, n * SEMI);	/* R[i] at out + 8(i-1) */
		for (int j = ROUNDS - 1; j >= 0; j--) {
			for (i = n; i >= 1; i--) {
				xor_t(b, (uint64_t)n * (unsigned)j + i);
				memcpy(b + SEMI, out + (i - 1) * SEMI, SEMI);
				ret = aes_block(dec, b);
				if (ret != DJ_EOK)
					goto out;
				memcpy(out + (i - 1) * SEMI, b + SEMI, SEMI);
			}
		}
	}
	/* b[0..8) is A: check the constant, MLI and the padding without early exits */
	bad |= (unsigned)(b[0] ^ (uint8_t)(AIV_CONST >> 24)) | (b[1] ^ (uint8_t)(AIV_CONST >> 16)) |
	       (b[2] ^ (uint8_t)(AIV_CONST >> 8)) | (b[3] ^ (uint8_t)AIV_CONST);
	mli = (size_t)b[4] << 24 | (size_t)b[5] << 16 | (size_t)b[6] << 8 | b[7];
	bad |= (unsigned)(mli <= SEMI * (n - 1) || mli > SEMI * n);
	pad = bad ? 0 : SEMI * n - mli;
	for (i = 0; i < pad; i++)
		bad |= out[mli + i];
	if (bad) {
		OPENSSL_cleanse(out, n * SEMI);
		ret = DJ_EUNWRAP;
		goto out;
	}
	*out_len = mli;
out:
	OPENSSL_cleanse(b, sizeof(b));
	return ret;
}
