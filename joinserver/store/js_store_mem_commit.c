/*
 * js_store_mem_commit.c - the in-memory backend's commit items and outbox: the
 * compare-and-swap of a device's nonce state with its session, audit entry and events, and
 * the outbox rows in id order (binary-searched, compacted as the oldest are delivered).
 *
 * Applying a commit allocates first and changes the state only when everything it needs is
 * there, so a refused allocation fails the item with nothing changed.
 */
#include "store/js_store_mem_internal.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "common/dj_err.h"

#define MEM_OUTBOX_MIN 64

/* apply_one - compare-and-swap one commit item; call with the lock held */
static int apply_one(struct js_store *s, struct js_commit *c)
{
	struct js_store__mem *m = s->be;
	struct js_store__mem_dev *d = m->dev[js_store__mem_dev_find(m, c->dev_eui)];
	const struct js_nonce_state *ns = &c->new_st;
	struct js_session *se = NULL;
	size_t slot = 0;
	int ret;

	if (d == NULL)
		return DJ_ENOENT;
	if (d->h.version != c->expect_version)
		return DJ_ECONFLICT;
	/* Make room first, so that a refused allocation leaves the state unchanged. */
	ret = js_store__mem_audit_reserve(m, 1);
	if (ret != DJ_EOK)
		return ret;
	if (c->has_session) {
		ret = js_store__mem_sess_grow(m);
		if (ret != DJ_EOK)
			return ret;
		uint64_t h = js_store__mem_hash(c->session_id, c->session_id_len);

		slot = js_store__mem_sess_find(m, c->session_id, c->session_id_len, h);
		se = m->sess[slot].p;
		if (se == NULL) {
			se = calloc(1, sizeof(*se));
			if (se == NULL)
				return DJ_ENOMEM;
			m->sess[slot].p = se;
			m->sess[slot].h = h;
			m->sess_used++;
		}
	}
	for (uint32_t i = 0; i < c->n_audit; i++)
		(void)js_store__mem_audit_add(s, c->dev_eui, c->audit[i].event, c->audit[i].actor,
					      c->audit[i].detail);
	if (se != NULL) {
		memcpy(se->session_id, c->session_id, c->session_id_len);
		se->session_id_len = c->session_id_len;
		memcpy(se->dev_eui, c->dev_eui, LW_EUI_LEN);
		se->created_at = js_store_now(s);
		se->expires_at = c->session_expires_at;
		se->session_token_len = c->session_token_len;
		memcpy(se->session_token, c->session_token, c->session_token_len);
	}
	d->h.version++;
	d->h.dev_nonce_last = ns->dev_nonce_last;
	d->h.join_nonce_last = ns->join_nonce_last;
	d->h.rjcount1_last = ns->rjcount1_last;
	d->h.hist_len = ns->hist_len;	/* <= hist_cap: checked by js_store_submit() */
	memcpy(d->hist, ns->hist, ns->hist_len * sizeof(uint16_t));
	d->h.sess_token_len = ns->sess_token_len;
	memcpy(d->h.sess_token, ns->sess_token, ns->sess_token_len);
	return DJ_EOK;
}

/* ob_reserve - room for k more outbox rows at the end (compacting deleted ones first) */
static int ob_reserve(struct js_store__mem *m, size_t k)
{
	size_t j = 0;

	if (m->ob_cap - m->ob_n >= k)
		return DJ_EOK;
	for (size_t i = m->ob_head; i < m->ob_n; i++) {
		if (m->ob[i]->len != 0)
			m->ob[j++] = m->ob[i];
		else
			free(m->ob[i]);
	}
	m->ob_head = 0;
	m->ob_n = j;
	return js_store__mem_grow(&m->ob, &m->ob_cap, m->ob_n, k, sizeof(*m->ob), MEM_OUTBOX_MIN);
}

/* A commit's outbox rows, allocated before anything changes. */
struct ob_new {
	size_t n;
	struct js_outbox_row *rows[JS_COMMIT_EVENTS_MAX];
};

/* ob_new_free - free rows that were not linked in */
static void ob_new_free(struct ob_new *nw)
{
	while (nw->n > 0)
		free(nw->rows[--nw->n]);
}

/* events_alloc - room for the events of \p c that fit in the outbox; call with the lock held.
 * Sets c->events_dropped. Nothing changes on failure. */
static int events_alloc(struct js_store *s, struct js_commit *c, struct ob_new *nw)
{
	struct js_store__mem *m = s->be;
	size_t want = 0;
	int ret;

	nw->n = 0;
	c->events_dropped = 0;
	for (const struct js_event *e = c->events; e != NULL; e = e->next) {
		if (m->ob_live + want >= s->outbox_max)
			c->events_dropped++;
		else
			want++;
	}
	ret = ob_reserve(m, want);
	if (ret == DJ_EOK)
		ret = js_store__mem_audit_reserve(m, want);
	while (ret == DJ_EOK && nw->n < want) {
		nw->rows[nw->n] = malloc(sizeof(*nw->rows[nw->n]));
		if (nw->rows[nw->n] == NULL)
			ret = DJ_ENOMEM;
		else
			nw->n++;
	}
	if (ret != DJ_EOK) {
		ob_new_free(nw);
		c->events_dropped = 0;
	}
	return ret;
}

/* ob_link - fill row \p r with the next id and append it (room made by ob_reserve) */
static void ob_link(struct js_store *s, struct js_outbox_row *r, const uint8_t *body,
		    size_t len)
{
	struct js_store__mem *m = s->be;

	r->id = m->ob_next_id++;
	r->at = js_store_now(s);
	r->len = (uint32_t)len;
	memcpy(r->body, body, len);
	m->ob[m->ob_n++] = r;
	m->ob_live++;
}

/* events_link - fill and append the rows events_alloc() made room for; call with the lock held */
static void events_link(struct js_store *s, const struct js_commit *c, struct ob_new *nw)
{
	size_t k = 0;

	for (const struct js_event *e = c->events; e != NULL && k < nw->n; e = e->next) {
		ob_link(s, nw->rows[k++], e->body, e->len);
		if (e->audit_event != NULL)
			(void)js_store__mem_audit_add(s, c->dev_eui, e->audit_event, e->audit_actor,
						      e->audit_detail);
	}
	nw->n = 0;
}

/* ob_find - the index of row \p id, or SIZE_MAX (binary search: ids increase; a delivered
 * row stays in its slot with len 0 until the head passes it) */
static size_t ob_find(const struct js_store__mem *m, int64_t id)
{
	size_t lo = m->ob_head, hi = m->ob_n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (m->ob[mid]->id < id)
			lo = mid + 1;
		else if (m->ob[mid]->id > id)
			hi = mid;
		else
			return m->ob[mid]->len != 0 ? mid : SIZE_MAX;
	}
	return SIZE_MAX;
}

/* ob_first_after - the index of the first row with id > \p id (binary search: ids increase) */
static size_t ob_first_after(const struct js_store__mem *m, int64_t id)
{
	size_t i = m->ob_head, hi = m->ob_n;

	while (i < hi) {
		size_t mid = i + (hi - i) / 2;

		if (m->ob[mid]->id <= id)
			i = mid + 1;
		else
			hi = mid;
	}
	return i;
}

/* outbox_done - delete delivered rows; call with the lock held */
static void outbox_done(struct js_store__mem *m, const struct js_commit *c, uint64_t *done)
{
	for (uint32_t k = 0; k < c->n_done_ids; k++) {
		size_t i = ob_find(m, c->done_ids[k]);

		if (i == SIZE_MAX)
			continue;
		OPENSSL_cleanse(m->ob[i]->body, m->ob[i]->len);
		m->ob[i]->len = 0;
		m->ob_live--;
		(*done)++;
	}
	while (m->ob_head < m->ob_n && m->ob[m->ob_head]->len == 0)
		free(m->ob[m->ob_head++]);
}

int js_store__mem_apply_batch(struct js_store *s, struct js_commit *head, size_t n)
{
	struct js_store__mem *m = s->be;
	uint64_t written = 0, dropped = 0, done = 0, rows;

	pthread_mutex_lock(&m->lock);
	if (n > 1) {
		/* The rows of a batch are scattered over tables much larger than the caches:
		 * start fetching all of them before changing the first (two passes, for the
		 * slot and then for the device it points to). */
		for (struct js_commit *c = head; c != NULL; c = c->priv_next) {
			__builtin_prefetch(&m->dev[js_store__mem_hash(c->dev_eui, LW_EUI_LEN) &
						   (m->dev_slots - 1)]);
			if (c->has_session)
				__builtin_prefetch(&m->sess[js_store__mem_hash(c->session_id,
								       c->session_id_len) &
							    (m->sess_slots - 1)], 1);
		}
		for (struct js_commit *c = head; c != NULL; c = c->priv_next)
			__builtin_prefetch(m->dev[js_store__mem_hash(c->dev_eui, LW_EUI_LEN) &
						  (m->dev_slots - 1)], 1);
	}
	for (struct js_commit *c = head; c != NULL; c = c->priv_next) {
		struct ob_new nw;

		if (c->kind == JS_COMMIT_OUTBOX_DONE) {
			outbox_done(m, c, &done);
			c->result = DJ_EOK;
			continue;
		}
		c->result = events_alloc(s, c, &nw);
		if (c->result == DJ_EOK && c->kind == JS_COMMIT_STATE)
			c->result = apply_one(s, c);
		if (c->result != DJ_EOK) {
			ob_new_free(&nw);
			c->events_dropped = 0;
			continue;
		}
		written += nw.n;
		dropped += c->events_dropped;
		events_link(s, c, &nw);
	}
	rows = m->ob_live;
	pthread_mutex_unlock(&m->lock);
	if (written + dropped + done > 0)
		js_store__outbox_count(s, written, dropped, done, rows);
	return DJ_EOK;
}

int js_store__mem_outbox_fetch(struct js_store *s, int64_t after_id, struct js_outbox_row *rows,
			       size_t max, size_t *n)
{
	struct js_store__mem *m = s->be;
	size_t k = 0;

	pthread_mutex_lock(&m->lock);
	for (size_t i = ob_first_after(m, after_id); i < m->ob_n && k < max; i++)
		if (m->ob[i]->len != 0)
			rows[k++] = *m->ob[i];
	pthread_mutex_unlock(&m->lock);
	*n = k;
	return DJ_EOK;
}

bool js_store__mem_outbox_put(struct js_store *s, const uint8_t *body, size_t len)
{
	struct js_store__mem *m = s->be;
	struct js_outbox_row *r;

	if (body == NULL || len == 0 || len > JS_EVENT_BODY_MAX || m->ob_live >= s->outbox_max ||
	    ob_reserve(m, 1) != DJ_EOK)
		return false;
	r = malloc(sizeof(*r));
	if (r == NULL)
		return false;
	ob_link(s, r, body, len);
	return true;
}

void js_store__mem_outbox_free(struct js_store__mem *m)
{
	for (size_t i = m->ob_head; i < m->ob_n; i++)
		OPENSSL_clear_free(m->ob[i], sizeof(*m->ob[i]));
	free(m->ob);	/* slots below ob_head were freed as the head passed them */
}
