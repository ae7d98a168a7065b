/*
 * js_kwp.h - AES key wrap with padding (RFC 5649, on the RFC 3394 core) over a pre-keyed ECB
 * context.
 *
 * DESCRIPTION
 *	OpenSSL 3.0's "AES-256-WRAP-PAD" runs on the table-based AES_encrypt(), not on AES-NI:
 *	measured on the reference machine, 134 ns per AES block against 22 ns through an EVP ECB
 *	context, which made opening one root-key token cost 5-7 µs — more than the rest of a join.
 *	This module computes the same function (byte-identical output; the unit tests compare it
 *	with OpenSSL's wrap-pad on every length from 1 to 64 bytes and with the RFC 5649 §6
 *	vectors) on an AES-ECB context the caller keyed once. The key size is the context's.
 */
#ifndef DJ_JOINSERVER_JS_KWP_H
#define DJ_JOINSERVER_JS_KWP_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "dj_compiler.h"

#define JS_KWP_MAX_IN 1024	/* the longest plaintext these functions take */

/*! \brief Wrapped length for \p len plaintext bytes: 8 * (ceil(len / 8) + 1). */
size_t js_kwp_wrapped_len(size_t len);

/*!
 * \brief Wrap \p in (1..JS_KWP_MAX_IN bytes) into \p out (js_kwp_wrapped_len(len) bytes).
 * \param enc  an AES-ECB context keyed with the KEK for encryption, padding off.
 * \retval DJ_EOK, DJ_EINVAL, DJ_ECRYPTO
 */
int js_kwp_wrap(EVP_CIPHER_CTX *enc, const uint8_t *in, size_t len, uint8_t *out) DJ_MUSTCHECK;

/*!
 * \brief Unwrap \p in (16..JS_KWP_MAX_IN+8 bytes, a multiple of 8) into \p out (room for
 *        in_len - 8 bytes); the plaintext length goes to \p out_len.
 * \param dec  an AES-ECB context keyed with the KEK for decryption, padding off.
 * \retval DJ_EOK
 * \retval DJ_EUNWRAP  the integrity check failed (wrong KEK or damaged input); \p out wiped
 * \retval DJ_EINVAL (length), DJ_ECRYPTO
 */
int js_kwp_unwrap(EVP_CIPHER_CTX *dec, const uint8_t *in, size_t in_len, uint8_t *out,
		  size_t *out_len) DJ_MUSTCHECK;

#endif /* DJ_JOINSERVER_JS_KWP_H */
