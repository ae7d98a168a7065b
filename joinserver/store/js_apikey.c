/*
 * js_apikey.c - API keys (js_apikey.h): tokens, their salted hashes, scopes; the storage is
 *		 the backend's (struct js_store_apikey_ops).
 */
#include "store/js_apikey.h"

#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "common/dj_err.h"
#include "common/dj_hex.h"
#include "store/js_store_internal.h"

static const char *const scope_names[] = { "none", "read", "operate", "admin" };

const char *js_apikey_scope_name(enum js_apikey_scope s)
{
	return (unsigned)s < DJ_ARRAY_LEN(scope_names) ? scope_names[s] : "none";
}

int js_apikey_scope_parse(const char *text, enum js_apikey_scope *out)
{
	for (unsigned i = JS_SCOPE_READ; text != NULL && i < DJ_ARRAY_LEN(scope_names); i++) {
		if (strcmp(text, scope_names[i]) == 0) {
			*out = (enum js_apikey_scope)i;
			return DJ_EOK;
		}
	}
	return DJ_EINVAL;
}

bool js_apikey_name_ok(const char *name)
{
	size_t n;

	if (name == NULL)
		return false;
	n = strlen(name);
	if (n == 0 || n >= JS_APIKEY_NAME_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = name[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == '-'))
			return false;
	}
	return true;
}

/* key_hash - SHA-256(salt | token) */
static int key_hash(const uint8_t salt[JS_APIKEY_SALT_LEN], const char *token,
		    uint8_t out[JS_APIKEY_HASH_LEN])
{
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	unsigned len = 0;
	int ok;

	if (c == NULL)
		return DJ_ENOMEM;
	ok = EVP_DigestInit_ex(c, EVP_sha256(), NULL) == 1 &&
	     EVP_DigestUpdate(c, salt, JS_APIKEY_SALT_LEN) == 1 &&
	     EVP_DigestUpdate(c, token, strlen(token)) == 1 &&
	     EVP_DigestFinal_ex(c, out, &len) == 1 && len == JS_APIKEY_HASH_LEN;
	EVP_MD_CTX_free(c);
	return ok ? DJ_EOK : DJ_ECRYPTO;
}

int js_apikey_create(struct js_store *s, const char *name, enum js_apikey_scope scope,
		     const char *actor, char token[JS_APIKEY_TOKEN_MAX])
{
	uint8_t secret[JS_APIKEY_SECRET_LEN];
	struct js_apikey k;
	int ret;

	if (s == NULL || token == NULL || !js_apikey_name_ok(name) || scope < JS_SCOPE_READ ||
	    scope > JS_SCOPE_ADMIN)
		return DJ_EINVAL;
	if (s->ops->apikey == NULL)
		return DJ_EINVAL;
	memset(&k, 0, sizeof(k));
	strcpy(k.name, name);	/* length checked by js_apikey_name_ok */
	k.scope = scope;
	k.created_at = js_store_now(s);
	if (RAND_bytes(secret, sizeof(secret)) != 1 || RAND_bytes(k.salt, sizeof(k.salt)) != 1)
		return DJ_ECRYPTO;
	memcpy(token, JS_APIKEY_PREFIX, 4);
	dj_hex_format(secret, sizeof(secret), token + 4);
	token[JS_APIKEY_TOKEN_LEN] = '\0';
	OPENSSL_cleanse(secret, sizeof(secret));
	ret = key_hash(k.salt, token, k.hash);
	if (ret == DJ_EOK)
		ret = s->ops->apikey->put(s, &k, actor);
	if (ret != DJ_EOK)
		OPENSSL_cleanse(token, JS_APIKEY_TOKEN_MAX);
	return ret;
}

int js_apikey_revoke(struct js_store *s, const char *name, const char *actor)
{
	if (s == NULL || !js_apikey_name_ok(name) || s->ops->apikey == NULL)
		return DJ_EINVAL;
	return s->ops->apikey->revoke(s, name, js_store_now(s), actor);
}

int js_apikey_foreach(struct js_store *s, int (*cb)(const struct js_apikey *k, void *arg),
		      void *arg)
{
	if (s == NULL || cb == NULL || s->ops->apikey == NULL)
		return DJ_EINVAL;
	return s->ops->apikey->foreach(s, cb, arg);
}

/* The search of js_apikey_check(). */
struct check {
	const char *token;
	struct js_apikey *out;
	bool found;
	int err;
};

static int check_one(const struct js_apikey *k, void *arg)
{
	struct check *c = arg;
	uint8_t h[JS_APIKEY_HASH_LEN];

	c->err = key_hash(k->salt, c->token, h);
	if (c->err != DJ_EOK)
		return c->err;
	if (CRYPTO_memcmp(h, k->hash, sizeof(h)) == 0 && k->revoked_at == 0) {
		*c->out = *k;
		c->found = true;
	}
	return DJ_EOK;	/* every key is hashed: the time does not tell where a match was */
}

int js_apikey_check(struct js_store *s, const char *token, struct js_apikey *out)
{
	struct check c = { .token = token, .out = out };
	int ret;

	if (s == NULL || token == NULL || out == NULL)
		return DJ_EINVAL;
	if (strlen(token) != JS_APIKEY_TOKEN_LEN || memcmp(token, JS_APIKEY_PREFIX, 4) != 0)
		return DJ_EACCES;
	ret = js_apikey_foreach(s, check_one, &c);
	if (ret != DJ_EOK)
		return ret;
	return c.found ? DJ_EOK : DJ_EACCES;
}
