/*
 * dv_transfer.h - ownership transfers: the verdicts on a batch of requests (signed by the
 *		   owner, or authorized by auth codes), and the crash-resumable step machine that
 *		   carries them out in the store and the DNS.
 *
 * SYNOPSIS
 *	struct dv_xfer_env e = { .store = s, .actor = "cli:ops", .key_fn = dv_keyring_get,
 *				 .key_arg = ring };
 *	dv_xfer_pub_dns(pub, &e.pub);			// or a fake publisher in tests
 *	struct dv_xfer_report r;
 *	dv_transfer_resume(&e, &r);			// what an earlier run left unfinished
 *	dv_transfer_apply(&e, &batch, &r);		// verify all, record all, then the steps
 *	if (r.status != DV_XFER_OK) puts(r.why);	// replayed, stale, denied, ...
 *
 * DESCRIPTION
 *	A transfer moves a device from its owner zone to another, by a link appended to its
 *	ownership chain (dv_chain.h). A signed request is a link signed by the current owner
 *	(danejoin-devices transfer-request); with an auth code the registry signs the link
 *	itself, with the key of the chain's first signer, after the code checks out.
 *
 *	Verdicts (STYLE.md rule 4: answers to the requester, not faults of ours), each with a
 *	reason in the report:
 *	  DV_XFER_ALREADY_DONE  this very transfer was completed earlier and is still current:
 *				nothing to do (a re-run of the same file is idempotent)
 *	  DV_XFER_REPLAYED	the request's nonce (or serial) was used by another transfer
 *	  DV_XFER_STALE		the request's serial is not above the device's
 *	  DV_XFER_DENIED	a rule refuses it: signature, _owner key, auth code, owner,
 *				chain continuity, a concurrent change of the device
 *	  DV_XFER_TEMPFAIL	an _owner key cannot be looked up now (try again)
 *	  DV_XFER_MALFORMED	the input is not a transfer (bad line, a device twice in a batch)
 *	  DV_XFER_UNKNOWN	the device is not enrolled
 *	A batch is verified whole before anything is recorded: one refusal refuses the batch.
 *
 *	The step machine (docs/danejoin-devices.md): a verified batch is recorded (step RECORDED,
 *	the new chain stored), then for the whole batch, each step recorded only after the DNS
 *	server acknowledged it: NEW_PUBLISHED (the new zone holds the device's records),
 *	OLD_REPLACED (the old name is a CNAME to the new one), DONE (the owner row changes, the
 *	auth code goes). Every DNS change is an idempotent replace, so a crash at any point is
 *	finished by dv_transfer_resume(), and a device is never half-transferred in the registry.
 *
 *	The DNS is reached through struct dv_xfer_pub and the owner keys through a dv_key_fn,
 *	so that tests drive the machine with a fake publisher and keys of their own; the store
 *	is js_store_owner.h's.
 */
#ifndef DJ_DEVICES_OWNERSHIP_DV_TRANSFER_H
#define DJ_DEVICES_OWNERSHIP_DV_TRANSFER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "common/dj_compiler.h"
#include "ownership/dv_authcode.h"
#include "ownership/dv_chain.h"
#include "store/js_store_owner.h"

#define DV_XFER_WHY_MAX 400	/* one-line reasons */
#define DV_XFER_ERR_MAX 256	/* a DNS update error */

enum dv_xfer_status {
	DV_XFER_OK = 0,
	DV_XFER_ALREADY_DONE,
	DV_XFER_REPLAYED,
	DV_XFER_STALE,
	DV_XFER_DENIED,
	DV_XFER_TEMPFAIL,
	DV_XFER_MALFORMED,
	DV_XFER_UNKNOWN,
};

/*
 * The DNS side of the steps. device: queue the new owner's records of a device (replace);
 * moved: queue the old name's CNAME to the new one (replace); flush: send what is queued and
 * wait until the server applied it. Each returns DJ_EOK or an error with a message in err:
 * DJ_EACCES (refused), DJ_EAGAIN (no answer), DJ_EINVAL (NOTZONE), DJ_EIO, DJ_ENOMEM.
 */
struct dv_xfer_pub {
	int (*device)(void *arg, const char *zone, const uint8_t dev_eui[LW_EUI_LEN],
		      const char *attrs, const uint8_t *chain, size_t chain_len, char *err,
		      size_t errlen);
	int (*moved)(void *arg, const char *old_zone, const uint8_t dev_eui[LW_EUI_LEN],
		     const char *new_zone, char *err, size_t errlen);
	int (*flush)(void *arg, char *err, size_t errlen);
	void *arg;
};

struct dv_pub;

/*! \brief The real publisher: \p p (dv_records.h, RFC 2136 with TSIG), borrowed. */
void dv_xfer_pub_dns(struct dv_pub *p, struct dv_xfer_pub *out);

/* Where the rules reach the world. Everything is borrowed. */
struct dv_xfer_env {
	struct js_store *store;
	const char *actor;		/* the audit actor ("cli:LOGIN") */
	dv_key_fn key_fn;		/* the _owner keys, from DNSSEC-secure answers only */
	void *key_arg;
	struct dv_xfer_pub pub;
	/* NULL, or called after each step was recorded for the batch; a non-zero return stops
	 * the machine there and is returned (tests: a crash right after step \p step) */
	int (*stepped)(enum js_transfer_step step, void *arg);
	void *stepped_arg;
};

enum dv_xfer_kind {
	DV_XFER_REQUESTS,	/* lines: base64 of a signed link (transfer-request) */
	DV_XFER_AUTHCODES,	/* lines: "dev_eui,auth_code" */
};

/* One batch. Lines and keys are borrowed; auth-code lines are only read. */
struct dv_xfer_batch {
	enum dv_xfer_kind kind;
	size_t n;
	const char *const *line;
	/* DV_XFER_AUTHCODES only */
	const char *to_zone;		/* normalized (dv_zone_normalize) */
	const struct dv_link *rights;	/* n_net_ids/net_ids and n_as_ids/as_ids of new links */
	EVP_PKEY *registry_key;		/* signs the new links: must be the _owner key of each
					 * chain's first signer */
};

/* What a call did. On a fault (a return other than DJ_EOK) status is DV_XFER_OK and why says
 * what failed; dns_failed then says the transfers are recorded but unfinished. */
struct dv_xfer_report {
	enum dv_xfer_status status;
	size_t item;			/* the batch index at fault (status != OK) */
	char why[DV_XFER_WHY_MAX];
	char owner[DV_ZONE_MAX];	/* the device's owner zone, when the verdict concerns it */
	bool dns_failed;		/* the publisher failed; why holds its error */
	size_t resumed;			/* unfinished transfers of earlier runs, now done */
	size_t transferred;		/* devices of the batch transferred now */
	size_t done_before;		/* devices of the batch already transferred earlier */
};

/*!
 * \brief Finish every transfer that an earlier run recorded and left unfinished.
 * \param r  filled (r->resumed counts the transfers finished).
 * \retval DJ_EOK, a publisher error (r->dns_failed), or a store fault (DJ_ESQL, DJ_ENOMEM)
 */
int dv_transfer_resume(const struct dv_xfer_env *e, struct dv_xfer_report *r) DJ_MUSTCHECK;

/*!
 * \brief Verify every item of \p b, then record them all and take them through the steps.
 *        Items that were done earlier count in r->done_before and change nothing.
 * \param r  filled: r->status DV_XFER_OK (all done) or the verdict on item r->item, in which
 *           case nothing was recorded. r->resumed is left as it was.
 * \retval DJ_EOK (see r->status), a publisher error (r->dns_failed: the batch is recorded,
 *         a resume finishes it), or a fault (DJ_ESQL, DJ_ENOMEM, DJ_ECRYPTO; DJ_EMALFORMED:
 *         a chain in the store does not decode)
 */
int dv_transfer_apply(const struct dv_xfer_env *e, const struct dv_xfer_batch *b,
		      struct dv_xfer_report *r) DJ_MUSTCHECK;

/*!
 * \brief A signed transfer request for \p dev_eui from its owner \p zone to \p to_zone: the
 *        next link of its chain in the store, with the rights of \p rights, signed by \p key.
 * \param b64  the request line (base64 of the link), malloc'd, on DJ_EOK with DV_XFER_OK only.
 * \param r    r->status: DV_XFER_OK, DV_XFER_UNKNOWN (not enrolled) or DV_XFER_DENIED (owned
 *             by r->owner, not by \p zone).
 * \retval DJ_EOK, DJ_ESQL, DJ_ENOMEM, DJ_ECRYPTO, DJ_EMALFORMED (the stored chain)
 */
int dv_transfer_request(struct js_store *s, const uint8_t dev_eui[LW_EUI_LEN], const char *zone,
			const char *to_zone, const struct dv_link *rights, EVP_PKEY *key,
			char **b64, struct dv_xfer_report *r) DJ_MUSTCHECK;

/*!
 * \brief New auth codes for \p n devices owned by \p zone, valid until \p expires_at: each
 *        generated into \p codes[i] (to hand out once) and sealed into \p recs[i] (to store:
 *        js_store_authcode_put). Wipe both after use.
 * \param r  r->status: DV_XFER_OK, DV_XFER_UNKNOWN (device r->item not enrolled) or
 *           DV_XFER_DENIED (device r->item owned by r->owner, not by \p zone).
 * \retval DJ_EOK, DJ_ESQL, DJ_ECRYPTO
 */
int dv_transfer_authcodes(struct js_store *s, const uint8_t (*dev_euis)[LW_EUI_LEN], size_t n,
			  const char *zone, int64_t expires_at,
			  char (*codes)[DV_AUTHCODE_LEN + 1], struct js_authcode *recs,
			  struct dv_xfer_report *r) DJ_MUSTCHECK;

/*! \brief "ok", "already done", "replayed", "stale", "denied", ... */
const char *dv_xfer_status_str(enum dv_xfer_status st);

#endif /* DJ_DEVICES_OWNERSHIP_DV_TRANSFER_H */
