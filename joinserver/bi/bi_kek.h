/*
 * bi_kek.h - KeyEnvelopes: session keys wrapped under a peer's KEK (TS002 §6.4, RFC 3394).
 *
 * DESCRIPTION
 *	A struct bi_kek holds one KEK (AES-128 or AES-256) and its label, with pre-keyed OpenSSL
 *	contexts (RFC 3394 through CRYPTO_128_wrap over AES-ECB: OpenSSL 3.0's own wrap cipher
 *	runs table-based AES, several times slower). It is not thread-safe: one per thread.
 *
 *	bi_kek_envelope() with a NULL kek produces a plaintext envelope (empty KEKLabel). Callers
 *	must only do that for a peer whose configuration says so explicitly (DESIGN.md rule 5).
 *	bi_kek_open() refuses a plaintext envelope unless allow_plain is set, and refuses one wrapped
 *	under another label: a client never silently accepts weaker protection than it expects.
 */
#ifndef DJ_JOINSERVER_BI_KEK_H
#define DJ_JOINSERVER_BI_KEK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bi/bi_msg.h"
#include "common/dj_compiler.h"
#include "lorawan/lw_crypto.h"

struct bi_kek;

/*!
 * \brief Make a KEK from \p key (16 or 32 bytes, copied; the caller wipes its copy).
 * \param label  the KEKLabel (1..BI_KEK_LABEL_MAX-1 printable characters).
 * \retval DJ_EOK, DJ_EINVAL, DJ_ENOMEM, DJ_ECRYPTO
 */
int bi_kek_new(const char *label, const uint8_t *key, size_t key_len,
	       struct bi_kek **out) DJ_MUSTCHECK;

/*! \brief Wipe and free (NULL is accepted). */
void bi_kek_free(struct bi_kek *kek);

/*! \brief The label. */
const char *bi_kek_label(const struct bi_kek *kek);

/*!
 * \brief Put \p key into \p env: wrapped under \p kek, or in plain when \p kek is NULL.
 *        \p env is written on success only.
 * \retval DJ_EOK, DJ_ECRYPTO
 * \retval DJ_EINVAL  \p key or \p env is NULL
 */
int bi_kek_envelope(struct bi_kek *kek, const struct lw_key *key,
		    struct bi_key_envelope *env) DJ_MUSTCHECK;

#define BI_KEK_MANY_MAX 4	/* most keys one bi_kek_envelope_many() call takes */

/*!
 * \brief bi_kek_envelope() for \p n (1..BI_KEK_MANY_MAX) keys under the same \p kek at once:
 *        the n RFC 3394 wraps run in lockstep (lw_crypto_kw_lockstep), 12 AES calls of n
 *        blocks instead of 12n of one. The envelopes are the same as bi_kek_envelope()'s.
 *        \p envs[0..n-1] are written on success only, all of them.
 * \retval DJ_EOK, DJ_ECRYPTO
 * \retval DJ_EINVAL  \p n out of range, or a key or an envelope is NULL
 */
int bi_kek_envelope_many(struct bi_kek *kek, size_t n, const struct lw_key *const keys[],
			 struct bi_key_envelope *const envs[]) DJ_MUSTCHECK;

/*!
 * \brief Take the key out of \p env with \p kek (which may be NULL only for plaintext).
 * \param raw  receives 16 bytes; the caller wipes it.
 * \retval DJ_EOK
 * \retval DJ_EACCES   plaintext envelope and !allow_plain, or label not \p kek's
 * \retval DJ_EUNWRAP  the RFC 3394 integrity check failed (wrong KEK)
 * \retval DJ_EMALFORMED  absent envelope or wrong length
 */
int bi_kek_open(struct bi_kek *kek, const struct bi_key_envelope *env, bool allow_plain,
		uint8_t raw[LW_KEY_LEN]) DJ_MUSTCHECK;

#endif /* DJ_JOINSERVER_BI_KEK_H */
