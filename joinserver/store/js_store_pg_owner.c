/*
 * js_store_pg_owner.c - the ownership registry (js_store_owner.h) on the PostgreSQL backend:
 * the owners, authcodes and transfers tables (js_store_pg_schema.c). A port of
 * js_store_sqlite_owner.c: the same statements with $n parameters and ON CONFLICT.
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

/* An enrollment: the devices and their owner rows. */
struct enroll {
	const struct js_device *devs;
	const struct js_owner *owners;
	const char *actor;
	int64_t now;
};

/* enroll_one - a batch item: device i and its owner row */
static int enroll_one(struct js_store *s, size_t i, void *arg)
{
	const struct enroll *e = arg;
	const struct js_owner *o = &e->owners[i];
	int ret = js_store__pg_device_insert(s, &e->devs[i], e->actor, 0);

	if (ret != DJ_EOK)
		return ret;
	return js_store__pg_run(s->be, SQ_OWNER_INSERT,
				JS_PG_ARGS(JS_PG_EUI(o->dev_eui), JS_PG_T(o->zone),
					   JS_PG_I(o->serial), JS_PG_B(o->chain, o->chain_len),
					   JS_PG_T(o->attrs), JS_PG_I(e->now)));
}

/* pg_owner_enroll - ops->reg->owner_enroll: the devices and their owner rows, all or nothing */
static int pg_owner_enroll(struct js_store *s, const struct js_device *devs,
			   const struct js_owner *owners, size_t n, const char *actor,
			   size_t *failed)
{
	struct enroll e = { devs, owners, actor, js_store_now(s) };
	size_t bad = 0;
	int ret = js_store__pg_batch(s, n, enroll_one, &e, &bad);

	if (ret == DJ_EEXIST && failed != NULL)
		*failed = bad;
	return ret;
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

/* publish_one - a batch item: mark the owner row of DevEUI i published */
static int publish_one(struct js_store *s, size_t i, void *arg)
{
	const uint8_t (*dev_euis)[LW_EUI_LEN] = arg;

	return js_store__pg_run(s->be, SQ_OWNER_PUBLISH,
				JS_PG_ARGS(JS_PG_EUI(dev_euis[i]), JS_PG_I(js_store_now(s))));
}

/* pg_owner_set_published - ops->reg->owner_set_published: mark owner rows published */
static int pg_owner_set_published(struct js_store *s, const uint8_t (*dev_euis)[LW_EUI_LEN],
				  size_t n)
{
	size_t bad;

	return js_store__pg_batch(s, n, publish_one, (void *)dev_euis, &bad);
}

/* Auth codes to store, and who stores them. */
struct authcodes {
	const struct js_authcode *recs;
	const char *actor;
};

/* authcode_one - a batch item: auth code i, for an enrolled device only, and its audit entry */
static int authcode_one(struct js_store *s, size_t i, void *arg)
{
	const struct authcodes *ac = arg;
	const struct js_authcode *a = &ac->recs[i];
	char detail[JS_AUDIT_DETAIL_MAX];
	int ret;

	ret = exists(s->be, SQ_OWNER_HEAD, JS_PG_ARGS(JS_PG_EUI(a->dev_eui)));
	if (ret == DJ_EOK)
		ret = js_store__pg_run(s->be, SQ_AUTH_PUT,
				       JS_PG_ARGS(JS_PG_EUI(a->dev_eui),
						  JS_PG_B(a->salt, JS_AUTHCODE_SALT_LEN),
						  JS_PG_I(a->iter),
						  JS_PG_B(a->hash, JS_AUTHCODE_HASH_LEN),
						  JS_PG_I(a->expires_at),
						  JS_PG_I(js_store_now(s))));
	if (ret != DJ_EOK)
		return ret;
	js_store__authcode_detail(a, detail, sizeof(detail));
	return js_store__pg_audit_put(s, a->dev_eui, JS_AUTHCODE_EVENT, ac->actor, detail);
}

/* pg_authcode_put - ops->reg->authcode_put: set auth codes, all or nothing, audited */
static int pg_authcode_put(struct js_store *s, const struct js_authcode *recs, size_t n,
			   const char *actor, size_t *failed)
{
	struct authcodes ac = { recs, actor };
	size_t bad = 0;
	int ret = js_store__pg_batch(s, n, authcode_one, &ac, &bad);

	if (ret == DJ_ENOENT && failed != NULL)
		*failed = bad;
	return ret;
}

/* revoke_one - the batch of one: the device's auth code, if one is set, deleted and audited */
static int revoke_one(struct js_store *s, size_t i, void *arg)
{
	const struct authcodes *ac = arg;
	const uint8_t *eui = ac->recs[i].dev_eui;
	int ret;

	ret = exists(s->be, SQ_AUTH_GET, JS_PG_ARGS(JS_PG_EUI(eui)));
	if (ret == DJ_EOK)
		ret = js_store__pg_run(s->be, SQ_AUTH_DELETE, JS_PG_ARGS(JS_PG_EUI(eui)));
	if (ret != DJ_EOK)
		return ret;
	return js_store__pg_audit_put(s, eui, JS_AUTHCODE_REVOKE_EVENT, ac->actor, "revoked");
}

/* pg_authcode_revoke - ops->reg->authcode_revoke: delete a device's auth code, audited */
static int pg_authcode_revoke(struct js_store *s, const uint8_t dev_eui[LW_EUI_LEN],
			       const char *actor)
{
	struct js_authcode rec;
	struct authcodes ac = { &rec, actor };
	size_t bad = 0;

	memset(&rec, 0, sizeof(rec));
	memcpy(rec.dev_eui, dev_eui, LW_EUI_LEN);
	return js_store__pg_batch(s, 1, revoke_one, &ac, &bad);
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

/* begin_one - check one transfer against the table and the owner row, then record it */
static int begin_one(struct js_store *s, struct js_transfer *t)
{
	struct js_store__pg *q = s->be;
	struct js_owner o;
	int ret;

	ret = exists(q, SQ_XFER_BUSY, JS_PG_ARGS(JS_PG_EUI(t->dev_eui)));
	if (ret != DJ_ENOENT)
		return ret == DJ_EOK ? DJ_ECONFLICT : ret;	/* another one is unfinished */
	ret = js_store__pg_rows(q, SQ_OWNER_HEAD, JS_PG_ARGS(JS_PG_EUI(t->dev_eui)), true,
				head_row, &o);
	if (ret != DJ_EOK)
		return ret;
	/* a used serial or nonce is a replay: tell it apart from a moved-on owner */
	ret = exists(q, SQ_XFER_USED,
		     JS_PG_ARGS(JS_PG_EUI(t->dev_eui), JS_PG_I(t->serial),
				JS_PG_B(t->nonce, JS_TRANSFER_NONCE_LEN)));
	if (ret != DJ_ENOENT)
		return ret == DJ_EOK ? DJ_EEXIST : ret;
	if (strcmp(o.zone, t->from_zone) != 0 || t->serial != o.serial + 1)
		return DJ_ECONFLICT;
	ret = js_store__pg_rows(q, SQ_XFER_INSERT,
			       JS_PG_ARGS(JS_PG_EUI(t->dev_eui), JS_PG_I(t->serial),
					  JS_PG_B(t->nonce, JS_TRANSFER_NONCE_LEN),
					  JS_PG_T(t->from_zone), JS_PG_T(t->to_zone),
					  JS_PG_B(t->chain, t->chain_len),
					  JS_PG_I(js_store_now(s))), true, id_row, &t->id);
	if (ret == DJ_EOK) {
		t->step = JS_XFER_RECORDED;
	}
	return ret;
}

/* pg_transfer_begin - ops->reg->transfer_begin: record verified transfers, all or nothing */
static int pg_transfer_begin(struct js_store *s, struct js_transfer *t, size_t n,
			     int *results)
{
	int ret;

	ret = js_store__pg_wbegin(s->be);
	if (ret != DJ_EOK)
		return ret;
	ret = js_store__xfer_begin_each(s, t, n, results, begin_one);
	return js_store__pg_wend(s, ret);
}

/* A transfer_advance: the transfers, their step, the caller's actor. */
struct finish {
	struct js_store *s;
	const char *actor;
	const int64_t *ids;
	enum js_transfer_step step;
};

/* finish_row - a row callback on the transfer reaching DONE: the owner row becomes the
 * transfer's, the auth code goes, the audit entry and the outbox event are written. The chain
 * is borrowed from the transfer's statement, which stays on its row until this returns. */
static int finish_row(const PGresult *st, int row, void *arg)
{
	const struct finish *f = arg;
	struct js_store *s = f->s;
	struct js_transfer t;
	char detail[JS_AUDIT_DETAIL_MAX];
	uint8_t body[JS_EVENT_BODY_MAX];
	size_t blen = 0;
	int ret;

	ret = row_transfer(st, row, &t, false);
	if (ret != DJ_EOK)
		return DJ_ESQL;
	ret = js_store__pg_run(s->be, SQ_OWNER_MOVE,
			       JS_PG_ARGS(JS_PG_T(t.to_zone), JS_PG_I(t.serial),
					  JS_PG_B(t.chain, t.chain_len), JS_PG_I(js_store_now(s)),
					  JS_PG_EUI(t.dev_eui)));
	if (ret == DJ_EOK)
		ret = js_store__pg_run(s->be, SQ_AUTH_DELETE, JS_PG_ARGS(JS_PG_EUI(t.dev_eui)));
	if (ret == DJ_EOK) {
		js_store__xfer_detail(&t, detail, sizeof(detail));
		ret = js_store__pg_audit_put(s, t.dev_eui, JS_TRANSFER_EVENT, f->actor, detail);
	}
	if (ret == DJ_EOK && js_store__xfer_event(s, &t, body, &blen))
		js_store__pg_outbox_put(s, blen > 0 ? body : NULL, blen);
	OPENSSL_cleanse(body, sizeof(body));
	return ret;
}

/* advance_one - a batch item: transfer ids[i] to the step; at DONE, finish it */
static int advance_one(struct js_store *s, size_t i, void *arg)
{
	const struct finish *f = arg;
	uint64_t moved = 0;
	int ret;

	ret = js_store__pg_change(s->be, SQ_XFER_STEP,
				  JS_PG_ARGS(JS_PG_I(f->ids[i]), JS_PG_I(f->step),
					     JS_PG_I(js_store_now(s))), &moved);
	if (ret != DJ_EOK)
		return ret;
	if (moved == 0)	/* already at this step (a re-run), or no such id */
		return exists(s->be, SQ_XFER_EXISTS, JS_PG_ARGS(JS_PG_I(f->ids[i])));
	if (f->step != JS_XFER_DONE)
		return DJ_EOK;
	return js_store__pg_rows(s->be, SQ_XFER_GET, JS_PG_ARGS(JS_PG_I(f->ids[i])), true,
				 finish_row, (void *)f);
}

/* pg_transfer_advance - ops->reg->transfer_advance: to a step; DONE moves the owner */
static int pg_transfer_advance(struct js_store *s, const int64_t *ids, size_t n,
			       enum js_transfer_step step, const char *actor)
{
	struct finish f = { .s = s, .actor = actor, .ids = ids, .step = step };
	size_t bad;

	return js_store__pg_batch(s, n, advance_one, &f, &bad);
}

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
	.owner_enroll = pg_owner_enroll,
	.owner_get = pg_owner_get,
	.owner_head = pg_owner_head,
	.owner_foreach = pg_owner_foreach,
	.owner_set_published = pg_owner_set_published,
	.authcode_put = pg_authcode_put,
	.authcode_get = pg_authcode_get,
	.authcode_revoke = pg_authcode_revoke,
	.transfer_begin = pg_transfer_begin,
	.transfer_advance = pg_transfer_advance,
	.transfer_find = pg_transfer_find,
	.transfer_foreach_pending = pg_transfer_foreach_pending,
};
