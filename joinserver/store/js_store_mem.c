/*
 * js_store_mem.c - the volatile in-memory backend of js_store (props->path == NULL).
 *
 * PURPOSE
 *	The same semantics as the SQLite backend (compare-and-swap on the state version, conflicts,
 *	sessions, audit, reset, rewrap), with nothing durable: for benchmarks and tests. Devices live
 *	in an open-addressing hash table keyed on DevEUI, sessions in another keyed on SessionKeyID,
 *	the audit log in a growable array; one mutex guards everything.
 *
 *	Group commit: this backend sets inline_commit, so js_store_submit() applies the change on the
 *	calling thread and calls done before it returns (there is no fsync to share).
 *	js_store_commit() works the same way. Applying a commit allocates nothing, except when a new
 *	session or audit entry makes a table grow (amortised doubling).
 *
 * SECURITY
 *	It holds only wrapped tokens, like the SQLite backend. Nothing survives the process, so
 *	DESIGN.md trust rule 4 (nonces durable before the answer) does NOT hold with this backend:
 *	never use it for a production join server.
 */
#include "store/js_store_mem_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "common/dj_err.h"
#include "common/dj_log.h"

#define MEM_TABLE_MIN 64		/* initial slots of each hash table (a power of two) */
#define MEM_LOAD_NUM 1			/* grow when used * MEM_LOAD_DEN > slots * MEM_LOAD_NUM */
#define MEM_LOAD_DEN 2
#define MEM_AUDIT_MIN 64
#define FNV_OFFSET 0xcbf29ce484222325ULL	/* FNV-1a 64, a fast non-cryptographic hash */
#define FNV_PRIME 0x100000001b3ULL

uint64_t js_store__mem_hash(const uint8_t *p, size_t len)
{
	uint64_t h = FNV_OFFSET;

	for (size_t i = 0; i < len; i++)
		h = (h ^ p[i]) * FNV_PRIME;
	return h;
}

size_t js_store__mem_dev_find(const struct js_store__mem *m, const uint8_t dev_eui[LW_EUI_LEN])
{
	size_t mask = m->dev_slots - 1;
	size_t i = js_store__mem_hash(dev_eui, LW_EUI_LEN) & mask;

	while (m->dev[i] != NULL && memcmp(m->dev[i]->h.dev_eui, dev_eui, LW_EUI_LEN) != 0)
		i = (i + 1) & mask;
	return i;
}

size_t js_store__mem_sess_find(const struct js_store__mem *m, const uint8_t *id, size_t len,
			       uint64_t h)
{
	size_t mask = m->sess_slots - 1;
	size_t i = h & mask;

	while (m->sess[i].p != NULL &&
	       (m->sess[i].h != h || m->sess[i].p->session_id_len != len ||
		memcmp(m->sess[i].p->session_id, id, len) != 0))
		i = (i + 1) & mask;
	return i;
}

/* dev_grow - double the device table when the next insert would pass the load factor */
static int dev_grow(struct js_store__mem *m, size_t extra)
{
	struct js_store__mem_dev **old = m->dev;
	size_t old_slots = m->dev_slots, slots = old_slots;

	while ((m->dev_used + extra) * MEM_LOAD_DEN > slots * MEM_LOAD_NUM)
		slots *= 2;
	if (slots == old_slots)
		return DJ_EOK;
	m->dev = calloc(slots, sizeof(*m->dev));
	if (m->dev == NULL) {
		m->dev = old;
		return DJ_ENOMEM;
	}
	m->dev_slots = slots;
	for (size_t i = 0; i < old_slots; i++)
		if (old[i] != NULL)
			m->dev[js_store__mem_dev_find(m, old[i]->h.dev_eui)] = old[i];
	free(old);
	return DJ_EOK;
}

int js_store__mem_sess_grow(struct js_store__mem *m)
{
	struct js_store__mem_sslot *old = m->sess;
	size_t old_slots = m->sess_slots, mask;

	if ((m->sess_used + 1) * MEM_LOAD_DEN <= old_slots * MEM_LOAD_NUM)
		return DJ_EOK;
	m->sess = calloc(old_slots * 2, sizeof(*m->sess));
	if (m->sess == NULL) {
		m->sess = old;
		return DJ_ENOMEM;
	}
	m->sess_slots = old_slots * 2;
	mask = m->sess_slots - 1;
	/* ids are distinct: each goes to the first empty slot from its home */
	for (size_t i = 0; i < old_slots; i++) {
		size_t k;

		if (old[i].p == NULL)
			continue;
		for (k = old[i].h & mask; m->sess[k].p != NULL; k = (k + 1) & mask)
			;
		m->sess[k] = old[i];
	}
	free(old);
	return DJ_EOK;
}

/* dev_unlink_slot - take the record out of slot i (its registry rows freed) with
 * backward-shift, so probes stay unbroken; the caller owns the record */
static struct js_store__mem_dev *dev_unlink_slot(struct js_store__mem *m, size_t i)
{
	size_t mask = m->dev_slots - 1, j = i;
	struct js_store__mem_dev *gone = m->dev[i];

	js_store__mem_reg_free(m, gone->h.reg);
	gone->h.reg = NULL;
	m->dev[i] = NULL;
	m->dev_used--;
	for (;;) {
		size_t k;

		j = (j + 1) & mask;
		if (m->dev[j] == NULL)
			break;
		k = js_store__mem_hash(m->dev[j]->h.dev_eui, LW_EUI_LEN) & mask;
		/* move j back to i when its home k does not lie cyclically in (i, j] */
		if ((i <= j) ? (k <= i || k > j) : (k <= i && k > j)) {
			m->dev[i] = m->dev[j];
			m->dev[j] = NULL;
			i = j;
		}
	}
	return gone;
}

/* dev_remove_slot - delete slot i */
static void dev_remove_slot(struct js_store__mem *m, size_t i)
{
	free(dev_unlink_slot(m, i));
}

/* tomb_find - the index of the tombstone of \p dev_eui, or m->tomb_n */
static size_t tomb_find(const struct js_store__mem *m, const uint8_t dev_eui[LW_EUI_LEN])
{
	size_t i = 0;

	while (i < m->tomb_n && memcmp(m->tomb[i]->h.dev_eui, dev_eui, LW_EUI_LEN) != 0)
		i++;
	return i;
}

/* tomb_drop - free tombstone i (the last one takes its place) */
static void tomb_drop(struct js_store__mem *m, size_t i)
{
	free(m->tomb[i]);
	m->tomb[i] = m->tomb[--m->tomb_n];
}

/* tomb_resume - continue the fresh record \p r from tombstone \p t (see SQ_DEV_RESUME) */
static void tomb_resume(const struct js_store__mem_dev *t, struct js_store__mem_dev *r,
			unsigned flags)
{
	r->h.version = t->h.version + 1;
	r->h.join_nonce_last = t->h.join_nonce_last;
	if ((flags & JS_IMPORT_FORGET_NONCES) != 0)
		return;
	r->h.dev_nonce_last = t->h.dev_nonce_last;
	r->h.rjcount1_last = t->h.rjcount1_last;
	r->h.hist_len = t->h.hist_len;
	memcpy(r->hist, t->hist, t->h.hist_len * sizeof(uint16_t));
}

/* sess_remove_slot - delete slot i of the session table with backward-shift */
static void sess_remove_slot(struct js_store__mem *m, size_t i)
{
	size_t mask = m->sess_slots - 1, j = i;

	free(m->sess[i].p);
	m->sess[i].p = NULL;
	m->sess_used--;
	for (;;) {
		size_t k;

		j = (j + 1) & mask;
		if (m->sess[j].p == NULL)
			break;
		k = m->sess[j].h & mask;
		if ((i <= j) ? (k <= i || k > j) : (k <= i && k > j)) {
			m->sess[i].p = m->sess[j].p;
			m->sess[i].h = m->sess[j].h;
			m->sess[j].p = NULL;
			i = j;
		}
	}
}

int js_store__mem_grow(void *arrp, size_t *cap, size_t used, size_t k, size_t elem, size_t min)
{
	size_t c = *cap;
	void *a;

	if (c - used >= k)
		return DJ_EOK;
	while (c - used < k)
		c = c != 0 ? c * 2 : min;
	memcpy(&a, arrp, sizeof(a));	/* arrp points to a pointer of some object type */
	a = realloc(a, c * elem);
	if (a == NULL)
		return DJ_ENOMEM;
	memcpy(arrp, &a, sizeof(a));
	*cap = c;
	return DJ_EOK;
}

int js_store__mem_audit_reserve(struct js_store__mem *m, size_t k)
{
	return js_store__mem_grow(&m->audit, &m->audit_cap, m->audit_n, k, sizeof(*m->audit),
				  MEM_AUDIT_MIN);
}

int js_store__mem_audit_add(struct js_store *s, const uint8_t *dev_eui, const char *event,
			    const char *actor, const char *detail)
{
	struct js_store__mem *m = s->be;
	struct js_store__mem_audit *e;
	size_t ne, na, nd, need;
	char *t;
	int ret = js_store__mem_audit_reserve(m, 1);

	if (ret != DJ_EOK)
		return ret;
	event = event != NULL ? event : "";
	actor = actor != NULL ? actor : "";
	detail = detail != NULL ? detail : "";
	ne = strnlen(event, JS_AUDIT_EVENT_MAX - 1);
	na = strnlen(actor, JS_AUDIT_ACTOR_MAX - 1);
	nd = strnlen(detail, JS_AUDIT_DETAIL_MAX - 1);
	need = ne + na + nd + 3;
	if (m->text == NULL || JS_MEM_TEXT_BLOCK - m->text->used < need) {
		struct js_store__mem_text *b = malloc(sizeof(*b));

		if (b == NULL)
			return DJ_ENOMEM;
		b->prev = m->text;
		b->used = 0;
		m->text = b;
	}
	t = m->text->buf + m->text->used;
	m->text->used += need;
	e = &m->audit[m->audit_n];
	e->text = t;
	memcpy(t, event, ne);
	t[ne] = '\0';
	t += ne + 1;
	memcpy(t, actor, na);
	t[na] = '\0';
	t += na + 1;
	memcpy(t, detail, nd);
	t[nd] = '\0';
	e->at = js_store_now(s);
	e->has_dev_eui = dev_eui != NULL;
	if (dev_eui != NULL)
		memcpy(e->dev_eui, dev_eui, LW_EUI_LEN);
	m->audit_n++;
	return DJ_EOK;
}

/* mem_close - free everything (half-built is fine) */
static void mem_close(struct js_store *s)
{
	struct js_store__mem *m = s->be;

	if (m == NULL)
		return;
	for (size_t i = 0; i < m->dev_slots; i++) {
		if (m->dev[i] != NULL)
			js_store__mem_reg_free(m, m->dev[i]->h.reg);
		free(m->dev[i]);
	}
	free(m->xf);
	free(m->keys);
	for (size_t i = 0; i < m->sess_slots; i++)
		free(m->sess[i].p);
	free(m->dev);
	free(m->sess);
	free(m->audit);
	while (m->text != NULL) {
		struct js_store__mem_text *prev = m->text->prev;

		free(m->text);
		m->text = prev;
	}
	js_store__mem_outbox_free(m);
	while (m->tomb_n > 0)
		tomb_drop(m, m->tomb_n - 1);
	free(m->tomb);
	if (m->lock_init)
		pthread_mutex_destroy(&m->lock);
	free(m);
	s->be = NULL;
}

/* mem_open - empty tables; record the KCV (there is nothing to compare it with) */
static int mem_open(struct js_store *s, const struct js_store_props *props)
{
	struct js_store__mem *m = calloc(1, sizeof(*m));
	int ret = DJ_ENOMEM;

	if (m == NULL)
		goto out;
	s->be = m;
	memcpy(m->kcv, props->kcv, JS_KCV_LEN);
	if (pthread_mutex_init(&m->lock, NULL) != 0)
		goto out;
	m->lock_init = true;
	m->dev = calloc(MEM_TABLE_MIN, sizeof(*m->dev));
	m->sess = calloc(MEM_TABLE_MIN, sizeof(*m->sess));
	if (m->dev == NULL || m->sess == NULL)
		goto out;
	m->dev_slots = MEM_TABLE_MIN;
	m->sess_slots = MEM_TABLE_MIN;
	m->ob_next_id = 1;
	ret = RAND_bytes(s->instance, JS_INSTANCE_ID_LEN) == 1 ? DJ_EOK : DJ_ECRYPTO;
out:
	return ret;	/* on failure js_store.c calls mem_close() */
}

/* dev_copy_out - fill a js_device from a record (hist_len entries only) */
static void dev_copy_out(const struct js_store__mem_dev *d, struct js_device *out)
{
	memcpy(out->dev_eui, d->h.dev_eui, LW_EUI_LEN);
	memcpy(out->join_eui, d->h.join_eui, LW_EUI_LEN);
	out->mac_version = d->h.mac_version;
	out->root_token_len = d->h.root_token_len;
	memcpy(out->root_token, d->h.root_token, d->h.root_token_len);
	out->created_at = d->h.created_at;
	out->st.version = d->h.version;
	out->st.dev_nonce_last = d->h.dev_nonce_last;
	out->st.join_nonce_last = d->h.join_nonce_last;
	out->st.rjcount1_last = d->h.rjcount1_last;
	out->st.hist_len = d->h.hist_len;
	memcpy(out->st.hist, d->hist, d->h.hist_len * sizeof(uint16_t));
	out->st.sess_token_len = d->h.sess_token_len;
	memcpy(out->st.sess_token, d->h.sess_token, d->h.sess_token_len);
	out->row = 0;
}

/* mem_device_get - copy one device out */
static int mem_device_get(struct js_store *s, const uint8_t dev_eui[LW_EUI_LEN],
			  struct js_device *out)
{
	struct js_store__mem *m = s->be;
	struct js_store__mem_dev *d;
	int ret = DJ_ENOENT;

	pthread_mutex_lock(&m->lock);
	d = m->dev[js_store__mem_dev_find(m, dev_eui)];
	if (d != NULL) {
		dev_copy_out(d, out);
		ret = DJ_EOK;
	}
	pthread_mutex_unlock(&m->lock);
	return ret;
}

/* all or nothing: a DevEUI already present undoes the batch */
int js_store__mem_devices_add(struct js_store *s, const struct js_device *devs, size_t n,
			      const char *actor, unsigned flags, size_t *failed,
			      struct js_store__mem_reg **regs)
{
	struct js_store__mem *m = s->be;
	struct js_store__mem_dev **recs = NULL;
	char detail[JS_AUDIT_DETAIL_MAX];
	size_t bad = 0, t;
	int ret = DJ_ENOMEM;

	recs = calloc(n, sizeof(*recs));
	if (recs == NULL)
		return DJ_ENOMEM;
	for (size_t i = 0; i < n; i++) {
		recs[i] = calloc(1, sizeof(**recs) + s->hist_cap * sizeof(uint16_t));
		if (recs[i] == NULL)
			goto out_free;
	}
	pthread_mutex_lock(&m->lock);
	/* Room first (table and audit), so that nothing below can fail for want of memory. */
	ret = dev_grow(m, n);
	if (ret == DJ_EOK)
		ret = js_store__mem_audit_reserve(m, 2 * n);	/* import and resume */
	if (ret != DJ_EOK)
		goto out;
	/* Insert one by one; a DevEUI already present (in the table or earlier in this batch)
	 * undoes the batch's inserts. One hash probe per device: large imports stay linear. */
	for (size_t i = 0; i < n; i++) {
		const struct js_device *d = &devs[i];
		struct js_store__mem_dev *r = recs[i];
		size_t slot = js_store__mem_dev_find(m, d->dev_eui);

		if (m->dev[slot] != NULL) {
			for (size_t k = 0; k < i; k++) {
				dev_remove_slot(m, js_store__mem_dev_find(m, devs[k].dev_eui));
				recs[k] = NULL;	/* freed by dev_remove_slot */
			}
			bad = i;
			ret = DJ_EEXIST;
			goto out;
		}
		memcpy(r->h.dev_eui, d->dev_eui, LW_EUI_LEN);
		memcpy(r->h.join_eui, d->join_eui, LW_EUI_LEN);
		r->h.mac_version = d->mac_version;
		r->h.root_token_len = d->root_token_len;
		memcpy(r->h.root_token, d->root_token, d->root_token_len);
		r->h.created_at = d->created_at != 0 ? d->created_at : js_store_now(s);
		r->h.version = 0;
		r->h.dev_nonce_last = -1;
		r->h.join_nonce_last = -1;
		r->h.rjcount1_last = -1;
		t = tomb_find(m, d->dev_eui);
		if (t < m->tomb_n)
			tomb_resume(m->tomb[t], r, flags);
		m->dev[slot] = r;
		m->dev_used++;
	}
	for (size_t i = 0; i < n; i++) {
		if (regs != NULL)
			recs[i]->h.reg = regs[i];
		recs[i] = NULL;	/* owned by the table now */
		js_store__import_detail(&devs[i], detail, sizeof(detail));
		(void)js_store__mem_audit_add(s, devs[i].dev_eui, JS_DEVICE_IMPORT_EVENT, actor,
					      detail);
		t = tomb_find(m, devs[i].dev_eui);
		if (t == m->tomb_n)
			continue;
		tomb_drop(m, t);
		(void)js_store__mem_audit_add(s, devs[i].dev_eui, JS_DEVICE_RESUME_EVENT, actor,
					      (flags & JS_IMPORT_FORGET_NONCES) != 0
					      ? JS_RESUME_DETAIL_FORGOT : JS_RESUME_DETAIL_KEPT);
	}
	ret = DJ_EOK;
out:
	pthread_mutex_unlock(&m->lock);
	if (ret == DJ_EEXIST && failed != NULL)
		*failed = bad;
out_free:
	for (size_t i = 0; i < n; i++)
		free(recs[i]);
	free(recs);
	return ret;
}

/* mem_devices_add - ops->devices_add */
static int mem_devices_add(struct js_store *s, const struct js_device *devs, size_t n,
			   const char *actor, unsigned flags, size_t *failed)
{
	return js_store__mem_devices_add(s, devs, n, actor, flags, failed, NULL);
}

int js_store__mem_sorted(struct js_store__mem *m, bool enrolled,
			 struct js_store__mem_dev ***list, size_t *n)
{
	struct js_store__mem_dev **l;
	size_t k = 0;

	l = calloc(m->dev_used != 0 ? m->dev_used : 1, sizeof(*l));
	if (l == NULL)
		return DJ_ENOMEM;
	for (size_t i = 0; i < m->dev_slots; i++)
		if (m->dev[i] != NULL && (!enrolled || m->dev[i]->h.reg != NULL))
			l[k++] = m->dev[i];
	qsort(l, k, sizeof(*l), js_store__mem_eui_cmp);
	*list = l;
	*n = k;
	return DJ_EOK;
}

/* mem_device_delete - remove a device, its sessions and its registry rows */
static int mem_device_delete(struct js_store *s, const uint8_t dev_eui[LW_EUI_LEN],
			     const char *actor)
{
	struct js_store__mem *m = s->be;
	struct js_store__mem_dev *gone;
	size_t i, t;
	int ret = DJ_ENOENT;

	pthread_mutex_lock(&m->lock);
	i = js_store__mem_dev_find(m, dev_eui);
	if (m->dev[i] == NULL)
		goto out;
	/* room for the tombstone first: a delete that cannot keep one changes nothing */
	ret = js_store__mem_grow(&m->tomb, &m->tomb_cap, m->tomb_n, 1, sizeof(*m->tomb),
				 MEM_TABLE_MIN);
	if (ret == DJ_EOK)
		ret = js_store__mem_audit_add(s, dev_eui, JS_DEVICE_DELETE_EVENT, actor, "");
	if (ret != DJ_EOK)
		goto out;
	t = tomb_find(m, dev_eui);
	if (t < m->tomb_n)
		tomb_drop(m, t);
	gone = dev_unlink_slot(m, i);
	gone->h.sess_token_len = 0;	/* a tombstone keeps no key material */
	OPENSSL_cleanse(gone->h.sess_token, sizeof(gone->h.sess_token));
	m->tomb[m->tomb_n++] = gone;
	/* Cascade: a backward shift can move an unvisited entry into slot k, so re-check it. */
	for (size_t k = 0; k < m->sess_slots;) {
		if (m->sess[k].p != NULL && memcmp(m->sess[k].p->dev_eui, dev_eui, LW_EUI_LEN) == 0)
			sess_remove_slot(m, k);
		else
			k++;
	}
	ret = DJ_EOK;
out:
	pthread_mutex_unlock(&m->lock);
	return ret;
}

/* mem_sessions_expire - delete the sessions whose expiry has passed */
static int mem_sessions_expire(struct js_store *s, int64_t now, uint64_t *count)
{
	struct js_store__mem *m = s->be;
	uint64_t n = 0;

	pthread_mutex_lock(&m->lock);
	/* a backward shift can move an unvisited entry into slot k, so re-check it */
	for (size_t k = 0; k < m->sess_slots;) {
		if (m->sess[k].p != NULL && m->sess[k].p->expires_at <= now) {
			sess_remove_slot(m, k);
			n++;
		} else {
			k++;
		}
	}
	pthread_mutex_unlock(&m->lock);
	*count = n;
	return DJ_EOK;
}

int js_store__mem_eui_cmp(const void *a, const void *b)
{
	const struct js_store__mem_dev *x = *(const struct js_store__mem_dev *const *)a;
	const struct js_store__mem_dev *y = *(const struct js_store__mem_dev *const *)b;

	return memcmp(x->h.dev_eui, y->h.dev_eui, LW_EUI_LEN);
}

/* mem_device_foreach - copy the devices out under the lock, then call cb without it */
static int mem_device_foreach(struct js_store *s, int (*cb)(const struct js_device *d, void *arg),
			      void *arg)
{
	struct js_store__mem *m = s->be;
	struct js_store__mem_dev **list = NULL;
	struct js_device *out = NULL;
	size_t n = 0, k = 0;
	int ret;

	pthread_mutex_lock(&m->lock);
	ret = js_store__mem_sorted(m, false, &list, &n);
	for (; ret == DJ_EOK && k < n; k++) {
		size_t len = sizeof(**list) + list[k]->h.hist_len * sizeof(uint16_t);
		struct js_store__mem_dev *copy = malloc(len);

		if (copy == NULL) {
			ret = DJ_ENOMEM;
			break;
		}
		list[k] = memcpy(copy, list[k], len);	/* from here on the entry is ours */
	}
	pthread_mutex_unlock(&m->lock);
	out = ret == DJ_EOK ? malloc(sizeof(*out)) : NULL;
	if (ret == DJ_EOK && out == NULL)
		ret = DJ_ENOMEM;
	for (size_t i = 0; ret == DJ_EOK && i < n; i++) {
		dev_copy_out(list[i], out);
		ret = cb(out, arg);
	}
	for (size_t i = 0; i < k; i++)
		free(list[i]);
	free(list);
	free(out);
	return ret;
}

/* reset_one - forget one device's DevNonces and RJcount1, keep its JoinNonce */
static void reset_one(struct js_store *s, struct js_store__mem_dev *d, const char *actor)
{
	d->h.dev_nonce_last = -1;
	d->h.rjcount1_last = -1;
	d->h.hist_len = 0;
	d->h.version++;
	(void)js_store__mem_audit_add(s, d->h.dev_eui, JS_NONCE_RESET_EVENT, actor, "");
}

/* mem_reset_nonces - reset one device or all */
static int mem_reset_nonces(struct js_store *s, const uint8_t *dev_eui, const char *actor,
			    uint64_t *count)
{
	struct js_store__mem *m = s->be;
	struct js_store__mem_dev **list = NULL, *one = NULL;
	size_t n = 0;
	int ret = DJ_EOK;

	pthread_mutex_lock(&m->lock);
	if (dev_eui == NULL)	/* DevEUI order, as the SQLite backend writes its audit rows */
		ret = js_store__mem_sorted(m, false, &list, &n);
	else if ((one = m->dev[js_store__mem_dev_find(m, dev_eui)]) != NULL)
		n = 1;
	else
		ret = DJ_ENOENT;
	for (size_t i = 0; ret == DJ_EOK && i < n; i++)
		reset_one(s, list != NULL ? list[i] : one, actor);
	pthread_mutex_unlock(&m->lock);
	free(list);
	if (ret == DJ_EOK && count != NULL)
		*count = n;
	return ret;
}


/* mem_bump_join_nonces - raise every device's and tombstone's JoinNonce, all or nothing */
static int mem_bump_join_nonces(struct js_store *s, uint32_t margin, const char *actor,
				uint64_t *count)
{
	struct js_store__mem *m = s->be;
	char detail[JS_AUDIT_DETAIL_MAX];
	int64_t top = -1;
	uint64_t nd = 0;
	int ret = DJ_ERANGE;

	pthread_mutex_lock(&m->lock);
	for (size_t i = 0; i < m->dev_slots; i++)
		if (m->dev[i] != NULL && m->dev[i]->h.join_nonce_last > top)
			top = m->dev[i]->h.join_nonce_last;
	for (size_t i = 0; i < m->tomb_n; i++)
		if (m->tomb[i]->h.join_nonce_last > top)
			top = m->tomb[i]->h.join_nonce_last;
	if (top + (int64_t)margin > (int64_t)LW_JOINNONCE_MAX)
		goto out;
	for (size_t i = 0; i < m->dev_slots; i++) {
		struct js_store__mem_dev *d = m->dev[i];

		if (d == NULL)
			continue;
		d->h.join_nonce_last += margin;
		d->h.version++;
		d->h.sess_token_len = 0;	/* its SessionKeyID names the old JoinNonce */
		nd++;
	}
	for (size_t i = 0; i < m->tomb_n; i++)
		m->tomb[i]->h.join_nonce_last += margin;
	snprintf(detail, sizeof(detail), "margin=%u devices=%llu tombstones=%zu", margin,
		 (unsigned long long)nd, m->tomb_n);
	ret = js_store__mem_audit_add(s, NULL, JS_RESTORE_GUARD_EVENT, actor, detail);
	if (ret == DJ_EOK && count != NULL)
		*count = nd + m->tomb_n;
out:
	pthread_mutex_unlock(&m->lock);
	return ret;
}

/* mem_session_get - copy one session out */
static int mem_session_get(struct js_store *s, const uint8_t *session_id, size_t len,
			   struct js_session *out)
{
	struct js_store__mem *m = s->be;
	struct js_session *se;
	int ret = DJ_ENOENT;

	pthread_mutex_lock(&m->lock);
	se = m->sess[js_store__mem_sess_find(m, session_id, len,
					     js_store__mem_hash(session_id, len))].p;
	if (se != NULL) {
		*out = *se;
		ret = DJ_EOK;
	}
	pthread_mutex_unlock(&m->lock);
	return ret;
}

/* mem_audit - append one administrative entry */
static int mem_audit(struct js_store *s, const uint8_t *dev_eui, const char *event,
		     const char *actor, const char *detail)
{
	struct js_store__mem *m = s->be;
	int ret;

	pthread_mutex_lock(&m->lock);
	ret = js_store__mem_audit_add(s, dev_eui, event, actor, detail);
	pthread_mutex_unlock(&m->lock);
	return ret;
}

/* mem_audit_foreach - walk the log; entries are copied one at a time, cb runs unlocked */
static int mem_audit_foreach(struct js_store *s, const uint8_t *dev_eui,
			     int (*cb)(const struct js_audit_entry *e, void *arg), void *arg)
{
	struct js_store__mem *m = s->be;
	struct js_audit_entry e;
	int ret = DJ_EOK;

	for (size_t i = 0; ret == 0; i++) {
		bool have;

		pthread_mutex_lock(&m->lock);
		have = i < m->audit_n;
		if (have) {
			const struct js_store__mem_audit *a = &m->audit[i];
			const char *t = a->text;

			memset(&e, 0, sizeof(e));
			e.id = (int64_t)i + 1;
			e.at = a->at;
			e.has_dev_eui = a->has_dev_eui;
			memcpy(e.dev_eui, a->dev_eui, LW_EUI_LEN);
			js_store__strlcpy(e.event, t, sizeof(e.event));
			t += strlen(t) + 1;
			js_store__strlcpy(e.actor, t, sizeof(e.actor));
			t += strlen(t) + 1;
			js_store__strlcpy(e.detail, t, sizeof(e.detail));
		}
		pthread_mutex_unlock(&m->lock);
		if (!have)
			break;
		if (dev_eui != NULL &&
		    (!e.has_dev_eui || memcmp(e.dev_eui, dev_eui, LW_EUI_LEN) != 0))
			continue;
		ret = cb(&e, arg);
	}
	return ret;
}

/* rewrap_token - re-seal one token in place through a scratch buffer */
static int rewrap_token(struct js_keystore *old_ks, struct js_keystore *new_ks,
			const char *purpose, const uint8_t *id, size_t id_len, const uint8_t *tok,
			uint32_t tok_len, uint8_t *out, size_t *out_len)
{
	uint8_t label[JS_LABEL_MAX];
	size_t label_len = js_keystore_label(purpose, id, id_len, label);

	if (label_len == 0)
		return DJ_EMALFORMED;
	return js_keystore_rewrap(old_ks, new_ks, label, label_len, tok, tok_len, out, out_len);
}

/* A re-sealed token waiting to be installed: all are computed before any is written. */
struct pending {
	uint8_t *dst;
	uint32_t *dst_len;
	uint8_t tok[JS_TOKEN_MAX];
	size_t len;
};

/* mem_rewrap - re-seal every token, all or nothing */
static int mem_rewrap(struct js_store *s, struct js_keystore *old_ks, struct js_keystore *new_ks,
		      const char *actor, uint64_t *count)
{
	struct js_store__mem *m = s->be;
	uint8_t old_kcv[JS_KCV_LEN], sid[JS_SESSION_ID_LEN];
	char detail[JS_AUDIT_DETAIL_MAX];
	struct pending *p = NULL;
	size_t np = 0;
	int ret = DJ_EMASTERKEY;

	js_keystore_kcv(old_ks, old_kcv);
	pthread_mutex_lock(&m->lock);
	if (memcmp(old_kcv, m->kcv, JS_KCV_LEN) != 0)
		goto out;
	ret = DJ_ENOMEM;
	p = calloc(2 * m->dev_used + m->sess_used + 1, sizeof(*p));
	if (p == NULL)
		goto out;
	for (size_t i = 0; i < m->dev_slots; i++) {
		struct js_store__mem_dev *d = m->dev[i];

		if (d == NULL)
			continue;
		ret = rewrap_token(old_ks, new_ks, JS_PURPOSE_ROOT, d->h.dev_eui, LW_EUI_LEN,
				   d->h.root_token, d->h.root_token_len, p[np].tok, &p[np].len);
		if (ret != DJ_EOK)
			goto out;
		p[np].dst = d->h.root_token;
		p[np++].dst_len = &d->h.root_token_len;
		if (d->h.sess_token_len == 0)
			continue;
		js_session_id(d->h.dev_eui, (uint32_t)d->h.join_nonce_last, sid);
		ret = rewrap_token(old_ks, new_ks, JS_PURPOSE_SESSION, sid, sizeof(sid),
				   d->h.sess_token, d->h.sess_token_len, p[np].tok, &p[np].len);
		if (ret != DJ_EOK)
			goto out;
		p[np].dst = d->h.sess_token;
		p[np++].dst_len = &d->h.sess_token_len;
	}
	for (size_t i = 0; i < m->sess_slots; i++) {
		struct js_session *se = m->sess[i].p;

		if (se == NULL || se->session_token_len == 0)
			continue;
		ret = rewrap_token(old_ks, new_ks, JS_PURPOSE_SESSION, se->session_id,
				   se->session_id_len, se->session_token,
				   se->session_token_len, p[np].tok, &p[np].len);
		if (ret != DJ_EOK)
			goto out;
		p[np].dst = se->session_token;
		p[np++].dst_len = &se->session_token_len;
	}
	snprintf(detail, sizeof(detail), "tokens=%zu", np);
	ret = js_store__mem_audit_add(s, NULL, JS_REWRAP_EVENT, actor, detail);
	if (ret != DJ_EOK)
		goto out;
	for (size_t i = 0; i < np; i++) {
		memcpy(p[i].dst, p[i].tok, p[i].len);
		*p[i].dst_len = (uint32_t)p[i].len;
	}
	js_keystore_kcv(new_ks, m->kcv);
	ret = DJ_EOK;
out:
	pthread_mutex_unlock(&m->lock);
	free(p);
	if (ret == DJ_EOK && count != NULL)
		*count = np;
	return ret;
}

const struct js_store_ops js_store__mem_ops = {
	.name = "memory",
	.inline_commit = true,
	.open = mem_open,
	.close = mem_close,
	.device_get = mem_device_get,
	.devices_add = mem_devices_add,
	.device_delete = mem_device_delete,
	.device_foreach = mem_device_foreach,
	.reset_nonces = mem_reset_nonces,
	.bump_join_nonces = mem_bump_join_nonces,
	.apply_batch = js_store__mem_apply_batch,
	.sessions_expire = mem_sessions_expire,
	.session_get = mem_session_get,
	.audit = mem_audit,
	.audit_foreach = mem_audit_foreach,
	.rewrap = mem_rewrap,
	.outbox_fetch = js_store__mem_outbox_fetch,
	.reg = &js_store__mem_reg_ops,
	.apikey = &js_store__mem_apikey_ops,
};
