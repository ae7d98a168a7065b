/*
 * lw_crypto.h - the AES-128 primitives of LoRaWAN: ECB blocks and AES-CMAC, with reused contexts.
 *
 * DESCRIPTION
 *	A struct lw_crypto holds the OpenSSL objects fetched once (AES-128-ECB in both directions and
 *	AES-CMAC) and rekeys them per operation. It also remembers which key each context holds, so
 *	that five derivations under one root key cost one key schedule, not five. One struct lw_crypto
 *	per thread; it is not thread-safe.
 *
 *	Keys are struct lw_key values. Code outside lw_crypto.c and the key stores treats them as
 *	opaque: it passes them to these functions and wipes them with lw_key_wipe(), it does not read
 *	the bytes. lw_crypto_forget() wipes the key schedules a context still holds; the join engine
 *	calls it at the end of every request (DESIGN.md trust rule 5: keys are wiped after use).
 *
 *	Nothing here allocates after lw_crypto_new(), and nothing fetches an algorithm.
 */
#ifndef DJ_JOINSERVER_LW_CRYPTO_H
#define DJ_JOINSERVER_LW_CRYPTO_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/types.h>

#include "common/dj_compiler.h"

#define LW_KEY_LEN 16	/* AES-128, TS001-1.1 §6.1.1.3 */
#define LW_BLOCK_LEN 16
#define LW_MIC_LEN 4	/* TS001-1.1 §4.4 */
#define LW_ECB_MAX 1024	/* most bytes one lw_crypto_ecb() call takes */

/*
 * A 128-bit key. The fields are private to lw_crypto.c and the key stores.
 * serial identifies the key value for the schedule cache; 0 means "no key".
 */
struct lw_key {
	uint8_t priv_bytes[LW_KEY_LEN];
	uint64_t priv_serial;
};

struct lw_crypto;

/*! \brief Load \p raw (16 bytes, borrowed) into \p key. The caller wipes \p raw. */
void lw_key_set(struct lw_key *key, const uint8_t raw[LW_KEY_LEN]);

/*! \brief Copy the key out, to wrap it for a peer or for storage. The caller wipes \p raw. */
void lw_key_export(const struct lw_key *key, uint8_t raw[LW_KEY_LEN]);

/*! \brief Whether two keys hold the same value (constant time). */
int lw_key_equal(const struct lw_key *a, const struct lw_key *b);

/*! \brief Wipe \p key (NULL is accepted). */
void lw_key_wipe(struct lw_key *key);

/*!
 * \brief Create a crypto context: fetches AES-128-ECB and CMAC once.
 * \param out  receives the context on success only; free with lw_crypto_free().
 * \retval DJ_EOK, DJ_ENOMEM, DJ_ECRYPTO
 */
int lw_crypto_new(struct lw_crypto **out) DJ_MUSTCHECK;

/*! \brief Wipe and free \p cx (NULL is accepted). */
void lw_crypto_free(struct lw_crypto *cx);

/*!
 * \brief AES-128 encrypt (\p enc != 0) or decrypt \p len bytes (a multiple of 16) in ECB mode.
 *        \p in and \p out may be the same buffer.
 * \retval DJ_EOK
 * \retval DJ_EINVAL  \p len is 0, not a multiple of 16 or above LW_ECB_MAX, or \p key is wiped
 * \retval DJ_ECRYPTO
 */
int lw_crypto_ecb(struct lw_crypto *cx, const struct lw_key *key, int enc, const uint8_t *in,
		  uint8_t *out, size_t len) DJ_MUSTCHECK;

/*!
 * \brief AES-CMAC (RFC 4493) of \p msg under \p key; the full 16-byte tag goes to \p tag.
 *        \p msg may be NULL when \p len is 0.
 * \retval DJ_EOK, DJ_EINVAL (\p key is wiped), DJ_ECRYPTO
 */
int lw_crypto_cmac(struct lw_crypto *cx, const struct lw_key *key, const uint8_t *msg, size_t len,
		   uint8_t tag[LW_BLOCK_LEN]) DJ_MUSTCHECK;

/*!
 * \brief Derive a key: \p out = aes128_encrypt(\p key, \p block). The form of every LoRaWAN key
 *        derivation (TS001-1.1 §6.2.5-§6.2.6).
 */
int lw_crypto_derive(struct lw_crypto *cx, const struct lw_key *key,
		     const uint8_t block[LW_BLOCK_LEN], struct lw_key *out) DJ_MUSTCHECK;

/*
 * The `key` argument of OpenSSL's CRYPTO_128_wrap/unwrap(_pad) when the block function is
 * lw_crypto_block128(): a pre-keyed AES-ECB context (any key size) and a failure flag. Key
 * wrapping (RFC 3394 KeyEnvelopes, RFC 5649 key-store tokens) runs this way because OpenSSL 3.0's
 * own wrap ciphers use table-based AES, several times slower than the EVP ECB path.
 */
struct lw_block128 {
	EVP_CIPHER_CTX *ctx;	/* borrowed */
	int failed;		/* set when an AES operation failed */
};

/*!
 * \brief An AES-ECB context keyed with \p kek (16, 24 or 32 bytes) for one direction, to run
 *        lw_crypto_block128() on. Fetches the algorithm here, once; never on the join path.
 * \param out  receives the context on success only; free with EVP_CIPHER_CTX_free().
 * \retval DJ_EOK, DJ_EINVAL (KEK length), DJ_ENOMEM, DJ_ECRYPTO
 */
int lw_crypto_block128_ctx_new(const uint8_t *kek, size_t kek_len, int enc,
			       EVP_CIPHER_CTX **out) DJ_MUSTCHECK;

/*! \brief block128_f for CRYPTO_128_(un)wrap(_pad): one block through ((struct lw_block128 *)key)->ctx. */
void lw_crypto_block128(const unsigned char in[LW_BLOCK_LEN], unsigned char out[LW_BLOCK_LEN],
			const void *key);

#define LW_KW_SEMIBLOCK 8	/* RFC 3394 §2: 64-bit semiblocks */
#define LW_KW_SEMI_MAX 12	/* most semiblocks of one lane (a 96-byte key-store token) */
#define LW_KW_LANES_MAX 32	/* most lanes of one lockstep run */

/*
 * One input of lw_crypto_kw_lockstep(): the register A and the semiblocks R[1..m] of RFC 3394
 * §2.2, each semiblock held as its 8 bytes in a uint64_t (memory order, so XOR works bytewise).
 * The caller loads A with its IV (RFC 3394 §2.2.3.1, or RFC 5649's AIV) and checks it after an
 * unwrap; the caller wipes the lanes.
 */
struct lw_kw_lane {
	uint64_t a;
	uint64_t r[LW_KW_SEMI_MAX];
};

/*!
 * \brief RFC 3394's W (\p enc != 0) or W^-1 (index-based form of §2.2.2) on \p k independent
 *        lanes of \p m semiblocks each, under one pre-keyed AES-ECB context (\p ctx, in the
 *        direction of \p enc): one EVP_Cipher() call of k blocks per step, so that k wraps cost
 *        6*m calls instead of 6*m*k. Lane x's chain is exactly the one CRYPTO_128_(un)wrap
 *        would run on it (the key store and the KeyEnvelopes check this against OpenSSL).
 * \retval DJ_EOK
 * \retval DJ_EINVAL  \p m is not 2..LW_KW_SEMI_MAX or \p k not 1..LW_KW_LANES_MAX
 * \retval DJ_ECRYPTO  the lanes then hold garbage (the caller wipes them)
 */
int lw_crypto_kw_lockstep(EVP_CIPHER_CTX *ctx, int enc, size_t m, struct lw_kw_lane *lane,
			  size_t k) DJ_MUSTCHECK;

/*! \brief Wipe every key schedule \p cx still holds. Cheap when nothing is cached. */
void lw_crypto_forget(struct lw_crypto *cx);

#endif /* DJ_JOINSERVER_LW_CRYPTO_H */
