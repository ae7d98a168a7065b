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
#include "store/js_store_internal.h"

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
#define MEM_OUTBOX_MIN 64
#define FNV_OFFSET 0xcbf29ce484222325ULL	/* FNV-1a 64, a fast non-cryptographic hash */
#define FNV_PRIME 0x100000001b3ULL

/* The fixed part of a device record. */
struct mdev_hdr {
		uint8_t dev_eui[LW_EUI_LEN];
		uint8_t join_eui[LW_EUI_LEN];
		enum lw_version mac_version;
		uint32_t root_token_len;
		uint8_t root_token[JS_TOKEN_MAX];
		int64_t created_at;
		uint64_t version;
		int32_t dev_nonce_last;
		int64_t join_nonce_last;
		int32_t rjcount1_last;
		uint32_t sess_token_len;
		uint8_t sess_token[JS_TOKEN_MAX];
		uint32_t hist_len;
};

/* A device; hist has room for the store's DevNonce history capacity. */
struct mdev {
	struct mdev_hdr h;
	uint16_t hist[];
};

/* A session table slot: the entry and the hash of its id, which probes and rehashes compare
 * instead of following the pointer (one cache miss per probe, not two or three) */
struct sslot {
	uint64_t h;
	struct js_session *p;
};

/* One audit entry; js_audit_entry is rebuilt from it when read. */
struct maudit {
	int64_t at;
	const char *text;		/* event \0 actor \0 detail \0, in a struct mtext */
	bool has_dev_eui;
	uint8_t dev_eui[LW_EUI_LEN];
};

#define MEM_TEXT_BLOCK 65536
struct mtext {
	struct mtext *prev;
	size_t used;
	char buf[MEM_TEXT_BLOCK];
};

struct mem {
	pthread_mutex_t lock;
	bool lock_init;
	uint8_t kcv[JS_KCV_LEN];

	struct mdev **dev;		/* open addressing, linear probing; NULL = empty */
	size_t dev_slots, dev_used;

	struct sslot *sess;		/* likewise, keyed on session_id */
	size_t sess_slots, sess_used;

	/* the audit log: fixed-size entries; their texts ("event\0actor\0detail\0") in
	 * blocks that never move, so a long log costs about what its texts take */
	struct maudit *audit;
	size_t audit_n, audit_cap;
	struct mtext *text;		/* the block being filled; each links to the previous */

	/* outbox: rows in id order from ob_head to ob_n; a deleted row has body NULL */
	struct js_outbox_row **ob;
	size_t ob_head, ob_n, ob_cap;
	size_t ob_live;
	int64_t ob_next_id;
};

/* hash_bytes - FNV-1a over a key */
static uint64_t hash_bytes(const uint8_t *p, size_t len)
{
	uint64_t h = FNV_OFFSET;

	for (size_t i = 0; i < len; i++)
		h = (h ^ p[i]) * FNV_PRIME;
	return h;
}

/* dev_find - the slot holding dev_eui, or the empty slot where it would go */
static size_t dev_find(const struct mem *m, const uint8_t dev_eui[LW_EUI_LEN])
{
	size_t mask = m->dev_slots - 1;
	size_t i = hash_bytes(dev_eui, LW_EUI_LEN) & mask;

	while (m->dev[i] != NULL && memcmp(m->dev[i]->h.dev_eui, dev_eui, LW_EUI_LEN) != 0)
		i = (i + 1) & mask;
	return i;
}

/* sess_find - the slot holding the session id, or the empty slot where it would go */
static size_t sess_find(const struct mem *m, const uint8_t *id, size_t len, uint64_t h)
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
static int dev_grow(struct mem *m, size_t extra)
{
	struct mdev **old = m->dev;
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
			m->dev[dev_find(m, old[i]->h.dev_eui)] = old[i];
	free(old);
	return DJ_EOK;
}

/* sess_grow - double the session table when one more entry would pass the load factor */
static int sess_grow(struct mem *m)
{
	struct sslot *old = m->sess;
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

/* dev_remove_slot - delete slot i with backward-shift, so probes stay unbroken */
static void dev_remove_slot(struct mem *m, size_t i)
{
	size_t mask = m->dev_slots - 1, j = i;

	free(m->dev[i]);
	m->dev[i] = NULL;
	m->dev_used--;
	for (;;) {
		size_t k;

		j = (j + 1) & mask;
		if (m->dev[j] == NULL)
			break;
		k = hash_bytes(m->dev[j]->h.dev_eui, LW_EUI_LEN) & mask;
		/* move j back to i when its home k does not lie cyclically in (i, j] */
		if ((i <= j) ? (k <= i || k > j) : (k <= i && k > j)) {
			m->dev[i] = m->dev[j];
			m->dev[j] = NULL;
			i = j;
		}
	}
}

/* sess_remove_slot - delete slot i of the session table with backward-shift */
static void sess_remove_slot(struct mem *m, size_t i)
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

/* audit_reserve - make room for k more audit entries; call with the lock held */
static int audit_reserve(struct mem *m, size_t k)
{
	while (m->audit_cap - m->audit_n < k) {
		size_t cap = m->audit_cap != 0 ? m->audit_cap * 2 : MEM_AUDIT_MIN;
		struct maudit *a = realloc(m->audit, cap * sizeof(*a));

		if (a == NULL)
			return DJ_ENOMEM;
		m->audit = a;
		m->audit_cap = cap;
	}
	return DJ_EOK;
}

/* audit_add - append an audit entry; call with the lock held */
static int audit_add(struct js_store *s, const uint8_t *dev_eui, const char *event,
		     const char *actor, const char *detail)
{
	struct mem *m = s->be;
	struct maudit *e;
	size_t ne, na, nd, need;
	char *t;
	int ret = audit_reserve(m, 1);

	if (ret != DJ_EOK)
		return ret;
	event = event != NULL ? event : "";
	actor = actor != NULL ? actor : "";
	detail = detail != NULL ? detail : "";
	ne = strnlen(event, JS_AUDIT_EVENT_MAX - 1);
	na = strnlen(actor, JS_AUDIT_ACTOR_MAX - 1);
	nd = strnlen(detail, JS_AUDIT_DETAIL_MAX - 1);
	need = ne + na + nd + 3;
	if (m->text == NULL || MEM_TEXT_BLOCK - m->text->used < need) {
		struct mtext *b = malloc(sizeof(*b));

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
	struct mem *m = s->be;

	if (m == NULL)
		return;
	for (size_t i = 0; i < m->dev_slots; i++)
		free(m->dev[i]);
	for (size_t i = 0; i < m->sess_slots; i++)
		free(m->sess[i].p);
	free(m->dev);
	free(m->sess);
	free(m->audit);
	while (m->text != NULL) {
		struct mtext *prev = m->text->prev;

		free(m->text);
		m->text = prev;
	}
	for (size_t i = m->ob_head; i < m->ob_n; i++)
		OPENSSL_clear_free(m->ob[i], sizeof(*m->ob[i]));
	free(m->ob);	/* slots below ob_head were freed as the head passed them */
	if (m->lock_init)
		pthread_mutex_destroy(&m->lock);
	free(m);
	s->be = NULL;
}

/* mem_open - empty tables; record the KCV (there is nothing to compare it with) */
static int mem_open(struct js_store *s, const struct js_store_props *props)
{
	struct mem *m = calloc(1, sizeof(*m));
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
static void dev_copy_out(const struct mdev *d, struct js_device *out)
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
}

/* mem_device_get - copy one device out */
static int mem_device_get(struct js_store *s, const uint8_t dev_eui[LW_EUI_LEN],
			  struct js_device *out)
{
	struct mem *m = s->be;
	struct mdev *d;
	int ret = DJ_ENOENT;

	pthread_mutex_lock(&m->lock);
	d = m->dev[dev_find(m, dev_eui)];
	if (d != NULL) {
		dev_copy_out(d, out);
		ret = DJ_EOK;
	}
	pthread_mutex_unlock(&m->lock);
	return ret;
}

/* mem_devices_add - all or nothing: check every DevEUI first, then insert */
static int mem_devices_add(struct js_store *s, const struct js_device *devs, size_t n,
			   const char *actor, size_t *failed)
{
	struct mem *m = s->be;
	struct mdev **recs = NULL;
	char detail[JS_AUDIT_DETAIL_MAX];
	size_t bad = 0;
	int ret = DJ_ENOMEM;

	recs = calloc(n, sizeof(*recs));
	if (recs == NULL)
		return DJ_ENOMEM;
	for (size_t i = 0; i < n; i++) {
		recs[i] = calloc(1, sizeof(struct mdev) + s->hist_cap * sizeof(uint16_t));
		if (recs[i] == NULL)
			goto out_free;
	}
	pthread_mutex_lock(&m->lock);
	/* Room first (table and audit), so that nothing below can fail for want of memory. */
	ret = dev_grow(m, n);
	if (ret == DJ_EOK)
		ret = audit_reserve(m, n);
	if (ret != DJ_EOK)
		goto out;
	/* Insert one by one; a DevEUI already present (in the table or earlier in this batch)
	 * undoes the batch's inserts. One hash probe per device: large imports stay linear. */
	for (size_t i = 0; i < n; i++) {
		const struct js_device *d = &devs[i];
		struct mdev *r = recs[i];
		size_t slot = dev_find(m, d->dev_eui);

		if (m->dev[slot] != NULL) {
			for (size_t k = 0; k < i; k++) {
				dev_remove_slot(m, dev_find(m, devs[k].dev_eui));
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
		m->dev[slot] = r;
		m->dev_used++;
	}
	for (size_t i = 0; i < n; i++) {
		recs[i] = NULL;	/* owned by the table now */
		js_store__import_detail(&devs[i], detail, sizeof(detail));
		(void)audit_add(s, devs[i].dev_eui, JS_DEVICE_IMPORT_EVENT, actor, detail);
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

/* mem_device_delete - remove a device and its sessions */
static int mem_device_delete(struct js_store *s, const uint8_t dev_eui[LW_EUI_LEN],
			     const char *actor)
{
	struct mem *m = s->be;
	size_t i;
	int ret = DJ_ENOENT;

	pthread_mutex_lock(&m->lock);
	i = dev_find(m, dev_eui);
	if (m->dev[i] == NULL)
		goto out;
	ret = audit_add(s, dev_eui, JS_DEVICE_DELETE_EVENT, actor, "");
	if (ret != DJ_EOK)
		goto out;
	dev_remove_slot(m, i);
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
	struct mem *m = s->be;
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

/* eui_cmp - qsort order of devices by DevEUI */
static int eui_cmp(const void *a, const void *b)
{
	const struct mdev *x = *(const struct mdev *const *)a;
	const struct mdev *y = *(const struct mdev *const *)b;

	return memcmp(x->h.dev_eui, y->h.dev_eui, LW_EUI_LEN);
}

/* mem_device_foreach - copy the devices out under the lock, then call cb without it */
static int mem_device_foreach(struct js_store *s, int (*cb)(const struct js_device *d, void *arg),
			      void *arg)
{
	struct mem *m = s->be;
	struct mdev **list = NULL;
	struct js_device *out = NULL;
	size_t n = 0, k = 0;
	int ret = DJ_ENOMEM;

	pthread_mutex_lock(&m->lock);
	n = m->dev_used;
	list = calloc(n != 0 ? n : 1, sizeof(*list));
	if (list == NULL) {
		pthread_mutex_unlock(&m->lock);
		goto out;
	}
	for (size_t i = 0; i < m->dev_slots && k < n; i++) {
		struct mdev *d = m->dev[i];

		if (d == NULL)
			continue;
		list[k] = malloc(sizeof(struct mdev) + d->h.hist_len * sizeof(uint16_t));
		if (list[k] == NULL) {
			pthread_mutex_unlock(&m->lock);
			goto out;
		}
		memcpy(list[k], d, sizeof(struct mdev) + d->h.hist_len * sizeof(uint16_t));
		k++;
	}
	pthread_mutex_unlock(&m->lock);
	qsort(list, k, sizeof(*list), eui_cmp);
	out = malloc(sizeof(*out));
	if (out == NULL)
		goto out;
	ret = DJ_EOK;
	for (size_t i = 0; i < k && ret == 0; i++) {
		dev_copy_out(list[i], out);
		ret = cb(out, arg);
	}
out:
	if (list != NULL)
		for (size_t i = 0; i < k; i++)
			free(list[i]);
	free(list);
	free(out);
	return ret;
}

/* reset_one - forget one device's DevNonces and RJcount1, keep its JoinNonce */
static void reset_one(struct js_store *s, struct mdev *d, const char *actor)
{
	d->h.dev_nonce_last = -1;
	d->h.rjcount1_last = -1;
	d->h.hist_len = 0;
	d->h.version++;
	(void)audit_add(s, d->h.dev_eui, JS_NONCE_RESET_EVENT, actor, "");
}

/* mem_reset_nonces - reset one device or all */
static int mem_reset_nonces(struct js_store *s, const uint8_t *dev_eui, const char *actor,
			    uint64_t *count)
{
	struct mem *m = s->be;
	struct mdev **list = NULL;
	uint64_t n = 0;
	int ret = DJ_ENOENT;

	pthread_mutex_lock(&m->lock);
	if (dev_eui != NULL) {
		struct mdev *d = m->dev[dev_find(m, dev_eui)];

		if (d == NULL)
			goto out;
		reset_one(s, d, actor);
		n = 1;
	} else {
		/* DevEUI order, as the SQLite backend writes its audit rows */
		ret = DJ_ENOMEM;
		list = calloc(m->dev_used != 0 ? m->dev_used : 1, sizeof(*list));
		if (list == NULL)
			goto out;
		for (size_t i = 0; i < m->dev_slots; i++)
			if (m->dev[i] != NULL)
				list[n++] = m->dev[i];
		qsort(list, (size_t)n, sizeof(*list), eui_cmp);
		for (size_t i = 0; i < n; i++)
			reset_one(s, list[i], actor);
	}
	ret = DJ_EOK;
out:
	pthread_mutex_unlock(&m->lock);
	free(list);
	if (ret == DJ_EOK && count != NULL)
		*count = n;
	return ret;
}

/* apply_one - compare-and-swap one commit item; call with the lock held */
static int apply_one(struct js_store *s, struct js_commit *c)
{
	struct mem *m = s->be;
	struct mdev *d = m->dev[dev_find(m, c->dev_eui)];
	const struct js_nonce_state *ns = &c->new_st;
	struct js_session *se = NULL;
	size_t slot = 0;
	int ret;

	if (d == NULL)
		return DJ_ENOENT;
	if (d->h.version != c->expect_version)
		return DJ_ECONFLICT;
	/* Make room first, so that a refused allocation leaves the state unchanged. */
	ret = audit_reserve(m, 1);
	if (ret != DJ_EOK)
		return ret;
	if (c->has_session) {
		ret = sess_grow(m);
		if (ret != DJ_EOK)
			return ret;
		uint64_t h = hash_bytes(c->session_id, c->session_id_len);

		slot = sess_find(m, c->session_id, c->session_id_len, h);
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
	if (c->audit_event[0] != '\0')
		(void)audit_add(s, c->dev_eui, c->audit_event, c->audit_actor, c->audit_detail);
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
static int ob_reserve(struct mem *m, size_t k)
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
	while (m->ob_cap - m->ob_n < k) {
		size_t cap = m->ob_cap != 0 ? m->ob_cap * 2 : MEM_OUTBOX_MIN;
		struct js_outbox_row **a = realloc(m->ob, cap * sizeof(*a));

		if (a == NULL)
			return DJ_ENOMEM;
		m->ob = a;
		m->ob_cap = cap;
	}
	return DJ_EOK;
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
	struct mem *m = s->be;
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
		ret = audit_reserve(m, want);
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

/* events_link - fill and append the rows events_alloc() made room for; call with the lock held */
static void events_link(struct js_store *s, const struct js_commit *c, struct ob_new *nw)
{
	struct mem *m = s->be;
	size_t k = 0;

	for (const struct js_event *e = c->events; e != NULL && k < nw->n; e = e->next) {
		struct js_outbox_row *r = nw->rows[k++];

		r->id = m->ob_next_id++;
		r->at = js_store_now(s);
		r->len = e->len;
		memcpy(r->body, e->body, e->len);
		m->ob[m->ob_n++] = r;
		m->ob_live++;
		if (e->audit_event != NULL)
			(void)audit_add(s, c->dev_eui, e->audit_event, e->audit_actor,
					e->audit_detail);
	}
	nw->n = 0;
}

/* ob_find - the index of row \p id, or SIZE_MAX (binary search: ids increase; a delivered
 * row stays in its slot with len 0 until the head passes it) */
static size_t ob_find(const struct mem *m, int64_t id)
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
static size_t ob_first_after(const struct mem *m, int64_t id)
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
static void outbox_done(struct mem *m, const struct js_commit *c, uint64_t *done)
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

/* mem_apply_batch - apply each item under the lock; a fault fails only its own item */
static int mem_apply_batch(struct js_store *s, struct js_commit *head, size_t n)
{
	struct mem *m = s->be;
	uint64_t written = 0, dropped = 0, done = 0, rows;

	pthread_mutex_lock(&m->lock);
	if (n > 1) {
		/* The rows of a batch are scattered over tables much larger than the caches:
		 * start fetching all of them before changing the first (two passes, for the
		 * slot and then for the device it points to). */
		for (struct js_commit *c = head; c != NULL; c = c->priv_next) {
			__builtin_prefetch(&m->dev[hash_bytes(c->dev_eui, LW_EUI_LEN) &
						   (m->dev_slots - 1)]);
			if (c->has_session)
				__builtin_prefetch(&m->sess[hash_bytes(c->session_id,
								       c->session_id_len) &
							    (m->sess_slots - 1)], 1);
		}
		for (struct js_commit *c = head; c != NULL; c = c->priv_next)
			__builtin_prefetch(m->dev[hash_bytes(c->dev_eui, LW_EUI_LEN) &
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

/* mem_outbox_fetch - copy rows after an id out */
static int mem_outbox_fetch(struct js_store *s, int64_t after_id, struct js_outbox_row *rows,
			    size_t max, size_t *n)
{
	struct mem *m = s->be;
	size_t k = 0;

	pthread_mutex_lock(&m->lock);
	for (size_t i = ob_first_after(m, after_id); i < m->ob_n && k < max; i++)
		if (m->ob[i]->len != 0)
			rows[k++] = *m->ob[i];
	pthread_mutex_unlock(&m->lock);
	*n = k;
	return DJ_EOK;
}

/* mem_session_get - copy one session out */
static int mem_session_get(struct js_store *s, const uint8_t *session_id, size_t len,
			   struct js_session *out)
{
	struct mem *m = s->be;
	struct js_session *se;
	int ret = DJ_ENOENT;

	pthread_mutex_lock(&m->lock);
	se = m->sess[sess_find(m, session_id, len, hash_bytes(session_id, len))].p;
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
	struct mem *m = s->be;
	int ret;

	pthread_mutex_lock(&m->lock);
	ret = audit_add(s, dev_eui, event, actor, detail);
	pthread_mutex_unlock(&m->lock);
	return ret;
}

/* mem_audit_foreach - walk the log; entries are copied one at a time, cb runs unlocked */
static int mem_audit_foreach(struct js_store *s, const uint8_t *dev_eui,
			     int (*cb)(const struct js_audit_entry *e, void *arg), void *arg)
{
	struct mem *m = s->be;
	struct js_audit_entry e;
	int ret = DJ_EOK;

	for (size_t i = 0; ret == 0; i++) {
		bool have;

		pthread_mutex_lock(&m->lock);
		have = i < m->audit_n;
		if (have) {
			const struct maudit *a = &m->audit[i];
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
	struct mem *m = s->be;
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
		struct mdev *d = m->dev[i];

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
	ret = audit_add(s, NULL, JS_REWRAP_EVENT, actor, detail);
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
	.apply_batch = mem_apply_batch,
	.sessions_expire = mem_sessions_expire,
	.session_get = mem_session_get,
	.audit = mem_audit,
	.audit_foreach = mem_audit_foreach,
	.rewrap = mem_rewrap,
	.outbox_fetch = mem_outbox_fetch,
};
