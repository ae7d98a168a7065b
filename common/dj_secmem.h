/*
 * dj_secmem.h - keep key material out of core dumps and swap.
 *
 * DESCRIPTION
 *	Master keys, KEKs and the AES key schedules made from them live inside OpenSSL objects
 *	(EVP_CIPHER_CTX and its provider context), which OpenSSL allocates itself. dj_secmem
 *	installs OpenSSL's allocator hooks (CRYPTO_set_mem_functions) once, at the very start of a
 *	program. Between dj_secmem_enter() and dj_secmem_leave() on a thread, every allocation made
 *	through OpenSSL (and through OPENSSL_malloc by our own code) comes from one arena: anonymous
 *	pages marked MADV_DONTDUMP (left out of core files, gcore included) and locked with mlock
 *	(never written to swap). Outside such a section the hooks hand over to malloc unchanged,
 *	so TLS and everything else pays one well-predicted branch.
 *
 *	dj_secmem_harden() makes the process non-dumpable (prctl PR_SET_DUMPABLE 0, RLIMIT_CORE 0)
 *	so a crash writes no core at all. DJ_ALLOW_DUMP=1 in the environment keeps dumps allowed
 *	(for debugging, and for the test that takes a gcore and checks no key is in it); the arena
 *	stays excluded either way.
 *
 *	The arena is small (key contexts only) and is never returned to the system; freed blocks are
 *	wiped and reused. When it is full, or was never set up (unit tests), allocations fall back
 *	to malloc and dj_secmem_stats() counts them, so a program can refuse to start.
 */
#ifndef DJ_COMMON_DJ_SECMEM_H
#define DJ_COMMON_DJ_SECMEM_H

#include <stdbool.h>
#include <stddef.h>

#include "common/dj_compiler.h"

#define DJ_SECMEM_DEFAULT (1u << 20)	/* 1 MiB: ~1,000 AES contexts */

/*!
 * \brief Map the arena of \p size bytes (MADV_DONTDUMP, mlock) and install the OpenSSL allocator
 *        hooks. Call first thing in main(), before any OpenSSL call.
 * \param locked  set to whether mlock succeeded (RLIMIT_MEMLOCK may refuse); may be NULL.
 * \retval DJ_EOK, DJ_ENOMEM (mmap failed), DJ_EINVAL (OpenSSL had already allocated: too late)
 */
int dj_secmem_init(size_t size, bool *locked) DJ_MUSTCHECK;

/*!
 * \brief Make the process non-dumpable and set RLIMIT_CORE to 0, unless DJ_ALLOW_DUMP=1.
 * \retval DJ_EOK, DJ_EIO (prctl or setrlimit refused)
 */
int dj_secmem_harden(void) DJ_MUSTCHECK;

/*!
 * \brief What every program calls first: dj_secmem_init(DJ_SECMEM_DEFAULT) and
 *        dj_secmem_harden(). An arena that could not be locked (RLIMIT_MEMLOCK) is still used.
 * \retval DJ_EOK, or the first error of the two
 */
int dj_secmem_setup(void) DJ_MUSTCHECK;

/*! \brief Start (nestable, per thread) a section whose OpenSSL allocations go to the arena. */
void dj_secmem_enter(void);

/*! \brief End the innermost section started by dj_secmem_enter(). */
void dj_secmem_leave(void);

/*! \brief Whether \p p points into the arena. */
bool dj_secmem_owns(const void *p);

struct dj_secmem_stats {
	size_t arena;		/* bytes mapped (0: not set up) */
	size_t used;		/* bytes in live blocks, headers included */
	size_t fallbacks;	/* allocations in a section that the arena could not take */
};

/*! \brief Current figures (for start-up checks, metrics and tests). */
void dj_secmem_stats(struct dj_secmem_stats *st);

#endif /* DJ_COMMON_DJ_SECMEM_H */
