/*
 * js_store_sqlite_commit.c - the SQLite backend's group commit and outbox: one transaction per
 * batch of nonce-state changes (compare-and-swap on devices.version), their sessions, audit
 * entries and events, and the outbox read and written beside them.
 *
 * SECURITY
 *	The committer reports results only after COMMIT returned under synchronous=FULL (DESIGN.md
 *	trust rule 4, see js_store.c). The nonce update is a compare-and-swap on devices.version
 *	inside the transaction, so a stale state never overwrites a newer one.
 */
#include "store/js_store_sqlite_internal.h"

#include <string.h>

#include "common/dj_err.h"
#include "common/dj_log.h"

#define SQ_FETCH_SQL "SELECT id, at, body FROM outbox WHERE id > ?1 ORDER BY id LIMIT ?2"

/* Outbox effects of one batch, applied to the totals only once the batch is durable. */
struct ob_tally {
	uint64_t rows, written, dropped, done;
};

/* events_put - write a commit's events (and their audit entries) while the outbox has room */
static int events_put(struct js_store *s, struct js_commit *c, struct ob_tally *t)
{
	struct js_store__sq *q = s->be;
	int ret = DJ_EOK;

	for (const struct js_event *e = c->events; e != NULL && ret == DJ_EOK; e = e->next) {
		if (t->rows >= s->outbox_max) {
			c->events_dropped++;
			t->dropped++;
			continue;
		}
		sqlite3_bind_int64(q->ob_put, 1, js_store_now(s));
		sqlite3_bind_blob(q->ob_put, 2, e->body, (int)e->len, SQLITE_STATIC);
		ret = js_store__sq_done(q->w, q->ob_put);
		if (ret == DJ_EOK && e->audit_event != NULL)
			ret = js_store__sq_audit_put(s, c->dev_eui, e->audit_event, e->audit_actor,
					e->audit_detail);
		if (ret == DJ_EOK) {
			t->rows++;
			t->written++;
		}
	}
	return ret;
}

/* outbox_done - delete delivered rows (a row already gone is no error: a duplicate ack) */
static int outbox_done(struct js_store__sq *q, const struct js_commit *c, struct ob_tally *t)
{
	int ret = DJ_EOK;

	for (uint32_t i = 0; i < c->n_done_ids && ret == DJ_EOK; i++) {
		sqlite3_bind_int64(q->ob_del, 1, c->done_ids[i]);
		ret = js_store__sq_done(q->w, q->ob_del);
		if (ret == DJ_EOK && sqlite3_changes(q->w) > 0) {
			if (t->rows > 0)	/* rows another process wrote are not counted */
				t->rows--;
			t->done++;
		}
	}
	return ret;
}

/*
 * cas_update - the compare-and-swap of c's device: run st (upd, or upd_row with ?8 the rowid
 * the read gave) with c's new state; DJ_EOK and *changed when the row had dev_eui and the
 * version read
 */
static int cas_update(struct js_store__sq *q, sqlite3_stmt *st, const struct js_commit *c,
		      bool *changed)
{
	const struct js_nonce_state *ns = &c->new_st;
	size_t hbytes = (size_t)ns->hist_len * JS_SQ_HIST_PAIR;
	int ret;

	sqlite3_bind_int64(st, 1, ns->dev_nonce_last);
	sqlite3_bind_int64(st, 2, ns->join_nonce_last);
	sqlite3_bind_int64(st, 3, ns->rjcount1_last);
	js_store__hist_encode(ns->hist, ns->hist_len, q->histbuf);	/* hist_len entries only */
	if (hbytes > 0)
		sqlite3_bind_blob(st, 4, q->histbuf, (int)hbytes, SQLITE_STATIC);
	else
		sqlite3_bind_zeroblob(st, 4, 0);
	if (ns->sess_token_len > 0)
		sqlite3_bind_blob(st, 5, ns->sess_token, (int)ns->sess_token_len, SQLITE_STATIC);
	else
		sqlite3_bind_null(st, 5);
	sqlite3_bind_blob(st, 6, c->dev_eui, LW_EUI_LEN, SQLITE_STATIC);
	sqlite3_bind_int64(st, 7, (sqlite3_int64)c->expect_version);
	if (st == q->upd_row)
		sqlite3_bind_int64(st, 8, c->row);
	ret = js_store__sq_done(q->w, st);
	*changed = ret == DJ_EOK && sqlite3_changes(q->w) > 0;
	return ret;
}

/* commit_one - apply one commit item inside the open transaction; sets c->result */
static int commit_one(struct js_store *s, struct js_commit *c, struct ob_tally *t)
{
	struct js_store__sq *q = s->be;
	bool changed = false;
	int ret;
	int rc;

	c->events_dropped = 0;
	if (c->kind != JS_COMMIT_STATE) {
		ret = c->kind == JS_COMMIT_EVENTS ? events_put(s, c, t) : outbox_done(q, c, t);
		if (ret == DJ_EOK)
			c->result = DJ_EOK;
		return ret;
	}
	/*
	 * By the rowid the read gave, when it gave one: the table's own key, one B-tree search
	 * instead of the dev_eui index's and then the table's. No row there with this dev_eui and
	 * version (the version moved, the device is gone, or VACUUM renumbered the rows): the
	 * same update by dev_eui decides, as it always did.
	 */
	ret = c->row > 0 ? cas_update(q, q->upd_row, c, &changed) : DJ_EOK;
	if (ret == DJ_EOK && !changed)
		ret = cas_update(q, q->upd, c, &changed);
	if (ret != DJ_EOK)
		goto out;
	if (!changed) {
		/* Either the version moved (someone else won) or the device is gone. */
		sqlite3_bind_blob(q->exists, 1, c->dev_eui, LW_EUI_LEN, SQLITE_STATIC);
		rc = sqlite3_step(q->exists);
		sqlite3_reset(q->exists);
		sqlite3_clear_bindings(q->exists);
		if (rc == SQLITE_ROW)
			c->result = DJ_ECONFLICT;
		else if (rc == SQLITE_DONE)
			c->result = DJ_ENOENT;
		else
			ret = js_store__sq_fail(q->w, "exists");
		goto out;
	}
	if (c->has_session) {
		sqlite3_bind_blob(q->sess_put, 1, c->session_id, (int)c->session_id_len,
				  SQLITE_STATIC);
		sqlite3_bind_blob(q->sess_put, 2, c->dev_eui, LW_EUI_LEN, SQLITE_STATIC);
		sqlite3_bind_int64(q->sess_put, 3, js_store_now(s));
		sqlite3_bind_int64(q->sess_put, 4, c->session_expires_at);
		sqlite3_bind_blob(q->sess_put, 5, c->session_token, (int)c->session_token_len,
				  SQLITE_STATIC);
		ret = js_store__sq_done(q->w, q->sess_put);
		if (ret != DJ_EOK)
			goto out;
	}
	for (uint32_t i = 0; i < c->n_audit; i++) {
		ret = js_store__sq_audit_put(s, c->dev_eui, c->audit[i].event, c->audit[i].actor,
					     c->audit[i].detail);
		if (ret != DJ_EOK)
			goto out;
	}
	ret = events_put(s, c, t);
	if (ret != DJ_EOK)
		goto out;
	c->result = DJ_EOK;
out:
	return ret;
}

/* results stand only after COMMIT */
int js_store__sq_apply_batch(struct js_store *s, struct js_commit *head, size_t n)
{
	struct js_store__sq *q = s->be;
	struct js_commit *c;
	struct ob_tally t = { 0, 0, 0, 0 };
	bool full = false;
	int ret;

	(void)n;
	pthread_mutex_lock(&q->wlock);
	t.rows = q->outbox_n;
	ret = js_store__sq_done(q->w, q->begin);
	if (ret != DJ_EOK) {
		js_store__sq_fault(s, ret, js_store__sq_is_full(q->w));
		goto out;
	}
	for (c = head; c != NULL && ret == DJ_EOK; c = c->priv_next)
		ret = commit_one(s, c, &t);
	/* the file and its log are still the ones this commit makes durable */
	if (ret == DJ_EOK)
		ret = js_store__sq_guard_check(s);
	if (ret == DJ_EOK)
		ret = js_store__sq_done(q->w, q->commit);	/* synchronous=FULL: durable now */
	full = ret != DJ_EOK && js_store__sq_is_full(q->w);	/* before ROLLBACK resets it */
	if (ret != DJ_EOK && sqlite3_get_autocommit(q->w) == 0)
		(void)js_store__sq_done(q->w, q->rollback);
	if (ret != DJ_EOK)
		js_store__sq_guard_rescue(s);
	js_store__sq_fault(s, ret, full);
	if (ret == DJ_EOK) {
		q->outbox_n = t.rows;
		if (t.written + t.dropped + t.done > 0)
			js_store__outbox_count(s, t.written, t.dropped, t.done, t.rows);
	}
out:
	pthread_mutex_unlock(&q->wlock);
	if (ret != DJ_EOK)
		for (c = head; c != NULL; c = c->priv_next)
			c->result = ret;
	return ret;
}

/* Where an outbox fetch puts its rows. */
struct fetch {
	struct js_outbox_row *rows;
	size_t k;
};

/* fetch_row - a row callback: one outbox row, checked, into the next js_outbox_row */
static int fetch_row(sqlite3_stmt *st, void *arg)
{
	struct fetch *f = arg;
	struct js_outbox_row *r = &f->rows[f->k];
	size_t len;
	const uint8_t *body = js_store__sq_blob_col(st, 2, &len);

	if (len == 0 || len > JS_EVENT_BODY_MAX) {
		dj_warn("store: an outbox row is malformed");
		return DJ_EMALFORMED;
	}
	r->id = sqlite3_column_int64(st, 0);
	r->at = sqlite3_column_int64(st, 1);
	r->len = (uint32_t)len;
	memcpy(r->body, body, len);
	f->k++;
	return DJ_EOK;
}

/* LIMIT ?2 keeps the walk within rows[max] */
int js_store__sq_outbox_fetch(struct js_store *s, int64_t after_id, struct js_outbox_row *rows,
			      size_t max, size_t *n)
{
	struct fetch f = { rows, 0 };
	int ret = js_store__sq_read(s->be, SQ_FETCH_SQL,
				    JS_SQ_ARGS(JS_SQ_I(after_id), JS_SQ_I(max)), fetch_row, &f);

	if (ret == DJ_EOK)
		*n = f.k;
	return ret;
}

void js_store__sq_outbox_put(struct js_store *s, const uint8_t *body, size_t len)
{
	struct js_store__sq *q = s->be;
	sqlite3_stmt *st = NULL;

	if (!q->xo_pend) {
		/* the file's count: danejoind and danejoin-devices both write this outbox */
		q->xo_rows = q->outbox_n;
		if (sqlite3_prepare_v2(q->w, "SELECT count(*) FROM outbox", -1, &st, NULL) ==
			    SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
			q->xo_rows = (uint64_t)sqlite3_column_int64(st, 0);
		sqlite3_finalize(st);
		q->xo_pend = true;
	}
	if (body == NULL || len == 0 || len > JS_EVENT_BODY_MAX || q->xo_rows >= s->outbox_max) {
		q->xo_dropped++;
		return;
	}
	sqlite3_bind_int64(q->ob_put, 1, js_store_now(s));
	sqlite3_bind_blob(q->ob_put, 2, body, (int)len, SQLITE_STATIC);
	if (js_store__sq_done(q->w, q->ob_put) != DJ_EOK) {
		q->xo_dropped++;	/* logged by sq_done; the change itself goes on */
		return;
	}
	q->xo_rows++;
	q->xo_written++;
}
