/*
 * js_store_owner.c - the device registry's tables (schema 4) on the SQLite backend
 * (js_store_owner.h).
 *
 * Every call runs on the writer connection inside one transaction (js_store__sq_begin), so a
 * batch of thousands of rows costs one fsync, and a crash leaves either the whole batch or
 * none of it. Values are always bound, never formatted into SQL; rows read back are
 * bounds-checked before they are copied into the fixed-size structs. Auth codes arrive here
 * already hashed (devices/dv_authcode.c); the audit detail never names a code.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <sqlite3.h>

#include "common/dj_err.h"
#include "common/dj_log.h"
#include "store/js_store_internal.h"
#include "store/js_store_owner.h"

#define OWNER_COLS "dev_eui, zone, serial, chain, attrs, published, updated_at"
#define XFER_COLS "id, dev_eui, serial, nonce, from_zone, to_zone, chain, step, created_at, " \
		  "updated_at"

/* fail - log an SQLite error and return DJ_ESQL */
static int fail(sqlite3 *db, const char *what)
{
	dj_warn("store: %s: %s", what, sqlite3_errmsg(db));
	return DJ_ESQL;
}

/* prep - prepare a one-call statement */
static int prep(sqlite3 *db, const char *sql, sqlite3_stmt **st)
{
	if (sqlite3_prepare_v2(db, sql, -1, st, NULL) != SQLITE_OK)
		return fail(db, "prepare");
	return DJ_EOK;
}

/* step_done - step a statement that returns no row, then reset it */
static int step_done(sqlite3 *db, sqlite3_stmt *st)
{
	int rc = sqlite3_step(st);

	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	if (rc == SQLITE_DONE)
		return DJ_EOK;
	if (rc == SQLITE_CONSTRAINT)
		return DJ_EEXIST;
	return fail(db, "step");
}

/* col_text - copy a text column into a fixed buffer; DJ_EMALFORMED when it does not fit */
static int col_text(sqlite3_stmt *st, int col, char *out, size_t cap)
{
	const unsigned char *t = sqlite3_column_text(st, col);
	size_t n = (size_t)sqlite3_column_bytes(st, col);

	if (t == NULL || n >= cap)
		return DJ_EMALFORMED;
	memcpy(out, t, n);
	out[n] = '\0';
	return DJ_EOK;
}

/* col_blob - copy a blob column of exactly \p len bytes */
static int col_blob(sqlite3_stmt *st, int col, uint8_t *out, size_t len)
{
	const void *b = sqlite3_column_blob(st, col);

	if (b == NULL || (size_t)sqlite3_column_bytes(st, col) != len)
		return DJ_EMALFORMED;
	memcpy(out, b, len);
	return DJ_EOK;
}

/* col_dup - a malloc'd copy of a blob column (1..JS_OWNER_CHAIN_MAX bytes) */
static int col_dup(sqlite3_stmt *st, int col, uint8_t **out, size_t *len)
{
	const void *b = sqlite3_column_blob(st, col);
	size_t n = (size_t)sqlite3_column_bytes(st, col);

	if (b == NULL || n == 0 || n > JS_OWNER_CHAIN_MAX)
		return DJ_EMALFORMED;
	*out = malloc(n);
	if (*out == NULL)
		return DJ_ENOMEM;
	memcpy(*out, b, n);
	*len = n;
	return DJ_EOK;
}

void js_owner_clear(struct js_owner *o)
{
	if (o == NULL)
		return;
	free(o->chain);
	o->chain = NULL;
	o->chain_len = 0;
}

void js_transfer_clear(struct js_transfer *t)
{
	if (t == NULL)
		return;
	free(t->chain);
	t->chain = NULL;
	t->chain_len = 0;
}

/* row_owner - read an owner row (OWNER_COLS); the chain is borrowed from the statement when
 * \p copy is false */
static int row_owner(sqlite3_stmt *st, struct js_owner *o, bool copy)
{
	int rc;

	memset(o, 0, sizeof(*o));
	rc = col_blob(st, 0, o->dev_eui, LW_EUI_LEN);
	if (rc == DJ_EOK)
		rc = col_text(st, 1, o->zone, sizeof(o->zone));
	if (rc == DJ_EOK)
		rc = col_text(st, 4, o->attrs, sizeof(o->attrs));
	if (rc != DJ_EOK)
		return rc;
	o->serial = (uint64_t)sqlite3_column_int64(st, 2);
	o->published = sqlite3_column_int(st, 5) != 0;
	o->updated_at = sqlite3_column_int64(st, 6);
	if (copy)
		return col_dup(st, 3, &o->chain, &o->chain_len);
	o->chain = (uint8_t *)sqlite3_column_blob(st, 3);
	o->chain_len = (size_t)sqlite3_column_bytes(st, 3);
	return o->chain != NULL && o->chain_len > 0 ? DJ_EOK : DJ_EMALFORMED;
}

/* row_transfer - read a transfer row (XFER_COLS), as row_owner */
static int row_transfer(sqlite3_stmt *st, struct js_transfer *t, bool copy)
{
	int rc;

	memset(t, 0, sizeof(*t));
	t->id = sqlite3_column_int64(st, 0);
	rc = col_blob(st, 1, t->dev_eui, LW_EUI_LEN);
	if (rc == DJ_EOK)
		rc = col_blob(st, 3, t->nonce, JS_TRANSFER_NONCE_LEN);
	if (rc == DJ_EOK)
		rc = col_text(st, 4, t->from_zone, sizeof(t->from_zone));
	if (rc == DJ_EOK)
		rc = col_text(st, 5, t->to_zone, sizeof(t->to_zone));
	if (rc != DJ_EOK)
		return rc;
	t->serial = (uint64_t)sqlite3_column_int64(st, 2);
	t->step = (enum js_transfer_step)sqlite3_column_int(st, 7);
	t->created_at = sqlite3_column_int64(st, 8);
	t->updated_at = sqlite3_column_int64(st, 9);
	if (copy)
		return col_dup(st, 6, &t->chain, &t->chain_len);
	t->chain = (uint8_t *)sqlite3_column_blob(st, 6);
	t->chain_len = (size_t)sqlite3_column_bytes(st, 6);
	return t->chain != NULL && t->chain_len > 0 ? DJ_EOK : DJ_EMALFORMED;
}

/* insert_device - one devices row as js_store_devices_add writes it, with its audit entry */
static int insert_device(struct js_store *s, sqlite3 *db, sqlite3_stmt *ins,
			 const struct js_device *d, const char *actor)
{
	char detail[JS_AUDIT_DETAIL_MAX];
	int rc;

	sqlite3_bind_blob(ins, 1, d->dev_eui, LW_EUI_LEN, SQLITE_STATIC);
	sqlite3_bind_blob(ins, 2, d->join_eui, LW_EUI_LEN, SQLITE_STATIC);
	sqlite3_bind_int(ins, 3, (int)d->mac_version);
	sqlite3_bind_blob(ins, 4, d->root_token, (int)d->root_token_len, SQLITE_STATIC);
	sqlite3_bind_int64(ins, 5, d->created_at != 0 ? d->created_at : js_store_now(s));
	rc = step_done(db, ins);
	if (rc != DJ_EOK)
		return rc;
	js_store__import_detail(d, detail, sizeof(detail));
	return js_store__sq_audit(s, d->dev_eui, JS_DEVICE_IMPORT_EVENT, actor, detail);
}

int js_store_owner_enroll(struct js_store *s, const struct js_device *devs,
			  const struct js_owner *owners, size_t n, const char *actor,
			  size_t *failed)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *ins = NULL, *own = NULL;
	size_t i, bad = 0;
	int64_t now;
	int ret;

	if (devs == NULL || owners == NULL || n == 0)
		return DJ_EINVAL;
	for (i = 0; i < n; i++)
		if (memcmp(devs[i].dev_eui, owners[i].dev_eui, LW_EUI_LEN) != 0 ||
		    owners[i].chain == NULL || owners[i].chain_len == 0 ||
		    owners[i].chain_len > JS_OWNER_CHAIN_MAX)
			return DJ_EINVAL;
	ret = js_store__sq_begin(s, &db);
	if (ret != DJ_EOK)
		return ret;
	now = js_store_now(s);
	ret = prep(db, "INSERT INTO devices(dev_eui, join_eui, mac_version, root_token, created_at,"
		   " version, dev_nonce_last, join_nonce_last, rjcount1_last, dn_hist, sess_token)"
		   " VALUES(?1, ?2, ?3, ?4, ?5, 0, -1, -1, -1, X'', NULL)", &ins);
	if (ret == DJ_EOK)
		ret = prep(db, "INSERT INTO owners(" OWNER_COLS ") VALUES(?1, ?2, ?3, ?4, ?5, 0, ?6)",
			   &own);
	for (i = 0; ret == DJ_EOK && i < n; i++) {
		const struct js_owner *o = &owners[i];

		ret = insert_device(s, db, ins, &devs[i], actor);
		if (ret == DJ_EEXIST) {
			bad = i;
			break;
		}
		if (ret != DJ_EOK)
			break;
		sqlite3_bind_blob(own, 1, o->dev_eui, LW_EUI_LEN, SQLITE_STATIC);
		sqlite3_bind_text(own, 2, o->zone, -1, SQLITE_STATIC);
		sqlite3_bind_int64(own, 3, (sqlite3_int64)o->serial);
		sqlite3_bind_blob(own, 4, o->chain, (int)o->chain_len, SQLITE_STATIC);
		sqlite3_bind_text(own, 5, o->attrs, -1, SQLITE_STATIC);
		sqlite3_bind_int64(own, 6, now);
		ret = step_done(db, own);
		if (ret == DJ_EEXIST) {
			bad = i;
			break;
		}
	}
	sqlite3_finalize(ins);
	sqlite3_finalize(own);
	ret = js_store__sq_end(s, ret);
	if (ret == DJ_EEXIST && failed != NULL)
		*failed = bad;
	return ret;
}

int js_store_owner_get(struct js_store *s, const uint8_t dev_eui[LW_EUI_LEN],
		       struct js_owner *out)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	struct js_owner o;
	int ret, rc;

	memset(&o, 0, sizeof(o));
	ret = js_store__sq_begin(s, &db);
	if (ret != DJ_EOK)
		return ret;
	ret = prep(db, "SELECT " OWNER_COLS " FROM owners WHERE dev_eui=?1", &st);
	if (ret == DJ_EOK) {
		sqlite3_bind_blob(st, 1, dev_eui, LW_EUI_LEN, SQLITE_STATIC);
		rc = sqlite3_step(st);
		if (rc == SQLITE_ROW)
			ret = row_owner(st, &o, true);
		else if (rc == SQLITE_DONE)
			ret = DJ_ENOENT;
		else
			ret = fail(db, "owner_get");
	}
	sqlite3_finalize(st);
	rc = js_store__sq_end(s, DJ_EOK);	/* read only: nothing to roll back */
	if (ret == DJ_EOK && rc != DJ_EOK)
		ret = rc;
	if (ret == DJ_EOK)
		*out = o;
	else
		js_owner_clear(&o);
	return ret;
}

int js_store_owner_head(struct js_store *s, const uint8_t dev_eui[LW_EUI_LEN], char *zone,
			size_t zonelen, uint64_t *serial)
{
	return js_store__sq_owner_head(s, dev_eui, zone, zonelen, serial);
}

int js_store_owner_foreach(struct js_store *s, bool unpublished,
			   int (*cb)(const struct js_owner *o, void *arg), void *arg)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	struct js_owner o;
	int ret, rc;

	if (cb == NULL)
		return DJ_EINVAL;
	ret = js_store__sq_begin(s, &db);
	if (ret != DJ_EOK)
		return ret;
	ret = prep(db, unpublished ?
		   "SELECT " OWNER_COLS " FROM owners WHERE published = 0 ORDER BY dev_eui" :
		   "SELECT " OWNER_COLS " FROM owners ORDER BY dev_eui", &st);
	while (ret == DJ_EOK) {
		rc = sqlite3_step(st);
		if (rc == SQLITE_DONE)
			break;
		if (rc != SQLITE_ROW) {
			ret = fail(db, "owner_foreach");
			break;
		}
		ret = row_owner(st, &o, false);
		if (ret == DJ_EOK)
			ret = cb(&o, arg);
	}
	sqlite3_finalize(st);
	rc = js_store__sq_end(s, DJ_EOK);
	return ret != DJ_EOK ? ret : rc;
}

int js_store_owner_set_published(struct js_store *s, const uint8_t (*dev_euis)[LW_EUI_LEN],
				 size_t n)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	size_t i;
	int ret;

	ret = js_store__sq_begin(s, &db);
	if (ret != DJ_EOK)
		return ret;
	ret = prep(db, "UPDATE owners SET published = 1, updated_at = ?2 WHERE dev_eui = ?1", &st);
	for (i = 0; ret == DJ_EOK && i < n; i++) {
		sqlite3_bind_blob(st, 1, dev_euis[i], LW_EUI_LEN, SQLITE_STATIC);
		sqlite3_bind_int64(st, 2, js_store_now(s));
		ret = step_done(db, st);
	}
	sqlite3_finalize(st);
	return js_store__sq_end(s, ret);
}

int js_store_authcode_put(struct js_store *s, const struct js_authcode *recs, size_t n,
			  const char *actor, size_t *failed)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL, *has = NULL;
	char detail[JS_AUDIT_DETAIL_MAX];
	size_t i, bad = 0;
	int ret, rc;

	ret = js_store__sq_begin(s, &db);
	if (ret != DJ_EOK)
		return ret;
	ret = prep(db, "SELECT 1 FROM owners WHERE dev_eui = ?1", &has);
	if (ret == DJ_EOK)
		ret = prep(db, "INSERT OR REPLACE INTO authcodes(dev_eui, salt, iter, hash,"
			   " expires_at, created_at) VALUES(?1, ?2, ?3, ?4, ?5, ?6)", &st);
	for (i = 0; ret == DJ_EOK && i < n; i++) {
		const struct js_authcode *a = &recs[i];

		sqlite3_bind_blob(has, 1, a->dev_eui, LW_EUI_LEN, SQLITE_STATIC);
		rc = sqlite3_step(has);
		sqlite3_reset(has);
		if (rc != SQLITE_ROW) {
			ret = rc == SQLITE_DONE ? DJ_ENOENT : fail(db, "authcode_put");
			bad = i;
			break;
		}
		sqlite3_bind_blob(st, 1, a->dev_eui, LW_EUI_LEN, SQLITE_STATIC);
		sqlite3_bind_blob(st, 2, a->salt, JS_AUTHCODE_SALT_LEN, SQLITE_STATIC);
		sqlite3_bind_int64(st, 3, a->iter);
		sqlite3_bind_blob(st, 4, a->hash, JS_AUTHCODE_HASH_LEN, SQLITE_STATIC);
		sqlite3_bind_int64(st, 5, a->expires_at);
		sqlite3_bind_int64(st, 6, js_store_now(s));
		ret = step_done(db, st);
		if (ret == DJ_EOK) {
			snprintf(detail, sizeof(detail), "expires_at=%lld",
				 (long long)a->expires_at);
			ret = js_store__sq_audit(s, a->dev_eui, JS_AUTHCODE_EVENT, actor, detail);
		}
	}
	sqlite3_finalize(st);
	sqlite3_finalize(has);
	ret = js_store__sq_end(s, ret);
	if (ret == DJ_ENOENT && failed != NULL)
		*failed = bad;
	return ret;
}

int js_store_authcode_get(struct js_store *s, const uint8_t dev_eui[LW_EUI_LEN],
			  struct js_authcode *out)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	struct js_authcode a;
	int ret, rc;

	memset(&a, 0, sizeof(a));
	ret = js_store__sq_begin(s, &db);
	if (ret != DJ_EOK)
		return ret;
	ret = prep(db, "SELECT salt, iter, hash, expires_at FROM authcodes WHERE dev_eui = ?1",
		   &st);
	if (ret == DJ_EOK) {
		sqlite3_bind_blob(st, 1, dev_eui, LW_EUI_LEN, SQLITE_STATIC);
		rc = sqlite3_step(st);
		if (rc == SQLITE_ROW) {
			memcpy(a.dev_eui, dev_eui, LW_EUI_LEN);
			ret = col_blob(st, 0, a.salt, JS_AUTHCODE_SALT_LEN);
			if (ret == DJ_EOK)
				ret = col_blob(st, 2, a.hash, JS_AUTHCODE_HASH_LEN);
			a.iter = (uint32_t)sqlite3_column_int64(st, 1);
			a.expires_at = sqlite3_column_int64(st, 3);
		} else {
			ret = rc == SQLITE_DONE ? DJ_ENOENT : fail(db, "authcode_get");
		}
	}
	sqlite3_finalize(st);
	rc = js_store__sq_end(s, DJ_EOK);
	if (ret == DJ_EOK && rc != DJ_EOK)
		ret = rc;
	if (ret == DJ_EOK)
		*out = a;
	OPENSSL_cleanse(&a, sizeof(a));
	return ret;
}

/* begin_one - check one transfer against the owner row and the table, then record it */
static int begin_one(struct js_store *s, sqlite3 *db, sqlite3_stmt *own, sqlite3_stmt *busy,
		     sqlite3_stmt *ins, struct js_transfer *t)
{
	char zone[JS_ZONE_MAX];
	uint64_t serial;
	int rc, ret;

	sqlite3_bind_blob(own, 1, t->dev_eui, LW_EUI_LEN, SQLITE_STATIC);
	rc = sqlite3_step(own);
	if (rc != SQLITE_ROW) {
		sqlite3_reset(own);
		return rc == SQLITE_DONE ? DJ_ENOENT : fail(db, "transfer_begin");
	}
	ret = col_text(own, 0, zone, sizeof(zone));
	serial = (uint64_t)sqlite3_column_int64(own, 1);
	sqlite3_reset(own);
	if (ret != DJ_EOK)
		return DJ_ESQL;
	/* a used serial or nonce is a replay: tell it apart from a moved-on owner */
	sqlite3_bind_blob(busy, 1, t->dev_eui, LW_EUI_LEN, SQLITE_STATIC);
	sqlite3_bind_int64(busy, 2, (sqlite3_int64)t->serial);
	sqlite3_bind_blob(busy, 3, t->nonce, JS_TRANSFER_NONCE_LEN, SQLITE_STATIC);
	rc = sqlite3_step(busy);
	sqlite3_reset(busy);
	if (rc == SQLITE_ROW)
		return DJ_EEXIST;
	if (rc != SQLITE_DONE)
		return fail(db, "transfer_begin");
	if (strcmp(zone, t->from_zone) != 0 || t->serial != serial + 1)
		return DJ_ECONFLICT;
	sqlite3_bind_blob(ins, 1, t->dev_eui, LW_EUI_LEN, SQLITE_STATIC);
	sqlite3_bind_int64(ins, 2, (sqlite3_int64)t->serial);
	sqlite3_bind_blob(ins, 3, t->nonce, JS_TRANSFER_NONCE_LEN, SQLITE_STATIC);
	sqlite3_bind_text(ins, 4, t->from_zone, -1, SQLITE_STATIC);
	sqlite3_bind_text(ins, 5, t->to_zone, -1, SQLITE_STATIC);
	sqlite3_bind_blob(ins, 6, t->chain, (int)t->chain_len, SQLITE_STATIC);
	sqlite3_bind_int64(ins, 7, js_store_now(s));
	ret = step_done(db, ins);
	if (ret == DJ_EOK) {
		t->id = sqlite3_last_insert_rowid(db);
		t->step = JS_XFER_RECORDED;
	}
	return ret;
}

int js_store_transfer_begin(struct js_store *s, struct js_transfer *t, size_t n,
			    const char *actor, int *results)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *own = NULL, *busy = NULL, *ins = NULL, *pend = NULL;
	size_t i;
	int ret, rc;

	(void)actor;	/* the audit entry is written when the transfer is done */
	for (i = 0; i < n; i++)
		if (t[i].chain == NULL || t[i].chain_len == 0 ||
		    t[i].chain_len > JS_OWNER_CHAIN_MAX)
			return DJ_EINVAL;
	ret = js_store__sq_begin(s, &db);
	if (ret != DJ_EOK)
		return ret;
	ret = prep(db, "SELECT zone, serial FROM owners WHERE dev_eui = ?1", &own);
	if (ret == DJ_EOK)
		ret = prep(db, "SELECT 1 FROM transfers WHERE dev_eui = ?1 AND (serial = ?2 OR"
			   " nonce = ?3)", &busy);
	if (ret == DJ_EOK)
		ret = prep(db, "SELECT 1 FROM transfers WHERE dev_eui = ?1 AND step < 3", &pend);
	if (ret == DJ_EOK)
		ret = prep(db, "INSERT INTO transfers(dev_eui, serial, nonce, from_zone, to_zone,"
			   " chain, step, created_at, updated_at) VALUES(?1, ?2, ?3, ?4, ?5, ?6, 0,"
			   " ?7, ?7)", &ins);
	for (i = 0; ret == DJ_EOK && i < n; i++) {
		sqlite3_bind_blob(pend, 1, t[i].dev_eui, LW_EUI_LEN, SQLITE_STATIC);
		rc = sqlite3_step(pend);
		sqlite3_reset(pend);
		if (rc == SQLITE_ROW) {
			results[i] = DJ_ECONFLICT;	/* another transfer is unfinished */
			continue;
		}
		if (rc != SQLITE_DONE) {
			ret = fail(db, "transfer_begin");
			break;
		}
		results[i] = begin_one(s, db, own, busy, ins, &t[i]);
		if (results[i] == DJ_ESQL || results[i] == DJ_ENOMEM)
			ret = results[i];
	}
	/* all or nothing: one refused item rolls the batch back */
	for (i = 0; ret == DJ_EOK && i < n; i++)
		if (results[i] != DJ_EOK)
			ret = DJ_ECONFLICT;
	sqlite3_finalize(own);
	sqlite3_finalize(busy);
	sqlite3_finalize(pend);
	sqlite3_finalize(ins);
	return js_store__sq_end(s, ret);
}

void js_store_set_transfer_event(struct js_store *s, js_transfer_event_fn fn, void *arg)
{
	if (s == NULL)
		return;
	s->xfer_event = fn;
	s->xfer_event_arg = arg;
}

/* finish_one - the owner row becomes the transfer's; the auth code goes; audit; the event */
static int finish_one(struct js_store *s, sqlite3 *db, sqlite3_stmt *get, sqlite3_stmt *upd,
		      sqlite3_stmt *del, int64_t id, const char *actor)
{
	struct js_transfer t;
	char detail[JS_AUDIT_DETAIL_MAX];
	uint8_t body[JS_EVENT_BODY_MAX];
	size_t blen = 0;
	bool has_ev = false;
	int rc, ret, erc;

	sqlite3_bind_int64(get, 1, id);
	rc = sqlite3_step(get);
	if (rc != SQLITE_ROW) {
		sqlite3_reset(get);
		return rc == SQLITE_DONE ? DJ_ENOENT : fail(db, "transfer_advance");
	}
	ret = row_transfer(get, &t, false);
	if (ret == DJ_EOK) {
		sqlite3_bind_text(upd, 1, t.to_zone, -1, SQLITE_TRANSIENT);
		sqlite3_bind_int64(upd, 2, (sqlite3_int64)t.serial);
		sqlite3_bind_blob(upd, 3, t.chain, (int)t.chain_len, SQLITE_TRANSIENT);
		sqlite3_bind_int64(upd, 4, js_store_now(s));
		sqlite3_bind_blob(upd, 5, t.dev_eui, LW_EUI_LEN, SQLITE_TRANSIENT);
		if (s->xfer_event != NULL) {
			/* encoded now: the chain is the statement's until the reset */
			has_ev = true;
			erc = s->xfer_event(&t, js_store_now(s) * 1000, body, sizeof(body), &blen,
					    s->xfer_event_arg);
			if (erc != DJ_EOK) {
				dj_warn("store: the ownership event of a transfer cannot be encoded:"
					" %s; dropped", dj_strerror(erc));
				blen = 0;
			}
		}
	}
	sqlite3_reset(get);
	if (ret != DJ_EOK)
		return DJ_ESQL;
	ret = step_done(db, upd);
	if (ret == DJ_EOK) {
		sqlite3_bind_blob(del, 1, t.dev_eui, LW_EUI_LEN, SQLITE_STATIC);
		ret = step_done(db, del);
	}
	if (ret == DJ_EOK) {
		snprintf(detail, sizeof(detail), "from=%.100s to=%.100s serial=%llu", t.from_zone, t.to_zone,
			 (unsigned long long)t.serial);
		ret = js_store__sq_audit(s, t.dev_eui, JS_TRANSFER_EVENT, actor, detail);
	}
	if (ret == DJ_EOK && has_ev)
		js_store__sq_outbox_put(s, blen > 0 ? body : NULL, blen);
	OPENSSL_cleanse(body, sizeof(body));
	return ret;
}

int js_store_transfer_advance(struct js_store *s, const int64_t *ids, size_t n,
			      enum js_transfer_step step, const char *actor)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL, *get = NULL, *upd = NULL, *del = NULL;
	size_t i;
	int ret;

	if (step < JS_XFER_NEW_PUBLISHED || step > JS_XFER_DONE)
		return DJ_EINVAL;
	ret = js_store__sq_begin(s, &db);
	if (ret != DJ_EOK)
		return ret;
	ret = prep(db, "UPDATE transfers SET step = ?2, updated_at = ?3 WHERE id = ?1 AND"
		   " step < ?2", &st);
	if (ret == DJ_EOK && step == JS_XFER_DONE)
		ret = prep(db, "SELECT " XFER_COLS " FROM transfers WHERE id = ?1", &get);
	if (ret == DJ_EOK && step == JS_XFER_DONE)
		ret = prep(db, "UPDATE owners SET zone = ?1, serial = ?2, chain = ?3, published = 1,"
			   " updated_at = ?4 WHERE dev_eui = ?5", &upd);
	if (ret == DJ_EOK && step == JS_XFER_DONE)
		ret = prep(db, "DELETE FROM authcodes WHERE dev_eui = ?1", &del);
	for (i = 0; ret == DJ_EOK && i < n; i++) {
		sqlite3_bind_int64(st, 1, ids[i]);
		sqlite3_bind_int(st, 2, (int)step);
		sqlite3_bind_int64(st, 3, js_store_now(s));
		ret = step_done(db, st);
		if (ret != DJ_EOK || sqlite3_changes(db) == 0)
			continue;	/* already at this step: a re-run */
		if (step == JS_XFER_DONE)
			ret = finish_one(s, db, get, upd, del, ids[i], actor);
	}
	sqlite3_finalize(st);
	sqlite3_finalize(get);
	sqlite3_finalize(upd);
	sqlite3_finalize(del);
	return js_store__sq_end(s, ret);
}

int js_store_transfer_find(struct js_store *s, const uint8_t dev_eui[LW_EUI_LEN],
			   const uint8_t nonce[JS_TRANSFER_NONCE_LEN], struct js_transfer *out)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	struct js_transfer t;
	int ret, rc;

	memset(&t, 0, sizeof(t));
	ret = js_store__sq_begin(s, &db);
	if (ret != DJ_EOK)
		return ret;
	ret = prep(db, "SELECT " XFER_COLS " FROM transfers WHERE dev_eui = ?1 AND nonce = ?2",
		   &st);
	if (ret == DJ_EOK) {
		sqlite3_bind_blob(st, 1, dev_eui, LW_EUI_LEN, SQLITE_STATIC);
		sqlite3_bind_blob(st, 2, nonce, JS_TRANSFER_NONCE_LEN, SQLITE_STATIC);
		rc = sqlite3_step(st);
		if (rc == SQLITE_ROW)
			ret = row_transfer(st, &t, true);
		else
			ret = rc == SQLITE_DONE ? DJ_ENOENT : fail(db, "transfer_find");
	}
	sqlite3_finalize(st);
	rc = js_store__sq_end(s, DJ_EOK);
	if (ret == DJ_EOK && rc != DJ_EOK)
		ret = rc;
	if (ret == DJ_EOK)
		*out = t;
	else
		js_transfer_clear(&t);
	return ret;
}

int js_store_transfer_foreach_pending(struct js_store *s,
				      int (*cb)(const struct js_transfer *t, void *arg), void *arg)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	struct js_transfer t;
	int ret, rc;

	if (cb == NULL)
		return DJ_EINVAL;
	ret = js_store__sq_begin(s, &db);
	if (ret != DJ_EOK)
		return ret;
	ret = prep(db, "SELECT " XFER_COLS " FROM transfers WHERE step < 3 ORDER BY id", &st);
	while (ret == DJ_EOK) {
		rc = sqlite3_step(st);
		if (rc == SQLITE_DONE)
			break;
		if (rc != SQLITE_ROW) {
			ret = fail(db, "transfer_foreach_pending");
			break;
		}
		ret = row_transfer(st, &t, false);
		if (ret == DJ_EOK)
			ret = cb(&t, arg);
	}
	sqlite3_finalize(st);
	rc = js_store__sq_end(s, DJ_EOK);
	return ret != DJ_EOK ? ret : rc;
}
