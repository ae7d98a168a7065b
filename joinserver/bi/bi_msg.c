/*
 * bi_msg.c - LoRaWAN Backend Interfaces (TS002-1.0 / TS002-1.1) messages: JSON parse and encode.
 *
 * PURPOSE
 *	The join server's HTTP front end hands every request body to bi_msg_parse() and every
 *	answer to bi_msg_encode(). The parser checks each field it reads: JSON type, hex syntax,
 *	exact byte length, value range, which fields the MessageType requires and which the
 *	ProtocolVersion allows, and names the first field that is wrong so the answer can say so.
 *
 * JSON LIBRARY (docs/performance.md, step 6)
 *	The messages are read and written with yajl (Debian's libyajl), not jansson: yajl's
 *	event parser and generator take about a quarter of the instructions jansson's tree,
 *	lexer and dump took. yajl builds no tree; the parser's callbacks (y_*) keep the members
 *	of every object in a small table (struct jobj: key, JSON type, value) that the field
 *	checks below read as they read jansson's objects before. Arrays and their contents are
 *	checked by yajl and not kept. jansson stays the project's JSON library everywhere else.
 *	What jansson did for us and yajl does not is done here, before or during the parse:
 *	- UTF-8: the whole body must be UTF-8 as RFC 3629 defines it (no overlong forms, no
 *	  surrogates, nothing above U+10FFFF), checked before yajl runs (utf8_bad). Outside
 *	  strings JSON is ASCII, so this checks every string and key; yajl's own, laxer check
 *	  is off.
 *	- escapes: \u0000 and unpaired surrogate escapes are refused (escape_bad); yajl would
 *	  drop the former and turn a lone high surrogate into '?'.
 *	- duplicate keys, in any object at any depth, are refused (y_map_key, y_end_map).
 *	- nesting deeper than BI_JSON_DEPTH_MAX (jansson's limit) is refused.
 *	- form feed and vertical tab, which yajl takes for white space, are refused (space_bad).
 *	yajl tells integers from reals, so a real where an integer is required is still refused.
 *	One difference is left: yajl refuses the integer -9223372036854775808 (LLONG_MIN) as an
 *	overflow, jansson took it. No TS002 field can be negative, so only a body with that exact
 *	number in a member we ignore is now refused where it was accepted.
 *
 * SECURITY
 *	- The body is network input from a peer we have not yet authorised for anything: nothing in
 *	  it is trusted, every copy is bounded by the destination buffer, strings with an embedded
 *	  NUL are refused (they would be cut short by C string handling and compare equal to
 *	  something else), and duplicate keys are refused so that two components can never read
 *	  two different values of the same field.
 *	- Integers are range-checked before conversion; a JSON real where an integer is required
 *	  is refused rather than truncated.
 *	- The header (ProtocolVersion, IDs, TransactionID, MessageType, tokens) is read before
 *	  anything else and every valid header field is kept even when another one fails, so the
 *	  answer to a bad request still echoes the right TransactionID (TS002 §8.1).
 *	- Error texts name fields and say what is wrong with them; they never quote values, so
 *	  neither key bytes nor attacker-chosen text reach logs through them. For JSON syntax
 *	  errors only line and column are reported (yajl's own text quotes input).
 *	- Key material travels only as KeyEnvelopes (AESKey is wrapped under a KEK except for
 *	  peers whose policy explicitly allows plaintext). Temporary buffers that held key bytes
 *	  are wiped with OPENSSL_cleanse; hex is decoded straight into the message (checked
 *	  whole first), through no temporary. Everything yajl and the member tables allocate
 *	  during a parse or an encode that may hold string bytes (yajl's string buffers, the
 *	  generator's output, the copies of escaped strings) comes from a per-thread arena that
 *	  is wiped when the call ends; what did not fit in the arena came from malloc and is
 *	  wiped and freed then too. String values without escapes are read in place in the body
 *	  (the caller's buffer), as keys are, and not copied.
 *
 * PERFORMANCE (docs/performance.md, steps 3, 6, 19 and 20)
 *	The arena is a bump pointer in a 16 KB per-thread buffer: free does nothing, and the
 *	arena is wiped and reset when the call ends. yajl gets it through its allocator
 *	functions (yajl_alloc_funcs), so no process-wide allocator is changed.
 *	The parser's member tables and its stack of open objects hold only pointers, lengths,
 *	types and JSON integers, never a byte of a string: they come from a second per-thread
 *	arena ("tables") that is reset without a wipe. Every string byte the calls allocate (the
 *	parser's copies of escaped strings, everything yajl's parser allocates, the encoder's
 *	output) stays in the wiped arena. Each thread keeps one yajl generator (flags, depths,
 *	pointers), reset for each encode. The parser numbers each key it knows as it comes
 *	(enum fid), so the field checks find members without comparing names.
 */
#include "bi/bi_msg.h"

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <yajl/yajl_gen.h>
#include <yajl/yajl_parse.h>

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
#define BI_MAC_VERSION_MAX 8		/* room for the longest MACVersion, "1.0.0", and more */
#define BI_TRANSACTION_ID_MAX 0xffffffffu	/* TS002 §8.1: 32-bit unsigned */
#define BI_RX_DELAY_MAX 15		/* TS001 §5.7 RxTimingSetupReq: Del is 4 bits */
#define BI_DL_SETTINGS_LEN 1		/* TS002 §9.1: DLSettings, one octet */
#define BI_LIFETIME_MAX 0xffffffffu	/* held in a uint32_t */
#define BI_HEX_PREFIX_LEN 2		/* "0x" */
#define BI_AESKEY_MIN 16		/* a plain AES-128 key; a wrapped one is longer */
#define BI_AESKEY_UNIT 8		/* RFC 3394 §2: whole 64-bit semiblocks */

#define BI_ARENA_SIZE 16384	/* a JoinReq's parse takes about 2 KB, a JoinAns's encode 3 KB */
#define BI_ARENA_ALIGN 16	/* malloc's alignment on x86-64 and aarch64 */
#define BI_JSON_DEPTH_MAX 2048	/* jansson's JSON_PARSER_MAX_DEPTH, bi_msg's limit before */
#define BI_DUP_LINEAR 32	/* objects up to this many members: duplicates found key by key */
#define BI_OBJ_INIT 16		/* members room of a new object (a JoinReq has 13) */
#define BI_OUT_INIT 1024	/* the encoder's first output buffer (a JoinAns is ~700 bytes) */
#define BI_UTF8_MAX 4		/* the longest UTF-8 sequence (RFC 3629) */
#define BI_ESC_U_LEN 6		/* "\uXXXX" */
#define BI_UINT32_DIGITS 10	/* 4294967295 */

/* Each block carries its size (for realloc) and, for blocks from malloc, the next such block. */
struct blk {
	size_t size;
	struct blk *next;
};

/* One of the calling thread's arenas: the blocks of one parse or one encode. */
struct arena {
	_Alignas(BI_ARENA_ALIGN) uint8_t buf[BI_ARENA_SIZE];
	size_t used;		/* bytes handed out since the last wipe */
	size_t last;		/* used at the last wipe (tests) */
	struct blk *spill;	/* blocks that did not fit, from malloc */
};

static _Thread_local struct arena arena;	/* anything that may hold string bytes: wiped */
static _Thread_local struct arena tabs;		/* tables of pointers and integers: reset */

/* a_alloc - n bytes from a, or from malloc when it is full (NULL if that fails) */
static void *a_alloc(struct arena *a, size_t n)
{
	size_t need;
	struct blk *b;

	if (n > SIZE_MAX / 2)
		return NULL;
	need = sizeof(*b) + (n + BI_ARENA_ALIGN - 1) / BI_ARENA_ALIGN * BI_ARENA_ALIGN;
	if (need <= sizeof(a->buf) - a->used) {
		b = (struct blk *)(void *)(a->buf + a->used);
		a->used += need;
		ARENA_UNPOISON(b, sizeof(*b) + n);
		b->size = n;
		b->next = NULL;
		return b + 1;
	}
	a->last = sizeof(a->buf);	/* full: the rest goes to malloc */
	b = malloc(sizeof(*b) + n);
	if (b == NULL)
		return NULL;
	b->size = n;
	b->next = a->spill;
	a->spill = b;
	return b + 1;
}

/* a_realloc - grow a block of a: in place when it is a's last, else by a copy (the old block
 * stays until the end of the call) */
static void *a_realloc(struct arena *a, void *p, size_t n)
{
	struct blk *b;
	size_t need;
	void *q;

	if (p == NULL)
		return a_alloc(a, n);
	b = (struct blk *)p - 1;
	if (n <= b->size)
		return p;
	need = (n + BI_ARENA_ALIGN - 1) / BI_ARENA_ALIGN * BI_ARENA_ALIGN;
	if ((uint8_t *)p + (b->size + BI_ARENA_ALIGN - 1) / BI_ARENA_ALIGN * BI_ARENA_ALIGN ==
		    a->buf + a->used &&
	    need <= sizeof(a->buf) - ((uint8_t *)p - a->buf)) {
		a->used = (size_t)((uint8_t *)p - a->buf) + need;
		ARENA_UNPOISON(p, n);
		b->size = n;
		return p;
	}
	q = a_alloc(a, n);
	if (q != NULL)
		memcpy(q, p, b->size);
	return q;
}

/* arena_alloc, arena_realloc - in the wiped arena; tab_alloc, tab_realloc - in the tables */
static void *arena_alloc(size_t n)
{
	return a_alloc(&arena, n);
}

static void *arena_realloc(void *p, size_t n)
{
	return a_realloc(&arena, p, n);
}

static void *tab_alloc(size_t n)
{
	return a_alloc(&tabs, n);
}

static void *tab_realloc(void *p, size_t n)
{
	return a_realloc(&tabs, p, n);
}

/* yajl's allocator functions: ctx is the arena (the calling thread's, set at each call); free
 * does nothing (the arena is reset at the end, and wiped when it is the wiped one) */
static void *y_malloc(void *ctx, size_t n)
{
	return a_alloc(ctx, n);
}

static void *y_realloc(void *ctx, void *p, size_t n)
{
	return a_realloc(ctx, p, n);
}

static void y_free(void *ctx, void *p)
{
	(void)ctx;
	(void)p;
}

/* a_begin - start a call with \p a empty */
static void a_begin(struct arena *a)
{
	ARENA_POISON(a->buf, sizeof(a->buf));
	a->used = a->last = 0;
	a->spill = NULL;
}

/* a_end - wipe (when \p wipe) and reset what the call took of a; what came from malloc is
 * wiped and freed either way (it happens only for messages larger than the arena) */
static void a_end(struct arena *a, bool wipe)
{
	struct blk *b, *next;

	if (a->last < a->used)
		a->last = a->used;
	if (wipe) {
		ARENA_UNPOISON(a->buf, a->used);
		OPENSSL_cleanse(a->buf, a->used);
	}
	ARENA_POISON(a->buf, sizeof(a->buf));
	a->used = 0;
	for (b = a->spill; b != NULL; b = next) {
		next = b->next;
		OPENSSL_cleanse(b, sizeof(*b) + b->size);
		free(b);
	}
	a->spill = NULL;
}

/* arena_begin - start a parse or an encode with empty arenas */
static void arena_begin(void)
{
	a_begin(&arena);
	a_begin(&tabs);
}

/* arena_end - wipe what the call allocated that may hold string bytes (AESKey hex among them);
 * reset the tables, which hold none */
static void arena_end(void)
{
	a_end(&arena, true);
	a_end(&tabs, false);
}

size_t bi_msg__arena_last(void)
{
	return arena.last;
}

size_t bi_msg__tabs_last(void)
{
	return tabs.last;
}

/* a_holds - whether a's buffer holds the n bytes at needle */
static bool a_holds(struct arena *a, const void *needle, size_t n)
{
	bool found = false;

	ARENA_UNPOISON(a->buf, sizeof(a->buf));
	for (size_t i = 0; n > 0 && i + n <= sizeof(a->buf) && !found; i++)
		found = memcmp(a->buf + i, needle, n) == 0;
	ARENA_POISON(a->buf, sizeof(a->buf));
	return found;
}

bool bi_msg__arena_holds(const void *needle, size_t n)
{
	return a_holds(&arena, needle, n) || a_holds(&tabs, needle, n);
}

/* JSON types as the field checks see them */
enum jtype {
	JT_NONE = 0,	/* a key whose value has not come yet */
	JT_STRING,
	JT_INTEGER,
	JT_REAL,
	JT_OBJECT,
	JT_OTHER,	/* array, true, false, null */
};

/*
 * The member names the field checks read and the encoder writes (one spelling for both). The
 * parser numbers each key once, as it comes (fid_of: a hash of its length and first and last
 * bytes picks the one name it can be, one memcmp confirms); the checks then find members by
 * number, and an object's duplicate known keys are found with one bit test
 * (docs/performance.md, step 20).
 */
enum fid {
	F_NONE = 0,	/* a name no check reads */
	F_PROTOCOL_VERSION,
	F_SENDER_ID,
	F_RECEIVER_ID,
	F_TRANSACTION_ID,
	F_MESSAGE_TYPE,
	F_SENDER_TOKEN,
	F_RECEIVER_TOKEN,
	F_SENDER_NSID,
	F_RECEIVER_NSID,
	F_MAC_VERSION,
	F_PHY_PAYLOAD,
	F_DEV_EUI,
	F_DEV_ADDR,
	F_DL_SETTINGS,
	F_RX_DELAY,
	F_CFLIST,
	F_LIFETIME,
	F_SNWK_SINT_KEY,
	F_FNWK_SINT_KEY,
	F_NWK_SENC_KEY,
	F_NWK_SKEY,
	F_APP_SKEY,
	F_SESSION_KEY_ID,
	F_RESULT,
	F_HNET_ID,
	F_HNSID,
	F_KEK_LABEL,
	F_AES_KEY,
	F_RESULT_CODE,
	F_DESCRIPTION,
	F_COUNT
};

static const char *const fnames[F_COUNT] = {
	[F_NONE] = "",
	[F_PROTOCOL_VERSION] = "ProtocolVersion",
	[F_SENDER_ID] = "SenderID",
	[F_RECEIVER_ID] = "ReceiverID",
	[F_TRANSACTION_ID] = "TransactionID",
	[F_MESSAGE_TYPE] = "MessageType",
	[F_SENDER_TOKEN] = "SenderToken",
	[F_RECEIVER_TOKEN] = "ReceiverToken",
	[F_SENDER_NSID] = "SenderNSID",
	[F_RECEIVER_NSID] = "ReceiverNSID",
	[F_MAC_VERSION] = "MACVersion",
	[F_PHY_PAYLOAD] = "PHYPayload",
	[F_DEV_EUI] = "DevEUI",
	[F_DEV_ADDR] = "DevAddr",
	[F_DL_SETTINGS] = "DLSettings",
	[F_RX_DELAY] = "RxDelay",
	[F_CFLIST] = "CFList",
	[F_LIFETIME] = "Lifetime",
	[F_SNWK_SINT_KEY] = "SNwkSIntKey",
	[F_FNWK_SINT_KEY] = "FNwkSIntKey",
	[F_NWK_SENC_KEY] = "NwkSEncKey",
	[F_NWK_SKEY] = "NwkSKey",
	[F_APP_SKEY] = "AppSKey",
	[F_SESSION_KEY_ID] = "SessionKeyID",
	[F_RESULT] = "Result",
	[F_HNET_ID] = "HNetID",
	[F_HNSID] = "HNSID",
	[F_KEK_LABEL] = "KEKLabel",
	[F_AES_KEY] = "AESKey",
	[F_RESULT_CODE] = "ResultCode",
	[F_DESCRIPTION] = "Description",
};

#define FID_SLOTS 128		/* fid_hash's range: the names above fall in distinct slots */
#define FID_NAME_MAX 15		/* the longest name above: ProtocolVersion */
#define FID_BIT(f) ((uint32_t)1 << (f))
_Static_assert(F_COUNT <= 32, "struct jobj's seen has a bit per name");

static uint8_t fid_slot[FID_SLOTS];	/* a name's number at its hash, F_NONE elsewhere */
static uint8_t fid_len[F_COUNT];	/* each name's length */
static bool fid_clash;			/* two names in one slot (the tests check there are none) */
static pthread_once_t fid_once = PTHREAD_ONCE_INIT;

/* fid_hash - the slot of the name of n (1..FID_NAME_MAX) bytes at k */
static size_t fid_hash(const char *k, size_t n)
{
	return (n * 11 + (size_t)(unsigned char)k[0] * 3 + (unsigned char)k[n - 1]) % FID_SLOTS;
}

/* fid_init - fill fid_slot and fid_len (once per process) */
static void fid_init(void)
{
	for (size_t f = F_NONE + 1; f < F_COUNT; f++) {
		size_t n = strlen(fnames[f]), h = fid_hash(fnames[f], n);

		fid_len[f] = (uint8_t)n;
		if (n > FID_NAME_MAX || fid_slot[h] != F_NONE)
			fid_clash = true;
		else
			fid_slot[h] = (uint8_t)f;
	}
}

bool bi_msg__fids_ok(void)
{
	pthread_once(&fid_once, fid_init);
	return !fid_clash;
}

/* fid_of - the number of the key of n bytes at k, F_NONE when no check reads it */
static enum fid fid_of(const char *k, size_t n)
{
	enum fid f;

	if (n == 0 || n > FID_NAME_MAX)
		return F_NONE;
	f = fid_slot[fid_hash(k, n)];
	if (f != F_NONE && fid_len[f] == n && memcmp(fnames[f], k, n) == 0)
		return f;
	return F_NONE;
}

struct jobj;

/* One member of an object: its key, the value's type and the value. */
struct jmem {
	const char *key;	/* not NUL-terminated */
	size_t klen;
	enum jtype type;
	enum fid id;		/* the key's number, F_NONE when no check reads it */
	const char *s;		/* JT_STRING: in the body, or (escaped) a copy in the arena; not
				 * NUL-terminated */
	size_t slen;
	long long i;		/* JT_INTEGER */
	struct jobj *obj;	/* JT_OBJECT */
};

/* An object's members in the order they came. */
struct jobj {
	struct jmem *m;
	size_t n, cap;
	uint32_t seen;		/* FID_BIT of each known key it has */
};

/* The parser callbacks' state. */
struct yctx {
	const char *json;	/* the body: keys in it are used in place */
	size_t len;
	struct jobj **stack;	/* the open objects and arrays (NULL) */
	size_t depth;
	struct jobj *root;
	bool root_array;
	bool closed;		/* the root object or array has ended */
	const char *why;	/* what made a callback stop the parse */
};

/* jobj_get - the member f of o, or NULL */
static const struct jmem *jobj_get(const struct jobj *o, enum fid f)
{
	if ((o->seen & FID_BIT(f)) == 0)
		return NULL;
	for (size_t i = 0; i < o->n; i++)
		if (o->m[i].id == f)
			return &o->m[i];
	return NULL;
}

/* in_body - whether the n bytes at s are in the body (not in yajl's decoding buffer) */
static bool in_body(const struct yctx *c, const char *s, size_t n)
{
	return s >= c->json && s + n <= c->json + c->len;
}

/* y_stop - stop the parse because of why */
static int y_stop(struct yctx *c, const char *why)
{
	c->why = why;
	return 0;
}

/* y_slot - the member that takes the value being read: NULL in an array (not kept) and for
 * the root, which must be an object */
static struct jmem *y_slot(struct yctx *c)
{
	struct jobj *o;

	if (c->depth == 0)
		return NULL;
	o = c->stack[c->depth - 1];
	return o != NULL ? &o->m[o->n - 1] : NULL;
}

/* y_scalar - a value other than a string, an object or an array */
static int y_scalar(struct yctx *c, enum jtype t, long long i)
{
	struct jmem *m = y_slot(c);

	if (c->depth == 0)
		return y_stop(c, "not a JSON object");
	if (m != NULL) {
		m->type = t;
		m->i = i;
	}
	return 1;
}

static int y_null(void *ctx)
{
	return y_scalar(ctx, JT_OTHER, 0);
}

static int y_boolean(void *ctx, int b)
{
	(void)b;
	return y_scalar(ctx, JT_OTHER, 0);
}

static int y_integer(void *ctx, long long i)
{
	return y_scalar(ctx, JT_INTEGER, i);
}

static int y_double(void *ctx, double d)
{
	(void)d;
	return y_scalar(ctx, JT_REAL, 0);
}

/* y_string - a string value: used in place in the body; one with escapes is in yajl's decoding
 * buffer, which the next string reuses, and is copied to the arena */
static int y_string(void *ctx, const unsigned char *s, size_t n)
{
	struct yctx *c = ctx;
	struct jmem *m = y_slot(c);
	const char *v = (const char *)s;
	char *copy;

	if (c->depth == 0)
		return y_stop(c, "not a JSON object");
	if (m == NULL)
		return 1;
	if (!in_body(c, v, n)) {
		copy = arena_alloc(n);
		if (copy == NULL)
			return y_stop(c, NULL);
		memcpy(copy, s, n);
		v = copy;
	}
	m->type = JT_STRING;
	m->s = v;
	m->slen = n;
	return 1;
}

/* y_push - open an object (o) or an array (NULL) */
static int y_push(struct yctx *c, struct jobj *o)
{
	struct jobj **st;

	if (c->depth >= BI_JSON_DEPTH_MAX)
		return y_stop(c, "nested too deep");
	if (c->depth % BI_OBJ_INIT == 0) {
		st = tab_realloc(c->stack, (c->depth + BI_OBJ_INIT) * sizeof(*st));
		if (st == NULL)
			return y_stop(c, NULL);
		c->stack = st;
	}
	c->stack[c->depth++] = o;
	return 1;
}

static int y_start_map(void *ctx)
{
	struct yctx *c = ctx;
	struct jmem *m = y_slot(c);
	struct jobj *o = tab_alloc(sizeof(*o));

	if (o == NULL)
		return y_stop(c, NULL);
	o->m = NULL;
	o->n = o->cap = 0;
	o->seen = 0;
	if (c->depth == 0)
		c->root = o;
	if (m != NULL) {
		m->type = JT_OBJECT;
		m->obj = o;
	}
	return y_push(c, o);
}

/* y_dup - whether key (n bytes, number f) is already in o (of fewer than BI_DUP_LINEAR
 * members): a known key by its bit, another one by comparing it with the other unknown keys
 * (a known name never equals an unknown key) */
static bool y_dup(const struct jobj *o, enum fid f, const char *key, size_t n)
{
	if (f != F_NONE)
		return (o->seen & FID_BIT(f)) != 0;
	for (size_t i = 0; i < o->n; i++)
		if (o->m[i].id == F_NONE && o->m[i].klen == n && memcmp(o->m[i].key, key, n) == 0)
			return true;
	return false;
}

/* y_map_key - a key: a new member, refused when a first member has the same key */
static int y_map_key(void *ctx, const unsigned char *k, size_t n)
{
	struct yctx *c = ctx;
	struct jobj *o = c->stack[c->depth - 1];
	const char *key = (const char *)k;
	enum fid f = fid_of(key, n);
	struct jmem *m;
	char *copy;

	if (o->n < BI_DUP_LINEAR && y_dup(o, f, key, n))
		return y_stop(c, "duplicate key");
	if (o->n == o->cap) {
		m = tab_realloc(o->m, (o->cap + (o->cap > 0 ? o->cap : BI_OBJ_INIT)) *
				  sizeof(*m));
		if (m == NULL)
			return y_stop(c, NULL);
		o->m = m;
		o->cap += o->cap > 0 ? o->cap : BI_OBJ_INIT;
	}
	/* a key with escapes is in yajl's decoding buffer, which the next string reuses */
	if (!in_body(c, key, n)) {
		copy = arena_alloc(n + 1);
		if (copy == NULL)
			return y_stop(c, NULL);
		memcpy(copy, k, n);
		key = copy;
	}
	m = &o->m[o->n++];
	memset(m, 0, sizeof(*m));
	m->key = key;
	m->klen = n;
	m->id = f;
	o->seen |= FID_BIT(f);
	return 1;
}

/* jmem_cmp - members ordered by key, for the duplicate check of large objects */
static int jmem_cmp(const void *x, const void *y)
{
	const struct jmem *a = x, *b = y;

	if (a->klen != b->klen)
		return a->klen < b->klen ? -1 : 1;
	return memcmp(a->key, b->key, a->klen);
}

/* y_end_map - close an object; one of more than BI_DUP_LINEAR members is sorted by key (its
 * order no longer matters) and checked for duplicates in O(n log n) */
static int y_end_map(void *ctx)
{
	struct yctx *c = ctx;
	struct jobj *o = c->stack[c->depth - 1];

	if (o->n > BI_DUP_LINEAR) {
		qsort(o->m, o->n, sizeof(*o->m), jmem_cmp);
		for (size_t i = 1; i < o->n; i++)
			if (jmem_cmp(&o->m[i - 1], &o->m[i]) == 0)
				return y_stop(c, "duplicate key");
	}
	c->closed = --c->depth == 0;
	return 1;
}

static int y_start_array(void *ctx)
{
	struct yctx *c = ctx;
	struct jmem *m = y_slot(c);

	if (c->depth == 0)
		c->root_array = true;
	if (m != NULL)
		m->type = JT_OTHER;
	return y_push(c, NULL);
}

static int y_end_array(void *ctx)
{
	struct yctx *c = ctx;

	c->closed = --c->depth == 0;
	return 1;
}

static const yajl_callbacks y_callbacks = {
	.yajl_null = y_null,
	.yajl_boolean = y_boolean,
	.yajl_integer = y_integer,
	.yajl_double = y_double,
	.yajl_string = y_string,
	.yajl_start_map = y_start_map,
	.yajl_map_key = y_map_key,
	.yajl_end_map = y_end_map,
	.yajl_start_array = y_start_array,
	.yajl_end_array = y_end_array,
};

/* utf8_bad - the offset of the first byte of s that is not UTF-8 by RFC 3629 (an overlong
 * form, a surrogate, above U+10FFFF, a bad or missing continuation), or n when all are */
static size_t utf8_bad(const unsigned char *s, size_t n)
{
	static const uint64_t high = 0x8080808080808080ull;
	size_t i = 0, len, k;
	uint32_t cp;
	uint64_t w, w2;

	while (i < n) {
		if (n - i >= 2 * sizeof(w)) {
			memcpy(&w, s + i, sizeof(w));
			memcpy(&w2, s + i + sizeof(w), sizeof(w2));
			if (((w | w2) & high) == 0) {
				i += 2 * sizeof(w);	/* sixteen ASCII bytes */
				continue;
			}
		}
		if (n - i >= sizeof(w)) {
			memcpy(&w, s + i, sizeof(w));
			if ((w & high) == 0) {
				i += sizeof(w);	/* eight ASCII bytes */
				continue;
			}
		}
		if (s[i] < 0x80) {
			i++;
			continue;
		}
		if (s[i] >= 0xc2 && s[i] <= 0xdf)
			len = 2, cp = s[i] & 0x1f;
		else if (s[i] >= 0xe0 && s[i] <= 0xef)
			len = 3, cp = s[i] & 0x0f;
		else if (s[i] >= 0xf0 && s[i] <= 0xf4)
			len = BI_UTF8_MAX, cp = s[i] & 0x07;
		else
			return i;
		if (n - i < len)
			return i;
		for (k = 1; k < len; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return i;
			cp = cp << 6 | (s[i + k] & 0x3f);
		}
		if ((len == 3 && cp < 0x800) ||
		    (len == BI_UTF8_MAX && (cp < 0x10000 || cp > 0x10ffff)) ||
		    (cp >= 0xd800 && cp <= 0xdfff))
			return i;
		i += len;
	}
	return n;
}

/* esc_u - the value of the \uXXXX escape at s (6 bytes there), or -1 when it is not one */
static long esc_u(const char *s)
{
	uint8_t b[2];
	char hex[5];

	if (s[0] != '\\' || s[1] != 'u')
		return -1;
	memcpy(hex, s + 2, 4);
	hex[4] = '\0';
	if (dj_hex_parse(hex, b, sizeof(b)) != DJ_EOK)
		return -1;
	return (long)b[0] << 8 | b[1];
}

/* escape_bad - the offset of the first \u escape that JSON text may not have for us: \u0000
 * (a NUL in a C string) or a surrogate escape that is not a high-low pair; n when none. In
 * JSON a backslash is only ever inside a string, where it starts a two-byte escape (six for
 * \u); syntax errors are left to yajl. */
static size_t escape_bad(const char *s, size_t n)
{
	const char *p = s, *end = s + n;
	long u, lo;

	while ((p = memchr(p, '\\', (size_t)(end - p))) != NULL) {
		if (end - p < 2)
			break;
		if (p[1] != 'u') {
			p += 2;
			continue;
		}
		if (end - p < BI_ESC_U_LEN || (u = esc_u(p)) < 0)
			break;
		if (u == 0 || (u >= 0xdc00 && u <= 0xdfff))
			return (size_t)(p - s);
		if (u >= 0xd800 && u <= 0xdbff) {
			if (end - p < 2 * BI_ESC_U_LEN || (lo = esc_u(p + BI_ESC_U_LEN)) < 0xdc00 ||
			    lo > 0xdfff)
				return (size_t)(p - s);
			p += BI_ESC_U_LEN;
		}
		p += BI_ESC_U_LEN;
	}
	return n;
}

/* space_bad - the offset of the first form feed or vertical tab, or n when none. yajl takes
 * them for white space, JSON (and jansson) does not; inside a string a raw one is a control
 * character, refused either way. */
static size_t space_bad(const char *s, size_t n)
{
	const char *ff = memchr(s, '\f', n), *vt = memchr(s, '\v', n);

	if (ff == NULL && vt == NULL)
		return n;
	if (ff == NULL || (vt != NULL && vt < ff))
		return (size_t)(vt - s);
	return (size_t)(ff - s);
}

/* Parsing state: the message being filled and the error buffer. */
struct pctx {
	const struct jobj *root;
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

/* str_eq - whether the n bytes at s are the text lit */
static bool str_eq(const char *s, size_t n, const char *lit)
{
	return strncmp(s, lit, n) == 0 && lit[n] == '\0';
}

/*
 * get_str - the string field f of obj: DJ_EOK with *out and *n set (not NUL-terminated),
 * DJ_ENOENT when absent and optional, DJ_EMALFORMED (error written) when absent and required,
 * not a string or holding a NUL
 */
static int get_str(struct pctx *p, const struct jobj *obj, enum fid f, bool required,
		   const char **out, size_t *n)
{
	const struct jmem *v = jobj_get(obj, f);

	if (v == NULL)
		return required ? fail(p, fnames[f], "missing") : DJ_ENOENT;
	if (v->type != JT_STRING)
		return fail(p, fnames[f], "not a string");
	if (memchr(v->s, '\0', v->slen) != NULL)
		return fail(p, fnames[f], "contains a NUL character");
	*out = v->s;
	*n = v->slen;
	return DJ_EOK;
}

/* get_text - a string field copied into buf (cap bytes with the NUL); *present set when found */
static int get_text(struct pctx *p, const struct jobj *obj, enum fid f, bool required,
		    char *buf, size_t cap, bool *present)
{
	const char *s = NULL;
	size_t n = 0;
	int ret;

	ret = get_str(p, obj, f, required, &s, &n);
	if (ret == DJ_ENOENT)
		return DJ_EOK;
	if (ret != DJ_EOK)
		return ret;
	if (n >= cap)
		return fail(p, fnames[f], "too long");
	memcpy(buf, s, n);
	buf[n] = '\0';
	if (present != NULL)
		*present = true;
	return DJ_EOK;
}

/*
 * get_uint - an integer field in 0..max; *present set when found (absent and optional leaves
 * *out untouched)
 */
static int get_uint(struct pctx *p, const struct jobj *obj, enum fid f, bool required,
		    uint64_t max, uint64_t *out, bool *present)
{
	const struct jmem *v = jobj_get(obj, f);
	const char *name = fnames[f];
	long long i;

	if (v == NULL)
		return required ? fail(p, name, "missing") : DJ_EOK;
	if (v->type != JT_INTEGER)
		return fail(p, name, "not an integer");
	i = v->i;
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
 * error, for the FrameSizeError of PHYPayload. The text is checked whole before a byte of out is
 * written (dj_hex_parse_n), so no temporary buffer holds the bytes (AESKey passes through here).
 */
static int get_hex(struct pctx *p, const struct jobj *obj, enum fid f, bool required,
		   size_t min, size_t cap, uint8_t *out, size_t *len, bool *present,
		   bool *bad_size)
{
	const char *s = NULL;
	size_t n = 0, slen = 0, ndig;
	int ret;

	ret = get_str(p, obj, f, required, &s, &slen);
	if (ret == DJ_ENOENT)
		return DJ_EOK;
	if (ret != DJ_EOK)
		return ret;
	ndig = slen;
	if (slen >= BI_HEX_PREFIX_LEN && s[0] == '0' && (s[1] == 'x' || s[1] == 'X'))
		ndig -= BI_HEX_PREFIX_LEN;
	if (ndig % 2 == 0 && (ndig / 2 > cap || ndig / 2 < min)) {
		if (bad_size != NULL)
			*bad_size = true;
		return fail(p, fnames[f], min == cap ? "wrong length" : "length out of range");
	}
	if (dj_hex_parse_n(s, slen, out, cap, &n) != DJ_EOK)
		return fail(p, fnames[f], "not hexadecimal");
	if (len != NULL)
		*len = n;
	if (present != NULL)
		*present = true;
	return DJ_EOK;
}

/* proto_parse - "1.0" or "1.1" (n bytes at s) */
static int proto_parse(const char *s, size_t n, enum bi_proto *out)
{
	if (str_eq(s, n, "1.0"))
		*out = BI_PROTO_1_0;
	else if (str_eq(s, n, "1.1"))
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
	const struct jobj *o = p->root;
	const char *s = NULL;
	size_t n = 0;
	uint64_t tid = 0;
	bool got = false;
	int first = DJ_EOK, ret;

	ret = get_str(p, o, F_PROTOCOL_VERSION, true, &s, &n);
	if (ret == DJ_EOK && proto_parse(s, n, &m->proto) != DJ_EOK) {
		ret = fail(p, fnames[F_PROTOCOL_VERSION], "unsupported version");
		m->result = BI_INVALID_PROTOCOL_VERSION;
	}
	keep_first(&first, ret);
	keep_first(&first, get_text(p, o, F_SENDER_ID, true, m->sender_id, BI_ID_MAX, NULL));
	keep_first(&first, get_text(p, o, F_RECEIVER_ID, true, m->receiver_id, BI_ID_MAX, NULL));
	ret = get_uint(p, o, F_TRANSACTION_ID, true, BI_TRANSACTION_ID_MAX, &tid, &got);
	if (ret == DJ_EOK && got)
		m->transaction_id = (uint32_t)tid;
	keep_first(&first, ret);
	ret = get_str(p, o, F_MESSAGE_TYPE, true, &s, &n);
	if (ret == DJ_EOK) {
		size_t i;

		for (i = 0; i < DJ_ARRAY_LEN(type_names); i++)
			if (str_eq(s, n, type_names[i]))
				break;
		if (i < DJ_ARRAY_LEN(type_names))
			m->type = (enum bi_msg_type)i;
		else
			ret = fail(p, fnames[F_MESSAGE_TYPE], "unknown message type");
	}
	keep_first(&first, ret);
	keep_first(&first, get_hex(p, o, F_SENDER_TOKEN, false, 1, BI_TOKEN_MAX, m->sender_token,
				   &m->sender_token_len, &m->has_sender_token, NULL));
	keep_first(&first, get_hex(p, o, F_RECEIVER_TOKEN, false, 1, BI_TOKEN_MAX,
				   m->receiver_token, &m->receiver_token_len,
				   &m->has_receiver_token, NULL));
	keep_first(&first, get_text(p, o, F_SENDER_NSID, false, m->sender_ns_id, BI_ID_MAX,
				    &m->has_sender_ns_id));
	keep_first(&first, get_text(p, o, F_RECEIVER_NSID, false, m->receiver_ns_id, BI_ID_MAX,
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

	ret = get_hex(p, p->root, F_PHY_PAYLOAD, required, 1, LW_PHY_MAX, m->phy, &len, &present,
		      &bad_size);
	if (ret == DJ_EOK && present) {
		bad_size = true;
		for (size_t i = 0; i < nsizes; i++)
			if (len == sizes[i])
				bad_size = false;
		if (bad_size)
			ret = fail(p, fnames[F_PHY_PAYLOAD], "wrong frame size");
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

	return get_hex(p, p->root, F_DEV_EUI, required, LW_EUI_LEN, LW_EUI_LEN, m->dev_eui, NULL,
		       &m->has_dev_eui, NULL);
}

/* get_session_key_id - the message's SessionKeyID (1 to BI_SESSION_KEY_ID_MAX bytes of hex) */
static int get_session_key_id(struct pctx *p, bool required)
{
	struct bi_msg *m = p->m;

	return get_hex(p, p->root, F_SESSION_KEY_ID, required, 1, BI_SESSION_KEY_ID_MAX,
		       m->session_key_id, &m->session_key_id_len, NULL, NULL);
}

/* parse_join_req - JoinReq and RejoinReq (TS002 §9.1, §9.2) */
static int parse_join_req(struct pctx *p)
{
	static const size_t join_sizes[] = { LW_JOINREQ_LEN };
	static const size_t rejoin_sizes[] = { LW_REJOIN02_LEN, LW_REJOIN1_LEN };
	struct bi_msg *m = p->m;
	const struct jobj *o = p->root;
	const struct jmem *cf;
	const char *s = NULL;
	char ver[BI_MAC_VERSION_MAX];
	size_t n = 0;
	uint64_t rx = 0;
	int ret;

	ret = get_str(p, o, F_MAC_VERSION, true, &s, &n);
	if (ret != DJ_EOK)
		goto out;
	if (n < sizeof(ver)) {
		memcpy(ver, s, n);
		ver[n] = '\0';
	}
	if (n >= sizeof(ver) || lw_version_parse(ver, &m->mac_version) != DJ_EOK) {
		ret = fail(p, fnames[F_MAC_VERSION], "unknown LoRaWAN version");
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
	ret = get_hex(p, o, F_DEV_ADDR, true, LW_DEVADDR_LEN, LW_DEVADDR_LEN, m->dev_addr, NULL,
		      NULL, NULL);
	if (ret != DJ_EOK)
		goto out;
	ret = get_hex(p, o, F_DL_SETTINGS, true, BI_DL_SETTINGS_LEN, BI_DL_SETTINGS_LEN,
		      &m->dl_settings, NULL, NULL, NULL);
	if (ret != DJ_EOK)
		goto out;
	ret = get_uint(p, o, F_RX_DELAY, true, BI_RX_DELAY_MAX, &rx, NULL);
	if (ret != DJ_EOK)
		goto out;
	m->rx_delay = (uint8_t)rx;
	/* The Things Stack writes a missing CFList as "" (a nil Buffer through encoding/json):
	 * an empty string is no CFList, as an absent field is */
	cf = jobj_get(o, F_CFLIST);
	if (cf != NULL && cf->type == JT_STRING && cf->slen == 0)
		goto out;
	ret = get_hex(p, o, F_CFLIST, false, LW_CFLIST_LEN, LW_CFLIST_LEN, m->cflist, NULL,
		      &m->has_cflist, NULL);
out:
	return ret;
}

/* parse_result - the Result object of an answer */
static int parse_result(struct pctx *p)
{
	struct bi_msg *m = p->m;
	const struct jmem *r = jobj_get(p->root, F_RESULT);
	const char *s = NULL;
	size_t n = 0;

	if (r == NULL)
		return fail(p, fnames[F_RESULT], "missing");
	if (r->type != JT_OBJECT)
		return fail(p, fnames[F_RESULT], "not an object");
	struct pctx sub = *p;
	size_t i;

	sub.err = NULL;	/* the error names "Result.ResultCode", not "ResultCode" */
	if (get_str(&sub, r->obj, F_RESULT_CODE, true, &s, &n) != DJ_EOK)
		return fail(p, "Result.ResultCode", "missing or not a string");
	for (i = 0; i < BI_RESULT_COUNT; i++)
		if (str_eq(s, n, result_names[i]))
			break;
	if (i < BI_RESULT_COUNT)
		m->result = (enum bi_result)i;
	else if (str_eq(s, n, BI_UNKNOWN_RECEIVER_1_0))
		m->result = BI_UNKNOWN_RECEIVER;
	else
		return fail(p, "Result.ResultCode", "unknown result code");
	if (get_text(&sub, r->obj, F_DESCRIPTION, false, m->description, BI_DESC_MAX, NULL) !=
	    DJ_EOK)
		return fail(p, "Result.Description", "not a string or too long");
	return DJ_EOK;
}

/* parse_envelope - an optional KeyEnvelope {"KEKLabel", "AESKey"} */
static int parse_envelope(struct pctx *p, enum fid f, struct bi_key_envelope *env)
{
	const struct jmem *e = jobj_get(p->root, f);
	const char *name = fnames[f];
	struct pctx sub = *p;
	bool got = false;
	int ret;

	if (e == NULL)
		return DJ_EOK;
	if (e->type != JT_OBJECT)
		return fail(p, name, "not an object");
	sub.root = e->obj;
	sub.err = NULL;	/* the error names the envelope */
	/* absent KEKLabel: a plaintext envelope, which bi_kek_open refuses unless allowed */
	ret = get_text(&sub, e->obj, F_KEK_LABEL, false, env->kek_label, BI_KEK_LABEL_MAX, NULL);
	if (ret != DJ_EOK)
		return fail(p, name, "KEKLabel not a string or too long");
	ret = get_hex(&sub, e->obj, F_AES_KEY, true, BI_AESKEY_MIN, BI_AESKEY_MAX, env->aes_key,
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
	ret = get_uint(p, p->root, F_LIFETIME, false, BI_LIFETIME_MAX, &lt, &m->has_lifetime);
	if (ret != DJ_EOK)
		goto out;
	m->lifetime = (uint32_t)lt;
	if ((ret = parse_envelope(p, F_SNWK_SINT_KEY, &m->s_nwk_s_int_key)) != DJ_EOK ||
	    (ret = parse_envelope(p, F_FNWK_SINT_KEY, &m->f_nwk_s_int_key)) != DJ_EOK ||
	    (ret = parse_envelope(p, F_NWK_SENC_KEY, &m->nwk_s_enc_key)) != DJ_EOK ||
	    (ret = parse_envelope(p, F_NWK_SKEY, &m->nwk_s_key)) != DJ_EOK ||
	    (ret = parse_envelope(p, F_APP_SKEY, &m->app_s_key)) != DJ_EOK)
		goto out;
	ret = get_session_key_id(p, false);
out:
	return ret;
}

/* parse_body - the fields of m->type after the header */
static int parse_body(struct pctx *p)
{
	struct bi_msg *m = p->m;
	const struct jobj *o = p->root;
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
			ret = parse_envelope(p, F_APP_SKEY, &m->app_s_key);
		if (ret == DJ_EOK)
			ret = get_session_key_id(p, false);
		break;
	case BI_HOMENS_REQ:
		ret = get_dev_eui(p, true);
		break;
	case BI_HOMENS_ANS:
		ret = get_hex(p, o, F_HNET_ID, false, LW_NETID_LEN, LW_NETID_LEN, m->h_net_id, NULL,
			      &m->has_h_net_id, NULL);
		if (ret == DJ_EOK)
			ret = get_text(p, o, F_HNSID, false, m->hns_id, BI_ID_MAX, &m->has_hns_id);
		break;
	}
	return ret;
}

/* json_fail - "(body): WHAT at line L column C" for the byte at off (1-based, as jansson said) */
static int json_fail(struct pctx *p, const char *json, size_t len, size_t off, const char *what)
{
	char text[BI_ERR_MAX];
	size_t line = 1, col = 1;

	if (off > len)
		off = len;
	for (size_t i = 0; i < off; i++, col++)
		if (json[i] == '\n')
			line++, col = 0;
	snprintf(text, sizeof(text), "%s at line %zu column %zu", what, line, col);
	return fail(p, "(body)", text);
}

/* load - read the body into p->root with yajl; DJ_EMALFORMED (error written) or DJ_ENOMEM */
static int load(struct pctx *p, const char *json, size_t len)
{
	struct yctx c = { .json = json, .len = len };
	yajl_handle h;
	yajl_status st;
	size_t off;

	off = utf8_bad((const unsigned char *)json, len);
	if (off == len)
		off = escape_bad(json, len);
	if (off == len)
		off = space_bad(json, len);
	if (off < len)
		return json_fail(p, json, len, off, "not valid JSON");
	pthread_once(&fid_once, fid_init);
	/* everything yajl's parser allocates may hold string bytes: the wiped arena */
	h = yajl_alloc(&y_callbacks, &(yajl_alloc_funcs){ y_malloc, y_realloc, y_free, &arena },
		       &c);
	if (h == NULL)
		return DJ_ENOMEM;
	/* utf8_bad checked more strictly than yajl does */
	yajl_config(h, yajl_dont_validate_strings, 1);
	/* yajl stops where the root object ends; what follows it is checked below */
	yajl_config(h, yajl_allow_trailing_garbage, 1);
	st = yajl_parse(h, (const unsigned char *)json, len);
	off = yajl_get_bytes_consumed(h);
	if (st == yajl_status_ok && c.closed) {
		/* Only JSON white space may follow the root (RFC 8259 §2; space_bad refused form
		 * feed and vertical tab). yajl's own check of the rest, in yajl_parse() and then
		 * yajl_complete_parse(), lexes the end of the input, for which its lexer allocates
		 * a 2 KB buffer in the arena that arena_end() must then wipe: about 1.4k
		 * instructions per message (docs/performance.md, step 11). */
		while (off < len && (json[off] == ' ' || json[off] == '\t' || json[off] == '\r' ||
				     json[off] == '\n'))
			off++;
		if (off < len)
			st = yajl_status_error;
	} else if (st == yajl_status_ok) {
		st = yajl_complete_parse(h);	/* a value still open at the end: refused here */
		off = yajl_get_bytes_consumed(h);
	}
	yajl_free(h);
	if (st == yajl_status_client_canceled && c.why == NULL)
		return DJ_ENOMEM;
	if (st != yajl_status_ok) {
		/* yajl's error text may quote the input: only line and column are kept */
		return json_fail(p, json, len, off, c.why != NULL ? c.why : "not valid JSON");
	}
	if (c.root == NULL)
		return fail(p, "(body)", "not a JSON object");
	p->root = c.root;
	return DJ_EOK;
}

/* parse_msg - bi_msg_parse() with the allocations in the arena */
static int parse_msg(const char *json, size_t len, struct bi_msg *out, char *err, size_t errlen)
{
	struct pctx p = { .root = NULL, .m = out, .err = err, .errlen = errlen };
	int ret = DJ_EMALFORMED;

	if (err != NULL && errlen > 0)
		err[0] = '\0';
	memset(out, 0, sizeof(*out));
	out->result = BI_MALFORMED_REQUEST;
	if (json == NULL) {
		ret = fail(&p, "(body)", "missing");
		goto out;
	}
	ret = load(&p, json, len);
	if (ret != DJ_EOK)
		goto out;
	ret = parse_header(&p);
	if (ret != DJ_EOK)
		goto out;
	/* TS002-1.1 §13: a network server's request carries SenderNSID iff it speaks 1.1 */
	if (out->type == BI_JOIN_REQ || out->type == BI_REJOIN_REQ || out->type == BI_HOMENS_REQ) {
		if (out->proto == BI_PROTO_1_1 && !out->has_sender_ns_id) {
			ret = fail(&p, fnames[F_SENDER_NSID],
				   "missing (required by ProtocolVersion 1.1)");
			goto out;
		}
		if (out->proto == BI_PROTO_1_0 && out->has_sender_ns_id) {
			ret = fail(&p, fnames[F_SENDER_NSID], "not allowed in ProtocolVersion 1.0");
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

/* The encoder's output: yajl prints into it (arena memory, wiped at the end of the call). */
struct obuf {
	char *p;
	size_t len, cap;
	bool nomem;
};

/* o_grow - o_print() when the buffer is full: double it (a copy in the arena), then append */
static __attribute__((noinline)) void o_grow(struct obuf *o, const char *s, size_t n)
{
	size_t cap = o->cap;
	char *p;

	if (o->nomem)
		return;
	while (n > cap - o->len)
		cap *= 2;
	p = arena_realloc(o->p, cap);
	if (p == NULL) {
		o->nomem = true;
		return;
	}
	o->p = p;
	o->cap = cap;
	memcpy(o->p + o->len, s, n);
	o->len += n;
}

/* o_print - yajl's print callback: append n bytes. It runs about 150 times per JoinAns, mostly
 * for one byte (a quote, a colon, a comma): the common case takes no stack frame and no
 * memcpy call, the growth is in o_grow(). */
static void o_print(void *ctx, const char *s, size_t n)
{
	struct obuf *o = ctx;
	char *d;

	if (o->nomem || n > o->cap - o->len) {
		o_grow(o, s, n);
		return;
	}
	d = o->p + o->len;
	o->len += n;
	if (n == 1)
		*d = *s;
	else
		memcpy(d, s, n);
}

/* The encoder: yajl's generator and its output. */
struct enc {
	yajl_gen g;
	struct obuf *out;
};

/*
 * The calling thread's generator, made by its first encode and reset (yajl_gen_reset: depth and
 * each level's state zeroed) by every next one instead of allocated and configured again
 * (docs/performance.md, step 20). Its state holds flags, depths and pointers, never a byte of
 * the text: that goes to gen_out's buffer, in the wiped arena of the encode. yajl's memory for
 * it comes from gen_mem, a per-thread buffer that lives as long as the thread (no malloc, so
 * nothing to free when the thread ends).
 */
#define BI_GEN_MEM 1024	/* yajl 2.1: the generator (576 bytes) and its unused buffer (32) */

static _Thread_local struct {
	_Alignas(BI_ARENA_ALIGN) uint8_t buf[BI_GEN_MEM];
	size_t used;
} gen_mem;
static _Thread_local yajl_gen gen;
static _Thread_local struct obuf gen_out;

/* g_malloc - yajl's allocation of the generator from gen_mem (NULL when it is full) */
static void *g_malloc(void *ctx, size_t n)
{
	size_t need = (n + BI_ARENA_ALIGN - 1) / BI_ARENA_ALIGN * BI_ARENA_ALIGN;
	void *p;

	(void)ctx;
	if (n > sizeof(gen_mem.buf) || need > sizeof(gen_mem.buf) - gen_mem.used)
		return NULL;
	p = gen_mem.buf + gen_mem.used;
	gen_mem.used += need;
	return p;
}

/* g_realloc - refused: yajl's generator reallocates only its own output buffer, which it does
 * not use with a print callback */
static void *g_realloc(void *ctx, void *p, size_t n)
{
	(void)ctx;
	(void)p;
	(void)n;
	return NULL;
}

/* gen_get - the calling thread's generator, ready for a new text; NULL for want of memory */
static yajl_gen gen_get(void)
{
	yajl_gen g;

	if (gen != NULL) {
		yajl_gen_reset(gen, NULL);
		return gen;
	}
	g = yajl_gen_alloc(&(yajl_alloc_funcs){ g_malloc, g_realloc, y_free, NULL });
	if (g == NULL)
		return NULL;
	/* compact, '/' not escaped, no UTF-8 check of its own (text_len does RFC 3629's); its
	 * default buffer is dropped unused */
	if (!yajl_gen_config(g, yajl_gen_print_callback, o_print, &gen_out))
		return NULL;
	gen = g;
	return gen;
}

/* gen_ret - a yajl generator status as DJ_EOK, DJ_ENOMEM (the output buffer) or DJ_EINVAL */
static int gen_ret(const struct enc *e, yajl_gen_status st)
{
	if (e->out->nomem)
		return DJ_ENOMEM;
	return st == yajl_gen_status_ok ? DJ_EOK : DJ_EINVAL;
}

/* put_lit - put a text of this file (a name or a name table's entry, ASCII) */
static int put_lit(struct enc *e, const char *s)
{
	return gen_ret(e, yajl_gen_string(e->g, (const unsigned char *)s, strlen(s)));
}

/* put_key - member f's name (the parser's spelling, fnames), and so the start of a member */
static int put_key(struct enc *e, enum fid f)
{
	return put_lit(e, fnames[f]);
}

/* set_lit - put a member whose value is a text of this file */
static int set_lit(struct enc *e, enum fid f, const char *s)
{
	int ret = put_key(e, f);

	return ret != DJ_EOK ? ret : put_lit(e, s);
}

/* set_uint - put an integer member. yajl_gen_integer() formats with sprintf("%lld"), about
 * 900 instructions; the decimal digits of a uint32_t are made here and yajl_gen_number(), which
 * takes a number already in text, writes them (docs/performance.md, step 11). */
static int set_uint(struct enc *e, enum fid f, uint32_t v)
{
	char digits[BI_UINT32_DIGITS];
	size_t i = sizeof(digits);
	int ret = put_key(e, f);

	if (ret != DJ_EOK)
		return ret;
	do {
		digits[--i] = (char)('0' + v % 10);
		v /= 10;
	} while (v != 0);
	return gen_ret(e, yajl_gen_number(e->g, digits + i, sizeof(digits) - i));
}

/* set_hex - put len bytes as lowercase hex; the text buffer is wiped (it may hold a key) */
static int set_hex(struct enc *e, enum fid f, const uint8_t *b, size_t len)
{
	char text[2 * BI_HEX_TMP_MAX + 1];
	int ret;

	if (len > BI_HEX_TMP_MAX)
		return DJ_EINVAL;
	ret = put_key(e, f);
	if (ret != DJ_EOK)
		return ret;
	dj_hex_format(b, len, text);
	ret = gen_ret(e, yajl_gen_string(e->g, (const unsigned char *)text, 2 * len));
	OPENSSL_cleanse(text, 2 * len + 1);	/* what dj_hex_format wrote, NUL included */
	return ret;
}

/* set_checked - put a member whose value, n bytes at s, is known to be UTF-8 */
static int set_checked(struct enc *e, enum fid f, const char *s, size_t n)
{
	int ret = put_key(e, f);

	return ret != DJ_EOK ? ret : gen_ret(e, yajl_gen_string(e->g, (const unsigned char *)s, n));
}

/* text_len - the length of the text in the cap bytes at s, which must be UTF-8 (RFC 3629;
 * jansson's json_string() checked it so) and NUL-terminated within them; -1 when it is not */
static ptrdiff_t text_len(const char *s, size_t cap)
{
	const char *z = memchr(s, '\0', cap);
	size_t n;

	if (z == NULL)
		return -1;
	n = (size_t)(z - s);
	return utf8_bad((const unsigned char *)s, n) == n ? (ptrdiff_t)n : -1;
}

/* set_text - put a NUL-terminated UTF-8 string that must fit in cap bytes: DJ_EINVAL when it
 * does not or is not UTF-8 */
static int set_text(struct enc *e, enum fid f, const char *s, size_t cap)
{
	ptrdiff_t n = text_len(s, cap);

	return n < 0 ? DJ_EINVAL : set_checked(e, f, s, (size_t)n);
}

/* set_envelope - put a KeyEnvelope when present. The AESKey hex yajl writes goes to the
 * output buffer in the arena, wiped when the encode ends. */
static int set_envelope(struct enc *e, enum fid f, const struct bi_key_envelope *env)
{
	ptrdiff_t n;
	int ret;

	if (!env->present)
		return DJ_EOK;
	if (env->aes_key_len == 0 || env->aes_key_len > BI_AESKEY_MAX)
		return DJ_EINVAL;
	/* checked (once) before anything of the member is written */
	n = text_len(env->kek_label, BI_KEK_LABEL_MAX);
	if (n < 0)
		return DJ_EINVAL;
	if ((ret = put_key(e, f)) != DJ_EOK ||
	    (ret = gen_ret(e, yajl_gen_map_open(e->g))) != DJ_EOK ||
	    (ret = set_checked(e, F_KEK_LABEL, env->kek_label, (size_t)n)) != DJ_EOK ||
	    (ret = set_hex(e, F_AES_KEY, env->aes_key, env->aes_key_len)) != DJ_EOK)
		return ret;
	return gen_ret(e, yajl_gen_map_close(e->g));
}

/* encode_header - the common header */
static int encode_header(const struct bi_msg *m, struct enc *e)
{
	int ret;

	if ((ret = set_lit(e, F_PROTOCOL_VERSION, m->proto == BI_PROTO_1_1 ? "1.1" : "1.0")) !=
		    DJ_EOK ||
	    (ret = set_text(e, F_SENDER_ID, m->sender_id, BI_ID_MAX)) != DJ_EOK ||
	    (ret = set_text(e, F_RECEIVER_ID, m->receiver_id, BI_ID_MAX)) != DJ_EOK ||
	    (ret = set_uint(e, F_TRANSACTION_ID, m->transaction_id)) != DJ_EOK ||
	    (ret = set_lit(e, F_MESSAGE_TYPE, type_names[m->type])) != DJ_EOK)
		return ret;
	if (m->has_sender_token &&
	    (m->sender_token_len == 0 || m->sender_token_len > BI_TOKEN_MAX))
		return DJ_EINVAL;
	if (m->has_sender_token &&
	    (ret = set_hex(e, F_SENDER_TOKEN, m->sender_token, m->sender_token_len)) != DJ_EOK)
		return ret;
	if (m->has_receiver_token &&
	    (m->receiver_token_len == 0 || m->receiver_token_len > BI_TOKEN_MAX))
		return DJ_EINVAL;
	if (m->has_receiver_token &&
	    (ret = set_hex(e, F_RECEIVER_TOKEN, m->receiver_token, m->receiver_token_len)) !=
		    DJ_EOK)
		return ret;
	if (m->proto != BI_PROTO_1_1)
		return DJ_EOK;	/* the NSIDs are TS002-1.1 fields */
	if (m->has_sender_ns_id &&
	    (ret = set_text(e, F_SENDER_NSID, m->sender_ns_id, BI_ID_MAX)) != DJ_EOK)
		return ret;
	if (m->has_receiver_ns_id &&
	    (ret = set_text(e, F_RECEIVER_NSID, m->receiver_ns_id, BI_ID_MAX)) != DJ_EOK)
		return ret;
	return DJ_EOK;
}

/* encode_join_ans - the body of JoinAns/RejoinAns before SessionKeyID */
static int encode_join_ans(const struct bi_msg *m, struct enc *e)
{
	int ret;

	if (m->phy_len > 0 && (ret = set_hex(e, F_PHY_PAYLOAD, m->phy, m->phy_len)) != DJ_EOK)
		return ret;
	if (m->has_lifetime && (ret = set_uint(e, F_LIFETIME, m->lifetime)) != DJ_EOK)
		return ret;
	if ((ret = set_envelope(e, F_SNWK_SINT_KEY, &m->s_nwk_s_int_key)) != DJ_EOK ||
	    (ret = set_envelope(e, F_FNWK_SINT_KEY, &m->f_nwk_s_int_key)) != DJ_EOK ||
	    (ret = set_envelope(e, F_NWK_SENC_KEY, &m->nwk_s_enc_key)) != DJ_EOK ||
	    (ret = set_envelope(e, F_NWK_SKEY, &m->nwk_s_key)) != DJ_EOK ||
	    (ret = set_envelope(e, F_APP_SKEY, &m->app_s_key)) != DJ_EOK)
		return ret;
	return DJ_EOK;
}

/* encode_result - an answer's Result (TS002 §8.2: answers always carry one) */
static int encode_result(const struct bi_msg *m, struct enc *e)
{
	ptrdiff_t n;
	int ret;

	if ((unsigned)m->result >= BI_RESULT_COUNT)
		return DJ_EINVAL;
	n = text_len(m->description, BI_DESC_MAX);
	if (n < 0)
		return DJ_EINVAL;	/* checked before the Result is begun */
	if ((ret = put_key(e, F_RESULT)) != DJ_EOK ||
	    (ret = gen_ret(e, yajl_gen_map_open(e->g))) != DJ_EOK ||
	    (ret = set_lit(e, F_RESULT_CODE, bi_result_str(m->result, m->proto))) != DJ_EOK ||
	    (n > 0 && (ret = set_checked(e, F_DESCRIPTION, m->description, (size_t)n)) != DJ_EOK))
		return ret;
	return gen_ret(e, yajl_gen_map_close(e->g));
}

/* encode_body - the fields of m->type after the header */
static int encode_body(const struct bi_msg *m, struct enc *e)
{
	int ret = DJ_EOK;

	if (m->phy_len > LW_PHY_MAX || m->session_key_id_len > BI_SESSION_KEY_ID_MAX)
		return DJ_EINVAL;
	switch (m->type) {
	case BI_JOIN_REQ:
	case BI_REJOIN_REQ:
		if (m->rx_delay > BI_RX_DELAY_MAX || m->phy_len == 0 ||
		    (unsigned)m->mac_version > LW_V1_1)
			return DJ_EINVAL;
		if ((ret = set_lit(e, F_MAC_VERSION, lw_version_str(m->mac_version))) != DJ_EOK ||
		    (ret = set_hex(e, F_PHY_PAYLOAD, m->phy, m->phy_len)) != DJ_EOK ||
		    (ret = set_hex(e, F_DEV_EUI, m->dev_eui, LW_EUI_LEN)) != DJ_EOK ||
		    (ret = set_hex(e, F_DEV_ADDR, m->dev_addr, LW_DEVADDR_LEN)) != DJ_EOK ||
		    (ret = set_hex(e, F_DL_SETTINGS, &m->dl_settings, BI_DL_SETTINGS_LEN)) !=
			    DJ_EOK ||
		    (ret = set_uint(e, F_RX_DELAY, m->rx_delay)) != DJ_EOK)
			return ret;
		if (m->has_cflist)
			ret = set_hex(e, F_CFLIST, m->cflist, LW_CFLIST_LEN);
		return ret;
	case BI_JOIN_ANS:
	case BI_REJOIN_ANS:
		if ((ret = encode_join_ans(m, e)) != DJ_EOK)
			return ret;
		break;
	case BI_APPSKEY_REQ:
		if (m->session_key_id_len == 0)
			return DJ_EINVAL;
		if ((ret = set_hex(e, F_DEV_EUI, m->dev_eui, LW_EUI_LEN)) != DJ_EOK)
			return ret;
		break;
	case BI_APPSKEY_ANS:
		if (m->has_dev_eui &&
		    (ret = set_hex(e, F_DEV_EUI, m->dev_eui, LW_EUI_LEN)) != DJ_EOK)
			return ret;
		if ((ret = set_envelope(e, F_APP_SKEY, &m->app_s_key)) != DJ_EOK)
			return ret;
		break;
	case BI_HOMENS_REQ:
		return set_hex(e, F_DEV_EUI, m->dev_eui, LW_EUI_LEN);
	case BI_HOMENS_ANS:
		if (m->has_h_net_id &&
		    (ret = set_hex(e, F_HNET_ID, m->h_net_id, LW_NETID_LEN)) != DJ_EOK)
			return ret;
		if (m->has_hns_id && m->proto == BI_PROTO_1_1 &&
		    (ret = set_text(e, F_HNSID, m->hns_id, BI_ID_MAX)) != DJ_EOK)
			return ret;
		break;
	}
	if (m->session_key_id_len > 0 &&
	    (m->type == BI_JOIN_ANS || m->type == BI_REJOIN_ANS || m->type == BI_APPSKEY_REQ ||
	     m->type == BI_APPSKEY_ANS) &&
	    (ret = set_hex(e, F_SESSION_KEY_ID, m->session_key_id, m->session_key_id_len)) !=
		    DJ_EOK)
		return ret;
	if (is_request(m->type))
		return DJ_EOK;
	return encode_result(m, e);
}

/* encode_msg - bi_msg_encode() with the generator and its output in the arena */
static int encode_msg(const struct bi_msg *m, char **out, size_t *len)
{
	struct enc e = { .g = NULL, .out = &gen_out };
	char *buf;
	int ret = DJ_EINVAL;

	if (m == NULL || out == NULL || len == NULL)
		goto out;
	if ((unsigned)m->proto > BI_PROTO_1_1 || (unsigned)m->type >= DJ_ARRAY_LEN(type_names))
		goto out;
	ret = DJ_ENOMEM;
	/* the output in the wiped arena */
	gen_out = (struct obuf){ .cap = BI_OUT_INIT };
	gen_out.p = arena_alloc(gen_out.cap);
	e.g = gen_get();
	if (gen_out.p == NULL || e.g == NULL)
		goto out;
	if ((ret = gen_ret(&e, yajl_gen_map_open(e.g))) != DJ_EOK ||
	    (ret = encode_header(m, &e)) != DJ_EOK || (ret = encode_body(m, &e)) != DJ_EOK ||
	    (ret = gen_ret(&e, yajl_gen_map_close(e.g))) != DJ_EOK)
		goto out;
	/* one exact-size copy for the caller; the arena's, which may hold AESKey hex, is wiped */
	ret = DJ_ENOMEM;
	buf = malloc(gen_out.len + 1);
	if (buf == NULL)
		goto out;
	memcpy(buf, gen_out.p, gen_out.len);
	buf[gen_out.len] = '\0';
	*out = buf;
	*len = gen_out.len;
	ret = DJ_EOK;
out:
	gen_out = (struct obuf){ .p = NULL };	/* the arena's buffer is wiped next */
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

/* env_wipe - an envelope emptied: all its key bytes wiped, the envelope absent with an empty
 * label. The label is not secret: only its first byte is cleared (one OPENSSL_cleanse of the
 * 40 aligned key bytes instead of the whole 120-byte envelope, five envelopes per message). */
static void env_wipe(struct bi_key_envelope *e)
{
	OPENSSL_cleanse(e->aes_key, sizeof(e->aes_key));
	e->aes_key_len = 0;
	e->present = false;
	e->kek_label[0] = '\0';
}

void bi_msg_wipe(struct bi_msg *m)
{
	if (m == NULL)
		return;
	env_wipe(&m->app_s_key);
	env_wipe(&m->nwk_s_key);
	env_wipe(&m->f_nwk_s_int_key);
	env_wipe(&m->s_nwk_s_int_key);
	env_wipe(&m->nwk_s_enc_key);
}
