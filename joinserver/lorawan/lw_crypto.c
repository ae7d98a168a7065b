/*
 * lw_crypto.c - AES-128 ECB and AES-CMAC with contexts fetched once and rekeyed in place.
 *
 * Why this shape: a LoRaWAN 1.1 join needs about a dozen AES blocks under four keys. Creating a
 * fresh OpenSSL context per operation costs more than the AES itself (OpenSSL 3 fetches the
 * algorithm from the provider each time), so each context is created once and only rekeyed; a
 * context already holding the requested key is not even rekeyed. Serial numbers, not key bytes,
 * identify what a context holds, so the cache check is a single compare and never touches keys.
 *
 * AES-CMAC (RFC 4493) is computed here on the ECB context rather than through EVP_MAC: measured on
 * the reference machine, EVP_MAC costs about 200 ns even for an unchanged key and 490 ns with a new
 * one, while CMAC over the already keyed ECB context costs one block per 16 bytes plus one for the
 * subkeys. The NwkKey schedule then serves both the Join-request MIC and the key derivations. The
 * unit tests check this CMAC against OpenSSL's EVP_MAC on random inputs of every length.
 */
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>

#include "common/dj_err.h"
#include "common/dj_hex.h"
#include "common/dj_secmem.h"
#include "lorawan/lw_crypto.h"

struct lw_crypto {
	EVP_CIPHER *ecb;	/* fetched AES-128-ECB */
	EVP_CIPHER_CTX *enc;	/* ECB encrypt, rekeyed per key */
	EVP_CIPHER_CTX *dec;	/* ECB decrypt, rekeyed per key */
	uint64_t enc_serial, dec_serial;	/* key held by each context; 0 = none */
	uint64_t sub_serial;			/* key whose CMAC subkeys are in k1, k2 */
	uint8_t k1[LW_BLOCK_LEN], k2[LW_BLOCK_LEN];	/* RFC 4493 §2.3 subkeys */
};

static _Atomic uint64_t key_serial_next = 1;

void lw_key_set(struct lw_key *key, const uint8_t raw[LW_KEY_LEN])
{
	memcpy(key->priv_bytes, raw, LW_KEY_LEN);
	key->priv_serial = atomic_fetch_add_explicit(&key_serial_next, 1, memory_order_relaxed);
}

void lw_key_export(const struct lw_key *key, uint8_t raw[LW_KEY_LEN])
{
	memcpy(raw, key->priv_bytes, LW_KEY_LEN);
}

int lw_key_equal(const struct lw_key *a, const struct lw_key *b)
{
	return CRYPTO_memcmp(a->priv_bytes, b->priv_bytes, LW_KEY_LEN) == 0;
}

void lw_key_wipe(struct lw_key *key)
{
	if (key != NULL)
		OPENSSL_cleanse(key, sizeof(*key));
}

void lw_crypto_free(struct lw_crypto *cx)
{
	if (cx == NULL)
		return;
	EVP_CIPHER_CTX_free(cx->enc);	/* frees and cleanses the key schedule */
	EVP_CIPHER_CTX_free(cx->dec);
	EVP_CIPHER_free(cx->ecb);
	OPENSSL_clear_free(cx, sizeof(*cx));
}

int lw_crypto_new(struct lw_crypto **out)
{
	struct lw_crypto *cx;
	int ret = DJ_ECRYPTO;

	/* The contexts will hold root-key schedules, the struct the CMAC subkeys: the arena. */
	dj_secmem_enter();
	cx = OPENSSL_zalloc(sizeof(*cx));
	if (cx == NULL) {
		dj_secmem_leave();
		return DJ_ENOMEM;
	}
	cx->ecb = EVP_CIPHER_fetch(NULL, "AES-128-ECB", NULL);
	if (cx->ecb == NULL)
		goto out;
	cx->enc = EVP_CIPHER_CTX_new();
	cx->dec = EVP_CIPHER_CTX_new();
	if (cx->enc == NULL || cx->dec == NULL)
		goto out;
	/* No padding setting: EVP_Cipher() below works on whole blocks and never pads, and
	 * leaving the flag alone keeps each rekey free of OSSL_PARAM handling. */
	if (EVP_EncryptInit_ex2(cx->enc, cx->ecb, NULL, NULL, NULL) != 1 ||
	    EVP_DecryptInit_ex2(cx->dec, cx->ecb, NULL, NULL, NULL) != 1)
		goto out;
	*out = cx;
	cx = NULL;
	ret = DJ_EOK;
out:
	lw_crypto_free(cx);
	dj_secmem_leave();
	return ret;
}

int lw_crypto_ecb(struct lw_crypto *cx, const struct lw_key *key, int enc, const uint8_t *in,
		  uint8_t *out, size_t len)
{
	EVP_CIPHER_CTX *ctx = enc ? cx->enc : cx->dec;
	uint64_t *held = enc ? &cx->enc_serial : &cx->dec_serial;

	if (len == 0 || len % LW_BLOCK_LEN != 0 || len > LW_ECB_MAX || key->priv_serial == 0)
		return DJ_EINVAL;
	if (*held != key->priv_serial) {
		*held = 0;
		if (EVP_CipherInit_ex2(ctx, NULL, key->priv_bytes, NULL, enc, NULL) != 1)
			return DJ_ECRYPTO;
		*held = key->priv_serial;
	}
	/* EVP_Cipher(): the provider's one-shot ECB on whole blocks, no update buffering */
	if (EVP_Cipher(ctx, out, in, (unsigned int)len) <= 0)
		return DJ_ECRYPTO;
	return DJ_EOK;
}

/* dbl - RFC 4493 §2.3 doubling in GF(2^128), on two 64-bit halves, without a secret-dependent
 * branch */
static void dbl(const uint8_t in[LW_BLOCK_LEN], uint8_t out[LW_BLOCK_LEN])
{
	uint64_t hi = 0, lo = 0;

	for (int i = 0; i < 8; i++) {
		hi = hi << 8 | in[i];
		lo = lo << 8 | in[8 + i];
	}
	uint64_t carry = hi >> 63;

	hi = hi << 1 | lo >> 63;
	lo = lo << 1 ^ (0x87 & (0 - carry));
	for (int i = 7; i >= 0; i--) {
		out[i] = (uint8_t)hi;
		out[8 + i] = (uint8_t)lo;
		hi >>= 8;
		lo >>= 8;
	}
}

int lw_crypto_cmac(struct lw_crypto *cx, const struct lw_key *key, const uint8_t *msg, size_t len,
		   uint8_t tag[LW_BLOCK_LEN])
{
	static const uint8_t zero[LW_BLOCK_LEN];
	uint8_t x[LW_BLOCK_LEN], last[LW_BLOCK_LEN];
	size_t nblocks, i, rem;
	int ret;

	if (cx->sub_serial != key->priv_serial || key->priv_serial == 0) {
		cx->sub_serial = 0;
		ret = lw_crypto_ecb(cx, key, 1, zero, x, LW_BLOCK_LEN);	/* L = AES-K(0) */
		if (ret != DJ_EOK)
			goto out;
		dbl(x, cx->k1);
		dbl(cx->k1, cx->k2);
		cx->sub_serial = key->priv_serial;
	}
	nblocks = len == 0 ? 1 : (len + LW_BLOCK_LEN - 1) / LW_BLOCK_LEN;
	rem = len - (nblocks - 1) * LW_BLOCK_LEN;
	if (rem == LW_BLOCK_LEN) {
		for (i = 0; i < LW_BLOCK_LEN; i++)
			last[i] = msg[len - LW_BLOCK_LEN + i] ^ cx->k1[i];
	} else {
		memset(last, 0, sizeof(last));
		if (rem > 0)
			memcpy(last, msg + (nblocks - 1) * LW_BLOCK_LEN, rem);
		last[rem] = 0x80;
		for (i = 0; i < LW_BLOCK_LEN; i++)
			last[i] ^= cx->k2[i];
	}
	memset(x, 0, sizeof(x));
	for (size_t b = 0; b + 1 < nblocks; b++) {
		for (i = 0; i < LW_BLOCK_LEN; i++)
			x[i] ^= msg[b * LW_BLOCK_LEN + i];
		ret = lw_crypto_ecb(cx, key, 1, x, x, LW_BLOCK_LEN);
		if (ret != DJ_EOK)
			goto out;
	}
	for (i = 0; i < LW_BLOCK_LEN; i++)
		x[i] ^= last[i];
	ret = lw_crypto_ecb(cx, key, 1, x, x, LW_BLOCK_LEN);
	if (ret == DJ_EOK)
		memcpy(tag, x, LW_BLOCK_LEN);
out:
	OPENSSL_cleanse(x, sizeof(x));
	OPENSSL_cleanse(last, sizeof(last));
	return ret;
}

int lw_crypto_derive(struct lw_crypto *cx, const struct lw_key *key,
		     const uint8_t block[LW_BLOCK_LEN], struct lw_key *out)
{
	uint8_t raw[LW_KEY_LEN];
	int ret;

	ret = lw_crypto_ecb(cx, key, 1, block, raw, LW_BLOCK_LEN);
	if (ret == DJ_EOK)
		lw_key_set(out, raw);
	OPENSSL_cleanse(raw, sizeof(raw));
	return ret;
}

int lw_crypto_block128_ctx_new(const uint8_t *kek, size_t kek_len, int enc, EVP_CIPHER_CTX **out)
{
	EVP_CIPHER_CTX *ctx = NULL;
	EVP_CIPHER *ecb = NULL;
	const char *name;
	int ret = DJ_EINVAL;

	dj_secmem_enter();	/* the schedule of a master key or a KEK: the arena */
	switch (kek_len) {
	case 16:
		name = "AES-128-ECB";
		break;
	case 24:
		name = "AES-192-ECB";
		break;
	case 32:
		name = "AES-256-ECB";
		break;
	default:
		goto out;
	}
	ret = DJ_ENOMEM;
	ctx = EVP_CIPHER_CTX_new();
	if (ctx == NULL)
		goto out;
	ret = DJ_ECRYPTO;
	ecb = EVP_CIPHER_fetch(NULL, name, NULL);
	if (ecb == NULL || EVP_CipherInit_ex2(ctx, ecb, kek, NULL, enc, NULL) != 1 ||
	    EVP_CIPHER_CTX_set_padding(ctx, 0) != 1)
		goto out;
	*out = ctx;
	ctx = NULL;
	ret = DJ_EOK;
out:
	if (ret == DJ_ECRYPTO)
		ERR_clear_error();
	EVP_CIPHER_free(ecb);	/* the context keeps its own reference */
	EVP_CIPHER_CTX_free(ctx);
	dj_secmem_leave();
	return ret;
}

void lw_crypto_block128(const unsigned char in[LW_BLOCK_LEN], unsigned char out[LW_BLOCK_LEN],
			const void *key)
{
	struct lw_block128 *b = (struct lw_block128 *)(uintptr_t)key;

	/* EVP_Cipher(): the provider's one-shot ECB, without EVP_CipherUpdate's buffering */
	if (EVP_Cipher(b->ctx, out, in, LW_BLOCK_LEN) <= 0)
		b->failed = 1;
}

int lw_crypto_kw_lockstep(EVP_CIPHER_CTX *ctx, int enc, size_t m, struct lw_kw_lane *lane,
			 size_t k)
{
	/* Each block is written as one 16-byte store: two 8-byte stores read back by the AES
	 * code's 16-byte load would stall store forwarding at every step. */
	typedef uint64_t block_t __attribute__((vector_size(16), aligned(16)));
	block_t buf[LW_KW_LANES_MAX];
	int ret = DJ_EOK;

	if (m < 2 || m > LW_KW_SEMI_MAX || k == 0 || k > LW_KW_LANES_MAX)
		return DJ_EINVAL;
	for (size_t s = 0; s < 6 * m; s++) {
		size_t j = enc ? s / m : 5 - s / m;
		size_t i = enc ? s % m + 1 : m - s % m;
		uint8_t tb[LW_KW_SEMIBLOCK];
		uint64_t t;

		dj_be_put((uint64_t)(m * j + i), tb, LW_KW_SEMIBLOCK);	/* t, big-endian */
		memcpy(&t, tb, sizeof(t));
		for (size_t x = 0; x < k; x++)
			buf[x] = (block_t){ enc ? lane[x].a : lane[x].a ^ t, lane[x].r[i - 1] };
		if (EVP_Cipher(ctx, (uint8_t *)buf, (const uint8_t *)buf,
			       (unsigned int)(k * LW_BLOCK_LEN)) <= 0) {
			ret = DJ_ECRYPTO;
			break;
		}
		for (size_t x = 0; x < k; x++) {
			lane[x].a = enc ? buf[x][0] ^ t : buf[x][0];
			lane[x].r[i - 1] = buf[x][1];
		}
	}
	OPENSSL_cleanse(buf, k * sizeof(buf[0]));	/* only the blocks used */
	return ret;
}

void lw_crypto_forget(struct lw_crypto *cx)
{
	static const uint8_t zero[LW_KEY_LEN];

	/* Overwrite each schedule that holds a key with the schedule of a fixed, public key. */
	if (cx->enc_serial != 0 && EVP_CipherInit_ex2(cx->enc, NULL, zero, NULL, 1, NULL) == 1)
		cx->enc_serial = 0;
	if (cx->dec_serial != 0 && EVP_CipherInit_ex2(cx->dec, NULL, zero, NULL, 0, NULL) == 1)
		cx->dec_serial = 0;
	if (cx->sub_serial != 0) {
		OPENSSL_cleanse(cx->k1, sizeof(cx->k1));
		OPENSSL_cleanse(cx->k2, sizeof(cx->k2));
		cx->sub_serial = 0;
	}
}
