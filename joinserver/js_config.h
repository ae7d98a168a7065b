/*
 * js_config.h - the INI configuration shared by danejoind and every danejoin CLI.
 *
 * SYNOPSIS
 *	struct js_config cfg;
 *	char err[JS_CONFIG_ERR_MAX];
 *	if (js_config_load("/etc/danejoin/danejoin.conf", &cfg, err, sizeof(err)) != DJ_EOK)
 *		fprintf(stderr, "%s\n", err);	// "FILE:LINE: [section] key: what is wrong"
 *	...
 *	js_config_free(&cfg);
 *
 * DESCRIPTION
 *	The file is INI (libinih): [section] headers, "key = value" lines, comments starting with
 *	';' or '#'. Every key is validated when it is read. Unknown sections, unknown keys, a key
 *	set twice and a key outside any section are errors, so that a typo is never silently
 *	ignored (DESIGN.md trust rule 6: bad input gets a clear error and changes nothing).
 *
 *	Relative paths are taken relative to the directory of the configuration file, so that a
 *	configuration and its files can be moved together.
 *
 *	config/danejoin.conf.example documents every key.
 */
#ifndef DJ_JOINSERVER_JS_CONFIG_H
#define DJ_JOINSERVER_JS_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "dj_compiler.h"
#include "lw_frame.h"

#define JS_CONFIG_ERR_MAX 512		/* room for any message js_config_load() writes */
#define JS_CONFIG_BATCH_MIN 1
#define JS_CONFIG_BATCH_MAX 4096
#define JS_CONFIG_SESSION_MIN 60		/* seconds */
#define JS_CONFIG_SESSION_MAX 31536000	/* seconds: 365 days */
#define JS_CONFIG_SESSION_DEFAULT 86400	/* seconds: one day */

struct js_config {
	/* [store] */
	char *store_path;		/* required: the SQLite file (absolute once loaded) */
	unsigned devnonce_history;	/* JS_DEVNONCE_HIST_MIN..MAX, default 1024 */
	unsigned batch_max;		/* JS_CONFIG_BATCH_MIN..MAX, default JS_BATCH_DEFAULT */
	/* [keys] */
	char *master_key_file;		/* required (absolute once loaded) */
	/* [join] */
	uint8_t net_id[LW_NETID_LEN];	/* default 000000 */
	int64_t session_lifetime;	/* seconds an AppSKey is kept for AppSKeyReq */
};

/*!
 * \brief Set every field to its default (no paths). js_config_load() starts from these.
 */
void js_config_defaults(struct js_config *cfg);

/*!
 * \brief Read and validate a configuration file.
 * \param path    the file (borrowed).
 * \param out     filled on success only; release with js_config_free().
 * \param err     receives one line, "FILE:LINE: [section] key: what is wrong" (or "FILE: ..."
 *                when no line applies), on failure; may be NULL.
 * \retval DJ_EOK
 * \retval DJ_ECONFIG  the file was read but is not a valid configuration
 * \retval DJ_ENOENT, DJ_EACCES, DJ_EIO  the file could not be read
 * \retval DJ_ENOMEM
 */
int js_config_load(const char *path, struct js_config *out, char *err, size_t errlen) DJ_MUSTCHECK;

/*! \brief Free what js_config_load() allocated and reset to defaults (NULL is accepted). */
void js_config_free(struct js_config *cfg);

#endif /* DJ_JOINSERVER_JS_CONFIG_H */
