/*
 * ev_join.h - the MQTT events of an answered join, written to the store's outbox (ev_pub.h
 * publishes them).
 *
 * DESCRIPTION
 *	An answered JoinReq/RejoinReq becomes a join (or rejoin) event; an accepted one also an
 *	AppSKey event for every application server entitled to the device's AppSKey, its key
 *	wrapped under that server's KEK and the release audited when the row is written. An
 *	accepted join's events go to the outbox in the transaction of its state change
 *	(js_join_req.accepted); a refused join's event goes on its own (ev_record()).
 */
#ifndef DJ_DANEJOIND_EV_JOIN_H
#define DJ_DANEJOIND_EV_JOIN_H

#include <stdint.h>

#include "common/dj_compiler.h"
#include "events/ev_event.h"
#include "lorawan/lw_frame.h"
#include "store/js_store.h"

struct bi_kek;
struct lw_key;

/* An application server that receives AppSKey events for a device. */
struct ev_as_target {
	const char *as_id;		/* its [peer.NAME]: a topic level */
	const char *identity;		/* for the audit entry */
	struct bi_kek *kek;		/* required: AppSKeys go out wrapped only */
};

/*!
 * \brief The events of one answered join: the join/rejoin event, and for an accepted one an
 *        AppSKey event per target (its envelope wrapped under the target's KEK, audited as an
 *        "appskey-release" when written).
 * \param app_s_key  the AppSKey (accepted only; NULL otherwise); borrowed.
 * \param out  receives the list (free with ev_list_free()) on success only.
 * \retval DJ_EOK, DJ_ENOMEM, DJ_ECRYPTO, DJ_EINVAL
 */
int ev_join_events(const struct ev_join *j, const struct ev_as_target *targets, unsigned n,
		   const struct lw_key *app_s_key, struct js_event **out) DJ_MUSTCHECK;

/*! \brief Wipe and free a list from ev_join_events() (NULL is accepted). */
void ev_list_free(struct js_event *list);

/*!
 * \brief Write \p list (taken) to the outbox on its own, through the group commit, without
 *        waiting: for refused joins, which change no state. Freed once committed.
 */
void ev_record(struct js_store *store, const uint8_t dev_eui[LW_EUI_LEN], struct js_event *list);

#endif /* DJ_DANEJOIND_EV_JOIN_H */
