/*
 * dj_secmem.c - an arena for key material, reached through OpenSSL's allocator hooks
 * (dj_secmem.h).
 *
 * Security reasoning: a core file, a gcore of the live process or a swapped-out page is a copy
 * of memory that outlives the process and escapes its permissions. AES key schedules begin with
 * the key itself (FIPS 197 §5.2: the first Nk words of the expansion are the key), so each
 * keyed context is a plain copy of its key. Marking the pages MADV_DONTDUMP keeps them out of
 * every core writer that honours the kernel's VM_DONTDUMP flag (the kernel's own, and gdb's
 * gcore, which reads the "dd" flag in /proc/PID/smaps); mlock keeps them out of swap.
 *
 * The allocator: 16-byte headers holding each block's capacity, a bump pointer for fresh space
 * and a first-fit list of freed blocks (wiped when freed). The arena only holds a few hundred
 * long-lived contexts, so this is enough, and one mutex covers it.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>

#include <openssl/crypto.h>

#include "common/dj_err.h"
#include "common/dj_secmem.h"

#define ALIGN 16u		/* malloc's alignment on x86-64 and aarch64 */
#define HDR ALIGN		/* a block's header: its capacity, padded to the alignment */

struct blk {			/* a freed block's payload: the next freed block */
	struct blk *next;
};

static uint8_t *arena;		/* NULL until dj_secmem_init() */
static size_t arena_size;
static size_t bump;		/* offset of the first never-used byte */
static size_t used;
static size_t fallbacks;
static struct blk *freed;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static _Thread_local unsigned depth;

/* cap_of - the capacity stored in the header of payload \p p */
static size_t *cap_of(void *p)
{
	return (size_t *)(void *)((uint8_t *)p - HDR);
}

bool dj_secmem_owns(const void *p)
{
	const uint8_t *b = p;

	return arena != NULL && b >= arena && b < arena + arena_size;
}

/* arena_alloc - a block of at least \p n bytes from the arena, or NULL when it is full */
static void *arena_alloc(size_t n)
{
	size_t need = (n + ALIGN - 1) / ALIGN * ALIGN;
	void *p = NULL;

	if (need == 0)
		need = ALIGN;
	pthread_mutex_lock(&lock);
	for (struct blk **pp = &freed; *pp != NULL; pp = &(*pp)->next) {
		if (*cap_of(*pp) >= need) {
			p = *pp;
			*pp = (*pp)->next;
			break;
		}
	}
	if (p == NULL && need <= arena_size - bump - HDR) {
		p = arena + bump + HDR;
		*cap_of(p) = need;
		bump += HDR + need;
	}
	if (p != NULL) {
		used += HDR + *cap_of(p);
		memset(p, 0, *cap_of(p));
	} else {
		fallbacks++;
	}
	pthread_mutex_unlock(&lock);
	return p;
}

/* arena_free - wipe \p p and put it on the freed list */
static void arena_free(void *p)
{
	OPENSSL_cleanse(p, *cap_of(p));
	pthread_mutex_lock(&lock);
	used -= HDR + *cap_of(p);
	((struct blk *)p)->next = freed;
	freed = p;
	pthread_mutex_unlock(&lock);
}

/* hook_malloc - CRYPTO_malloc's allocator: the arena inside a section, malloc outside */
static void *hook_malloc(size_t n, const char *file, int line)
{
	void *p;

	(void)file;
	(void)line;
	if (depth > 0 && (p = arena_alloc(n)) != NULL)
		return p;
	return malloc(n);
}

/* hook_free - CRYPTO_free's deallocator. NULL returns at once: ERR_clear_error() frees the
 * file and function names of all 16 slots of the error queue, nearly all NULL, and libevent's
 * TLS bufferevent calls it before every SSL_read and SSL_write (32 calls each). */
static void hook_free(void *p, const char *file, int line)
{
	(void)file;
	(void)line;
	if (p == NULL)
		return;
	if (dj_secmem_owns(p))
		arena_free(p);
	else
		free(p);
}

/* hook_realloc - an arena block stays in the arena; anything else is realloc's */
static void *hook_realloc(void *p, size_t n, const char *file, int line)
{
	void *q;

	if (p == NULL)
		return hook_malloc(n, file, line);
	if (!dj_secmem_owns(p))
		return realloc(p, n);
	if (n == 0) {
		arena_free(p);
		return NULL;
	}
	if (n <= *cap_of(p))
		return p;
	q = arena_alloc(n);
	if (q == NULL)
		q = malloc(n);
	if (q == NULL)
		return NULL;
	memcpy(q, p, *cap_of(p));
	arena_free(p);
	return q;
}

int dj_secmem_init(size_t size, bool *locked)
{
	void *m;

	if (locked != NULL)
		*locked = false;
	if (arena != NULL)
		return DJ_EOK;
	size = (size + ALIGN - 1) / ALIGN * ALIGN;
	m = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED)
		return DJ_ENOMEM;
	/* Without MADV_DONTDUMP the arena would be no better than the heap: refuse. */
	if (madvise(m, size, MADV_DONTDUMP) != 0) {
		munmap(m, size);
		return DJ_EINVAL;
	}
	if (CRYPTO_set_mem_functions(hook_malloc, hook_realloc, hook_free) != 1) {
		munmap(m, size);
		return DJ_EINVAL;
	}
	if (mlock(m, size) == 0 && locked != NULL)
		*locked = true;
	arena = m;
	arena_size = size;
	return DJ_EOK;
}

int dj_secmem_harden(void)
{
	const char *allow = getenv("DJ_ALLOW_DUMP");
	struct rlimit none = { 0, 0 };

	if (allow != NULL && strcmp(allow, "1") == 0)
		return DJ_EOK;
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0 || setrlimit(RLIMIT_CORE, &none) != 0)
		return DJ_EIO;
	return DJ_EOK;
}

int dj_secmem_setup(void)
{
	int ret = dj_secmem_init(DJ_SECMEM_DEFAULT, NULL);

	return ret != DJ_EOK ? ret : dj_secmem_harden();
}

void dj_secmem_enter(void)
{
	depth++;
}

void dj_secmem_leave(void)
{
	if (depth > 0)
		depth--;
}

void dj_secmem_stats(struct dj_secmem_stats *st)
{
	pthread_mutex_lock(&lock);
	st->arena = arena != NULL ? arena_size : 0;
	st->used = used;
	st->fallbacks = fallbacks;
	pthread_mutex_unlock(&lock);
}
