/*
 * ev_event.c - events as danejoin.events.Event (protobuf-c), their topics and their JSON form.
 *
 * PURPOSE
 *	The join path encodes an event once, without its id, into the outbox row written in the
 *	same transaction as the state change it reports. The publisher decodes that body, sets the
 *	id (which names the row), and packs it again as protobuf or as JSON: the outbox stays
 *	independent of the payload format, and a row that no longer decodes is found before it is
 *	sent.
 *
 * SECURITY
 *	- An AppSKey leaves only inside a KeyEnvelope wrapped under the AS's KEK (DESIGN.md rule 5):
 *	  ev_encode_appskey() refuses an envelope with an empty KEKLabel (a plain key).
 *	- Buffers that held an envelope are wiped (OPENSSL_cleanse) before they are freed.
 *	- Received payloads are untrusted: protobuf-c checks lengths while unpacking; JSON goes
 *	  through jansson; hex output is bounded by the field sizes checked here.
 *	- The AS id becomes a topic level, so only letters, digits, '-' and '_' are accepted
 *	  (no '/', '+' or '#' that would move the event to another AS's topic).
 */
#include "events/ev_event.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/crypto.h>

#include "common/dj_err.h"
#include "common/dj_hex.h"
#include "ev.pb-c.h"

#define HEX_MAX 129		/* the longest field printed in hex: 64 bytes */
#define FIELD_MAX 64

typedef Danejoin__Events__Event Event;
typedef Danejoin__Events__JoinEvent JoinEvent;
typedef Danejoin__Events__AppSKeyEvent AppSKeyEvent;
typedef Danejoin__Events__KeyEnvelope KeyEnvelope;
typedef Danejoin__Events__OwnershipTransferEvent TransferEvent;

/* bin - a ProtobufCBinaryData over borrowed bytes */
static ProtobufCBinaryData bin(const uint8_t *p, size_t len)
{
	ProtobufCBinaryData b = { len, (uint8_t *)(uintptr_t)p };

	return b;
}

/* str - a borrowed string for a protobuf-c field ("" for NULL) */
static char *str(const char *s)
{
	return (char *)(uintptr_t)(s != NULL ? s : "");
}

/* name_ok - a topic level of our own: letters, digits, '-', '_', 1..EV_NAME_MAX-1 */
static bool name_ok(const char *s)
{
	size_t n = s != NULL ? strlen(s) : 0;

	if (n == 0 || n >= EV_NAME_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
		      (s[i] >= '0' && s[i] <= '9') || s[i] == '-' || s[i] == '_'))
			return false;
	return true;
}

/* pack - pack \p ev into \p buf if it fits */
static int pack(const Event *ev, uint8_t *buf, size_t cap, size_t *len)
{
	size_t n = danejoin__events__event__get_packed_size(ev);

	if (n > cap)
		return DJ_ENOSPC;
	*len = danejoin__events__event__pack(ev, buf);
	return DJ_EOK;
}

int ev_encode_join(const struct ev_join *e, uint8_t *buf, size_t cap, size_t *len)
{
	Event ev = DANEJOIN__EVENTS__EVENT__INIT;
	JoinEvent j = DANEJOIN__EVENTS__JOIN_EVENT__INIT;

	if (e == NULL || buf == NULL || len == NULL || e->rejoin_type > 2 ||
	    e->session_id_len > JS_SESSION_ID_MAX)
		return DJ_EINVAL;
	j.dev_eui = bin(e->dev_eui, LW_EUI_LEN);
	if (e->has_join_eui)
		j.join_eui = bin(e->join_eui, LW_EUI_LEN);
	j.net_id = bin(e->net_id, LW_NETID_LEN);
	j.dev_addr = bin(e->dev_addr, LW_DEVADDR_LEN);
	j.mac_version = str(e->mac_version);
	j.accepted = e->accepted;
	j.result = str(e->result);
	j.reason = str(e->reason);
	j.rejoin_type = e->rejoin_type;
	j.peer = str(e->peer);
	if (e->session_id != NULL)
		j.session_key_id = bin(e->session_id, e->session_id_len);
	j.join_nonce = e->join_nonce;
	ev.time_ms = e->time_ms;
	ev.kind_case = e->rejoin ? DANEJOIN__EVENTS__EVENT__KIND_REJOIN
				 : DANEJOIN__EVENTS__EVENT__KIND_JOIN;
	if (e->rejoin)
		ev.rejoin = &j;
	else
		ev.join = &j;
	return pack(&ev, buf, cap, len);
}

int ev_encode_appskey(const struct ev_appskey *e, uint8_t *buf, size_t cap, size_t *len)
{
	Event ev = DANEJOIN__EVENTS__EVENT__INIT;
	AppSKeyEvent a = DANEJOIN__EVENTS__APP_SKEY_EVENT__INIT;
	KeyEnvelope k = DANEJOIN__EVENTS__KEY_ENVELOPE__INIT;

	if (e == NULL || buf == NULL || len == NULL || e->env == NULL || !e->env->present ||
	    e->env->kek_label[0] == '\0' || e->env->aes_key_len == 0 ||
	    e->env->aes_key_len > BI_AESKEY_MAX || !name_ok(e->as_id) ||
	    e->session_id_len > JS_SESSION_ID_MAX)
		return DJ_EINVAL;	/* never a plain key on the bus */
	k.kek_label = str(e->env->kek_label);
	k.aes_key = bin(e->env->aes_key, e->env->aes_key_len);
	a.dev_eui = bin(e->dev_eui, LW_EUI_LEN);
	a.join_eui = bin(e->join_eui, LW_EUI_LEN);
	a.as_id = str(e->as_id);
	a.session_key_id = bin(e->session_id, e->session_id_len);
	a.app_s_key = &k;
	ev.time_ms = e->time_ms;
	ev.kind_case = DANEJOIN__EVENTS__EVENT__KIND_APPSKEY;
	ev.appskey = &a;
	return pack(&ev, buf, cap, len);
}

int ev_encode_transfer(const struct ev_transfer *e, uint8_t *buf, size_t cap, size_t *len)
{
	Event ev = DANEJOIN__EVENTS__EVENT__INIT;
	TransferEvent x = DANEJOIN__EVENTS__OWNERSHIP_TRANSFER_EVENT__INIT;
	ProtobufCBinaryData nets[EV_RIGHTS_MAX];
	char *ases[EV_RIGHTS_MAX];

	if (e == NULL || buf == NULL || len == NULL || e->n_net_ids > EV_RIGHTS_MAX ||
	    e->n_as_ids > EV_RIGHTS_MAX || e->from_zone == NULL || e->to_zone == NULL)
		return DJ_EINVAL;
	for (size_t i = 0; i < e->n_net_ids; i++)
		nets[i] = bin(e->net_ids[i], LW_NETID_LEN);
	for (size_t i = 0; i < e->n_as_ids; i++) {
		if (e->as_ids[i] == NULL)
			return DJ_EINVAL;
		ases[i] = str(e->as_ids[i]);
	}
	x.dev_eui = bin(e->dev_eui, LW_EUI_LEN);
	if (e->has_join_eui)
		x.join_eui = bin(e->join_eui, LW_EUI_LEN);
	x.from_zone = str(e->from_zone);
	x.to_zone = str(e->to_zone);
	x.serial = e->serial;
	x.n_net_ids = e->n_net_ids;
	x.net_ids = e->n_net_ids > 0 ? nets : NULL;
	x.n_as_ids = e->n_as_ids;
	x.as_ids = e->n_as_ids > 0 ? ases : NULL;
	ev.time_ms = e->time_ms;
	ev.kind_case = DANEJOIN__EVENTS__EVENT__KIND_OWNERSHIP_TRANSFER;
	ev.ownership_transfer = &x;
	return pack(&ev, buf, cap, len);
}

void ev_event_id(const uint8_t instance[JS_INSTANCE_ID_LEN], int64_t row_id, char out[EV_ID_MAX])
{
	char hex[2 * JS_INSTANCE_ID_LEN + 1];

	dj_hex_format(instance, JS_INSTANCE_ID_LEN, hex);
	snprintf(out, EV_ID_MAX, "%s-%lld", hex, (long long)row_id);
}

/* eui_of - the DevEUI of a decoded event (checked length), or NULL */
static const uint8_t *eui_of(const Event *ev)
{
	const ProtobufCBinaryData *d = NULL;

	switch (ev->kind_case) {
	case DANEJOIN__EVENTS__EVENT__KIND_JOIN: d = &ev->join->dev_eui; break;
	case DANEJOIN__EVENTS__EVENT__KIND_REJOIN: d = &ev->rejoin->dev_eui; break;
	case DANEJOIN__EVENTS__EVENT__KIND_APPSKEY: d = &ev->appskey->dev_eui; break;
	case DANEJOIN__EVENTS__EVENT__KIND_OWNERSHIP_TRANSFER:
		d = &ev->ownership_transfer->dev_eui;
		break;
	default: return NULL;
	}
	return d->len == LW_EUI_LEN ? d->data : NULL;
}

/* topic_of - PREFIX/join|rejoin|ownership/<deveui> or PREFIX/as/<as-id>/appskey/<deveui> */
static int topic_of(const Event *ev, const char *prefix, char *topic, size_t cap)
{
	const uint8_t *eui = eui_of(ev);
	char hex[2 * LW_EUI_LEN + 1];
	int n;

	if (eui == NULL)
		return DJ_EMALFORMED;
	dj_hex_format_upper(eui, LW_EUI_LEN, hex);
	if (ev->kind_case == DANEJOIN__EVENTS__EVENT__KIND_APPSKEY) {
		if (!name_ok(ev->appskey->as_id))
			return DJ_EMALFORMED;
		n = snprintf(topic, cap, "%s/as/%s/appskey/%s", prefix, ev->appskey->as_id, hex);
	} else if (ev->kind_case == DANEJOIN__EVENTS__EVENT__KIND_OWNERSHIP_TRANSFER) {
		n = snprintf(topic, cap, "%s/ownership/%s", prefix, hex);
	} else {
		n = snprintf(topic, cap, "%s/%s/%s", prefix,
			     ev->kind_case == DANEJOIN__EVENTS__EVENT__KIND_JOIN ? "join" : "rejoin",
			     hex);
	}
	return n < 0 || (size_t)n >= cap ? DJ_ENOSPC : DJ_EOK;
}

/* set_hex - obj[key] = upper-case hex of a bytes field (skipped when empty or oversized) */
static int set_hex(json_t *obj, const char *key, const ProtobufCBinaryData *d)
{
	char hex[HEX_MAX];

	if (d->len == 0 || d->len > FIELD_MAX)
		return 0;
	dj_hex_format_upper(d->data, d->len, hex);
	return json_object_set_new(obj, key, json_string(hex));
}

/* set_str - obj[key] = s, when s is non-empty (invalid UTF-8 is refused by jansson: -1) */
static int set_str(json_t *obj, const char *key, const char *s)
{
	if (s == NULL || s[0] == '\0')
		return 0;
	return json_object_set_new(obj, key, json_string(s));
}

/* join_json - the fields of a JoinEvent */
static int join_json(json_t *o, const JoinEvent *j, bool rejoin)
{
	int r = set_hex(o, "dev_eui", &j->dev_eui);

	r |= set_hex(o, "join_eui", &j->join_eui);
	r |= set_hex(o, "net_id", &j->net_id);
	r |= set_hex(o, "dev_addr", &j->dev_addr);
	r |= set_str(o, "mac_version", j->mac_version);
	r |= json_object_set_new(o, "accepted", json_boolean(j->accepted));
	r |= set_str(o, "result", j->result);
	r |= set_str(o, "reason", j->reason);
	if (rejoin)
		r |= json_object_set_new(o, "rejoin_type", json_integer(j->rejoin_type));
	r |= set_str(o, "peer", j->peer);
	r |= set_hex(o, "session_key_id", &j->session_key_id);
	if (j->accepted)
		r |= json_object_set_new(o, "join_nonce", json_integer(j->join_nonce));
	return r;
}

/* transfer_json - the fields of an OwnershipTransferEvent */
static int transfer_json(json_t *o, const TransferEvent *x)
{
	json_t *nets = json_array(), *ases = json_array();
	int r = set_hex(o, "dev_eui", &x->dev_eui);

	r |= set_hex(o, "join_eui", &x->join_eui);
	r |= set_str(o, "from_zone", x->from_zone);
	r |= set_str(o, "to_zone", x->to_zone);
	r |= json_object_set_new(o, "serial", json_integer((json_int_t)x->serial));
	if (nets == NULL || ases == NULL) {
		json_decref(nets);
		json_decref(ases);
		return -1;
	}
	for (size_t i = 0; i < x->n_net_ids; i++) {
		char hex[HEX_MAX];

		if (x->net_ids[i].len == 0 || x->net_ids[i].len > FIELD_MAX)
			continue;
		dj_hex_format_upper(x->net_ids[i].data, x->net_ids[i].len, hex);
		r |= json_array_append_new(nets, json_string(hex));
	}
	for (size_t i = 0; i < x->n_as_ids; i++)
		r |= json_array_append_new(ases, json_string(x->as_ids[i]));
	r |= json_object_set_new(o, "net_ids", nets);
	r |= json_object_set_new(o, "as_ids", ases);
	return r;
}

/* event_json - a decoded Event as a JSON object (new reference, or NULL) */
static json_t *event_json(const Event *ev)
{
	json_t *o = json_object(), *k;
	int r = 0;

	if (o == NULL)
		return NULL;
	r |= set_str(o, "id", ev->id);
	r |= json_object_set_new(o, "time_ms", json_integer(ev->time_ms));
	switch (ev->kind_case) {
	case DANEJOIN__EVENTS__EVENT__KIND_JOIN:
		r |= json_object_set_new(o, "type", json_string("join"));
		r |= join_json(o, ev->join, false);
		break;
	case DANEJOIN__EVENTS__EVENT__KIND_REJOIN:
		r |= json_object_set_new(o, "type", json_string("rejoin"));
		r |= join_json(o, ev->rejoin, true);
		break;
	case DANEJOIN__EVENTS__EVENT__KIND_APPSKEY:
		r |= json_object_set_new(o, "type", json_string("appskey"));
		r |= set_hex(o, "dev_eui", &ev->appskey->dev_eui);
		r |= set_hex(o, "join_eui", &ev->appskey->join_eui);
		r |= set_str(o, "as_id", ev->appskey->as_id);
		r |= set_hex(o, "session_key_id", &ev->appskey->session_key_id);
		if (ev->appskey->app_s_key != NULL) {
			k = json_object();
			if (k == NULL) {
				r = -1;
				break;
			}
			/* the wrapped key: useless without the AS's KEK */
			r |= set_str(k, "kek_label", ev->appskey->app_s_key->kek_label);
			r |= set_hex(k, "aes_key", &ev->appskey->app_s_key->aes_key);
			r |= json_object_set_new(o, "app_s_key", k);
		}
		break;
	case DANEJOIN__EVENTS__EVENT__KIND_OWNERSHIP_TRANSFER:
		r |= json_object_set_new(o, "type", json_string("ownership_transfer"));
		r |= transfer_json(o, ev->ownership_transfer);
		break;
	default:
		r = -1;
		break;
	}
	if (r != 0) {
		json_decref(o);
		return NULL;
	}
	return o;
}

/* dump - a JSON object as compact text, allocated */
static int dump(json_t *o, char **out, size_t *len)
{
	char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);

	if (s == NULL)
		return DJ_ENOMEM;
	*out = s;
	if (len != NULL)
		*len = strlen(s);
	return DJ_EOK;
}

int ev_render(const uint8_t *body, size_t len, const char *id, const char *prefix,
	      enum ev_format fmt, char *topic, size_t topic_cap, uint8_t **payload,
	      size_t *payload_len)
{
	Event *ev = NULL;
	json_t *o = NULL;
	char *old_id, *js = NULL;
	uint8_t *buf = NULL;
	size_t n = 0;
	int ret = DJ_EMALFORMED;

	ev = danejoin__events__event__unpack(NULL, len, body);
	if (ev == NULL)
		goto out;
	ret = topic_of(ev, prefix, topic, topic_cap);
	if (ret != DJ_EOK)
		goto out;
	old_id = ev->id;
	ev->id = str(id);
	if (fmt == EV_FORMAT_JSON) {
		o = event_json(ev);
		ret = o != NULL ? dump(o, &js, &n) : DJ_EMALFORMED;
		buf = (uint8_t *)js;
	} else {
		ret = DJ_ENOMEM;
		n = danejoin__events__event__get_packed_size(ev);
		buf = malloc(n != 0 ? n : 1);
		if (buf != NULL) {
			n = danejoin__events__event__pack(ev, buf);
			ret = DJ_EOK;
		}
	}
	ev->id = old_id;	/* free_unpacked frees what unpack allocated */
	if (ret != DJ_EOK)
		goto out;
	*payload = buf;
	*payload_len = n;
	buf = NULL;
out:
	json_decref(o);
	ev_payload_free(buf, n);
	if (ev != NULL)
		danejoin__events__event__free_unpacked(ev, NULL);
	return ret;
}

void ev_payload_free(uint8_t *payload, size_t len)
{
	if (payload == NULL)
		return;
	OPENSSL_cleanse(payload, len);
	free(payload);
}

int ev_to_json(const uint8_t *payload, size_t len, const char *topic, char **out)
{
	Event *ev = NULL;
	json_t *o = NULL;
	json_error_t jerr;
	int ret = DJ_EMALFORMED;

	if (len > 0 && payload[0] == '{') {
		o = json_loadb((const char *)payload, len, 0, &jerr);
		if (o == NULL || !json_is_object(o))
			goto out;
	} else {
		ev = danejoin__events__event__unpack(NULL, len, payload);
		if (ev == NULL)
			goto out;
		o = event_json(ev);
		if (o == NULL)
			goto out;
	}
	if (topic != NULL && json_object_set_new(o, "topic", json_string(topic)) != 0)
		goto out;
	ret = dump(o, out, NULL);
out:
	json_decref(o);
	if (ev != NULL)
		danejoin__events__event__free_unpacked(ev, NULL);
	return ret;
}
