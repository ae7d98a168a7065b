/*
 * js_store_pg_apikey.c - the PostgreSQL backend's API keys (js_apikey.h): table apikeys
 * (schema version 2 of js_store_pg_schema.c), salted hashes only. A port of
 * js_store_sqlite_apikey.c.
 *
 * put and revoke run on the writer inside one transaction with their audit entry, so a key
 * never exists (or stops being in force) without the entry saying who did it, and several
 * instances sharing the database cannot both create one name: the primary key decides, and
 * ON CONFLICT DO NOTHING turns the loser into DJ_EEXIST without aborting the transaction.
 * revoke changes only a key in force (revoked_at = 0), so a second revoke is DJ_ENOENT and the
 * first revocation time stays. foreach reads the committed state on a pooled reader, so
 * js_apikey_check() on every management request never waits for the writer; the rows are
 * bounds-checked before they are copied into the fixed-size struct.
 */
#include "store/js_store_pg_internal.h"

#include <stdio.h>
#include <string.h>

#include "common/dj_err.h"
#include "store/js_apikey.h"

/* Columns of PG_KEY_ALL, in order. */
enum { KC_NAME, KC_SCOPE, KC_CREATED_AT, KC_REVOKED_AT, KC_SALT, KC_HASH };

#define PG_KEY_PUT "INSERT INTO apikeys(name, scope, created_at, revoked_at, salt, hash)" \
		   " VALUES($1, $2, $3, 0, $4, $5) ON CONFLICT (name) DO NOTHING"
#define PG_KEY_REVOKE "UPDATE apikeys SET revoked_at=$2 WHERE name=$1 AND revoked_at=0"
#define PG_KEY_ALL "SELECT name, scope, created_at, revoked_at, salt, hash FROM apikeys" \
		   " ORDER BY name COLLATE \"C\""

/* pg_key_put - ops->apikey->put: a new key and its audit entry; DJ_EEXIST: the name is taken */
static int pg_key_put(struct js_store *s, const struct js_apikey *k, const char *actor)
{
	struct js_store__pg *q = s->be;
	char detail[JS_AUDIT_DETAIL_MAX];
	uint64_t n = 0;
	int ret = js_store__pg_wbegin(q);

	if (ret != DJ_EOK)
		return ret;
	ret = js_store__pg_change(q, PG_KEY_PUT,
				  JS_PG_ARGS(JS_PG_T(k->name), JS_PG_I(k->scope),
					     JS_PG_I(k->created_at),
					     JS_PG_B(k->salt, JS_APIKEY_SALT_LEN),
					     JS_PG_B(k->hash, JS_APIKEY_HASH_LEN)), &n);
	if (ret == DJ_EOK && n == 0)
		ret = DJ_EEXIST;	/* revoked or not, a name is taken for good */
	if (ret == DJ_EOK) {
		snprintf(detail, sizeof(detail), "name=%s scope=%s", k->name,
			 js_apikey_scope_name(k->scope));
		ret = js_store__pg_audit_put(s, NULL, JS_APIKEY_CREATE_EVENT, actor, detail);
	}
	return js_store__pg_wend(s, ret);
}

/* pg_key_revoke - ops->apikey->revoke: end the key in force named so; DJ_ENOENT: none */
static int pg_key_revoke(struct js_store *s, const char *name, int64_t at, const char *actor)
{
	struct js_store__pg *q = s->be;
	char detail[JS_AUDIT_DETAIL_MAX];
	uint64_t n = 0;
	int ret = js_store__pg_wbegin(q);

	if (ret != DJ_EOK)
		return ret;
	/* revoked_at 0 means "in force": a clock at 0 still records a revocation */
	ret = js_store__pg_change(q, PG_KEY_REVOKE,
				  JS_PG_ARGS(JS_PG_T(name), JS_PG_I(at > 0 ? at : 1)), &n);
	if (ret == DJ_EOK && n == 0)
		ret = DJ_ENOENT;
	if (ret == DJ_EOK) {
		snprintf(detail, sizeof(detail), "name=%s", name);
		ret = js_store__pg_audit_put(s, NULL, JS_APIKEY_REVOKE_EVENT, actor, detail);
	}
	return js_store__pg_wend(s, ret);
}

/* The walk of pg_key_foreach(). */
struct key_walk {
	int (*cb)(const struct js_apikey *k, void *arg);
	void *arg;
};

/* key_row - a row callback: one PG_KEY_ALL row, checked, to the caller */
static int key_row(const PGresult *r, int i, void *arg)
{
	const struct key_walk *w = arg;
	struct js_apikey k;
	const uint8_t *p;
	size_t len;

	memset(&k, 0, sizeof(k));
	len = PQgetisnull(r, i, KC_NAME) ? 0 : (size_t)PQgetlength(r, i, KC_NAME);
	if (len == 0 || len >= sizeof(k.name))
		return DJ_EMALFORMED;
	memcpy(k.name, PQgetvalue(r, i, KC_NAME), len);
	k.scope = (enum js_apikey_scope)js_store__pg_int(r, i, KC_SCOPE);
	k.created_at = js_store__pg_int(r, i, KC_CREATED_AT);
	k.revoked_at = js_store__pg_int(r, i, KC_REVOKED_AT);
	p = js_store__pg_blob(r, i, KC_SALT, &len);
	if (p == NULL || len != JS_APIKEY_SALT_LEN)
		return DJ_EMALFORMED;
	memcpy(k.salt, p, len);
	p = js_store__pg_blob(r, i, KC_HASH, &len);
	if (p == NULL || len != JS_APIKEY_HASH_LEN)
		return DJ_EMALFORMED;
	memcpy(k.hash, p, len);
	return w->cb(&k, w->arg);
}

/* pg_key_foreach - ops->apikey->foreach: every key in name order, from a reader */
static int pg_key_foreach(struct js_store *s, int (*cb)(const struct js_apikey *k, void *arg),
			  void *arg)
{
	struct key_walk w = { cb, arg };

	return js_store__pg_read(s->be, PG_KEY_ALL, JS_PG_NONE, false, key_row, &w);
}

const struct js_store_apikey_ops js_store__pg_apikey_ops = {
	.put = pg_key_put,
	.revoke = pg_key_revoke,
	.foreach = pg_key_foreach,
};
