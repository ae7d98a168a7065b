/*
 * js_store_sqlite_apikey.c - the SQLite backend's API keys (js_apikey.h): table apikeys
 *			      (schema version 6), salted hashes only.
 */
#include <stdio.h>
#include <string.h>

#include "common/dj_err.h"
#include "store/js_apikey.h"
#include "store/js_store_sqlite_internal.h"

#define SQ_KEY_PUT "INSERT INTO apikeys(name, scope, created_at, revoked_at, salt, hash)" \
		   " VALUES(?1, ?2, ?3, 0, ?4, ?5)"
#define SQ_KEY_REVOKE "UPDATE apikeys SET revoked_at=?2 WHERE name=?1 AND revoked_at=0"
#define SQ_KEY_ALL "SELECT name, scope, created_at, revoked_at, salt, hash FROM apikeys" \
		   " ORDER BY name"

static int sq_key_put(struct js_store *s, const struct js_apikey *k, const char *actor)
{
	struct js_store__sq *q = s->be;
	char detail[JS_AUDIT_DETAIL_MAX];
	int ret = js_store__sq_wbegin(q);

	if (ret != DJ_EOK)
		return ret;
	ret = js_store__sq_run(q, SQ_KEY_PUT,
			       JS_SQ_ARGS(JS_SQ_T(k->name), JS_SQ_I(k->scope),
					  JS_SQ_I(k->created_at),
					  JS_SQ_B(k->salt, JS_APIKEY_SALT_LEN),
					  JS_SQ_B(k->hash, JS_APIKEY_HASH_LEN)));
	if (ret == DJ_EOK) {
		snprintf(detail, sizeof(detail), "name=%s scope=%s", k->name,
			 js_apikey_scope_name(k->scope));
		ret = js_store__sq_audit_put(s, NULL, JS_APIKEY_CREATE_EVENT, actor, detail);
	}
	return js_store__sq_wend(s, ret);
}

static int sq_key_revoke(struct js_store *s, const char *name, int64_t at, const char *actor)
{
	struct js_store__sq *q = s->be;
	char detail[JS_AUDIT_DETAIL_MAX];
	uint64_t n = 0;
	int ret = js_store__sq_wbegin(q);

	if (ret != DJ_EOK)
		return ret;
	ret = js_store__sq_change(q, SQ_KEY_REVOKE,
				  JS_SQ_ARGS(JS_SQ_T(name), JS_SQ_I(at > 0 ? at : 1)), &n);
	if (ret == DJ_EOK && n == 0)
		ret = DJ_ENOENT;
	if (ret == DJ_EOK) {
		snprintf(detail, sizeof(detail), "name=%s", name);
		ret = js_store__sq_audit_put(s, NULL, JS_APIKEY_REVOKE_EVENT, actor, detail);
	}
	return js_store__sq_wend(s, ret);
}

/* The walk of sq_key_foreach(). */
struct key_walk {
	int (*cb)(const struct js_apikey *k, void *arg);
	void *arg;
};

static int key_row(sqlite3_stmt *st, void *arg)
{
	struct key_walk *w = arg;
	struct js_apikey k;
	const unsigned char *name = sqlite3_column_text(st, 0);
	const uint8_t *p;
	size_t len;

	memset(&k, 0, sizeof(k));
	if (name == NULL || strlen((const char *)name) >= sizeof(k.name))
		return DJ_EMALFORMED;
	strcpy(k.name, (const char *)name);
	k.scope = (enum js_apikey_scope)sqlite3_column_int(st, 1);
	k.created_at = sqlite3_column_int64(st, 2);
	k.revoked_at = sqlite3_column_int64(st, 3);
	p = js_store__sq_blob_col(st, 4, &len);
	if (len != JS_APIKEY_SALT_LEN)
		return DJ_EMALFORMED;
	memcpy(k.salt, p, len);
	p = js_store__sq_blob_col(st, 5, &len);
	if (len != JS_APIKEY_HASH_LEN)
		return DJ_EMALFORMED;
	memcpy(k.hash, p, len);
	return w->cb(&k, w->arg);
}

static int sq_key_foreach(struct js_store *s, int (*cb)(const struct js_apikey *k, void *arg),
			  void *arg)
{
	struct key_walk w = { cb, arg };

	return js_store__sq_read(s->be, SQ_KEY_ALL, JS_SQ_NONE, key_row, &w);
}

const struct js_store_apikey_ops js_store__sqlite_apikey_ops = {
	.put = sq_key_put,
	.revoke = sq_key_revoke,
	.foreach = sq_key_foreach,
};
