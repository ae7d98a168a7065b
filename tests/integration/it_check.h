/*
 * it_check.h - the failure check shared by the C integration drivers (test_*.c here).
 */
#ifndef DJ_TESTS_INTEGRATION_IT_CHECK_H
#define DJ_TESTS_INTEGRATION_IT_CHECK_H

#include <stdio.h>
#include <stdlib.h>

/* CHECK - on a false cond, print FAIL with the place and a printf-style reason, and exit 1 */
#define CHECK(cond, ...)                                                                           \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);                       \
			fprintf(stderr, __VA_ARGS__);                                              \
			fprintf(stderr, "\n");                                                     \
			exit(1);                                                                   \
		}                                                                                  \
	} while (0)

#endif /* DJ_TESTS_INTEGRATION_IT_CHECK_H */
