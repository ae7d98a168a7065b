/*
 * bi_msg.c - LoRaWAN Backend Interfaces (TS002-1.0 / TS002-1.1) messages: JSON parse and encode.
 *
 * PURPOSE
 *	The join server's HTTP front end hands every request body to bi_msg_parse() and every
 *	answer to bi_msg_encode(). The parser checks each field it reads: JSON type, hex syntax,
 *	exact byte length, value range, which fields the MessageType requires and which the
 *	ProtocolVersion allows, and names the first field that is wrong so the answer can say so.
 *
 * SECURITY
 *	- The body is network input from a peer we have not yet authorised for anything: nothing in
 *	  it is trusted, every copy is bounded by the destination buffer, strings with an embedded
 *	  NUL are refused (they would be cut short by C string handling and compare equal to
 *	  something else), and duplicate keys are refused by the JSON parser (JSON_REJECT_DUPLICATES)
 *	  so that two components can never read two different values of the same field.
 *	- Integers are range-checked before conversion; a JSON real where an integer is required
 *	  is refused rather than truncated.
 *	- The header (ProtocolVersion, IDs, TransactionID, MessageType, tokens) is read before
 *	  anything else and every valid header field is kept even when another one fails, so the
 *	  answer to a bad request still echoes the right TransactionID (TS002 §8.1).
 *	- Error texts name fields and say what is wrong with them; they never quote values, so
 *	  neither key bytes nor attacker-chosen text reach logs through them. For JSON syntax
 *	  errors only line and column are reported (jansson's own text quotes input).
 *	- Key material travels only as KeyEnvelopes (AESKey is wrapped under a KEK except for
 *	  peers whose policy explicitly allows plaintext). Temporary buffers that held key bytes
 *	  are wiped with OPENSSL_cleanse. jansson does not wipe the strings it frees, so the
 *	  json_t trees of a parse or an encode are allocated from a per-thread arena (below) that
 *	  is wiped when the parse or encode ends: AESKey hex does not stay in freed heap. Only
 *	  what did not fit in the arena (a message far larger than any TS002 message) goes to
 *	  malloc and is freed unwiped, as before; that is normally a wrapped key.
 *
 * PERFORMANCE (docs/performance.md, step 3)
 *	jansson allocates every node, key, string and hashtable separately: about a hundred
 *	malloc/free pairs per JoinReq and JoinAns. During bi_msg_parse() and bi_msg_encode() its
 *	allocator (json_set_alloc_funcs, set once per process) hands out a bump pointer in a
 *	per-thread arena and frees nothing; the arena is wiped and reset when the call ends.
 *	Outside those calls (configuration, admin API, other threads) the functions are malloc
 *	and free. No json_t made in the arena outlives the call: parse and encode free their
 *	trees before they return.
 */
#include "bi/bi_msg.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/crypto.h>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#define ARENA_POISON(p, n)   ASAN_POISON_MEMORY_REGION((p), (n))
#define ARENA_UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define ARENA_POISON(p, n)   ((void)(p), (void)(n))
#define ARENA_UNPOISON(p, n) ((void)(p), (void)(n))
#endif

#include "common/dj_err.h"
#include "common/dj_hex.h"

#define BI_HEX_TMP_MAX 64		/* the longest hex field: SenderToken/ReceiverToken */
#define BI_TRANSACTION_ID_MAX 0xffffffffu	/* TS002 §8.1: 32-bit unsigned */
#define BI_RX_DELAY_MAX 15		/* TS001 §5.7 RxTimingSetupReq: Del is 4 bits */
#define BI_DL_SETTINGS_LEN 1		/* TS002 §9.1: DLSettings, one octet */
#define BI_LIFETIME_MAX 0xffffffffu	/* held in a uint32_t */
#define BI_HEX_PREFIX_LEN 2		/* "0x" */
#define BI_AESKEY_MIN 16		/* a plain AES-128 key; a wrapped one is longer */
#define BI_AESKEY_UNIT 8		/* RFC 3394 §2: whole 64-bit semiblocks */

#define BI_ARENA_SIZE 16384	/* a JoinReq's tree takes about 5 KB, a JoinAns's about 6 KB */
#define BI_ARENA_ALIGN 16	/* malloc's alignment on x86-64 and aarch64 */

/* The calling thread's arena: live while on is set (one parse or one encode). */
struct arena {
	_Alignas(BI_ARENA_ALIGN) uint8_t buf[BI_ARENA_SIZE];
	size_t used;	/* bytes handed out since the last wipe */
	size_t last;	/* used at the last wipe (tests) */
	bool on;
};

static _Thread_local struct arena arena;
static pthread_once_t arena_once = PTHREAD_ONCE_INIT;

/* arena_malloc - jansson's malloc: the arena while on and not full, else malloc */
static void *arena_malloc(size_t n)
{
	struct arena *a = &arena;
	size_t need = (n + BI_ARENA_ALIGN - 1) / BI_ARENA_ALIGN * BI_ARENA_ALIGN;
	void *p;

	if (!a->on || need == 0)
		return malloc(n);
	if (need > sizeof(a->buf) - a->used) {
		a->last = sizeof(a->buf);	/* full: the rest goes to malloc */
		return malloc(n);
	}
	p = a->buf + a->used;
	a->used += need;
	ARENA_UNPOISON(p, n);
	return p;
}

/* arena_free - jansson's free: nothing for the calling thread's arena, else free */
static void arena_free(void *p)
{
	const uint8_t *b = p;

	if (b >= arena.buf && b < arena.buf + sizeof(arena.buf))
		return;	/* wiped and reused when the call ends */
	free(p);
}

/* arena_setup - route jansson's allocations through the arena functions, once per process */
static void arena_setup(void)
{
	json_set_alloc_funcs(arena_malloc, arena_free);
}

void bi_msg_init(void)
{
	pthread_once(&arena_once, arena_setup);
}

/* arena_begin - the calling thread's jansson allocations go to its arena until arena_end */
static void arena_begin(void)
{
	pthread_once(&arena_once, arena_setup);
	ARENA_POISON(arena.buf, sizeof(arena.buf));
	arena.used = arena.last = 0;
	arena.on = true;
}

/* arena_end - wipe what the call allocated (it may hold AESKey hex) and switch back to malloc */
static void arena_end(void)
{
	arena.on = false;
	if (arena.last < arena.used)
		arena.last = arena.used;
	ARENA_UNPOISON(arena.buf, arena.used);
	OPENSSL_cleanse(arena.buf, arena.used);
	ARENA_POISON(arena.buf, sizeof(arena.buf));
	arena.used = 0;
}

size_t bi_msg__arena_last(void)
{
	return arena.last;
}

bool bi_msg__arena_holds(const void *needle, size_t n)
{
	bool found = false;

	ARENA_UNPOISON(arena.buf, sizeof(arena.buf));
	for (size_t i = 0; n > 0 && i + n <= sizeof(arena.buf) && !found; i++)
		found = memcmp(arena.buf + i, needle, n) == 0;
	ARENA_POISON(arena.buf, sizeof(arena.buf));
	return found;
}

/* Parsing state: the message being filled and the error buffer. */
struct pctx {
	json_t *root;
	struct bi_msg *m;
	char *err;
	size_t errlen;
};

/* type_names - MessageType texts, indexed by enum bi_msg_type */
static const char *const type_names[] = {
	[BI_JOIN_REQ] = "JoinReq",	 [BI_JOIN_ANS] = "JoinAns",
	[BI_REJOIN_REQ] = "RejoinReq",	 [BI_REJOIN_ANS] = "RejoinAns",
	[BI_APPSKEY_REQ] = "AppSKeyReq", [BI_APPSKEY_ANS] = "AppSKeyAns",
	[BI_HOMENS_REQ] = "HomeNSReq",	 [BI_HOMENS_ANS] = "HomeNSAns",
};

/* result_names - ResultCode texts in the TS002-1.1 Table 24 spelling (bi_result_str() gives the
 * 1.0 spelling of BI_UNKNOWN_RECEIVER) */
static const char *const result_names[BI_RESULT_COUNT] = {
	[BI_SUCCESS] = "Success",
	[BI_MIC_FAILED] = "MICFailed",
	[BI_JOIN_REQ_FAILED] = "JoinReqFailed",
	[BI_NO_ROAMING_AGREEMENT] = "NoRoamingAgreement",
	[BI_DEV_ROAMING_DISALLOWED] = "DevRoamingDisallowed",
	[BI_ROAMING_ACT_DISALLOWED] = "RoamingActDisallowed",
	[BI_ACTIVATION_DISALLOWED] = "ActivationDisallowed",
	[BI_UNKNOWN_DEVEUI] = "UnknownDevEUI",
	[BI_UNKNOWN_DEVADDR] = "UnknownDevAddr",
	[BI_UNKNOWN_SENDER] = "UnknownSender",
	[BI_UNKNOWN_RECEIVER] = "UnknownReceiver",
	[BI_DEFERRED] = "Deferred",
	[BI_XMIT_FAILED] = "XmitFailed",
	[BI_INVALID_FCNTUP] = "InvalidFCntUp",
	[BI_INVALID_PROTOCOL_VERSION] = "InvalidProtocolVersion",
	[BI_STALE_DEVICE_PROFILE] = "StaleDeviceProfile",
	[BI_MALFORMED_REQUEST] = "MalformedRequest",
	[BI_FRAME_SIZE_ERROR] = "FrameSizeError",
	[BI_OTHER] = "Other",
};

#define BI_UNKNOWN_RECEIVER_1_0 "UnkownReceiver"	/* TS002-1.0 §18 misspelling */

const char *bi_result_str(enum bi_result r, enum bi_proto proto)
{
	if ((unsigned)r >= BI_RESULT_COUNT)
		return result_names[BI_OTHER];
	if (r == BI_UNKNOWN_RECEIVER && proto == BI_PROTO_1_0)
		return BI_UNKNOWN_RECEIVER_1_0;
	return result_names[r];
}

const char *bi_msg_type_str(enum bi_msg_type t)
{
	if ((unsigned)t >= DJ_ARRAY_LEN(type_names))
		return "Unknown";
	return type_names[t];
}

/* is_request - whether a message type is a request (the others are answers) */
static bool is_request(enum bi_msg_type t)
{
	return t == BI_JOIN_REQ || t == BI_REJOIN_REQ || t == BI_APPSKEY_REQ ||
	       t == BI_HOMENS_REQ;
}

/* fail - write "field NAME: WHAT" unless an earlier failure did; returns DJ_EMALFORMED */
static int fail(struct pctx *p, const char *name, const char *what)
{
	if (p->err != NULL && p->errlen > 0 && p->err[0] == '\0')
		snprintf(p->err, p->errlen, "field %s: %s", name, what);
	return DJ_EMALFORMED;
}

/*
 * get_str - the string field name of obj: DJ_EOK with *out set, DJ_ENOENT when absent and
 * optional, DJ_EMALFORMED (error written) when absent and required, not a string or holding a NUL
 */
static int get_str(struct pctx *p, json_t *obj, const char *name, bool required,
		   const char **out)
{
	json_t *v = json_object_get(obj, name);
	const char *s;

	if (v == NULL)
		return required ? fail(p, name, "missing") : DJ_ENOENT;
	if (!json_is_string(v))
		return fail(p, name, "not a string");
	s = json_string_value(v);
	if (strlen(s) != json_string_length(v))
		return fail(p, name, "contains a NUL character");
	*out = s;
	return DJ_EOK;
}

/* get_text - a string field copied into buf (cap bytes with the NUL); *present set when found */
static int get_text(struct pctx *p, json_t *obj, const char *name, bool required, char *buf,
		    size_t cap, bool *present)
{
	const char *s = NULL;
	size_t n;
	int ret;

	ret = get_str(p, obj, name, required, &s);
	if (ret == DJ_ENOENT)
		return DJ_EOK;
	if (ret != DJ_EOK)
		return ret;
	n = strlen(s);
	if (n >= cap)
		return fail(p, name, "too long");
	memcpy(buf, s, n + 1);
	if (present != NULL)
		*present = true;
	return DJ_EOK;
}

/*
 * get_uint - an integer field in 0..max; *present set when found (absent and optional leaves
 * *out untouched)
 */
static int get_uint(struct pctx *p, json_t *obj, const char *name, bool required, uint64_t max,
		    uint64_t *out, bool *present)
{
	json_t *v = json_object_get(obj, name);
	json_int_t i;

	if (v == NULL)
		return required ? fail(p, name, "missing") : DJ_EOK;
	if (!json_is_integer(v))
		return fail(p, name, "not an integer");
	i = json_integer_value(v);
	if (i < 0)
		return fail(p, name, "negative");
	if ((uint64_t)i > max)
		return fail(p, name, "out of range");
	*out = (uint64_t)i;
	if (present != NULL)
		*present = true;
	return DJ_EOK;
}

/*
 * get_hex - a hex field of min..cap bytes into out; *len (when not NULL) gets the length and
 * *present (when not NULL) is set. *bad_size (when not NULL) tells a length error from a syntax
 * error, for the FrameSizeError of PHYPayload.
 */
static int get_hex(struct pctx *p, json_t *obj, const char *name, bool required, size_t min,
		   size_t cap, uint8_t *out, size_t *len, bool *present, bool *bad_size)
{
	uint8_t tmp[BI_HEX_TMP_MAX];
	const char *s = NULL, *digits;
	size_t n = 0, ndig;
	int ret;

	if (cap > sizeof(tmp))
		return DJ_EINVAL;	/* a caller's bug, not the peer's */
	ret = get_str(p, obj, name, required, &s);
	if (ret == DJ_ENOENT)
		return DJ_EOK;
	if (ret != DJ_EOK)
		return ret;
	digits = s;
	if (digits[0] == '0' && (digits[1] == 'x' || digits[1] == 'X'))
		digits += BI_HEX_PREFIX_LEN;
	ndig = strlen(digits);
	if (ndig % 2 == 0 && (ndig / 2 > cap || ndig / 2 < min)) {
		if (bad_size != NULL)
			*bad_size = true;
		return fail(p, name, min == cap ? "wrong length" : "length out of range");
	}
	ret = dj_hex_parse_var(s, tmp, sizeof(tmp), &n);
	if (ret != DJ_EOK) {
		ret = fail(p, name, "not hexadecimal");
		goto out;
	}
	memcpy(out, tmp, n);
	if (len != NULL)
		*len = n;
	if (present != NULL)
		*present = true;
	ret = DJ_EOK;
out:
	OPENSSL_cleanse(tmp, sizeof(tmp));	/* AESKey passes through here */
	return ret;
}

/* proto_parse - "1.0" or "1.1" */
static int proto_parse(const char *s, enum bi_proto *out)
{
	if (strcmp(s, "1.0") == 0)
		*out = BI_PROTO_1_0;
	else if (strcmp(s, "1.1") == 0)
		*out = BI_PROTO_1_1;
	else
		return DJ_EMALFORMED;
	return DJ_EOK;
}

/* keep_first - remember the first failure of a sequence of independent checks */
static void keep_first(int *first, int ret)
{
	if (*first == DJ_EOK && ret != DJ_EOK)
		*first = ret;
}

/*
 * parse_header - the fields every message carries. Each field is read even after another one
 * failed, so that an answer can echo as much as possible; the first failure is returned.
 */
static int parse_header(struct pctx *p)
{
	struct bi_msg *m = p->m;
	json_t *o = p->root;
	const char *s = NULL;
	uint64_t tid = 0;
	bool got = false;
	int first = DJ_EOK, ret;

	ret = get_str(p, o, "ProtocolVersion", true, &s);
	if (ret == DJ_EOK && proto_parse(s, &m->proto) != DJ_EOK) {
		ret = fail(p, "ProtocolVersion", "unsupported version");
		m->result = BI_INVALID_PROTOCOL_VERSION;
	}
	keep_first(&first, ret);
	keep_first(&first, get_text(p, o, "SenderID", true, m->sender_id, BI_ID_MAX, NULL));
	keep_first(&first, get_text(p, o, "ReceiverID", true, m->receiver_id, BI_ID_MAX, NULL));
	ret = get_uint(p, o, "TransactionID", true, BI_TRANSACTION_ID_MAX, &tid, &got);
	if (ret == DJ_EOK && got)
		m->transaction_id = (uint32_t)tid;
	keep_first(&first, ret);
	ret = get_str(p, o, "MessageType", true, &s);
	if (ret == DJ_EOK) {
		size_t i;

		for (i = 0; i < DJ_ARRAY_LEN(type_names); i++)
			if (strcmp(s, type_names[i]) == 0)
				break;
		if (i < DJ_ARRAY_LEN(type_names))
			m->type = (enum bi_msg_type)i;
		else
			ret = fail(p, "MessageType", "unknown message type");
	}
	keep_first(&first, ret);
	keep_first(&first, get_hex(p, o, "SenderToken", false, 1, BI_TOKEN_MAX, m->sender_token,
				   &m->sender_token_len, &m->has_sender_token, NULL));
	keep_first(&first, get_hex(p, o, "ReceiverToken", false, 1, BI_TOKEN_MAX,
				   m->receiver_token, &m->receiver_token_len,
				   &m->has_receiver_token, NULL));
	keep_first(&first, get_text(p, o, "SenderNSID", false, m->sender_ns_id, BI_ID_MAX,
				    &m->has_sender_ns_id));
	keep_first(&first, get_text(p, o, "ReceiverNSID", false, m->receiver_ns_id, BI_ID_MAX,
				    &m->has_receiver_ns_id));
	return first;
}

/* parse_phy - PHYPayload of one of the allowed sizes; a wrong size is a FrameSizeError */
static int parse_phy(struct pctx *p, bool required, const size_t *sizes, size_t nsizes)
{
	struct bi_msg *m = p->m;
	bool bad_size = false, present = false;
	size_t len = 0;
	int ret;

	ret = get_hex(p, p->root, "PHYPayload", required, 1, LW_PHY_MAX, m->phy, &len, &present,
		      &bad_size);
	if (ret == DJ_EOK && present) {
		bad_size = true;
		for (size_t i = 0; i < nsizes; i++)
			if (len == sizes[i])
				bad_size = false;
		if (bad_size)
			ret = fail(p, "PHYPayload", "wrong frame size");
		else
			m->phy_len = len;
	}
	if (bad_size)
		m->result = BI_FRAME_SIZE_ERROR;
	return ret;
}

/* get_dev_eui - the message's DevEUI (8 bytes of hex) */
static int get_dev_eui(struct pctx *p, bool required)
{
	struct bi_msg *m = p->m;

	return get_hex(p, p->root, "DevEUI", required, LW_EUI_LEN, LW_EUI_LEN, m->dev_eui, NULL,
		       &m->has_dev_eui, NULL);
}

/* get_session_key_id - the message's SessionKeyID (1 to BI_SESSION_KEY_ID_MAX bytes of hex) */
static int get_session_key_id(struct pctx *p, bool required)
{
	struct bi_msg *m = p->m;

	return get_hex(p, p->root, "SessionKeyID", required, 1, BI_SESSION_KEY_ID_MAX,
		       m->session_key_id, &m->session_key_id_len, NULL, NULL);
}

/* parse_join_req - JoinReq and RejoinReq (TS002 §9.1, §9.2) */
static int parse_join_req(struct pctx *p)
{
	static const size_t join_sizes[] = { LW_JOINREQ_LEN };
	static const size_t rejoin_sizes[] = { LW_REJOIN02_LEN, LW_REJOIN1_LEN };
	struct bi_msg *m = p->m;
	json_t *o = p->root, *cf;
	const char *s = NULL;
	uint64_t rx = 0;
	int ret;

	ret = get_str(p, o, "MACVersion", true, &s);
	if (ret != DJ_EOK)
		goto out;
	if (lw_version_parse(s, &m->mac_version) != DJ_EOK) {
		ret = fail(p, "MACVersion", "unknown LoRaWAN version");
		goto out;
	}
	if (m->type == BI_JOIN_REQ)
		ret = parse_phy(p, true, join_sizes, DJ_ARRAY_LEN(join_sizes));
	else
		ret = parse_phy(p, true, rejoin_sizes, DJ_ARRAY_LEN(rejoin_sizes));
	if (ret != DJ_EOK)
		goto out;
	ret = get_dev_eui(p, true);
	if (ret != DJ_EOK)
		goto out;
	ret = get_hex(p, o, "DevAddr", true, LW_DEVADDR_LEN, LW_DEVADDR_LEN, m->dev_addr, NULL,
		      NULL, NULL);
	if (ret != DJ_EOK)
		goto out;
	ret = get_hex(p, o, "DLSettings", true, BI_DL_SETTINGS_LEN, BI_DL_SETTINGS_LEN,
		      &m->dl_settings, NULL, NULL, NULL);
	if (ret != DJ_EOK)
		goto out;
	ret = get_uint(p, o, "RxDelay", true, BI_RX_DELAY_MAX, &rx, NULL);
	if (ret != DJ_EOK)
		goto out;
	m->rx_delay = (uint8_t)rx;
	/* The Things Stack writes a missing CFList as "" (a nil Buffer through encoding/json):
	 * an empty string is no CFList, as an absent field is */
	cf = json_object_get(o, "CFList");
	if (json_is_string(cf) && json_string_length(cf) == 0)
		goto out;
	ret = get_hex(p, o, "CFList", false, LW_CFLIST_LEN, LW_CFLIST_LEN, m->cflist, NULL,
		      &m->has_cflist, NULL);
out:
	return ret;
}

/* parse_result - the Result object of an answer */
static int parse_result(struct pctx *p)
{
	struct bi_msg *m = p->m;
	json_t *r = json_object_get(p->root, "Result");
	const char *s = NULL;

	if (r == NULL)
		return fail(p, "Result", "missing");
	if (!json_is_object(r))
		return fail(p, "Result", "not an object");
	struct pctx sub = *p;
	size_t i;

	sub.err = NULL;	/* the error names "Result.ResultCode", not "ResultCode" */
	if (get_str(&sub, r, "ResultCode", true, &s) != DJ_EOK)
		return fail(p, "Result.ResultCode", "missing or not a string");
	for (i = 0; i < BI_RESULT_COUNT; i++)
		if (strcmp(s, result_names[i]) == 0)
			break;
	if (i < BI_RESULT_COUNT)
		m->result = (enum bi_result)i;
	else if (strcmp(s, BI_UNKNOWN_RECEIVER_1_0) == 0)
		m->result = BI_UNKNOWN_RECEIVER;
	else
		return fail(p, "Result.ResultCode", "unknown result code");
	if (get_text(&sub, r, "Description", false, m->description, BI_DESC_MAX, NULL) != DJ_EOK)
		return fail(p, "Result.Description", "not a string or too long");
	return DJ_EOK;
}

/* parse_envelope - an optional KeyEnvelope {"KEKLabel", "AESKey"} */
static int parse_envelope(struct pctx *p, const char *name, struct bi_key_envelope *env)
{
	json_t *e = json_object_get(p->root, name);
	struct pctx sub = *p;
	bool got = false;
	int ret;

	if (e == NULL)
		return DJ_EOK;
	if (!json_is_object(e))
		return fail(p, name, "not an object");
	sub.root = e;
	sub.err = NULL;	/* the error names the envelope */
	/* absent KEKLabel: a plaintext envelope, which bi_kek_open refuses unless allowed */
	ret = get_text(&sub, e, "KEKLabel", false, env->kek_label, BI_KEK_LABEL_MAX, NULL);
	if (ret != DJ_EOK)
		return fail(p, name, "KEKLabel not a string or too long");
	ret = get_hex(&sub, e, "AESKey", true, BI_AESKEY_MIN, BI_AESKEY_MAX, env->aes_key,
		      &env->aes_key_len, &got, NULL);
	if (ret == DJ_EOK && env->aes_key_len % BI_AESKEY_UNIT != 0)
		ret = DJ_EMALFORMED;
	if (ret != DJ_EOK)
		return fail(p, name, "AESKey missing, not hexadecimal or of a wrong length");
	env->present = true;
	return DJ_EOK;
}

/* parse_join_ans - the body of JoinAns/RejoinAns */
static int parse_join_ans(struct pctx *p)
{
	static const size_t acc_sizes[] = { LW_JOINACC_LEN, LW_JOINACC_CF_LEN };
	struct bi_msg *m = p->m;
	uint64_t lt = 0;
	int ret;

	ret = parse_phy(p, false, acc_sizes, DJ_ARRAY_LEN(acc_sizes));
	if (ret != DJ_EOK)
		goto out;
	ret = get_uint(p, p->root, "Lifetime", false, BI_LIFETIME_MAX, &lt, &m->has_lifetime);
	if (ret != DJ_EOK)
		goto out;
	m->lifetime = (uint32_t)lt;
	if ((ret = parse_envelope(p, "SNwkSIntKey", &m->s_nwk_s_int_key)) != DJ_EOK ||
	    (ret = parse_envelope(p, "FNwkSIntKey", &m->f_nwk_s_int_key)) != DJ_EOK ||
	    (ret = parse_envelope(p, "NwkSEncKey", &m->nwk_s_enc_key)) != DJ_EOK ||
	    (ret = parse_envelope(p, "NwkSKey", &m->nwk_s_key)) != DJ_EOK ||
	    (ret = parse_envelope(p, "AppSKey", &m->app_s_key)) != DJ_EOK)
		goto out;
	ret = get_session_key_id(p, false);
out:
	return ret;
}

/* parse_body - the fields of m->type after the header */
static int parse_body(struct pctx *p)
{
	struct bi_msg *m = p->m;
	json_t *o = p->root;
	int ret = DJ_EOK;

	switch (m->type) {
	case BI_JOIN_REQ:
	case BI_REJOIN_REQ:
		ret = parse_join_req(p);
		break;
	case BI_JOIN_ANS:
	case BI_REJOIN_ANS:
		ret = parse_join_ans(p);
		break;
	case BI_APPSKEY_REQ:
		ret = get_dev_eui(p, true);
		if (ret == DJ_EOK)
			ret = get_session_key_id(p, true);
		break;
	case BI_APPSKEY_ANS:
		ret = get_dev_eui(p, false);
		if (ret == DJ_EOK)
			ret = parse_envelope(p, "AppSKey", &m->app_s_key);
		if (ret == DJ_EOK)
			ret = get_session_key_id(p, false);
		break;
	case BI_HOMENS_REQ:
		ret = get_dev_eui(p, true);
		break;
	case BI_HOMENS_ANS:
		ret = get_hex(p, o, "HNetID", false, LW_NETID_LEN, LW_NETID_LEN, m->h_net_id, NULL,
			      &m->has_h_net_id, NULL);
		if (ret == DJ_EOK)
			ret = get_text(p, o, "HNSID", false, m->hns_id, BI_ID_MAX, &m->has_hns_id);
		break;
	}
	return ret;
}

/* parse_msg - bi_msg_parse() with jansson's allocations in the arena */
static int parse_msg(const char *json, size_t len, struct bi_msg *out, char *err, size_t errlen)
{
	struct pctx p = { .root = NULL, .m = out, .err = err, .errlen = errlen };
	json_error_t jerr;
	char what[BI_ERR_MAX];
	int ret = DJ_EMALFORMED;

	if (err != NULL && errlen > 0)
		err[0] = '\0';
	memset(out, 0, sizeof(*out));
	out->result = BI_MALFORMED_REQUEST;
	if (json == NULL) {
		ret = fail(&p, "(body)", "missing");
		goto out;
	}
	p.root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
	if (p.root == NULL) {
		/* jerr.text may quote the input (a key, say): only line and column are kept */
		if (json_error_code(&jerr) == json_error_out_of_memory) {
			ret = DJ_ENOMEM;
			goto out;
		}
		snprintf(what, sizeof(what), "%s at line %d column %d",
			 json_error_code(&jerr) == json_error_duplicate_key ? "duplicate key"
									      : "not valid JSON",
			 jerr.line, jerr.column);
		ret = fail(&p, "(body)", what);
		goto out;
	}
	if (!json_is_object(p.root)) {
		ret = fail(&p, "(body)", "not a JSON object");
		goto out;
	}
	ret = parse_header(&p);
	if (ret != DJ_EOK)
		goto out;
	/* TS002-1.1 §13: a network server's request carries SenderNSID iff it speaks 1.1 */
	if (out->type == BI_JOIN_REQ || out->type == BI_REJOIN_REQ || out->type == BI_HOMENS_REQ) {
		if (out->proto == BI_PROTO_1_1 && !out->has_sender_ns_id) {
			ret = fail(&p, "SenderNSID", "missing (required by ProtocolVersion 1.1)");
			goto out;
		}
		if (out->proto == BI_PROTO_1_0 && out->has_sender_ns_id) {
			ret = fail(&p, "SenderNSID", "not allowed in ProtocolVersion 1.0");
			goto out;
		}
	}
	if (is_request(out->type))
		out->result = BI_SUCCESS;	/* an answer's comes from its Result */
	ret = parse_body(&p);
	if (ret != DJ_EOK)
		goto out;
	if (!is_request(out->type))
		ret = parse_result(&p);
out:
	if (ret != DJ_EOK && out->result != BI_INVALID_PROTOCOL_VERSION &&
	    out->result != BI_FRAME_SIZE_ERROR)
		out->result = BI_MALFORMED_REQUEST;
	if (ret != DJ_EOK)
		bi_msg_wipe(out);	/* a half-read envelope is of no use to anyone */
	json_decref(p.root);
	return ret;
}

int bi_msg_parse(const char *json, size_t len, struct bi_msg *out, char *err, size_t errlen)
{
	int ret;

	arena_begin();
	ret = parse_msg(json, len, out, err, errlen);
	arena_end();
	return ret;
}

/* set_new - json_object_set_new, as DJ_EOK or DJ_ENOMEM (the value is taken either way). Every
 * name is a literal of this file in ASCII: jansson's UTF-8 check of it is skipped (_nocheck). */
static int set_new(json_t *o, const char *name, json_t *v)
{
	if (v == NULL)
		return DJ_ENOMEM;
	return json_object_set_new_nocheck(o, name, v) == 0 ? DJ_EOK : DJ_ENOMEM;
}

/* lit - a JSON string of a text of this file (a name table's entry): ASCII, so unchecked */
static json_t *lit(const char *s)
{
	return json_string_nocheck(s);
}

/* set_hex - put len bytes as lowercase hex; the text buffer is wiped (it may hold a key) */
static int set_hex(json_t *o, const char *name, const uint8_t *b, size_t len)
{
	char text[2 * BI_HEX_TMP_MAX + 1];
	int ret = DJ_EINVAL;

	if (len > BI_HEX_TMP_MAX)
		goto out;
	dj_hex_format(b, len, text);
	ret = set_new(o, name, json_stringn_nocheck(text, 2 * len));	/* hex digits: ASCII */
out:
	OPENSSL_cleanse(text, sizeof(text));
	return ret;
}

/* set_string - put text that jansson checks as UTF-8: DJ_EINVAL when it is not UTF-8 (the
 * unchecked constructor then succeeds), DJ_ENOMEM when memory ran out */
static int set_string(json_t *o, const char *name, const char *s)
{
	json_t *v = json_string(s);

	if (v == NULL) {
		v = json_string_nocheck(s);
		if (v == NULL)
			return DJ_ENOMEM;
		json_decref(v);
		return DJ_EINVAL;
	}
	return set_new(o, name, v);
}

/* set_text - put a NUL-terminated string that must fit in cap bytes */
static int set_text(json_t *o, const char *name, const char *s, size_t cap)
{
	if (memchr(s, '\0', cap) == NULL)
		return DJ_EINVAL;
	return set_string(o, name, s);
}

/* set_envelope - put a KeyEnvelope when present. jansson keeps the AESKey text in heap it
 * frees without wiping; acceptable because AESKey is a wrapped key except for peers whose
 * policy explicitly allows plaintext. */
static int set_envelope(json_t *o, const char *name, const struct bi_key_envelope *env)
{
	json_t *e = NULL;
	int ret = DJ_EOK;

	if (!env->present)
		goto out;
	ret = DJ_EINVAL;
	if (env->aes_key_len == 0 || env->aes_key_len > BI_AESKEY_MAX)
		goto out;
	ret = DJ_ENOMEM;
	e = json_object();
	if (e == NULL)
		goto out;
	if ((ret = set_text(e, "KEKLabel", env->kek_label, BI_KEK_LABEL_MAX)) != DJ_EOK ||
	    (ret = set_hex(e, "AESKey", env->aes_key, env->aes_key_len)) != DJ_EOK)
		goto out;
	ret = set_new(o, name, e);
	e = NULL;	/* taken */
out:
	json_decref(e);
	return ret;
}

/* encode_header - the common header */
static int encode_header(const struct bi_msg *m, json_t *o)
{
	int ret;

	if ((ret = set_new(o, "ProtocolVersion",
			   lit(m->proto == BI_PROTO_1_1 ? "1.1" : "1.0"))) != DJ_EOK ||
	    (ret = set_text(o, "SenderID", m->sender_id, BI_ID_MAX)) != DJ_EOK ||
	    (ret = set_text(o, "ReceiverID", m->receiver_id, BI_ID_MAX)) != DJ_EOK ||
	    (ret = set_new(o, "TransactionID", json_integer(m->transaction_id))) != DJ_EOK ||
	    (ret = set_new(o, "MessageType", lit(type_names[m->type]))) != DJ_EOK)
		return ret;
	if (m->has_sender_token &&
	    (m->sender_token_len == 0 || m->sender_token_len > BI_TOKEN_MAX))
		return DJ_EINVAL;
	if (m->has_sender_token &&
	    (ret = set_hex(o, "SenderToken", m->sender_token, m->sender_token_len)) != DJ_EOK)
		return ret;
	if (m->has_receiver_token &&
	    (m->receiver_token_len == 0 || m->receiver_token_len > BI_TOKEN_MAX))
		return DJ_EINVAL;
	if (m->has_receiver_token &&
	    (ret = set_hex(o, "ReceiverToken", m->receiver_token, m->receiver_token_len)) !=
		    DJ_EOK)
		return ret;
	if (m->proto != BI_PROTO_1_1)
		return DJ_EOK;	/* the NSIDs are TS002-1.1 fields */
	if (m->has_sender_ns_id &&
	    (ret = set_text(o, "SenderNSID", m->sender_ns_id, BI_ID_MAX)) != DJ_EOK)
		return ret;
	if (m->has_receiver_ns_id &&
	    (ret = set_text(o, "ReceiverNSID", m->receiver_ns_id, BI_ID_MAX)) != DJ_EOK)
		return ret;
	return DJ_EOK;
}

/* encode_body - the fields of m->type after the header */
static int encode_body(const struct bi_msg *m, json_t *o)
{
	json_t *r;
	int ret = DJ_EOK;

	if (m->phy_len > LW_PHY_MAX || m->session_key_id_len > BI_SESSION_KEY_ID_MAX)
		return DJ_EINVAL;
	switch (m->type) {
	case BI_JOIN_REQ:
	case BI_REJOIN_REQ:
		if (m->rx_delay > BI_RX_DELAY_MAX || m->phy_len == 0 ||
		    (unsigned)m->mac_version > LW_V1_1)
			return DJ_EINVAL;
		if ((ret = set_new(o, "MACVersion",
				   lit(lw_version_str(m->mac_version)))) != DJ_EOK ||
		    (ret = set_hex(o, "PHYPayload", m->phy, m->phy_len)) != DJ_EOK ||
		    (ret = set_hex(o, "DevEUI", m->dev_eui, LW_EUI_LEN)) != DJ_EOK ||
		    (ret = set_hex(o, "DevAddr", m->dev_addr, LW_DEVADDR_LEN)) != DJ_EOK ||
		    (ret = set_hex(o, "DLSettings", &m->dl_settings, BI_DL_SETTINGS_LEN)) !=
			    DJ_EOK ||
		    (ret = set_new(o, "RxDelay", json_integer(m->rx_delay))) != DJ_EOK)
			return ret;
		if (m->has_cflist)
			ret = set_hex(o, "CFList", m->cflist, LW_CFLIST_LEN);
		return ret;
	case BI_JOIN_ANS:
	case BI_REJOIN_ANS:
		if (m->phy_len > 0 && (ret = set_hex(o, "PHYPayload", m->phy, m->phy_len)) != DJ_EOK)
			return ret;
		if (m->has_lifetime &&
		    (ret = set_new(o, "Lifetime", json_integer(m->lifetime))) != DJ_EOK)
			return ret;
		if ((ret = set_envelope(o, "SNwkSIntKey", &m->s_nwk_s_int_key)) != DJ_EOK ||
		    (ret = set_envelope(o, "FNwkSIntKey", &m->f_nwk_s_int_key)) != DJ_EOK ||
		    (ret = set_envelope(o, "NwkSEncKey", &m->nwk_s_enc_key)) != DJ_EOK ||
		    (ret = set_envelope(o, "NwkSKey", &m->nwk_s_key)) != DJ_EOK ||
		    (ret = set_envelope(o, "AppSKey", &m->app_s_key)) != DJ_EOK)
			return ret;
		break;
	case BI_APPSKEY_REQ:
		if (m->session_key_id_len == 0)
			return DJ_EINVAL;
		if ((ret = set_hex(o, "DevEUI", m->dev_eui, LW_EUI_LEN)) != DJ_EOK)
			return ret;
		break;
	case BI_APPSKEY_ANS:
		if (m->has_dev_eui && (ret = set_hex(o, "DevEUI", m->dev_eui, LW_EUI_LEN)) != DJ_EOK)
			return ret;
		if ((ret = set_envelope(o, "AppSKey", &m->app_s_key)) != DJ_EOK)
			return ret;
		break;
	case BI_HOMENS_REQ:
		return set_hex(o, "DevEUI", m->dev_eui, LW_EUI_LEN);
	case BI_HOMENS_ANS:
		if (m->has_h_net_id &&
		    (ret = set_hex(o, "HNetID", m->h_net_id, LW_NETID_LEN)) != DJ_EOK)
			return ret;
		if (m->has_hns_id && m->proto == BI_PROTO_1_1 &&
		    (ret = set_text(o, "HNSID", m->hns_id, BI_ID_MAX)) != DJ_EOK)
			return ret;
		break;
	}
	if (m->session_key_id_len > 0 &&
	    (m->type == BI_JOIN_ANS || m->type == BI_REJOIN_ANS || m->type == BI_APPSKEY_REQ ||
	     m->type == BI_APPSKEY_ANS) &&
	    (ret = set_hex(o, "SessionKeyID", m->session_key_id, m->session_key_id_len)) != DJ_EOK)
		return ret;
	if (is_request(m->type))
		return DJ_EOK;
	/* answers always carry a Result (TS002 §8.2) */
	if ((unsigned)m->result >= BI_RESULT_COUNT || memchr(m->description, '\0', BI_DESC_MAX) == NULL)
		return DJ_EINVAL;
	r = json_object();
	if (r == NULL)
		return DJ_ENOMEM;
	if ((ret = set_new(r, "ResultCode", lit(bi_result_str(m->result, m->proto)))) !=
		    DJ_EOK ||
	    (m->description[0] != '\0' &&
	     (ret = set_string(r, "Description", m->description)) != DJ_EOK)) {
		json_decref(r);
		return ret;
	}
	return set_new(o, "Result", r);
}

/* encode_msg - bi_msg_encode() with jansson's allocations in the arena */
static int encode_msg(const struct bi_msg *m, char **out, size_t *len)
{
	char stackbuf[4096];
	json_t *o = NULL;
	char *buf = NULL;
	size_t n = 0;
	int ret = DJ_EINVAL;

	if (m == NULL || out == NULL || len == NULL)
		goto out;
	if ((unsigned)m->proto > BI_PROTO_1_1 || (unsigned)m->type >= DJ_ARRAY_LEN(type_names))
		goto out;
	ret = DJ_ENOMEM;
	o = json_object();
	if (o == NULL)
		goto out;
	if ((ret = encode_header(m, o)) != DJ_EOK || (ret = encode_body(m, o)) != DJ_EOK)
		goto out;
	/*
	 * One dump into a buffer on the stack (every TS002 answer fits), then one exact-size copy:
	 * jansson walks the tree once, and the stack copy, which may hold AESKey hex, is wiped.
	 * A message that does not fit is sized by a second dump (no reallocated copies either way).
	 */
	ret = DJ_ENOMEM;
	n = json_dumpb(o, stackbuf, sizeof(stackbuf), JSON_COMPACT);
	if (n == 0)
		goto out;
	buf = malloc(n + 1);
	if (buf == NULL)
		goto out;
	if (n <= sizeof(stackbuf))
		memcpy(buf, stackbuf, n);
	else if (json_dumpb(o, buf, n, JSON_COMPACT) != n)
		goto out;
	buf[n] = '\0';
	*out = buf;
	*len = n;
	buf = NULL;
	ret = DJ_EOK;
out:
	if (buf != NULL)
		OPENSSL_clear_free(buf, n + 1);
	OPENSSL_cleanse(stackbuf, n < sizeof(stackbuf) ? n : sizeof(stackbuf));
	json_decref(o);
	return ret;
}

int bi_msg_encode(const struct bi_msg *m, char **out, size_t *len)
{
	int ret;

	arena_begin();
	ret = encode_msg(m, out, len);
	arena_end();
	return ret;
}

void bi_msg_answer_init(const struct bi_msg *req, enum bi_msg_type type, struct bi_msg *ans)
{
	memset(ans, 0, sizeof(*ans));
	ans->proto = req->proto;
	ans->type = type;
	ans->transaction_id = req->transaction_id;
	memcpy(ans->sender_id, req->receiver_id, BI_ID_MAX);
	memcpy(ans->receiver_id, req->sender_id, BI_ID_MAX);
	ans->sender_id[BI_ID_MAX - 1] = '\0';
	ans->receiver_id[BI_ID_MAX - 1] = '\0';
	/* TS002 §8.1: the request's SenderToken comes back as the answer's ReceiverToken */
	if (req->has_sender_token && req->sender_token_len <= BI_TOKEN_MAX) {
		ans->has_receiver_token = true;
		ans->receiver_token_len = req->sender_token_len;
		memcpy(ans->receiver_token, req->sender_token, req->sender_token_len);
	}
	if (req->has_receiver_token && req->receiver_token_len <= BI_TOKEN_MAX) {
		ans->has_sender_token = true;
		ans->sender_token_len = req->receiver_token_len;
		memcpy(ans->sender_token, req->receiver_token, req->receiver_token_len);
	}
	if (req->proto == BI_PROTO_1_1) {
		ans->has_sender_ns_id = req->has_receiver_ns_id;
		ans->has_receiver_ns_id = req->has_sender_ns_id;
		memcpy(ans->sender_ns_id, req->receiver_ns_id, BI_ID_MAX);
		memcpy(ans->receiver_ns_id, req->sender_ns_id, BI_ID_MAX);
		ans->sender_ns_id[BI_ID_MAX - 1] = '\0';
		ans->receiver_ns_id[BI_ID_MAX - 1] = '\0';
	}
	ans->result = BI_SUCCESS;
}

void bi_msg_wipe(struct bi_msg *m)
{
	if (m == NULL)
		return;
	OPENSSL_cleanse(&m->app_s_key, sizeof(m->app_s_key));
	OPENSSL_cleanse(&m->nwk_s_key, sizeof(m->nwk_s_key));
	OPENSSL_cleanse(&m->f_nwk_s_int_key, sizeof(m->f_nwk_s_int_key));
	OPENSSL_cleanse(&m->s_nwk_s_int_key, sizeof(m->s_nwk_s_int_key));
	OPENSSL_cleanse(&m->nwk_s_enc_key, sizeof(m->nwk_s_enc_key));
}
