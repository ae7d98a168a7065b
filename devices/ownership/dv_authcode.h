/*
 * dv_authcode.h - per-device transfer auth codes (the EPP/CIRA "auth info" pattern).
 *
 * DESCRIPTION
 *	The current owner of a device asks the registry for an auth code and gives it, out of
 *	band, to the next owner, who presents it with the transfer. The registry keeps only a
 *	salted PBKDF2-HMAC-SHA256 hash and an expiry; the code is printed once and never stored or
 *	logged. A code is single use: the completed transfer deletes it.
 *
 *	Codes are generated here: DV_AUTHCODE_LEN characters of a 32-symbol alphabet without
 *	look-alikes (120 bits), so the slow hash is defence in depth, not the main protection;
 *	DV_AUTHCODE_ITER keeps a batch of thousands of checks within seconds.
 */
#ifndef DJ_DEVICES_DV_AUTHCODE_H
#define DJ_DEVICES_DV_AUTHCODE_H

#include <stdbool.h>
#include <stdint.h>

#include "common/dj_compiler.h"
#include "store/js_store_owner.h"

#define DV_AUTHCODE_LEN 24		/* characters; 5 bits each */
#define DV_AUTHCODE_ITER 4096		/* PBKDF2 iterations (stored per code) */
#define DV_AUTHCODE_ITER_MAX 10000000
#define DV_AUTHCODE_TTL_DEFAULT (14 * 86400)	/* seconds; EPP registries use days to weeks */
#define DV_AUTHCODE_TTL_MAX (366 * 86400)

enum dv_authcode_verdict {
	DV_AUTHCODE_OK = 0,
	DV_AUTHCODE_WRONG,	/* not the code that was set (or none is set) */
	DV_AUTHCODE_EXPIRED,	/* the right code, past its expiry */
};

/*! \brief A new random code, NUL-terminated. \retval DJ_EOK, DJ_ECRYPTO */
int dv_authcode_generate(char out[DV_AUTHCODE_LEN + 1]) DJ_MUSTCHECK;

/*! \brief Whether \p code has the form of a generated code (length and alphabet). */
bool dv_authcode_wellformed(const char *code);

/*!
 * \brief Fill \p rec (salt, iterations, hash, expiry) for \p code; rec->dev_eui is the
 *        caller's. \retval DJ_EOK, DJ_EINVAL (a malformed code), DJ_ECRYPTO
 */
int dv_authcode_seal(const char *code, int64_t expires_at, struct js_authcode *rec) DJ_MUSTCHECK;

/*!
 * \brief Check \p code against \p rec at time \p now (constant-time comparison).
 * \param verdict  receives the answer on DJ_EOK.
 * \retval DJ_EOK, DJ_ECRYPTO
 */
int dv_authcode_check(const struct js_authcode *rec, const char *code, int64_t now,
		      enum dv_authcode_verdict *verdict) DJ_MUSTCHECK;

#endif /* DJ_DEVICES_DV_AUTHCODE_H */
