/*
 * test_bi_msg.c - TS002 Backend Interfaces JSON: full JoinReqs (1.0 and 1.1), encode/parse round
 * trips of the answers, a table of malformed requests (each naming its field and carrying the
 * Result code the answer needs), the interop facts of vectors.md, and bi_msg_answer_init.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "dj_test.h"

#include <jansson.h>
#include <openssl/crypto.h>

#include "bi/bi_msg.h"
#include "common/dj_err.h"

/* V1 of vectors.md: a 1.0 Join-request, 23 bytes on air */
#define V1_PHY "0001010101010101010202020202020202030309b97b32"
/* V2 of vectors.md: an encrypted Join-accept, 17 bytes */
#define V2_PHY "2023cf335489aae3183c0be0baa8dee5f3"
#define CFLIST "184f84e85684b85e84886684586e8400"

#define JOINREQ_1_0                                                                            \
	"{\"ProtocolVersion\":\"1.0\",\"SenderID\":\"000001\",\"ReceiverID\":\"0101010101010101\"," \
	"\"TransactionID\":42,\"MessageType\":\"JoinReq\",\"MACVersion\":\"1.0.2\","          \
	"\"PHYPayload\":\"" V1_PHY "\",\"DevEUI\":\"0202020202020202\",\"DevAddr\":\"01020304\"," \
	"\"DLSettings\":\"00\",\"RxDelay\":1}"

#define JOINREQ_1_1                                                                            \
	"{\"ProtocolVersion\":\"1.1\",\"SenderID\":\"000001\",\"ReceiverID\":\"0101010101010101\"," \
	"\"TransactionID\":4294967295,\"MessageType\":\"JoinReq\",\"SenderNSID\":\"ns-a.example\"," \
	"\"SenderToken\":\"aabbcc\",\"ReceiverToken\":\"01\",\"MACVersion\":\"1.1\","            \
	"\"PHYPayload\":\"" V1_PHY "\",\"DevEUI\":\"0202020202020202\",\"DevAddr\":\"01020304\"," \
	"\"DLSettings\":\"80\",\"RxDelay\":15,\"CFList\":\"" CFLIST "\"}"

/* parse_ok - parse text, insisting on success */
static void parse_ok(const char *text, struct bi_msg *m)
{
	char err[BI_ERR_MAX] = "";
	int ret = bi_msg_parse(text, strlen(text), m, err, sizeof(err));

	if (ret != DJ_EOK)
		print_error("parse failed: %s\n", err);
	assert_int_equal(ret, DJ_EOK);
	assert_string_equal(err, "");
}

/* with_field - base with key set to the JSON text val (or removed when val is NULL) */
static char *with_field(const char *base, const char *key, const char *val)
{
	json_t *o = json_loads(base, 0, NULL), *v;
	char *s;

	assert_non_null(o);
	if (val == NULL) {
		assert_int_equal(json_object_del(o, key), 0);
	} else {
		v = json_loads(val, JSON_DECODE_ANY, NULL);
		assert_non_null(v);
		assert_int_equal(json_object_set_new(o, key, v), 0);
	}
	s = json_dumps(o, JSON_COMPACT);
	assert_non_null(s);
	json_decref(o);
	return s;
}

static void test_joinreq_1_0(void **state)
{
	struct bi_msg m;
	uint8_t phy[LW_JOINREQ_LEN], eui[LW_EUI_LEN];

	(void)state;
	parse_ok(JOINREQ_1_0, &m);
	unhex_exact(V1_PHY, phy, sizeof(phy));
	unhex_exact("0202020202020202", eui, sizeof(eui));
	assert_int_equal(m.proto, BI_PROTO_1_0);
	assert_int_equal(m.type, BI_JOIN_REQ);
	assert_string_equal(m.sender_id, "000001");
	assert_string_equal(m.receiver_id, "0101010101010101");
	assert_int_equal(m.transaction_id, 42);
	assert_false(m.has_sender_token);
	assert_false(m.has_receiver_token);
	assert_false(m.has_sender_ns_id);
	assert_false(m.has_receiver_ns_id);
	assert_int_equal(m.mac_version, LW_V1_0_2);
	assert_int_equal(m.phy_len, LW_JOINREQ_LEN);
	assert_memory_equal(m.phy, phy, LW_JOINREQ_LEN);
	assert_true(m.has_dev_eui);
	assert_memory_equal(m.dev_eui, eui, LW_EUI_LEN);
	assert_memory_equal(m.dev_addr, "\x01\x02\x03\x04", LW_DEVADDR_LEN);
	assert_int_equal(m.dl_settings, 0);
	assert_int_equal(m.rx_delay, 1);
	assert_false(m.has_cflist);
	assert_int_equal(m.result, BI_SUCCESS);
}

static void test_joinreq_1_1(void **state)
{
	struct bi_msg m;
	uint8_t cf[LW_CFLIST_LEN];

	(void)state;
	parse_ok(JOINREQ_1_1, &m);
	unhex_exact(CFLIST, cf, sizeof(cf));
	assert_int_equal(m.proto, BI_PROTO_1_1);
	assert_int_equal(m.transaction_id, 4294967295u);
	assert_true(m.has_sender_ns_id);
	assert_string_equal(m.sender_ns_id, "ns-a.example");
	assert_false(m.has_receiver_ns_id);
	assert_true(m.has_sender_token);
	assert_int_equal(m.sender_token_len, 3);
	assert_memory_equal(m.sender_token, "\xaa\xbb\xcc", 3);
	assert_true(m.has_receiver_token);
	assert_int_equal(m.receiver_token_len, 1);
	assert_int_equal(m.receiver_token[0], 0x01);
	assert_int_equal(m.mac_version, LW_V1_1);
	assert_int_equal(m.dl_settings, LW_DL_OPTNEG);
	assert_int_equal(m.rx_delay, 15);
	assert_true(m.has_cflist);
	assert_memory_equal(m.cflist, cf, LW_CFLIST_LEN);
}

/* A RejoinReq takes 19 or 24 bytes; 23 (a Join-request's size) is a FrameSizeError. */
static void test_rejoinreq_sizes(void **state)
{
	static const char *const ok[] = { "\"c0" "00" "020101" "0202020202020202" "0000"
					  "01020304\"",
					  "\"c0" "01" "0101010101010101" "0202020202020202" "0000"
					  "01020304\"" };
	struct bi_msg m;
	char err[BI_ERR_MAX];
	char *base, *s;

	(void)state;
	base = with_field(JOINREQ_1_0, "MessageType", "\"RejoinReq\"");
	for (size_t i = 0; i < DJ_ARRAY_LEN(ok); i++) {
		s = with_field(base, "PHYPayload", ok[i]);
		parse_ok(s, &m);
		assert_int_equal(m.type, BI_REJOIN_REQ);
		assert_int_equal(m.phy_len, i == 0 ? LW_REJOIN02_LEN : LW_REJOIN1_LEN);
		free(s);
	}
	assert_int_equal(bi_msg_parse(base, strlen(base), &m, err, sizeof(err)), DJ_EMALFORMED);
	assert_int_equal(m.result, BI_FRAME_SIZE_ERROR);
	assert_non_null(strstr(err, "PHYPayload"));
	free(base);
}

struct bad_case {
	const char *raw;	/* the whole body, or NULL to change one field of JOINREQ_1_0 */
	const char *key;
	const char *val;	/* JSON text; NULL removes the field */
	enum bi_result result;
	const char *field;	/* what err must name */
};

static const struct bad_case bad_cases[] = {
	{ "{\"ProtocolVersion\":", NULL, NULL, BI_MALFORMED_REQUEST, "(body)" },
	{ "not json", NULL, NULL, BI_MALFORMED_REQUEST, "(body)" },
	{ "[" JOINREQ_1_0 "]", NULL, NULL, BI_MALFORMED_REQUEST, "not a JSON object" },
	{ "\"JoinReq\"", NULL, NULL, BI_MALFORMED_REQUEST, "(body)" },
	{ "{\"ProtocolVersion\":\"1.0\",\"TransactionID\":1,\"TransactionID\":2}", NULL, NULL,
	  BI_MALFORMED_REQUEST, "duplicate key" },
	{ NULL, "MessageType", NULL, BI_MALFORMED_REQUEST, "MessageType" },
	{ NULL, "MessageType", "\"FooReq\"", BI_MALFORMED_REQUEST, "MessageType" },
	{ NULL, "MessageType", "7", BI_MALFORMED_REQUEST, "MessageType" },
	{ NULL, "TransactionID", "\"42\"", BI_MALFORMED_REQUEST, "TransactionID" },
	{ NULL, "TransactionID", "-1", BI_MALFORMED_REQUEST, "TransactionID" },
	{ NULL, "TransactionID", "4294967296", BI_MALFORMED_REQUEST, "TransactionID" },
	{ NULL, "TransactionID", "42.0", BI_MALFORMED_REQUEST, "TransactionID" },
	{ NULL, "TransactionID", NULL, BI_MALFORMED_REQUEST, "TransactionID" },
	{ NULL, "DevEUI", "\"02020202020202\"", BI_MALFORMED_REQUEST, "DevEUI" },
	{ NULL, "DevEUI", "\"020202020202020g\"", BI_MALFORMED_REQUEST, "DevEUI" },
	{ NULL, "DevEUI", "\"020202020202020\"", BI_MALFORMED_REQUEST, "DevEUI" },
	{ NULL, "DevEUI", "2", BI_MALFORMED_REQUEST, "DevEUI" },
	{ NULL, "DevEUI", NULL, BI_MALFORMED_REQUEST, "DevEUI" },
	{ NULL, "PHYPayload", "\"0001010101010101010202020202020202030309b97b\"",
	  BI_FRAME_SIZE_ERROR, "PHYPayload" },
	{ NULL, "PHYPayload", "\"" V1_PHY "00\"", BI_FRAME_SIZE_ERROR, "PHYPayload" },
	{ NULL, "PHYPayload", "\"" V1_PHY V1_PHY V1_PHY "\"", BI_FRAME_SIZE_ERROR, "PHYPayload" },
	{ NULL, "PHYPayload", "\"\"", BI_FRAME_SIZE_ERROR, "PHYPayload" },
	{ NULL, "PHYPayload", NULL, BI_MALFORMED_REQUEST, "PHYPayload" },
	{ NULL, "DLSettings", "\"0000\"", BI_MALFORMED_REQUEST, "DLSettings" },
	{ NULL, "DLSettings", "0", BI_MALFORMED_REQUEST, "DLSettings" },
	{ NULL, "RxDelay", "16", BI_MALFORMED_REQUEST, "RxDelay" },
	{ NULL, "RxDelay", "\"1\"", BI_MALFORMED_REQUEST, "RxDelay" },
	{ NULL, "RxDelay", NULL, BI_MALFORMED_REQUEST, "RxDelay" },
	{ NULL, "DevAddr", NULL, BI_MALFORMED_REQUEST, "DevAddr" },
	{ NULL, "DevAddr", "\"0102030405\"", BI_MALFORMED_REQUEST, "DevAddr" },
	{ NULL, "CFList", "\"184f84e85684b85e84886684586e84\"", BI_MALFORMED_REQUEST, "CFList" },
	{ NULL, "MACVersion", "\"1.2\"", BI_MALFORMED_REQUEST, "MACVersion" },
	{ NULL, "MACVersion", NULL, BI_MALFORMED_REQUEST, "MACVersion" },
	{ NULL, "ProtocolVersion", "\"2.0\"", BI_INVALID_PROTOCOL_VERSION, "ProtocolVersion" },
	{ NULL, "ProtocolVersion", "\"1.0.0\"", BI_INVALID_PROTOCOL_VERSION, "ProtocolVersion" },
	{ NULL, "ProtocolVersion", "1.0", BI_MALFORMED_REQUEST, "ProtocolVersion" },
	{ NULL, "ProtocolVersion", "\"1.1\"", BI_MALFORMED_REQUEST, "SenderNSID" },
	{ NULL, "SenderNSID", "\"ns-a\"", BI_MALFORMED_REQUEST, "SenderNSID" },
	{ NULL, "SenderID",
	  "\"0123456789012345678901234567890123456789012345678901234567890123\"",
	  BI_MALFORMED_REQUEST, "SenderID" },
	/* jansson refuses \u0000 without JSON_ALLOW_NUL; bi_msg checks again for itself */
	{ "{\"ProtocolVersion\":\"1.0\",\"SenderID\":\"a\\u0000b\"}", NULL, NULL,
	  BI_MALFORMED_REQUEST, "(body)" },
	{ NULL, "SenderID", NULL, BI_MALFORMED_REQUEST, "SenderID" },
	{ NULL, "ReceiverID", "[]", BI_MALFORMED_REQUEST, "ReceiverID" },
	{ NULL, "SenderToken", "\"abc\"", BI_MALFORMED_REQUEST, "SenderToken" },
	{ NULL, "ReceiverToken", "\"zz\"", BI_MALFORMED_REQUEST, "ReceiverToken" },
};

static void test_malformed_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < DJ_ARRAY_LEN(bad_cases); i++) {
		const struct bad_case *c = &bad_cases[i];
		char *text = c->raw != NULL ? strdup(c->raw) : with_field(JOINREQ_1_0, c->key, c->val);
		char err[BI_ERR_MAX] = "";
		struct bi_msg m;
		int ret;

		assert_non_null(text);
		ret = bi_msg_parse(text, strlen(text), &m, err, sizeof(err));
		if (ret != DJ_EMALFORMED || m.result != c->result || strstr(err, c->field) == NULL)
			print_error("case %zu (%s): ret %d result %d err \"%s\"\n", i,
				    c->raw != NULL ? c->raw : c->key, ret, (int)m.result, err);
		assert_int_equal(ret, DJ_EMALFORMED);
		assert_int_equal(m.result, c->result);
		assert_non_null(strstr(err, c->field));
		/* the header is read first and kept: the answer echoes the TransactionID */
		if (c->raw == NULL && strcmp(c->key, "TransactionID") != 0)
			assert_int_equal(m.transaction_id, 42);
		free(text);
	}
}

/* Every valid header field is kept, whichever field failed, even one written after them. */
static void test_header_kept_on_failure(void **state)
{
	static const char bad_proto[] =
		"{\"ProtocolVersion\":\"2.0\",\"MessageType\":\"JoinReq\",\"SenderID\":\"s\","
		"\"ReceiverID\":\"r\",\"SenderToken\":\"0a0b\",\"TransactionID\":77}";
	static const char bad_sender[] =
		"{\"ProtocolVersion\":\"1.1\",\"SenderID\":7,\"ReceiverID\":\"r\","
		"\"TransactionID\":78,\"MessageType\":\"HomeNSReq\",\"SenderNSID\":\"n\"}";
	char err[BI_ERR_MAX];
	struct bi_msg m;
	char *s;

	(void)state;
	assert_int_equal(bi_msg_parse(bad_proto, strlen(bad_proto), &m, err, sizeof(err)),
			 DJ_EMALFORMED);
	assert_int_equal(m.result, BI_INVALID_PROTOCOL_VERSION);
	assert_int_equal(m.transaction_id, 77);
	assert_string_equal(m.sender_id, "s");
	assert_string_equal(m.receiver_id, "r");
	assert_int_equal(m.type, BI_JOIN_REQ);
	assert_true(m.has_sender_token);
	assert_int_equal(m.sender_token_len, 2);
	assert_non_null(strstr(err, "ProtocolVersion"));

	/* the first failure is the one reported; later header fields are still read */
	assert_int_equal(bi_msg_parse(bad_sender, strlen(bad_sender), &m, err, sizeof(err)),
			 DJ_EMALFORMED);
	assert_non_null(strstr(err, "SenderID"));
	assert_int_equal(m.proto, BI_PROTO_1_1);
	assert_int_equal(m.transaction_id, 78);
	assert_int_equal(m.type, BI_HOMENS_REQ);
	assert_string_equal(m.receiver_id, "r");

	/* a body failure: the whole header is there */
	s = with_field(JOINREQ_1_1, "DevAddr", "\"01\"");
	assert_int_equal(bi_msg_parse(s, strlen(s), &m, err, sizeof(err)), DJ_EMALFORMED);
	assert_int_equal(m.result, BI_MALFORMED_REQUEST);
	assert_int_equal(m.transaction_id, 4294967295u);
	assert_string_equal(m.sender_ns_id, "ns-a.example");
	assert_int_equal(m.receiver_token[0], 0x01);
	free(s);
}

/* A tiny error buffer is filled safely; a NULL one is accepted. */
static void test_err_buffer(void **state)
{
	char err[8];
	struct bi_msg m;
	char *s = with_field(JOINREQ_1_0, "RxDelay", "99");

	(void)state;
	assert_int_equal(bi_msg_parse(s, strlen(s), &m, err, sizeof(err)), DJ_EMALFORMED);
	assert_int_equal(strlen(err), sizeof(err) - 1);
	assert_int_equal(bi_msg_parse(s, strlen(s), &m, NULL, 0), DJ_EMALFORMED);
	free(s);
}

/* fill_env - a present envelope of n bytes starting at seed */
static void fill_env(struct bi_key_envelope *e, const char *label, uint8_t seed, size_t n)
{
	e->present = true;
	strcpy(e->kek_label, label);
	for (size_t i = 0; i < n; i++)
		e->aes_key[i] = (uint8_t)(seed + i);
	e->aes_key_len = n;
}

/* msg_head - a zeroed message with only its header: version, type, sender and receiver */
static void msg_head(struct bi_msg *a, enum bi_proto proto, enum bi_msg_type type,
		     const char *sender, const char *receiver)
{
	memset(a, 0, sizeof(*a));
	a->proto = proto;
	a->type = type;
	strcpy(a->sender_id, sender);
	strcpy(a->receiver_id, receiver);
}

/* same_as_jansson - the encoder writes JSON itself: jansson, reading it and writing it again
 * compact, must give the very same text (member order, separators, string escapes) */
static void same_as_jansson(const char *out, size_t len)
{
	json_t *j = json_loadb(out, len, 0, NULL);
	char *again;

	assert_non_null(j);
	again = json_dumps(j, JSON_COMPACT);
	assert_non_null(again);
	assert_string_equal(again, out);
	free(again);
	json_decref(j);
}

/* round_trip - encode a, parse it back, and insist on an identical struct */
static char *round_trip(const struct bi_msg *a)
{
	struct bi_msg b;
	char *out = NULL;
	size_t len = 0;

	assert_int_equal(bi_msg_encode(a, &out, &len), DJ_EOK);
	assert_non_null(out);
	assert_int_equal(strlen(out), len);
	assert_null(strstr(out, ": "));	/* compact */
	assert_null(strstr(out, ", "));
	parse_ok(out, &b);
	assert_memory_equal(a, &b, sizeof(b));
	bi_msg_wipe(&b);
	same_as_jansson(out, len);
	return out;
}

static void test_round_trip_join_ans(void **state)
{
	struct bi_msg a;
	char *out;

	(void)state;
	msg_head(&a, BI_PROTO_1_1, BI_JOIN_ANS, "0101010101010101", "000001");
	a.transaction_id = 3000000000u;
	a.has_receiver_token = true;
	a.receiver_token_len = 3;
	memcpy(a.receiver_token, "\xaa\xbb\xcc", 3);
	a.has_receiver_ns_id = true;
	strcpy(a.receiver_ns_id, "ns-a.example");
	a.phy_len = unhex(V2_PHY, a.phy, sizeof(a.phy));
	a.result = BI_SUCCESS;
	strcpy(a.description, "ok");
	a.has_lifetime = true;
	a.lifetime = 86400;
	fill_env(&a.s_nwk_s_int_key, "ns-kek", 0x10, 24);
	fill_env(&a.f_nwk_s_int_key, "ns-kek", 0x30, 24);
	fill_env(&a.nwk_s_enc_key, "ns-kek", 0x50, 24);
	fill_env(&a.app_s_key, "as-kek", 0x70, 24);
	a.session_key_id_len = 4;
	memcpy(a.session_key_id, "\xde\xad\xbe\xef", 4);
	out = round_trip(&a);
	assert_non_null(strstr(out, "\"MessageType\":\"JoinAns\""));
	assert_non_null(strstr(out, "\"ResultCode\":\"Success\""));
	assert_null(strstr(out, "NwkSKey"));		/* absent envelopes are not sent */
	assert_null(strstr(out, "DevEUI"));		/* not a JoinAns field */
	assert_null(strstr(out, "MACVersion"));
	OPENSSL_clear_free(out, strlen(out));

	/* a 1.0 session: NwkSKey and a plaintext AppSKey, no Lifetime, a failure Result */
	msg_head(&a, BI_PROTO_1_0, BI_REJOIN_ANS, "js", "ns");
	a.phy_len = unhex(V2_PHY "00000000000000000000000000000000", a.phy, sizeof(a.phy));
	assert_int_equal(a.phy_len, LW_JOINACC_CF_LEN);
	fill_env(&a.nwk_s_key, "k", 0x01, 24);
	fill_env(&a.app_s_key, "", 0x02, 16);
	a.result = BI_UNKNOWN_DEVEUI;
	out = round_trip(&a);
	assert_null(strstr(out, "Lifetime"));
	assert_null(strstr(out, "Description"));
	assert_non_null(strstr(out, "\"KEKLabel\":\"\""));
	OPENSSL_clear_free(out, strlen(out));
	bi_msg_wipe(&a);
}

static void test_round_trip_appskey_homens(void **state)
{
	struct bi_msg a;
	char *out;

	(void)state;
	msg_head(&a, BI_PROTO_1_0, BI_APPSKEY_ANS, "0101010101010101", "as.example");
	a.transaction_id = 5;
	a.has_dev_eui = true;
	memcpy(a.dev_eui, "\x02\x02\x02\x02\x02\x02\x02\x02", LW_EUI_LEN);
	fill_env(&a.app_s_key, "as-kek", 0x99, 40);
	a.session_key_id_len = BI_SESSION_KEY_ID_MAX;
	memset(a.session_key_id, 0x5a, BI_SESSION_KEY_ID_MAX);
	out = round_trip(&a);
	OPENSSL_clear_free(out, strlen(out));

	msg_head(&a, BI_PROTO_1_1, BI_HOMENS_ANS, "0101010101010101", "000001");
	a.has_sender_ns_id = true;
	strcpy(a.sender_ns_id, "js-ns");
	a.has_h_net_id = true;
	memcpy(a.h_net_id, "\x00\x00\x13", LW_NETID_LEN);
	a.has_hns_id = true;
	strcpy(a.hns_id, "hns.example");
	a.result = BI_SUCCESS;
	out = round_trip(&a);
	assert_non_null(strstr(out, "\"HNetID\":\"000013\""));
	free(out);
}

/* Requests round-trip too (the client side of danejoin sends them). */
static void test_round_trip_requests(void **state)
{
	struct bi_msg a;
	char *out;

	(void)state;
	parse_ok(JOINREQ_1_1, &a);
	out = round_trip(&a);
	assert_null(strstr(out, "Result"));
	free(out);
	parse_ok(JOINREQ_1_0, &a);
	out = round_trip(&a);
	assert_null(strstr(out, "SenderNSID"));
	free(out);

	msg_head(&a, BI_PROTO_1_0, BI_APPSKEY_REQ, "as", "js");
	a.has_dev_eui = true;
	a.session_key_id_len = 1;
	out = round_trip(&a);
	free(out);
}

/* text fields are escaped as JSON requires (and as jansson did); text that is not UTF-8 is
 * refused, not sent */
static void test_encode_escapes(void **state)
{
	static const char *const bad[] = { "\xc3(", "\xc0\xaf", "\xed\xa0\x80", "\xe2\x82",
					   "\xf4\x90\x80\x80", "\xff", "ok\x80" };
	struct bi_msg a;
	char *out = NULL;
	size_t len = 0;

	(void)state;
	msg_head(&a, BI_PROTO_1_1, BI_HOMENS_ANS, "0101010101010101", "ns \"q\" \\ /");
	a.result = BI_OTHER;
	strcpy(a.description, "tab\there\nnl\r\b\f \x01\x1f\x7f \xc3\xa9 \xe2\x82\xac "
	       "\xf0\x9f\x98\x80 \"quoted\" back\\slash");
	out = round_trip(&a);
	assert_non_null(strstr(out, "\\t"));
	assert_non_null(strstr(out, "\\u0001"));
	assert_non_null(strstr(out, "\\u001F"));
	assert_non_null(strstr(out, "\\\"quoted\\\""));
	free(out);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		strcpy(a.description, bad[i]);
		out = NULL;
		assert_int_equal(bi_msg_encode(&a, &out, &len), DJ_EINVAL);
		assert_null(out);
	}
}

static void test_encode_refusals(void **state)
{
	struct bi_msg a;
	char *out = NULL, *first;
	size_t len = 0, first_len;

	(void)state;
	memset(&a, 0, sizeof(a));
	a.type = BI_JOIN_ANS;
	a.result = BI_RESULT_COUNT;
	assert_int_equal(bi_msg_encode(&a, &out, &len), DJ_EINVAL);
	a.result = BI_SUCCESS;
	a.phy_len = LW_PHY_MAX + 1;
	assert_int_equal(bi_msg_encode(&a, &out, &len), DJ_EINVAL);
	a.phy_len = 0;
	memset(a.sender_id, 'x', sizeof(a.sender_id));	/* no NUL */
	assert_int_equal(bi_msg_encode(&a, &out, &len), DJ_EINVAL);
	a.sender_id[0] = '\0';
	fill_env(&a.app_s_key, "k", 0, 24);
	a.app_s_key.aes_key_len = BI_AESKEY_MAX + 1;
	assert_int_equal(bi_msg_encode(&a, &out, &len), DJ_EINVAL);
	a.app_s_key.aes_key_len = 24;
	a.type = (enum bi_msg_type)99;
	assert_int_equal(bi_msg_encode(&a, &out, &len), DJ_EINVAL);
	a.type = BI_JOIN_REQ;
	a.phy_len = LW_JOINREQ_LEN;
	a.rx_delay = 16;
	assert_int_equal(bi_msg_encode(&a, &out, &len), DJ_EINVAL);
	assert_null(out);
	/* texts checked once, before they are written: a KEKLabel, a Description, an ID with no
	 * NUL in their room or not UTF-8 (each fails, then the next one is tried alone) */
	a.type = BI_JOIN_ANS;
	a.phy_len = 0;
	assert_int_equal(bi_msg_encode(&a, &out, &len), DJ_EOK);
	first = out;
	first_len = len;
	out = NULL;
	memset(a.app_s_key.kek_label, 'k', sizeof(a.app_s_key.kek_label));
	assert_int_equal(bi_msg_encode(&a, &out, &len), DJ_EINVAL);
	strcpy(a.app_s_key.kek_label, "k\xc3(");
	assert_int_equal(bi_msg_encode(&a, &out, &len), DJ_EINVAL);
	strcpy(a.app_s_key.kek_label, "k");
	memset(a.description, 'd', sizeof(a.description));
	assert_int_equal(bi_msg_encode(&a, &out, &len), DJ_EINVAL);
	a.description[0] = '\0';
	strcpy(a.receiver_id, "\xff");
	assert_int_equal(bi_msg_encode(&a, &out, &len), DJ_EINVAL);
	a.receiver_id[0] = '\0';
	/* the thread's generator, left mid-object by each refusal, starts afresh: the same text */
	assert_int_equal(bi_msg_encode(&a, &out, &len), DJ_EOK);
	assert_int_equal(len, first_len);
	assert_memory_equal(out, first, len);
	OPENSSL_clear_free(out, len);
	OPENSSL_clear_free(first, first_len);
	out = NULL;
	bi_msg_wipe(&a);
}

/* vectors.md interop facts: hex forms, MACVersion spellings, UnkownReceiver. */
static void test_interop_hex_and_versions(void **state)
{
	static const struct {
		const char *text;
		enum lw_version v;
	} versions[] = { { "\"1.0\"", LW_V1_0_0 },   { "\"1.0.0\"", LW_V1_0_0 },
			 { "\"1.0.1\"", LW_V1_0_1 }, { "\"1.0.3\"", LW_V1_0_3 },
			 { "\"1.0.4\"", LW_V1_0_4 }, { "\"1.1\"", LW_V1_1 },
			 { "\"1.1.0\"", LW_V1_1 } };
	struct bi_msg m;
	char *s, *t;
	uint8_t phy[LW_JOINREQ_LEN];

	(void)state;
	s = with_field(JOINREQ_1_0, "DevEUI", "\"0xABCDEF0123456789\"");
	t = with_field(s, "PHYPayload", "\"0X0001010101010101010202020202020202030309B97B32\"");
	free(s);
	s = with_field(t, "DevAddr", "\"0xaBcD0102\"");
	free(t);
	parse_ok(s, &m);
	free(s);
	assert_memory_equal(m.dev_eui, "\xab\xcd\xef\x01\x23\x45\x67\x89", LW_EUI_LEN);
	unhex_exact(V1_PHY, phy, sizeof(phy));
	assert_memory_equal(m.phy, phy, sizeof(phy));
	assert_memory_equal(m.dev_addr, "\xab\xcd\x01\x02", LW_DEVADDR_LEN);

	for (size_t i = 0; i < DJ_ARRAY_LEN(versions); i++) {
		s = with_field(JOINREQ_1_0, "MACVersion", versions[i].text);
		parse_ok(s, &m);
		assert_int_equal(m.mac_version, versions[i].v);
		free(s);
	}
}

/* The Things Stack writes a missing CFList as "" and ends its body with a newline: no CFList,
 * and the rest parsed; a CFList of another wrong length is still refused */
static void test_interop_tts_empty_cflist(void **state)
{
	struct bi_msg m;
	char err[BI_ERR_MAX];
	char *s, *t;
	size_t n;

	(void)state;
	s = with_field(JOINREQ_1_1, "CFList", "\"\"");
	n = strlen(s);
	t = malloc(n + 2);
	assert_non_null(t);
	memcpy(t, s, n);
	t[n] = '\n';
	t[n + 1] = '\0';
	parse_ok(t, &m);
	assert_false(m.has_cflist);
	assert_int_equal(m.rx_delay, 15);
	free(t);
	free(s);
	s = with_field(JOINREQ_1_1, "CFList", "\"00\"");
	assert_int_equal(bi_msg_parse(s, strlen(s), &m, err, sizeof(err)), DJ_EMALFORMED);
	assert_non_null(strstr(err, "CFList"));
	free(s);
}

static void test_interop_unknown_receiver(void **state)
{
	static const char *const spellings[] = { "UnkownReceiver", "UnknownReceiver" };
	char text[512];
	struct bi_msg m, a;
	char *out;
	size_t len;

	(void)state;
	for (size_t i = 0; i < DJ_ARRAY_LEN(spellings); i++) {
		snprintf(text, sizeof(text),
			 "{\"ProtocolVersion\":\"1.0\",\"SenderID\":\"js\",\"ReceiverID\":\"ns\","
			 "\"TransactionID\":9,\"MessageType\":\"JoinAns\","
			 "\"Result\":{\"ResultCode\":\"%s\",\"Description\":\"who?\"}}",
			 spellings[i]);
		parse_ok(text, &m);
		assert_int_equal(m.result, BI_UNKNOWN_RECEIVER);
		assert_string_equal(m.description, "who?");
	}
	assert_string_equal(bi_result_str(BI_UNKNOWN_RECEIVER, BI_PROTO_1_0), "UnkownReceiver");
	assert_string_equal(bi_result_str(BI_UNKNOWN_RECEIVER, BI_PROTO_1_1), "UnknownReceiver");
	assert_string_equal(bi_result_str(BI_MALFORMED_REQUEST, BI_PROTO_1_0), "MalformedRequest");
	assert_string_equal(bi_result_str(BI_FRAME_SIZE_ERROR, BI_PROTO_1_1), "FrameSizeError");
	assert_string_equal(bi_result_str(BI_RESULT_COUNT, BI_PROTO_1_1), "Other");

	/* the answer is sent in the request's spelling */
	parse_ok(JOINREQ_1_0, &m);
	bi_msg_answer_init(&m, BI_JOIN_ANS, &a);
	a.result = BI_UNKNOWN_RECEIVER;
	assert_int_equal(bi_msg_encode(&a, &out, &len), DJ_EOK);
	assert_non_null(strstr(out, "\"ResultCode\":\"UnkownReceiver\""));
	free(out);
	parse_ok(JOINREQ_1_1, &m);
	bi_msg_answer_init(&m, BI_JOIN_ANS, &a);
	a.result = BI_UNKNOWN_RECEIVER;
	assert_int_equal(bi_msg_encode(&a, &out, &len), DJ_EOK);
	assert_non_null(strstr(out, "\"ResultCode\":\"UnknownReceiver\""));
	free(out);
}

static void test_unknown_fields_ignored(void **state)
{
	struct bi_msg m;
	char *s, *t;

	(void)state;
	s = with_field(JOINREQ_1_0, "VSExtension",
		       "{\"VendorID\":\"0a0b0c\",\"Object\":{\"x\":[1,2,{\"y\":null}]}}");
	t = with_field(s, "SomethingNew", "[true, 1.5, \"z\"]");
	parse_ok(t, &m);
	assert_int_equal(m.transaction_id, 42);
	free(s);
	free(t);
	/* a VSExtension of any type is ignored, too */
	s = with_field(JOINREQ_1_0, "VSExtension", "\"opaque\"");
	parse_ok(s, &m);
	free(s);
}

/* replace - base with the first from replaced by to (the test's own buffer, to free) */
static char *replace(const char *base, const char *from, const char *to)
{
	const char *at = strstr(base, from);
	size_t n = strlen(base) - strlen(from) + strlen(to) + 1;
	char *s = malloc(n);

	assert_non_null(at);
	assert_non_null(s);
	snprintf(s, n, "%.*s%s%s", (int)(at - base), base, to, at + strlen(from));
	return s;
}

/* nested - JOINREQ_1_0 with an unknown member nested depth arrays deep */
static char *nested(int depth)
{
	size_t n = strlen(JOINREQ_1_0) + 2 * (size_t)depth + 16;
	char *s = malloc(n), *p;

	assert_non_null(s);
	p = s + sprintf(s, "{\"Deep\":");
	for (int i = 0; i < depth; i++)
		*p++ = '[';
	for (int i = 0; i < depth; i++)
		*p++ = ']';
	sprintf(p, ",%s", JOINREQ_1_0 + 1);
	return s;
}

/* The UTF-8 check reads 16 and 8 ASCII bytes at a time: a bad byte at any offset of a long
 * string is still found, at its own column, and a good two-byte character at any offset is
 * taken. Fails if a wide step skips a byte with the high bit set. */
static void test_utf8_every_offset(void **state)
{
	char err[BI_ERR_MAX], want[64], val[48], *s;
	const char *at;
	struct bi_msg m;

	(void)state;
	for (size_t k = 0; k + 1 < 40; k++) {
		memset(val, 'a', 41);	/* '"', 40 characters, '"' */
		val[0] = '"';
		val[k + 1] = (char)0xff;
		val[41] = '"';
		val[42] = '\0';
		s = replace(JOINREQ_1_0, "\"000001\"", val);
		at = strchr(s, (char)0xff);
		assert_non_null(at);
		err[0] = '\0';
		assert_int_equal(bi_msg_parse(s, strlen(s), &m, err, sizeof(err)), DJ_EMALFORMED);
		snprintf(want, sizeof(want), "not valid JSON at line 1 column %zu",
			 (size_t)(at - s) + 1);
		assert_non_null(strstr(err, want));
		free(s);
		val[k + 1] = (char)0xc3;	/* a two-byte character: c3 a9 */
		val[k + 2] = (char)0xa9;
		s = replace(JOINREQ_1_0, "\"000001\"", val);
		parse_ok(s, &m);
		assert_int_equal((unsigned char)m.sender_id[k], 0xc3);
		free(s);
	}
}

/* What jansson refused or read so, the parser refuses or reads so too (it is yajl now, with
 * bi_msg's own checks for what yajl does not do): not UTF-8 by RFC 3629 anywhere in the body,
 * \u0000 and unpaired surrogate escapes, raw control characters, form feed and vertical tab as
 * white space, duplicate keys at any depth and in large objects, reals for integers, nesting
 * beyond 2048; and the good forms: an escaped key, a surrogate pair, an escaped backslash
 * before "u0000", tab and CR LF as white space */
static void test_json_strictness(void **state)
{
	static const struct {
		const char *from, *to;	/* a change to JOINREQ_1_0 */
		const char *field;	/* NULL: parses */
	} cases[] = {
		{ "\"000001\"", "\"\xc0\xaf\"", "(body): not valid JSON at line 1 column " },
		{ "\"000001\"", "\"\xed\xa0\x80\"", "(body)" },
		{ "\"000001\"", "\"\xf4\x90\x80\x80\"", "(body)" },
		{ "\"000001\"", "\"\xe2\x82\"", "(body)" },
		{ "\"000001\"", "\"\xff\"", "(body)" },
		{ "\"000001\"", "\"a\\ud800\"", "(body)" },
		{ "\"000001\"", "\"a\\ud800\\u0041\"", "(body)" },
		{ "\"000001\"", "\"a\\udc00\"", "(body)" },
		{ "\"000001\"", "\"a\\u0000\"", "(body)" },
		{ "\"000001\"", "\"a\tb\"", "(body)" },
		{ "\"SenderID\"", "\"Sen\xc3\xa9" "derID\":1,\"SenderID\"", NULL },
		{ "\"000001\"", "\"\\ud83d\\ude00\"", NULL },
		{ "\"000001\"", "\"a\\\\u0000\"", NULL },
		{ "\"SenderID\"", "\"Sender\\u0049D\"", NULL },
		{ "\"SenderID\"", "\"Sender\\u0049D\":\"x\",\"SenderID\"", "duplicate key" },
		{ "\"RxDelay\"", "\"V\":{\"a\":1,\"b\":{\"c\":2,\"c\":3}},\"RxDelay\"", "duplicate key" },
		{ "\"RxDelay\"", "\"V\":[1,{\"a\":1,\"a\":1}],\"RxDelay\"", "duplicate key" },
		{ "\"RxDelay\"", "\"V\":{\"a\":1,\"b\":{\"c\":2,\"d\":3}},\"RxDelay\"", NULL },
		{ "\"RxDelay\"", "\"X\":1,\"Y\":1,\"X\":2,\"RxDelay\"", "duplicate key" },
		{ "\"RxDelay\"", "\"DevEUI\":\"0101010101010101\",\"RxDelay\"", "duplicate key" },
		{ "\"RxDelay\"", "\"Dev\\u0045UI\":\"0101010101010101\",\"RxDelay\"", "duplicate key" },
		{ "\"DevAddr\"", "\"DevAdDr\"", "field DevAddr: missing" },
		{ "\"DevAddr\"", "\"devAddr\"", "field DevAddr: missing" },
		{ "\"DevAddr\"", "\"DevAddr \"", "field DevAddr: missing" },
		{ "\"RxDelay\"", "\"RxDelayX\":1,\"RxDelay\"", NULL },
		{ "\"TransactionID\":42", "\"TransactionID\":1e2", "TransactionID" },
		{ "\"TransactionID\":42", "\"TransactionID\":42,\"X\":1e999", "(body)" },
		{ "\"TransactionID\":42", "\"TransactionID\":42,\"X\":9223372036854775808", "(body)" },
		{ "\"RxDelay\":1}", "\"RxDelay\":1} x", "(body)" },
		{ "\"RxDelay\":1}", "\"RxDelay\":1,}", "(body)" },
		{ "\"RxDelay\":1}", "\"RxDelay\":\f1}", "(body)" },
		{ "\"RxDelay\":1}", "\"RxDelay\":1}\v", "(body)" },
		{ "\"RxDelay\":1}", "\"RxDelay\":\t1}\r\n", NULL },
		{ "\"RxDelay\":1}", "\"RxDelay\":1", "(body)" },
		{ "\"RxDelay\":1}", "\"RxDelay\":1,", "(body)" },
		{ "\"RxDelay\":1}", "\"RxDelay\":[1", "(body)" },
		{ "\"RxDelay\":1}", "\"RxDelay\":1}{}", "(body)" },
		{ "\"RxDelay\":1}", "\"RxDelay\":1}1", "(body)" },
		{ "\"RxDelay\":1}", "\"RxDelay\":1}]", "(body)" },
		{ "\"RxDelay\":1}", "\"RxDelay\":1} ", NULL },
	};
	char err[BI_ERR_MAX], *s, *big, key[16];
	struct bi_msg m;
	int ret;

	(void)state;
	for (size_t i = 0; i < DJ_ARRAY_LEN(cases); i++) {
		s = replace(JOINREQ_1_0, cases[i].from, cases[i].to);
		err[0] = '\0';
		ret = bi_msg_parse(s, strlen(s), &m, err, sizeof(err));
		if ((cases[i].field == NULL) != (ret == DJ_EOK) ||
		    (cases[i].field != NULL && strstr(err, cases[i].field) == NULL))
			print_error("case %zu: ret %d err \"%s\"\n", i, ret, err);
		if (cases[i].field == NULL) {
			assert_int_equal(ret, DJ_EOK);
			assert_int_equal(m.transaction_id, 42);
		} else {
			assert_int_equal(ret, DJ_EMALFORMED);
			assert_int_equal(m.result, BI_MALFORMED_REQUEST);
			assert_non_null(strstr(err, cases[i].field));
		}
		free(s);
	}
	s = replace(JOINREQ_1_0, "\"000001\"", "\"\\ud83d\\ude00\"");
	parse_ok(s, &m);
	assert_string_equal(m.sender_id, "\xf0\x9f\x98\x80");
	free(s);
	s = replace(JOINREQ_1_0, "\"000001\"", "\"a\\\\u0000\"");
	parse_ok(s, &m);
	assert_string_equal(m.sender_id, "a\\u0000");
	free(s);
	s = replace(JOINREQ_1_0, "\"SenderID\"", "\"Sender\\u0049D\"");
	parse_ok(s, &m);
	assert_string_equal(m.sender_id, "000001");
	free(s);
	/* escaped values (yajl decodes them into a buffer of its own, which the next string
	 * reuses): read as their text, hex fields too */
	s = replace(JOINREQ_1_0, "\"000001\"", "\"\\u00300\\u00300\\u00301\"");
	parse_ok(s, &m);
	assert_string_equal(m.sender_id, "000001");
	free(s);
	s = replace(JOINREQ_1_0, "\"DevAddr\":\"", "\"DevAddr\":\"\\u0030\\u0078");
	parse_ok(s, &m);
	assert_memory_equal(m.dev_addr, "\x01\x02\x03\x04", 4);
	free(s);
	/* the parser's table of member names has no two in one slot */
	assert_true(bi_msg__fids_ok());

	/* a duplicate among more members than the key-by-key check looks at */
	s = strdup(JOINREQ_1_0);
	assert_non_null(s);
	for (int i = 0; i < 40; i++) {
		snprintf(key, sizeof(key), "\"U%02d\":0,\"", i);
		big = replace(s, "\"", key);
		free(s);
		s = big;
		assert_int_equal(s[0], '{');
	}
	parse_ok(s, &m);
	big = replace(s, "\"RxDelay\"", "\"U07\":1,\"RxDelay\"");
	assert_int_equal(bi_msg_parse(big, strlen(big), &m, err, sizeof(err)), DJ_EMALFORMED);
	assert_non_null(strstr(err, "duplicate key"));
	free(big);
	big = replace(s, "\"RxDelay\"", "\"SenderID\":\"x\",\"RxDelay\"");
	err[0] = '\0';
	assert_int_equal(bi_msg_parse(big, strlen(big), &m, err, sizeof(err)), DJ_EMALFORMED);
	assert_non_null(strstr(err, "duplicate key"));
	free(big);
	free(s);

	/* nesting: 2047 arrays in the root object is jansson's limit too */
	s = nested(2047);
	parse_ok(s, &m);
	free(s);
	s = nested(2048);
	assert_int_equal(bi_msg_parse(s, strlen(s), &m, err, sizeof(err)), DJ_EMALFORMED);
	assert_non_null(strstr(err, "(body)"));
	free(s);
}

/* Answers: bad Result and bad envelopes name their field and never quote key bytes. */
static void test_answer_refusals(void **state)
{
	static const struct {
		const char *body;
		const char *field;
	} cases[] = {
		{ "\"Result\":{\"ResultCode\":\"Fine\"}", "Result.ResultCode" },
		{ "\"Result\":{\"Description\":\"x\"}", "Result.ResultCode" },
		{ "\"Result\":\"Success\"", "Result" },
		{ "\"Lifetime\":3,\"Result\":{\"ResultCode\":\"Success\",\"Description\":5}",
		  "Result.Description" },
		{ "\"Lifetime\":-3,\"Result\":{\"ResultCode\":\"Success\"}", "Lifetime" },
		{ "\"AppSKey\":{\"KEKLabel\":\"k\",\"AESKey\":\"c0ffee00112233445566778899\"},"
		  "\"Result\":{\"ResultCode\":\"Success\"}", "AppSKey" },
		{ "\"NwkSKey\":{\"KEKLabel\":\"k\",\"AESKey\":\"c0ffee" "00112233445566778899aabbccdd"
		  "eeff00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\"},"
		  "\"Result\":{\"ResultCode\":\"Success\"}", "NwkSKey" },
		{ "\"AppSKey\":\"c0ffee\",\"Result\":{\"ResultCode\":\"Success\"}", "AppSKey" },
		{ "\"PHYPayload\":\"" V1_PHY "\",\"Result\":{\"ResultCode\":\"Success\"}",
		  "PHYPayload" },
	};
	char text[512], err[BI_ERR_MAX];
	struct bi_msg m;

	(void)state;
	for (size_t i = 0; i < DJ_ARRAY_LEN(cases); i++) {
		snprintf(text, sizeof(text),
			 "{\"ProtocolVersion\":\"1.1\",\"SenderID\":\"js\",\"ReceiverID\":\"ns\","
			 "\"TransactionID\":9,\"MessageType\":\"JoinAns\",%s}",
			 cases[i].body);
		err[0] = '\0';
		assert_int_equal(bi_msg_parse(text, strlen(text), &m, err, sizeof(err)),
				 DJ_EMALFORMED);
		if (strstr(err, cases[i].field) == NULL)
			print_error("case %zu: err \"%s\"\n", i, err);
		assert_non_null(strstr(err, cases[i].field));
		assert_null(strstr(err, "c0ffee"));
		assert_false(m.app_s_key.present);	/* wiped on failure */
		assert_int_equal(m.transaction_id, 9);
	}
}

static void test_answer_init(void **state)
{
	struct bi_msg req, ans;

	(void)state;
	parse_ok(JOINREQ_1_1, &req);
	req.has_receiver_ns_id = true;
	strcpy(req.receiver_ns_id, "js-ns");
	bi_msg_answer_init(&req, BI_JOIN_ANS, &ans);
	assert_int_equal(ans.proto, BI_PROTO_1_1);
	assert_int_equal(ans.type, BI_JOIN_ANS);
	assert_int_equal(ans.result, BI_SUCCESS);
	assert_int_equal(ans.transaction_id, 4294967295u);
	assert_string_equal(ans.sender_id, "0101010101010101");
	assert_string_equal(ans.receiver_id, "000001");
	assert_true(ans.has_receiver_token);	/* request's SenderToken */
	assert_int_equal(ans.receiver_token_len, 3);
	assert_memory_equal(ans.receiver_token, "\xaa\xbb\xcc", 3);
	assert_true(ans.has_sender_token);	/* request's ReceiverToken */
	assert_int_equal(ans.sender_token_len, 1);
	assert_int_equal(ans.sender_token[0], 0x01);
	assert_true(ans.has_receiver_ns_id);
	assert_string_equal(ans.receiver_ns_id, "ns-a.example");
	assert_true(ans.has_sender_ns_id);
	assert_string_equal(ans.sender_ns_id, "js-ns");
	assert_int_equal(ans.phy_len, 0);	/* nothing of the body is copied */
	assert_false(ans.has_dev_eui);

	/* 1.0: no NSIDs, no tokens when the request had none */
	parse_ok(JOINREQ_1_0, &req);
	bi_msg_answer_init(&req, BI_JOIN_ANS, &ans);
	assert_int_equal(ans.proto, BI_PROTO_1_0);
	assert_false(ans.has_sender_token);
	assert_false(ans.has_receiver_token);
	assert_false(ans.has_sender_ns_id);
	assert_false(ans.has_receiver_ns_id);
	assert_int_equal(ans.transaction_id, 42);
}

static void test_type_names(void **state)
{
	static const char *const names[] = { "JoinReq",	   "JoinAns",	 "RejoinReq",
					     "RejoinAns",  "AppSKeyReq", "AppSKeyAns",
					     "HomeNSReq",  "HomeNSAns" };

	(void)state;
	for (size_t i = 0; i < DJ_ARRAY_LEN(names); i++)
		assert_string_equal(bi_msg_type_str((enum bi_msg_type)i), names[i]);
	bi_msg_wipe(NULL);
}

/* bi_msg_wipe() zeroes every key byte of all five envelopes (whatever length each says, here
 * the full 40 bytes with a length of 16) and leaves each absent with an empty label; the rest of
 * the message is kept. Fails when an envelope is left out or only aes_key_len bytes are wiped. */
static void test_wipe(void **state)
{
	struct bi_key_envelope *envs[5];
	struct bi_msg a;

	(void)state;
	msg_head(&a, BI_PROTO_1_1, BI_JOIN_ANS, "0101010101010101", "000001");
	envs[0] = &a.app_s_key;
	envs[1] = &a.nwk_s_key;
	envs[2] = &a.f_nwk_s_int_key;
	envs[3] = &a.s_nwk_s_int_key;
	envs[4] = &a.nwk_s_enc_key;
	for (size_t i = 0; i < DJ_ARRAY_LEN(envs); i++) {
		fill_env(envs[i], "some-kek", (uint8_t)(0x11 * (i + 1)), BI_AESKEY_MAX);
		envs[i]->aes_key_len = 16;
	}
	bi_msg_wipe(&a);
	for (size_t i = 0; i < DJ_ARRAY_LEN(envs); i++) {
		for (size_t j = 0; j < BI_AESKEY_MAX; j++)
			assert_int_equal(envs[i]->aes_key[j], 0);
		assert_int_equal(envs[i]->aes_key_len, 0);
		assert_false(envs[i]->present);
		assert_string_equal(envs[i]->kek_label, "");
	}
	assert_string_equal(a.sender_id, "0101010101010101");
}

/* arena_hex - lower-case hex of n bytes (the encoder's form) */
/* The integers of an answer are written as decimal digits (set_uint): every digit count, from 0
 * to UINT32_MAX, the same text as printf's, and parsed back to the same value. */
static void test_encode_uint_edges(void **state)
{
	static const uint32_t v[] = { 0, 1, 9, 10, 99, 100, 65535, 1234567890, 4000000000u,
				      4294967295u };
	char want[64];
	struct bi_msg a;
	char *out;

	(void)state;
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		msg_head(&a, BI_PROTO_1_1, BI_JOIN_ANS, "js", "ns");
		a.transaction_id = v[i];
		a.result = BI_SUCCESS;
		a.has_lifetime = true;
		a.lifetime = v[sizeof(v) / sizeof(v[0]) - 1 - i];
		out = round_trip(&a);
		snprintf(want, sizeof(want), "\"TransactionID\":%u,", v[i]);
		assert_non_null(strstr(out, want));
		snprintf(want, sizeof(want), "\"Lifetime\":%u,", a.lifetime);
		assert_non_null(strstr(out, want));
		free(out);
	}
}

/* After the root object only JSON white space may follow, up to the length given: a NUL or
 * anything else after it is refused, with or without white space before it. A body that ends
 * with its root takes yajl's lexer no buffer: a JoinReq's parse stays under 3 KB of arena
 * (with yajl_complete_parse's lexing of the end, and its 2 KB buffer, it took 4 KB). */
static void test_after_root(void **state)
{
	static const char *const tails[] = { "\0", " \0", "\n}", "\r\n\"x\"", "\t0" };
	char err[BI_ERR_MAX], buf[2048];
	size_t n = strlen(JOINREQ_1_1);
	struct bi_msg m;

	(void)state;
	assert_true(n + 8 < sizeof(buf));
	for (size_t i = 0; i < DJ_ARRAY_LEN(tails); i++) {
		size_t tl = i == 0 ? 1 : i == 1 ? 2 : strlen(tails[i]);

		memcpy(buf, JOINREQ_1_1, n);
		memcpy(buf + n, tails[i], tl);
		err[0] = '\0';
		assert_int_equal(bi_msg_parse(buf, n + tl, &m, err, sizeof(err)), DJ_EMALFORMED);
		assert_non_null(strstr(err, "(body): not valid JSON"));
	}
	memcpy(buf, JOINREQ_1_1, n);
	memcpy(buf + n, " \t\r\n", 4);
	assert_int_equal(bi_msg_parse(buf, n + 4, &m, err, sizeof(err)), DJ_EOK);
	assert_int_equal(bi_msg_parse(JOINREQ_1_1, n, &m, err, sizeof(err)), DJ_EOK);
	assert_true(bi_msg__arena_last() > 0);
	/* 976 bytes to wipe (yajl's parser, the string copies), 1104 of tables that hold no
	 * string byte; 2080 to wipe when the tables were in the wiped arena, 4144 with the
	 * lexer's buffer */
	assert_true(bi_msg__arena_last() < 1536);
	assert_true(bi_msg__tabs_last() > 512);
	bi_msg_wipe(&m);
}

/* An answer longer than the encoder's first output buffer (1 KB): the buffer grows, as often
 * as needed, and the text is whole (round trip, jansson's dump). Fails if growing fails. */
static void test_encode_grows(void **state)
{
	struct bi_msg a;
	char *out;

	(void)state;
	msg_head(&a, BI_PROTO_1_1, BI_JOIN_ANS, "0101010101010101", "000001");
	a.transaction_id = 7;
	a.result = BI_SUCCESS;
	memset(a.description, 'd', BI_DESC_MAX - 1);
	a.description[BI_DESC_MAX - 1] = '\0';
	a.description[10] = '"';	/* escaped, so the text is longer still */
	a.description[20] = '\\';
	memset(a.sender_id, 's', BI_ID_MAX - 1);
	a.sender_id[BI_ID_MAX - 1] = '\0';
	a.phy_len = unhex(V2_PHY, a.phy, sizeof(a.phy));
	fill_env(&a.s_nwk_s_int_key, "ns-kek-with-a-rather-long-label-0123456789012345678901", 0x10,
		 BI_AESKEY_MAX);
	fill_env(&a.f_nwk_s_int_key, "ns-kek-with-a-rather-long-label-0123456789012345678901", 0x30,
		 BI_AESKEY_MAX);
	fill_env(&a.nwk_s_enc_key, "ns-kek-with-a-rather-long-label-0123456789012345678901", 0x50,
		 BI_AESKEY_MAX);
	fill_env(&a.app_s_key, "as-kek-with-a-rather-long-label-0123456789012345678901", 0x70,
		 BI_AESKEY_MAX);
	out = round_trip(&a);
	assert_true(strlen(out) > 1024);
	assert_non_null(strstr(out, "\"Description\":\"dddddddddd\\\"ddddddddd\\\\ddd"));
	OPENSSL_clear_free(out, strlen(out));
	bi_msg_wipe(&a);
}

static void arena_hex(const uint8_t *b, size_t n, char *out)
{
	for (size_t i = 0; i < n; i++)
		sprintf(out + 2 * i, "%02x", b[i]);
}

/* What a parse or an encode allocates that may hold string bytes (yajl's parser's buffers, the
 * encoder's output, the parser's copies of escaped strings) lives in a per-thread arena that is
 * wiped when the call ends: the AESKey hex held there is gone from it (and the arena was used at
 * all), and is not in the tables, which are not wiped. Fails with the wipe removed, or with the
 * encoder's output moved to the tables. */
static void test_arena_wiped(void **state)
{
	struct bi_msg a, b;
	char hex[2 * BI_AESKEY_MAX + 1], err[BI_ERR_MAX] = "";
	char *out = NULL;
	size_t len = 0;

	(void)state;
	msg_head(&a, BI_PROTO_1_1, BI_JOIN_ANS, "0101010101010101", "000001");
	a.result = BI_SUCCESS;
	fill_env(&a.app_s_key, "as-kek", 0xa7, 24);
	arena_hex(a.app_s_key.aes_key, 24, hex);
	assert_int_equal(bi_msg_encode(&a, &out, &len), DJ_EOK);
	assert_non_null(strstr(out, hex));	/* the encoder wrote the hex */
	assert_true(bi_msg__arena_last() > 0);	/* the output: in the wiped arena */
	assert_false(bi_msg__arena_holds(hex, strlen(hex)));
	assert_int_equal(bi_msg_parse(out, len, &b, err, sizeof(err)), DJ_EOK);
	assert_true(bi_msg__arena_last() > 0);
	assert_false(bi_msg__arena_holds(hex, strlen(hex)));
	assert_memory_equal(b.app_s_key.aes_key, a.app_s_key.aes_key, 24);
	/* the check finds what is there */
	assert_true(bi_msg__arena_holds("", 0) == false);
	OPENSSL_clear_free(out, len);
	bi_msg_wipe(&a);
	bi_msg_wipe(&b);
}

/* a message larger than the arena: the rest of its tables comes from malloc, the answer is the
 * same; and jansson trees made outside bi_msg (before, between, after) are plain heap */
static void test_arena_overflow(void **state)
{
	json_t *outside = json_pack("{s:s}", "a", "made before");
	json_t *o;
	struct bi_msg m;
	char *big, *text;
	int ret;

	(void)state;
	o = json_loads(JOINREQ_1_1, 0, NULL);
	assert_non_null(o);
	for (int i = 0; i < 2000; i++) {
		char key[16];

		snprintf(key, sizeof(key), "Unknown%04d", i);
		assert_int_equal(json_object_set_new(o, key, json_string("an unknown field's value, "
									 "ignored")), 0);
	}
	big = json_dumps(o, JSON_COMPACT);
	assert_non_null(big);
	assert_true(strlen(big) > 65536);
	parse_ok(big, &m);
	assert_int_equal(bi_msg__tabs_last(), 16384);	/* full: the rest went to malloc */
	assert_int_equal(m.transaction_id, 4294967295u);
	assert_string_equal(m.sender_ns_id, "ns-a.example");
	parse_ok(JOINREQ_1_1, &m);			/* and the next call starts afresh */
	assert_true(bi_msg__tabs_last() < 16384);
	text = json_dumps(outside, JSON_COMPACT);
	assert_string_equal(text, "{\"a\":\"made before\"}");
	free(text);
	free(big);
	json_decref(o);
	ret = json_object_set_new(outside, "b", json_string("made after"));
	assert_int_equal(ret, 0);
	json_decref(outside);
}

DJ_TEST_MAIN(
	cmocka_unit_test(test_joinreq_1_0),
	cmocka_unit_test(test_joinreq_1_1),
	cmocka_unit_test(test_rejoinreq_sizes),
	cmocka_unit_test(test_malformed_table),
	cmocka_unit_test(test_header_kept_on_failure),
	cmocka_unit_test(test_err_buffer),
	cmocka_unit_test(test_round_trip_join_ans),
	cmocka_unit_test(test_encode_uint_edges),
	cmocka_unit_test(test_encode_grows),
	cmocka_unit_test(test_round_trip_appskey_homens),
	cmocka_unit_test(test_round_trip_requests),
	cmocka_unit_test(test_encode_escapes),
	cmocka_unit_test(test_encode_refusals),
	cmocka_unit_test(test_interop_hex_and_versions),
	cmocka_unit_test(test_interop_tts_empty_cflist),
	cmocka_unit_test(test_interop_unknown_receiver),
	cmocka_unit_test(test_unknown_fields_ignored),
	cmocka_unit_test(test_json_strictness),
	cmocka_unit_test(test_utf8_every_offset),
	cmocka_unit_test(test_after_root),
	cmocka_unit_test(test_answer_refusals),
	cmocka_unit_test(test_answer_init),
	cmocka_unit_test(test_type_names),
	cmocka_unit_test(test_wipe),
	cmocka_unit_test(test_arena_wiped),
	cmocka_unit_test(test_arena_overflow))
