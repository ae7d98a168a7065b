/*
 * dv_chain.c - ownership chains (dv_chain.h): protobuf-c encoding, EVP_DigestSign signatures,
 * and the continuity rules that make a chain more than a list of signed links.
 *
 * Security reasoning. A link is only as good as the rule that ties it to the one before: a
 * valid signature by zone A over "A gives device D to B" means nothing unless A owned D at that
 * point. So every link must start where the previous one ended (from_zone == previous
 * to_zone), carry the next serial (so links can be neither reordered, dropped nor repeated: a
 * replayed old link has an old serial), name the same DevEUI/JoinEUI, and be signed by the
 * zone that gave the device away (or, for AUTH_CODE, by the registry that signed link 1, which
 * checked the previous owner's auth code: the EPP pattern). Decoding is strict (one encoding
 * per link) so that a signature cannot be carried over to a differently-encoded twin.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "common/dj_err.h"
#include "common/dj_hex.h"
#include "ownership/dv_chain.h"
#include "dv_chain.pb-c.h"

#define ZONE_TEXT_MAX 253	/* RFC 1035 §2.3.4, without the trailing dot */
#define LABEL_MAX 63
#define P256_GROUP "prime256v1"
#define LINK_TMP_MAX 4096	/* one canonical link is far below this */

typedef Danejoin__Ownership__Link pb_link;
typedef Danejoin__Ownership__Chain pb_chain;

int dv_zone_normalize(const char *in, char out[DV_ZONE_MAX])
{
	char buf[DV_ZONE_MAX];
	size_t n, i, label = 0;

	if (in == NULL)
		return DJ_EMALFORMED;
	n = strlen(in);
	if (n > 0 && in[n - 1] == '.')
		n--;
	if (n == 0 || n > ZONE_TEXT_MAX)
		return DJ_EMALFORMED;
	for (i = 0; i < n; i++) {
		char ch = in[i];

		if (ch >= 'A' && ch <= 'Z')
			ch = (char)(ch - 'A' + 'a');
		if (ch == '.') {
			if (label == 0)
				return DJ_EMALFORMED;
			label = 0;
		} else if ((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-' ||
			   ch == '_') {
			if (++label > LABEL_MAX)
				return DJ_EMALFORMED;
		} else {
			return DJ_EMALFORMED;
		}
		buf[i] = ch;
	}
	if (label == 0)
		return DJ_EMALFORMED;
	buf[n] = '.';
	buf[n + 1] = '\0';
	memcpy(out, buf, n + 2);
	return DJ_EOK;
}

bool dv_asid_valid(const char *s)
{
	size_t n = s != NULL ? strlen(s) : 0;

	if (n == 0 || n >= DV_ASID_MAX)
		return false;
	for (; *s != '\0'; s++)
		if (*s <= 0x20 || *s >= 0x7f || *s == ',' || *s == '"' || *s == '\\' ||
		    *s == '\'' || *s == ';')
			return false;
	return true;
}

/* zone_ok - whether a zone field is already in normalized form */
static bool zone_ok(const char *z)
{
	char n[DV_ZONE_MAX];

	return z != NULL && dv_zone_normalize(z, n) == DJ_EOK && strcmp(n, z) == 0;
}

/* link_fields_ok - bounds and forms of every field of a link (no continuity) */
static bool link_fields_ok(const struct dv_link *l)
{
	size_t i;

	if (!zone_ok(l->from_zone) || !zone_ok(l->to_zone) || !zone_ok(l->signer_zone))
		return false;
	if (l->n_net_ids > DV_RIGHTS_MAX || l->n_as_ids > DV_RIGHTS_MAX)
		return false;
	for (i = 0; i < l->n_as_ids; i++)
		if (!dv_asid_valid(l->as_ids[i]))
			return false;
	if (l->serial == 0 || l->sig_len > DV_SIG_MAX)
		return false;
	return l->auth == DV_AUTH_MANUFACTURER || l->auth == DV_AUTH_SIGNED ||
	       l->auth == DV_AUTH_CODE;
}

/*
 * to_pb - a protobuf-c view of \p l; pointers borrow from \p l and from the caller's arrays
 * (no allocation). \p with_sig: include the signature (a full link) or not (canonical form).
 */
static void to_pb(const struct dv_link *l, bool with_sig, pb_link *m, ProtobufCBinaryData *nets,
		  char **asids)
{
	size_t i;

	danejoin__ownership__link__init(m);
	m->dev_eui.data = (uint8_t *)l->dev_eui;
	m->dev_eui.len = LW_EUI_LEN;
	m->join_eui.data = (uint8_t *)l->join_eui;
	m->join_eui.len = LW_EUI_LEN;
	m->from_zone = (char *)l->from_zone;
	m->to_zone = (char *)l->to_zone;
	for (i = 0; i < l->n_net_ids; i++) {
		nets[i].data = (uint8_t *)l->net_ids[i];
		nets[i].len = DV_NETID_LEN;
	}
	m->n_net_ids = l->n_net_ids;
	m->net_ids = nets;
	for (i = 0; i < l->n_as_ids; i++)
		asids[i] = (char *)l->as_ids[i];
	m->n_as_ids = l->n_as_ids;
	m->as_ids = asids;
	m->serial = l->serial;
	m->not_before = l->not_before;
	m->nonce.data = (uint8_t *)l->nonce;
	m->nonce.len = DV_NONCE_LEN;
	m->signer_zone = (char *)l->signer_zone;
	m->auth = (Danejoin__Ownership__Auth)l->auth;
	if (with_sig) {
		m->signature.data = (uint8_t *)l->sig;
		m->signature.len = l->sig_len;
	}
}

/* pack_link - serialize \p l (with or without its signature) into a new buffer */
static int pack_link(const struct dv_link *l, bool with_sig, uint8_t **out, size_t *len)
{
	ProtobufCBinaryData nets[DV_RIGHTS_MAX];
	char *asids[DV_RIGHTS_MAX];
	pb_link m;
	uint8_t *buf;
	size_t n;

	*out = NULL;
	if (!link_fields_ok(l))
		return DJ_EINVAL;
	to_pb(l, with_sig, &m, nets, asids);
	n = danejoin__ownership__link__get_packed_size(&m);
	buf = malloc(n > 0 ? n : 1);
	if (buf == NULL)
		return DJ_ENOMEM;
	if (danejoin__ownership__link__pack(&m, buf) != n) {
		free(buf);
		return DJ_ERROR;
	}
	*out = buf;
	*len = n;
	return DJ_EOK;
}

int dv_link_canonical(const struct dv_link *l, uint8_t **out, size_t *len)
{
	return pack_link(l, false, out, len);
}

int dv_link_encode(const struct dv_link *l, uint8_t **out, size_t *len)
{
	if (l->sig_len == 0)
		return DJ_EINVAL;
	return pack_link(l, true, out, len);
}

bool dv_key_usable(EVP_PKEY *key)
{
	char group[32];

	if (key == NULL)
		return false;
	if (EVP_PKEY_is_a(key, "ED25519"))
		return true;
	if (!EVP_PKEY_is_a(key, "EC"))
		return false;
	if (EVP_PKEY_get_group_name(key, group, sizeof(group), NULL) != 1)
		return false;
	return strcmp(group, P256_GROUP) == 0 || strcmp(group, "P-256") == 0;
}

/* signed_message - DV_LINK_SIG_CONTEXT (with NUL) | canonical encoding, in a new buffer */
static int signed_message(const struct dv_link *l, uint8_t **out, size_t *len)
{
	uint8_t *canon = NULL, *msg;
	size_t clen = 0, ctx = sizeof(DV_LINK_SIG_CONTEXT);
	int rc;

	*out = NULL;
	rc = dv_link_canonical(l, &canon, &clen);
	if (rc != DJ_EOK)
		return rc;
	msg = malloc(ctx + clen);
	if (msg == NULL) {
		free(canon);
		return DJ_ENOMEM;
	}
	memcpy(msg, DV_LINK_SIG_CONTEXT, ctx);
	memcpy(msg + ctx, canon, clen);
	free(canon);
	*out = msg;
	*len = ctx + clen;
	return DJ_EOK;
}

/*
 * md_init - a digest context in *md set up to sign (or verify) with key: SHA-256 for ECDSA,
 * none for Ed25519 (PureEdDSA, RFC 8032). The caller frees *md, also on failure.
 */
static int md_init(EVP_PKEY *key, bool sign, EVP_MD_CTX **md)
{
	const char *digest = EVP_PKEY_is_a(key, "ED25519") ? NULL : "SHA256";

	*md = EVP_MD_CTX_new();
	if (*md == NULL)
		return DJ_ENOMEM;
	if ((sign ? EVP_DigestSignInit_ex(*md, NULL, digest, NULL, NULL, key, NULL) :
		    EVP_DigestVerifyInit_ex(*md, NULL, digest, NULL, NULL, key, NULL)) != 1)
		return DJ_ECRYPTO;
	return DJ_EOK;
}

int dv_link_sign(struct dv_link *l, EVP_PKEY *key)
{
	EVP_MD_CTX *md = NULL;
	uint8_t *msg = NULL, sig[DV_SIG_MAX];
	size_t mlen = 0, slen = sizeof(sig);
	int rc;

	if (!dv_key_usable(key))
		return DJ_EINVAL;
	l->sig_len = 0;
	rc = signed_message(l, &msg, &mlen);
	if (rc != DJ_EOK)
		goto out;
	rc = md_init(key, true, &md);
	if (rc != DJ_EOK)
		goto out;
	rc = DJ_ECRYPTO;
	if (EVP_DigestSign(md, sig, &slen, msg, mlen) != 1 || slen > DV_SIG_MAX)
		goto out;
	memcpy(l->sig, sig, slen);
	l->sig_len = slen;
	rc = DJ_EOK;
out:
	EVP_MD_CTX_free(md);
	free(msg);
	return rc;
}

int dv_link_verify(const struct dv_link *l, EVP_PKEY *key)
{
	uint8_t *msg = NULL;
	size_t mlen = 0;
	int rc;

	if (!dv_key_usable(key) || l->sig_len == 0)
		return DJ_EACCES;
	rc = signed_message(l, &msg, &mlen);
	if (rc == DJ_EOK)
		rc = dv_key_verify_msg(key, msg, mlen, l->sig, l->sig_len);
	free(msg);
	return rc;
}

int dv_key_verify_msg(EVP_PKEY *key, const uint8_t *msg, size_t len, const uint8_t *sig,
		      size_t siglen)
{
	EVP_MD_CTX *md = NULL;
	int rc, v;

	if (!dv_key_usable(key) || siglen == 0)
		return DJ_EACCES;
	rc = md_init(key, false, &md);
	if (rc != DJ_EOK)
		goto out;
	v = EVP_DigestVerify(md, sig, siglen, msg, len);
	ERR_clear_error();	/* a bad DER signature leaves errors: it is a verdict, not a fault */
	rc = v == 1 ? DJ_EOK : DJ_EACCES;
out:
	EVP_MD_CTX_free(md);
	return rc;
}

int dv_key_match_tlsa(EVP_PKEY *key, uint8_t mtype, const uint8_t *data, size_t len,
		      bool *match)
{
	uint8_t *spki = NULL, dig[EVP_MAX_MD_SIZE];
	unsigned dlen = 0;
	size_t slen = 0;
	int rc;

	if (mtype > DJ_TLSA_MT_SHA512)
		return DJ_EINVAL;
	rc = dv_key_spki(key, &spki, &slen);
	if (rc != DJ_EOK)
		return rc;
	if (mtype == DJ_TLSA_MT_FULL) {
		*match = len == slen && CRYPTO_memcmp(spki, data, len) == 0;
		goto out;
	}
	rc = DJ_ECRYPTO;
	if (EVP_Digest(spki, slen, dig, &dlen, mtype == DJ_TLSA_MT_SHA256 ? EVP_sha256() :
		       EVP_sha512(), NULL) != 1)
		goto out;
	*match = len == dlen && CRYPTO_memcmp(dig, data, len) == 0;
	rc = DJ_EOK;
out:
	free(spki);
	return rc;
}

/* from_pb - copy a parsed link into \p l with every bound checked */
static int from_pb(const pb_link *m, struct dv_link *l)
{
	size_t i;

	memset(l, 0, sizeof(*l));
	if (m->base.n_unknown_fields != 0)
		return DJ_EMALFORMED;
	if (m->dev_eui.len != LW_EUI_LEN || m->join_eui.len != LW_EUI_LEN ||
	    m->nonce.len != DV_NONCE_LEN || m->signature.len == 0 ||
	    m->signature.len > DV_SIG_MAX || m->n_net_ids > DV_RIGHTS_MAX ||
	    m->n_as_ids > DV_RIGHTS_MAX)
		return DJ_EMALFORMED;
	if (m->from_zone == NULL || strlen(m->from_zone) >= DV_ZONE_MAX ||
	    m->to_zone == NULL || strlen(m->to_zone) >= DV_ZONE_MAX ||
	    m->signer_zone == NULL || strlen(m->signer_zone) >= DV_ZONE_MAX)
		return DJ_EMALFORMED;
	memcpy(l->dev_eui, m->dev_eui.data, LW_EUI_LEN);
	memcpy(l->join_eui, m->join_eui.data, LW_EUI_LEN);
	strcpy(l->from_zone, m->from_zone);
	strcpy(l->to_zone, m->to_zone);
	strcpy(l->signer_zone, m->signer_zone);
	for (i = 0; i < m->n_net_ids; i++) {
		if (m->net_ids[i].len != DV_NETID_LEN)
			return DJ_EMALFORMED;
		memcpy(l->net_ids[i], m->net_ids[i].data, DV_NETID_LEN);
	}
	l->n_net_ids = m->n_net_ids;
	for (i = 0; i < m->n_as_ids; i++) {
		if (!dv_asid_valid(m->as_ids[i]))
			return DJ_EMALFORMED;
		strcpy(l->as_ids[i], m->as_ids[i]);
	}
	l->n_as_ids = m->n_as_ids;
	l->serial = m->serial;
	l->not_before = m->not_before;
	memcpy(l->nonce, m->nonce.data, DV_NONCE_LEN);
	l->auth = (enum dv_auth)m->auth;
	memcpy(l->sig, m->signature.data, m->signature.len);
	l->sig_len = m->signature.len;
	return link_fields_ok(l) ? DJ_EOK : DJ_EMALFORMED;
}

/* same_encoding - whether \p l re-encodes to exactly \p len bytes at \p buf (canonical form) */
static int same_encoding(const struct dv_link *l, const uint8_t *buf, size_t len)
{
	uint8_t *again = NULL;
	size_t alen = 0;
	int rc;

	rc = pack_link(l, true, &again, &alen);
	if (rc == DJ_EINVAL)
		return DJ_EMALFORMED;
	if (rc != DJ_EOK)
		return rc;
	rc = alen == len && memcmp(again, buf, len) == 0 ? DJ_EOK : DJ_EMALFORMED;
	free(again);
	return rc;
}

int dv_link_decode(const uint8_t *buf, size_t len, struct dv_link *out)
{
	pb_link *m;
	int rc;

	if (buf == NULL || len == 0 || len > LINK_TMP_MAX)
		return DJ_EMALFORMED;
	m = danejoin__ownership__link__unpack(NULL, len, buf);
	if (m == NULL)
		return DJ_EMALFORMED;
	rc = from_pb(m, out);
	danejoin__ownership__link__free_unpacked(m, NULL);
	if (rc == DJ_EOK)
		rc = same_encoding(out, buf, len);
	return rc;
}

int dv_chain_encode(const struct dv_chain *c, uint8_t **out, size_t *len)
{
	pb_link *links = NULL, **ptrs = NULL;
	ProtobufCBinaryData (*nets)[DV_RIGHTS_MAX] = NULL;
	char *(*asids)[DV_RIGHTS_MAX] = NULL;
	pb_chain m = DANEJOIN__OWNERSHIP__CHAIN__INIT;
	uint8_t *buf = NULL;
	size_t i, n;
	int rc = DJ_EINVAL;

	*out = NULL;
	if (c->n == 0 || c->n > DV_CHAIN_MAX)
		goto out;
	for (i = 0; i < c->n; i++)
		if (!link_fields_ok(&c->links[i]) || c->links[i].sig_len == 0)
			goto out;
	rc = DJ_ENOMEM;
	links = calloc(c->n, sizeof(*links));
	ptrs = calloc(c->n, sizeof(*ptrs));
	nets = calloc(c->n, sizeof(*nets));
	asids = calloc(c->n, sizeof(*asids));
	if (links == NULL || ptrs == NULL || nets == NULL || asids == NULL)
		goto out;
	for (i = 0; i < c->n; i++) {
		to_pb(&c->links[i], true, &links[i], nets[i], asids[i]);
		ptrs[i] = &links[i];
	}
	m.n_links = c->n;
	m.links = ptrs;
	n = danejoin__ownership__chain__get_packed_size(&m);
	if (n > DV_CHAIN_WIRE_MAX) {
		rc = DJ_ENOSPC;
		goto out;
	}
	buf = malloc(n);
	if (buf == NULL)
		goto out;
	if (danejoin__ownership__chain__pack(&m, buf) != n) {
		rc = DJ_ERROR;
		goto out;
	}
	*out = buf;
	*len = n;
	buf = NULL;
	rc = DJ_EOK;
out:
	free(buf);
	free(links);
	free(ptrs);
	free(nets);
	free(asids);
	return rc;
}

int dv_chain_decode(const uint8_t *buf, size_t len, struct dv_chain *out)
{
	pb_chain *m = NULL;
	uint8_t *again = NULL;
	size_t i, alen = 0;
	int rc = DJ_EMALFORMED;

	out->n = 0;
	if (buf == NULL || len == 0 || len > DV_CHAIN_WIRE_MAX)
		goto out;
	m = danejoin__ownership__chain__unpack(NULL, len, buf);
	if (m == NULL || m->base.n_unknown_fields != 0 || m->n_links == 0 ||
	    m->n_links > DV_CHAIN_MAX)
		goto out;
	for (i = 0; i < m->n_links; i++) {
		rc = from_pb(m->links[i], &out->links[i]);
		if (rc != DJ_EOK)
			goto out;
	}
	out->n = m->n_links;
	/* one encoding per chain: what we parsed must re-encode to the same bytes */
	rc = dv_chain_encode(out, &again, &alen);
	if (rc == DJ_EINVAL || rc == DJ_ENOSPC)
		rc = DJ_EMALFORMED;
	if (rc == DJ_EOK && (alen != len || memcmp(again, buf, len) != 0))
		rc = DJ_EMALFORMED;
out:
	if (rc != DJ_EOK)
		out->n = 0;
	free(again);
	if (m != NULL)
		danejoin__ownership__chain__free_unpacked(m, NULL);
	return rc;
}

/* may_follow - whether \p next may come after \p prev in a chain whose first link is \p first
 * (both NULL: \p next would be the first link) */
static bool may_follow(const struct dv_link *first, const struct dv_link *prev,
		       const struct dv_link *next, char *why, size_t whylen)
{
	if (!link_fields_ok(next)) {
		dj_errbuf(why, whylen, "a field is out of range");
		return false;
	}
	if (prev == NULL) {
		if (next->auth != DV_AUTH_MANUFACTURER || next->serial != 1 ||
		    strcmp(next->signer_zone, next->from_zone) != 0) {
			dj_errbuf(why, whylen, "the first link must be serial 1, signed by the "
				  "manufacturer (from_zone)");
			return false;
		}
		return true;
	}
	if (memcmp(next->dev_eui, first->dev_eui, LW_EUI_LEN) != 0 ||
	    memcmp(next->join_eui, first->join_eui, LW_EUI_LEN) != 0) {
		dj_errbuf(why, whylen, "the link names another DevEUI or JoinEUI");
		return false;
	}
	if (next->serial != prev->serial + 1) {
		dj_errbuf(why, whylen, "serial %llu does not follow %llu",
			  (unsigned long long)next->serial, (unsigned long long)prev->serial);
		return false;
	}
	if (strcmp(next->from_zone, prev->to_zone) != 0) {
		dj_errbuf(why, whylen, "from_zone %s is not the current owner %s", next->from_zone,
			  prev->to_zone);
		return false;
	}
	if (next->not_before < prev->not_before) {
		dj_errbuf(why, whylen, "not_before is earlier than the previous link's");
		return false;
	}
	switch (next->auth) {
	case DV_AUTH_SIGNED:
		if (strcmp(next->signer_zone, next->from_zone) == 0)
			return true;
		dj_errbuf(why, whylen, "a signed transfer must be signed by %s", next->from_zone);
		return false;
	case DV_AUTH_CODE:
		if (strcmp(next->signer_zone, first->from_zone) == 0)
			return true;
		dj_errbuf(why, whylen, "an auth-code transfer must be signed by the registry %s",
			  first->from_zone);
		return false;
	default:
		dj_errbuf(why, whylen, "only the first link is a manufacturer's");
		return false;
	}
}

bool dv_chain_may_append(const struct dv_chain *c, const struct dv_link *next, char *why,
			 size_t whylen)
{
	if (c->n == 0)
		return may_follow(NULL, NULL, next, why, whylen);
	return may_follow(&c->links[0], &c->links[c->n - 1], next, why, whylen);
}

int dv_chain_append(struct dv_chain *c, const struct dv_link *l, char *why, size_t whylen)
{
	if (c->n >= DV_CHAIN_MAX) {
		dj_errbuf(why, whylen, "the chain has %d links already", DV_CHAIN_MAX);
		return DJ_ENOSPC;
	}
	if (!dv_chain_may_append(c, l, why, whylen))
		return DJ_EINVAL;
	c->links[c->n++] = *l;
	return DJ_EOK;
}

/* verdict - fill \p v and return DJ_EOK */
static int DJ_PRINTF(4, 5) verdict(struct dv_chain_verdict *v, enum dv_chain_status st, int link,
				   const char *fmt, ...)
{
	va_list ap;

	v->status = st;
	v->link = link;
	va_start(ap, fmt);
	vsnprintf(v->why, sizeof(v->why), fmt, ap);
	va_end(ap);
	return DJ_EOK;
}

/* link_signature - the verdict on link \p i (\p l) given what the key callback said of its
 * signer (\p kst, and \p key when DV_KEY_OK) */
static int link_signature(const struct dv_link *l, size_t i, enum dv_key_status kst,
			  EVP_PKEY *key, struct dv_chain_verdict *v)
{
	int rc;

	switch (kst) {
	case DV_KEY_OK:
		break;
	case DV_KEY_ABSENT:
		return verdict(v, DV_CHAIN_NOKEY, (int)i, "link %zu: no _owner key for %s", i + 1,
			       l->signer_zone);
	case DV_KEY_INSECURE:
		return verdict(v, DV_CHAIN_NOKEY, (int)i, "link %zu: the _owner key of %s is not "
			       "DNSSEC-secure", i + 1, l->signer_zone);
	default:
		return verdict(v, DV_CHAIN_TEMPFAIL, (int)i, "link %zu: the _owner key of %s "
			       "cannot be looked up now", i + 1, l->signer_zone);
	}
	rc = dv_link_verify(l, key);
	if (rc == DJ_EACCES)
		return verdict(v, DV_CHAIN_BADSIG, (int)i, "link %zu: the signature does not "
			       "verify under the _owner key of %s", i + 1, l->signer_zone);
	return rc;
}

/* link_structure - whether link \p i of \p c is signed and follows the links before it */
static bool link_structure(const struct dv_chain *c, size_t i, struct dv_chain_verdict *v)
{
	char why[200];

	if (c->links[i].sig_len == 0) {
		verdict(v, DV_CHAIN_MALFORMED, (int)i, "link %zu is not signed", i + 1);
		return false;
	}
	if (!may_follow(i > 0 ? &c->links[0] : NULL, i > 0 ? &c->links[i - 1] : NULL,
			&c->links[i], why, sizeof(why))) {
		verdict(v, DV_CHAIN_BROKEN, (int)i, "link %zu: %s", i + 1, why);
		return false;
	}
	return true;
}

int dv_chain_verify(const struct dv_chain *c, dv_key_fn key_fn, void *arg,
		    struct dv_chain_verdict *v)
{
	EVP_PKEY *keys[DV_CHAIN_MAX] = { NULL };
	enum dv_key_status kst[DV_CHAIN_MAX];
	const char *zones[DV_CHAIN_MAX];
	size_t i, j, nk = 0;
	int rc = DJ_EOK;

	verdict(v, DV_CHAIN_OK, -1, "ok");
	if (c->n == 0 || c->n > DV_CHAIN_MAX)
		return verdict(v, DV_CHAIN_MALFORMED, -1, "a chain has 1 to %d links",
			       DV_CHAIN_MAX);
	/* structure first: nothing is looked up for a chain that cannot be valid */
	for (i = 0; i < c->n; i++)
		if (!link_structure(c, i, v))
			return DJ_EOK;
	for (i = 0; i < c->n; i++) {
		const struct dv_link *l = &c->links[i];

		for (j = 0; j < nk && strcmp(zones[j], l->signer_zone) != 0; j++)
			;
		if (j == nk) {
			keys[nk] = NULL;
			kst[nk] = key_fn(l->signer_zone, arg, &keys[nk]);
			zones[nk++] = l->signer_zone;
		}
		rc = link_signature(l, i, kst[j], keys[j], v);
		if (rc != DJ_EOK || v->status != DV_CHAIN_OK)
			break;
	}
	for (j = 0; j < nk; j++)
		EVP_PKEY_free(keys[j]);
	return rc;
}

int dv_chain_verify_link(const struct dv_chain *c, size_t i, dv_key_fn key_fn, void *arg,
			 struct dv_chain_verdict *v)
{
	EVP_PKEY *key = NULL;
	enum dv_key_status kst;
	int rc;

	verdict(v, DV_CHAIN_OK, (int)i, "ok");
	if (i >= c->n || c->n > DV_CHAIN_MAX)
		return verdict(v, DV_CHAIN_MALFORMED, -1, "no link %zu in a chain of %zu", i + 1,
			       c->n);
	if (!link_structure(c, i, v) || key_fn == NULL)
		return DJ_EOK;
	kst = key_fn(c->links[i].signer_zone, arg, &key);
	rc = link_signature(&c->links[i], i, kst, key, v);
	EVP_PKEY_free(key);
	return rc;
}

const char *dv_chain_status_name(enum dv_chain_status s)
{
	switch (s) {
	case DV_CHAIN_OK:
		return "ok";
	case DV_CHAIN_MALFORMED:
		return "malformed";
	case DV_CHAIN_BROKEN:
		return "broken";
	case DV_CHAIN_BADSIG:
		return "bad signature";
	case DV_CHAIN_NOKEY:
		return "no key";
	case DV_CHAIN_TEMPFAIL:
		return "temporary failure";
	}
	return "unknown";
}

int dv_b64_encode(const uint8_t *in, size_t len, char **out)
{
	char *buf;
	size_t cap = 4 * ((len + 2) / 3) + 1;

	*out = NULL;
	if (len > (size_t)INT32_MAX / 2)
		return DJ_EINVAL;
	buf = malloc(cap);
	if (buf == NULL)
		return DJ_ENOMEM;
	EVP_EncodeBlock((unsigned char *)buf, in, (int)len);
	*out = buf;
	return DJ_EOK;
}

int dv_b64_decode(const char *in, size_t len, uint8_t **out, size_t *outlen)
{
	uint8_t *buf;
	int n;
	size_t pad = 0;

	*out = NULL;
	if (len == 0 || len % 4 != 0 || len > (size_t)INT32_MAX / 2)
		return DJ_EMALFORMED;
	buf = malloc(len / 4 * 3 + 1);
	if (buf == NULL)
		return DJ_ENOMEM;
	n = EVP_DecodeBlock(buf, (const unsigned char *)in, (int)len);
	if (n < 0) {
		free(buf);
		return DJ_EMALFORMED;
	}
	/* EVP_DecodeBlock counts the padding as data */
	if (in[len - 1] == '=')
		pad++;
	if (in[len - 2] == '=')
		pad++;
	*out = buf;
	*outlen = (size_t)n - pad;
	return DJ_EOK;
}

int dv_key_read(const char *path, EVP_PKEY **out)
{
	struct stat st;
	FILE *f = NULL;
	EVP_PKEY *k = NULL;
	int rc;

	*out = NULL;
	if (stat(path, &st) != 0)
		return DJ_ENOENT;
	if (!S_ISREG(st.st_mode) || (st.st_mode & 077) != 0)
		return DJ_EFILEMODE;
	f = fopen(path, "r");
	if (f == NULL)
		return DJ_ENOENT;
	k = PEM_read_PrivateKey(f, NULL, NULL, NULL);
	fclose(f);
	ERR_clear_error();
	rc = DJ_EMALFORMED;
	if (k == NULL || !dv_key_usable(k))
		goto out;
	*out = k;
	k = NULL;
	rc = DJ_EOK;
out:
	EVP_PKEY_free(k);
	return rc;
}

int dv_key_spki(EVP_PKEY *key, uint8_t **out, size_t *len)
{
	unsigned char *der = NULL;
	uint8_t *copy;
	int n;

	*out = NULL;
	n = i2d_PUBKEY(key, &der);
	if (n <= 0)
		return DJ_ECRYPTO;
	copy = malloc((size_t)n);
	if (copy != NULL)
		memcpy(copy, der, (size_t)n);
	OPENSSL_free(der);
	if (copy == NULL)
		return DJ_ENOMEM;
	*out = copy;
	*len = (size_t)n;
	return DJ_EOK;
}

int dv_key_from_spki(const uint8_t *der, size_t len, EVP_PKEY **out)
{
	const unsigned char *p = der;
	EVP_PKEY *k;

	*out = NULL;
	if (len == 0 || len > LINK_TMP_MAX)
		return DJ_EMALFORMED;
	k = d2i_PUBKEY(NULL, &p, (long)len);
	ERR_clear_error();
	if (k == NULL || p != der + len || !dv_key_usable(k)) {
		EVP_PKEY_free(k);
		return DJ_EMALFORMED;
	}
	*out = k;
	return DJ_EOK;
}
