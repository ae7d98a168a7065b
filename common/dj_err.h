/*
 * dj_err.h - the one error enum of danejoin.
 *
 * DESCRIPTION
 *	Every fallible call returns DJ_EOK (0) or a negative code. Codes that have an errno twin mirror
 *	it (DJ_ENOMEM == -ENOMEM); codes of our own domain start at -1000. Errors of OpenSSL, SQLite and
 *	the other libraries are converted where they are called.
 *
 *	These are *faults*: something went wrong on our side or in our environment. Protocol verdicts
 *	(a MIC mismatch, a replayed nonce) are not errors; they are answers to the peer and have their
 *	own enum (js_verdict in joinserver/engine/js_engine.h).
 */
#ifndef DJ_COMMON_DJ_ERR_H
#define DJ_COMMON_DJ_ERR_H

#include <errno.h>
#include <stddef.h>

enum dj_err {
	DJ_EOK = 0,
	DJ_ENOMEM = -ENOMEM,
	DJ_EINVAL = -EINVAL,
	DJ_ENOENT = -ENOENT,
	DJ_EEXIST = -EEXIST,
	DJ_EIO = -EIO,
	DJ_EACCES = -EACCES,
	DJ_ERANGE = -ERANGE,
	DJ_EAGAIN = -EAGAIN,
	DJ_ENOSPC = -ENOSPC,
	DJ_EBUSY = -EBUSY,

	DJ_ERROR = -1000,	/* unspecified failure */
	DJ_ECRYPTO = -1001,	/* an OpenSSL call failed */
	DJ_ESQL = -1002,	/* an SQLite call failed */
	DJ_EMALFORMED = -1003,	/* input does not have the required form */
	DJ_EMASTERKEY = -1004,	/* the master key does not match the store */
	DJ_EFILEMODE = -1005,	/* a secret file is readable by group or others */
	DJ_ESCHEMA = -1006,	/* the store was written by a newer danejoin */
	DJ_ECONFLICT = -1007,	/* a concurrent change won; re-read and retry */
	DJ_EUNWRAP = -1008,	/* a wrapped key failed its integrity check */
	DJ_ESHUTDOWN = -1009,	/* the component is shutting down */
	DJ_ECONFIG = -1010,	/* the configuration is invalid */
};

#include "common/dj_compiler.h"

/*!
 * \brief Text for an error code. Never NULL; unknown codes get a generic text.
 */
const char *dj_strerror(int code);

/*! \brief Format a one-line reason into a caller's buffer; \p err may be NULL or \p errlen 0. */
void dj_errbuf(char *err, size_t errlen, const char *fmt, ...) DJ_PRINTF(3, 4);

/*! \brief The reason text of the most recent OpenSSL error (never NULL); clears OpenSSL's
 *         error queue. For one-line messages naming why a TLS or crypto call failed. */
const char *dj_openssl_reason(void);

#endif /* DJ_COMMON_DJ_ERR_H */
