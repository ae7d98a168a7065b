/*
 * js_store_pg_commit.c - the PostgreSQL backend's group commit and outbox.
 *
 * DESCRIPTION
 *	A batch is one transaction sent in libpq pipeline mode: BEGIN, one prepared statement per
 *	commit item, COMMIT, then one sync, so the whole batch is one round trip. A nonce-state
 *	item is a single statement: the compare-and-swap
 *	    UPDATE devices ... WHERE dev_eui = $6 AND version = $7
 *	with its session, audit entries and outbox events written by data-modifying CTEs from the
 *	updated row only, so a lost CAS writes nothing and the answer names the loser
 *	(DJ_ECONFLICT: the engine re-checks on fresh state) or a device gone (DJ_ENOENT).
 *
 * SECURITY
 *	Results stand only once COMMIT has answered "COMMIT" (synchronous_commit is the server's:
 *	on, and with synchronous_standby_names the commit is on the standby too). Anything else -
 *	an error, a lost connection, an unknown COMMIT outcome - fails the whole batch with a fault
 *	code, the connection is dropped (the server rolls back what it had) and opened again on a
 *	later batch. The engine then answers JoinReqFailed; a client's retry meets the CAS.
 *
 *	The outbox is shared by every instance; exactly one publishes at a time: the instance whose
 *	reader connection holds the session advisory lock JS_PG_OUTBOX_LOCK. The lock goes with
 *	the connection, so when that instance dies another one takes over. Event ids are
 *	instance (of the database, in meta) | outbox id (a sequence): stable, whoever publishes.
 *	The publisher reads rows after the last id it sent, so ids must commit in order: every
 *	transaction that writes outbox rows first takes the transaction advisory lock
 *	JS_PG_OUTBOX_ORDER_LOCK, held until its COMMIT (the cost: batches that carry events commit
 *	one after another across instances).
 */
#include "store/js_store_pg_internal.h"

#include <endian.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "common/dj_err.h"
#include "common/dj_log.h"

#define PG_OID_BYTEA 17
#define PG_OID_INT8 20
#define PG_OID_TEXT 25
#define PG_OUTBOX_RECOUNT_MS 2000
#define PG_ITEM_PARAMS 15
#define PG_AUDITS_MAX (JS_COMMIT_EVENTS_MAX + 1)

#define PG_UPD_NAME "dj_upd"
#define PG_UPD_SQL \
	"WITH u AS (UPDATE devices SET version=version+1, dev_nonce_last=$1, join_nonce_last=$2," \
	" rjcount1_last=$3, dn_hist=$4, sess_token=$5 WHERE dev_eui=$6 AND version=$7" \
	" RETURNING dev_eui)," \
	" s AS (INSERT INTO sessions(session_id, dev_eui, created_at, expires_at, session_token)" \
	" SELECT $8, u.dev_eui, $9, $10, $11 FROM u WHERE $8 IS NOT NULL" \
	" ON CONFLICT (session_id) DO UPDATE SET dev_eui=EXCLUDED.dev_eui," \
	" created_at=EXCLUDED.created_at, expires_at=EXCLUDED.expires_at," \
	" session_token=EXCLUDED.session_token)," \
	" a AS (INSERT INTO audit(at, dev_eui, event, actor, detail)" \
	" SELECT $9, u.dev_eui, x.e, x.ac, x.d FROM u," \
	" unnest($12::text[], $13::text[], $14::text[]) WITH ORDINALITY AS x(e, ac, d, n)" \
	" ORDER BY x.n)," \
	" o AS (INSERT INTO outbox(at, body) SELECT $9, y.b FROM u," \
	" unnest($15::bytea[]) WITH ORDINALITY AS y(b, n) ORDER BY y.n)" \
	" SELECT (SELECT count(*) FROM u), EXISTS(SELECT 1 FROM devices WHERE dev_eui=$6)"
#define PG_EV_NAME "dj_ev"
#define PG_EV_SQL \
	"WITH a AS (INSERT INTO audit(at, dev_eui, event, actor, detail)" \
	" SELECT $1, $2, x.e, x.ac, x.d" \
	" FROM unnest($3::text[], $4::text[], $5::text[]) WITH ORDINALITY AS x(e, ac, d, n)" \
	" ORDER BY x.n)," \
	" o AS (INSERT INTO outbox(at, body) SELECT $1, y.b" \
	" FROM unnest($6::bytea[]) WITH ORDINALITY AS y(b, n) ORDER BY y.n)" \
	" SELECT 1::bigint, true"
/* held until COMMIT by every transaction that writes outbox rows (js_store_pg_internal.h) */
#define PG_OUTBOX_ORDER_SQL "SELECT pg_advisory_xact_lock(" DJ_STR(JS_PG_OUTBOX_ORDER_LOCK) ")"
#define PG_DONE_NAME "dj_done"
#define PG_DONE_SQL \
	"WITH d AS (DELETE FROM outbox WHERE id = ANY($1::int8[]) RETURNING 1)" \
	" SELECT count(*), true FROM d"

int js_store__pg_prepare(PGconn *c)
{
	static const Oid upd[PG_ITEM_PARAMS] = {
		PG_OID_INT8, PG_OID_INT8, PG_OID_INT8, PG_OID_BYTEA, PG_OID_BYTEA, PG_OID_BYTEA,
		PG_OID_INT8, PG_OID_BYTEA, PG_OID_INT8, PG_OID_INT8, PG_OID_BYTEA, 0, 0, 0, 0,
	};
	static const Oid ev[2] = { PG_OID_INT8, PG_OID_BYTEA };
	PGresult *r;
	int ok;

	r = PQprepare(c, PG_UPD_NAME, PG_UPD_SQL, PG_ITEM_PARAMS, upd);
	ok = PQresultStatus(r) == PGRES_COMMAND_OK;
	PQclear(r);
	if (ok) {
		r = PQprepare(c, PG_EV_NAME, PG_EV_SQL, 2, ev);
		ok = PQresultStatus(r) == PGRES_COMMAND_OK;
		PQclear(r);
	}
	if (ok) {
		r = PQprepare(c, PG_DONE_NAME, PG_DONE_SQL, 0, NULL);
		ok = PQresultStatus(r) == PGRES_COMMAND_OK;
		PQclear(r);
	}
	return ok ? DJ_EOK : DJ_ESQL;
}

/* A one-dimensional array in PostgreSQL's binary format, being built. */
struct arr {
	uint8_t *p;
	size_t len, cap;
	uint32_t n;
};

static bool arr_put(struct arr *a, const void *b, size_t n)
{
	if (a->len + n > a->cap) {
		size_t cap = (a->len + n) * 2 + 64;
		uint8_t *p = realloc(a->p, cap);

		if (p == NULL)
			return false;
		a->p = p;
		a->cap = cap;
	}
	memcpy(a->p + a->len, b, n);
	a->len += n;
	return true;
}

static bool arr_u32(struct arr *a, uint32_t v)
{
	uint32_t be = htobe32(v);

	return arr_put(a, &be, 4);
}

/* arr_begin - the header: dims, flags, element type; dim and lower bound come at arr_end */
static bool arr_begin(struct arr *a, uint32_t oid)
{
	a->len = 0;
	a->n = 0;
	/* ndim, hasnull, oid, then (dim, lbound) patched in at arr_end */
	return arr_u32(a, 1) && arr_u32(a, 0) && arr_u32(a, oid) && arr_u32(a, 0) &&
	       arr_u32(a, 1);
}

static bool arr_elem(struct arr *a, const void *b, size_t n)
{
	a->n++;
	return arr_u32(a, (uint32_t)n) && arr_put(a, b, n);
}

/* arr_end - patch the length in; an empty array has no dimension */
static void arr_end(struct arr *a)
{
	uint32_t be;

	if (a->n == 0) {
		be = 0;
		memcpy(a->p, &be, 4);	/* ndim 0 */
		a->len = 12;
		return;
	}
	be = htobe32(a->n);
	memcpy(a->p + 12, &be, 4);
}

static void arr_free(struct arr *a)
{
	if (a->p != NULL)
		OPENSSL_cleanse(a->p, a->cap);
	free(a->p);
	memset(a, 0, sizeof(*a));
}

/* One item's encoded parameters, alive until its result has been read. */
struct item {
	struct arr ev, ac, de, bodies, ids;
	uint64_t ints[6];
	uint8_t hist[JS_PG_HIST_PAIR * JS_DEVNONCE_HIST_MAX];
	uint32_t planned;		/* events it would write */
	uint32_t dropped;
};

static void item_free(struct item *it)
{
	arr_free(&it->ev);
	arr_free(&it->ac);
	arr_free(&it->de);
	arr_free(&it->bodies);
	arr_free(&it->ids);
}

/* Outbox effects of one batch, applied to the totals only once the batch is durable. */
struct ob_tally {
	uint64_t rows, written, dropped, done;
};

/* encode_events - the audit arrays (the commit's own entries first, when \p own) and the bodies
 * of the events the outbox has room for */
static bool encode_events(struct js_store *s, struct js_commit *c, struct item *it, bool own,
			  struct ob_tally *t)
{
	bool ok = arr_begin(&it->ev, PG_OID_TEXT) && arr_begin(&it->ac, PG_OID_TEXT) &&
		  arr_begin(&it->de, PG_OID_TEXT) && arr_begin(&it->bodies, PG_OID_BYTEA);

	for (uint32_t i = 0; ok && own && i < c->n_audit; i++) {
		const struct js_commit_audit *a = &c->audit[i];

		ok = arr_elem(&it->ev, a->event, strlen(a->event)) &&
		     arr_elem(&it->ac, a->actor, strlen(a->actor)) &&
		     arr_elem(&it->de, a->detail, strlen(a->detail));
	}
	for (const struct js_event *e = c->events; e != NULL && ok; e = e->next) {
		if (t->rows >= s->outbox_max) {
			it->dropped++;
			continue;
		}
		ok = arr_elem(&it->bodies, e->body, e->len);
		if (ok && e->audit_event != NULL) {
			const char *ac = e->audit_actor != NULL ? e->audit_actor : "";
			const char *de = e->audit_detail != NULL ? e->audit_detail : "";

			ok = arr_elem(&it->ev, e->audit_event, strlen(e->audit_event)) &&
			     arr_elem(&it->ac, ac, strlen(ac)) && arr_elem(&it->de, de, strlen(de));
		}
		t->rows++;
		it->planned++;
	}
	arr_end(&it->ev);
	arr_end(&it->ac);
	arr_end(&it->de);
	arr_end(&it->bodies);
	return ok;
}

/* send_item - queue one commit item's statement on the pipeline */
static int send_item(struct js_store *s, PGconn *pc, struct js_commit *c, struct item *it,
		     struct ob_tally *t, int64_t now)
{
	const char *v[PG_ITEM_PARAMS];
	int l[PG_ITEM_PARAMS], f[PG_ITEM_PARAMS];
	const struct js_nonce_state *ns = &c->new_st;
	int k, ok;

	for (k = 0; k < PG_ITEM_PARAMS; k++)
		f[k] = 1;
	if (c->kind == JS_COMMIT_OUTBOX_DONE) {
		ok = arr_begin(&it->ids, PG_OID_INT8);
		for (uint32_t i = 0; ok && i < c->n_done_ids; i++) {
			uint64_t be = htobe64((uint64_t)c->done_ids[i]);

			ok = arr_elem(&it->ids, &be, 8);
		}
		arr_end(&it->ids);
		if (!ok)
			return DJ_ENOMEM;
		v[0] = (const char *)it->ids.p;
		l[0] = (int)it->ids.len;
		return PQsendQueryPrepared(pc, PG_DONE_NAME, 1, v, l, f, 1) ? DJ_EOK : DJ_EIO;
	}
	if (!encode_events(s, c, it, c->kind == JS_COMMIT_STATE, t))
		return DJ_ENOMEM;
	it->ints[0] = htobe64((uint64_t)now);
	if (c->kind == JS_COMMIT_EVENTS) {
		v[0] = (const char *)&it->ints[0];
		l[0] = 8;
		v[1] = (const char *)c->dev_eui;
		l[1] = LW_EUI_LEN;
		v[2] = (const char *)it->ev.p;
		l[2] = (int)it->ev.len;
		v[3] = (const char *)it->ac.p;
		l[3] = (int)it->ac.len;
		v[4] = (const char *)it->de.p;
		l[4] = (int)it->de.len;
		v[5] = (const char *)it->bodies.p;
		l[5] = (int)it->bodies.len;
		return PQsendQueryPrepared(pc, PG_EV_NAME, 6, v, l, f, 1) ? DJ_EOK : DJ_EIO;
	}
	it->ints[1] = htobe64((uint64_t)(int64_t)ns->dev_nonce_last);
	it->ints[2] = htobe64((uint64_t)ns->join_nonce_last);
	it->ints[3] = htobe64((uint64_t)(int64_t)ns->rjcount1_last);
	it->ints[4] = htobe64(c->expect_version);
	it->ints[5] = htobe64((uint64_t)c->session_expires_at);
	js_store__hist_encode(ns->hist, ns->hist_len, it->hist);
	v[0] = (const char *)&it->ints[1];
	v[1] = (const char *)&it->ints[2];
	v[2] = (const char *)&it->ints[3];
	for (k = 0; k < 3; k++)
		l[k] = 8;
	v[3] = (const char *)it->hist;	/* empty, not NULL: as SQLite's X'' */
	l[3] = (int)(ns->hist_len * JS_PG_HIST_PAIR);
	v[4] = ns->sess_token_len > 0 ? (const char *)ns->sess_token : NULL;
	l[4] = (int)ns->sess_token_len;
	v[5] = (const char *)c->dev_eui;
	l[5] = LW_EUI_LEN;
	v[6] = (const char *)&it->ints[4];
	l[6] = 8;
	v[7] = c->has_session ? (const char *)c->session_id : NULL;
	l[7] = (int)c->session_id_len;
	v[8] = (const char *)&it->ints[0];
	l[8] = 8;
	v[9] = (const char *)&it->ints[5];
	l[9] = 8;
	v[10] = c->has_session ? (const char *)c->session_token : NULL;
	l[10] = (int)c->session_token_len;
	v[11] = (const char *)it->ev.p;
	l[11] = (int)it->ev.len;
	v[12] = (const char *)it->ac.p;
	l[12] = (int)it->ac.len;
	v[13] = (const char *)it->de.p;
	l[13] = (int)it->de.len;
	v[14] = (const char *)it->bodies.p;
	l[14] = (int)it->bodies.len;
	return PQsendQueryPrepared(pc, PG_UPD_NAME, PG_ITEM_PARAMS, v, l, f, 1) ? DJ_EOK : DJ_EIO;
}

/* one_result - the result of the next queued statement, and the NULL that ends it; NULL when
 * the statement failed or the connection broke */
static PGresult *one_result(PGconn *c, ExecStatusType want)
{
	PGresult *r = PQgetResult(c);
	PGresult *end;

	if (r == NULL)
		return NULL;
	if (PQresultStatus(r) != want) {
		dj_warn_limited("store: PostgreSQL batch: %s",
				PQresultStatus(r) == PGRES_PIPELINE_ABORTED ? "aborted"
									     : PQresultErrorMessage(r));
		PQclear(r);
		return NULL;
	}
	end = PQgetResult(c);
	if (end != NULL) {
		PQclear(end);
		PQclear(r);
		return NULL;
	}
	return r;
}

/* recount - refresh the outbox size now and then (the other instances write to it too) */
static void recount(struct js_store__pg *q)
{
	PGresult *r;

	if (js_store__pg_ms() - q->outbox_counted_ms < PG_OUTBOX_RECOUNT_MS)
		return;
	r = PQexecParams(q->w.c, "SELECT count(*) FROM outbox", 0, NULL, NULL, NULL, NULL, 1);
	if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1) {
		q->outbox_n = (uint64_t)js_store__pg_int(r, 0, 0);
		q->outbox_counted_ms = js_store__pg_ms();
	}
	PQclear(r);
	js_store__pg_check_conn(&q->w);
}

/* run_batch - the pipeline: BEGIN, the items, COMMIT, sync; item results into c->result */
static int run_batch(struct js_store *s, PGconn *pc, struct js_commit *head, size_t n,
		     struct item *items, struct ob_tally *t)
{
	int64_t now = js_store_now(s);
	struct js_commit *c;
	PGresult *r;
	size_t i;
	int ret = DJ_EOK;

	if (!PQenterPipelineMode(pc))
		return DJ_EIO;
	bool events = false;

	for (c = head; c != NULL; c = c->priv_next)
		events = events || c->events != NULL;
	if (!PQsendQueryParams(pc, "BEGIN", 0, NULL, NULL, NULL, NULL, 1))
		ret = DJ_EIO;
	/* outbox ids in commit order across instances: the publisher's cursor never skips a row
	 * that commits late */
	if (ret == DJ_EOK && events &&
	    !PQsendQueryParams(pc, PG_OUTBOX_ORDER_SQL, 0, NULL, NULL, NULL, NULL, 1))
		ret = DJ_EIO;
	for (c = head, i = 0; c != NULL && i < n && ret == DJ_EOK; c = c->priv_next, i++)
		ret = send_item(s, pc, c, &items[i], t, now);
	if (ret == DJ_EOK && !PQsendQueryParams(pc, "COMMIT", 0, NULL, NULL, NULL, NULL, 1))
		ret = DJ_EIO;
	if (ret == DJ_EOK && !PQpipelineSync(pc))
		ret = DJ_EIO;
	if (ret != DJ_EOK)
		return ret;	/* the caller drops the connection: nothing was committed */
	/* one round trip: read back what the server answered, in order */
	r = one_result(pc, PGRES_COMMAND_OK);
	if (r == NULL)
		return DJ_EIO;
	PQclear(r);
	if (events) {
		r = one_result(pc, PGRES_TUPLES_OK);
		if (r == NULL)
			return DJ_EIO;
		PQclear(r);
	}
	for (c = head, i = 0; c != NULL && i < n; c = c->priv_next, i++) {
		int64_t count;
		bool exists;

		r = one_result(pc, PGRES_TUPLES_OK);
		if (r == NULL || PQntuples(r) != 1) {
			PQclear(r);
			return DJ_EIO;
		}
		count = js_store__pg_int(r, 0, 0);
		exists = js_store__pg_int(r, 0, 1) != 0;
		PQclear(r);
		c->events_dropped = 0;
		if (c->kind == JS_COMMIT_OUTBOX_DONE) {
			t->done += (uint64_t)count;
			t->rows = t->rows > (uint64_t)count ? t->rows - (uint64_t)count : 0;
			c->result = DJ_EOK;
		} else if (c->kind == JS_COMMIT_EVENTS || count == 1) {
			c->events_dropped = items[i].dropped;
			t->written += items[i].planned;
			t->dropped += items[i].dropped;
			c->result = DJ_EOK;
		} else {
			/* the CAS lost (or the device is gone): nothing of the item was written */
			t->rows -= items[i].planned;
			c->result = exists ? DJ_ECONFLICT : DJ_ENOENT;
		}
	}
	r = one_result(pc, PGRES_COMMAND_OK);
	if (r == NULL)
		return DJ_EIO;	/* COMMIT failed, or its outcome is unknown: the batch failed */
	ret = strcmp(PQcmdStatus(r), "COMMIT") == 0 ? DJ_EOK : DJ_ESQL;
	PQclear(r);
	r = PQgetResult(pc);
	if (r == NULL || PQresultStatus(r) != PGRES_PIPELINE_SYNC)
		ret = DJ_EIO;
	PQclear(r);
	if (ret == DJ_EOK && !PQexitPipelineMode(pc))
		ret = DJ_EIO;
	return ret;
}

int js_store__pg_apply_batch(struct js_store *s, struct js_commit *head, size_t n)
{
	struct js_store__pg *q = s->be;
	struct ob_tally t = { 0, 0, 0, 0 };
	struct item *items = calloc(n != 0 ? n : 1, sizeof(*items));
	struct js_commit *c;
	PGconn *pc;
	int ret;

	pthread_mutex_lock(&q->wlock);
	pc = js_store__pg_conn(q, &q->w);
	if (items == NULL) {
		ret = DJ_ENOMEM;
	} else if (pc == NULL) {
		ret = DJ_EIO;	/* down: fail fast, the engine answers JoinReqFailed */
	} else {
		recount(q);
		t.rows = q->outbox_n;
		ret = q->w.c != NULL ? run_batch(s, pc, head, n, items, &t) : DJ_EIO;
		if (ret != DJ_EOK && q->w.c != NULL) {
			/* the transaction dies with the connection; a new one comes at once */
			PQfinish(q->w.c);
			q->w.c = NULL;
			q->w.retry_at_ms = 0;
		}
	}
	js_store__fault(s, ret == DJ_EOK, false);
	if (ret == DJ_EOK) {
		q->outbox_n = t.rows;
		if (t.written + t.dropped + t.done > 0)
			js_store__outbox_count(s, t.written, t.dropped, t.done, t.rows);
	}
	pthread_mutex_unlock(&q->wlock);
	for (size_t i = 0; items != NULL && i < n; i++)
		item_free(&items[i]);
	if (items != NULL)
		OPENSSL_cleanse(items, n * sizeof(*items));
	free(items);
	if (ret != DJ_EOK)
		for (c = head; c != NULL; c = c->priv_next)
			c->result = ret;
	return ret;
}

struct fetch {
	struct js_outbox_row *rows;
	size_t k;
};

static int fetch_row(const PGresult *res, int i, void *arg)
{
	struct fetch *f = arg;
	struct js_outbox_row *r = &f->rows[f->k];
	size_t len;
	const uint8_t *body = js_store__pg_blob(res, i, 2, &len);

	if (len == 0 || len > JS_EVENT_BODY_MAX) {
		dj_warn("store: an outbox row is malformed");
		return DJ_EMALFORMED;
	}
	r->id = js_store__pg_int(res, i, 0);
	r->at = js_store__pg_int(res, i, 1);
	r->len = (uint32_t)len;
	memcpy(r->body, body, len);
	f->k++;
	return DJ_EOK;
}

/* lead - is this instance the outbox's publisher? Takes the lock when it is free */
static bool lead(struct js_store__pg *q)
{
	PGresult *r = NULL;
	bool got = false;

	pthread_mutex_lock(&q->oblock);
	if (js_store__pg_conn(q, &q->ob) != NULL) {
		if (!q->ob.leader &&
		    js_store__pg_exec(&q->ob, "SELECT pg_try_advisory_lock($1)",
				      JS_PG_ARGS(JS_PG_I(JS_PG_OUTBOX_LOCK)), &r) == DJ_EOK &&
		    PQntuples(r) == 1 && js_store__pg_int(r, 0, 0) == 1) {
			q->ob.leader = true;
			dj_info("store: this instance now publishes the outbox");
		}
		got = q->ob.leader;
	}
	pthread_mutex_unlock(&q->oblock);
	PQclear(r);
	return got;
}

int js_store__pg_outbox_fetch(struct js_store *s, int64_t after_id, struct js_outbox_row *rows,
			      size_t max, size_t *n)
{
	struct fetch f = { rows, 0 };
	int ret;

	if (!lead(s->be)) {
		*n = 0;		/* another instance publishes */
		return DJ_EOK;
	}
	ret = js_store__pg_read(s->be, "SELECT id, at, body FROM outbox WHERE id > $1"
				" ORDER BY id LIMIT $2", JS_PG_ARGS(JS_PG_I(after_id), JS_PG_I(max)),
				false, fetch_row, &f);
	if (ret == DJ_EOK)
		*n = f.k;
	return ret;
}

static int count_row(const PGresult *r, int i, void *arg)
{
	*(uint64_t *)arg = (uint64_t)js_store__pg_int(r, i, 0);
	return DJ_EOK;
}

void js_store__pg_outbox_put(struct js_store *s, const uint8_t *body, size_t len)
{
	struct js_store__pg *q = s->be;

	if (!q->xo_pend) {
		q->xo_rows = q->outbox_n;
		if (js_store__pg_rows(q, "SELECT count(*) FROM outbox", JS_PG_NONE, true, count_row,
				      &q->xo_rows) != DJ_EOK)
			q->xo_rows = q->outbox_n;
		q->xo_pend = true;
	}
	if (body == NULL || len == 0 || len > JS_EVENT_BODY_MAX || q->xo_rows >= s->outbox_max) {
		q->xo_dropped++;
		return;
	}
	if (js_store__pg_run(q, PG_OUTBOX_ORDER_SQL, JS_PG_NONE) != DJ_EOK) {
		q->xo_dropped++;
		return;
	}
	if (js_store__pg_run(q, "INSERT INTO outbox(at, body) VALUES($1, $2)",
			     JS_PG_ARGS(JS_PG_I(js_store_now(s)), JS_PG_B(body, len))) != DJ_EOK) {
		q->xo_dropped++;
		return;
	}
	q->xo_rows++;
	q->xo_written++;
}
