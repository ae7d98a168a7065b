/*
 * test_ev_event.c - the MQTT event encoders: join/rejoin/AppSKey events packed without an id,
 * rendered with their id and topic as protobuf (decoded here with the generated code) and as
 * JSON; ownership-transfer events (topic, fields, JSON); a plain AppSKey and a topic-breaking
 * AS id refused; undecodable bodies refused;
 * ev_to_json on both formats.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "common/dj_err.h"
#include "ev.pb-c.h"
#include "events/ev_event.h"
#include "dj_test.h"

static const uint8_t sid[JS_SESSION_ID_LEN] = { 0x70, 0, 0, 0, 0, 0, 0, 1, 0, 0, 7 };

/* a_join - an accepted 1.1 join */
static void a_join(struct ev_join *j)
{
	memset(j, 0, sizeof(*j));
	memcpy(j->dev_eui, (uint8_t[]){ 0x70, 0, 0, 0, 0, 0, 0, 1 }, LW_EUI_LEN);
	j->has_join_eui = true;
	memcpy(j->join_eui, (uint8_t[]){ 0x70, 0xb3, 0xd5, 0x7e, 0xd0, 0, 0, 1 }, LW_EUI_LEN);
	memcpy(j->net_id, (uint8_t[]){ 0, 0, 0x13 }, LW_NETID_LEN);
	memcpy(j->dev_addr, (uint8_t[]){ 0x26, 0, 0, 1 }, LW_DEVADDR_LEN);
	j->mac_version = "1.1";
	j->accepted = true;
	j->result = "Success";
	j->reason = "accepted";
	j->peer = "ns1";
	j->session_id = sid;
	j->session_id_len = sizeof(sid);
	j->join_nonce = 7;
	j->time_ms = 1700000000123;
}

static void test_join_protobuf(void **state)
{
	struct ev_join j;
	uint8_t body[JS_EVENT_BODY_MAX], *pl = NULL;
	char topic[EV_TOPIC_MAX], id[EV_ID_MAX];
	size_t len = 0, plen = 0;
	Danejoin__Events__Event *ev;

	(void)state;
	a_join(&j);
	assert_int_equal(ev_encode_join(&j, body, sizeof(body), &len), DJ_EOK);
	assert_int_equal(ev_encode_join(&j, body, 10, &len), DJ_ENOSPC);
	assert_int_equal(ev_encode_join(&j, body, sizeof(body), &len), DJ_EOK);
	ev_event_id((const uint8_t *)"\x01\x02\x03\x04\x05\x06\x07\x08", 42, id);
	assert_string_equal(id, "0102030405060708-42");
	assert_int_equal(ev_render(body, len, id, "danejoin/js1", EV_FORMAT_PROTOBUF, topic,
				   sizeof(topic), &pl, &plen), DJ_EOK);
	assert_string_equal(topic, "danejoin/js1/join/7000000000000001");
	ev = danejoin__events__event__unpack(NULL, plen, pl);
	assert_non_null(ev);
	assert_string_equal(ev->id, id);
	assert_int_equal(ev->time_ms, 1700000000123);
	assert_int_equal(ev->kind_case, DANEJOIN__EVENTS__EVENT__KIND_JOIN);
	assert_int_equal(ev->join->dev_eui.len, LW_EUI_LEN);
	assert_memory_equal(ev->join->net_id.data, j.net_id, LW_NETID_LEN);
	assert_string_equal(ev->join->mac_version, "1.1");
	assert_true(ev->join->accepted);
	assert_int_equal(ev->join->join_nonce, 7);
	danejoin__events__event__free_unpacked(ev, NULL);
	ev_payload_free(pl, plen);
	/* a short topic buffer, garbage bodies */
	assert_int_equal(ev_render(body, len, id, "danejoin/js1", EV_FORMAT_PROTOBUF, topic, 8,
				   &pl, &plen), DJ_ENOSPC);
	assert_int_equal(ev_render((const uint8_t *)"\xff\xff\xff", 3, id, "p", EV_FORMAT_JSON,
				   topic, sizeof(topic), &pl, &plen), DJ_EMALFORMED);
	assert_int_equal(ev_render((const uint8_t *)"", 0, id, "p", EV_FORMAT_JSON, topic,
				   sizeof(topic), &pl, &plen), DJ_EMALFORMED);	/* no kind */
}

static void test_rejoin_json(void **state)
{
	struct ev_join j;
	uint8_t body[JS_EVENT_BODY_MAX], *pl = NULL;
	char topic[EV_TOPIC_MAX], *line = NULL;
	size_t len = 0, plen = 0;
	json_t *o;

	(void)state;
	a_join(&j);
	j.rejoin = true;
	j.rejoin_type = 2;
	j.accepted = false;
	j.result = "MICFailed";
	j.reason = "MIC check failed";
	j.session_id = NULL;
	j.session_id_len = 0;
	assert_int_equal(ev_encode_join(&j, body, sizeof(body), &len), DJ_EOK);
	assert_int_equal(ev_render(body, len, "00-1", "a/b", EV_FORMAT_JSON, topic, sizeof(topic),
				   &pl, &plen), DJ_EOK);
	assert_string_equal(topic, "a/b/rejoin/7000000000000001");
	o = json_loadb((const char *)pl, plen, 0, NULL);
	assert_non_null(o);
	assert_string_equal(json_string_value(json_object_get(o, "type")), "rejoin");
	assert_string_equal(json_string_value(json_object_get(o, "id")), "00-1");
	assert_int_equal(json_integer_value(json_object_get(o, "rejoin_type")), 2);
	assert_true(json_is_false(json_object_get(o, "accepted")));
	assert_string_equal(json_string_value(json_object_get(o, "result")), "MICFailed");
	assert_string_equal(json_string_value(json_object_get(o, "dev_addr")), "26000001");
	assert_null(json_object_get(o, "session_key_id"));
	json_decref(o);
	/* ev_to_json passes JSON through (with the topic) */
	assert_int_equal(ev_to_json(pl, plen, "t/x", &line), DJ_EOK);
	assert_non_null(strstr(line, "\"topic\":\"t/x\""));
	free(line);
	ev_payload_free(pl, plen);
	j.rejoin_type = 3;
	assert_int_equal(ev_encode_join(&j, body, sizeof(body), &len), DJ_EINVAL);
}

static void test_appskey(void **state)
{
	struct bi_key_envelope env;
	struct ev_appskey a;
	uint8_t body[JS_EVENT_BODY_MAX], *pl = NULL;
	char topic[EV_TOPIC_MAX], *line = NULL;
	size_t len = 0, plen = 0;

	(void)state;
	memset(&env, 0, sizeof(env));
	memset(&a, 0, sizeof(a));
	env.present = true;
	strcpy(env.kek_label, "as1-kek");
	memset(env.aes_key, 0xab, 24);
	env.aes_key_len = 24;
	memcpy(a.dev_eui, (uint8_t[]){ 0x70, 0, 0, 0, 0, 0, 0, 1 }, LW_EUI_LEN);
	a.as_id = "as1";
	a.session_id = sid;
	a.session_id_len = sizeof(sid);
	a.env = &env;
	assert_int_equal(ev_encode_appskey(&a, body, sizeof(body), &len), DJ_EOK);
	assert_int_equal(ev_render(body, len, "i-1", "dj/js", EV_FORMAT_PROTOBUF, topic,
				   sizeof(topic), &pl, &plen), DJ_EOK);
	assert_string_equal(topic, "dj/js/as/as1/appskey/7000000000000001");
	assert_int_equal(ev_to_json(pl, plen, NULL, &line), DJ_EOK);
	assert_non_null(strstr(line, "\"app_s_key\":{\"kek_label\":\"as1-kek\",\"aes_key\":\"ABAB"));
	free(line);
	ev_payload_free(pl, plen);
	/* never a plain key; never a topic level that is not ours */
	env.kek_label[0] = '\0';
	assert_int_equal(ev_encode_appskey(&a, body, sizeof(body), &len), DJ_EINVAL);
	strcpy(env.kek_label, "as1-kek");
	a.as_id = "as1/#";
	assert_int_equal(ev_encode_appskey(&a, body, sizeof(body), &len), DJ_EINVAL);
	a.as_id = "";
	assert_int_equal(ev_encode_appskey(&a, body, sizeof(body), &len), DJ_EINVAL);
	assert_int_equal(ev_to_json((const uint8_t *)"{nope", 5, NULL, &line), DJ_EMALFORMED);
}

static void test_transfer(void **state)
{
	struct ev_transfer x;
	uint8_t body[JS_EVENT_BODY_MAX], *pl = NULL;
	char topic[EV_TOPIC_MAX], *line = NULL;
	size_t len = 0, plen = 0;
	Danejoin__Events__Event *ev;
	json_t *o, *a;

	(void)state;
	memset(&x, 0, sizeof(x));
	memcpy(x.dev_eui, (uint8_t[]){ 0x70, 0, 0, 0, 0, 0, 0, 0xab }, LW_EUI_LEN);
	x.has_join_eui = true;
	memcpy(x.join_eui, (uint8_t[]){ 0x70, 0xb3, 0xd5, 0x7e, 0xd0, 0, 0, 1 }, LW_EUI_LEN);
	x.from_zone = "old.example.";
	x.to_zone = "new.example.";
	x.serial = 3;
	x.n_net_ids = 2;
	memcpy(x.net_ids[0], (uint8_t[]){ 0, 0, 0x13 }, LW_NETID_LEN);
	memcpy(x.net_ids[1], (uint8_t[]){ 0, 0, 0x14 }, LW_NETID_LEN);
	x.n_as_ids = 1;
	x.as_ids[0] = "as.new.example";
	x.time_ms = 1700000000456;
	assert_int_equal(ev_encode_transfer(&x, body, 8, &len), DJ_ENOSPC);
	assert_int_equal(ev_encode_transfer(&x, body, sizeof(body), &len), DJ_EOK);
	/* protobuf: every field, topic PREFIX/ownership/<DevEUI> */
	assert_int_equal(ev_render(body, len, "00-9", "danejoin/js1", EV_FORMAT_PROTOBUF, topic,
				   sizeof(topic), &pl, &plen), DJ_EOK);
	assert_string_equal(topic, "danejoin/js1/ownership/70000000000000AB");
	ev = danejoin__events__event__unpack(NULL, plen, pl);
	assert_non_null(ev);
	assert_int_equal(ev->kind_case, DANEJOIN__EVENTS__EVENT__KIND_OWNERSHIP_TRANSFER);
	assert_int_equal(ev->time_ms, 1700000000456);
	assert_memory_equal(ev->ownership_transfer->dev_eui.data, x.dev_eui, LW_EUI_LEN);
	assert_memory_equal(ev->ownership_transfer->join_eui.data, x.join_eui, LW_EUI_LEN);
	assert_string_equal(ev->ownership_transfer->from_zone, "old.example.");
	assert_string_equal(ev->ownership_transfer->to_zone, "new.example.");
	assert_int_equal(ev->ownership_transfer->serial, 3);
	assert_int_equal(ev->ownership_transfer->n_net_ids, 2);
	assert_memory_equal(ev->ownership_transfer->net_ids[1].data, x.net_ids[1], LW_NETID_LEN);
	assert_int_equal(ev->ownership_transfer->n_as_ids, 1);
	assert_string_equal(ev->ownership_transfer->as_ids[0], "as.new.example");
	danejoin__events__event__free_unpacked(ev, NULL);
	/* the protobuf payload as JSON (danejoin-client subscribe) */
	assert_int_equal(ev_to_json(pl, plen, topic, &line), DJ_EOK);
	ev_payload_free(pl, plen);
	o = json_loads(line, 0, NULL);
	free(line);
	assert_non_null(o);
	assert_string_equal(json_string_value(json_object_get(o, "type")), "ownership_transfer");
	assert_string_equal(json_string_value(json_object_get(o, "id")), "00-9");
	assert_string_equal(json_string_value(json_object_get(o, "dev_eui")), "70000000000000AB");
	assert_string_equal(json_string_value(json_object_get(o, "join_eui")), "70B3D57ED0000001");
	assert_string_equal(json_string_value(json_object_get(o, "from_zone")), "old.example.");
	assert_string_equal(json_string_value(json_object_get(o, "to_zone")), "new.example.");
	assert_int_equal(json_integer_value(json_object_get(o, "serial")), 3);
	assert_int_equal(json_integer_value(json_object_get(o, "time_ms")), 1700000000456);
	a = json_object_get(o, "net_ids");
	assert_int_equal(json_array_size(a), 2);
	assert_string_equal(json_string_value(json_array_get(a, 0)), "000013");
	a = json_object_get(o, "as_ids");
	assert_int_equal(json_array_size(a), 1);
	assert_string_equal(json_string_value(json_array_get(a, 0)), "as.new.example");
	assert_string_equal(json_string_value(json_object_get(o, "topic")), topic);
	json_decref(o);
	/* the JSON format renders the same object */
	assert_int_equal(ev_render(body, len, "00-9", "p", EV_FORMAT_JSON, topic, sizeof(topic),
				   &pl, &plen), DJ_EOK);
	assert_string_equal(topic, "p/ownership/70000000000000AB");
	o = json_loadb((const char *)pl, plen, 0, NULL);
	ev_payload_free(pl, plen);
	assert_non_null(o);
	assert_string_equal(json_string_value(json_object_get(o, "to_zone")), "new.example.");
	assert_int_equal(json_array_size(json_object_get(o, "net_ids")), 2);
	json_decref(o);
	/* bad counts, missing zones */
	x.n_as_ids = EV_RIGHTS_MAX + 1;
	assert_int_equal(ev_encode_transfer(&x, body, sizeof(body), &len), DJ_EINVAL);
	x.n_as_ids = 0;
	x.to_zone = NULL;
	assert_int_equal(ev_encode_transfer(&x, body, sizeof(body), &len), DJ_EINVAL);
}

DJ_TEST_MAIN(
	cmocka_unit_test(test_join_protobuf),
	cmocka_unit_test(test_rejoin_json),
	cmocka_unit_test(test_appskey),
	cmocka_unit_test(test_transfer))
