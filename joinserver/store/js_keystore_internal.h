/*
 * js_keystore_internal.h - the RFC 5649 primitive under js_keystore, exposed for its unit test
 * (tests/unit/test_keystore.c checks it against the RFC 5649 §6 vectors). Not installed.
 *
 * DESCRIPTION
 *	OpenSSL 3.0's "AES-256-WRAP-PAD" provider runs the table-based software AES (no AES-NI):
 *	about 7 µs to open a root token. So js_keystore runs OpenSSL's own RFC 5649 code
 *	(CRYPTO_128_wrap_pad / CRYPTO_128_unwrap_pad) over a pre-keyed AES-ECB EVP context, which
 *	takes the hardware path. Same algorithm, same bytes (the test also compares with the
 *	provider), several times faster.
 */
#ifndef DJ_JOINSERVER_JS_KEYSTORE_INTERNAL_H
#define DJ_JOINSERVER_JS_KEYSTORE_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "common/dj_compiler.h"

#define JS_KWP_OVERHEAD 8	/* RFC 5649 §4.1: the AIV semiblock */

/*!
 * \brief RFC 5649 wrap (\p enc = 1) or unwrap (\p enc = 0, the integrity check included) of
 *        \p in into \p out (\p cap bytes of room; wrap needs len rounded up to 8, plus 8).
 *        \p ctx must have been made by lw_crypto_block128_ctx_new() with the same direction.
 * \retval DJ_EOK, DJ_EINVAL (lengths), DJ_EUNWRAP (integrity check failed), DJ_ECRYPTO
 */
int js_keystore__kwp(EVP_CIPHER_CTX *ctx, int enc, const uint8_t *in, size_t len, uint8_t *out,
		     size_t cap, size_t *out_len) DJ_MUSTCHECK;

/*!
 * \brief The same as js_keystore__kwp() for \p n independent inputs at once (n <= JS_KS_BATCH_MAX),
 *        giving the same bytes. The RFC 3394 steps of each input form a strictly sequential
 *        chain of AES operations; the chains of different inputs do not depend on each other, so
 *        this runs them in lockstep: one EVP_Cipher call per step carries one block of every
 *        input of the same length, and AES-NI pipelines them. rets[i] gets each input's result
 *        (as js_keystore__kwp); out[i] has room for cap bytes.
 * \retval DJ_EOK (see rets), DJ_EINVAL
 */
int js_keystore__kwp_many(EVP_CIPHER_CTX *ctx, int enc, size_t n, const uint8_t *const in[],
			  const size_t len[], uint8_t *const out[], size_t cap, size_t out_len[],
			  int rets[]) DJ_MUSTCHECK;

#endif /* DJ_JOINSERVER_JS_KEYSTORE_INTERNAL_H */
