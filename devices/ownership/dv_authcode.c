/*
 * dv_authcode.c - auth codes (dv_authcode.h): generation, PBKDF2-HMAC-SHA256 hashing, checks.
 *
 * A code must never be recoverable from the store or the logs (a stolen store must not let
 * anyone transfer devices away), so only salt | iterations | hash is kept, comparisons are
 * constant time, and every buffer that held a code or its hash is wiped.
 */
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "common/dj_err.h"
#include "ownership/dv_authcode.h"

/* alphabet - Crockford's base32: 32 symbols without I, L, O, U, so a code read aloud or
 * typed is not confused */
static const char alphabet[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

#define ALPHABET_BITS 5

int dv_authcode_generate(char out[DV_AUTHCODE_LEN + 1])
{
	uint8_t rnd[DV_AUTHCODE_LEN];
	size_t i;

	/* 5 bits per symbol of a 32-symbol alphabet: uniform, no modulo bias */
	if (RAND_priv_bytes(rnd, sizeof(rnd)) != 1)
		return DJ_ECRYPTO;
	for (i = 0; i < DV_AUTHCODE_LEN; i++) {
		unsigned v = rnd[i] & ((1u << ALPHABET_BITS) - 1);

		out[i] = alphabet[v];
	}
	out[DV_AUTHCODE_LEN] = '\0';
	OPENSSL_cleanse(rnd, sizeof(rnd));
	return DJ_EOK;
}

bool dv_authcode_wellformed(const char *code)
{
	size_t i;

	if (code == NULL || strlen(code) != DV_AUTHCODE_LEN)
		return false;
	for (i = 0; i < DV_AUTHCODE_LEN; i++)
		if (code[i] == '\0' || strchr(alphabet, code[i]) == NULL)
			return false;
	return true;
}

/* derive - PBKDF2-HMAC-SHA256(code, salt, iter) */
static int derive(const char *code, const uint8_t *salt, uint32_t iter,
		  uint8_t out[JS_AUTHCODE_HASH_LEN])
{
	if (iter == 0 || iter > DV_AUTHCODE_ITER_MAX)
		return DJ_EINVAL;
	if (PKCS5_PBKDF2_HMAC(code, (int)strlen(code), salt, JS_AUTHCODE_SALT_LEN, (int)iter,
			      EVP_sha256(), JS_AUTHCODE_HASH_LEN, out) != 1)
		return DJ_ECRYPTO;
	return DJ_EOK;
}

int dv_authcode_seal(const char *code, int64_t expires_at, struct js_authcode *rec)
{
	int rc;

	if (!dv_authcode_wellformed(code))
		return DJ_EINVAL;
	if (RAND_bytes(rec->salt, JS_AUTHCODE_SALT_LEN) != 1)
		return DJ_ECRYPTO;
	rec->iter = DV_AUTHCODE_ITER;
	rec->expires_at = expires_at;
	rc = derive(code, rec->salt, rec->iter, rec->hash);
	if (rc != DJ_EOK)
		OPENSSL_cleanse(rec->hash, sizeof(rec->hash));
	return rc;
}

int dv_authcode_check(const struct js_authcode *rec, const char *code, int64_t now,
		      enum dv_authcode_verdict *verdict)
{
	uint8_t h[JS_AUTHCODE_HASH_LEN];
	int rc;

	if (!dv_authcode_wellformed(code)) {
		*verdict = DV_AUTHCODE_WRONG;
		return DJ_EOK;
	}
	rc = derive(code, rec->salt, rec->iter, h);
	if (rc == DJ_EINVAL) {	/* a stored row we cannot use: treat as no code set */
		*verdict = DV_AUTHCODE_WRONG;
		return DJ_EOK;
	}
	if (rc != DJ_EOK)
		return rc;
	if (CRYPTO_memcmp(h, rec->hash, sizeof(h)) != 0)
		*verdict = DV_AUTHCODE_WRONG;
	else if (now >= rec->expires_at)
		*verdict = DV_AUTHCODE_EXPIRED;
	else
		*verdict = DV_AUTHCODE_OK;
	OPENSSL_cleanse(h, sizeof(h));
	return DJ_EOK;
}
