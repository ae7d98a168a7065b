/*
 * js_store.c - the public js_store_* calls: argument checks, dispatch to a backend, and group
 * commit.
 *
 * PURPOSE
 *	Every call checks its arguments, then goes through struct js_store_ops to the PostgreSQL
 *	backend (props->conninfo set), the SQLite backend (props->path set) or the volatile
 *	in-memory one (neither). Nonce-state changes are queued
 *	by js_store_submit(); one committer thread takes everything queued (up to batch_max) and
 *	hands it to the backend as one transaction, so that under load many joins share one fsync.
 *
 * SECURITY
 *	DESIGN.md trust rule 4: a DevNonce is never accepted twice and a JoinNonce never issued twice,
 *	each durable before the answer leaves. The committer calls an item's done callback only after
 *	the backend reports the transaction carrying it durable (COMMIT returned under
 *	synchronous=FULL), and sets the result first: a caller can never observe DJ_EOK for a change
 *	that is not on disk. The compare-and-swap on the state version (done by the backend, inside
 *	the transaction) makes two concurrent acceptances of one DevNonce impossible: the second finds
 *	the version moved and gets DJ_ECONFLICT with nothing written.
 *
 *	Commit items are checked here (lengths within their arrays, strings terminated) before they
 *	reach a backend, so a backend never reads past a caller's buffer.
 */
#include "store/js_store_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>

#include "common/dj_err.h"
#include "common/dj_hex.h"
#include "common/dj_log.h"
#include "common/dj_thread.h"

#define HIST_PAIR_LEN 2		/* one DevNonce: a little-endian uint16 */
#define BYTE_BITS 8

/* store_free - release a store in any state of construction */
static void store_free(struct js_store *s)
{
	if (s == NULL)
		return;
	if (s->ops != NULL)
		s->ops->close(s);
	if (s->sync_init) {
		pthread_mutex_destroy(&s->qlock);
		pthread_cond_destroy(&s->qcond);
		pthread_mutex_destroy(&s->slock);
		pthread_mutex_destroy(&s->nlock);
	}
	free(s);
}

/* take_batch - detach up to batch_max queued items; call with qlock held */
static struct js_commit *take_batch(struct js_store *s, size_t *n)
{
	struct js_commit *head = s->qhead, *last = NULL, *c = head;
	size_t k = 0;

	while (c != NULL && k < s->batch_max) {
		last = c;
		c = c->priv_next;
		k++;
	}
	if (last != NULL)
		last->priv_next = NULL;
	s->qhead = c;
	if (c == NULL)
		s->qtail = NULL;
	*n = k;
	return head;
}

/* finish_batch - call every item's done callback; the item may be freed by it */
static void finish_batch(struct js_commit *c)
{
	while (c != NULL) {
		struct js_commit *next = c->priv_next;
		c->priv_next = NULL;
		if (c->done != NULL)
			c->done(c, c->done_arg);
		c = next;
	}
}

/* notify_events - call the outbox hook when an item of the applied batch wrote events */
static void notify_events(struct js_store *s, const struct js_commit *head)
{
	const struct js_commit *c;

	for (c = head; c != NULL; c = c->priv_next)
		if (c->result == DJ_EOK && c->events != NULL && c->kind != JS_COMMIT_OUTBOX_DONE)
			break;
	if (c == NULL)
		return;
	pthread_mutex_lock(&s->nlock);
	if (s->notify != NULL)
		s->notify(s->notify_arg);
	pthread_mutex_unlock(&s->nlock);
}

/* committer_main - the committer thread: drain the queue in batches until closed and empty */
static void *committer_main(void *arg)
{
	struct js_store *s = arg;

	dj_thread_name("committer");	/* /proc/PID/task/TID/comm, top -H */
	pthread_mutex_lock(&s->qlock);
	for (;;) {
		struct js_commit *head;
		size_t n;
		int ret;

		while (s->qhead == NULL && !s->closing)
			pthread_cond_wait(&s->qcond, &s->qlock);
		if (s->qhead == NULL)
			break;	/* closing, and everything submitted has been handled */
		head = take_batch(s, &n);
		pthread_mutex_unlock(&s->qlock);
		ret = s->ops->apply_batch(s, head, n);
		js_store__count(s, head, n, ret);
		notify_events(s, head);
		finish_batch(head);
		pthread_mutex_lock(&s->qlock);
	}
	pthread_mutex_unlock(&s->qlock);
	return NULL;
}

void js_session_id(const uint8_t dev_eui[LW_EUI_LEN], uint32_t join_nonce,
		   uint8_t out[JS_SESSION_ID_LEN])
{
	memcpy(out, dev_eui, LW_EUI_LEN);
	dj_be_put(join_nonce, out + LW_EUI_LEN, JS_SESSION_ID_LEN - LW_EUI_LEN);
}

int js_store_open(const struct js_store_props *props, struct js_store **out)
{
	struct js_store *s = NULL;
	int ret = DJ_EINVAL;

	if (props == NULL || out == NULL || props->kcv == NULL)
		goto out;
	if (props->outbox_max > JS_OUTBOX_MAX)
		goto out;
	if (props->devnonce_history != 0 &&
	    (props->devnonce_history < JS_DEVNONCE_HIST_MIN ||
	     props->devnonce_history > JS_DEVNONCE_HIST_MAX))
		goto out;
	ret = DJ_ENOMEM;
	s = calloc(1, sizeof(*s));
	if (s == NULL)
		goto out;
	s->hist_cap = props->devnonce_history != 0 ? props->devnonce_history
						   : JS_DEVNONCE_HIST_DEFAULT;
	s->batch_max = props->batch_max != 0 ? props->batch_max : JS_BATCH_DEFAULT;
	s->outbox_max = props->outbox_max != 0 ? props->outbox_max : JS_OUTBOX_DEFAULT;
	s->clock = props->clock;
	s->clock_arg = props->clock_arg;
	if (pthread_mutex_init(&s->qlock, NULL) != 0)
		goto out;
	if (pthread_cond_init(&s->qcond, NULL) != 0) {
		pthread_mutex_destroy(&s->qlock);
		goto out;
	}
	if (pthread_mutex_init(&s->slock, NULL) != 0) {
		pthread_cond_destroy(&s->qcond);
		pthread_mutex_destroy(&s->qlock);
		goto out;
	}
	if (pthread_mutex_init(&s->nlock, NULL) != 0) {
		pthread_mutex_destroy(&s->slock);
		pthread_cond_destroy(&s->qcond);
		pthread_mutex_destroy(&s->qlock);
		goto out;
	}
	s->sync_init = true;
	s->ops = props->conninfo != NULL ? &js_store__pg_ops
		 : props->path != NULL ? &js_store__sqlite_ops : &js_store__mem_ops;
	ret = s->ops->open(s, props);
	if (ret != DJ_EOK)
		goto out;
	if (!s->ops->inline_commit) {
		if (pthread_create(&s->committer, NULL, committer_main, s) != 0) {
			ret = DJ_ENOMEM;
			goto out;
		}
		s->thread_started = true;
	}
	*out = s;
	s = NULL;
	ret = DJ_EOK;
out:
	store_free(s);
	return ret;
}

void js_store_close(struct js_store *s)
{
	if (s == NULL)
		return;
	pthread_mutex_lock(&s->qlock);
	s->closing = true;
	pthread_cond_broadcast(&s->qcond);
	pthread_mutex_unlock(&s->qlock);
	if (s->thread_started)
		pthread_join(s->committer, NULL);	/* returns once the queue is drained */
	store_free(s);
}

unsigned js_store_devnonce_history(const struct js_store *s)
{
	return s->hist_cap;
}

int64_t js_store_now(const struct js_store *s)
{
	if (s->clock != NULL)
		return s->clock(s->clock_arg);
	return (int64_t)time(NULL);
}

/* str_ok - whether a fixed char array holds a NUL-terminated string */
static bool str_ok(const char *a, size_t cap)
{
	return memchr(a, '\0', cap) != NULL;
}

/* events_ok - every event of a list has a body within JS_EVENT_BODY_MAX */
static bool events_ok(const struct js_event *e)
{
	unsigned n = 0;

	for (; e != NULL; e = e->next)
		if (e->body == NULL || e->len == 0 || e->len > JS_EVENT_BODY_MAX ||
		    ++n > JS_COMMIT_EVENTS_MAX)
			return false;
	return true;
}

/* audit_ok - a commit's audit entries: at most JS_COMMIT_AUDIT_MAX, each a named event with
 * NUL-terminated fields (a caller's bug: logged, and the commit refused) */
static bool audit_ok(const struct js_commit *c)
{
	const struct js_commit_audit *a;

	if (c->n_audit > JS_COMMIT_AUDIT_MAX) {
		dj_err("store: a commit carries %u audit entries, at most %u: refused", c->n_audit,
		       (unsigned)JS_COMMIT_AUDIT_MAX);
		return false;
	}
	for (uint32_t i = 0; i < c->n_audit; i++) {
		a = &c->audit[i];
		if (a->event[0] == '\0' || !str_ok(a->event, sizeof(a->event)) ||
		    !str_ok(a->actor, sizeof(a->actor)) || !str_ok(a->detail, sizeof(a->detail))) {
			dj_err("store: a commit's audit entry %u is empty or not NUL-terminated: "
			       "refused", i + 1);
			return false;
		}
	}
	return true;
}

/* commit_ok - whether a commit item is within the bounds of its own arrays and of the store */
static bool commit_ok(const struct js_store *s, const struct js_commit *c)
{
	if (c->kind == JS_COMMIT_OUTBOX_DONE)
		return c->done_ids != NULL && c->n_done_ids > 0;
	if (!events_ok(c->events))
		return false;
	if (c->kind == JS_COMMIT_EVENTS)
		return c->events != NULL;
	if (c->kind != JS_COMMIT_STATE)
		return false;
	if (c->new_st.hist_len > s->hist_cap || c->new_st.sess_token_len > JS_TOKEN_MAX)
		return false;
	/* a SessionKeyID begins with its DevEUI (js_session_id()): the SQLite store keys
	 * sessions by that prefix */
	if (c->has_session &&
	    (c->session_id_len < LW_EUI_LEN || c->session_id_len > JS_SESSION_ID_MAX ||
	     memcmp(c->session_id, c->dev_eui, LW_EUI_LEN) != 0 ||
	     c->session_token_len > JS_TOKEN_MAX))
		return false;
	return audit_ok(c);
}

/*
 * In-memory backend (inline_commit): the change is applied on the calling thread and done is
 * called before js_store_submit() returns. Nothing is durable there, so nothing is lost by not
 * batching.
 */
int js_store_submit(struct js_store *s, struct js_commit *c)
{
	bool closing;
	int ret;

	if (s == NULL || c == NULL || !commit_ok(s, c))
		return DJ_EINVAL;
	c->priv_next = NULL;
	if (s->ops->inline_commit) {
		pthread_mutex_lock(&s->qlock);
		closing = s->closing;
		pthread_mutex_unlock(&s->qlock);
		if (closing)
			return DJ_ESHUTDOWN;
		ret = s->ops->apply_batch(s, c, 1);
		js_store__count(s, c, 1, ret);
		notify_events(s, c);
		finish_batch(c);
		return DJ_EOK;
	}
	pthread_mutex_lock(&s->qlock);
	if (s->closing) {
		pthread_mutex_unlock(&s->qlock);
		return DJ_ESHUTDOWN;
	}
	if (s->qtail != NULL)
		s->qtail->priv_next = c;
	else
		s->qhead = c;
	s->qtail = c;
	pthread_cond_signal(&s->qcond);
	pthread_mutex_unlock(&s->qlock);
	return DJ_EOK;
}

/* A caller of js_store_commit() waiting for its one item. */
struct commit_waiter {
	pthread_mutex_t m;
	pthread_cond_t cv;
	bool done;
};

/* commit_wake - done callback of js_store_commit(): wake the waiting caller */
static void commit_wake(struct js_commit *c, void *arg)
{
	struct commit_waiter *w = arg;

	(void)c;
	pthread_mutex_lock(&w->m);
	w->done = true;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->m);
}

int js_store_commit(struct js_store *s, struct js_commit *c)
{
	struct commit_waiter w = { .done = false };
	void (*saved_done)(struct js_commit *, void *);
	void *saved_arg;
	int ret;

	if (s == NULL || c == NULL)
		return DJ_EINVAL;
	if (s->ops->inline_commit) {
		/* applied on this thread: no waiting, no callback needed */
		saved_done = c->done;
		saved_arg = c->done_arg;
		c->done = NULL;
		ret = js_store_submit(s, c);
		c->done = saved_done;
		c->done_arg = saved_arg;
		return ret == DJ_EOK ? c->result : ret;
	}
	if (pthread_mutex_init(&w.m, NULL) != 0)
		return DJ_ENOMEM;
	if (pthread_cond_init(&w.cv, NULL) != 0) {
		pthread_mutex_destroy(&w.m);
		return DJ_ENOMEM;
	}
	saved_done = c->done;
	saved_arg = c->done_arg;
	c->done = commit_wake;
	c->done_arg = &w;
	ret = js_store_submit(s, c);
	if (ret == DJ_EOK) {
		pthread_mutex_lock(&w.m);
		while (!w.done)
			pthread_cond_wait(&w.cv, &w.m);
		pthread_mutex_unlock(&w.m);
		ret = c->result;
	}
	c->done = saved_done;
	c->done_arg = saved_arg;
	pthread_cond_destroy(&w.cv);
	pthread_mutex_destroy(&w.m);
	return ret;
}

int js_store_commit_many(struct js_store *s, struct js_commit *const c[], size_t n)
{
	struct js_commit *head = NULL, **tail = &head;
	size_t k = 0;
	bool closing;
	int ret;

	if (s == NULL || (n > 0 && c == NULL))
		return DJ_EINVAL;
	for (size_t i = 0; i < n; i++)
		if (c[i] == NULL || c[i]->done != NULL)
			return DJ_EINVAL;
	if (!s->ops->inline_commit) {
		for (size_t i = 0; i < n; i++) {
			ret = js_store_commit(s, c[i]);
			if (ret != DJ_EOK)
				c[i]->result = ret;
		}
		return DJ_EOK;
	}
	pthread_mutex_lock(&s->qlock);
	closing = s->closing;
	pthread_mutex_unlock(&s->qlock);
	if (closing)
		return DJ_ESHUTDOWN;
	for (size_t i = 0; i < n; i++) {
		c[i]->priv_next = NULL;
		if (!commit_ok(s, c[i])) {
			c[i]->result = DJ_EINVAL;
			continue;
		}
		*tail = c[i];
		tail = &c[i]->priv_next;
		k++;
	}
	if (k == 0)
		return DJ_EOK;
	ret = s->ops->apply_batch(s, head, k);
	js_store__count(s, head, k, ret);
	notify_events(s, head);
	finish_batch(head);	/* unlinks; no done to call */
	return DJ_EOK;
}

void js_store__count(struct js_store *s, const struct js_commit *head, size_t n, int batch_ret)
{
	uint64_t ok = 0, conflicts = 0;
	const struct js_commit *c;

	for (c = head; c != NULL; c = c->priv_next) {
		if (c->result == DJ_EOK)
			ok++;
		else if (c->result == DJ_ECONFLICT)
			conflicts++;
	}
	pthread_mutex_lock(&s->slock);
	s->stats.commits += ok;
	s->stats.conflicts += conflicts;
	if (batch_ret == DJ_EOK)
		s->stats.transactions++;
	if (n > s->stats.batch_max_seen)
		s->stats.batch_max_seen = n;
	pthread_mutex_unlock(&s->slock);
}

void js_store__outbox_count(struct js_store *s, uint64_t written, uint64_t dropped, uint64_t done,
			    uint64_t rows)
{
	int64_t now;
	uint64_t n = 0;

	pthread_mutex_lock(&s->slock);
	s->stats.events_written += written;
	s->stats.events_dropped += dropped;
	s->stats.events_done += done;
	s->stats.outbox_rows = rows;
	if (dropped > 0) {
		now = js_store_now(s);
		if (s->drop_logged_at == 0 || now - s->drop_logged_at >= JS_OUTBOX_LOG_SECONDS) {
			n = s->stats.events_dropped - s->drop_logged_n;
			s->drop_logged_at = now;
			s->drop_logged_n = s->stats.events_dropped;
		}
	}
	pthread_mutex_unlock(&s->slock);
	if (n > 0)
		dj_err("store: the event outbox is full (%u rows, outbox_max): %llu events dropped "
		       "(%llu in all); joins go on, but subscribers will not see these events: "
		       "check the MQTT broker", s->outbox_max, (unsigned long long)n,
		       (unsigned long long)s->drop_logged_n);
}

void js_store_instance_id(const struct js_store *s, uint8_t out[JS_INSTANCE_ID_LEN])
{
	memcpy(out, s->instance, JS_INSTANCE_ID_LEN);
}

void js_store_set_outbox_notify(struct js_store *s, void (*fn)(void *arg), void *arg)
{
	pthread_mutex_lock(&s->nlock);
	s->notify = fn;
	s->notify_arg = arg;
	pthread_mutex_unlock(&s->nlock);
}

int js_store_outbox_fetch(struct js_store *s, int64_t after_id, struct js_outbox_row *rows,
			  size_t max, size_t *n)
{
	if (s == NULL || rows == NULL || n == NULL || max == 0)
		return DJ_EINVAL;
	return s->ops->outbox_fetch(s, after_id, rows, max, n);
}

void js_store__fault(struct js_store *s, bool ok, bool disk_full)
{
	pthread_mutex_lock(&s->slock);
	if (!ok) {
		s->stats.faults++;
		if (disk_full)
			s->stats.disk_full++;
	}
	s->stats.disk_full_now = !ok && disk_full;
	pthread_mutex_unlock(&s->slock);
}

void js_store__files_replaced(struct js_store *s)
{
	pthread_mutex_lock(&s->slock);
	s->stats.files_replaced = true;
	pthread_mutex_unlock(&s->slock);
}

int js_store_check(struct js_store *s, bool full, void (*cb)(const char *line, void *arg),
		   void *arg)
{
	if (s == NULL || cb == NULL)
		return DJ_EINVAL;
	if (s->ops->check == NULL) {
		cb("ok", arg);
		return DJ_EOK;
	}
	return s->ops->check(s, full, cb, arg);
}

void js_store_stats(struct js_store *s, struct js_store_stats *out)
{
	pthread_mutex_lock(&s->slock);
	*out = s->stats;
	pthread_mutex_unlock(&s->slock);
}

void js_store__strlcpy(char *dst, const char *src, size_t cap)
{
	size_t n;

	if (cap == 0)
		return;
	if (src == NULL)
		src = "";
	n = strnlen(src, cap - 1);
	memcpy(dst, src, n);
	dst[n] = '\0';
}

void js_store__hist_encode(const uint16_t *hist, uint32_t n, uint8_t *out)
{
	for (uint32_t i = 0; i < n; i++) {
		out[HIST_PAIR_LEN * i] = (uint8_t)(hist[i] & 0xff);
		out[HIST_PAIR_LEN * i + 1] = (uint8_t)(hist[i] >> BYTE_BITS);
	}
}

void js_store__hist_decode(const uint8_t *in, uint32_t n, uint16_t *hist)
{
	for (uint32_t i = 0; i < n; i++)
		hist[i] = (uint16_t)(in[HIST_PAIR_LEN * i] |
				     (uint16_t)(in[HIST_PAIR_LEN * i + 1] << BYTE_BITS));
}

void js_store__import_detail(const struct js_device *d, char *out, size_t cap)
{
	char eui[2 * LW_EUI_LEN + 1];
	const char *v = lw_version_str(d->mac_version);

	dj_hex_format(d->join_eui, LW_EUI_LEN, eui);
	snprintf(out, cap, "mac_version=%s join_eui=%s", v != NULL ? v : "?", eui);
}

/* --- the device rules of the SQL backends (ops->dev_sql) -------------------------------- */

/* resume - continue a fresh devices row from its DevEUI's tombstone, if there is one */
static int resume(struct js_store *s, const uint8_t dev_eui[LW_EUI_LEN], const char *actor,
		  unsigned flags)
{
	const struct js_store_dev_sql *sql = s->ops->dev_sql;
	bool forget = (flags & JS_IMPORT_FORGET_NONCES) != 0;
	uint64_t n = 0;
	int ret;

	ret = sql->resume(s, dev_eui, forget, &n);
	if (ret != DJ_EOK || n == 0)
		return ret;
	ret = sql->tombstone_drop(s, dev_eui);
	if (ret == DJ_EOK)
		ret = sql->audit_put(s, dev_eui, JS_DEVICE_RESUME_EVENT, actor,
				     forget ? JS_RESUME_DETAIL_FORGOT : JS_RESUME_DETAIL_KEPT);
	return ret;
}

int js_store__dev_insert(struct js_store *s, const struct js_device *d, const char *actor,
			 unsigned flags)
{
	char detail[JS_AUDIT_DETAIL_MAX];
	int ret;

	ret = s->ops->dev_sql->row_insert(s, d);
	if (ret != DJ_EOK)
		return ret;
	js_store__import_detail(d, detail, sizeof(detail));
	ret = s->ops->dev_sql->audit_put(s, d->dev_eui, JS_DEVICE_IMPORT_EVENT, actor, detail);
	return ret != DJ_EOK ? ret : resume(s, d->dev_eui, actor, flags);
}

/* An import: where device i comes from, the struct it is read into, the actor. */
struct import {
	int (*get)(size_t i, struct js_device *d, void *arg);
	void *arg;
	const char *actor;
	unsigned flags;
	struct js_device d;
};

/* import_one - a batch item: read device i, check it, insert it */
static int import_one(struct js_store *s, size_t i, void *arg)
{
	struct import *im = arg;
	int ret = im->get(i, &im->d, im->arg);

	if (ret == DJ_EOK && im->d.root_token_len > JS_TOKEN_MAX)
		ret = DJ_EINVAL;
	return ret != DJ_EOK ? ret : js_store__dev_insert(s, &im->d, im->actor, im->flags);
}

int js_store__dev_import(struct js_store *s, size_t n,
			 int (*get)(size_t i, struct js_device *d, void *arg), void *arg,
			 const char *actor, unsigned flags, size_t *failed)
{
	struct import *im = calloc(1, sizeof(*im));
	size_t bad = 0;
	int ret;

	if (im == NULL)
		return DJ_ENOMEM;
	im->get = get;
	im->arg = arg;
	im->actor = actor;
	im->flags = flags;
	ret = s->ops->dev_sql->batch(s, n, import_one, im, &bad);
	OPENSSL_cleanse(im, sizeof(*im));
	free(im);
	if (ret != DJ_EOK && failed != NULL)
		*failed = bad;
	return ret;
}

/* devs_get - js_store_devices_import() over an array */
static int devs_get(size_t i, struct js_device *d, void *arg)
{
	memcpy(d, &((const struct js_device *)arg)[i], sizeof(*d));
	return DJ_EOK;
}

int js_store__dev_add(struct js_store *s, const struct js_device *devs, size_t n,
		      const char *actor, unsigned flags, size_t *failed)
{
	return js_store__dev_import(s, n, devs_get, (void *)devs, actor, flags, failed);
}

int js_store__dev_delete(struct js_store *s, const uint8_t dev_eui[LW_EUI_LEN],
			 const char *actor)
{
	const struct js_store_dev_sql *sql = s->ops->dev_sql;
	uint64_t n = 0;
	int ret = sql->wbegin(s);

	if (ret != DJ_EOK)
		return ret;
	ret = sql->tombstone_put(s, dev_eui);
	if (ret == DJ_EOK)
		ret = sql->row_delete(s, dev_eui, &n);
	if (ret == DJ_EOK)
		ret = n == 0 ? DJ_ENOENT : sql->audit_put(s, dev_eui, JS_DEVICE_DELETE_EVENT, actor,
							  "");
	return sql->wend(s, ret);
}

/* --- dispatch ---------------------------------------------------------------------------- */

int js_store_device_get(struct js_store *s, const uint8_t dev_eui[LW_EUI_LEN],
			struct js_device *out)
{
	if (s == NULL || dev_eui == NULL || out == NULL)
		return DJ_EINVAL;
	return s->ops->device_get(s, dev_eui, out);
}

int js_store_device_get_many(struct js_store *s, size_t n, const uint8_t *const dev_eui[],
			     struct js_device *const out[], int rets[])
{
	if (s == NULL || (n > 0 && (dev_eui == NULL || out == NULL || rets == NULL)))
		return DJ_EINVAL;
	for (size_t i = 0; i < n; i++)
		if (dev_eui[i] == NULL || out[i] == NULL)
			return DJ_EINVAL;
	if (n > 1 && s->ops->device_get_many != NULL)
		return s->ops->device_get_many(s, n, dev_eui, out, rets);
	for (size_t i = 0; i < n; i++)
		rets[i] = s->ops->device_get(s, dev_eui[i], out[i]);
	return DJ_EOK;
}

int js_store_devices_add(struct js_store *s, const struct js_device *devs, size_t n,
			 const char *actor, size_t *failed)
{
	if (s == NULL || (devs == NULL && n > 0))
		return DJ_EINVAL;
	for (size_t i = 0; i < n; i++)
		if (devs[i].root_token_len > JS_TOKEN_MAX)
			return DJ_EINVAL;
	if (n == 0)
		return DJ_EOK;
	return s->ops->devices_add(s, devs, n, actor, 0, failed);
}

int js_store_devices_import(struct js_store *s, size_t n,
			    int (*get)(size_t i, struct js_device *d, void *arg), void *arg,
			    const char *actor, size_t *failed)
{
	return js_store_devices_import_flags(s, n, get, arg, actor, 0, failed);
}

int js_store_devices_import_flags(struct js_store *s, size_t n,
				  int (*get)(size_t i, struct js_device *d, void *arg), void *arg,
				  const char *actor, unsigned flags, size_t *failed)
{
	struct js_device *devs;
	size_t i;
	int ret = DJ_EOK;

	if (s == NULL || get == NULL)
		return DJ_EINVAL;
	if (n == 0)
		return DJ_EOK;
	if (s->ops->devices_import != NULL)
		return s->ops->devices_import(s, n, get, arg, actor, flags, failed);
	devs = calloc(n, sizeof(*devs));
	if (devs == NULL)
		return DJ_ENOMEM;
	for (i = 0; ret == DJ_EOK && i < n; i++) {
		ret = get(i, &devs[i], arg);
		if (ret == DJ_EOK && devs[i].root_token_len > JS_TOKEN_MAX)
			ret = DJ_EINVAL;
	}
	if (ret != DJ_EOK) {
		if (failed != NULL)
			*failed = i - 1;
	} else {
		ret = s->ops->devices_add(s, devs, n, actor, flags, failed);
	}
	OPENSSL_cleanse(devs, n * sizeof(*devs));
	free(devs);
	return ret;
}

int js_store_device_delete(struct js_store *s, const uint8_t dev_eui[LW_EUI_LEN],
			   const char *actor)
{
	if (s == NULL || dev_eui == NULL)
		return DJ_EINVAL;
	return s->ops->device_delete(s, dev_eui, actor);
}

int js_store_device_foreach(struct js_store *s, int (*cb)(const struct js_device *d, void *arg),
			    void *arg)
{
	if (s == NULL || cb == NULL)
		return DJ_EINVAL;
	return s->ops->device_foreach(s, cb, arg);
}

int js_store_bump_join_nonces(struct js_store *s, uint32_t margin, const char *actor,
			      uint64_t *count)
{
	if (s == NULL || margin == 0 || margin > LW_JOINNONCE_MAX)
		return DJ_EINVAL;
	return s->ops->bump_join_nonces(s, margin, actor, count);
}

int js_store_reset_nonces(struct js_store *s, const uint8_t *dev_eui, const char *actor,
			  uint64_t *count)
{
	if (s == NULL)
		return DJ_EINVAL;
	return s->ops->reset_nonces(s, dev_eui, actor, count);
}

int js_store_sessions_expire(struct js_store *s, uint64_t *count)
{
	uint64_t n = 0;
	int ret = s->ops->sessions_expire(s, js_store_now(s), &n);

	if (ret == DJ_EOK)
		*count = n;
	return ret;
}

int js_store_session_get(struct js_store *s, const uint8_t *session_id, size_t len,
			 struct js_session *out)
{
	if (s == NULL || session_id == NULL || out == NULL || len == 0 ||
	    len > JS_SESSION_ID_MAX)
		return DJ_EINVAL;
	if (len < LW_EUI_LEN)
		return DJ_ENOENT;	/* every stored SessionKeyID begins with a DevEUI */
	return s->ops->session_get(s, session_id, len, out);
}

int js_store_audit(struct js_store *s, const uint8_t *dev_eui, const char *event,
		   const char *actor, const char *detail)
{
	if (s == NULL || event == NULL || event[0] == '\0')
		return DJ_EINVAL;
	return s->ops->audit(s, dev_eui, event, actor, detail);
}

int js_store_audit_foreach(struct js_store *s, const uint8_t *dev_eui,
			   int (*cb)(const struct js_audit_entry *e, void *arg), void *arg)
{
	if (s == NULL || cb == NULL)
		return DJ_EINVAL;
	return s->ops->audit_foreach(s, dev_eui, cb, arg);
}

int js_store_rewrap(struct js_store *s, struct js_keystore *old_ks, struct js_keystore *new_ks,
		    const char *actor, uint64_t *count)
{
	if (s == NULL || old_ks == NULL || new_ks == NULL)
		return DJ_EINVAL;
	return s->ops->rewrap(s, old_ks, new_ks, actor, count);
}
