/*
 * lw_frame.c - parse and build the OTAA frames of TS001-1.0.x and TS001-1.1.
 *
 * Every field is read at an explicit offset after the total length was checked against the
 * message type, so no input can make a read run past the buffer. The Join-accept is "encrypted"
 * with AES decrypt so that the device only needs AES encrypt (TS001-1.1 §6.2.5).
 */
#include <string.h>

#include <openssl/crypto.h>

#include "common/dj_err.h"
#include "lorawan/lw_frame.h"

#define MHDR_JOIN_REQUEST 0x00	/* MType 000, Major 00 */
#define MHDR_JOIN_ACCEPT 0x20	/* MType 001, Major 00 */
#define MHDR_REJOIN 0xc0	/* MType 110, Major 00 */
#define MHDR_MAJOR_MASK 0x03
#define MHDR_MAJOR_R1 0x00
#define CFLIST_TYPE_MAX 1	/* 0: frequencies, 1: channel mask; TS002-1.0 RP002 §2 */

const char *lw_frame_strerror(enum lw_frame_status st)
{
	switch (st) {
	case LW_FRAME_OK: return "ok";
	case LW_FRAME_EMPTY: return "empty PHYPayload";
	case LW_FRAME_BAD_LENGTH: return "PHYPayload length does not fit its message type";
	case LW_FRAME_BAD_MTYPE: return "MType is not a Join-request or Rejoin-request";
	case LW_FRAME_BAD_MAJOR: return "Major version is not LoRaWAN R1";
	case LW_FRAME_BAD_REJOIN_TYPE: return "RejoinType is not 0, 1 or 2";
	case LW_FRAME_BAD_CFLIST: return "CFListType is not 0 or 1";
	}
	return "unknown frame status";
}

int lw_version_parse(const char *text, enum lw_version *out)
{
	static const struct {
		const char *name;
		enum lw_version v;
	} names[] = {
		{ "1.0", LW_V1_0_0 },   { "1.0.0", LW_V1_0_0 }, { "1.0.1", LW_V1_0_1 },
		{ "1.0.2", LW_V1_0_2 }, { "1.0.3", LW_V1_0_3 }, { "1.0.4", LW_V1_0_4 },
		{ "1.1", LW_V1_1 },     { "1.1.0", LW_V1_1 },
	};

	if (text == NULL)
		return DJ_EMALFORMED;
	for (size_t i = 0; i < DJ_ARRAY_LEN(names); i++) {
		if (strcmp(text, names[i].name) == 0) {
			*out = names[i].v;
			return DJ_EOK;
		}
	}
	return DJ_EMALFORMED;
}

const char *lw_version_str(enum lw_version v)
{
	static const char *const s[] = { "1.0.0", "1.0.1", "1.0.2", "1.0.3", "1.0.4", "1.1" };

	return (unsigned)v < DJ_ARRAY_LEN(s) ? s[v] : "?";
}

bool lw_version_devnonce_is_counter(enum lw_version v)
{
	return v >= LW_V1_0_4;
}

void lw_reverse(const uint8_t *in, uint8_t *out, size_t len)
{
	for (size_t i = 0; i < len; i++)
		out[i] = in[len - 1 - i];
}

/* le16 - read a little-endian 16-bit field */
static uint16_t le16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

/* put_le - write the low len bytes of v little-endian */
static void put_le(uint32_t v, uint8_t *p, size_t len)
{
	for (size_t i = 0; i < len; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

enum lw_frame_status lw_frame_parse_request(const uint8_t *phy, size_t len, struct lw_request *out)
{
	struct lw_request r;
	size_t want;

	if (len == 0)
		return LW_FRAME_EMPTY;
	if ((phy[0] & MHDR_MAJOR_MASK) != MHDR_MAJOR_R1)
		return LW_FRAME_BAD_MAJOR;
	memset(&r, 0, sizeof(r));
	switch (phy[0] >> 5) {
	case LW_MTYPE_JOIN_REQUEST:
		if (len != LW_JOINREQ_LEN)
			return LW_FRAME_BAD_LENGTH;
		r.type = LW_REQ_JOIN;
		lw_reverse(phy + 1, r.join_eui, LW_EUI_LEN);
		lw_reverse(phy + 9, r.dev_eui, LW_EUI_LEN);
		r.nonce = le16(phy + 17);
		break;
	case LW_MTYPE_REJOIN_REQUEST:
		if (len < 2)
			return LW_FRAME_BAD_LENGTH;
		switch (phy[1]) {
		case 0:
		case 2:
			want = LW_REJOIN02_LEN;
			r.type = phy[1] == 0 ? LW_REQ_REJOIN0 : LW_REQ_REJOIN2;
			break;
		case 1:
			want = LW_REJOIN1_LEN;
			r.type = LW_REQ_REJOIN1;
			break;
		default:
			return LW_FRAME_BAD_REJOIN_TYPE;
		}
		if (len != want)
			return LW_FRAME_BAD_LENGTH;
		if (r.type == LW_REQ_REJOIN1) {
			lw_reverse(phy + 2, r.join_eui, LW_EUI_LEN);
			lw_reverse(phy + 10, r.dev_eui, LW_EUI_LEN);
			r.nonce = le16(phy + 18);
		} else {
			lw_reverse(phy + 2, r.net_id, LW_NETID_LEN);
			lw_reverse(phy + 5, r.dev_eui, LW_EUI_LEN);
			r.nonce = le16(phy + 13);
		}
		break;
	default:
		return LW_FRAME_BAD_MTYPE;
	}
	memcpy(r.mic, phy + len - LW_MIC_LEN, LW_MIC_LEN);
	memcpy(r.phy, phy, len);
	r.phy_len = (uint8_t)len;
	*out = r;
	return LW_FRAME_OK;
}

int lw_frame_request_mic(struct lw_crypto *cx, const struct lw_key *key,
			 const struct lw_request *req, uint8_t mic[LW_MIC_LEN])
{
	uint8_t tag[LW_BLOCK_LEN];
	int ret;

	if (req->phy_len < LW_MIC_LEN + 1 || req->phy_len > sizeof(req->phy))
		return DJ_EINVAL;
	ret = lw_crypto_cmac(cx, key, req->phy, req->phy_len - LW_MIC_LEN, tag);
	if (ret == DJ_EOK)
		memcpy(mic, tag, LW_MIC_LEN);
	return ret;
}

int lw_frame_build_request(struct lw_crypto *cx, const struct lw_key *mic_key,
			   struct lw_request *req)
{
	uint8_t *p = req->phy;
	size_t len;
	int ret;

	switch (req->type) {
	case LW_REQ_JOIN:
		p[0] = MHDR_JOIN_REQUEST;
		lw_reverse(req->join_eui, p + 1, LW_EUI_LEN);
		lw_reverse(req->dev_eui, p + 9, LW_EUI_LEN);
		put_le(req->nonce, p + 17, 2);
		len = LW_JOINREQ_LEN;
		break;
	case LW_REQ_REJOIN1:
		p[0] = MHDR_REJOIN;
		p[1] = 1;
		lw_reverse(req->join_eui, p + 2, LW_EUI_LEN);
		lw_reverse(req->dev_eui, p + 10, LW_EUI_LEN);
		put_le(req->nonce, p + 18, 2);
		len = LW_REJOIN1_LEN;
		break;
	case LW_REQ_REJOIN0:
	case LW_REQ_REJOIN2:
		p[0] = MHDR_REJOIN;
		p[1] = req->type == LW_REQ_REJOIN0 ? 0 : 2;
		lw_reverse(req->net_id, p + 2, LW_NETID_LEN);
		lw_reverse(req->dev_eui, p + 5, LW_EUI_LEN);
		put_le(req->nonce, p + 13, 2);
		len = LW_REJOIN02_LEN;
		break;
	default:
		return DJ_EINVAL;
	}
	req->phy_len = (uint8_t)len;
	ret = lw_frame_request_mic(cx, mic_key, req, req->mic);
	if (ret == DJ_EOK)
		memcpy(p + len - LW_MIC_LEN, req->mic, LW_MIC_LEN);
	return ret;
}

/* accept_body - serialize MHDR|JoinNonce|NetID|DevAddr|DLSettings|RxDelay|CFList; returns length */
static size_t accept_body(const struct lw_accept *ja, uint8_t *p)
{
	p[0] = MHDR_JOIN_ACCEPT;
	put_le(ja->join_nonce, p + 1, 3);
	lw_reverse(ja->net_id, p + 4, LW_NETID_LEN);
	lw_reverse(ja->dev_addr, p + 7, LW_DEVADDR_LEN);
	p[11] = ja->dl_settings;
	p[12] = ja->rx_delay;
	if (!ja->has_cflist)
		return LW_JOINACC_LEN - LW_MIC_LEN;
	memcpy(p + 13, ja->cflist, LW_CFLIST_LEN);
	return LW_JOINACC_CF_LEN - LW_MIC_LEN;
}

int lw_frame_accept_mic(struct lw_crypto *cx, const struct lw_key *key, const struct lw_accept *ja,
			const struct lw_accept_ctx *ctx, uint8_t mic[LW_MIC_LEN])
{
	uint8_t buf[1 + LW_EUI_LEN + 2 + LW_JOINACC_CF_LEN], tag[LW_BLOCK_LEN];
	size_t off = 0;
	int ret;

	if (ctx != NULL) {
		buf[0] = ctx->join_req_type;
		lw_reverse(ctx->join_eui, buf + 1, LW_EUI_LEN);
		put_le(ctx->nonce, buf + 1 + LW_EUI_LEN, 2);
		off = 1 + LW_EUI_LEN + 2;
	}
	off += accept_body(ja, buf + off);
	ret = lw_crypto_cmac(cx, key, buf, off, tag);
	if (ret == DJ_EOK)
		memcpy(mic, tag, LW_MIC_LEN);
	OPENSSL_cleanse(tag, sizeof(tag));
	return ret;
}

int lw_frame_build_accept(struct lw_crypto *cx, const struct lw_accept *ja,
			  const struct lw_key *mic_key, const struct lw_accept_ctx *ctx,
			  const struct lw_key *enc_key, uint8_t *out, size_t *out_len)
{
	uint8_t buf[LW_JOINACC_CF_LEN];
	size_t len;
	int ret;

	if (ja->join_nonce > LW_JOINNONCE_MAX)
		return DJ_EINVAL;
	len = accept_body(ja, buf) + LW_MIC_LEN;
	ret = lw_frame_accept_mic(cx, mic_key, ja, ctx, buf + len - LW_MIC_LEN);
	if (ret != DJ_EOK)
		return ret;
	ret = lw_crypto_ecb(cx, enc_key, 0, buf + 1, buf + 1, len - 1);
	if (ret != DJ_EOK)
		return ret;
	memcpy(out, buf, len);
	*out_len = len;
	return DJ_EOK;
}

int lw_frame_open_accept(struct lw_crypto *cx, const struct lw_key *enc_key, const uint8_t *phy,
			 size_t len, struct lw_accept *ja, uint8_t mic[LW_MIC_LEN],
			 enum lw_frame_status *st)
{
	uint8_t buf[LW_JOINACC_CF_LEN];
	struct lw_accept a;
	int ret;

	*st = LW_FRAME_OK;
	if (len == 0)
		*st = LW_FRAME_EMPTY;
	else if (len != LW_JOINACC_LEN && len != LW_JOINACC_CF_LEN)
		*st = LW_FRAME_BAD_LENGTH;
	else if ((phy[0] & MHDR_MAJOR_MASK) != MHDR_MAJOR_R1)
		*st = LW_FRAME_BAD_MAJOR;
	else if (phy[0] >> 5 != LW_MTYPE_JOIN_ACCEPT)
		*st = LW_FRAME_BAD_MTYPE;
	if (*st != LW_FRAME_OK)
		return DJ_EMALFORMED;
	buf[0] = phy[0];
	ret = lw_crypto_ecb(cx, enc_key, 1, phy + 1, buf + 1, len - 1);
	if (ret != DJ_EOK)
		return ret;
	memset(&a, 0, sizeof(a));
	a.join_nonce = (uint32_t)buf[1] | (uint32_t)buf[2] << 8 | (uint32_t)buf[3] << 16;
	lw_reverse(buf + 4, a.net_id, LW_NETID_LEN);
	lw_reverse(buf + 7, a.dev_addr, LW_DEVADDR_LEN);
	a.dl_settings = buf[11];
	a.rx_delay = buf[12];
	if (len == LW_JOINACC_CF_LEN) {
		a.has_cflist = true;
		memcpy(a.cflist, buf + 13, LW_CFLIST_LEN);
		if (a.cflist[LW_CFLIST_LEN - 1] > CFLIST_TYPE_MAX) {
			*st = LW_FRAME_BAD_CFLIST;
			return DJ_EMALFORMED;
		}
	}
	memcpy(mic, buf + len - LW_MIC_LEN, LW_MIC_LEN);
	*ja = a;
	return DJ_EOK;
}
