/*
 * lw_frame.h - LoRaWAN OTAA frames: Join-request, Rejoin-request (types 0, 1, 2) and Join-accept.
 *
 * DESCRIPTION
 *	Parsing works on explicit lengths with bounds checks; nothing is cast to a struct. Multi-byte
 *	fields travel little-endian on the air (TS001-1.1 §4); the structs below keep EUIs, NetIDs and
 *	DevAddrs as byte arrays in *printed* order (most significant byte first) and nonces as
 *	integers, and only this module converts between the two.
 *
 *	A malformed frame is a verdict about input, not a fault: the parse functions return an
 *	enum lw_frame_status that names what was wrong.
 */
#ifndef DJ_JOINSERVER_LW_FRAME_H
#define DJ_JOINSERVER_LW_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/dj_compiler.h"
#include "lorawan/lw_crypto.h"

#define LW_EUI_LEN 8
#define LW_NETID_LEN 3
#define LW_DEVADDR_LEN 4
#define LW_CFLIST_LEN 16		/* TS001-1.1 §6.2.4.5 */
#define LW_JOINREQ_LEN 23		/* MHDR+JoinEUI+DevEUI+DevNonce+MIC, TS001-1.1 §6.2.4 */
#define LW_REJOIN02_LEN 19		/* MHDR+type+NetID+DevEUI+RJcount0+MIC, §6.2.4.4 */
#define LW_REJOIN1_LEN 24		/* MHDR+type+JoinEUI+DevEUI+RJcount1+MIC, §6.2.4.4 */
#define LW_JOINACC_LEN 17		/* MHDR+JoinNonce+NetID+DevAddr+DL+RxDelay+MIC, §6.2.5 */
#define LW_JOINACC_CF_LEN 33		/* the same with a CFList */
#define LW_PHY_MAX 33			/* the longest frame of this module */
#define LW_JOINNONCE_MAX 0xffffffu	/* 24-bit counter, §6.2.5 */
#define LW_DL_OPTNEG 0x80		/* DLSettings bit 7, §6.2.5.2 */
#define LW_JOINREQTYPE_JOIN 0xff	/* JoinReqType of the 1.1 Join-accept MIC, §6.2.5.4 */

/* MType, the top three bits of MHDR (TS001-1.1 §4.2.1). */
enum lw_mtype {
	LW_MTYPE_JOIN_REQUEST = 0,
	LW_MTYPE_JOIN_ACCEPT = 1,
	LW_MTYPE_REJOIN_REQUEST = 6,
};

/* The LoRaWAN L2 versions the join engine speaks. The order is meaningful. */
enum lw_version {
	LW_V1_0_0 = 0,
	LW_V1_0_1,
	LW_V1_0_2,
	LW_V1_0_3,
	LW_V1_0_4,
	LW_V1_1,
};

/* Which OTAA request a frame is. */
enum lw_req_type {
	LW_REQ_JOIN = 0,
	LW_REQ_REJOIN0,
	LW_REQ_REJOIN1,
	LW_REQ_REJOIN2,
};

enum lw_frame_status {
	LW_FRAME_OK = 0,
	LW_FRAME_EMPTY,		/* no bytes at all */
	LW_FRAME_BAD_LENGTH,	/* the length does not fit the message type */
	LW_FRAME_BAD_MTYPE,	/* not a Join-request or Rejoin-request (or Join-accept) */
	LW_FRAME_BAD_MAJOR,	/* Major is not LoRaWAN R1 */
	LW_FRAME_BAD_REJOIN_TYPE,	/* RejoinType not 0, 1 or 2 */
	LW_FRAME_BAD_CFLIST,	/* CFListType not 0 or 1 */
};

/* A parsed Join-request or Rejoin-request. */
struct lw_request {
	enum lw_req_type type;
	uint8_t join_eui[LW_EUI_LEN];	/* Join-request and Rejoin type 1 */
	uint8_t dev_eui[LW_EUI_LEN];
	uint8_t net_id[LW_NETID_LEN];	/* Rejoin types 0 and 2 */
	uint16_t nonce;			/* DevNonce, RJcount0 or RJcount1 */
	uint8_t mic[LW_MIC_LEN];
	uint8_t phy[LW_REJOIN1_LEN];	/* the frame as received */
	uint8_t phy_len;
};

/* The fields of a Join-accept. CFList is kept in on-air order. */
struct lw_accept {
	uint32_t join_nonce;
	uint8_t net_id[LW_NETID_LEN];
	uint8_t dev_addr[LW_DEVADDR_LEN];
	uint8_t dl_settings;
	uint8_t rx_delay;
	bool has_cflist;
	uint8_t cflist[LW_CFLIST_LEN];
};

/* What the LoRaWAN 1.1 Join-accept MIC covers besides the frame (TS001-1.1 §6.2.5.4). */
struct lw_accept_ctx {
	uint8_t join_req_type;		/* LW_JOINREQTYPE_JOIN, or the RejoinType */
	uint8_t join_eui[LW_EUI_LEN];
	uint16_t nonce;			/* DevNonce, RJcount0 or RJcount1 */
};

/*! \brief Text naming a frame status. */
const char *lw_frame_strerror(enum lw_frame_status st);

/*!
 * \brief Parse a version as network servers spell it: "1.0", "1.0.0" … "1.0.4", "1.1", "1.1.0".
 * \retval DJ_EOK, DJ_EMALFORMED
 */
int lw_version_parse(const char *text, enum lw_version *out) DJ_MUSTCHECK;

/*! \brief Canonical text: "1.0.0" … "1.0.4", "1.1". */
const char *lw_version_str(enum lw_version v);

/*! \brief Whether DevNonce is a strictly increasing counter (1.0.4 and 1.1) rather than random. */
bool lw_version_devnonce_is_counter(enum lw_version v);

/*! \brief Parse a Join-request or a Rejoin-request of type 0, 1 or 2. */
enum lw_frame_status lw_frame_parse_request(const uint8_t *phy, size_t len,
					    struct lw_request *out) DJ_MUSTCHECK;

/*!
 * \brief Compute the 4-byte MIC of a request under \p key: NwkKey (1.1) or AppKey (1.0) for a
 *        Join-request, SNwkSIntKey for Rejoin types 0 and 2, JSIntKey for type 1.
 */
int lw_frame_request_mic(struct lw_crypto *cx, const struct lw_key *key,
			 const struct lw_request *req, uint8_t mic[LW_MIC_LEN]) DJ_MUSTCHECK;

/*!
 * \brief Build a request frame (device side) from \p req's fields; writes phy, phy_len and mic.
 */
int lw_frame_build_request(struct lw_crypto *cx, const struct lw_key *mic_key,
			   struct lw_request *req) DJ_MUSTCHECK;

/*!
 * \brief Compute the Join-accept MIC: LoRaWAN 1.0 form when \p ctx is NULL (key: AppKey/NwkKey),
 *        1.1 form otherwise (key: JSIntKey).
 */
int lw_frame_accept_mic(struct lw_crypto *cx, const struct lw_key *key, const struct lw_accept *ja,
			const struct lw_accept_ctx *ctx, uint8_t mic[LW_MIC_LEN]) DJ_MUSTCHECK;

/*!
 * \brief Build the encrypted Join-accept PHYPayload.
 * \param mic_key  AppKey/NwkKey (1.0 form, \p ctx NULL) or JSIntKey (1.1 form).
 * \param enc_key  NwkKey for a Join-request (AppKey for 1.0), JSEncKey for a Rejoin-request.
 * \param out      room for LW_JOINACC_CF_LEN bytes; \p out_len receives the length.
 */
int lw_frame_build_accept(struct lw_crypto *cx, const struct lw_accept *ja,
			  const struct lw_key *mic_key, const struct lw_accept_ctx *ctx,
			  const struct lw_key *enc_key, uint8_t *out, size_t *out_len) DJ_MUSTCHECK;

/*!
 * \brief Device side: decrypt a Join-accept PHYPayload with \p enc_key and parse it. The MIC is
 *        returned in \p mic for the caller to check with lw_frame_accept_mic() once it knows
 *        which form applies (OptNeg).
 * \retval DJ_EOK, DJ_EMALFORMED (\p st says why), DJ_ECRYPTO
 */
int lw_frame_open_accept(struct lw_crypto *cx, const struct lw_key *enc_key, const uint8_t *phy,
			 size_t len, struct lw_accept *ja, uint8_t mic[LW_MIC_LEN],
			 enum lw_frame_status *st) DJ_MUSTCHECK;

/*! \brief Little-endian/printed-order helpers for EUIs and NetIDs. */
void lw_reverse(const uint8_t *in, uint8_t *out, size_t len);

#endif /* DJ_JOINSERVER_LW_FRAME_H */
