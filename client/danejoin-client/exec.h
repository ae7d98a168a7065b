/*
 * exec.h - danejoin-client: the work of each command, and the helpers bench.c shares.
 */
#ifndef DJ_CLIENT_DANEJOIN_CLIENT_EXEC_H
#define DJ_CLIENT_DANEJOIN_CLIENT_EXEC_H

#include "bi/bi_kek.h"
#include "bi/bi_msg.h"
#include "backend-auth/da_dns.h"
#include "bi/dc_client.h"
#include "common/dj_compiler.h"
#include "ownership/dv_csv.h"
#include "lorawan/lw_sim.h"
#include "params.h"
#include "state.h"

/*! \brief Run the validated command. \return a DC_EXIT_* code. */
int exec_run(const struct dc_params *p) DJ_MUSTCHECK;

/*! \brief Print \p m as one JSON line on stdout. \return DC_EXIT_OK or DC_EXIT_INTERNAL */
int exec__print(const struct bi_msg *m) DJ_MUSTCHECK;

/*! \brief A client for \p p's URL and certificates. \return DC_EXIT_OK or an exit code. */
/*! \brief DANE mode (no --ca): the shared event loop and resolver, made on first use and
 *         freed by exec__dane_free(). \retval DC_EXIT_OK, DC_EXIT_INPUT, DC_EXIT_INTERNAL */
int exec__dane(const struct dc_params *p, struct event_base **base, struct da_resolver **r);
void exec__dane_free(void);

int exec__client(const struct dc_params *p, unsigned connections,
		 struct dc_client **out) DJ_MUSTCHECK;

/*! \brief The header of a request from \p p (type, IDs, a random TransactionID). */
void exec__req_init(const struct dc_params *p, enum bi_msg_type type, struct bi_msg *m);

/*! \brief Fill a JoinReq/RejoinReq body for simulated device \p d from \p phy. */
void exec__sim_req(const struct dc_params *p, const struct lw_sim_device *d, unsigned idx,
		   enum bi_msg_type type, const uint8_t *phy, size_t len, struct bi_msg *m);

/*! \brief Initialise device \p d from CSV row \p row and the state. \return DC_EXIT_* */
int exec__sim_init(struct lw_crypto *cx, const struct dv_csv_row *row, const struct st_file *st,
		   struct lw_sim_device *d) DJ_MUSTCHECK;

/*! \brief The bench command (bench.c). \return a DC_EXIT_* code. */
int exec__bench(const struct dc_params *p, struct bi_kek *kek) DJ_MUSTCHECK;

/*! \brief The listen command (listen.c): receive async answers. \return a DC_EXIT_* code. */
int exec__listen(const struct dc_params *p) DJ_MUSTCHECK;

/*! \brief The subscribe command (subscribe.c): print MQTT events. \return a DC_EXIT_* code. */
int exec__subscribe(const struct dc_params *p) DJ_MUSTCHECK;

#endif /* DJ_CLIENT_DANEJOIN_CLIENT_EXEC_H */
