/*
 * lw_keys.h - LoRaWAN key derivation (TS001-1.0.x §6.2.5, TS001-1.1 §6.1.1.3, §6.2.5).
 *
 * DESCRIPTION
 *	Every derived key is aes128_encrypt(root, prefix | fields | pad16). These functions take keys
 *	as struct lw_key handles and produce handles; they never see a key store.
 *
 *	LoRaWAN 1.0 (and 1.1 devices behind a 1.0 network, OptNeg clear) derive NwkSKey and AppSKey;
 *	in that case the three 1.1 network keys all equal NwkSKey (TS001-1.1 §6.2.5.2), which is how
 *	struct lw_session_keys reports them.
 */
#ifndef DJ_JOINSERVER_LW_KEYS_H
#define DJ_JOINSERVER_LW_KEYS_H

#include <stdbool.h>
#include <stdint.h>

#include "common/dj_compiler.h"
#include "lorawan/lw_crypto.h"
#include "lorawan/lw_frame.h"

struct lw_session_keys {
	bool v11;			/* 1.1 derivation (four distinct keys) */
	struct lw_key app_s_key;
	struct lw_key f_nwk_s_int_key;	/* NwkSKey when !v11 */
	struct lw_key s_nwk_s_int_key;	/* NwkSKey when !v11 */
	struct lw_key nwk_s_enc_key;	/* NwkSKey when !v11 */
};

/*!
 * \brief JSIntKey and JSEncKey from NwkKey and DevEUI (TS001-1.1 §6.1.1.3).
 * \retval DJ_EOK, DJ_ECRYPTO
 */
int lw_keys_derive_js(struct lw_crypto *cx, const struct lw_key *nwk_key,
		      const uint8_t dev_eui[LW_EUI_LEN], struct lw_key *js_int_key,
		      struct lw_key *js_enc_key) DJ_MUSTCHECK;

/*!
 * \brief LoRaWAN 1.1 session keys (OptNeg set): network keys under NwkKey, AppSKey under AppKey,
 *        over JoinNonce | JoinEUI | nonce, where nonce is the DevNonce (or RJcount for a rejoin).
 */
int lw_keys_derive_session_11(struct lw_crypto *cx, const struct lw_key *nwk_key,
			      const struct lw_key *app_key, uint32_t join_nonce,
			      const uint8_t join_eui[LW_EUI_LEN], uint16_t nonce,
			      struct lw_session_keys *out) DJ_MUSTCHECK;

/*!
 * \brief LoRaWAN 1.0 session keys: NwkSKey and AppSKey under \p key (AppKey of a 1.0 device,
 *        NwkKey of a 1.1 device with OptNeg clear) over JoinNonce | NetID | DevNonce.
 */
int lw_keys_derive_session_10(struct lw_crypto *cx, const struct lw_key *key, uint32_t join_nonce,
			      const uint8_t net_id[LW_NETID_LEN], uint16_t dev_nonce,
			      struct lw_session_keys *out) DJ_MUSTCHECK;

/*! \brief Wipe all four keys (NULL is accepted). */
void lw_session_keys_wipe(struct lw_session_keys *keys);

#endif /* DJ_JOINSERVER_LW_KEYS_H */
