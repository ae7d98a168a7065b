/*
 * js_apikey.h - API keys of the management API (danejoind [admin]): created with
 *		 "danejoin-devices apikey create", shown once, kept only as a salted hash.
 *
 * DESCRIPTION
 *	A key is a random token "djk_" followed by 48 hex digits (24 random bytes). The store
 *	keeps its name, its scope, when it was made and revoked, a random salt and
 *	SHA-256(salt | token): a stolen store file does not give the keys. The tokens carry
 *	192 bits of entropy, so a single salted hash is enough (no stretching is needed).
 *
 *	Scopes are ordered: read < operate < admin. read sees; operate also enrolls, resets and
 *	transfers; admin also manages keys.
 *
 *	The backends implement struct js_store_apikey_ops (js_store_internal.h): put, revoke,
 *	foreach. Creation and revocation are audited ("apikey-create", "apikey-revoke") with the
 *	actor given, never the token.
 */
#ifndef DJ_JOINSERVER_JS_APIKEY_H
#define DJ_JOINSERVER_JS_APIKEY_H

#include <stdbool.h>
#include <stdint.h>

#include "common/dj_compiler.h"
#include "store/js_store.h"

#define JS_APIKEY_NAME_MAX 64		/* bytes with the NUL: [A-Za-z0-9._-]{1,63} */
#define JS_APIKEY_SALT_LEN 16
#define JS_APIKEY_HASH_LEN 32		/* SHA-256 */
#define JS_APIKEY_SECRET_LEN 24		/* random bytes of a token */
#define JS_APIKEY_PREFIX "djk_"
#define JS_APIKEY_TOKEN_LEN (4 + 2 * JS_APIKEY_SECRET_LEN)
#define JS_APIKEY_TOKEN_MAX (JS_APIKEY_TOKEN_LEN + 1)
#define JS_APIKEY_CREATE_EVENT "apikey-create"
#define JS_APIKEY_REVOKE_EVENT "apikey-revoke"

enum js_apikey_scope {
	JS_SCOPE_NONE = 0,
	JS_SCOPE_READ = 1,
	JS_SCOPE_OPERATE = 2,
	JS_SCOPE_ADMIN = 3,
};

struct js_apikey {
	char name[JS_APIKEY_NAME_MAX];
	enum js_apikey_scope scope;
	int64_t created_at;
	int64_t revoked_at;		/* 0: in force */
	uint8_t salt[JS_APIKEY_SALT_LEN];
	uint8_t hash[JS_APIKEY_HASH_LEN];
};

/*! \brief "read", "operate", "admin" (or "none"). */
const char *js_apikey_scope_name(enum js_apikey_scope s);

/*! \brief Parse a scope name. \retval DJ_EOK, DJ_EINVAL */
int js_apikey_scope_parse(const char *text, enum js_apikey_scope *out) DJ_MUSTCHECK;

/*! \brief A key name is 1..63 of [A-Za-z0-9._-]. */
bool js_apikey_name_ok(const char *name);

/*!
 * \brief Make a key: a fresh token into \p token (shown once by the caller, then wiped),
 *        its salted hash stored under \p name.
 * \retval DJ_EOK, DJ_EINVAL (bad name or scope), DJ_EEXIST (the name is taken, revoked or
 *         not), DJ_ECRYPTO, or a store fault
 */
int js_apikey_create(struct js_store *s, const char *name, enum js_apikey_scope scope,
		     const char *actor, char token[JS_APIKEY_TOKEN_MAX]) DJ_MUSTCHECK;

/*! \brief Revoke the key \p name. \retval DJ_EOK, DJ_ENOENT (none in force), DJ_EINVAL */
int js_apikey_revoke(struct js_store *s, const char *name, const char *actor) DJ_MUSTCHECK;

/*! \brief Every key, revoked ones too, in name order; \p cb non-zero stops and is returned. */
int js_apikey_foreach(struct js_store *s, int (*cb)(const struct js_apikey *k, void *arg),
		      void *arg) DJ_MUSTCHECK;

/*!
 * \brief Find the key in force that \p token is (compared in constant time per key).
 * \retval DJ_EOK (\p out filled), DJ_EACCES (no such key, or revoked), or a store fault
 */
int js_apikey_check(struct js_store *s, const char *token, struct js_apikey *out) DJ_MUSTCHECK;

#endif /* DJ_JOINSERVER_JS_APIKEY_H */
