/*
 * js_store_owner.c - the public calls of the ownership registry (js_store_owner.h): argument
 * checks, then dispatch through the backend's table of registry operations (ops->reg,
 * js_store_internal.h), plus what every backend shares about the registry: the audit details,
 * the outbox event of a finished transfer, the verdicts of a transfer batch, and the write
 * rules of the SQL backends on their statements (js_store__reg_*, ops->reg->sql).
 *
 * The checks here are the only ones. A backend trusts that pointers are set, that chains are
 * within 1..JS_OWNER_CHAIN_MAX bytes, that zone and attribute strings end inside their arrays
 * and that a transfer_advance's step is one a transfer can move to, so it never reads past a
 * caller's buffer. Out-parameters are written here, and only on success: a backend fills a
 * zeroed struct, which is cleared (its chain freed, an auth code wiped) when the call fails.
 * Auth codes arrive already hashed (devices/ownership/dv_authcode.c); the audit detail never
 * names a code.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "common/dj_err.h"
#include "common/dj_log.h"
#include "store/js_store_internal.h"
#include "store/js_store_owner.h"

#define MS_PER_S 1000
#define ZONE_DETAIL_MAX 100	/* characters of each zone in an audit detail */

/* chain_free - free a malloc'd chain and forget it */
static void chain_free(uint8_t **chain, size_t *len)
{
	free(*chain);
	*chain = NULL;
	*len = 0;
}

void js_owner_clear(struct js_owner *o)
{
	if (o != NULL)
		chain_free(&o->chain, &o->chain_len);
}

void js_transfer_clear(struct js_transfer *t)
{
	if (t != NULL)
		chain_free(&t->chain, &t->chain_len);
}

void js_store_set_transfer_event(struct js_store *s, js_transfer_event_fn fn, void *arg)
{
	if (s == NULL)
		return;
	s->xfer_event = fn;
	s->xfer_event_arg = arg;
}

/* --- shared by the backends --------------------------------------------------------------- */

bool js_store__xfer_event(struct js_store *s, const struct js_transfer *t, uint8_t *buf,
			  size_t *len)
{
	int rc;

	if (s->xfer_event == NULL)
		return false;
	*len = 0;
	rc = s->xfer_event(t, js_store_now(s) * MS_PER_S, buf, JS_EVENT_BODY_MAX, len,
			   s->xfer_event_arg);
	if (rc == DJ_EOK && *len > JS_EVENT_BODY_MAX)
		rc = DJ_ENOSPC;
	if (rc != DJ_EOK) {
		dj_warn("store: the ownership event of a transfer cannot be encoded: %s; dropped",
			dj_strerror(rc));
		*len = 0;
	}
	return true;
}

void js_store__xfer_detail(const struct js_transfer *t, char *out, size_t cap)
{
	snprintf(out, cap, "from=%.*s to=%.*s serial=%llu", ZONE_DETAIL_MAX, t->from_zone,
		 ZONE_DETAIL_MAX, t->to_zone, (unsigned long long)t->serial);
}

void js_store__authcode_detail(const struct js_authcode *a, char *out, size_t cap)
{
	snprintf(out, cap, "expires_at=%lld", (long long)a->expires_at);
}

/* xfer_verdict - \p rc answers for one transfer, rather than being a fault */
static bool xfer_verdict(int rc)
{
	return rc == DJ_EOK || rc == DJ_ENOENT || rc == DJ_ECONFLICT || rc == DJ_EEXIST;
}

int js_store__xfer_begin_each(struct js_store *s, struct js_transfer *t, size_t n, int *results,
			      int (*one)(struct js_store *s, struct js_transfer *t))
{
	int ret = DJ_EOK;

	for (size_t i = 0; ret == DJ_EOK && i < n; i++) {
		results[i] = one(s, &t[i]);
		if (!xfer_verdict(results[i]))
			ret = results[i];	/* a fault, not an answer: the batch fails */
	}
	for (size_t i = 0; ret == DJ_EOK && i < n; i++)
		if (results[i] != DJ_EOK)
			ret = DJ_ECONFLICT;	/* all or nothing */
	return ret;
}

/* --- the write rules of the SQL backends (ops->reg->sql) -------------------------------- */

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
	const struct js_store_reg_sql *sql = s->ops->reg->sql;
	const struct enroll *e = arg;
	int ret = js_store__dev_insert(s, &e->devs[i], e->actor, 0);

	if (ret != DJ_EOK)
		return ret;
	return sql->owner_insert(s, &e->owners[i], e->now);
}

int js_store__reg_owner_enroll(struct js_store *s, const struct js_device *devs,
			       const struct js_owner *owners, size_t n, const char *actor,
			       size_t *failed)
{
	struct enroll e = { devs, owners, actor, js_store_now(s) };
	size_t bad = 0;
	int ret = s->ops->reg->sql->batch(s, n, enroll_one, &e, &bad);

	if (ret == DJ_EEXIST && failed != NULL)
		*failed = bad;
	return ret;
}

/* publish_one - a batch item: mark the owner row of DevEUI i published */
static int publish_one(struct js_store *s, size_t i, void *arg)
{
	const uint8_t (*dev_euis)[LW_EUI_LEN] = arg;

	return s->ops->reg->sql->owner_publish(s, dev_euis[i]);
}

int js_store__reg_owner_set_published(struct js_store *s, const uint8_t (*dev_euis)[LW_EUI_LEN],
				      size_t n)
{
	size_t bad;

	return s->ops->reg->sql->batch(s, n, publish_one, (void *)dev_euis, &bad);
}

/* Auth codes to store, and who stores them. */
struct authcodes {
	const struct js_authcode *recs;
	const char *actor;
};

/* authcode_one - a batch item: auth code i, for an enrolled device only, and its audit entry */
static int authcode_one(struct js_store *s, size_t i, void *arg)
{
	const struct js_store_reg_sql *sql = s->ops->reg->sql;
	const struct authcodes *ac = arg;
	const struct js_authcode *a = &ac->recs[i];
	char detail[JS_AUDIT_DETAIL_MAX];
	int ret;

	ret = sql->owner_exists(s, a->dev_eui);
	if (ret == DJ_EOK)
		ret = sql->authcode_write(s, a);
	if (ret != DJ_EOK)
		return ret;
	js_store__authcode_detail(a, detail, sizeof(detail));
	return sql->audit_put(s, a->dev_eui, JS_AUTHCODE_EVENT, ac->actor, detail);
}

int js_store__reg_authcode_put(struct js_store *s, const struct js_authcode *recs, size_t n,
			       const char *actor, size_t *failed)
{
	struct authcodes ac = { recs, actor };
	size_t bad = 0;
	int ret = s->ops->reg->sql->batch(s, n, authcode_one, &ac, &bad);

	if (ret == DJ_ENOENT && failed != NULL)
		*failed = bad;
	return ret;
}

/* revoke_one - the batch of one: the device's auth code, if one is set, deleted and audited */
static int revoke_one(struct js_store *s, size_t i, void *arg)
{
	const struct js_store_reg_sql *sql = s->ops->reg->sql;
	const struct authcodes *ac = arg;
	const uint8_t *eui = ac->recs[i].dev_eui;
	int ret;

	ret = sql->authcode_exists(s, eui);
	if (ret == DJ_EOK)
		ret = sql->authcode_delete(s, eui);
	if (ret != DJ_EOK)
		return ret;
	return sql->audit_put(s, eui, JS_AUTHCODE_REVOKE_EVENT, ac->actor, "revoked");
}

int js_store__reg_authcode_revoke(struct js_store *s, const uint8_t dev_eui[LW_EUI_LEN],
				  const char *actor)
{
	struct js_authcode rec;
	struct authcodes ac = { &rec, actor };
	size_t bad = 0;

	memset(&rec, 0, sizeof(rec));
	memcpy(rec.dev_eui, dev_eui, LW_EUI_LEN);
	return s->ops->reg->sql->batch(s, 1, revoke_one, &ac, &bad);
}

int js_store__reg_begin_one(struct js_store *s, struct js_transfer *t)
{
	const struct js_store_reg_sql *sql = s->ops->reg->sql;
	struct js_owner o;
	int ret;

	ret = sql->xfer_busy(s, t->dev_eui);
	if (ret != DJ_ENOENT)
		return ret == DJ_EOK ? DJ_ECONFLICT : ret;	/* another one is unfinished */
	ret = sql->owner_head(s, t->dev_eui, &o);
	if (ret != DJ_EOK)
		return ret;
	/* a used serial or nonce is a replay: tell it apart from a moved-on owner */
	ret = sql->xfer_used(s, t);
	if (ret != DJ_ENOENT)
		return ret == DJ_EOK ? DJ_EEXIST : ret;
	if (strcmp(o.zone, t->from_zone) != 0 || t->serial != o.serial + 1)
		return DJ_ECONFLICT;
	ret = sql->xfer_insert(s, t);
	if (ret == DJ_EOK)
		t->step = JS_XFER_RECORDED;
	return ret;
}

/* A transfer_advance: the transfers, their step, the caller's actor. */
struct finish {
	const char *actor;
	const int64_t *ids;
	enum js_transfer_step step;
};

/* finish_one - on the transfer reaching DONE: the owner row becomes the transfer's, the auth
 * code goes, the audit entry and the outbox event are written. The chain is borrowed from the
 * backend's row, which stays valid until this returns. */
static int finish_one(struct js_store *s, const struct js_transfer *t, void *arg)
{
	const struct js_store_reg_sql *sql = s->ops->reg->sql;
	const struct finish *f = arg;
	char detail[JS_AUDIT_DETAIL_MAX];
	uint8_t body[JS_EVENT_BODY_MAX];
	size_t blen = 0;
	int ret;

	ret = sql->owner_move(s, t);
	if (ret == DJ_EOK)
		ret = sql->authcode_delete(s, t->dev_eui);
	if (ret == DJ_EOK) {
		js_store__xfer_detail(t, detail, sizeof(detail));
		ret = sql->audit_put(s, t->dev_eui, JS_TRANSFER_EVENT, f->actor, detail);
	}
	if (ret == DJ_EOK && js_store__xfer_event(s, t, body, &blen))
		sql->outbox_put(s, blen > 0 ? body : NULL, blen);
	OPENSSL_cleanse(body, sizeof(body));
	return ret;
}

/* advance_one - a batch item: transfer ids[i] to the step; at DONE, finish it */
static int advance_one(struct js_store *s, size_t i, void *arg)
{
	const struct js_store_reg_sql *sql = s->ops->reg->sql;
	const struct finish *f = arg;
	uint64_t moved = 0;
	int ret;

	ret = sql->xfer_step(s, f->ids[i], f->step, &moved);
	if (ret != DJ_EOK)
		return ret;
	if (moved == 0)	/* already at this step (a re-run), or no such id */
		return sql->xfer_exists(s, f->ids[i]);
	if (f->step != JS_XFER_DONE)
		return DJ_EOK;
	return sql->xfer_with(s, f->ids[i], finish_one, (void *)f);
}

int js_store__reg_transfer_advance(struct js_store *s, const int64_t *ids, size_t n,
				   enum js_transfer_step step, const char *actor)
{
	struct finish f = { .actor = actor, .ids = ids, .step = step };
	size_t bad;

	return s->ops->reg->sql->batch(s, n, advance_one, &f, &bad);
}

/* --- argument checks ---------------------------------------------------------------------- */

/* str_ok - \p str ends inside its array of \p cap bytes */
static bool str_ok(const char *str, size_t cap)
{
	return strnlen(str, cap) < cap;
}

/* chain_ok - an encoded chain of 1..JS_OWNER_CHAIN_MAX bytes */
static bool chain_ok(const uint8_t *chain, size_t len)
{
	return chain != NULL && len > 0 && len <= JS_OWNER_CHAIN_MAX;
}

/* owner_ok - an owner row to enroll for device \p d */
static bool owner_ok(const struct js_device *d, const struct js_owner *o)
{
	return memcmp(d->dev_eui, o->dev_eui, LW_EUI_LEN) == 0 &&
	       d->root_token_len <= JS_TOKEN_MAX && chain_ok(o->chain, o->chain_len) &&
	       str_ok(o->zone, sizeof(o->zone)) && str_ok(o->attrs, sizeof(o->attrs));
}

/* transfer_ok - a transfer to record */
static bool transfer_ok(const struct js_transfer *t)
{
	return chain_ok(t->chain, t->chain_len) && str_ok(t->from_zone, sizeof(t->from_zone)) &&
	       str_ok(t->to_zone, sizeof(t->to_zone));
}

/* read_out - finish a backend read into \p tmp (\p len bytes): on success copy it to \p out,
 * else free \p chain (what it may hold); wipe it either way (auth codes) */
static int read_out(int ret, void *out, void *tmp, size_t len, uint8_t *chain)
{
	if (ret == DJ_EOK)
		memcpy(out, tmp, len);
	else
		free(chain);
	OPENSSL_cleanse(tmp, len);
	return ret;
}

/* --- dispatch ----------------------------------------------------------------------------- */

int js_store_owner_enroll(struct js_store *s, const struct js_device *devs,
			  const struct js_owner *owners, size_t n, const char *actor,
			  size_t *failed)
{
	if (s == NULL || devs == NULL || owners == NULL || n == 0)
		return DJ_EINVAL;
	for (size_t i = 0; i < n; i++)
		if (!owner_ok(&devs[i], &owners[i]))
			return DJ_EINVAL;
	return s->ops->reg->owner_enroll(s, devs, owners, n, actor, failed);
}

int js_store_owner_get(struct js_store *s, const uint8_t dev_eui[LW_EUI_LEN],
		       struct js_owner *out)
{
	struct js_owner o = { .chain = NULL };
	int ret;

	if (s == NULL || dev_eui == NULL || out == NULL)
		return DJ_EINVAL;
	ret = s->ops->reg->owner_get(s, dev_eui, &o);
	return read_out(ret, out, &o, sizeof(o), o.chain);
}

int js_store_owner_head(struct js_store *s, const uint8_t dev_eui[LW_EUI_LEN], char *zone,
			size_t zonelen, uint64_t *serial)
{
	if (s == NULL || dev_eui == NULL || zone == NULL || serial == NULL)
		return DJ_EINVAL;
	return s->ops->reg->owner_head(s, dev_eui, zone, zonelen, serial);
}

int js_store_owner_foreach(struct js_store *s, bool unpublished,
			   int (*cb)(const struct js_owner *o, void *arg), void *arg)
{
	if (s == NULL || cb == NULL)
		return DJ_EINVAL;
	return s->ops->reg->owner_foreach(s, unpublished, cb, arg);
}

int js_store_owner_set_published(struct js_store *s, const uint8_t (*dev_euis)[LW_EUI_LEN],
				 size_t n)
{
	if (s == NULL || (dev_euis == NULL && n > 0))
		return DJ_EINVAL;
	if (n == 0)
		return DJ_EOK;
	return s->ops->reg->owner_set_published(s, dev_euis, n);
}

int js_store_authcode_put(struct js_store *s, const struct js_authcode *recs, size_t n,
			  const char *actor, size_t *failed)
{
	if (s == NULL || (recs == NULL && n > 0))
		return DJ_EINVAL;
	if (n == 0)
		return DJ_EOK;
	return s->ops->reg->authcode_put(s, recs, n, actor, failed);
}

int js_store_authcode_get(struct js_store *s, const uint8_t dev_eui[LW_EUI_LEN],
			  struct js_authcode *out)
{
	struct js_authcode a = { .iter = 0 };
	int ret;

	if (s == NULL || dev_eui == NULL || out == NULL)
		return DJ_EINVAL;
	ret = s->ops->reg->authcode_get(s, dev_eui, &a);
	return read_out(ret, out, &a, sizeof(a), NULL);
}

int js_store_authcode_revoke(struct js_store *s, const uint8_t dev_eui[LW_EUI_LEN],
			     const char *actor)
{
	if (s == NULL || dev_eui == NULL || actor == NULL)
		return DJ_EINVAL;
	return s->ops->reg->authcode_revoke(s, dev_eui, actor);
}

int js_store_transfer_begin(struct js_store *s, struct js_transfer *t, size_t n,
			    const char *actor, int *results)
{
	(void)actor;	/* the audit entry is written when the transfer is done */
	if (s == NULL || ((t == NULL || results == NULL) && n > 0))
		return DJ_EINVAL;
	for (size_t i = 0; i < n; i++)
		if (!transfer_ok(&t[i]))
			return DJ_EINVAL;
	if (n == 0)
		return DJ_EOK;
	return s->ops->reg->transfer_begin(s, t, n, results);
}

int js_store_transfer_advance(struct js_store *s, const int64_t *ids, size_t n,
			      enum js_transfer_step step, const char *actor)
{
	if (s == NULL || (ids == NULL && n > 0) || step < JS_XFER_NEW_PUBLISHED ||
	    step > JS_XFER_DONE)
		return DJ_EINVAL;
	if (n == 0)
		return DJ_EOK;
	return s->ops->reg->transfer_advance(s, ids, n, step, actor);
}

int js_store_transfer_find(struct js_store *s, const uint8_t dev_eui[LW_EUI_LEN],
			   const uint8_t nonce[JS_TRANSFER_NONCE_LEN], struct js_transfer *out)
{
	struct js_transfer t = { .chain = NULL };
	int ret;

	if (s == NULL || dev_eui == NULL || nonce == NULL || out == NULL)
		return DJ_EINVAL;
	ret = s->ops->reg->transfer_find(s, dev_eui, nonce, &t);
	return read_out(ret, out, &t, sizeof(t), t.chain);
}

int js_store_transfer_foreach_pending(struct js_store *s,
				      int (*cb)(const struct js_transfer *t, void *arg), void *arg)
{
	if (s == NULL || cb == NULL)
		return DJ_EINVAL;
	return s->ops->reg->transfer_foreach_pending(s, cb, arg);
}
