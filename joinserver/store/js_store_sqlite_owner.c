/*
 * js_store_sqlite_owner.c - the ownership registry (js_store_owner.h) on the SQLite backend:
 * the owners, authcodes and transfers tables of schema 4 (js_store_sqlite_schema.c). The write
 * rules (enroll, publish, auth codes, transfer begin/advance) are js_store_owner.c's
 * js_store__reg_* on this file's statements (sq_reg_sql).
 *
 * Every call runs on the writer connection inside one transaction (js_store__sq_wbegin), so a
 * batch of thousands of rows costs one fsync, and a crash leaves either the whole batch or
 * none of it; reads take the same path, so a walk sees one consistent state. The one
 * exception is owner_head, which every join with ownership on reads: it runs on a pooled
 * reader, so a join never waits for the writer. UNIQUE(dev_eui, serial) and UNIQUE(dev_eui,
 * nonce) back the replay checks of transfer_begin in the schema itself. Rows read back are
 * bounds-checked before they are copied into the fixed-size structs. Auth codes arrive here
 * already hashed (devices/ownership/dv_authcode.c); the audit detail never names a code.
 */
#include "store/js_store_sqlite_internal.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "common/dj_err.h"
#include "common/dj_log.h"

/* Columns of OWNER_COLS and XFER_COLS, in order. */
enum { OC_DEV_EUI, OC_ZONE, OC_SERIAL, OC_CHAIN, OC_ATTRS, OC_PUBLISHED, OC_UPDATED_AT };
enum {
	XC_ID, XC_DEV_EUI, XC_SERIAL, XC_NONCE, XC_FROM_ZONE, XC_TO_ZONE, XC_CHAIN, XC_STEP,
	XC_CREATED_AT, XC_UPDATED_AT,
};
enum { HC_ZONE, HC_SERIAL };				/* of SQ_OWNER_HEAD */
enum { AC_SALT, AC_ITER, AC_HASH, AC_EXPIRES_AT };	/* of SQ_AUTH_GET */
#define OWNER_COLS "dev_eui, zone, serial, chain, attrs, published, updated_at"
#define XFER_COLS "id, dev_eui, serial, nonce, from_zone, to_zone, chain, step, created_at," \
		  " updated_at"
/* "step < 3" (JS_XFER_DONE) is written out: it must match the partial index transfers_pending */
#define XFER_UNFINISHED "step < 3"

#define SQ_OWNER_INSERT "INSERT INTO owners(" OWNER_COLS ") VALUES(?1, ?2, ?3, ?4, ?5, 0, ?6)"
#define SQ_OWNER_GET "SELECT " OWNER_COLS " FROM owners WHERE dev_eui = ?1"
#define SQ_OWNER_ALL "SELECT " OWNER_COLS " FROM owners ORDER BY dev_eui"
#define SQ_OWNER_UNPUBLISHED "SELECT " OWNER_COLS " FROM owners WHERE published = 0" \
			     " ORDER BY dev_eui"
#define SQ_OWNER_HEAD "SELECT zone, serial FROM owners WHERE dev_eui = ?1"
#define SQ_OWNER_PUBLISH "UPDATE owners SET published = 1, updated_at = ?2 WHERE dev_eui = ?1"
#define SQ_OWNER_MOVE "UPDATE owners SET zone = ?1, serial = ?2, chain = ?3, published = 1," \
		      " updated_at = ?4 WHERE dev_eui = ?5"
#define SQ_AUTH_PUT "INSERT OR REPLACE INTO authcodes(dev_eui, salt, iter, hash, expires_at," \
		    " created_at) VALUES(?1, ?2, ?3, ?4, ?5, ?6)"
#define SQ_AUTH_GET "SELECT salt, iter, hash, expires_at FROM authcodes WHERE dev_eui = ?1"
#define SQ_AUTH_DELETE "DELETE FROM authcodes WHERE dev_eui = ?1"
#define SQ_XFER_BUSY "SELECT 1 FROM transfers WHERE dev_eui = ?1 AND " XFER_UNFINISHED
#define SQ_XFER_USED "SELECT 1 FROM transfers WHERE dev_eui = ?1 AND (serial = ?2 OR nonce = ?3)"
#define SQ_XFER_INSERT "INSERT INTO transfers(dev_eui, serial, nonce, from_zone, to_zone, chain," \
		       " step, created_at, updated_at) VALUES(?1, ?2, ?3, ?4, ?5, ?6, 0, ?7, ?7)"
#define SQ_XFER_STEP "UPDATE transfers SET step = ?2, updated_at = ?3 WHERE id = ?1 AND" \
		     " step < ?2"
#define SQ_XFER_EXISTS "SELECT 1 FROM transfers WHERE id = ?1"
#define SQ_XFER_GET "SELECT " XFER_COLS " FROM transfers WHERE id = ?1"
#define SQ_XFER_FIND "SELECT " XFER_COLS " FROM transfers WHERE dev_eui = ?1 AND nonce = ?2"
#define SQ_XFER_PENDING "SELECT " XFER_COLS " FROM transfers WHERE " XFER_UNFINISHED \
			" ORDER BY id"

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
	size_t n;
	const uint8_t *b = js_store__sq_blob_col(st, col, &n);

	if (b == NULL || n != len)
		return DJ_EMALFORMED;
	memcpy(out, b, len);
	return DJ_EOK;
}

/* col_chain - a chain column (1..JS_OWNER_CHAIN_MAX bytes): borrowed from the statement, or a
 * malloc'd copy when \p copy */
static int col_chain(sqlite3_stmt *st, int col, bool copy, uint8_t **out, size_t *len)
{
	size_t n;
	const uint8_t *b = js_store__sq_blob_col(st, col, &n);

	if (b == NULL || n == 0 || n > JS_OWNER_CHAIN_MAX)
		return DJ_EMALFORMED;
	if (!copy) {
		*out = (uint8_t *)b;
	} else {
		*out = malloc(n);
		if (*out == NULL)
			return DJ_ENOMEM;
		memcpy(*out, b, n);
	}
	*len = n;
	return DJ_EOK;
}

/* row_owner - read an OWNER_COLS row; the chain is borrowed unless \p copy */
static int row_owner(sqlite3_stmt *st, struct js_owner *o, bool copy)
{
	memset(o, 0, sizeof(*o));
	if (col_blob(st, OC_DEV_EUI, o->dev_eui, LW_EUI_LEN) != DJ_EOK ||
	    col_text(st, OC_ZONE, o->zone, sizeof(o->zone)) != DJ_EOK ||
	    col_text(st, OC_ATTRS, o->attrs, sizeof(o->attrs)) != DJ_EOK)
		return DJ_EMALFORMED;
	o->serial = (uint64_t)sqlite3_column_int64(st, OC_SERIAL);
	o->published = sqlite3_column_int(st, OC_PUBLISHED) != 0;
	o->updated_at = sqlite3_column_int64(st, OC_UPDATED_AT);
	return col_chain(st, OC_CHAIN, copy, &o->chain, &o->chain_len);
}

/* row_transfer - read an XFER_COLS row, as row_owner */
static int row_transfer(sqlite3_stmt *st, struct js_transfer *t, bool copy)
{
	memset(t, 0, sizeof(*t));
	if (col_blob(st, XC_DEV_EUI, t->dev_eui, LW_EUI_LEN) != DJ_EOK ||
	    col_blob(st, XC_NONCE, t->nonce, JS_TRANSFER_NONCE_LEN) != DJ_EOK ||
	    col_text(st, XC_FROM_ZONE, t->from_zone, sizeof(t->from_zone)) != DJ_EOK ||
	    col_text(st, XC_TO_ZONE, t->to_zone, sizeof(t->to_zone)) != DJ_EOK)
		return DJ_EMALFORMED;
	t->id = sqlite3_column_int64(st, XC_ID);
	t->serial = (uint64_t)sqlite3_column_int64(st, XC_SERIAL);
	t->step = (enum js_transfer_step)sqlite3_column_int(st, XC_STEP);
	t->created_at = sqlite3_column_int64(st, XC_CREATED_AT);
	t->updated_at = sqlite3_column_int64(st, XC_UPDATED_AT);
	return col_chain(st, XC_CHAIN, copy, &t->chain, &t->chain_len);
}

/* owner_copy - a row callback: the owner row into arg, its chain malloc'd */
static int owner_copy(sqlite3_stmt *st, void *arg)
{
	return row_owner(st, arg, true);
}

/* transfer_copy - a row callback: the transfer row into arg, its chain malloc'd */
static int transfer_copy(sqlite3_stmt *st, void *arg)
{
	return row_transfer(st, arg, true);
}

/* row_exists - a row callback for "SELECT 1" probes: js_store__sq_rows() then returns
 * DJ_EOK for a row and DJ_ENOENT for none */
static int row_exists(sqlite3_stmt *st, void *arg)
{
	(void)st;
	(void)arg;
	return DJ_EOK;
}

/* exists - DJ_EOK when the probe \p sql finds a row, DJ_ENOENT when not, or a fault */
static int exists(struct js_store__sq *q, const char *sql, const struct js_store__sq_val *v,
		  size_t n)
{
	return js_store__sq_rows(q, sql, v, n, true, row_exists, NULL);
}

/* read_rows - a read in its own transaction on the writer (a consistent view of a walk) */
static int read_rows(struct js_store *s, const char *sql, const struct js_store__sq_val *v,
		     size_t n, bool one, js_store__sq_row_fn row, void *arg)
{
	int ret, rc;

	ret = js_store__sq_wbegin(s->be);
	if (ret != DJ_EOK)
		return ret;
	ret = js_store__sq_rows(s->be, sql, v, n, one, row, arg);
	rc = js_store__sq_wend(s, DJ_EOK);	/* read only: nothing to roll back */
	return ret != DJ_EOK ? ret : rc;
}

/* sq_owner_get - ops->reg->owner_get: one owner row, its chain malloc'd */
static int sq_owner_get(struct js_store *s, const uint8_t dev_eui[LW_EUI_LEN],
			struct js_owner *out)
{
	return read_rows(s, SQ_OWNER_GET, JS_SQ_ARGS(JS_SQ_EUI(dev_eui)), true, owner_copy, out);
}

/* sq_owner_head - ops->reg->owner_head: the owner zone and serial only */
static int sq_owner_head(struct js_store *s, const uint8_t dev_eui[LW_EUI_LEN], char *zone,
			 size_t zonelen, uint64_t *serial)
{
	struct js_store__sq *q = s->be;
	struct js_store__sq_reader *r = js_store__sq_reader_get(q);
	sqlite3_stmt *st;
	int ret, rc;

	/* prepared on first use: a reader opened before migration 4 committed has no owners */
	ret = r->own_head != NULL ? DJ_EOK
				  : js_store__sq_prepare(r->db, SQ_OWNER_HEAD, &r->own_head);
	if (ret != DJ_EOK)
		goto out;
	st = r->own_head;
	sqlite3_bind_blob(st, 1, dev_eui, LW_EUI_LEN, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		ret = sqlite3_column_bytes(st, HC_ZONE) > 0 ? col_text(st, HC_ZONE, zone, zonelen)
							    : DJ_EMALFORMED;
		if (ret == DJ_EOK)
			*serial = (uint64_t)sqlite3_column_int64(st, HC_SERIAL);
	} else {
		ret = rc == SQLITE_DONE ? DJ_ENOENT : js_store__sq_fail(r->db, "owner_head");
	}
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
out:
	js_store__sq_reader_put(q, r);
	return ret;
}

/* A walk of owner or transfer rows handed to the caller's callback. */
struct walk {
	int (*owner_cb)(const struct js_owner *o, void *arg);
	int (*xfer_cb)(const struct js_transfer *t, void *arg);
	void *arg;
};

/* walk_owner - a row callback: one owner row (chain borrowed) to the caller */
static int walk_owner(sqlite3_stmt *st, void *arg)
{
	const struct walk *w = arg;
	struct js_owner o;
	int ret = row_owner(st, &o, false);

	return ret != DJ_EOK ? ret : w->owner_cb(&o, w->arg);
}

/* walk_transfer - a row callback: one transfer row (chain borrowed) to the caller */
static int walk_transfer(sqlite3_stmt *st, void *arg)
{
	const struct walk *w = arg;
	struct js_transfer t;
	int ret = row_transfer(st, &t, false);

	return ret != DJ_EOK ? ret : w->xfer_cb(&t, w->arg);
}

/* sq_owner_foreach - ops->reg->owner_foreach: owner rows in DevEUI order */
static int sq_owner_foreach(struct js_store *s, bool unpublished,
			    int (*cb)(const struct js_owner *o, void *arg), void *arg)
{
	struct walk w = { .owner_cb = cb, .arg = arg };

	return read_rows(s, unpublished ? SQ_OWNER_UNPUBLISHED : SQ_OWNER_ALL, JS_SQ_NONE, false,
			 walk_owner, &w);
}

/* authcode_row - a row callback: salt, iter, hash, expiry into the js_authcode at arg */
static int authcode_row(sqlite3_stmt *st, void *arg)
{
	struct js_authcode *a = arg;
	int ret = col_blob(st, AC_SALT, a->salt, JS_AUTHCODE_SALT_LEN);

	if (ret == DJ_EOK)
		ret = col_blob(st, AC_HASH, a->hash, JS_AUTHCODE_HASH_LEN);
	a->iter = (uint32_t)sqlite3_column_int64(st, AC_ITER);
	a->expires_at = sqlite3_column_int64(st, AC_EXPIRES_AT);
	return ret;
}

/* sq_authcode_get - ops->reg->authcode_get: the auth code of a device */
static int sq_authcode_get(struct js_store *s, const uint8_t dev_eui[LW_EUI_LEN],
			   struct js_authcode *out)
{
	memcpy(out->dev_eui, dev_eui, LW_EUI_LEN);
	return read_rows(s, SQ_AUTH_GET, JS_SQ_ARGS(JS_SQ_EUI(dev_eui)), true, authcode_row, out);
}

/* head_row - a row callback: zone and serial (SQ_OWNER_HEAD) into the js_owner at arg */
static int head_row(sqlite3_stmt *st, void *arg)
{
	struct js_owner *o = arg;

	o->serial = (uint64_t)sqlite3_column_int64(st, HC_SERIAL);
	return col_text(st, HC_ZONE, o->zone, sizeof(o->zone)) == DJ_EOK ? DJ_EOK : DJ_ESQL;
}

/* sq_transfer_begin - ops->reg->transfer_begin: record verified transfers, all or nothing */
static int sq_transfer_begin(struct js_store *s, struct js_transfer *t, size_t n,
			     int *results)
{
	int ret;

	ret = js_store__sq_wbegin(s->be);
	if (ret != DJ_EOK)
		return ret;
	ret = js_store__xfer_begin_each(s, t, n, results, js_store__reg_begin_one);
	return js_store__sq_wend(s, ret);
}

/* --- the statements under the shared write rules (js_store_reg_sql) ----------------------- */

static int sq_owner_insert(struct js_store *s, const struct js_owner *o, int64_t now)
{
	return js_store__sq_run(s->be, SQ_OWNER_INSERT,
				JS_SQ_ARGS(JS_SQ_EUI(o->dev_eui), JS_SQ_T(o->zone),
					   JS_SQ_I(o->serial), JS_SQ_B(o->chain, o->chain_len),
					   JS_SQ_T(o->attrs), JS_SQ_I(now)));
}

static int sq_owner_publish(struct js_store *s, const uint8_t *dev_eui)
{
	return js_store__sq_run(s->be, SQ_OWNER_PUBLISH,
				JS_SQ_ARGS(JS_SQ_EUI(dev_eui), JS_SQ_I(js_store_now(s))));
}

static int sq_owner_head_row(struct js_store *s, const uint8_t *dev_eui, struct js_owner *o)
{
	return js_store__sq_rows(s->be, SQ_OWNER_HEAD, JS_SQ_ARGS(JS_SQ_EUI(dev_eui)), true,
				 head_row, o);
}

static int sq_owner_exists(struct js_store *s, const uint8_t *dev_eui)
{
	return exists(s->be, SQ_OWNER_HEAD, JS_SQ_ARGS(JS_SQ_EUI(dev_eui)));
}

static int sq_owner_move(struct js_store *s, const struct js_transfer *t)
{
	return js_store__sq_run(s->be, SQ_OWNER_MOVE,
				JS_SQ_ARGS(JS_SQ_T(t->to_zone), JS_SQ_I(t->serial),
					   JS_SQ_B(t->chain, t->chain_len),
					   JS_SQ_I(js_store_now(s)), JS_SQ_EUI(t->dev_eui)));
}

static int sq_authcode_write(struct js_store *s, const struct js_authcode *a)
{
	return js_store__sq_run(s->be, SQ_AUTH_PUT,
				JS_SQ_ARGS(JS_SQ_EUI(a->dev_eui),
					   JS_SQ_B(a->salt, JS_AUTHCODE_SALT_LEN),
					   JS_SQ_I(a->iter),
					   JS_SQ_B(a->hash, JS_AUTHCODE_HASH_LEN),
					   JS_SQ_I(a->expires_at),
					   JS_SQ_I(js_store_now(s))));
}

static int sq_authcode_exists(struct js_store *s, const uint8_t *dev_eui)
{
	return exists(s->be, SQ_AUTH_GET, JS_SQ_ARGS(JS_SQ_EUI(dev_eui)));
}

static int sq_authcode_delete(struct js_store *s, const uint8_t *dev_eui)
{
	return js_store__sq_run(s->be, SQ_AUTH_DELETE, JS_SQ_ARGS(JS_SQ_EUI(dev_eui)));
}

static int sq_xfer_busy(struct js_store *s, const uint8_t *dev_eui)
{
	return exists(s->be, SQ_XFER_BUSY, JS_SQ_ARGS(JS_SQ_EUI(dev_eui)));
}

static int sq_xfer_used(struct js_store *s, const struct js_transfer *t)
{
	return exists(s->be, SQ_XFER_USED,
		      JS_SQ_ARGS(JS_SQ_EUI(t->dev_eui), JS_SQ_I(t->serial),
				 JS_SQ_B(t->nonce, JS_TRANSFER_NONCE_LEN)));
}

static int sq_xfer_insert(struct js_store *s, struct js_transfer *t)
{
	struct js_store__sq *q = s->be;
	int ret;

	ret = js_store__sq_run(q, SQ_XFER_INSERT,
			       JS_SQ_ARGS(JS_SQ_EUI(t->dev_eui), JS_SQ_I(t->serial),
					  JS_SQ_B(t->nonce, JS_TRANSFER_NONCE_LEN),
					  JS_SQ_T(t->from_zone), JS_SQ_T(t->to_zone),
					  JS_SQ_B(t->chain, t->chain_len),
					  JS_SQ_I(js_store_now(s))));
	if (ret == DJ_EOK)
		t->id = sqlite3_last_insert_rowid(q->w);
	return ret;
}

static int sq_xfer_step(struct js_store *s, int64_t id, enum js_transfer_step step,
			uint64_t *moved)
{
	return js_store__sq_change(s->be, SQ_XFER_STEP,
				   JS_SQ_ARGS(JS_SQ_I(id), JS_SQ_I(step), JS_SQ_I(js_store_now(s))),
				   moved);
}

static int sq_xfer_exists(struct js_store *s, int64_t id)
{
	return exists(s->be, SQ_XFER_EXISTS, JS_SQ_ARGS(JS_SQ_I(id)));
}

/* A transfer row handed to the shared rules' callback. */
struct with {
	struct js_store *s;
	int (*cb)(struct js_store *s, const struct js_transfer *t, void *arg);
	void *arg;
};

/* with_row - a row callback: the transfer (chain borrowed from the statement, which stays on
 * its row until this returns) to the callback */
static int with_row(sqlite3_stmt *st, void *arg)
{
	const struct with *w = arg;
	struct js_transfer t;

	if (row_transfer(st, &t, false) != DJ_EOK)
		return DJ_ESQL;
	return w->cb(w->s, &t, w->arg);
}

static int sq_xfer_with(struct js_store *s, int64_t id,
			int (*cb)(struct js_store *s, const struct js_transfer *t, void *arg),
			void *arg)
{
	struct with w = { s, cb, arg };

	return js_store__sq_rows(s->be, SQ_XFER_GET, JS_SQ_ARGS(JS_SQ_I(id)), true, with_row, &w);
}

static const struct js_store_reg_sql sq_reg_sql = {
	.batch = js_store__sq_batch,
	.audit_put = js_store__sq_audit_put,
	.outbox_put = js_store__sq_outbox_put,
	.owner_insert = sq_owner_insert,
	.owner_publish = sq_owner_publish,
	.owner_head = sq_owner_head_row,
	.owner_exists = sq_owner_exists,
	.owner_move = sq_owner_move,
	.authcode_write = sq_authcode_write,
	.authcode_exists = sq_authcode_exists,
	.authcode_delete = sq_authcode_delete,
	.xfer_busy = sq_xfer_busy,
	.xfer_used = sq_xfer_used,
	.xfer_insert = sq_xfer_insert,
	.xfer_step = sq_xfer_step,
	.xfer_exists = sq_xfer_exists,
	.xfer_with = sq_xfer_with,
};

/* sq_transfer_find - ops->reg->transfer_find: the transfer of a device with a nonce */
static int sq_transfer_find(struct js_store *s, const uint8_t dev_eui[LW_EUI_LEN],
			    const uint8_t nonce[JS_TRANSFER_NONCE_LEN],
			    struct js_transfer *out)
{
	return read_rows(s, SQ_XFER_FIND,
			 JS_SQ_ARGS(JS_SQ_EUI(dev_eui), JS_SQ_B(nonce, JS_TRANSFER_NONCE_LEN)),
			 true, transfer_copy, out);
}

/* sq_transfer_foreach_pending - ops->reg->transfer_foreach_pending, oldest first */
static int sq_transfer_foreach_pending(struct js_store *s,
				       int (*cb)(const struct js_transfer *t, void *arg),
				       void *arg)
{
	struct walk w = { .xfer_cb = cb, .arg = arg };

	return read_rows(s, SQ_XFER_PENDING, JS_SQ_NONE, false, walk_transfer, &w);
}

const struct js_store_reg_ops js_store__sqlite_reg_ops = {
	.owner_enroll = js_store__reg_owner_enroll,
	.owner_get = sq_owner_get,
	.owner_head = sq_owner_head,
	.owner_foreach = sq_owner_foreach,
	.owner_set_published = js_store__reg_owner_set_published,
	.authcode_put = js_store__reg_authcode_put,
	.authcode_get = sq_authcode_get,
	.authcode_revoke = js_store__reg_authcode_revoke,
	.transfer_begin = sq_transfer_begin,
	.transfer_advance = js_store__reg_transfer_advance,
	.transfer_find = sq_transfer_find,
	.transfer_foreach_pending = sq_transfer_foreach_pending,
	.sql = &sq_reg_sql,
};
