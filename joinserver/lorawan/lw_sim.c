/*
 * lw_sim.c - end-device side of OTAA (TS001-1.0.x §6.2, TS001-1.1 §6.2).
 *
 * The device decides the MIC form from OptNeg only if it is a 1.1 device; a 1.0.x device always
 * uses the 1.0 form and treats DLSettings bit 7 as RFU. A 1.0.4 or 1.1 device refuses a JoinNonce
 * that is not above the last one it accepted (the replay protection that makes the join server's
 * JoinNonce counter matter).
 */
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "common/dj_err.h"
#include "lorawan/lw_sim.h"

#define DEVNONCE_MAX 0xffffu

const char *lw_sim_strerror(enum lw_sim_status st)
{
	switch (st) {
	case LW_SIM_OK: return "ok";
	case LW_SIM_NOT_EXPECTING: return "no request outstanding";
	case LW_SIM_BAD_FRAME: return "malformed Join-accept";
	case LW_SIM_BAD_MIC: return "Join-accept MIC check failed";
	case LW_SIM_OLD_JOINNONCE: return "JoinNonce not above the last accepted";
	case LW_SIM_OPTNEG: return "OptNeg set towards a LoRaWAN 1.0.x device";
	}
	return "unknown status";
}

int lw_sim_init(struct lw_crypto *cx, struct lw_sim_device *d, const uint8_t dev_eui[LW_EUI_LEN],
		const uint8_t join_eui[LW_EUI_LEN], enum lw_version version,
		const uint8_t app_key[LW_KEY_LEN], const uint8_t *nwk_key)
{
	int ret;

	if ((version >= LW_V1_1) != (nwk_key != NULL))
		return DJ_EINVAL;
	memset(d, 0, sizeof(*d));
	memcpy(d->dev_eui, dev_eui, LW_EUI_LEN);
	memcpy(d->join_eui, join_eui, LW_EUI_LEN);
	d->version = version;
	lw_key_set(&d->app_key, app_key);
	lw_key_set(&d->nwk_key, nwk_key != NULL ? nwk_key : app_key);
	d->join_nonce_last = -1;
	if (version >= LW_V1_1) {
		ret = lw_keys_derive_js(cx, &d->nwk_key, dev_eui, &d->js_int_key, &d->js_enc_key);
		lw_crypto_forget(cx);
		if (ret != DJ_EOK) {
			lw_sim_wipe(d);
			return ret;
		}
	}
	return DJ_EOK;
}

/* rand_used - whether \p nonce is one of the device's last LW_SIM_RAND_HIST random DevNonces */
static bool rand_used(const struct lw_sim_device *d, uint16_t nonce)
{
	unsigned n = d->rand_n < LW_SIM_RAND_HIST ? d->rand_n : LW_SIM_RAND_HIST;

	for (unsigned i = 0; i < n; i++)
		if (d->rand_used[i] == nonce)
			return true;
	return false;
}

int lw_sim_join_request(struct lw_crypto *cx, struct lw_sim_device *d, uint8_t *phy, size_t *len)
{
	struct lw_request r;
	uint8_t rnd[2];
	int ret;

	memset(&r, 0, sizeof(r));
	r.type = LW_REQ_JOIN;
	memcpy(r.join_eui, d->join_eui, LW_EUI_LEN);
	memcpy(r.dev_eui, d->dev_eui, LW_EUI_LEN);
	if (lw_version_devnonce_is_counter(d->version)) {
		if (d->dev_nonce_next > DEVNONCE_MAX)
			return DJ_ERANGE;
		r.nonce = (uint16_t)d->dev_nonce_next++;
	} else {
		do {
			if (RAND_bytes(rnd, sizeof(rnd)) != 1)
				return DJ_ECRYPTO;
			r.nonce = (uint16_t)(rnd[0] << 8 | rnd[1]);
		} while (rand_used(d, r.nonce));
		d->rand_used[d->rand_n++ % LW_SIM_RAND_HIST] = r.nonce;
	}
	ret = lw_frame_build_request(cx, &d->nwk_key, &r);
	lw_crypto_forget(cx);
	if (ret != DJ_EOK)
		return ret;
	memcpy(phy, r.phy, r.phy_len);
	*len = r.phy_len;
	d->pending = true;
	d->pending_type = LW_REQ_JOIN;
	d->pending_nonce = r.nonce;
	return DJ_EOK;
}

int lw_sim_rejoin_request(struct lw_crypto *cx, struct lw_sim_device *d, enum lw_req_type type,
			  uint8_t *phy, size_t *len)
{
	struct lw_request r;
	const struct lw_key *key;
	int ret;

	if (d->version < LW_V1_1 || type == LW_REQ_JOIN)
		return DJ_EINVAL;
	memset(&r, 0, sizeof(r));
	r.type = type;
	memcpy(r.dev_eui, d->dev_eui, LW_EUI_LEN);
	if (type == LW_REQ_REJOIN1) {
		memcpy(r.join_eui, d->join_eui, LW_EUI_LEN);
		r.nonce = d->rjcount1;
		key = &d->js_int_key;
	} else {
		if (!d->joined || !d->opt_neg)
			return DJ_EINVAL;
		memcpy(r.net_id, d->net_id, LW_NETID_LEN);
		r.nonce = d->rjcount0;
		key = &d->keys.s_nwk_s_int_key;
	}
	ret = lw_frame_build_request(cx, key, &r);
	lw_crypto_forget(cx);
	if (ret != DJ_EOK)
		return ret;
	if (type == LW_REQ_REJOIN1)
		d->rjcount1++;
	else
		d->rjcount0++;
	memcpy(phy, r.phy, r.phy_len);
	*len = r.phy_len;
	d->pending = true;
	d->pending_type = type;
	d->pending_nonce = r.nonce;
	return DJ_EOK;
}

int lw_sim_handle_accept(struct lw_crypto *cx, struct lw_sim_device *d, const uint8_t *phy,
			 size_t len, enum lw_sim_status *st)
{
	struct lw_accept ja;
	struct lw_accept_ctx actx;
	struct lw_session_keys keys;
	enum lw_frame_status fst;
	uint8_t mic[LW_MIC_LEN], want[LW_MIC_LEN];
	const struct lw_key *enc_key;
	bool opt_neg;
	int ret;

	memset(&keys, 0, sizeof(keys));
	*st = LW_SIM_OK;
	if (!d->pending) {
		*st = LW_SIM_NOT_EXPECTING;
		return DJ_EOK;
	}
	enc_key = d->pending_type == LW_REQ_JOIN ? &d->nwk_key : &d->js_enc_key;
	ret = lw_frame_open_accept(cx, enc_key, phy, len, &ja, mic, &fst);
	if (ret == DJ_EMALFORMED) {
		*st = LW_SIM_BAD_FRAME;
		ret = DJ_EOK;
		goto out;
	}
	if (ret != DJ_EOK)
		goto out;
	opt_neg = (ja.dl_settings & LW_DL_OPTNEG) != 0 && d->version >= LW_V1_1;
	if (d->pending_type != LW_REQ_JOIN && !opt_neg) {
		*st = LW_SIM_OPTNEG;	/* a 1.1 rejoin is always answered in 1.1 form */
		goto out;
	}
	if (opt_neg) {
		actx.join_req_type = d->pending_type == LW_REQ_JOIN ? LW_JOINREQTYPE_JOIN
			: d->pending_type == LW_REQ_REJOIN0 ? 0 : d->pending_type == LW_REQ_REJOIN1 ? 1 : 2;
		memcpy(actx.join_eui, d->join_eui, LW_EUI_LEN);
		actx.nonce = d->pending_nonce;
		ret = lw_frame_accept_mic(cx, &d->js_int_key, &ja, &actx, want);
	} else {
		ret = lw_frame_accept_mic(cx, &d->nwk_key, &ja, NULL, want);
	}
	if (ret != DJ_EOK)
		goto out;
	if (CRYPTO_memcmp(mic, want, LW_MIC_LEN) != 0) {
		*st = LW_SIM_BAD_MIC;
		goto out;
	}
	if (lw_version_devnonce_is_counter(d->version) && d->join_nonce_last >= 0 &&
	    ja.join_nonce <= d->join_nonce_last) {
		*st = LW_SIM_OLD_JOINNONCE;
		goto out;
	}
	if (opt_neg)
		ret = lw_keys_derive_session_11(cx, &d->nwk_key, &d->app_key, ja.join_nonce,
						d->join_eui, d->pending_nonce, &keys);
	else
		ret = lw_keys_derive_session_10(cx, &d->nwk_key, ja.join_nonce, ja.net_id,
						d->pending_nonce, &keys);
	if (ret != DJ_EOK)
		goto out;
	lw_session_keys_wipe(&d->keys);
	d->keys = keys;
	d->joined = true;
	d->opt_neg = opt_neg;
	d->join_nonce = ja.join_nonce;
	d->join_nonce_last = ja.join_nonce;
	memcpy(d->net_id, ja.net_id, LW_NETID_LEN);
	memcpy(d->dev_addr, ja.dev_addr, LW_DEVADDR_LEN);
	d->rjcount0 = 0;	/* TS001-1.1 §6.2.4.4: reset with every new session */
	d->pending = false;
out:
	lw_session_keys_wipe(&keys);
	lw_crypto_forget(cx);
	return ret;
}

void lw_sim_wipe(struct lw_sim_device *d)
{
	if (d != NULL)
		OPENSSL_cleanse(d, sizeof(*d));
}
