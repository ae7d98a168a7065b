/*
 * dv_transfer.c - ownership transfers: verdicts on a batch, then the resumable step machine.
 *
 * SECURITY
 *	- Whole batch first: every item is verified (signature, key, auth code, serial, chain
 *	  continuity) before the store or the DNS is touched; one refusal refuses the batch
 *	  (DESIGN.md trust rule 6).
 *	- Keys come only through the caller's dv_key_fn, which must take them from a
 *	  DNSSEC-validated `_owner` TLSA 3 1 0 answer (dv_ownerkey.h; trust rule 1). For an
 *	  auth-code transfer the registry's own signing key is checked against that record
 *	  too, so we never publish a link the JS would reject.
 *	- Replays: a request must carry the device's next serial, and (dev_eui, serial) and
 *	  (dev_eui, nonce) are unique in the store, so a replayed request collides there even
 *	  when two runs race. A request that was completed and is still the device's last link
 *	  is "already done" and changes nothing (a re-run is idempotent); any other reuse of its
 *	  nonce is a replay.
 *	- Crashes: the transfer is recorded (with its new chain) before the DNS changes, and
 *	  each step is recorded after the server acknowledged it. Every DNS change is an
 *	  idempotent replace, so the steps of a recorded transfer can be repeated from the
 *	  store's record at any time (dv_transfer_resume); the owner row changes only in the
 *	  last step, so the registry never shows a half-transferred device.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "common/dj_err.h"
#include "common/dj_hex.h"
#include "ownership/dv_authcode.h"
#include "ownership/dv_ownerkey.h"
#include "ownership/dv_records.h"
#include "ownership/dv_transfer.h"

#define EUI_HEX (2 * LW_EUI_LEN + 1)
#define PENDING_GROW 256	/* first capacity of the list of unfinished transfers */
#define CODE_LINE_MAX 128	/* "dev_eui,auth_code" (16 + 1 + 24 characters) and slack */

/* One transfer of a batch, as verified. */
struct xfer {
	struct js_transfer t;
	char attrs[JS_OWNER_ATTRS_MAX];
	bool done_before;	/* this very transfer was completed earlier: nothing to do */
};

const char *dv_xfer_status_str(enum dv_xfer_status st)
{
	switch (st) {
	case DV_XFER_OK: return "ok";
	case DV_XFER_ALREADY_DONE: return "already done";
	case DV_XFER_REPLAYED: return "replayed";
	case DV_XFER_STALE: return "stale";
	case DV_XFER_DENIED: return "denied";
	case DV_XFER_TEMPFAIL: return "temporary failure";
	case DV_XFER_MALFORMED: return "malformed";
	case DV_XFER_UNKNOWN: return "unknown device";
	}
	return "unknown";
}

/* verdict - record a refusal in \p r (a verdict, not a fault: the call still succeeds) */
static int DJ_PRINTF(3, 4) verdict(struct dv_xfer_report *r, enum dv_xfer_status st,
				   const char *fmt, ...)
{
	va_list ap;

	r->status = st;
	va_start(ap, fmt);
	vsnprintf(r->why, sizeof(r->why), fmt, ap);
	va_end(ap);
	return DJ_EOK;
}

/* fault - say what failed, and return \p rc */
static int DJ_PRINTF(3, 4) fault(struct dv_xfer_report *r, int rc, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(r->why, sizeof(r->why), fmt, ap);
	va_end(ap);
	return rc;
}

/* failed - whether a helper ended the verification: a fault, or a refusal in \p r */
static bool failed(int rc, const struct dv_xfer_report *r)
{
	return rc != DJ_EOK || r->status != DV_XFER_OK;
}

/* ---- the DNS publisher -------------------------------------------------------------------- */

/* pub_device, pub_moved, pub_flush - struct dv_xfer_pub over a dv_pub */
static int pub_device(void *arg, const char *zone, const uint8_t dev_eui[LW_EUI_LEN],
		      const char *attrs, const uint8_t *chain, size_t chain_len, char *err,
		      size_t errlen)
{
	return dv_pub_device(arg, zone, dev_eui, attrs, chain, chain_len, err, errlen);
}

static int pub_moved(void *arg, const char *old_zone, const uint8_t dev_eui[LW_EUI_LEN],
		     const char *new_zone, char *err, size_t errlen)
{
	return dv_pub_moved(arg, old_zone, dev_eui, new_zone, err, errlen);
}

static int pub_flush(void *arg, char *err, size_t errlen)
{
	return dv_pub_flush(arg, err, errlen);
}

void dv_xfer_pub_dns(struct dv_pub *p, struct dv_xfer_pub *out)
{
	out->device = pub_device;
	out->moved = pub_moved;
	out->flush = pub_flush;
	out->arg = p;
}

/* ---- the step machine -------------------------------------------------------------------- */

/*
 * run_steps - take every transfer of \p v from its step to DONE: the new zone's records, then
 * the old name's CNAME, then the owner rows; each step recorded for the whole batch after the
 * server acknowledged it.
 */
static int run_steps(const struct dv_xfer_env *e, struct xfer *v, size_t n,
		     struct dv_xfer_report *r)
{
	struct js_owner own;
	int64_t *ids = NULL;
	char err[DV_XFER_ERR_MAX] = "";
	size_t i, k;
	int rc = DJ_EOK, step;
	bool dns;

	memset(&own, 0, sizeof(own));
	if (n == 0)
		return DJ_EOK;
	ids = calloc(n, sizeof(*ids));
	if (ids == NULL)
		return fault(r, DJ_ENOMEM, "out of memory");
	for (step = JS_XFER_NEW_PUBLISHED; step <= JS_XFER_DONE; step++) {
		dns = true;
		for (i = 0, k = 0; i < n; i++) {
			struct js_transfer *t = &v[i].t;

			if (v[i].done_before || (int)t->step >= step)
				continue;
			if (step == JS_XFER_NEW_PUBLISHED && v[i].attrs[0] == '\0') {
				/* a resumed transfer: its attributes are the owner row's */
				rc = js_store_owner_get(e->store, t->dev_eui, &own);
				if (rc != DJ_EOK) {
					dns = false;
					snprintf(err, sizeof(err), "transfer failed: %s",
						 dj_strerror(rc));
					break;
				}
				snprintf(v[i].attrs, sizeof(v[i].attrs), "%s", own.attrs);
				js_owner_clear(&own);
			}
			if (step == JS_XFER_NEW_PUBLISHED)
				rc = e->pub.device(e->pub.arg, t->to_zone, t->dev_eui, v[i].attrs,
						   t->chain, t->chain_len, err, sizeof(err));
			else if (step == JS_XFER_OLD_REPLACED)
				rc = e->pub.moved(e->pub.arg, t->from_zone, t->dev_eui, t->to_zone,
						  err, sizeof(err));
			if (rc != DJ_EOK)
				break;
			ids[k++] = t->id;
		}
		if (rc == DJ_EOK)
			rc = e->pub.flush(e->pub.arg, err, sizeof(err));
		if (rc == DJ_EOK && k > 0) {
			dns = false;
			rc = js_store_transfer_advance(e->store, ids, k,
						       (enum js_transfer_step)step, e->actor);
			if (rc != DJ_EOK)
				snprintf(err, sizeof(err), "transfer failed: %s", dj_strerror(rc));
		}
		if (rc != DJ_EOK) {
			r->dns_failed = dns;
			rc = fault(r, rc, "%s", err);
			goto out;
		}
		for (i = 0; i < n; i++)
			if (!v[i].done_before && (int)v[i].t.step < step)
				v[i].t.step = (enum js_transfer_step)step;
		if (e->stepped != NULL && (rc = e->stepped((enum js_transfer_step)step,
							   e->stepped_arg)) != DJ_EOK) {
			rc = fault(r, rc, "stopped after step %d", step);
			goto out;
		}
	}
out:
	js_owner_clear(&own);
	free(ids);
	return rc;
}

/* Unfinished transfers, copied out of the store's walk. */
struct pending_list {
	struct xfer *v;
	size_t n, cap;
};

/* pending_add - js_store_transfer_foreach_pending's callback: keep a copy of \p t */
static int pending_add(const struct js_transfer *t, void *arg)
{
	struct pending_list *pl = arg;
	struct xfer *x;
	void *grown;

	if (pl->n == pl->cap) {
		pl->cap = pl->cap != 0 ? 2 * pl->cap : PENDING_GROW;
		grown = realloc(pl->v, pl->cap * sizeof(*pl->v));
		if (grown == NULL)
			return DJ_ENOMEM;
		pl->v = grown;
	}
	x = &pl->v[pl->n];
	memset(x, 0, sizeof(*x));
	x->t = *t;
	x->t.chain = malloc(t->chain_len > 0 ? t->chain_len : 1);
	if (x->t.chain == NULL)
		return DJ_ENOMEM;
	memcpy(x->t.chain, t->chain, t->chain_len);
	pl->n++;
	return DJ_EOK;
}

int dv_transfer_resume(const struct dv_xfer_env *e, struct dv_xfer_report *r)
{
	struct pending_list pl;
	size_t i;
	int rc;

	memset(r, 0, sizeof(*r));
	memset(&pl, 0, sizeof(pl));
	rc = js_store_transfer_foreach_pending(e->store, pending_add, &pl);
	if (rc != DJ_EOK) {
		rc = fault(r, rc, "cannot read the unfinished transfers: %s", dj_strerror(rc));
		goto out;
	}
	rc = run_steps(e, pl.v, pl.n, r);
	if (rc == DJ_EOK)
		r->resumed = pl.n;
out:
	for (i = 0; i < pl.n; i++)
		free(pl.v[i].t.chain);
	free(pl.v);
	return rc;
}

/* ---- verification ------------------------------------------------------------------------ */

/*
 * load_chain - the registry's owner row (*own, zeroed first) and decoded chain of a device, in
 * a *chain allocated here (NULL when that fails), and its DevEUI in hex for the messages; the
 * caller clears *own and frees *chain.
 */
static int load_chain(const struct dv_xfer_env *e, const uint8_t *dev_eui, struct js_owner *own,
		      struct dv_chain **chain, char eui[EUI_HEX], struct dv_xfer_report *r)
{
	int rc;

	memset(own, 0, sizeof(*own));
	dj_hex_format(dev_eui, LW_EUI_LEN, eui);
	*chain = calloc(1, sizeof(**chain));
	if (*chain == NULL)
		return fault(r, DJ_ENOMEM, "out of memory");
	rc = js_store_owner_get(e->store, dev_eui, own);
	if (rc == DJ_ENOENT)
		return verdict(r, DV_XFER_UNKNOWN, "device %s is not enrolled with an owner "
			       "(danejoin-devices enroll)", eui);
	if (rc != DJ_EOK)
		return fault(r, rc, "cannot read device %s: %s", eui, dj_strerror(rc));
	snprintf(r->owner, sizeof(r->owner), "%s", own->zone);
	if (dv_chain_decode(own->chain, own->chain_len, *chain) != DJ_EOK)
		return fault(r, DJ_EMALFORMED, "device %s: the stored chain is malformed", eui);
	return DJ_EOK;
}

/* append - \p l (verified) as the next link of \p chain: the transfer to record in \p x */
static int append(struct dv_chain *chain, const struct dv_link *l, const struct js_owner *own,
		  struct xfer *x, struct dv_xfer_report *r)
{
	char eui[EUI_HEX];
	int rc;

	dj_hex_format(l->dev_eui, LW_EUI_LEN, eui);
	if (chain->n >= DV_CHAIN_MAX)
		return verdict(r, DV_XFER_DENIED, "device %s: the chain is full (%d links)", eui,
			       DV_CHAIN_MAX);
	chain->links[chain->n++] = *l;
	memcpy(x->t.dev_eui, l->dev_eui, LW_EUI_LEN);
	x->t.serial = l->serial;
	memcpy(x->t.nonce, l->nonce, DV_NONCE_LEN);
	snprintf(x->t.from_zone, sizeof(x->t.from_zone), "%s", l->from_zone);
	snprintf(x->t.to_zone, sizeof(x->t.to_zone), "%s", l->to_zone);
	snprintf(x->attrs, sizeof(x->attrs), "%s", own->attrs);
	rc = dv_chain_encode(chain, &x->t.chain, &x->t.chain_len);
	if (rc != DJ_EOK)
		return fault(r, rc, "device %s: cannot encode the chain: %s", eui, dj_strerror(rc));
	return DJ_EOK;
}

/* key_verdict - the refusal for a signer zone whose key cannot be used */
static int key_verdict(struct dv_xfer_report *r, const char *eui, const char *zone,
		       enum dv_key_status ks)
{
	return verdict(r, ks == DV_KEY_TEMPFAIL ? DV_XFER_TEMPFAIL : DV_XFER_DENIED,
		       "device %s: zone %s %s", eui, zone, dv_key_status_text(ks));
}

/* verify_request - one signed request \p l against the registry and the DNS */
static int verify_request(const struct dv_xfer_env *e, const struct dv_link *l, struct xfer *x,
			  struct dv_xfer_report *r)
{
	struct dv_chain *chain = NULL;
	struct js_owner own;
	struct js_transfer prev;
	EVP_PKEY *key = NULL;
	enum dv_key_status ks;
	char eui[EUI_HEX], why[DV_XFER_WHY_MAX / 2];
	int rc;

	memset(&prev, 0, sizeof(prev));
	rc = load_chain(e, l->dev_eui, &own, &chain, eui, r);
	if (failed(rc, r))
		goto out;
	/* this very request, seen before? */
	rc = js_store_transfer_find(e->store, l->dev_eui, l->nonce, &prev);
	if (rc != DJ_EOK && rc != DJ_ENOENT) {
		rc = fault(r, rc, "cannot read the transfers of %s: %s", eui, dj_strerror(rc));
		goto out;
	}
	if (rc == DJ_EOK && prev.serial == l->serial && prev.step == JS_XFER_DONE &&
	    l->serial >= 1 && chain->n >= l->serial && l->serial == own.serial &&
	    CRYPTO_memcmp(chain->links[l->serial - 1].nonce, l->nonce, DV_NONCE_LEN) == 0) {
		x->done_before = true;	/* idempotent: already done, and still current */
		rc = DJ_EOK;
		goto out;
	}
	if (rc == DJ_EOK) {
		rc = verdict(r, DV_XFER_REPLAYED, "device %s: replayed request (its nonce was used "
			     "by transfer serial %llu)", eui, (unsigned long long)prev.serial);
		goto out;
	}
	if (l->serial <= own.serial) {
		rc = verdict(r, DV_XFER_STALE, "device %s: replayed or stale request: serial %llu, "
			     "but the device is at serial %llu", eui,
			     (unsigned long long)l->serial, (unsigned long long)own.serial);
		goto out;
	}
	if (!dv_chain_may_append(chain, l, why, sizeof(why))) {
		rc = verdict(r, DV_XFER_DENIED, "device %s: %s", eui, why);
		goto out;
	}
	ks = e->key_fn(l->signer_zone, e->key_arg, &key);
	if (ks != DV_KEY_OK) {
		rc = key_verdict(r, eui, l->signer_zone, ks);
		goto out;
	}
	rc = dv_link_verify(l, key);
	if (rc == DJ_EACCES) {
		rc = verdict(r, DV_XFER_DENIED, "device %s: the signature does not verify under "
			     "the _owner key of %s", eui, l->signer_zone);
		goto out;
	}
	if (rc != DJ_EOK) {
		rc = fault(r, rc, "device %s: cannot verify the signature: %s", eui,
			   dj_strerror(rc));
		goto out;
	}
	rc = append(chain, l, &own, x, r);
out:
	EVP_PKEY_free(key);
	js_transfer_clear(&prev);
	js_owner_clear(&own);
	free(chain);
	return rc;
}

/*
 * verify_code - one auth-code transfer: \p l holds the DevEUI, to_zone and rights; the rest
 * of the link comes from the registry, and the registry signs it with \p rkey.
 */
static int verify_code(const struct dv_xfer_env *e, struct dv_link *l, const char *code,
		       EVP_PKEY *rkey, struct xfer *x, struct dv_xfer_report *r)
{
	struct dv_chain *chain = NULL;
	struct js_owner own;
	struct js_authcode ac;
	enum dv_authcode_verdict av = DV_AUTHCODE_WRONG;
	enum dv_key_status ks;
	char eui[EUI_HEX], why[DV_XFER_WHY_MAX / 2];
	bool same;
	int rc;

	memset(&ac, 0, sizeof(ac));
	rc = load_chain(e, l->dev_eui, &own, &chain, eui, r);
	if (failed(rc, r))
		goto out;
	snprintf(l->from_zone, sizeof(l->from_zone), "%s", own.zone);
	memcpy(l->join_eui, chain->links[0].join_eui, LW_EUI_LEN);
	snprintf(l->signer_zone, sizeof(l->signer_zone), "%s", chain->links[0].from_zone);
	l->serial = own.serial + 1;
	l->not_before = js_store_now(e->store);
	l->auth = DV_AUTH_CODE;
	if (RAND_bytes(l->nonce, DV_NONCE_LEN) != 1) {
		rc = fault(r, DJ_ECRYPTO, "no random nonce: %s", dj_openssl_reason());
		goto out;
	}
	rc = js_store_authcode_get(e->store, l->dev_eui, &ac);
	if (rc == DJ_ENOENT && strcmp(own.zone, l->to_zone) == 0 &&
	    chain->links[chain->n - 1].auth == DV_AUTH_CODE) {
		/* a re-run: the code was used (and deleted) by the finished transfer */
		x->done_before = true;
		rc = DJ_EOK;
		goto out;
	}
	if (rc != DJ_EOK && rc != DJ_ENOENT) {
		rc = fault(r, rc, "cannot read the auth code of %s: %s", eui, dj_strerror(rc));
		goto out;
	}
	if (rc == DJ_EOK) {
		rc = dv_authcode_check(&ac, code, js_store_now(e->store), &av);
		if (rc != DJ_EOK) {
			rc = fault(r, rc, "cannot check the auth code of %s: %s", eui,
				   dj_strerror(rc));
			goto out;
		}
	}
	if (av != DV_AUTHCODE_OK) {
		rc = verdict(r, DV_XFER_DENIED, "device %s: %s", eui, av == DV_AUTHCODE_EXPIRED ?
			     "the auth code has expired" : "wrong auth code (or none is set)");
		goto out;
	}
	if (!dv_chain_may_append(chain, l, why, sizeof(why))) {
		rc = verdict(r, DV_XFER_DENIED, "device %s: %s", eui, why);
		goto out;
	}
	rc = dv_link_sign(l, rkey);
	if (rc != DJ_EOK) {
		rc = fault(r, rc, "device %s: cannot sign the link: %s", eui, dj_strerror(rc));
		goto out;
	}
	rc = append(chain, l, &own, x, r);
	if (failed(rc, r))
		goto out;
	/* our signature must be one the JS accepts: the registry key is the one in the DNS */
	rc = dv_ownerkey_matches(e->key_fn, e->key_arg, l->signer_zone, rkey, &ks, &same);
	if (rc == DJ_EOK && ks != DV_KEY_OK)
		rc = verdict(r, ks == DV_KEY_TEMPFAIL ? DV_XFER_TEMPFAIL : DV_XFER_DENIED,
			     "zone %s %s; refusing to sign with the registry key", l->signer_zone,
			     dv_key_status_text(ks));
	else if (rc == DJ_EOK && !same)
		rc = verdict(r, DV_XFER_DENIED, "the registry key is not the _owner key published "
			     "for %s", l->signer_zone);
out:
	OPENSSL_cleanse(&ac, sizeof(ac));
	js_owner_clear(&own);
	free(chain);
	return rc;
}

/* verify_item - item \p i of \p b into \p x; \p l is scratch space */
static int verify_item(const struct dv_xfer_env *e, const struct dv_xfer_batch *b, size_t i,
		       struct dv_link *l, struct xfer *x, struct dv_xfer_report *r)
{
	char buf[CODE_LINE_MAX], *comma;
	uint8_t *raw = NULL;
	size_t rawlen = 0;
	int rc;

	if (b->kind == DV_XFER_REQUESTS) {
		rc = dv_b64_decode(b->line[i], strlen(b->line[i]), &raw, &rawlen);
		if (rc == DJ_EOK)
			rc = dv_link_decode(raw, rawlen, l);
		free(raw);
		if (rc == DJ_ENOMEM)
			return fault(r, rc, "out of memory");
		if (rc != DJ_EOK || l->auth != DV_AUTH_SIGNED)
			return verdict(r, DV_XFER_MALFORMED, "not a signed transfer request "
				       "(base64 of a Link, danejoin-devices transfer-request)");
		return verify_request(e, l, x, r);
	}
	memset(l, 0, sizeof(*l));
	if (b->rights != NULL)
		*l = *b->rights;
	comma = NULL;
	if (strlen(b->line[i]) < sizeof(buf)) {
		strcpy(buf, b->line[i]);
		comma = strchr(buf, ',');
	}
	if (comma == NULL || (*comma = '\0', dj_hex_parse(buf, l->dev_eui, LW_EUI_LEN)) != DJ_EOK)
		rc = verdict(r, DV_XFER_MALFORMED, "expected dev_eui,auth_code");
	else if (b->to_zone == NULL || b->registry_key == NULL)
		rc = fault(r, DJ_EINVAL, "auth codes need a to_zone and a registry key");
	else {
		snprintf(l->to_zone, sizeof(l->to_zone), "%s", b->to_zone);
		rc = verify_code(e, l, comma + 1, b->registry_key, x, r);
	}
	OPENSSL_cleanse(buf, sizeof(buf));	/* the auth code */
	return rc;
}

/* begin_verdict - the report for a transfer that the store refused to record */
static int begin_verdict(const struct xfer *x, int rc, struct dv_xfer_report *r)
{
	char eui[EUI_HEX];

	dj_hex_format(x->t.dev_eui, LW_EUI_LEN, eui);
	switch (rc) {
	case DJ_EEXIST:
		return verdict(r, DV_XFER_REPLAYED, "device %s: serial %llu or this nonce was "
			       "already used: a replay", eui, (unsigned long long)x->t.serial);
	case DJ_ECONFLICT:
		return verdict(r, DV_XFER_DENIED, "device %s: its owner changed meanwhile, or "
			       "another transfer of it is unfinished", eui);
	case DJ_ENOENT:
		return verdict(r, DV_XFER_UNKNOWN, "device %s is not enrolled", eui);
	default:
		return fault(r, rc, "cannot record the transfers: %s", dj_strerror(rc));
	}
}

/* record - js_store_transfer_begin for the items of \p v not done before; ids into \p v */
static int record(const struct dv_xfer_env *e, struct xfer *v, size_t n,
		  struct dv_xfer_report *r)
{
	struct js_transfer *ts;
	int *results;
	size_t i, k, nt = 0;
	int rc;

	ts = calloc(n, sizeof(*ts));
	results = calloc(n, sizeof(*results));
	if (ts == NULL || results == NULL) {
		rc = fault(r, DJ_ENOMEM, "out of memory");
		goto out;
	}
	for (i = 0; i < n; i++)
		if (!v[i].done_before)
			ts[nt++] = v[i].t;
	r->done_before = n - nt;
	rc = DJ_EOK;
	if (nt == 0)
		goto out;
	rc = js_store_transfer_begin(e->store, ts, nt, e->actor, results);
	for (i = 0, k = 0; i < n; i++) {
		if (v[i].done_before)
			continue;
		if (rc != DJ_EOK && rc != DJ_ECONFLICT) {
			rc = begin_verdict(&v[i], rc, r);
			r->item = i;
			goto out;
		}
		if (results[k] != DJ_EOK) {
			rc = begin_verdict(&v[i], results[k], r);
			r->item = i;
			goto out;
		}
		v[i].t.id = ts[k].id;
		k++;
	}
	rc = DJ_EOK;
	r->transferred = nt;
out:
	free(ts);
	free(results);
	return rc;
}

int dv_transfer_apply(const struct dv_xfer_env *e, const struct dv_xfer_batch *b,
		      struct dv_xfer_report *r)
{
	struct xfer *v = NULL;
	struct dv_link *l = NULL;
	size_t i, k, resumed = r->resumed;
	int rc;

	memset(r, 0, sizeof(*r));
	r->resumed = resumed;
	if (b->n == 0)
		return DJ_EOK;
	v = calloc(b->n, sizeof(*v));
	l = calloc(1, sizeof(*l));
	if (v == NULL || l == NULL) {
		rc = fault(r, DJ_ENOMEM, "out of memory");
		goto out;
	}
	/* the whole batch before anything is recorded */
	for (i = 0; i < b->n; i++) {
		r->item = i;
		r->owner[0] = '\0';
		rc = verify_item(e, b, i, l, &v[i], r);
		if (failed(rc, r))
			goto out;
		for (k = 0; k < i && !v[i].done_before; k++)
			if (memcmp(v[k].t.dev_eui, v[i].t.dev_eui, LW_EUI_LEN) == 0) {
				rc = verdict(r, DV_XFER_MALFORMED, "the device is already in this "
					     "batch");
				goto out;
			}
	}
	r->owner[0] = '\0';
	rc = record(e, v, b->n, r);
	if (failed(rc, r))
		goto out;
	if (e->stepped != NULL && (rc = e->stepped(JS_XFER_RECORDED, e->stepped_arg)) != DJ_EOK) {
		rc = fault(r, rc, "stopped after step %d", JS_XFER_RECORDED);
		goto out;
	}
	rc = run_steps(e, v, b->n, r);
out:
	for (i = 0; v != NULL && i < b->n; i++)
		free(v[i].t.chain);
	free(v);
	if (l != NULL)
		OPENSSL_cleanse(l, sizeof(*l));
	free(l);
	return rc;
}

/* ---- requests ---------------------------------------------------------------------------- */

int dv_transfer_request(struct js_store *s, const uint8_t dev_eui[LW_EUI_LEN], const char *zone,
			const char *to_zone, const struct dv_link *rights, EVP_PKEY *key,
			char **b64, struct dv_xfer_report *r)
{
	const struct dv_xfer_env e = { .store = s };
	struct dv_chain *chain = NULL;
	struct js_owner own;
	struct dv_link l;
	char eui[EUI_HEX];
	uint8_t *enc = NULL;
	size_t elen = 0;
	int rc;

	*b64 = NULL;
	memset(r, 0, sizeof(*r));
	memset(&l, 0, sizeof(l));
	rc = load_chain(&e, dev_eui, &own, &chain, eui, r);
	if (failed(rc, r))
		goto out;
	if (strcmp(own.zone, zone) != 0) {
		rc = verdict(r, DV_XFER_DENIED, "device %s is owned by %s, not by %s", eui,
			     own.zone, zone);
		goto out;
	}
	if (rights != NULL)
		l = *rights;
	memcpy(l.dev_eui, dev_eui, LW_EUI_LEN);
	memcpy(l.join_eui, chain->links[0].join_eui, LW_EUI_LEN);
	snprintf(l.from_zone, sizeof(l.from_zone), "%s", zone);
	snprintf(l.to_zone, sizeof(l.to_zone), "%s", to_zone);
	snprintf(l.signer_zone, sizeof(l.signer_zone), "%s", zone);
	l.serial = own.serial + 1;
	l.not_before = js_store_now(s);
	l.auth = DV_AUTH_SIGNED;
	if (RAND_bytes(l.nonce, DV_NONCE_LEN) != 1) {
		rc = fault(r, DJ_ECRYPTO, "no random nonce: %s", dj_openssl_reason());
		goto out;
	}
	rc = dv_link_sign(&l, key);
	if (rc == DJ_EOK)
		rc = dv_link_encode(&l, &enc, &elen);
	if (rc == DJ_EOK)
		rc = dv_b64_encode(enc, elen, b64);
	if (rc != DJ_EOK)
		rc = fault(r, rc, "cannot sign the request for %s: %s", eui, dj_strerror(rc));
out:
	free(enc);
	js_owner_clear(&own);
	free(chain);
	return rc;
}

int dv_transfer_authcodes(struct js_store *s, const uint8_t (*dev_euis)[LW_EUI_LEN], size_t n,
			  const char *zone, int64_t expires_at,
			  char (*codes)[DV_AUTHCODE_LEN + 1], struct js_authcode *recs,
			  struct dv_xfer_report *r)
{
	struct js_owner own;
	char eui[EUI_HEX];
	size_t i;
	int rc = DJ_EOK;

	memset(r, 0, sizeof(*r));
	memset(&own, 0, sizeof(own));
	for (i = 0; i < n && rc == DJ_EOK && r->status == DV_XFER_OK; i++) {
		r->item = i;
		dj_hex_format(dev_euis[i], LW_EUI_LEN, eui);
		rc = js_store_owner_get(s, dev_euis[i], &own);
		if (rc == DJ_ENOENT) {
			rc = verdict(r, DV_XFER_UNKNOWN, "device %s is not enrolled with an owner",
				     eui);
			break;
		}
		if (rc != DJ_EOK) {
			rc = fault(r, rc, "cannot read device %s: %s", eui, dj_strerror(rc));
			break;
		}
		snprintf(r->owner, sizeof(r->owner), "%s", own.zone);
		js_owner_clear(&own);
		if (strcmp(r->owner, zone) != 0) {
			rc = verdict(r, DV_XFER_DENIED, "device %s is owned by %s, not by %s", eui,
				     r->owner, zone);
			break;
		}
		memcpy(recs[i].dev_eui, dev_euis[i], LW_EUI_LEN);
		rc = dv_authcode_generate(codes[i]);
		if (rc == DJ_EOK)
			rc = dv_authcode_seal(codes[i], expires_at, &recs[i]);
		if (rc != DJ_EOK)
			rc = fault(r, DJ_ECRYPTO, "cannot make an auth code: %s",
				   dj_openssl_reason());
	}
	return rc;
}
