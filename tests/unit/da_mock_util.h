/*
 * da_mock_util.h - a mock DNS upstream for the unit tests of da_dns and its users: the resolver
 * runs on an injected clock (m.now_ms) and a backend that records every query (name, type) for
 * the test to answer with da__query_answer(), and counts cancellations. Include after
 * <cmocka.h>.
 */
#ifndef DJ_TESTS_UNIT_DA_MOCK_UTIL_H
#define DJ_TESTS_UNIT_DA_MOCK_UTIL_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "backend-auth/da_internal.h"
#include "common/dj_err.h"

#define MAXQ 32	/* queries one test may ask */

/* the mock upstream: records what was asked, the test answers */
struct mock {
	struct da_query *q[MAXQ];
	char name[MAXQ][DA_QNAME_MAX + 1];
	uint16_t type[MAXQ];
	int live[MAXQ];
	size_t n, cancels;
	uint64_t now_ms;
};

static inline int mock_start(struct da_query *q, const char *name, uint16_t type, void *arg)
{
	struct mock *m = arg;

	assert_true(m->n < MAXQ);
	m->q[m->n] = q;
	strcpy(m->name[m->n], name);
	m->type[m->n] = type;
	m->live[m->n] = 1;
	m->n++;
	return DJ_EOK;
}

static inline void mock_cancel(struct da_query *q, void *arg)
{
	struct mock *m = arg;
	size_t i;

	for (i = 0; i < m->n; i++)
		if (m->q[i] == q && m->live[i]) {
			m->live[i] = 0;
			m->cancels++;
			return;
		}
	fail_msg("cancel of an unknown query");
}

static inline uint64_t mock_clock(void *arg)
{
	return ((struct mock *)arg)->now_ms;
}

/* fx - an event base and a resolver on the mock upstream */
struct fx {
	struct event_base *base;
	struct da_resolver *r;
	struct mock m;
};

/* fx_new - a resolver with props p on the mock, its clock at 1,000,000 ms */
static inline struct fx *fx_new(const struct da_resolver_props *p)
{
	struct fx *f = calloc(1, sizeof(*f));
	struct da_backend be = { mock_start, mock_cancel, NULL };

	assert_non_null(f);
	f->base = event_base_new();
	assert_non_null(f->base);
	f->m.now_ms = 1000000;
	be.arg = &f->m;
	assert_int_equal(da__resolver_new_backend(f->base, p, &be, mock_clock, &f->m, &f->r),
			 DJ_EOK);
	return f;
}

/* fx_free - frees what fx_new made */
static inline void fx_free(struct fx *f)
{
	da_resolver_free(f->r);
	event_base_free(f->base);
	free(f);
}

#endif /* DJ_TESTS_UNIT_DA_MOCK_UTIL_H */
