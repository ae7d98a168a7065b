/*
 * bi_kek.c - KeyEnvelopes: session keys wrapped under a peer's KEK (TS002 §6.4, RFC 3394).
 *
 * PURPOSE
 *	A JoinAns carries the session keys to the network server and the application server as
 *	KeyEnvelopes: AESKey is the RFC 3394 AES key wrap (default IV A6A6A6A6A6A6A6A6, §2.2.3.1)
 *	of the 16-byte key under the KEK that KEKLabel names.
 *
 * SECURITY
 *	- RFC 3394 unwrap checks the integrity register (§2.2.3), so an envelope made under another
 *	  KEK or altered in transit fails with DJ_EUNWRAP and yields no bytes (OpenSSL wipes its
 *	  output on failure; we unwrap into a local buffer and copy only on success).
 *	- bi_kek_open() refuses a plaintext envelope unless the caller allows it, and refuses one
 *	  whose label is not the KEK's: a peer cannot downgrade us to weaker protection.
 *	- The KEK is held only inside the two pre-keyed EVP contexts (EVP_CIPHER_CTX_free cleanses
 *	  their key schedules); every buffer that held a session key is wiped with OPENSSL_cleanse.
 *
 * PERFORMANCE
 *	OpenSSL 3.0's "AES-128-WRAP" provider runs table-based AES (about 134 ns per block here
 *	against about 22 ns through AES-NI), so the wrap runs as OpenSSL's own RFC 3394 code
 *	(CRYPTO_128_wrap/unwrap) over AES-ECB contexts keyed once in bi_kek_new(), one per
 *	direction, the way js_keystore.c does RFC 5649. A 1.1 JoinAns's three network keys go
 *	under one KEK: bi_kek_envelope_many() runs their wraps in lockstep, one EVP_Cipher call
 *	of three blocks per RFC 3394 step (the EVP call, not the AES, was most of a step's cost;
 *	docs/performance.md, step 11). The unit tests check it against CRYPTO_128_wrap.
 */
#include "bi/bi_kek.h"

#include <string.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/modes.h>

#include "common/dj_err.h"

#define KEK_AES_BLOCK 16		/* AES block size */
#define KEK_LEN_128 16			/* AES-128 KEK */
#define KEK_LEN_256 32			/* AES-256 KEK */
#define KEK_SEMIBLOCK 8			/* RFC 3394 §2: 64-bit blocks; the wrap adds one */
#define KEK_WRAPPED_LEN (LW_KEY_LEN + KEK_SEMIBLOCK)	/* RFC 3394 §2.2.1: n+1 semiblocks */
#define KEK_LABEL_CHAR_MIN 0x20		/* printable ASCII */
#define KEK_LABEL_CHAR_MAX 0x7e

struct bi_kek {
	char label[BI_KEK_LABEL_MAX];
	EVP_CIPHER_CTX *enc;		/* AES-ECB keyed with the KEK, encrypt direction */
	EVP_CIPHER_CTX *dec;		/* the same, decrypt direction */
};

/* label_ok - 1..BI_KEK_LABEL_MAX-1 printable ASCII characters */
static bool label_ok(const char *label)
{
	size_t n;

	if (label == NULL)
		return false;
	n = strnlen(label, BI_KEK_LABEL_MAX);
	if (n == 0 || n >= BI_KEK_LABEL_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)label[i] < KEK_LABEL_CHAR_MIN ||
		    (unsigned char)label[i] > KEK_LABEL_CHAR_MAX)
			return false;
	return true;
}

int bi_kek_new(const char *label, const uint8_t *key, size_t key_len, struct bi_kek **out)
{
	struct bi_kek *kek = NULL;
	int ret = DJ_EINVAL;

	if (out == NULL || key == NULL || !label_ok(label) ||
	    (key_len != KEK_LEN_128 && key_len != KEK_LEN_256))
		goto out;
	ret = DJ_ENOMEM;
	kek = OPENSSL_zalloc(sizeof(*kek));
	if (kek == NULL)
		goto out;
	memcpy(kek->label, label, strlen(label) + 1);
	if ((ret = lw_crypto_block128_ctx_new(key, key_len, 1, &kek->enc)) != DJ_EOK ||
	    (ret = lw_crypto_block128_ctx_new(key, key_len, 0, &kek->dec)) != DJ_EOK)
		goto out;
	*out = kek;
	kek = NULL;
	ret = DJ_EOK;
out:
	bi_kek_free(kek);
	return ret;
}

void bi_kek_free(struct bi_kek *kek)
{
	if (kek == NULL)
		return;
	EVP_CIPHER_CTX_free(kek->enc);	/* cleanses the key schedule */
	EVP_CIPHER_CTX_free(kek->dec);
	OPENSSL_clear_free(kek, sizeof(*kek));
}

const char *bi_kek_label(const struct bi_kek *kek)
{
	return kek->label;
}

int bi_kek_envelope(struct bi_kek *kek, const struct lw_key *key, struct bi_key_envelope *env)
{
	struct bi_key_envelope tmp;
	struct lw_block128 b = { .ctx = NULL, .failed = 0 };
	uint8_t raw[LW_KEY_LEN] = { 0 };
	size_t n;
	int ret = DJ_EINVAL;

	memset(&tmp, 0, sizeof(tmp));
	if (key == NULL || env == NULL)
		goto out;
	lw_key_export(key, raw);
	if (kek == NULL) {
		/* plaintext: only for a peer whose configuration says so (bi_kek.h) */
		memcpy(tmp.aes_key, raw, LW_KEY_LEN);
		tmp.aes_key_len = LW_KEY_LEN;
	} else {
		ret = DJ_ECRYPTO;
		b.ctx = kek->enc;
		n = CRYPTO_128_wrap(&b, NULL, tmp.aes_key, raw, LW_KEY_LEN, lw_crypto_block128);
		if (b.failed || n != KEK_WRAPPED_LEN)
			goto out;
		tmp.aes_key_len = n;
		memcpy(tmp.kek_label, kek->label, sizeof(tmp.kek_label));
	}
	tmp.present = true;
	memcpy(env, &tmp, sizeof(*env));
	ret = DJ_EOK;
out:
	if (ret == DJ_ECRYPTO)
		ERR_clear_error();
	OPENSSL_cleanse(raw, sizeof(raw));
	OPENSSL_cleanse(&tmp, sizeof(tmp));
	return ret;
}

/* kw_many_args - the arguments of bi_kek_envelope_many are usable */
static bool kw_many_args(size_t n, const struct lw_key *const keys[],
			 struct bi_key_envelope *const envs[])
{
	if (n == 0 || n > BI_KEK_MANY_MAX || keys == NULL || envs == NULL)
		return false;
	for (size_t i = 0; i < n; i++)
		if (keys[i] == NULL || envs[i] == NULL)
			return false;
	return true;
}

int bi_kek_envelope_many(struct bi_kek *kek, size_t n, const struct lw_key *const keys[],
			 struct bi_key_envelope *const envs[])
{
	static const uint8_t iv[KEK_SEMIBLOCK] = { 0xa6, 0xa6, 0xa6, 0xa6, 0xa6, 0xa6, 0xa6, 0xa6 };
	struct lw_kw_lane lane[BI_KEK_MANY_MAX];
	uint8_t raw[LW_KEY_LEN];
	int ret;

	if (!kw_many_args(n, keys, envs))
		return DJ_EINVAL;
	if (kek == NULL) {
		/* plaintext (bi_kek.h): one by one; a failure here leaves the earlier ones written,
		 * which cannot happen (bi_kek_envelope without a KEK fails only on NULL) */
		for (size_t i = 0; i < n; i++)
			if ((ret = bi_kek_envelope(NULL, keys[i], envs[i])) != DJ_EOK)
				return ret;
		return DJ_EOK;
	}
	/* RFC 3394 §2.2.1: A = the default IV (§2.2.3.1), R[1..2] = the key */
	for (size_t i = 0; i < n; i++) {
		memcpy(&lane[i].a, iv, KEK_SEMIBLOCK);
		lw_key_export(keys[i], raw);
		memcpy(lane[i].r, raw, LW_KEY_LEN);
	}
	OPENSSL_cleanse(raw, sizeof(raw));
	ret = lw_crypto_kw_lockstep(kek->enc, 1, LW_KEY_LEN / KEK_SEMIBLOCK, lane, n);
	if (ret == DJ_EOK) {
		/* C = A || R[1..2] (§2.2.1 step 3) */
		for (size_t i = 0; i < n; i++) {
			struct bi_key_envelope *env = envs[i];

			memset(env, 0, sizeof(*env));
			memcpy(env->aes_key, &lane[i].a, KEK_SEMIBLOCK);
			memcpy(env->aes_key + KEK_SEMIBLOCK, lane[i].r, LW_KEY_LEN);
			env->aes_key_len = KEK_WRAPPED_LEN;
			memcpy(env->kek_label, kek->label, sizeof(env->kek_label));
			env->present = true;
		}
	} else {
		ERR_clear_error();
	}
	OPENSSL_cleanse(lane, n * sizeof(lane[0]));
	return ret;
}

int bi_kek_open(struct bi_kek *kek, const struct bi_key_envelope *env, bool allow_plain,
		uint8_t raw[LW_KEY_LEN])
{
	struct lw_block128 b = { .ctx = NULL, .failed = 0 };
	uint8_t tmp[KEK_WRAPPED_LEN];
	size_t n;
	int ret = DJ_EMALFORMED;

	if (env == NULL || !env->present || raw == NULL)
		goto out;
	if (memchr(env->kek_label, '\0', sizeof(env->kek_label)) == NULL)
		goto out;
	if (env->kek_label[0] == '\0') {
		ret = DJ_EACCES;
		if (!allow_plain)
			goto out;
		ret = DJ_EMALFORMED;
		if (env->aes_key_len != LW_KEY_LEN)
			goto out;
		memcpy(raw, env->aes_key, LW_KEY_LEN);
		ret = DJ_EOK;
		goto out;
	}
	/* labels are public names: a plain comparison is enough */
	ret = DJ_EACCES;
	if (kek == NULL || strcmp(env->kek_label, kek->label) != 0)
		goto out;
	ret = DJ_EMALFORMED;
	if (env->aes_key_len != KEK_WRAPPED_LEN)
		goto out;
	b.ctx = kek->dec;
	/* CRYPTO_128_unwrap checks the RFC 3394 IV and wipes its output when the check fails */
	n = CRYPTO_128_unwrap(&b, NULL, tmp, env->aes_key, env->aes_key_len, lw_crypto_block128);
	ret = b.failed ? DJ_ECRYPTO : DJ_EUNWRAP;
	if (b.failed || n != LW_KEY_LEN)
		goto out;
	memcpy(raw, tmp, LW_KEY_LEN);
	ret = DJ_EOK;
out:
	if (ret == DJ_ECRYPTO)
		ERR_clear_error();
	OPENSSL_cleanse(tmp, sizeof(tmp));
	return ret;
}
