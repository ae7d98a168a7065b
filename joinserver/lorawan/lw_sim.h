/*
 * lw_sim.h - an end device as TS001 describes it, for tests, benchmarks and the quick start.
 *
 * DESCRIPTION
 *	The simulator holds a device's root keys and the state a real device keeps in non-volatile
 *	memory: the DevNonce counter (1.0.4, 1.1) or the last LW_SIM_RAND_HIST random DevNonces,
 *	which it does not draw again (<= 1.0.3: the join server refuses a repeat), the last
 *	JoinNonce it accepted, RJcount0 and RJcount1. It builds Join-requests and Rejoin-requests,
 *	decrypts and checks Join-accepts exactly as the device must (MIC form chosen by OptNeg,
 *	JoinNonce strictly increasing for 1.0.4 and 1.1), and derives its session keys, so tests can
 *	compare them with the keys the join server handed out.
 *
 *	The simulator is the *device* side and so holds raw keys; it is not part of the join server.
 */
#ifndef DJ_DEVICES_LW_SIM_H
#define DJ_DEVICES_LW_SIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/dj_compiler.h"
#include "lorawan/lw_crypto.h"
#include "lorawan/lw_frame.h"
#include "lorawan/lw_keys.h"

enum lw_sim_status {
	LW_SIM_OK = 0,
	LW_SIM_NOT_EXPECTING,	/* no request is outstanding */
	LW_SIM_BAD_FRAME,	/* length, MType or CFList wrong */
	LW_SIM_BAD_MIC,
	LW_SIM_OLD_JOINNONCE,	/* JoinNonce not above the last accepted (1.0.4, 1.1) */
	LW_SIM_OPTNEG,		/* OptNeg set towards a 1.0.x device */
};

#define LW_SIM_RAND_HIST 64

struct lw_sim_device {
	uint8_t dev_eui[LW_EUI_LEN];
	uint8_t join_eui[LW_EUI_LEN];
	enum lw_version version;
	struct lw_key app_key;
	struct lw_key nwk_key;		/* equals app_key for 1.0.x */
	/* non-volatile state */
	uint32_t dev_nonce_next;	/* counter rule: the next DevNonce to use */
	uint16_t rand_used[LW_SIM_RAND_HIST]; /* random rule: the last DevNonces drawn, never */
	unsigned rand_n;		/* drawn again (a JS refuses a repeat as a replay) */
	int64_t join_nonce_last;	/* -1: none yet */
	uint16_t rjcount0;
	uint16_t rjcount1;
	/* the outstanding request */
	bool pending;
	enum lw_req_type pending_type;
	uint16_t pending_nonce;
	/* the session */
	bool joined;
	bool opt_neg;
	uint32_t join_nonce;
	uint8_t net_id[LW_NETID_LEN];
	uint8_t dev_addr[LW_DEVADDR_LEN];
	struct lw_session_keys keys;
	struct lw_key js_int_key;	/* 1.1 only */
	struct lw_key js_enc_key;
};

/*!
 * \brief Set a device up. \p nwk_key is NULL for 1.0.x. Raw keys are borrowed.
 * \retval DJ_EOK, DJ_EINVAL (1.1 without NwkKey), DJ_ECRYPTO
 */
int lw_sim_init(struct lw_crypto *cx, struct lw_sim_device *d, const uint8_t dev_eui[LW_EUI_LEN],
		const uint8_t join_eui[LW_EUI_LEN], enum lw_version version,
		const uint8_t app_key[LW_KEY_LEN], const uint8_t *nwk_key) DJ_MUSTCHECK;

/*!
 * \brief Build a Join-request with the next DevNonce (counter) or a random one (<= 1.0.3).
 * \param phy  room for LW_JOINREQ_LEN bytes.
 * \retval DJ_EOK, DJ_ERANGE (DevNonce counter exhausted), DJ_ECRYPTO
 */
int lw_sim_join_request(struct lw_crypto *cx, struct lw_sim_device *d, uint8_t *phy,
			size_t *len) DJ_MUSTCHECK;

/*!
 * \brief Build a Rejoin-request of \p type (LW_REQ_REJOIN0/1/2). Types 0 and 2 need a joined 1.1
 *        session (their MIC is under SNwkSIntKey); type 1 needs JSIntKey (any 1.1 device).
 * \param phy  room for LW_REJOIN1_LEN bytes.
 * \retval DJ_EOK, DJ_EINVAL (not a 1.1 device, or no session for 0/2), DJ_ECRYPTO
 */
int lw_sim_rejoin_request(struct lw_crypto *cx, struct lw_sim_device *d, enum lw_req_type type,
			  uint8_t *phy, size_t *len) DJ_MUSTCHECK;

/*!
 * \brief Handle a Join-accept for the outstanding request, as the device does.
 * \param st  receives the verdict; only LW_SIM_OK changes the device's state.
 * \retval DJ_EOK (see \p st), DJ_ECRYPTO
 */
int lw_sim_handle_accept(struct lw_crypto *cx, struct lw_sim_device *d, const uint8_t *phy,
			 size_t len, enum lw_sim_status *st) DJ_MUSTCHECK;

/*! \brief A text naming a simulator status. */
const char *lw_sim_strerror(enum lw_sim_status st);

/*! \brief Wipe every key the device holds (NULL is accepted). */
void lw_sim_wipe(struct lw_sim_device *d);

#endif /* DJ_DEVICES_LW_SIM_H */
