/*
 * js_store_mem_owner.c - the ownership registry (js_store_owner.h) on the in-memory backend,
 * with the SQLite backend's semantics (js_store_sqlite_owner.c): the same answers, the same
 * all-or-nothing batches, the same audit entries and outbox event.
 *
 * An enrolled device's record points to its registry rows (struct js_store__mem_reg): the
 * owner row, the hashed auth code and its transfers, newest first. Transfers are also indexed
 * by id (xf[id - 1]), which grows by one for each recorded transfer, as AUTOINCREMENT does.
 * Deleting a device frees its rows (the cascade of the SQLite schema). Every call holds the
 * backend's lock throughout; callbacks run under it and must not call the store, as with
 * SQLite, whose callbacks run with the writer locked. A batch allocates what it needs before it
 * changes anything, or undoes what it did, so a refused item or allocation leaves no trace.
 */
#include "store/js_store_mem_internal.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "common/dj_err.h"

#define MEM_XFER_MIN 16

/* reg_find - the registry rows of a device; NULL when it is not enrolled */
static struct js_store__mem_reg *reg_find(struct js_store__mem *m,
					  const uint8_t dev_eui[LW_EUI_LEN])
{
	struct js_store__mem_dev *d = m->dev[js_store__mem_dev_find(m, dev_eui)];

	return d != NULL ? d->h.reg : NULL;
}

/* dup_chain - a malloc'd copy of a chain; NULL when out of memory */
static uint8_t *dup_chain(const uint8_t *chain, size_t len)
{
	uint8_t *p = malloc(len);

	if (p != NULL)
		memcpy(p, chain, len);
	return p;
}

/* own_chain - replace the borrowed chain at \p *chain by a copy of it */
static int own_chain(uint8_t **chain, size_t len)
{
	*chain = dup_chain(*chain, len);
	return *chain != NULL ? DJ_EOK : DJ_ENOMEM;
}

/* xfer_free - free a transfer and its chain */
static void xfer_free(struct js_store__mem_xfer *x)
{
	js_transfer_clear(&x->t);
	free(x);
}

/* xfer_get - transfer \p id, NULL when there is none */
static struct js_store__mem_xfer *xfer_get(const struct js_store__mem *m, int64_t id)
{
	return id >= 1 && (uint64_t)id <= m->xf_n ? m->xf[id - 1] : NULL;
}

void js_store__mem_reg_free(struct js_store__mem *m, struct js_store__mem_reg *r)
{
	if (r == NULL)
		return;
	while (r->xfers != NULL) {
		struct js_store__mem_xfer *x = r->xfers;

		r->xfers = x->next;
		m->xf[x->t.id - 1] = NULL;
		xfer_free(x);
	}
	js_owner_clear(&r->own);
	OPENSSL_cleanse(&r->auth, sizeof(r->auth));
	free(r);
}

/* mem_owner_enroll - ops->reg->owner_enroll: the devices and their owner rows, all or nothing */
static int mem_owner_enroll(struct js_store *s, const struct js_device *devs,
			    const struct js_owner *owners, size_t n, const char *actor,
			    size_t *failed)
{
	struct js_store__mem_reg **regs;
	int64_t now = js_store_now(s);
	int ret = DJ_ENOMEM;

	regs = calloc(n, sizeof(*regs));
	if (regs == NULL)
		return DJ_ENOMEM;
	for (size_t i = 0; i < n; i++) {
		regs[i] = calloc(1, sizeof(**regs));
		if (regs[i] == NULL)
			goto out;
		regs[i]->own = owners[i];
		if (own_chain(&regs[i]->own.chain, owners[i].chain_len) != DJ_EOK)
			goto out;
		regs[i]->own.published = false;
		regs[i]->own.updated_at = now;
	}
	ret = js_store__mem_devices_add(s, devs, n, actor, 0, failed, regs);
out:
	for (size_t i = 0; ret != DJ_EOK && i < n; i++)
		js_store__mem_reg_free(s->be, regs[i]);	/* no transfers yet */
	free(regs);
	return ret;
}

/* reg_read - call \p copy on the registry rows of \p dev_eui under the lock; DJ_ENOENT when
 * the device is not enrolled */
static int reg_read(struct js_store *s, const uint8_t dev_eui[LW_EUI_LEN],
		    int (*copy)(const struct js_store__mem_reg *r, void *arg), void *arg)
{
	struct js_store__mem *m = s->be;
	struct js_store__mem_reg *r;
	int ret;

	pthread_mutex_lock(&m->lock);
	r = reg_find(m, dev_eui);
	ret = r != NULL ? copy(r, arg) : DJ_ENOENT;
	pthread_mutex_unlock(&m->lock);
	return ret;
}

/* copy_owner - reg_read: the owner row into the js_owner at arg, its chain copied */
static int copy_owner(const struct js_store__mem_reg *r, void *arg)
{
	struct js_owner *o = arg;

	*o = r->own;
	return own_chain(&o->chain, o->chain_len);
}

/* mem_owner_get - ops->reg->owner_get: one owner row, its chain malloc'd */
static int mem_owner_get(struct js_store *s, const uint8_t dev_eui[LW_EUI_LEN],
			 struct js_owner *out)
{
	return reg_read(s, dev_eui, copy_owner, out);
}

/* Where owner_head puts the zone and serial. */
struct head {
	char *zone;
	size_t zonelen;
	uint64_t *serial;
};

/* copy_head - reg_read: the owner zone (which must fit) and serial into the struct head */
static int copy_head(const struct js_store__mem_reg *r, void *arg)
{
	const struct head *h = arg;
	size_t len = strlen(r->own.zone);

	if (len == 0 || len >= h->zonelen)
		return DJ_EMALFORMED;
	memcpy(h->zone, r->own.zone, len + 1);
	*h->serial = r->own.serial;
	return DJ_EOK;
}

/* mem_owner_head - ops->reg->owner_head: the owner zone and serial only */
static int mem_owner_head(struct js_store *s, const uint8_t dev_eui[LW_EUI_LEN], char *zone,
			  size_t zonelen, uint64_t *serial)
{
	struct head h = { zone, zonelen, serial };

	return reg_read(s, dev_eui, copy_head, &h);
}

/* mem_owner_foreach - ops->reg->owner_foreach: owner rows in DevEUI order */
static int mem_owner_foreach(struct js_store *s, bool unpublished,
			     int (*cb)(const struct js_owner *o, void *arg), void *arg)
{
	struct js_store__mem *m = s->be;
	struct js_store__mem_dev **list = NULL;
	size_t n = 0;
	int ret;

	pthread_mutex_lock(&m->lock);
	ret = js_store__mem_sorted(m, true, &list, &n);
	for (size_t i = 0; ret == DJ_EOK && i < n; i++)
		if (!unpublished || !list[i]->h.reg->own.published)
			ret = cb(&list[i]->h.reg->own, arg);
	pthread_mutex_unlock(&m->lock);
	free(list);
	return ret;
}

/* mem_owner_set_published - ops->reg->owner_set_published: mark owner rows published */
static int mem_owner_set_published(struct js_store *s,
				   const uint8_t (*dev_euis)[LW_EUI_LEN], size_t n)
{
	struct js_store__mem *m = s->be;
	int64_t now = js_store_now(s);

	pthread_mutex_lock(&m->lock);
	for (size_t i = 0; i < n; i++) {
		struct js_store__mem_reg *r = reg_find(m, dev_euis[i]);

		if (r != NULL) {	/* none: nothing to mark, as an UPDATE of no row */
			r->own.published = true;
			r->own.updated_at = now;
		}
	}
	pthread_mutex_unlock(&m->lock);
	return DJ_EOK;
}

/* mem_authcode_put - ops->reg->authcode_put: set auth codes, all or nothing, audited */
static int mem_authcode_put(struct js_store *s, const struct js_authcode *recs, size_t n,
			    const char *actor, size_t *failed)
{
	struct js_store__mem *m = s->be;
	char detail[JS_AUDIT_DETAIL_MAX];
	size_t bad = 0;
	int ret = DJ_EOK;

	pthread_mutex_lock(&m->lock);
	for (size_t i = 0; ret == DJ_EOK && i < n; i++) {
		if (reg_find(m, recs[i].dev_eui) == NULL) {
			bad = i;
			ret = DJ_ENOENT;
		}
	}
	if (ret == DJ_EOK)
		ret = js_store__mem_audit_reserve(m, n);
	for (size_t i = 0; ret == DJ_EOK && i < n; i++) {
		struct js_store__mem_reg *r = reg_find(m, recs[i].dev_eui);

		r->auth = recs[i];
		r->has_auth = true;
		js_store__authcode_detail(&recs[i], detail, sizeof(detail));
		(void)js_store__mem_audit_add(s, recs[i].dev_eui, JS_AUTHCODE_EVENT, actor, detail);
	}
	pthread_mutex_unlock(&m->lock);
	if (ret == DJ_ENOENT && failed != NULL)
		*failed = bad;
	return ret;
}

/* copy_auth - reg_read: the auth code into the js_authcode at arg; DJ_ENOENT when none */
static int copy_auth(const struct js_store__mem_reg *r, void *arg)
{
	if (!r->has_auth)
		return DJ_ENOENT;
	*(struct js_authcode *)arg = r->auth;
	return DJ_EOK;
}

/* mem_authcode_get - ops->reg->authcode_get: the auth code of a device */
static int mem_authcode_get(struct js_store *s, const uint8_t dev_eui[LW_EUI_LEN],
			    struct js_authcode *out)
{
	return reg_read(s, dev_eui, copy_auth, out);
}

/* mem_authcode_revoke - ops->reg->authcode_revoke: delete a device's auth code, audited */
static int mem_authcode_revoke(struct js_store *s, const uint8_t dev_eui[LW_EUI_LEN],
			       const char *actor)
{
	struct js_store__mem *m = s->be;
	struct js_store__mem_reg *r;
	int ret = DJ_EOK;

	pthread_mutex_lock(&m->lock);
	r = reg_find(m, dev_eui);
	if (r == NULL || !r->has_auth)
		ret = DJ_ENOENT;
	if (ret == DJ_EOK)
		ret = js_store__mem_audit_reserve(m, 1);
	if (ret == DJ_EOK) {
		OPENSSL_cleanse(&r->auth, sizeof(r->auth));
		r->has_auth = false;
		(void)js_store__mem_audit_add(s, dev_eui, JS_AUTHCODE_REVOKE_EVENT, actor,
					      "revoked");
	}
	pthread_mutex_unlock(&m->lock);
	return ret;
}

/* begin_one - check one transfer against the device's rows, then record it (the id index
 * has room) */
static int begin_one(struct js_store *s, struct js_transfer *t)
{
	struct js_store__mem *m = s->be;
	struct js_store__mem_reg *r = reg_find(m, t->dev_eui);
	struct js_store__mem_xfer *x;

	if (r == NULL)
		return DJ_ENOENT;
	for (x = r->xfers; x != NULL; x = x->next)
		if (x->t.step < JS_XFER_DONE)
			return DJ_ECONFLICT;	/* another transfer is unfinished */
	/* a used serial or nonce is a replay: tell it apart from a moved-on owner */
	for (x = r->xfers; x != NULL; x = x->next)
		if (x->t.serial == t->serial ||
		    memcmp(x->t.nonce, t->nonce, JS_TRANSFER_NONCE_LEN) == 0)
			return DJ_EEXIST;
	if (strcmp(r->own.zone, t->from_zone) != 0 || t->serial != r->own.serial + 1)
		return DJ_ECONFLICT;
	x = calloc(1, sizeof(*x));
	if (x == NULL)
		return DJ_ENOMEM;
	x->t = *t;
	if (own_chain(&x->t.chain, t->chain_len) != DJ_EOK) {
		free(x);
		return DJ_ENOMEM;
	}
	x->t.id = (int64_t)m->xf_n + 1;
	x->t.step = JS_XFER_RECORDED;
	x->t.created_at = x->t.updated_at = js_store_now(s);
	m->xf[m->xf_n++] = x;
	x->next = r->xfers;
	r->xfers = x;
	t->id = x->t.id;
	t->step = JS_XFER_RECORDED;
	return DJ_EOK;
}

/* mem_transfer_begin - ops->reg->transfer_begin: record verified transfers, all or nothing */
static int mem_transfer_begin(struct js_store *s, struct js_transfer *t, size_t n,
			      int *results)
{
	struct js_store__mem *m = s->be;
	size_t start;
	int ret;

	pthread_mutex_lock(&m->lock);
	start = m->xf_n;
	ret = js_store__mem_grow(&m->xf, &m->xf_cap, m->xf_n, n, sizeof(*m->xf), MEM_XFER_MIN);
	if (ret == DJ_EOK)
		ret = js_store__xfer_begin_each(s, t, n, results, begin_one);
	/* roll back: the batch's transfers are the newest of their devices, newest last */
	while (ret != DJ_EOK && m->xf_n > start) {
		struct js_store__mem_xfer *x = m->xf[--m->xf_n];

		reg_find(m, x->t.dev_eui)->xfers = x->next;
		xfer_free(x);
	}
	pthread_mutex_unlock(&m->lock);
	return ret;
}

/* An ownership event's effect on the outbox, counted once the lock is released. */
struct ob_effect {
	uint64_t written, dropped;
};

/* finish_one - transfer \p x reaches DONE: the owner row becomes the transfer's (taking
 * \p chain, its copy), the auth code goes, the audit entry and the outbox event are written */
static void finish_one(struct js_store *s, struct js_store__mem_xfer *x, uint8_t **chain,
		       const char *actor, struct ob_effect *ob)
{
	struct js_store__mem_reg *r = reg_find(s->be, x->t.dev_eui);
	char detail[JS_AUDIT_DETAIL_MAX];
	uint8_t body[JS_EVENT_BODY_MAX];
	size_t blen = 0;

	free(r->own.chain);
	r->own.chain = *chain;
	r->own.chain_len = x->t.chain_len;
	*chain = NULL;
	memcpy(r->own.zone, x->t.to_zone, sizeof(r->own.zone));
	r->own.serial = x->t.serial;
	r->own.published = true;
	r->own.updated_at = x->t.updated_at;
	OPENSSL_cleanse(&r->auth, sizeof(r->auth));
	r->has_auth = false;
	js_store__xfer_detail(&x->t, detail, sizeof(detail));
	(void)js_store__mem_audit_add(s, x->t.dev_eui, JS_TRANSFER_EVENT, actor, detail);
	if (js_store__xfer_event(s, &x->t, body, &blen)) {
		if (js_store__mem_outbox_put(s, blen > 0 ? body : NULL, blen))
			ob->written++;
		else
			ob->dropped++;
	}
	OPENSSL_cleanse(body, sizeof(body));
}

/* finish_alloc - what reaching DONE needs, before anything changes: a copy of each
 * unfinished transfer's chain (chains[i]) and the audit entries */
static int finish_alloc(struct js_store__mem *m, const int64_t *ids, size_t n, uint8_t **chains)
{
	for (size_t i = 0; i < n; i++) {
		const struct js_store__mem_xfer *x = xfer_get(m, ids[i]);

		if (x->t.step >= JS_XFER_DONE)
			continue;
		chains[i] = dup_chain(x->t.chain, x->t.chain_len);
		if (chains[i] == NULL)
			return DJ_ENOMEM;
	}
	return js_store__mem_audit_reserve(m, n);
}

/* mem_transfer_advance - ops->reg->transfer_advance: to a step; DONE moves the owner */
static int mem_transfer_advance(struct js_store *s, const int64_t *ids, size_t n,
				enum js_transfer_step step, const char *actor)
{
	struct js_store__mem *m = s->be;
	struct ob_effect ob = { 0, 0 };
	uint8_t **chains;
	uint64_t rows;
	int64_t now = js_store_now(s);
	int ret = DJ_EOK;

	chains = calloc(n, sizeof(*chains));
	if (chains == NULL)
		return DJ_ENOMEM;
	pthread_mutex_lock(&m->lock);
	for (size_t i = 0; ret == DJ_EOK && i < n; i++)
		if (xfer_get(m, ids[i]) == NULL)
			ret = DJ_ENOENT;
	if (ret == DJ_EOK && step == JS_XFER_DONE)
		ret = finish_alloc(m, ids, n, chains);
	for (size_t i = 0; ret == DJ_EOK && i < n; i++) {
		struct js_store__mem_xfer *x = xfer_get(m, ids[i]);

		if (x->t.step >= step)
			continue;	/* already at this step: a re-run */
		x->t.step = step;
		x->t.updated_at = now;
		if (step == JS_XFER_DONE)
			finish_one(s, x, &chains[i], actor, &ob);
	}
	rows = m->ob_live;
	pthread_mutex_unlock(&m->lock);
	for (size_t i = 0; i < n; i++)
		free(chains[i]);
	free(chains);
	if (ob.written + ob.dropped > 0)
		js_store__outbox_count(s, ob.written, ob.dropped, 0, rows);
	return ret;
}

/* What transfer_find looks for, and where the transfer goes. */
struct find {
	const uint8_t *nonce;
	struct js_transfer *out;
};

/* copy_transfer - reg_read: the device's transfer with the nonce, its chain copied */
static int copy_transfer(const struct js_store__mem_reg *r, void *arg)
{
	const struct find *f = arg;

	for (const struct js_store__mem_xfer *x = r->xfers; x != NULL; x = x->next) {
		if (memcmp(x->t.nonce, f->nonce, JS_TRANSFER_NONCE_LEN) == 0) {
			*f->out = x->t;
			return own_chain(&f->out->chain, f->out->chain_len);
		}
	}
	return DJ_ENOENT;
}

/* mem_transfer_find - ops->reg->transfer_find: the transfer of a device with a nonce */
static int mem_transfer_find(struct js_store *s, const uint8_t dev_eui[LW_EUI_LEN],
			     const uint8_t nonce[JS_TRANSFER_NONCE_LEN],
			     struct js_transfer *out)
{
	struct find f = { nonce, out };

	return reg_read(s, dev_eui, copy_transfer, &f);
}

/* mem_transfer_foreach_pending - ops->reg->transfer_foreach_pending, oldest first */
static int mem_transfer_foreach_pending(struct js_store *s,
					int (*cb)(const struct js_transfer *t, void *arg),
					void *arg)
{
	struct js_store__mem *m = s->be;
	int ret = DJ_EOK;

	pthread_mutex_lock(&m->lock);
	for (size_t i = 0; ret == DJ_EOK && i < m->xf_n; i++)
		if (m->xf[i] != NULL && m->xf[i]->t.step < JS_XFER_DONE)
			ret = cb(&m->xf[i]->t, arg);
	pthread_mutex_unlock(&m->lock);
	return ret;
}

const struct js_store_reg_ops js_store__mem_reg_ops = {
	.owner_enroll = mem_owner_enroll,
	.owner_get = mem_owner_get,
	.owner_head = mem_owner_head,
	.owner_foreach = mem_owner_foreach,
	.owner_set_published = mem_owner_set_published,
	.authcode_put = mem_authcode_put,
	.authcode_get = mem_authcode_get,
	.authcode_revoke = mem_authcode_revoke,
	.transfer_begin = mem_transfer_begin,
	.transfer_advance = mem_transfer_advance,
	.transfer_find = mem_transfer_find,
	.transfer_foreach_pending = mem_transfer_foreach_pending,
};
