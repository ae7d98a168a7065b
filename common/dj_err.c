/*
 * dj_err.c - texts for the error enum.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <openssl/err.h>

#include "common/dj_err.h"

void dj_errbuf(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

const char *dj_openssl_reason(void)
{
	unsigned long e = ERR_peek_last_error();
	const char *r = e != 0 ? ERR_reason_error_string(e) : NULL;

	ERR_clear_error();
	return r != NULL ? r : "unknown OpenSSL error";
}

const char *dj_strerror(int code)
{
	switch (code) {
	case DJ_EOK: return "success";
	case DJ_ENOMEM: return "out of memory";
	case DJ_EINVAL: return "invalid argument";
	case DJ_ENOENT: return "not found";
	case DJ_EEXIST: return "already exists";
	case DJ_EIO: return "input/output error";
	case DJ_EACCES: return "permission denied";
	case DJ_ERANGE: return "value out of range";
	case DJ_EAGAIN: return "temporary failure, try again";
	case DJ_ENOSPC: return "no space left";
	case DJ_EBUSY: return "resource busy";
	case DJ_ERROR: return "failure";
	case DJ_ECRYPTO: return "cryptographic library failure";
	case DJ_ESQL: return "database failure";
	case DJ_EMALFORMED: return "malformed input";
	case DJ_EMASTERKEY: return "the master key does not match this store";
	case DJ_EFILEMODE: return "secret file is accessible by group or others";
	case DJ_ESCHEMA: return "store schema is newer than this program";
	case DJ_ECONFLICT: return "concurrent change, retry";
	case DJ_EUNWRAP: return "wrapped key failed its integrity check";
	case DJ_ESHUTDOWN: return "shutting down";
	case DJ_ECONFIG: return "invalid configuration";
	default:
		if (code < 0 && code > -1000)
			return strerror(-code);
		return "unknown error";
	}
}
