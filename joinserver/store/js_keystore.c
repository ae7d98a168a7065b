/*
 * js_keystore.c - the software key store: root-key tokens wrapped under a file-held master key.
 *
 * PURPOSE
 *	Root keys (AppKey, NwkKey) and the session keys kept for later requests are stored only as
 *	tokens: version(1) | KWP(label_len(1) | label | secret), where KWP is AES-256 key wrap with
 *	padding (RFC 5649) under a 256-bit master key.
 *
 * SECURITY
 *	- KWP is an authenticated wrap (RFC 5649 §3: the alternative initial value and the length
 *	  indicator are checked on unwrap), so a flipped byte, a truncated token or a token made under
 *	  another master key fails with DJ_EUNWRAP and yields no bytes.
 *	- The label sits *inside* the wrap and is compared in constant time after unwrapping, so a
 *	  token copied from one device's row to another's (or from a root key to a session key) is
 *	  refused: the integrity check binds the secret to what it is for.
 *	- The master key file is opened with O_NOFOLLOW and checked with fstat on the open descriptor
 *	  (no check-then-open race); a file group or others may read is refused before a byte is read.
 *	- The key check value is HMAC-SHA256(master, fixed text): it identifies a master key to the
 *	  store without revealing anything about it.
 *	- Every buffer that held a master key, a secret or a plaintext token is wiped with
 *	  OPENSSL_cleanse on every path.
 *
 * PERFORMANCE
 *	Opening a root token is on the join hot path. OpenSSL 3.0's "AES-256-WRAP-PAD" provider uses
 *	the table-based software AES (about 7 µs per root token here), so KWP is run as OpenSSL's own
 *	RFC 5649 code (CRYPTO_128_wrap_pad/unwrap_pad) over AES-256-ECB EVP contexts keyed once in
 *	js_keystore_new() (one per direction), which take the AES-NI path: nothing is fetched and no
 *	key schedule expanded per call. The unwrap of a root token is 36 strictly sequential AES-256
 *	block operations (RFC 3394 §2.2.2, six rounds over six semiblocks), so its floor is 36 times
 *	the AES latency. The unit test checks this path against the RFC 5649 §6 vectors and against
 *	the provider.
 */
#include "store/js_keystore.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/modes.h>
#include <openssl/rand.h>

#include "common/dj_err.h"
#include "common/dj_secmem.h"
#include "common/dj_hex.h"
#include "common/dj_log.h"
#include "store/js_keystore_internal.h"

#define KS_TOKEN_VERSION 0x01		/* first byte of every token this module writes */
#define KS_SECRET_MAX 64		/* largest secret js_keystore_seal() accepts */
#define KS_KWP_SEMIBLOCK 8		/* RFC 5649 §4.1: 64-bit semiblocks */
#define KS_KWP_MIN_WRAPPED 16		/* RFC 5649 §4.2: at least two semiblocks */
#define KS_PLAIN_MAX (1 + JS_LABEL_MAX + KS_SECRET_MAX)
#define KS_MASTER_HEX_LEN (2 * JS_MASTER_KEY_LEN)
#define KS_MASTER_FILE_MAX (KS_MASTER_HEX_LEN + 1)	/* 64 hex digits and a newline */
#define KS_MASTER_FILE_MODE 0600
#define KS_MODE_GROUP_OTHER 077
#define KS_KCV_TEXT "danejoin master key check v1"
#define KS_ROOT_FLAG_NWK 0x01		/* root secret flags byte: bit 0 = NwkKey present */
#define KS_ROOT_SECRET_MAX (1 + 2 * LW_KEY_LEN)
#define KS_SEMI_MAX (JS_TOKEN_MAX / KS_KWP_SEMIBLOCK)	/* semiblocks of the largest token */

struct js_keystore {
	uint8_t master[JS_MASTER_KEY_LEN];
	uint8_t kcv[JS_KCV_LEN];
	EVP_CIPHER_CTX *wrap;		/* AES-256-ECB keyed with the master, encrypt direction */
	EVP_CIPHER_CTX *unwrap;		/* the same, decrypt direction */
};

/* errno_to_dj - map an errno of open/read/write to our error codes */
static int errno_to_dj(int e)
{
	switch (e) {
	case ENOENT:
		return DJ_ENOENT;
	case EACCES:
	case EPERM:
		return DJ_EACCES;
	case EEXIST:
		return DJ_EEXIST;
	case ELOOP:
		return DJ_EFILEMODE;	/* O_NOFOLLOW met a symbolic link */
	case ENOMEM:
		return DJ_ENOMEM;
	case ENOSPC:
		return DJ_ENOSPC;
	default:
		return DJ_EIO;
	}
}

int js_keystore_read_master(const char *path, uint8_t key[JS_MASTER_KEY_LEN])
{
	uint8_t buf[KS_MASTER_FILE_MAX + 1];
	char text[KS_MASTER_HEX_LEN + 1];
	uint8_t parsed[JS_MASTER_KEY_LEN];
	struct stat st;
	size_t len = 0;
	int fd = -1;
	int ret = DJ_EINVAL;

	if (path == NULL || key == NULL)
		goto out;
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ELOOP)	/* say so: its mode is the link's target's, and irrelevant */
			dj_warn("master key file %s: a symbolic link, refused (opened with O_NOFOLLOW)",
				path);
		ret = errno_to_dj(errno);
		goto out;
	}
	if (fstat(fd, &st) != 0) {
		ret = DJ_EIO;
		goto out;
	}
	if (!S_ISREG(st.st_mode) || (st.st_mode & KS_MODE_GROUP_OTHER) != 0) {
		dj_warn("master key file %s: not a regular file or accessible to group/others",
			path);
		ret = DJ_EFILEMODE;
		goto out;
	}
	/* Read at most one byte more than any valid file holds, to detect trailing garbage. */
	while (len < sizeof(buf)) {
		ssize_t n = read(fd, buf + len, sizeof(buf) - len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			ret = errno_to_dj(errno);
			goto out;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	if (len == JS_MASTER_KEY_LEN) {
		memcpy(parsed, buf, JS_MASTER_KEY_LEN);
	} else if (len == KS_MASTER_HEX_LEN ||
		   (len == KS_MASTER_HEX_LEN + 1 && buf[KS_MASTER_HEX_LEN] == '\n')) {
		memcpy(text, buf, KS_MASTER_HEX_LEN);
		text[KS_MASTER_HEX_LEN] = '\0';
		if (dj_hex_parse(text, parsed, JS_MASTER_KEY_LEN) != DJ_EOK) {
			ret = DJ_EMALFORMED;
			goto out;
		}
	} else {
		ret = DJ_EMALFORMED;
		goto out;
	}
	memcpy(key, parsed, JS_MASTER_KEY_LEN);
	ret = DJ_EOK;
out:
	if (fd >= 0)
		close(fd);
	OPENSSL_cleanse(buf, sizeof(buf));
	OPENSSL_cleanse(text, sizeof(text));
	OPENSSL_cleanse(parsed, sizeof(parsed));
	return ret;
}

/* write_all - write every byte of buf, retrying on EINTR and short writes */
static int write_all(int fd, const void *buf, size_t len)
{
	const uint8_t *p = buf;

	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return errno_to_dj(errno);
		}
		p += n;
		len -= (size_t)n;
	}
	return DJ_EOK;
}

int js_keystore_create_master(const char *path)
{
	uint8_t key[JS_MASTER_KEY_LEN];
	char text[KS_MASTER_FILE_MAX + 1];
	bool created = false;
	int fd = -1;
	int ret = DJ_EINVAL;

	if (path == NULL)
		goto out;
	if (RAND_bytes(key, sizeof(key)) != 1) {
		ret = DJ_ECRYPTO;
		goto out;
	}
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, KS_MASTER_FILE_MODE);
	if (fd < 0) {
		ret = errno_to_dj(errno);
		goto out;
	}
	created = true;
	/* The umask may only remove bits, but make the mode explicit all the same. */
	if (fchmod(fd, KS_MASTER_FILE_MODE) != 0) {
		ret = errno_to_dj(errno);
		goto out;
	}
	dj_hex_format(key, sizeof(key), text);
	text[KS_MASTER_HEX_LEN] = '\n';
	text[KS_MASTER_HEX_LEN + 1] = '\0';
	ret = write_all(fd, text, KS_MASTER_HEX_LEN + 1);
	if (ret != DJ_EOK)
		goto out;
	if (fsync(fd) != 0) {
		ret = errno_to_dj(errno);
		goto out;
	}
	ret = DJ_EOK;
out:
	if (fd >= 0 && close(fd) != 0 && ret == DJ_EOK)
		ret = DJ_EIO;
	if (ret != DJ_EOK && created)
		(void)unlink(path);
	OPENSSL_cleanse(key, sizeof(key));
	OPENSSL_cleanse(text, sizeof(text));
	return ret;
}

/* kwp_len - the RFC 5649 wrapped length of n plaintext bytes: padded to semiblocks, plus AIV */
static size_t kwp_len(size_t n)
{
	return (n + KS_KWP_SEMIBLOCK - 1) / KS_KWP_SEMIBLOCK * KS_KWP_SEMIBLOCK + JS_KWP_OVERHEAD;
}

void js_keystore_free(struct js_keystore *ks)
{
	if (ks == NULL)
		return;
	EVP_CIPHER_CTX_free(ks->wrap);	/* cleanses the key schedule */
	EVP_CIPHER_CTX_free(ks->unwrap);
	OPENSSL_clear_free(ks, sizeof(*ks));
}

int js_keystore__kwp(EVP_CIPHER_CTX *ctx, int enc, const uint8_t *in, size_t len, uint8_t *out,
		     size_t cap, size_t *out_len)
{
	struct lw_block128 b = { .ctx = ctx, .failed = 0 };
	size_t n;
	int ret = DJ_EINVAL;

	if (ctx == NULL || in == NULL || out == NULL || out_len == NULL || len == 0)
		goto out;
	if (enc) {
		if (cap < kwp_len(len))
			goto out;
		n = CRYPTO_128_wrap_pad(&b, NULL, out, in, len, lw_crypto_block128);
		ret = DJ_ECRYPTO;
		if (b.failed || n != kwp_len(len))
			goto out;
	} else {
		/* CRYPTO_128_unwrap_pad wipes len bytes of out when the check fails */
		if (cap < len || len < KS_KWP_MIN_WRAPPED || len % KS_KWP_SEMIBLOCK != 0)
			goto out;
		n = CRYPTO_128_unwrap_pad(&b, NULL, out, in, len, lw_crypto_block128);
		ret = b.failed ? DJ_ECRYPTO : DJ_EUNWRAP;
		if (b.failed || n == 0)
			goto out;
	}
	*out_len = n;
	ret = DJ_EOK;
out:
	if (ret == DJ_ECRYPTO)
		ERR_clear_error();
	return ret;
}

/* The lanes of the lockstep W (lw_crypto_kw_lockstep) hold every token this module writes. */
_Static_assert(KS_SEMI_MAX <= LW_KW_SEMI_MAX, "a token's semiblocks fit in a struct lw_kw_lane");
_Static_assert(JS_KS_BATCH_MAX <= LW_KW_LANES_MAX, "a batch fits in one lockstep run");

/* kwp_semis - the semiblock count m of an input that takes the lockstep path, or 0 for one
 * that goes alone through js_keystore__kwp (m = 1, which RFC 5649 wraps with one AES
 * operation, or lengths that primitive refuses with the right error) */
static size_t kwp_semis(int enc, size_t len, size_t cap)
{
	size_t m;

	if (enc) {
		m = (len + KS_KWP_SEMIBLOCK - 1) / KS_KWP_SEMIBLOCK;
		return len == 0 || m < 2 || m > KS_SEMI_MAX || cap < kwp_len(len) ? 0 : m;
	}
	if (len < KS_KWP_MIN_WRAPPED || len % KS_KWP_SEMIBLOCK != 0 || cap < len)
		return 0;
	m = len / KS_KWP_SEMIBLOCK - 1;
	return m < 2 || m > KS_SEMI_MAX ? 0 : m;
}

/* kwp_load - set up a lane: RFC 5649 §4.1 AIV and zero padding (enc), or the ciphertext (dec) */
static void kwp_load(int enc, size_t m, const uint8_t *in, size_t len, struct lw_kw_lane *l)
{
	uint8_t a[KS_KWP_SEMIBLOCK] = { 0xa6, 0x59, 0x59, 0xa6 };

	memset(l->r, 0, m * KS_KWP_SEMIBLOCK);
	if (enc) {
		dj_be_put(len, a + 4, 4);
		memcpy(&l->a, a, KS_KWP_SEMIBLOCK);
		memcpy(l->r, in, len);
	} else {
		memcpy(&l->a, in, KS_KWP_SEMIBLOCK);
		memcpy(l->r, in + KS_KWP_SEMIBLOCK, m * KS_KWP_SEMIBLOCK);
	}
}

/* kwp_store - a finished lane out: the ciphertext (enc), or the RFC 5649 §3 checks of the AIV,
 * the length indicator and the zero padding, then the plaintext (dec) */
static int kwp_store(int enc, size_t m, const struct lw_kw_lane *l, uint8_t *out, size_t *out_len)
{
	static const uint8_t aiv[4] = { 0xa6, 0x59, 0x59, 0xa6 };
	static const uint8_t zero[KS_KWP_SEMIBLOCK];
	uint8_t a[KS_KWP_SEMIBLOCK];
	size_t mli, pad;
	int bad;

	if (enc) {
		memcpy(out, &l->a, KS_KWP_SEMIBLOCK);
		memcpy(out + KS_KWP_SEMIBLOCK, l->r, m * KS_KWP_SEMIBLOCK);
		*out_len = (m + 1) * KS_KWP_SEMIBLOCK;
		return DJ_EOK;
	}
	memcpy(a, &l->a, KS_KWP_SEMIBLOCK);
	mli = (size_t)dj_be_get(a + 4, 4);
	bad = CRYPTO_memcmp(a, aiv, sizeof(aiv)) != 0;
	bad |= mli <= (m - 1) * KS_KWP_SEMIBLOCK || mli > m * KS_KWP_SEMIBLOCK;
	if (bad)
		return DJ_EUNWRAP;
	pad = m * KS_KWP_SEMIBLOCK - mli;
	if (CRYPTO_memcmp((const uint8_t *)l->r + mli, zero, pad) != 0)
		return DJ_EUNWRAP;
	memcpy(out, l->r, mli);
	*out_len = mli;
	return DJ_EOK;
}

int js_keystore__kwp_many(EVP_CIPHER_CTX *ctx, int enc, size_t n, const uint8_t *const in[],
			  const size_t len[], uint8_t *const out[], size_t cap, size_t out_len[],
			  int rets[])
{
	struct lw_kw_lane lane[JS_KS_BATCH_MAX];
	size_t semis[JS_KS_BATCH_MAX], idx[JS_KS_BATCH_MAX];
	bool done[JS_KS_BATCH_MAX];
	size_t i, k, x;
	int ret;

	if (ctx == NULL || n > JS_KS_BATCH_MAX || in == NULL || len == NULL || out == NULL ||
	    out_len == NULL || rets == NULL)
		return DJ_EINVAL;
	for (i = 0; i < n; i++) {
		done[i] = false;
		semis[i] = in[i] != NULL && out[i] != NULL ? kwp_semis(enc, len[i], cap) : 0;
		if (semis[i] == 0) {
			rets[i] = in[i] == NULL || out[i] == NULL
					  ? DJ_EINVAL
					  : js_keystore__kwp(ctx, enc, in[i], len[i], out[i], cap,
							     &out_len[i]);
			done[i] = true;
		}
	}
	/* One lockstep run per semiblock count (1.0.x and 1.1 root tokens differ). */
	for (i = 0; i < n; i++) {
		if (done[i])
			continue;
		for (k = 0, x = i; x < n; x++) {
			if (!done[x] && semis[x] == semis[i]) {
				idx[k] = x;
				kwp_load(enc, semis[x], in[x], len[x], &lane[k]);
				k++;
			}
		}
		ret = lw_crypto_kw_lockstep(ctx, enc, semis[i], lane, k);
		for (x = 0; x < k; x++) {
			size_t it = idx[x];

			rets[it] = ret == DJ_EOK ? kwp_store(enc, semis[it], &lane[x], out[it],
							     &out_len[it])
						 : ret;
			done[it] = true;
		}
		if (ret == DJ_ECRYPTO)
			ERR_clear_error();
	}
	OPENSSL_cleanse(lane, n * sizeof(lane[0]));	/* only the lanes used */
	return DJ_EOK;
}

int js_keystore_new(const uint8_t master[JS_MASTER_KEY_LEN], struct js_keystore **out)
{
	uint8_t mac[EVP_MAX_MD_SIZE];
	unsigned int mac_len = 0;
	struct js_keystore *ks = NULL;
	bool entered = false;
	int ret = DJ_EINVAL;

	if (master == NULL || out == NULL)
		goto out;
	ret = DJ_ENOMEM;
	dj_secmem_enter();	/* the master key and its schedules: the arena (dj_secmem.h) */
	entered = true;
	ks = OPENSSL_zalloc(sizeof(*ks));
	if (ks == NULL)
		goto out;
	memcpy(ks->master, master, JS_MASTER_KEY_LEN);
	ret = lw_crypto_block128_ctx_new(ks->master, JS_MASTER_KEY_LEN, 1, &ks->wrap);
	if (ret != DJ_EOK)
		goto out;
	ret = lw_crypto_block128_ctx_new(ks->master, JS_MASTER_KEY_LEN, 0, &ks->unwrap);
	if (ret != DJ_EOK)
		goto out;
	ret = DJ_ECRYPTO;
	if (HMAC(EVP_sha256(), ks->master, JS_MASTER_KEY_LEN, (const uint8_t *)KS_KCV_TEXT,
		 strlen(KS_KCV_TEXT), mac, &mac_len) == NULL || mac_len < JS_KCV_LEN)
		goto out;
	memcpy(ks->kcv, mac, JS_KCV_LEN);
	*out = ks;
	ks = NULL;
	ret = DJ_EOK;
out:
	if (ret == DJ_ECRYPTO)
		ERR_clear_error();
	OPENSSL_cleanse(mac, sizeof(mac));
	js_keystore_free(ks);
	if (entered)
		dj_secmem_leave();
	return ret;
}

int js_keystore_dup(const struct js_keystore *ks, struct js_keystore **out)
{
	if (ks == NULL || out == NULL)
		return DJ_EINVAL;
	return js_keystore_new(ks->master, out);
}

void js_keystore_kcv(const struct js_keystore *ks, uint8_t kcv[JS_KCV_LEN])
{
	memcpy(kcv, ks->kcv, JS_KCV_LEN);
}

size_t js_keystore_label(const char *purpose, const uint8_t *id, size_t id_len,
			 uint8_t label[JS_LABEL_MAX])
{
	size_t plen;

	if (purpose == NULL || (id == NULL && id_len > 0))
		return 0;
	plen = strlen(purpose);
	if (plen + 1 + id_len > JS_LABEL_MAX)
		return 0;
	memcpy(label, purpose, plen);
	label[plen] = 0x00;
	if (id_len > 0)
		memcpy(label + plen + 1, id, id_len);
	return plen + 1 + id_len;
}

/* seal_plain - check a seal's arguments and lay out label_len | label | secret in plain */
static int seal_plain(const uint8_t *label, size_t label_len, const uint8_t *secret,
		      size_t secret_len, uint8_t plain[KS_PLAIN_MAX], size_t *plain_len)
{
	if (label == NULL || (secret == NULL && secret_len > 0) || label_len == 0 ||
	    label_len > JS_LABEL_MAX || secret_len > KS_SECRET_MAX)
		return DJ_EINVAL;
	if (1 + kwp_len(1 + label_len + secret_len) > JS_TOKEN_MAX)
		return DJ_ERANGE;
	plain[0] = (uint8_t)label_len;
	memcpy(plain + 1, label, label_len);
	if (secret_len > 0)
		memcpy(plain + 1 + label_len, secret, secret_len);
	*plain_len = 1 + label_len + secret_len;
	return DJ_EOK;
}

/* open_check - check a token's framing before unwrapping: version byte, semiblock lengths */
static int open_check(const uint8_t *label, size_t label_len, const uint8_t *token,
		      size_t token_len)
{
	if (label == NULL || token == NULL || label_len == 0 || label_len > JS_LABEL_MAX)
		return DJ_EINVAL;
	if (token_len < 1 + KS_KWP_MIN_WRAPPED || token_len > JS_TOKEN_MAX ||
	    token[0] != KS_TOKEN_VERSION || (token_len - 1) % KS_KWP_SEMIBLOCK != 0)
		return DJ_EMALFORMED;
	return DJ_EOK;
}

/* open_label - after unwrapping: the label must be the one asked for (same length, same bytes,
 * constant time); then the secret goes out */
static int open_label(const uint8_t *plain, size_t n, const uint8_t *label, size_t label_len,
		      uint8_t *secret, size_t cap, size_t *secret_len)
{
	size_t slen;

	if (n < 1 + label_len || plain[0] != label_len ||
	    CRYPTO_memcmp(plain + 1, label, label_len) != 0)
		return DJ_EUNWRAP;
	slen = n - 1 - label_len;
	if (slen > cap)
		return DJ_ERANGE;
	if (slen > 0)
		memcpy(secret, plain + 1 + label_len, slen);
	*secret_len = slen;
	return DJ_EOK;
}

int js_keystore_seal(struct js_keystore *ks, const uint8_t *label, size_t label_len,
		     const uint8_t *secret, size_t secret_len, uint8_t *token, size_t *token_len)
{
	uint8_t plain[KS_PLAIN_MAX];
	uint8_t buf[JS_TOKEN_MAX];
	size_t plain_len = 0;
	size_t wl = 0;
	int ret = DJ_EINVAL;

	if (ks == NULL || token == NULL || token_len == NULL)
		goto out;
	ret = seal_plain(label, label_len, secret, secret_len, plain, &plain_len);
	if (ret != DJ_EOK)
		goto out;
	buf[0] = KS_TOKEN_VERSION;
	ret = js_keystore__kwp(ks->wrap, 1, plain, plain_len, buf + 1, sizeof(buf) - 1, &wl);
	if (ret != DJ_EOK)
		goto out;
	memcpy(token, buf, 1 + wl);
	*token_len = 1 + wl;
	ret = DJ_EOK;
out:
	OPENSSL_cleanse(plain, sizeof(plain));
	return ret;
}

int js_keystore_open(struct js_keystore *ks, const uint8_t *label, size_t label_len,
		     const uint8_t *token, size_t token_len, uint8_t *secret, size_t cap,
		     size_t *secret_len)
{
	uint8_t plain[JS_TOKEN_MAX];
	size_t n = 0;
	int ret = DJ_EINVAL;

	if (ks == NULL || secret_len == NULL || (secret == NULL && cap > 0))
		goto out;
	ret = open_check(label, label_len, token, token_len);
	if (ret != DJ_EOK)
		goto out;
	ret = js_keystore__kwp(ks->unwrap, 0, token + 1, token_len - 1, plain, sizeof(plain), &n);
	if (ret != DJ_EOK)
		goto out;
	ret = open_label(plain, n, label, label_len, secret, cap, secret_len);
out:
	OPENSSL_cleanse(plain, sizeof(plain));
	return ret;
}

/* kwp_merge - each item not refused before the batch primitive gets its result */
static void kwp_merge(int *rets, const int *kr, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (rets[i] == DJ_EOK)
			rets[i] = kr[i];
}

int js_keystore_seal_many(struct js_keystore *ks, size_t n, const uint8_t *const label[],
			  const size_t label_len[], const uint8_t *const secret[],
			  const size_t secret_len[], uint8_t *const token[], size_t token_len[],
			  int rets[])
{
	uint8_t plain[JS_KS_BATCH_MAX][KS_PLAIN_MAX];
	const uint8_t *in[JS_KS_BATCH_MAX] = { NULL };
	uint8_t *out[JS_KS_BATCH_MAX] = { NULL };
	size_t len[JS_KS_BATCH_MAX] = { 0 }, wl[JS_KS_BATCH_MAX];
	int kr[JS_KS_BATCH_MAX];
	size_t i;
	int ret = DJ_EINVAL;

	if (ks == NULL || n > JS_KS_BATCH_MAX || label == NULL || label_len == NULL ||
	    secret == NULL || secret_len == NULL || token == NULL || token_len == NULL ||
	    rets == NULL)
		goto out;
	for (i = 0; i < n; i++) {
		len[i] = 0;
		in[i] = plain[i];
		out[i] = token[i] != NULL ? token[i] + 1 : NULL;
		rets[i] = token[i] == NULL ? DJ_EINVAL
					   : seal_plain(label[i], label_len[i], secret[i],
							secret_len[i], plain[i], &len[i]);
	}
	/* An item already refused goes in with length 0, which the primitive refuses alone. */
	ret = js_keystore__kwp_many(ks->wrap, 1, n, in, len, out, JS_TOKEN_MAX - 1, wl, kr);
	if (ret != DJ_EOK)
		goto out;
	kwp_merge(rets, kr, n);
	for (i = 0; i < n; i++) {
		if (rets[i] != DJ_EOK)
			continue;
		token[i][0] = KS_TOKEN_VERSION;
		token_len[i] = 1 + wl[i];
	}
out:
	OPENSSL_cleanse(plain, (n <= JS_KS_BATCH_MAX ? n : 0) * sizeof(plain[0]));
	return ret;
}

int js_keystore_rewrap(struct js_keystore *old_ks, struct js_keystore *new_ks,
		       const uint8_t *label, size_t label_len, const uint8_t *token,
		       size_t token_len, uint8_t *out, size_t *out_len)
{
	uint8_t secret[KS_SECRET_MAX];
	size_t slen = 0;
	int ret;

	ret = js_keystore_open(old_ks, label, label_len, token, token_len, secret,
			       sizeof(secret), &slen);
	if (ret == DJ_EOK)
		ret = js_keystore_seal(new_ks, label, label_len, secret, slen, out, out_len);
	OPENSSL_cleanse(secret, sizeof(secret));
	return ret;
}

/* root_label - the label of a device's root token; 0 for a NULL DevEUI */
static size_t root_label(const uint8_t *dev_eui, uint8_t label[JS_LABEL_MAX])
{
	if (dev_eui == NULL)
		return 0;
	return js_keystore_label(JS_PURPOSE_ROOT, dev_eui, LW_EUI_LEN, label);
}

int js_keystore_seal_root(struct js_keystore *ks, const uint8_t dev_eui[LW_EUI_LEN],
			  const uint8_t app_key[LW_KEY_LEN], const uint8_t *nwk_key,
			  uint8_t *token, size_t *token_len)
{
	uint8_t label[JS_LABEL_MAX];
	uint8_t secret[KS_ROOT_SECRET_MAX];
	size_t label_len, slen;
	int ret = DJ_EINVAL;

	label_len = root_label(dev_eui, label);
	if (label_len == 0 || app_key == NULL)
		goto out;
	secret[0] = nwk_key != NULL ? KS_ROOT_FLAG_NWK : 0;
	memcpy(secret + 1, app_key, LW_KEY_LEN);
	slen = 1 + LW_KEY_LEN;
	if (nwk_key != NULL) {
		memcpy(secret + slen, nwk_key, LW_KEY_LEN);
		slen += LW_KEY_LEN;
	}
	ret = js_keystore_seal(ks, label, label_len, secret, slen, token, token_len);
out:
	OPENSSL_cleanse(secret, sizeof(secret));
	return ret;
}

/* root_from_secret - the keys of an authentic root secret, or DJ_EMALFORMED for one of the wrong
 * shape (not written by seal_root) */
static int root_from_secret(const uint8_t *secret, size_t slen, struct js_root_keys *out)
{
	bool has_nwk;

	if (slen < 1 + LW_KEY_LEN || (secret[0] & ~KS_ROOT_FLAG_NWK) != 0)
		return DJ_EMALFORMED;
	has_nwk = (secret[0] & KS_ROOT_FLAG_NWK) != 0;
	if (slen != (has_nwk ? KS_ROOT_SECRET_MAX : 1 + LW_KEY_LEN))
		return DJ_EMALFORMED;
	out->has_nwk_key = has_nwk;
	lw_key_set(&out->app_key, secret + 1);
	lw_key_set(&out->nwk_key, has_nwk ? secret + 1 + LW_KEY_LEN : secret + 1);
	return DJ_EOK;
}

int js_keystore_open_root(struct js_keystore *ks, const uint8_t dev_eui[LW_EUI_LEN],
			  const uint8_t *token, size_t token_len, struct js_root_keys *out)
{
	uint8_t label[JS_LABEL_MAX];
	uint8_t secret[KS_ROOT_SECRET_MAX];
	size_t label_len, slen = 0;
	int ret = DJ_EINVAL;

	label_len = root_label(dev_eui, label);
	if (label_len == 0 || out == NULL)
		goto out;
	ret = js_keystore_open(ks, label, label_len, token, token_len, secret, sizeof(secret),
			       &slen);
	if (ret == DJ_EOK)
		ret = root_from_secret(secret, slen, out);
out:
	OPENSSL_cleanse(secret, sizeof(secret));
	return ret;
}

int js_keystore_open_root_many(struct js_keystore *ks, size_t n, const uint8_t *const dev_eui[],
			       const uint8_t *const token[], const size_t token_len[],
			       struct js_root_keys out[], int rets[])
{
	uint8_t label[JS_KS_BATCH_MAX][JS_LABEL_MAX];
	uint8_t plain[JS_KS_BATCH_MAX][JS_TOKEN_MAX];
	uint8_t secret[KS_ROOT_SECRET_MAX];
	const uint8_t *in[JS_KS_BATCH_MAX] = { NULL };
	uint8_t *pout[JS_KS_BATCH_MAX] = { NULL };
	size_t label_len[JS_KS_BATCH_MAX], len[JS_KS_BATCH_MAX] = { 0 }, pl[JS_KS_BATCH_MAX];
	size_t i, slen;
	int kr[JS_KS_BATCH_MAX];
	int ret = DJ_EINVAL;

	if (ks == NULL || n > JS_KS_BATCH_MAX || dev_eui == NULL || token == NULL ||
	    token_len == NULL || out == NULL || rets == NULL)
		goto out;
	for (i = 0; i < n; i++) {
		in[i] = NULL;
		len[i] = 0;
		pout[i] = plain[i];
		label_len[i] = root_label(dev_eui[i], label[i]);
		rets[i] = label_len[i] == 0 ? DJ_EINVAL
					    : open_check(label[i], label_len[i], token[i],
							 token_len[i]);
		if (rets[i] == DJ_EOK) {
			in[i] = token[i] + 1;
			len[i] = token_len[i] - 1;
		}
	}
	ret = js_keystore__kwp_many(ks->unwrap, 0, n, in, len, pout, JS_TOKEN_MAX, pl, kr);
	if (ret != DJ_EOK)
		goto out;
	kwp_merge(rets, kr, n);
	for (i = 0; i < n; i++) {
		if (rets[i] == DJ_EOK)
			rets[i] = open_label(plain[i], pl[i], label[i], label_len[i], secret,
					     sizeof(secret), &slen);
		if (rets[i] == DJ_EOK)
			rets[i] = root_from_secret(secret, slen, &out[i]);
		OPENSSL_cleanse(secret, sizeof(secret));
	}
out:
	OPENSSL_cleanse(plain, (n <= JS_KS_BATCH_MAX ? n : 0) * sizeof(plain[0]));
	return ret;
}

void js_root_keys_wipe(struct js_root_keys *keys)
{
	if (keys != NULL)
		OPENSSL_cleanse(keys, sizeof(*keys));
}
