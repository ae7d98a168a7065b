/*
 * test_dj_lru.c - the one LRU (common/dj_lru.h), table-driven: each case is a list of steps
 * (put, get, remove, refresh window, counters, which value was freed last) run on a fresh LRU
 * with an injected clock, so that expiry is tested without waiting. Values are small heap
 * objects whose destructor logs them, so every drop (replace, expiry, eviction, removal, free)
 * is seen.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/dj_compiler.h"
#include "common/dj_err.h"
#include "common/dj_lru.h"
#include "dj_test.h"

#define STEPS_MAX 20
#define MISS 0		/* a get that finds nothing */

enum op {
	END,		/* end of a case */
	PUT,		/* key -> id, life [born, exp) */
	GET,		/* key at now: id or MISS (and born/exp on a hit, when exp != 0) */
	DEL,		/* remove key */
	REFRESH,	/* get key at now, then in_refresh(pct) == want */
	COUNT,		/* count == want */
	EVICTED,	/* evictions == want */
	FREED,		/* the values freed so far == want, and the last one freed was id */
};

struct step {
	enum op op;
	const char *key;
	int id;			/* PUT: the value; GET: expected; FREED: the last one freed */
	uint64_t born, exp;	/* PUT: life; GET: expected life (when exp != 0) */
	uint64_t now;		/* GET, REFRESH */
	unsigned pct;		/* REFRESH */
	unsigned want;		/* REFRESH (0/1), COUNT, EVICTED, FREED */
};

struct lcase {
	const char *name;
	size_t max;
	struct step s[STEPS_MAX];
};

/* the values freed, in order */
static int freed_log[64];
static unsigned n_freed;

/* free_val - the LRU's destructor: log the value's id and free it */
static void free_val(void *v)
{
	assert_true(n_freed < DJ_ARRAY_LEN(freed_log));
	freed_log[n_freed++] = *(int *)v;
	free(v);
}

/* new_val - a heap value with \p id */
static int *new_val(int id)
{
	int *v = malloc(sizeof(*v));

	assert_non_null(v);
	*v = id;
	return v;
}

/* the steps, in short */
#define P(k, i, b, e) { .op = PUT, .key = (k), .id = (i), .born = (b), .exp = (e) }
#define G(k, i, t) { .op = GET, .key = (k), .id = (i), .now = (t) }
#define GL(k, i, b, e, t) { .op = GET, .key = (k), .id = (i), .born = (b), .exp = (e), .now = (t) }
#define D(k) { .op = DEL, .key = (k) }
#define R(k, t, p, w) { .op = REFRESH, .key = (k), .now = (t), .pct = (p), .want = (w) }
#define C(n) { .op = COUNT, .want = (n) }
#define E(n) { .op = EVICTED, .want = (n) }
#define F(i, n) { .op = FREED, .id = (i), .want = (n) }

static const struct lcase cases[] = {
	{ .name = "insert and hit", .max = 4, .s = {
		P("a", 1, 0, 1000),
		GL("a", 1, 0, 1000, 0),
		G("a", 1, 999),
		G("b", MISS, 0),
		G("", MISS, 0),
		C(1),
		F(0, 0),
	} },
	{ .name = "expiry drops on sight", .max = 4, .s = {
		P("a", 1, 100, 200),
		P("b", 2, 100, 300),
		G("a", 1, 199),
		C(2),
		G("a", MISS, 200),
		F(1, 1),
		C(1),
		GL("b", 2, 100, 300, 200),
		G("b", MISS, 5000),
		F(2, 2),
		C(0),
		E(0),	/* expiry is not eviction */
	} },
	{ .name = "refresh window", .max = 4, .s = {
		P("a", 1, 0, 100000),
		R("a", 0, 10, 0),
		R("a", 89999, 10, 0),
		R("a", 90000, 10, 1),
		R("a", 99999, 10, 1),
		R("a", 99999, 0, 0),
		R("a", 50000, 50, 1),
		R("a", 49999, 50, 0),
		/* the refresh's put replaces the entry with a new life */
		P("a", 2, 99000, 199000),
		F(1, 1),
		R("a", 99999, 10, 0),
		R("a", 189000, 10, 1),
	} },
	{ .name = "eviction order is least recently used", .max = 3, .s = {
		P("a", 1, 0, 1000),
		P("b", 2, 0, 1000),
		P("c", 3, 0, 1000),
		G("a", 1, 1),	/* order now a c b */
		P("d", 4, 0, 1000),	/* evicts b */
		F(2, 1),
		E(1),
		G("b", MISS, 2),
		G("a", 1, 2),
		G("c", 3, 2),
		G("d", 4, 2),	/* order now d c a */
		P("e", 5, 0, 1000),	/* evicts a */
		F(1, 2),
		P("f", 6, 0, 1000),	/* evicts c */
		F(3, 3),
		E(3),
	} },
	{ .name = "bound holds", .max = 2, .s = {
		P("k1", 1, 0, 10),
		P("k2", 2, 0, 10),
		P("k3", 3, 0, 10),
		P("k4", 4, 0, 10),
		P("k5", 5, 0, 10),
		C(2),
		E(3),
		F(3, 3),
		G("k4", 4, 0),
		G("k5", 5, 0),
		G("k3", MISS, 0),
	} },
	{ .name = "replace frees the old value, evicts nothing", .max = 2, .s = {
		P("a", 1, 0, 1000),
		P("b", 2, 0, 1000),
		P("a", 3, 10, 20),	/* shorter life: replaced all the same */
		F(1, 1),
		C(2),
		E(0),
		GL("a", 3, 10, 20, 15),
		G("a", MISS, 20),
		G("b", 2, 20),
	} },
	{ .name = "keys are bytes of their length", .max = 4, .s = {
		P("ab", 1, 0, 10),
		P("abc", 2, 0, 10),
		P("a", 3, 0, 10),
		G("ab", 1, 0),
		G("abc", 2, 0),
		G("a", 3, 0),
		G("abcd", MISS, 0),
		C(3),
	} },
	{ .name = "remove", .max = 4, .s = {
		P("a", 1, 0, 10),
		D("b"),
		C(1),
		D("a"),
		F(1, 1),
		G("a", MISS, 0),
		C(0),
		E(0),
	} },
	{ .name = "a bound of zero keeps nothing", .max = 0, .s = {
		P("a", 1, 0, 10),
		F(1, 1),
		G("a", MISS, 0),
		C(0),
	} },
};

/* run - one case on a fresh LRU; frees it and checks that every value was freed once */
static void run(const struct lcase *c)
{
	struct dj_lru_props p = { .max = c->max, .free_value = free_val };
	struct dj_lru *l = NULL;
	unsigned puts = 0;

	print_message("case: %s\n", c->name);
	n_freed = 0;
	assert_int_equal(dj_lru_new(&p, &l), DJ_EOK);
	for (const struct step *s = c->s; s->op != END; s++) {
		struct dj_lru_life life = { 0, 0 };
		int *v;

		switch (s->op) {
		case PUT:
			v = new_val(s->id);
			assert_int_equal(dj_lru_put(l, s->key, strlen(s->key), v, s->born, s->exp),
					 DJ_EOK);
			puts++;
			break;
		case GET:
			v = dj_lru_get(l, s->key, strlen(s->key), s->now, &life);
			if (s->id == MISS) {
				assert_null(v);
				break;
			}
			assert_non_null(v);
			assert_int_equal(*v, s->id);
			if (s->exp != 0) {
				assert_int_equal(life.born_ms, s->born);
				assert_int_equal(life.expires_ms, s->exp);
			}
			break;
		case DEL:
			dj_lru_remove(l, s->key, strlen(s->key));
			break;
		case REFRESH:
			assert_non_null(dj_lru_get(l, s->key, strlen(s->key), s->now, &life));
			assert_int_equal(dj_lru_in_refresh(&life, s->pct, s->now), s->want != 0);
			break;
		case COUNT:
			assert_int_equal(dj_lru_count(l), s->want);
			break;
		case EVICTED:
			assert_int_equal(dj_lru_evictions(l), s->want);
			break;
		case FREED:
			assert_int_equal(n_freed, s->want);
			if (s->want > 0)
				assert_int_equal(freed_log[n_freed - 1], s->id);
			break;
		case END:
			break;
		}
	}
	dj_lru_free(l);
	assert_int_equal(n_freed, puts);	/* each value freed exactly once */
}

static void test_cases(void **state)
{
	(void)state;
	for (size_t i = 0; i < DJ_ARRAY_LEN(cases); i++)
		run(&cases[i]);
}

/* many keys through a small table: chains, eviction of the oldest, binary keys */
static void test_many_keys(void **state)
{
	enum { MAX = 100, N = 1000 };
	struct dj_lru_props p = { .max = MAX, .free_value = free };
	struct dj_lru *l = NULL;
	uint32_t k;

	(void)state;
	assert_int_equal(dj_lru_new(&p, &l), DJ_EOK);
	for (k = 0; k < N; k++) {
		uint32_t *v = malloc(sizeof(*v));

		assert_non_null(v);
		*v = k;
		assert_int_equal(dj_lru_put(l, &k, sizeof(k), v, 0, 1), DJ_EOK);
	}
	assert_int_equal(dj_lru_count(l), MAX);
	assert_int_equal(dj_lru_evictions(l), N - MAX);
	for (k = 0; k < N; k++) {
		uint32_t *v = dj_lru_get(l, &k, sizeof(k), 0, NULL);

		if (k < N - MAX) {
			assert_null(v);
		} else {
			assert_non_null(v);
			assert_int_equal(*v, k);
		}
	}
	k = N - 1;
	assert_null(dj_lru_get(l, &k, sizeof(k), 1, NULL));	/* expired at 1 */
	assert_int_equal(dj_lru_count(l), MAX - 1);
	dj_lru_free(l);
}

/* NULL arguments are refused, not crashed on; a NULL destructor owns nothing */
static void test_edges(void **state)
{
	struct dj_lru_props p = { .max = 1, .free_value = NULL };
	struct dj_lru *l = NULL;
	struct dj_lru_life life = { 10, 5 };	/* born after expiry: never "in refresh" */
	int a = 1, b = 2;

	(void)state;
	assert_int_equal(dj_lru_new(NULL, &l), DJ_EINVAL);
	assert_int_equal(dj_lru_new(&p, NULL), DJ_EINVAL);
	assert_int_equal(dj_lru_new(&p, &l), DJ_EOK);
	assert_int_equal(dj_lru_put(NULL, "a", 1, &a, 0, 1), DJ_EINVAL);
	assert_int_equal(dj_lru_put(l, NULL, 1, &a, 0, 1), DJ_EINVAL);
	assert_int_equal(dj_lru_put(l, "a", 1, &a, 0, 10), DJ_EOK);
	assert_int_equal(dj_lru_put(l, "b", 1, &b, 0, 10), DJ_EOK);	/* evicts a, frees nothing */
	assert_ptr_equal(dj_lru_get(l, "b", 1, 0, NULL), &b);
	assert_null(dj_lru_get(NULL, "b", 1, 0, NULL));
	assert_false(dj_lru_in_refresh(NULL, 10, 0));
	assert_false(dj_lru_in_refresh(&life, 10, 4));
	assert_int_equal(dj_lru_count(NULL), 0);
	dj_lru_remove(NULL, "b", 1);
	dj_lru_free(l);
	dj_lru_free(NULL);
}

DJ_TEST_MAIN(
	cmocka_unit_test(test_cases),
	cmocka_unit_test(test_many_keys),
	cmocka_unit_test(test_edges))
