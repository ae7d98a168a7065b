/*
 * js_keystore.h - custody of device root keys (and of session keys kept for AppSKeyReq).
 *
 * DESCRIPTION
 *	The join code never handles raw root keys: it holds *tokens* (opaque wrapped blobs, as a
 *	payment HSM hands out key tokens) and asks the key store to open a token into struct lw_key
 *	handles for the duration of one request. The software backend here wraps with AES-256 key
 *	wrap with padding (RFC 5649, OpenSSL's id-aes256-wrap-pad) under a 256-bit master key read
 *	from a file. A PKCS#11 backend can later implement the same calls.
 *
 *	Every token binds its secret to a *label* (for root keys: the DevEUI and the purpose), so a
 *	token copied onto another device's row fails to open (DJ_EUNWRAP) instead of handing one
 *	device's keys to another.
 *
 *	A struct js_keystore is NOT thread-safe: it keeps one pre-keyed OpenSSL context so that the
 *	hot path fetches nothing and never re-expands the master key. Give each thread its own copy
 *	with js_keystore_dup().
 *
 *	The master key file holds exactly 32 bytes, either raw or as 64 hex digits (an optional
 *	trailing newline is allowed). It must be a regular file with no group or other permission
 *	bits; anything else is refused with DJ_EFILEMODE before a byte is read.
 */
#ifndef DJ_JOINSERVER_JS_KEYSTORE_H
#define DJ_JOINSERVER_JS_KEYSTORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/dj_compiler.h"
#include "lorawan/lw_crypto.h"
#include "lorawan/lw_frame.h"

#define JS_MASTER_KEY_LEN 32
#define JS_KCV_LEN 8		/* key check value: identifies a master key, reveals nothing */
#define JS_TOKEN_MAX 96		/* room for any token this module writes */
#define JS_LABEL_MAX 48
#define JS_KS_BATCH_MAX 32	/* most tokens one *_many call takes */

/* Token purposes; a label is purpose | 0x00 | id (js_keystore_label()). */
#define JS_PURPOSE_ROOT "root"		/* id: DevEUI (printed order) */
#define JS_PURPOSE_SESSION "sk"		/* id: SessionKeyID; secret: AppSKey | SNwkSIntKey */

struct js_keystore;

/* The root keys of one device, opened for one request. Wipe with js_root_keys_wipe(). */
struct js_root_keys {
	bool has_nwk_key;	/* 1.1 devices have both; 1.0.x devices only AppKey */
	struct lw_key app_key;
	struct lw_key nwk_key;	/* equals app_key when !has_nwk_key, so callers need no branch */
};

/*!
 * \brief Read a master key file, refusing one that group or others may access.
 * \param key  receives 32 bytes on success only; the caller wipes it with OPENSSL_cleanse.
 * \retval DJ_EOK
 * \retval DJ_EFILEMODE   mode allows group/other access, not a regular file, or a symbolic
 *                       link (opened with O_NOFOLLOW)
 * \retval DJ_EMALFORMED  not 32 raw bytes or 64 hex digits
 * \retval DJ_ENOENT, DJ_EACCES, DJ_EIO
 */
int js_keystore_read_master(const char *path, uint8_t key[JS_MASTER_KEY_LEN]) DJ_MUSTCHECK;

/*!
 * \brief Create a new random master key file with mode 0600. Refuses to overwrite (DJ_EEXIST).
 */
int js_keystore_create_master(const char *path) DJ_MUSTCHECK;

/*!
 * \brief Create a software key store. \p master is copied; the caller wipes its copy.
 * \retval DJ_EOK, DJ_ENOMEM, DJ_ECRYPTO
 */
int js_keystore_new(const uint8_t master[JS_MASTER_KEY_LEN], struct js_keystore **out) DJ_MUSTCHECK;

/*! \brief Another handle on the same master key, for another thread. */
int js_keystore_dup(const struct js_keystore *ks, struct js_keystore **out) DJ_MUSTCHECK;

/*! \brief Wipe and free (NULL is accepted). */
void js_keystore_free(struct js_keystore *ks);

/*! \brief The key check value of the master key (HMAC-SHA256 of a fixed text, truncated). */
void js_keystore_kcv(const struct js_keystore *ks, uint8_t kcv[JS_KCV_LEN]);

/*!
 * \brief Wrap \p secret (at most 64 bytes) bound to \p label (at most JS_LABEL_MAX bytes).
 * \param token  receives the token (at most JS_TOKEN_MAX bytes); \p token_len its length.
 */
int js_keystore_seal(struct js_keystore *ks, const uint8_t *label, size_t label_len,
		     const uint8_t *secret, size_t secret_len, uint8_t *token,
		     size_t *token_len) DJ_MUSTCHECK;

/*!
 * \brief Unwrap a token made by js_keystore_seal() with the same label.
 * \param secret  receives the secret (caller wipes); \p cap its room.
 * \retval DJ_EOK
 * \retval DJ_EUNWRAP     wrong master key, wrong label, or a damaged token
 * \retval DJ_EMALFORMED  not a token of this module
 */
int js_keystore_open(struct js_keystore *ks, const uint8_t *label, size_t label_len,
		     const uint8_t *token, size_t token_len, uint8_t *secret, size_t cap,
		     size_t *secret_len) DJ_MUSTCHECK;

/*!
 * \brief Build the label purpose | 0x00 | id into \p label (JS_LABEL_MAX bytes of room).
 * \return the label length, or 0 when it would not fit.
 */
size_t js_keystore_label(const char *purpose, const uint8_t *id, size_t id_len,
			 uint8_t label[JS_LABEL_MAX]);

/*!
 * \brief Re-wrap one token from \p old_ks to \p new_ks under the same label (master-key change).
 * \retval DJ_EOK, DJ_EUNWRAP, DJ_EMALFORMED
 */
int js_keystore_rewrap(struct js_keystore *old_ks, struct js_keystore *new_ks,
		       const uint8_t *label, size_t label_len, const uint8_t *token,
		       size_t token_len, uint8_t *out, size_t *out_len) DJ_MUSTCHECK;

/*!
 * \brief Seal a device's root keys (label JS_PURPOSE_ROOT | DevEUI). \p nwk_key is NULL for a 1.0.x device. Raw keys are
 *        borrowed; the caller wipes them.
 */
int js_keystore_seal_root(struct js_keystore *ks, const uint8_t dev_eui[LW_EUI_LEN],
			  const uint8_t app_key[LW_KEY_LEN], const uint8_t *nwk_key,
			  uint8_t *token, size_t *token_len) DJ_MUSTCHECK;

/*!
 * \brief Open a device's root-key token into key handles (the join hot path).
 * \retval DJ_EOK, DJ_EUNWRAP, DJ_EMALFORMED
 */
int js_keystore_open_root(struct js_keystore *ks, const uint8_t dev_eui[LW_EUI_LEN],
			  const uint8_t *token, size_t token_len,
			  struct js_root_keys *out) DJ_MUSTCHECK;

/*!
 * \brief js_keystore_seal() for \p n (<= JS_KS_BATCH_MAX) independent secrets at once: the same
 *        tokens, in about the time of one seal for the whole batch (the key-wrap chains run in
 *        lockstep). rets[i] gets what js_keystore_seal() would have returned for item i.
 * \retval DJ_EOK (see rets), DJ_EINVAL
 */
int js_keystore_seal_many(struct js_keystore *ks, size_t n, const uint8_t *const label[],
			  const size_t label_len[], const uint8_t *const secret[],
			  const size_t secret_len[], uint8_t *const token[], size_t token_len[],
			  int rets[]) DJ_MUSTCHECK;

/*!
 * \brief js_keystore_open_root() for \p n (<= JS_KS_BATCH_MAX) devices at once. rets[i] gets what
 *        js_keystore_open_root() would have returned for item i; out[i] is set only when it is
 *        DJ_EOK.
 * \retval DJ_EOK (see rets), DJ_EINVAL
 */
int js_keystore_open_root_many(struct js_keystore *ks, size_t n, const uint8_t *const dev_eui[],
			       const uint8_t *const token[], const size_t token_len[],
			       struct js_root_keys out[], int rets[]) DJ_MUSTCHECK;

/*! \brief Wipe opened root keys (NULL is accepted). */
void js_root_keys_wipe(struct js_root_keys *keys);

#endif /* DJ_JOINSERVER_JS_KEYSTORE_H */
