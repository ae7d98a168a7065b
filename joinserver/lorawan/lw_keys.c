/*
 * lw_keys.c - LoRaWAN session and join-server key derivation.
 *
 * The prefixes are those of TS001-1.1 §6.1.1.3 (JSIntKey 0x06, JSEncKey 0x05) and §6.2.5
 * (FNwkSIntKey 0x01, AppSKey 0x02, SNwkSIntKey 0x03, NwkSEncKey 0x04; in 1.0, NwkSKey 0x01 and
 * AppSKey 0x02). All multi-byte fields go in on-air (little-endian) order; pad16 is zeros.
 */
#include <string.h>

#include <openssl/crypto.h>

#include "common/dj_compiler.h"
#include "common/dj_err.h"
#include "lorawan/lw_keys.h"

#define PFX_NWK_S_KEY 0x01
#define PFX_F_NWK_S_INT 0x01
#define PFX_APP_S_KEY 0x02
#define PFX_S_NWK_S_INT 0x03
#define PFX_NWK_S_ENC 0x04
#define PFX_JS_ENC 0x05
#define PFX_JS_INT 0x06
#define DERIVE_MAX 4		/* most keys one derivation table makes */
#define NONCE3_AT 1		/* JoinNonce, 3 bytes, after the prefix (§6.1.1.3, §6.2.5) */

/* One key derived from a root key: the block's first byte, and where the result goes. */
struct derivation {
	uint8_t prefix;
	const struct lw_key *root;
	struct lw_key *out;
};

/* derive_each - out = aes128_encrypt(root, prefix | blk[1..15]) for each row. Consecutive rows
 * under the same root go through one lw_crypto_ecb() call of several blocks: one EVP_Cipher()
 * call instead of one per key (docs/performance.md, step 11). Stops at the first failure; the
 * outputs are then the caller's to wipe. */
static int derive_each(struct lw_crypto *cx, const uint8_t blk[LW_BLOCK_LEN],
		       const struct derivation *d, size_t n)
{
	uint8_t in[DERIVE_MAX][LW_BLOCK_LEN], raw[DERIVE_MAX][LW_BLOCK_LEN];
	size_t i = 0, k;
	int ret = DJ_EOK;

	if (n > DERIVE_MAX)
		return DJ_EINVAL;
	while (i < n && ret == DJ_EOK) {
		for (k = 0; i + k < n && d[i + k].root == d[i].root; k++) {
			memcpy(in[k], blk, LW_BLOCK_LEN);
			in[k][0] = d[i + k].prefix;
		}
		ret = lw_crypto_ecb(cx, d[i].root, 1, in[0], raw[0], k * LW_BLOCK_LEN);
		for (size_t j = 0; ret == DJ_EOK && j < k; j++)
			lw_key_set(d[i + j].out, raw[j]);
		i += k;
	}
	OPENSSL_cleanse(raw, sizeof(raw));
	return ret;
}

/* put_join_nonce - the 24-bit JoinNonce, little-endian, after the prefix */
static void put_join_nonce(uint8_t blk[LW_BLOCK_LEN], uint32_t join_nonce)
{
	blk[NONCE3_AT] = (uint8_t)join_nonce;
	blk[NONCE3_AT + 1] = (uint8_t)(join_nonce >> 8);
	blk[NONCE3_AT + 2] = (uint8_t)(join_nonce >> 16);
}

int lw_keys_derive_js(struct lw_crypto *cx, const struct lw_key *nwk_key,
		      const uint8_t dev_eui[LW_EUI_LEN], struct lw_key *js_int_key,
		      struct lw_key *js_enc_key)
{
	uint8_t blk[LW_BLOCK_LEN] = { 0 };
	struct lw_key ik, ek;
	const struct derivation d[] = { { PFX_JS_INT, nwk_key, &ik }, { PFX_JS_ENC, nwk_key, &ek } };
	int ret;

	lw_reverse(dev_eui, blk + 1, LW_EUI_LEN);
	ret = derive_each(cx, blk, d, DJ_ARRAY_LEN(d));
	if (ret != DJ_EOK)
		goto out;
	*js_int_key = ik;
	*js_enc_key = ek;
out:
	lw_key_wipe(&ik);
	lw_key_wipe(&ek);
	return ret;
}

int lw_keys_derive_session_11(struct lw_crypto *cx, const struct lw_key *nwk_key,
			      const struct lw_key *app_key, uint32_t join_nonce,
			      const uint8_t join_eui[LW_EUI_LEN], uint16_t nonce,
			      struct lw_session_keys *out)
{
	uint8_t blk[LW_BLOCK_LEN] = { 0 };
	struct lw_session_keys k;
	const struct derivation d[] = {
		{ PFX_F_NWK_S_INT, nwk_key, &k.f_nwk_s_int_key },
		{ PFX_S_NWK_S_INT, nwk_key, &k.s_nwk_s_int_key },
		{ PFX_NWK_S_ENC, nwk_key, &k.nwk_s_enc_key },
		{ PFX_APP_S_KEY, app_key, &k.app_s_key },
	};
	int ret;

	memset(&k, 0, sizeof(k));
	k.v11 = true;
	put_join_nonce(blk, join_nonce);
	lw_reverse(join_eui, blk + 4, LW_EUI_LEN);
	blk[12] = (uint8_t)nonce;
	blk[13] = (uint8_t)(nonce >> 8);
	ret = derive_each(cx, blk, d, DJ_ARRAY_LEN(d));
	if (ret != DJ_EOK)
		goto out;
	*out = k;
out:
	lw_session_keys_wipe(&k);
	return ret;
}

int lw_keys_derive_session_10(struct lw_crypto *cx, const struct lw_key *key, uint32_t join_nonce,
			      const uint8_t net_id[LW_NETID_LEN], uint16_t dev_nonce,
			      struct lw_session_keys *out)
{
	uint8_t blk[LW_BLOCK_LEN] = { 0 };
	struct lw_session_keys k;
	const struct derivation d[] = {
		{ PFX_NWK_S_KEY, key, &k.f_nwk_s_int_key },
		{ PFX_APP_S_KEY, key, &k.app_s_key },
	};
	int ret;

	memset(&k, 0, sizeof(k));
	put_join_nonce(blk, join_nonce);
	lw_reverse(net_id, blk + 4, LW_NETID_LEN);
	blk[7] = (uint8_t)dev_nonce;
	blk[8] = (uint8_t)(dev_nonce >> 8);
	ret = derive_each(cx, blk, d, DJ_ARRAY_LEN(d));
	if (ret != DJ_EOK)
		goto out;
	k.s_nwk_s_int_key = k.f_nwk_s_int_key;
	k.nwk_s_enc_key = k.f_nwk_s_int_key;
	*out = k;
out:
	lw_session_keys_wipe(&k);
	return ret;
}

void lw_session_keys_wipe(struct lw_session_keys *keys)
{
	if (keys != NULL)
		OPENSSL_cleanse(keys, sizeof(*keys));
}
