/*
 * bi_msg.h - LoRaWAN Backend Interfaces (TS002-1.0 and 1.1) messages and their JSON form.
 *
 * DESCRIPTION
 *	One struct bi_msg holds any of the messages the join server speaks: JoinReq/JoinAns,
 *	RejoinReq/RejoinAns, AppSKeyReq/AppSKeyAns, HomeNSReq/HomeNSAns. bi_msg_parse() validates a
 *	JSON body field by field (types, hex lengths, which fields the message type and the
 *	ProtocolVersion require) and names the first field that is wrong; bi_msg_encode() writes one.
 *
 *	Interop (vectors.md): MACVersion is accepted as "1.0", "1.0.0" … "1.0.4", "1.1", "1.1.0"; hex
 *	may carry "0x" and be in either case; the result code UnknownReceiver is accepted with the
 *	TS002-1.0 misspelling "UnkownReceiver" too, and sent in the spelling of the message's
 *	ProtocolVersion (1.0: "UnkownReceiver", 1.1: "UnknownReceiver"). An unknown VSExtension is
 *	ignored; unknown top-level fields are ignored. A CFList of "" is no CFList (The Things
 *	Stack sends an empty CFList so).
 *
 *	ProtocolVersion rules: SenderNSID is present in a request from a network server if and only
 *	if the ProtocolVersion is 1.1 (TS002-1.1 §13).
 *
 *	Key material travels only in struct bi_key_envelope (see bi_kek.h); bi_msg_wipe() wipes it.
 */
#ifndef DJ_JOINSERVER_BI_MSG_H
#define DJ_JOINSERVER_BI_MSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/dj_compiler.h"
#include "lorawan/lw_frame.h"

#define BI_ID_MAX 64		/* SenderID, ReceiverID, NSIDs: text */
#define BI_TOKEN_MAX 64		/* SenderToken, ReceiverToken: bytes */
#define BI_DESC_MAX 256		/* Result.Description */
#define BI_KEK_LABEL_MAX 64
#define BI_AESKEY_MAX 40	/* a wrapped 256-bit key; a 128-bit key wraps to 24 bytes */
#define BI_SESSION_KEY_ID_MAX 32
#define BI_ERR_MAX 256		/* room for any message bi_msg_parse() writes */

enum bi_proto {
	BI_PROTO_1_0 = 0,	/* "1.0" */
	BI_PROTO_1_1,		/* "1.1" */
};

enum bi_msg_type {
	BI_JOIN_REQ = 0,
	BI_JOIN_ANS,
	BI_REJOIN_REQ,
	BI_REJOIN_ANS,
	BI_APPSKEY_REQ,
	BI_APPSKEY_ANS,
	BI_HOMENS_REQ,
	BI_HOMENS_ANS,
};

/* Result codes, TS002-1.0 §18 / TS002-1.1 Table 24. */
enum bi_result {
	BI_SUCCESS = 0,
	BI_MIC_FAILED,
	BI_JOIN_REQ_FAILED,
	BI_NO_ROAMING_AGREEMENT,
	BI_DEV_ROAMING_DISALLOWED,
	BI_ROAMING_ACT_DISALLOWED,
	BI_ACTIVATION_DISALLOWED,
	BI_UNKNOWN_DEVEUI,
	BI_UNKNOWN_DEVADDR,
	BI_UNKNOWN_SENDER,
	BI_UNKNOWN_RECEIVER,
	BI_DEFERRED,
	BI_XMIT_FAILED,
	BI_INVALID_FCNTUP,
	BI_INVALID_PROTOCOL_VERSION,
	BI_STALE_DEVICE_PROFILE,
	BI_MALFORMED_REQUEST,
	BI_FRAME_SIZE_ERROR,
	BI_OTHER,
	BI_RESULT_COUNT
};

/* KeyEnvelope: KEKLabel empty means AESKey is the plain key (only for peers whose policy says
 * so); otherwise AESKey is the RFC 3394 wrap of the key under the KEK named by the label. */
struct bi_key_envelope {
	/* the key first: 8-byte aligned, so that OPENSSL_cleanse wipes it word by word */
	uint8_t aes_key[BI_AESKEY_MAX];
	size_t aes_key_len;
	bool present;
	char kek_label[BI_KEK_LABEL_MAX];
};

struct bi_msg {
	/* header, every message */
	enum bi_proto proto;
	enum bi_msg_type type;
	char sender_id[BI_ID_MAX];
	char receiver_id[BI_ID_MAX];
	uint32_t transaction_id;
	bool has_sender_token, has_receiver_token;
	uint8_t sender_token[BI_TOKEN_MAX];
	size_t sender_token_len;
	uint8_t receiver_token[BI_TOKEN_MAX];
	size_t receiver_token_len;
	bool has_sender_ns_id, has_receiver_ns_id;	/* 1.1 */
	char sender_ns_id[BI_ID_MAX];
	char receiver_ns_id[BI_ID_MAX];

	/* JoinReq, RejoinReq */
	enum lw_version mac_version;
	uint8_t phy[LW_PHY_MAX];	/* PHYPayload; also in JoinAns/RejoinAns */
	size_t phy_len;
	bool has_dev_eui;		/* JoinReq, RejoinReq, AppSKeyReq/Ans, HomeNSReq */
	uint8_t dev_eui[LW_EUI_LEN];
	uint8_t dev_addr[LW_DEVADDR_LEN];
	uint8_t dl_settings;
	uint8_t rx_delay;
	bool has_cflist;
	uint8_t cflist[LW_CFLIST_LEN];

	/* answers */
	enum bi_result result;
	char description[BI_DESC_MAX];
	bool has_lifetime;
	uint32_t lifetime;		/* seconds */
	struct bi_key_envelope app_s_key;
	struct bi_key_envelope nwk_s_key;	/* 1.0 session */
	struct bi_key_envelope f_nwk_s_int_key;	/* 1.1 session */
	struct bi_key_envelope s_nwk_s_int_key;
	struct bi_key_envelope nwk_s_enc_key;
	size_t session_key_id_len;	/* 0: absent; also in AppSKeyReq */
	uint8_t session_key_id[BI_SESSION_KEY_ID_MAX];

	/* HomeNSAns */
	bool has_h_net_id;
	uint8_t h_net_id[LW_NETID_LEN];
	bool has_hns_id;		/* 1.1 */
	char hns_id[BI_ID_MAX];
};

/*!
 * \brief Parse and validate one message.
 * \param out  filled as far as it could be read even on failure (so that an answer can echo the
 *             TransactionID, SenderID and ProtocolVersion); out->result says which Result code
 *             the answer must carry on failure: BI_MALFORMED_REQUEST, BI_INVALID_PROTOCOL_VERSION
 *             or BI_FRAME_SIZE_ERROR (a PHYPayload of the wrong size).
 * \param err  receives "field NAME: what is wrong" on failure.
 * \retval DJ_EOK, DJ_EMALFORMED, DJ_ENOMEM
 */
int bi_msg_parse(const char *json, size_t len, struct bi_msg *out, char *err,
		 size_t errlen) DJ_MUSTCHECK;

/*!
 * \brief Encode a message as JSON (compact). \p out receives a NUL-terminated string; free()
 *        it after wiping (it may hold key envelopes): OPENSSL_clear_free(*out, *len) works.
 * \retval DJ_EOK, DJ_EINVAL (a field out of range), DJ_ENOMEM
 */
int bi_msg_encode(const struct bi_msg *m, char **out, size_t *len) DJ_MUSTCHECK;

/*! \brief Start an answer to \p req: header echoed (IDs swapped, tokens echoed as TS002
 *         requires: the request's SenderToken becomes the answer's ReceiverToken), type set. */
void bi_msg_answer_init(const struct bi_msg *req, enum bi_msg_type type, struct bi_msg *ans);

/*! \brief The Result code's text in the spelling of \p proto. */
const char *bi_result_str(enum bi_result r, enum bi_proto proto);

/*! \brief "JoinReq", "JoinAns", … */
const char *bi_msg_type_str(enum bi_msg_type t);

/*! \brief Wipe every key envelope (NULL is accepted). */
void bi_msg_wipe(struct bi_msg *m);

/*! \brief For tests: whether the member names the parser numbers fall in distinct hash slots. */
bool bi_msg__fids_ok(void);

/*!
 * \brief For tests: bytes the calling thread's last bi_msg_parse() or bi_msg_encode() took
 *        from its wiped arena (the arena's size when it overflowed to malloc).
 */
size_t bi_msg__arena_last(void);

/*! \brief For tests: the same for its tables (pointers and integers; reset, not wiped). */
size_t bi_msg__tabs_last(void);

/*!
 * \brief For tests: whether the calling thread's arenas (the wiped one or the tables) hold
 *        the \p n bytes at \p needle.
 */
bool bi_msg__arena_holds(const void *needle, size_t n);

#endif /* DJ_JOINSERVER_BI_MSG_H */
