/*
 * test_lw_keys.c - unit tests of lw_keys: LoRaWAN 1.0 and 1.1 session keys and JSIntKey/JSEncKey.
 *
 * Fixtures are the published vectors V4 (The Things Stack pkg/crypto/key_derivation_test.go) and
 * V5 (ChirpStack lrwn/src/keys.rs) of the project's vector sheet, copied here. EUIs and NetIDs
 * are in printed order (most significant byte first), nonces are integers.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "common/dj_err.h"
#include "dj_test.h"
#include "lorawan/lw_crypto.h"
#include "lorawan/lw_frame.h"
#include "lorawan/lw_keys.h"

/* ---- helpers -------------------------------------------------------------------------------- */

/* expect_key - the key's bytes equal want_hex */
static void expect_key(const struct lw_key *key, const char *want_hex, const char *what,
		       const char *row)
{
	uint8_t raw[LW_KEY_LEN], want[LW_KEY_LEN];

	unhex_exact(want_hex, want, LW_KEY_LEN);
	lw_key_export(key, raw);
	if (memcmp(raw, want, LW_KEY_LEN) != 0) {
		print_error("%s: %s differs from %s\n", row, what, want_hex);
		fail();
	}
	/* A derived key is a live key (non-zero serial), usable by lw_crypto. */
	assert_int_not_equal(key->priv_serial, 0);
}

/* ---- fixtures ------------------------------------------------------------------------------- */

#define V4_ROOT "BEC499C69E9C939E413B663961636C61"
#define V5_NWK "01020304050607080102030405060708"
#define ZERO_KEY "00000000000000000000000000000000"

/* LoRaWAN 1.1 session keys (OptNeg set). */
static const struct {
	const char *name;
	const char *nwk_key, *app_key;
	uint32_t join_nonce;
	const char *join_eui;
	uint16_t dev_nonce;
	const char *app_s, *f_nwk_s_int, *s_nwk_s_int, *nwk_s_enc;
} v11[] = {
	{ "V4 1.1", V4_ROOT, V4_ROOT, 0xae3b1c, "0000001223224242", 0x7369,
	  "B035CCE24E4A040EB5CECBF21724412D", "379084E7CE22FF191BFF4B77536F2AA3",
	  "63C59309D53485BC5164DBF71627AEB9", "CE07A009A3970AC0519A099ED53E550B" },
	{ "V5 1.1", V5_NWK, ZERO_KEY, 65536, "0807060504030201", 258,
	  "01621215d1ca08febf0c602cc2ad90fa", "537f8aae896c79e015d102d06286354e",
	  "589498993092cfdb5fd2e02ac7510bf1", "9898283c4f66eb6c6fd5165882046c40" },
};

/* LoRaWAN 1.0 session keys. */
static const struct {
	const char *name;
	const char *key;
	uint32_t join_nonce;
	const char *net_id;
	uint16_t dev_nonce;
	const char *app_s, *nwk_s;
} v10[] = {
	{ "V4 1.0", V4_ROOT, 0xae3b1c, "020101", 0x7369, "8C1E0543A229088DE6F84E74BB46BD62",
	  "0DB924EE6AF90698E05FC7CE48303C01" },
	{ "V5 1.0", V5_NWK, 65536, "010203", 258, "927b9c911183cffe4cb2ff4b75545f6d",
	  "df53c35f3034ccced0ff354c70de04df" },
};

/* JSIntKey and JSEncKey. */
static const struct {
	const char *name;
	const char *nwk_key;
	const char *dev_eui;
	const char *js_int, *js_enc;
} vjs[] = {
	{ "V4 JS keys", V4_ROOT, "0042004213424341", "CB8E9EE114C3FB5CE472A5AA13AB1855",
	  "BB711EEFB9829B4A75866F8616BACD6D" },
};

/* ---- tests ---------------------------------------------------------------------------------- */

static void run_v11(struct lw_crypto *cx, size_t i)
{
	struct lw_key nwk, app;
	struct lw_session_keys k;
	uint8_t join_eui[LW_EUI_LEN];

	key_from_hex(&nwk, v11[i].nwk_key);
	key_from_hex(&app, v11[i].app_key);
	unhex_exact(v11[i].join_eui, join_eui, LW_EUI_LEN);
	memset(&k, 0, sizeof(k));
	assert_int_equal(lw_keys_derive_session_11(cx, &nwk, &app, v11[i].join_nonce, join_eui,
						   v11[i].dev_nonce, &k), DJ_EOK);
	assert_true(k.v11);
	expect_key(&k.app_s_key, v11[i].app_s, "AppSKey", v11[i].name);
	expect_key(&k.f_nwk_s_int_key, v11[i].f_nwk_s_int, "FNwkSIntKey", v11[i].name);
	expect_key(&k.s_nwk_s_int_key, v11[i].s_nwk_s_int, "SNwkSIntKey", v11[i].name);
	expect_key(&k.nwk_s_enc_key, v11[i].nwk_s_enc, "NwkSEncKey", v11[i].name);
	lw_session_keys_wipe(&k);
	lw_key_wipe(&nwk);
	lw_key_wipe(&app);
}

static void run_v10(struct lw_crypto *cx, size_t i)
{
	struct lw_key root;
	struct lw_session_keys k;
	uint8_t net_id[LW_NETID_LEN];

	key_from_hex(&root, v10[i].key);
	unhex_exact(v10[i].net_id, net_id, LW_NETID_LEN);
	memset(&k, 0xee, sizeof(k));
	assert_int_equal(lw_keys_derive_session_10(cx, &root, v10[i].join_nonce, net_id,
						   v10[i].dev_nonce, &k), DJ_EOK);
	assert_false(k.v11);
	expect_key(&k.app_s_key, v10[i].app_s, "AppSKey", v10[i].name);
	/* 1.0: the three network keys all equal NwkSKey (TS001-1.1 §6.2.5.2). */
	expect_key(&k.f_nwk_s_int_key, v10[i].nwk_s, "FNwkSIntKey (NwkSKey)", v10[i].name);
	expect_key(&k.s_nwk_s_int_key, v10[i].nwk_s, "SNwkSIntKey (NwkSKey)", v10[i].name);
	expect_key(&k.nwk_s_enc_key, v10[i].nwk_s, "NwkSEncKey (NwkSKey)", v10[i].name);
	assert_true(lw_key_equal(&k.f_nwk_s_int_key, &k.s_nwk_s_int_key));
	assert_true(lw_key_equal(&k.f_nwk_s_int_key, &k.nwk_s_enc_key));
	assert_false(lw_key_equal(&k.f_nwk_s_int_key, &k.app_s_key));
	lw_session_keys_wipe(&k);
	lw_key_wipe(&root);
}

static void run_js(struct lw_crypto *cx, size_t i)
{
	struct lw_key nwk, ik, ek;
	uint8_t dev_eui[LW_EUI_LEN];

	key_from_hex(&nwk, vjs[i].nwk_key);
	unhex_exact(vjs[i].dev_eui, dev_eui, LW_EUI_LEN);
	assert_int_equal(lw_keys_derive_js(cx, &nwk, dev_eui, &ik, &ek), DJ_EOK);
	expect_key(&ik, vjs[i].js_int, "JSIntKey", vjs[i].name);
	expect_key(&ek, vjs[i].js_enc, "JSEncKey", vjs[i].name);
	lw_key_wipe(&ik);
	lw_key_wipe(&ek);
	lw_key_wipe(&nwk);
}

static void test_session_11(void **state)
{
	for (size_t i = 0; i < DJ_ARRAY_LEN(v11); i++)
		run_v11(*state, i);
}

static void test_session_10(void **state)
{
	for (size_t i = 0; i < DJ_ARRAY_LEN(v10); i++)
		run_v10(*state, i);
}

static void test_js_keys(void **state)
{
	for (size_t i = 0; i < DJ_ARRAY_LEN(vjs); i++)
		run_js(*state, i);
}

/* All vectors on one context, interleaved and repeated: the key-schedule cache must not leak. */
static void test_interleaved_on_one_context(void **state)
{
	struct lw_crypto *cx = *state;

	for (int pass = 0; pass < 3; pass++) {
		for (size_t i = DJ_ARRAY_LEN(v11); i-- > 0;)
			run_v11(cx, i);
		for (size_t i = 0; i < DJ_ARRAY_LEN(vjs); i++)
			run_js(cx, i);
		for (size_t i = 0; i < DJ_ARRAY_LEN(v10); i++)
			run_v10(cx, i);
		if (pass == 1)
			lw_crypto_forget(cx);
	}
}

/* A wiped root key (serial 0) is refused. */
static void test_wiped_root_refused(void **state)
{
	struct lw_crypto *cx = *state;
	struct lw_key root, ik, ek;
	struct lw_session_keys k;
	uint8_t eui[LW_EUI_LEN] = { 0 }, net_id[LW_NETID_LEN] = { 0 };

	key_from_hex(&root, V4_ROOT);
	lw_key_wipe(&root);
	assert_int_not_equal(lw_keys_derive_session_11(cx, &root, &root, 1, eui, 1, &k), DJ_EOK);
	assert_int_not_equal(lw_keys_derive_session_10(cx, &root, 1, net_id, 1, &k), DJ_EOK);
	assert_int_not_equal(lw_keys_derive_js(cx, &root, eui, &ik, &ek), DJ_EOK);
}

static void test_session_keys_wipe(void **state)
{
	static const uint8_t zero[sizeof(struct lw_session_keys)];
	struct lw_crypto *cx = *state;
	struct lw_key root;
	struct lw_session_keys k;
	uint8_t eui[LW_EUI_LEN];

	key_from_hex(&root, V4_ROOT);
	unhex_exact("0000001223224242", eui, LW_EUI_LEN);
	assert_int_equal(lw_keys_derive_session_11(cx, &root, &root, 0xae3b1c, eui, 0x7369, &k),
			 DJ_EOK);
	lw_session_keys_wipe(&k);
	assert_memory_equal(&k, zero, sizeof(k));
	lw_session_keys_wipe(NULL);
	lw_key_wipe(&root);
}

DJ_TEST_MAIN(
	DJ_CX_TEST(test_session_11),
	DJ_CX_TEST(test_session_10),
	DJ_CX_TEST(test_js_keys),
	DJ_CX_TEST(test_interleaved_on_one_context),
	DJ_CX_TEST(test_wiped_root_refused),
	DJ_CX_TEST(test_session_keys_wipe))
