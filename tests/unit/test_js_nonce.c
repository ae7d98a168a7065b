/*
 * test_js_nonce.c - the join engine's nonce rules (js_engine_nonce_check), one table row per case.
 *
 * The rules (TS001-1.0.4 §6.2.5, TS001-1.1 §6.2.4.3): a random DevNonce (1.0.0-1.0.3) must not be
 * in the device's bounded history; a counter DevNonce (1.0.4, 1.1) and RJcount1 must strictly
 * increase; RJcount0 is not the join server's to check; JoinNonce counts from 1 and is exhausted
 * at 0xFFFFFF. Each row gives the state before, the request, and the verdict and state after;
 * the boundaries (equal, one above, 0xFFFF, a full history, the last JoinNonce) have rows of
 * their own. A refusal must leave the output untouched.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "engine/js_engine.h"
#include "dj_test.h"

#define NONE (-1)		/* no DevNonce/JoinNonce/RJcount1 accepted yet */
#define HIST_ROW_MAX 4		/* history values a row spells out */
#define JN_MAX ((int64_t)LW_JOINNONCE_MAX)
#define POISON 0xa5		/* what the output holds before the call */
#define STATE_VERSION 7		/* any: it must be carried over unchanged */

struct row {
	const char *name;
	enum lw_version v;
	enum lw_req_type type;
	uint16_t nonce;
	unsigned cap;			/* the history bound */
	/* before */
	int32_t dev_nonce;
	int64_t join_nonce;
	int32_t rjcount1;
	uint32_t hist_len;
	uint16_t hist[HIST_ROW_MAX];
	/* after */
	enum js_verdict want;
	int32_t want_dev_nonce;
	int64_t want_join_nonce;
	int32_t want_rjcount1;
	uint32_t want_hist_len;
	uint16_t want_hist[HIST_ROW_MAX];
};

#define J LW_REQ_JOIN
#define R0 LW_REQ_REJOIN0
#define R1 LW_REQ_REJOIN1
#define R2 LW_REQ_REJOIN2
#define OK JS_ACCEPT
#define NO_STATE 0, 0, 0, 0, { 0 }	/* a refusal: no state after */

static const struct row rows[] = {
	/* counter DevNonce, 1.0.4 and 1.1 */
	{ "1.1 first DevNonce 0", LW_V1_1, J, 0, 16, NONE, NONE, NONE, 0, { 0 },
	  OK, 0, 1, NONE, 0, { 0 } },
	{ "1.1 DevNonce one above", LW_V1_1, J, 6, 16, 5, 3, NONE, 0, { 0 },
	  OK, 6, 4, NONE, 0, { 0 } },
	{ "1.1 DevNonce equal", LW_V1_1, J, 5, 16, 5, 3, NONE, 0, { 0 },
	  JS_V_DEVNONCE_TOO_LOW, NO_STATE },
	{ "1.1 DevNonce below", LW_V1_1, J, 4, 16, 5, 3, NONE, 0, { 0 },
	  JS_V_DEVNONCE_TOO_LOW, NO_STATE },
	{ "1.1 DevNonce 0 after 0", LW_V1_1, J, 0, 16, 0, 1, NONE, 0, { 0 },
	  JS_V_DEVNONCE_TOO_LOW, NO_STATE },
	{ "1.1 DevNonce 0xffff after 0xfffe", LW_V1_1, J, 0xffff, 16, 0xfffe, 9, NONE, 0, { 0 },
	  OK, 0xffff, 10, NONE, 0, { 0 } },
	{ "1.1 DevNonce 0xffff after 0xffff: no wrap", LW_V1_1, J, 0xffff, 16, 0xffff, 9, NONE, 0,
	  { 0 }, JS_V_DEVNONCE_TOO_LOW, NO_STATE },
	{ "1.1 a join keeps RJcount1", LW_V1_1, J, 2, 16, 1, 1, 40, 0, { 0 },
	  OK, 2, 2, 40, 0, { 0 } },
	{ "1.0.4 DevNonce one above", LW_V1_0_4, J, 1, 16, 0, 1, NONE, 0, { 0 },
	  OK, 1, 2, NONE, 0, { 0 } },
	{ "1.0.4 DevNonce equal", LW_V1_0_4, J, 9, 16, 9, 1, NONE, 0, { 0 },
	  JS_V_DEVNONCE_TOO_LOW, NO_STATE },
	{ "1.0.4 ignores the history", LW_V1_0_4, J, 8, 16, 7, 1, NONE, 1, { 8 },
	  OK, 8, 2, NONE, 1, { 8 } },
	/* random DevNonce, 1.0.0-1.0.3: unused, in a bounded history */
	{ "1.0.3 first DevNonce", LW_V1_0_3, J, 0x1234, 16, NONE, NONE, NONE, 0, { 0 },
	  OK, NONE, 1, NONE, 1, { 0x1234 } },
	{ "1.0.3 DevNonce used", LW_V1_0_3, J, 0x0002, 16, NONE, 3, NONE, 3, { 1, 2, 3 },
	  JS_V_DEVNONCE_REPLAY, NO_STATE },
	{ "1.0.3 DevNonce lower but unused", LW_V1_0_3, J, 0x0000, 16, NONE, 3, NONE, 3, { 1, 2, 3 },
	  OK, NONE, 4, NONE, 4, { 1, 2, 3, 0 } },
	{ "1.0.2 history one below full", LW_V1_0_2, J, 4, 4, NONE, 3, NONE, 3, { 1, 2, 3 },
	  OK, NONE, 4, NONE, 4, { 1, 2, 3, 4 } },
	{ "1.0.2 history full: the oldest goes", LW_V1_0_2, J, 4, 3, NONE, 3, NONE, 3, { 1, 2, 3 },
	  OK, NONE, 4, NONE, 3, { 2, 3, 4 } },
	{ "1.0.2 history above a lowered bound", LW_V1_0_2, J, 9, 2, NONE, 3, NONE, 3, { 1, 2, 3 },
	  OK, NONE, 4, NONE, 2, { 3, 9 } },
	{ "1.0.1 a value gone from the history is new again", LW_V1_0_1, J, 1, 3, NONE, 4, NONE, 3,
	  { 2, 3, 4 }, OK, NONE, 5, NONE, 3, { 3, 4, 1 } },
	{ "1.0.0 DevNonce 0xffff used", LW_V1_0_0, J, 0xffff, 16, NONE, 1, NONE, 1, { 0xffff },
	  JS_V_DEVNONCE_REPLAY, NO_STATE },
	{ "1.0.0 bound 0 counts as 1", LW_V1_0_0, J, 6, 0, NONE, 1, NONE, 1, { 5 },
	  OK, NONE, 2, NONE, 1, { 6 } },
	/* RJcount1 */
	{ "RJcount1 first 0", LW_V1_1, R1, 0, 16, 3, 2, NONE, 0, { 0 },
	  OK, 3, 3, 0, 0, { 0 } },
	{ "RJcount1 one above", LW_V1_1, R1, 8, 16, 3, 2, 7, 0, { 0 },
	  OK, 3, 3, 8, 0, { 0 } },
	{ "RJcount1 equal", LW_V1_1, R1, 7, 16, 3, 2, 7, 0, { 0 },
	  JS_V_RJCOUNT1_REPLAY, NO_STATE },
	{ "RJcount1 below", LW_V1_1, R1, 6, 16, 3, 2, 7, 0, { 0 },
	  JS_V_RJCOUNT1_REPLAY, NO_STATE },
	{ "RJcount1 0xffff after 0xfffe", LW_V1_1, R1, 0xffff, 16, 3, 2, 0xfffe, 0, { 0 },
	  OK, 3, 3, 0xffff, 0, { 0 } },
	{ "RJcount1 0xffff after 0xffff", LW_V1_1, R1, 0xffff, 16, 3, 2, 0xffff, 0, { 0 },
	  JS_V_RJCOUNT1_REPLAY, NO_STATE },
	{ "RJcount1 below the DevNonce is fine", LW_V1_1, R1, 1, 16, 50, 2, NONE, 0, { 0 },
	  OK, 50, 3, 1, 0, { 0 } },
	/* RJcount0 (types 0 and 2): the network server's to check; only JoinNonce moves */
	{ "RJcount0 type 0", LW_V1_1, R0, 0, 16, 3, 2, 5, 0, { 0 },
	  OK, 3, 3, 5, 0, { 0 } },
	{ "RJcount0 type 0 repeated", LW_V1_1, R0, 0, 16, 3, 3, 5, 0, { 0 },
	  OK, 3, 4, 5, 0, { 0 } },
	{ "RJcount0 type 2 0xffff", LW_V1_1, R2, 0xffff, 16, 3, 2, 5, 0, { 0 },
	  OK, 3, 3, 5, 0, { 0 } },
	/* JoinNonce */
	{ "JoinNonce from 0 is 1", LW_V1_1, J, 1, 16, 0, 0, NONE, 0, { 0 },
	  OK, 1, 1, NONE, 0, { 0 } },
	{ "JoinNonce last one", LW_V1_1, J, 1, 16, 0, JN_MAX - 1, NONE, 0, { 0 },
	  OK, 1, JN_MAX, NONE, 0, { 0 } },
	{ "JoinNonce exhausted", LW_V1_1, J, 1, 16, 0, JN_MAX, NONE, 0, { 0 },
	  JS_V_JOINNONCE_EXHAUSTED, NO_STATE },
	{ "JoinNonce exhausted, 1.0.3", LW_V1_0_3, J, 1, 16, NONE, JN_MAX, NONE, 0, { 0 },
	  JS_V_JOINNONCE_EXHAUSTED, NO_STATE },
	{ "JoinNonce exhausted, Rejoin type 0", LW_V1_1, R0, 1, 16, 0, JN_MAX, NONE, 0, { 0 },
	  JS_V_JOINNONCE_EXHAUSTED, NO_STATE },
	{ "JoinNonce exhausted, Rejoin type 1", LW_V1_1, R1, 1, 16, 0, JN_MAX, NONE, 0, { 0 },
	  JS_V_JOINNONCE_EXHAUSTED, NO_STATE },
	{ "a DevNonce refusal goes before exhaustion", LW_V1_1, J, 0, 16, 0, JN_MAX, NONE, 0, { 0 },
	  JS_V_DEVNONCE_TOO_LOW, NO_STATE },
	{ "a replay goes before exhaustion", LW_V1_0_3, J, 2, 16, NONE, JN_MAX, NONE, 1, { 2 },
	  JS_V_DEVNONCE_REPLAY, NO_STATE },
	{ "an RJcount1 refusal goes before exhaustion", LW_V1_1, R1, 2, 16, 0, JN_MAX, 2, 0, { 0 },
	  JS_V_RJCOUNT1_REPLAY, NO_STATE },
};

/* state_of - the state before, as a row gives it, with a session token to be carried over */
static void state_of(const struct row *r, struct js_nonce_state *st)
{
	memset(st, 0, sizeof(*st));
	st->version = STATE_VERSION;
	st->dev_nonce_last = r->dev_nonce;
	st->join_nonce_last = r->join_nonce;
	st->rjcount1_last = r->rjcount1;
	st->hist_len = r->hist_len;
	memcpy(st->hist, r->hist, sizeof(r->hist));
	st->sess_token_len = 3;
	memcpy(st->sess_token, "tok", 3);
}

/* check_row - one row: the verdict, and the state after (accept) or nothing written (refusal) */
static void check_row(const struct row *r, struct js_nonce_state *cur, struct js_nonce_state *next,
		      struct js_nonce_state *poison)
{
	enum js_verdict v;

	state_of(r, cur);
	memset(next, POISON, sizeof(*next));
	v = js_engine_nonce_check(r->v, r->type, r->nonce, cur, r->cap, next);
	print_message("%s\n", r->name);
	assert_int_equal(v, r->want);
	if (v != JS_ACCEPT) {
		memset(poison, POISON, sizeof(*poison));
		assert_memory_equal(next, poison, sizeof(*next));
		return;
	}
	assert_int_equal(next->version, STATE_VERSION);	/* the store bumps it, not the rule */
	assert_int_equal(next->dev_nonce_last, r->want_dev_nonce);
	assert_int_equal(next->join_nonce_last, r->want_join_nonce);
	assert_int_equal(next->rjcount1_last, r->want_rjcount1);
	assert_int_equal(next->hist_len, r->want_hist_len);
	assert_memory_equal(next->hist, r->want_hist, r->want_hist_len * sizeof(uint16_t));
	assert_int_equal(next->sess_token_len, 3);
	assert_memory_equal(next->sess_token, "tok", 3);
}

/* every row of the table */
static void test_table(void **state)
{
	struct js_nonce_state *st = calloc(3, sizeof(*st));

	(void)state;
	assert_non_null(st);
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
		check_row(&rows[i], &st[0], &st[1], &st[2]);
	free(st);
}

/* the input state is never written, accept or refusal */
static void test_input_untouched(void **state)
{
	struct js_nonce_state *st = calloc(3, sizeof(*st));

	(void)state;
	assert_non_null(st);
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		state_of(&rows[i], &st[0]);
		st[1] = st[0];
		(void)js_engine_nonce_check(rows[i].v, rows[i].type, rows[i].nonce, &st[0],
					    rows[i].cap, &st[2]);
		assert_memory_equal(&st[0], &st[1], sizeof(st[0]));
	}
	free(st);
}

/* a history at the store's largest bound keeps exactly that many, oldest out first */
static void test_history_at_max(void **state)
{
	struct js_nonce_state *st = calloc(2, sizeof(*st));

	(void)state;
	assert_non_null(st);
	st[0].dev_nonce_last = NONE;
	st[0].join_nonce_last = 1;
	st[0].rjcount1_last = NONE;
	st[0].hist_len = JS_DEVNONCE_HIST_MAX;
	for (uint32_t i = 0; i < JS_DEVNONCE_HIST_MAX; i++)
		st[0].hist[i] = (uint16_t)i;
	assert_int_equal(js_engine_nonce_check(LW_V1_0_3, J, JS_DEVNONCE_HIST_MAX - 1, &st[0],
					       JS_DEVNONCE_HIST_MAX, &st[1]),
			 JS_V_DEVNONCE_REPLAY);
	assert_int_equal(js_engine_nonce_check(LW_V1_0_3, J, 0xffff, &st[0],
					       JS_DEVNONCE_HIST_MAX + 1, &st[1]),
			 JS_ACCEPT);
	assert_int_equal(st[1].hist_len, JS_DEVNONCE_HIST_MAX);
	assert_int_equal(st[1].hist[0], 1);
	assert_int_equal(st[1].hist[JS_DEVNONCE_HIST_MAX - 1], 0xffff);
	free(st);
}

DJ_TEST_MAIN(
	cmocka_unit_test(test_table),
	cmocka_unit_test(test_input_untouched),
	cmocka_unit_test(test_history_at_max))
