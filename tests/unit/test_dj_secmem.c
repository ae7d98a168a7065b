/*
 * test_dj_secmem.c - the key arena: allocations inside a section come from MADV_DONTDUMP
 * pages, outside it from malloc; freed blocks are wiped and reused; a full arena falls back
 * and counts it; the kernel reports the pages as "dd" (do not dump), which is what gcore and the
 * kernel's core writer honour; dj_secmem_harden leaves RLIMIT_CORE at 0.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include <cmocka.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "common/dj_err.h"
#include "common/dj_secmem.h"
#include "lorawan/lw_crypto.h"
#include "dj_test.h"

#define ARENA (64u * 1024u)	/* small, so that the fallback can be reached */

/* smaps_flags - the VmFlags line of the mapping holding \p p, or "" */
static void smaps_flags(const void *p, char *out, size_t cap)
{
	FILE *f = fopen("/proc/self/smaps", "r");
	char line[512];
	unsigned long lo, hi, a = (unsigned long)(uintptr_t)p;
	int in = 0;

	out[0] = '\0';
	assert_non_null(f);
	while (fgets(line, sizeof(line), f) != NULL) {
		if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2)	/* a mapping's first line */
			in = (a >= lo && a < hi);
		if (in && strncmp(line, "VmFlags:", 8) == 0) {
			snprintf(out, cap, "%s", line);
			break;
		}
	}
	fclose(f);
}

static int setup(void **state)
{
	bool locked;

	(void)state;
	return dj_secmem_init(ARENA, &locked) == DJ_EOK ? 0 : -1;
}

static void test_sections(void **state)
{
	uint8_t *in, *out;

	(void)state;
	out = OPENSSL_malloc(100);
	assert_non_null(out);
	assert_false(dj_secmem_owns(out));
	dj_secmem_enter();
	dj_secmem_enter();	/* nested */
	in = OPENSSL_malloc(100);
	dj_secmem_leave();
	assert_true(dj_secmem_owns(in));	/* still inside the outer section */
	OPENSSL_free(in);
	dj_secmem_leave();
	in = OPENSSL_malloc(100);
	assert_false(dj_secmem_owns(in));
	dj_secmem_leave();	/* one too many: ignored */
	in = OPENSSL_realloc(in, 200);
	assert_false(dj_secmem_owns(in));
	OPENSSL_free(in);
	OPENSSL_free(out);
}

static void test_dontdump_pages(void **state)
{
	char flags[512];
	uint8_t *p, *q;

	(void)state;
	dj_secmem_enter();
	p = OPENSSL_malloc(32);
	dj_secmem_leave();
	assert_true(dj_secmem_owns(p));
	smaps_flags(p, flags, sizeof(flags));
	assert_non_null(strstr(flags, " dd"));	/* VM_DONTDUMP */
	q = OPENSSL_malloc(32);
	smaps_flags(q, flags, sizeof(flags));
	assert_null(strstr(flags, " dd"));	/* the heap is dumped as usual */
	OPENSSL_free(p);
	OPENSSL_free(q);
}

static void test_wipe_reuse_realloc(void **state)
{
	struct dj_secmem_stats a, b;
	uint8_t *p, *q;

	(void)state;
	dj_secmem_stats(&a);
	dj_secmem_enter();
	p = OPENSSL_malloc(48);
	memset(p, 0xa5, 48);
	OPENSSL_free(p);
	q = OPENSSL_malloc(40);	/* first fit: the block just freed, wiped */
	assert_ptr_equal(p, q);
	for (int i = 0; i < 40; i++)
		assert_int_equal(q[i], 0);
	memset(q, 0x5a, 40);
	dj_secmem_leave();
	q = OPENSSL_realloc(q, 4000);	/* grows inside the arena, contents kept */
	assert_true(dj_secmem_owns(q));
	for (int i = 0; i < 40; i++)
		assert_int_equal(q[i], 0x5a);
	dj_secmem_stats(&b);
	assert_true(b.used > a.used);
	OPENSSL_free(q);
	dj_secmem_stats(&b);
	assert_int_equal(b.used, a.used);
	assert_int_equal(b.arena, ARENA);
}

static void test_key_contexts_in_arena(void **state)
{
	static const uint8_t key[32] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16 };
	struct dj_secmem_stats a, b;
	EVP_CIPHER_CTX *ctx = NULL;

	(void)state;
	dj_secmem_stats(&a);
	assert_int_equal(lw_crypto_block128_ctx_new(key, sizeof(key), 1, &ctx), DJ_EOK);
	dj_secmem_stats(&b);
	assert_true(dj_secmem_owns(ctx));	/* the context and its schedule */
	assert_true(b.used > a.used);
	EVP_CIPHER_CTX_free(ctx);
}

static void test_full_arena_falls_back(void **state)
{
	struct dj_secmem_stats a, b;
	void *big;

	(void)state;
	dj_secmem_stats(&a);
	dj_secmem_enter();
	big = OPENSSL_malloc(2 * ARENA);
	dj_secmem_leave();
	assert_non_null(big);
	assert_false(dj_secmem_owns(big));
	dj_secmem_stats(&b);
	assert_int_equal(b.fallbacks, a.fallbacks + 1);
	OPENSSL_free(big);
}

static void test_harden(void **state)
{
	struct rlimit rl;

	(void)state;
	unsetenv("DJ_ALLOW_DUMP");
	assert_int_equal(dj_secmem_harden(), DJ_EOK);
	assert_int_equal(getrlimit(RLIMIT_CORE, &rl), 0);
	assert_int_equal(rl.rlim_cur, 0);
}

DJ_TEST_MAIN_GROUP(setup, NULL,
	cmocka_unit_test(test_sections),
	cmocka_unit_test(test_dontdump_pages),
	cmocka_unit_test(test_wipe_reuse_realloc),
	cmocka_unit_test(test_key_contexts_in_arena),
	cmocka_unit_test(test_full_arena_falls_back),
	cmocka_unit_test(test_harden))
