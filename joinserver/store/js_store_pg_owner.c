/*
 * js_store_pg_owner.c - the ownership registry (js_store_owner.h) on the PostgreSQL backend:
 * the owners, authcodes and transfers tables (js_store_pg_schema.c). A port of
 * js_store_sqlite_owner.c: the same statements with $n parameters and ON CONFLICT. The write
 * rules (enroll, publish, auth codes, transfer begin/advance) are js_store_owner.c's
 * js_store__reg_* on this file's statements (pg_reg_sql).
 *
 * Every call runs on the writer connection inside one transaction (js_store__pg_wbegin), so a
 * batch of thousands of rows costs one fsync, and a crash leaves either the whole batch or
 * none of it; reads take the same path, so a walk sees one consistent state. The one
 * exception is owner_head, which every join with ownership on reads: it runs on a pooled
 * reader, so a join never waits for the writer. UNIQUE(dev_eui, serial) and UNIQUE(dev_eui,
 * nonce) back the replay checks of transfer_begin in the schema itself. Rows read back are
 * bounds-checked before they are copied into the fixed-size structs. Auth codes arrive here
 * already hashed (devices/ownership/dv_authcode.c); the audit detail never names a code.
 */
#include "store/js_store_pg_internal.h"

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

#define SQ_OWNER_INSERT "INSERT INTO owners(" OWNER_COLS ") VALUES($1, $2, $3, $4, $5, 0, $6)"
#define SQ_OWNER_GET "SELECT " OWNER_COLS " FROM owners WHERE dev_eui = $1"
#define SQ_OWNER_ALL "SELECT " OWNER_COLS " FROM owners ORDER BY dev_eui"
#define SQ_OWNER_UNPUBLISHED "SELECT " OWNER_COLS " FROM owners WHERE published = 0" \
			     " ORDER BY dev_eui"
#define SQ_OWNER_HEAD "SELECT zone, serial FROM owners WHERE dev_eui = $1"
#define SQ_OWNER_PUBLISH "UPDATE owners SET published = 1, updated_at = $2 WHERE dev_eui = $1"
#define SQ_OWNER_MOVE "UPDATE owners SET zone = $1, serial = $2, chain = $3, published = 1," \
		      " updated_at = $4 WHERE dev_eui = $5"
#define SQ_AUTH_PUT "INSERT INTO authcodes(dev_eui, salt, iter, hash, expires_at," \
		    " created_at) VALUES($1, $2, $3, $4, $5, $6) ON CONFLICT (dev_eui) DO UPDATE SET" \
		    " salt=EXCLUDED.salt, iter=EXCLUDED.iter, hash=EXCLUDED.hash," \
		    " expires_at=EXCLUDED.expires_at, created_at=EXCLUDED.created_at"
#define SQ_AUTH_GET "SELECT salt, iter, hash, expires_at FROM authcodes WHERE dev_eui = $1"
#define SQ_AUTH_DELETE "DELETE FROM authcodes WHERE dev_eui = $1"
#define SQ_XFER_BUSY "SELECT 1 FROM transfers WHERE dev_eui = $1 AND " XFER_UNFINISHED
#define SQ_XFER_USED "SELECT 1 FROM transfers WHERE dev_eui = $1 AND (serial = $2 OR nonce = $3)"
#define SQ_XFER_INSERT "INSERT INTO transfers(dev_eui, serial, nonce, from_zone, to_zone, chain," \
		       " step, created_at, updated_at) VALUES($1, $2, $3, $4, $5, $6, 0, $7, $7) RETURNING id"
#define SQ_XFER_STEP "UPDATE transfers SET step = $2, updated_at = $3 WHERE id = $1 AND" \
		     " step < $2"
#define SQ_XFER_EXISTS "SELECT 1 FROM transfers WHERE id = $1"
#define SQ_XFER_GET "SELECT " XFER_COLS " FROM transfers WHERE id = $1"
#define SQ_XFER_FIND "SELECT " XFER_COLS " FROM transfers WHERE dev_eui = $1 AND nonce = $2"
#define SQ_XFER_PENDING "SELECT " XFER_COLS " FROM transfers WHERE " XFER_UNFINISHED \
			" ORDER BY id"

/* col_text - copy a text column into a fixed buffer; DJ_EMALFORMED when it does not fit */
static int col_text(const PGresult *st, int row, int col, char *out, size_t cap)
{
	const char *t = PQgetisnull(st, row, col) ? NULL : PQgetvalue(st, row, col);
	size_t n = t != NULL ? (size_t)PQgetlength(st, row, col) : 0;

	if (t == NULL || n >= cap)
		return DJ_EMALFORMED;
	memcpy(out, t, n);
	out[n] = '\0';
	return DJ_EOK;
}

/* col_blob - copy a blob column of exactly \p len bytes */
static int col_blob(const PGresult *st, int row, int col, uint8_t *out, size_t len)
{
	size_t n;
	const uint8_t *b = js_store__pg_blob(st, row, col, &n);

	if (b == NULL || n != len)
		return DJ_EMALFORMED;
	memcpy(out, b, len);
	return DJ_EOK;
}

/* col_chain - a chain column (1..JS_OWNER_CHAIN_MAX bytes): borrowed from the statement, or a
 * malloc'd copy when \p copy */
static int col_chain(const PGresult *st, int row, int col, bool copy, uint8_t **out, size_t *len)
{
	size_t n;
	const uint8_t *b = js_store__pg_blob(st, row, col, &n);

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
static int row_owner(const PGresult *st, int row, struct js_owner *o, bool copy)
{
	memset(o, 0, sizeof(*o));
	if (col_blob(st, row, OC_DEV_EUI, o->dev_eui, LW_EUI_LEN) != DJ_EOK ||
	    col_text(st, row, OC_ZONE, o->zone, sizeof(o->zone)) != DJ_EOK ||
	    col_text(st, row, OC_ATTRS, o->attrs, sizeof(o->attrs)) != DJ_EOK)
		return DJ_EMALFORMED;
	o->serial = (uint64_t)js_store__pg_int(st, row, OC_SERIAL);
	o->published = js_store__pg_int(st, row, OC_PUBLISHED) != 0;
	o->updated_at = js_store__pg_int(st, row, OC_UPDATED_AT);
	return col_chain(st, row, OC_CHAIN, copy, &o->chain, &o->chain_len);
}

/* row_transfer - read an XFER_COLS row, as row_owner */
static int row_transfer(const PGresult *st, int row, struct js_transfer *t, bool copy)
{
	memset(t, 0, sizeof(*t));
	if (col_blob(st, row, XC_DEV_EUI, t->dev_eui, LW_EUI_LEN) != DJ_EOK ||
	    col_blob(st, row, XC_NONCE, t->nonce, JS_TRANSFER_NONCE_LEN) != DJ_EOK ||
	    col_text(st, row, XC_FROM_ZONE, t->from_zone, sizeof(t->from_zone)) != DJ_EOK ||
	    col_text(st, row, XC_TO_ZONE, t->to_zone, sizeof(t->to_zone)) != DJ_EOK)
		return DJ_EMALFORMED;
	t->id = js_store__pg_int(st, row, XC_ID);
	t->serial = (uint64_t)js_store__pg_int(st, row, XC_SERIAL);
	t->step = (enum js_transfer_step)js_store__pg_int(st, row, XC_STEP);
	t->created_at = js_store__pg_int(st, row, XC_CREATED_AT);
	t->updated_at = js_store__pg_int(st, row, XC_UPDATED_AT);
	return col_chain(st, row, XC_CHAIN, copy, &t->chain, &t->chain_len);
}

/* owner_copy - a row callback: the owner row into arg, its chain malloc'd */
static int owner_copy(const PGresult *st, int row, void *arg)
{
	return row_owner(st, row, arg, true);
}

/* transfer_copy - a row callback: the transfer row into arg, its chain malloc'd */
static int transfer_copy(const PGresult *st, int row, void *arg)
{
	return row_transfer(st, row, arg, true);
}

/* row_exists - a row callback for "SELECT 1" probes: js_store__pg_rows() then returns
 * DJ_EOK for a row and DJ_ENOENT for none */
static int row_exists(const PGresult *st, int row, void *arg)
{
	(void)st;
	(void)row;
	(void)arg;
	return DJ_EOK;
}

/* exists - DJ_EOK when the probe \p sql finds a row, DJ_ENOENT when not, or a fault */
static int exists(struct js_store__pg *q, const char *sql, const struct js_store__pg_val *v,
		  size_t n)
{
	return js_store__pg_rows(q, sql, v, n, true, row_exists, NULL);
}

/* read_rows - a read in its own transaction on the writer (a consistent view of a walk) */
static int read_rows(struct js_store *s, const char *sql, const struct js_store__pg_val *v,
		     size_t n, bool one, js_store__pg_row_fn row, void *arg)
{
	int ret, rc;

	ret = js_store__pg_wbegin(s->be);
	if (ret != DJ_EOK)
		return ret;
	ret = js_store__pg_rows(s->be, sql, v, n, one, row, arg);
	rc = js_store__pg_wend(s, DJ_EOK);	/* read only: nothing to roll back */
	return ret != DJ_EOK ? ret : rc;
}

/* pg_owner_get - ops->reg->owner_get: one owner row, its chain malloc'd */
static int pg_owner_get(struct js_store *s, const uint8_t dev_eui[LW_EUI_LEN],
			struct js_owner *out)
{
	return read_rows(s, SQ_OWNER_GET, JS_PG_ARGS(JS_PG_EUI(dev_eui)), true, owner_copy, out);
}

/* head_copy - a row callback: zone (required non-empty) and serial */
struct head_out {
	char *zone;
	size_t zonelen;
	uint64_t *serial;
};

static int head_copy(const PGresult *st, int row, void *arg)
{
	const struct head_out *h = arg;
	int ret = PQgetlength(st, row, HC_ZONE) > 0 ? col_text(st, row, HC_ZONE, h->zone,
								h->zonelen)
						     : DJ_EMALFORMED;

	if (ret == DJ_EOK)
		*h->serial = (uint64_t)js_store__pg_int(st, row, HC_SERIAL);
	return ret;
}

/* pg_owner_head - ops->reg->owner_head: the owner zone and serial only, on the reader */
static int pg_owner_head(struct js_store *s, const uint8_t dev_eui[LW_EUI_LEN], char *zone,
			 size_t zonelen, uint64_t *serial)
{
	struct head_out h = { zone, zonelen, serial };

	return js_store__pg_read(s->be, SQ_OWNER_HEAD, JS_PG_ARGS(JS_PG_EUI(dev_eui)), true,
				 head_copy, &h);
}

/* A walk of owner or transfer rows handed to the caller's callback. */
struct walk {
	int (*owner_cb)(const struct js_owner *o, void *arg);
	int (*xfer_cb)(const struct js_transfer *t, void *arg);
	void *arg;
};

/* walk_owner - a row callback: one owner row (chain borrowed) to the caller */
static int walk_owner(const PGresult *st, int row, void *arg)
{
	const struct walk *w = arg;
	struct js_owner o;
	int ret = row_owner(st, row, &o, false);

	return ret != DJ_EOK ? ret : w->owner_cb(&o, w->arg);
}

/* walk_transfer - a row callback: one transfer row (chain borrowed) to the caller */
static int walk_transfer(const PGresult *st, int row, void *arg)
{
	const struct walk *w = arg;
	struct js_transfer t;
	int ret = row_transfer(st, row, &t, false);

	return ret != DJ_EOK ? ret : w->xfer_cb(&t, w->arg);
}

/* pg_owner_foreach - ops->reg->owner_foreach: owner rows in DevEUI order */
static int pg_owner_foreach(struct js_store *s, bool unpublished,
			    int (*cb)(const struct js_owner *o, void *arg), void *arg)
{
	struct walk w = { .owner_cb = cb, .arg = arg };

	return read_rows(s, unpublished ? SQ_OWNER_UNPUBLISHED : SQ_OWNER_ALL, JS_PG_NONE, false,
			 walk_owner, &w);
}

/* authcode_row - a row callback: salt, iter, hash, expiry into the js_authcode at arg */
static int authcode_row(const PGresult *st, int row, void *arg)
{
	struct js_authcode *a = arg;
	int ret = col_blob(st, row, AC_SALT, a->salt, JS_AUTHCODE_SALT_LEN);

	if (ret == DJ_EOK)
		ret = col_blob(st, row, AC_HASH, a->hash, JS_AUTHCODE_HASH_LEN);
	a->iter = (uint32_t)js_store__pg_int(st, row, AC_ITER);
	a->expires_at = js_store__pg_int(st, row, AC_EXPIRES_AT);
	return ret;
}

/* pg_authcode_get - ops->reg->authcode_get: the auth code of a device */
static int pg_authcode_get(struct js_store *s, const uint8_t dev_eui[LW_EUI_LEN],
			   struct js_authcode *out)
{
	memcpy(out->dev_eui, dev_eui, LW_EUI_LEN);
	return read_rows(s, SQ_AUTH_GET, JS_PG_ARGS(JS_PG_EUI(dev_eui)), true, authcode_row, out);
}

/* head_row - a row callback: zone and serial (SQ_OWNER_HEAD) into the js_owner at arg */
static int head_row(const PGresult *st, int row, void *arg)
{
	struct js_owner *o = arg;

	o->serial = (uint64_t)js_store__pg_int(st, row, HC_SERIAL);
	return col_text(st, row, HC_ZONE, o->zone, sizeof(o->zone)) == DJ_EOK ? DJ_EOK : DJ_ESQL;
}

/* id_row - a row callback: the id RETURNING gave */
static int id_row(const PGresult *st, int row, void *arg)
{
	*(int64_t *)arg = js_store__pg_int(st, row, 0);
	return DJ_EOK;
}

/* pg_transfer_begin - ops->reg->transfer_begin: record verified transfers, all or nothing */
static int pg_transfer_begin(struct js_store *s, struct js_transfer *t, size_t n,
			     int *results)
{
	int ret;

	ret = js_store__pg_wbegin(s->be);
	if (ret != DJ_EOK)
		return ret;
	ret = js_store__xfer_begin_each(s, t, n, results, js_store__reg_begin_one);
	return js_store__pg_wend(s, ret);
}

/* --- the statements under the shared write rules (js_store_reg_sql) ----------------------- */

static int pg_owner_insert(struct js_store *s, const struct js_owner *o, int64_t now)
{
	return js_store__pg_run(s->be, SQ_OWNER_INSERT,
				JS_PG_ARGS(JS_PG_EUI(o->dev_eui), JS_PG_T(o->zone),
					   JS_PG_I(o->serial), JS_PG_B(o->chain, o->chain_len),
					   JS_PG_T(o->attrs), JS_PG_I(now)));
}

static int pg_owner_publish(struct js_store *s, const uint8_t *dev_eui)
{
	return js_store__pg_run(s->be, SQ_OWNER_PUBLISH,
				JS_PG_ARGS(JS_PG_EUI(dev_eui), JS_PG_I(js_store_now(s))));
}

static int pg_owner_head_row(struct js_store *s, const uint8_t *dev_eui, struct js_owner *o)
{
	return js_store__pg_rows(s->be, SQ_OWNER_HEAD, JS_PG_ARGS(JS_PG_EUI(dev_eui)), true,
				 head_row, o);
}

static int pg_owner_exists(struct js_store *s, const uint8_t *dev_eui)
{
	return exists(s->be, SQ_OWNER_HEAD, JS_PG_ARGS(JS_PG_EUI(dev_eui)));
}

static int pg_owner_move(struct js_store *s, const struct js_transfer *t)
{
	return js_store__pg_run(s->be, SQ_OWNER_MOVE,
				JS_PG_ARGS(JS_PG_T(t->to_zone), JS_PG_I(t->serial),
					   JS_PG_B(t->chain, t->chain_len),
					   JS_PG_I(js_store_now(s)), JS_PG_EUI(t->dev_eui)));
}

static int pg_authcode_write(struct js_store *s, const struct js_authcode *a)
{
	return js_store__pg_run(s->be, SQ_AUTH_PUT,
				JS_PG_ARGS(JS_PG_EUI(a->dev_eui),
					   JS_PG_B(a->salt, JS_AUTHCODE_SALT_LEN),
					   JS_PG_I(a->iter),
					   JS_PG_B(a->hash, JS_AUTHCODE_HASH_LEN),
					   JS_PG_I(a->expires_at),
					   JS_PG_I(js_store_now(s))));
}

static int pg_authcode_exists(struct js_store *s, const uint8_t *dev_eui)
{
	return exists(s->be, SQ_AUTH_GET, JS_PG_ARGS(JS_PG_EUI(dev_eui)));
}

static int pg_authcode_delete(struct js_store *s, const uint8_t *dev_eui)
{
	return js_store__pg_run(s->be, SQ_AUTH_DELETE, JS_PG_ARGS(JS_PG_EUI(dev_eui)));
}

static int pg_xfer_busy(struct js_store *s, const uint8_t *dev_eui)
{
	return exists(s->be, SQ_XFER_BUSY, JS_PG_ARGS(JS_PG_EUI(dev_eui)));
}

static int pg_xfer_used(struct js_store *s, const struct js_transfer *t)
{
	return exists(s->be, SQ_XFER_USED,
		      JS_PG_ARGS(JS_PG_EUI(t->dev_eui), JS_PG_I(t->serial),
				 JS_PG_B(t->nonce, JS_TRANSFER_NONCE_LEN)));
}

static int pg_xfer_insert(struct js_store *s, struct js_transfer *t)
{
	return js_store__pg_rows(s->be, SQ_XFER_INSERT,
				 JS_PG_ARGS(JS_PG_EUI(t->dev_eui), JS_PG_I(t->serial),
					    JS_PG_B(t->nonce, JS_TRANSFER_NONCE_LEN),
					    JS_PG_T(t->from_zone), JS_PG_T(t->to_zone),
					    JS_PG_B(t->chain, t->chain_len),
					    JS_PG_I(js_store_now(s))), true, id_row, &t->id);
}

static int pg_xfer_step(struct js_store *s, int64_t id, enum js_transfer_step step,
			uint64_t *moved)
{
	return js_store__pg_change(s->be, SQ_XFER_STEP,
				   JS_PG_ARGS(JS_PG_I(id), JS_PG_I(step), JS_PG_I(js_store_now(s))),
				   moved);
}

static int pg_xfer_exists(struct js_store *s, int64_t id)
{
	return exists(s->be, SQ_XFER_EXISTS, JS_PG_ARGS(JS_PG_I(id)));
}

/* A transfer row handed to the shared rules' callback. */
struct with {
	struct js_store *s;
	int (*cb)(struct js_store *s, const struct js_transfer *t, void *arg);
	void *arg;
};

/* with_row - a row callback: the transfer (chain borrowed from the result, which lives until
 * this returns) to the callback */
static int with_row(const PGresult *st, int row, void *arg)
{
	const struct with *w = arg;
	struct js_transfer t;

	if (row_transfer(st, row, &t, false) != DJ_EOK)
		return DJ_ESQL;
	return w->cb(w->s, &t, w->arg);
}

static int pg_xfer_with(struct js_store *s, int64_t id,
			int (*cb)(struct js_store *s, const struct js_transfer *t, void *arg),
			void *arg)
{
	struct with w = { s, cb, arg };

	return js_store__pg_rows(s->be, SQ_XFER_GET, JS_PG_ARGS(JS_PG_I(id)), true, with_row, &w);
}

static const struct js_store_reg_sql pg_reg_sql = {
	.batch = js_store__pg_batch,
	.audit_put = js_store__pg_audit_put,
	.outbox_put = js_store__pg_outbox_put,
	.owner_insert = pg_owner_insert,
	.owner_publish = pg_owner_publish,
	.owner_head = pg_owner_head_row,
	.owner_exists = pg_owner_exists,
	.owner_move = pg_owner_move,
	.authcode_write = pg_authcode_write,
	.authcode_exists = pg_authcode_exists,
	.authcode_delete = pg_authcode_delete,
	.xfer_busy = pg_xfer_busy,
	.xfer_used = pg_xfer_used,
	.xfer_insert = pg_xfer_insert,
	.xfer_step = pg_xfer_step,
	.xfer_exists = pg_xfer_exists,
	.xfer_with = pg_xfer_with,
};

/* pg_transfer_find - ops->reg->transfer_find: the transfer of a device with a nonce */
static int pg_transfer_find(struct js_store *s, const uint8_t dev_eui[LW_EUI_LEN],
			    const uint8_t nonce[JS_TRANSFER_NONCE_LEN],
			    struct js_transfer *out)
{
	return read_rows(s, SQ_XFER_FIND,
			 JS_PG_ARGS(JS_PG_EUI(dev_eui), JS_PG_B(nonce, JS_TRANSFER_NONCE_LEN)),
			 true, transfer_copy, out);
}

/* pg_transfer_foreach_pending - ops->reg->transfer_foreach_pending, oldest first */
static int pg_transfer_foreach_pending(struct js_store *s,
				       int (*cb)(const struct js_transfer *t, void *arg),
				       void *arg)
{
	struct walk w = { .xfer_cb = cb, .arg = arg };

	return read_rows(s, SQ_XFER_PENDING, JS_PG_NONE, false, walk_transfer, &w);
}

const struct js_store_reg_ops js_store__pg_reg_ops = {
	.owner_enroll = js_store__reg_owner_enroll,
	.owner_get = pg_owner_get,
	.owner_head = pg_owner_head,
	.owner_foreach = pg_owner_foreach,
	.owner_set_published = js_store__reg_owner_set_published,
	.authcode_put = js_store__reg_authcode_put,
	.authcode_get = pg_authcode_get,
	.authcode_revoke = js_store__reg_authcode_revoke,
	.transfer_begin = pg_transfer_begin,
	.transfer_advance = js_store__reg_transfer_advance,
	.transfer_find = pg_transfer_find,
	.transfer_foreach_pending = pg_transfer_foreach_pending,
	.sql = &pg_reg_sql,
};
