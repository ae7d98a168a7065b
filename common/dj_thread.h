/*
 * dj_thread.h - the one way a thread of the project names itself.
 *
 * SYNOPSIS
 *	dj_thread_name("committer");
 *
 * DESCRIPTION
 *	The name shows in /proc/PID/task/TID/comm, top -H, ps -L and gdb, so that an operator
 *	(and tests/integration/test_threads.sh) can tell the event loops, the store's committer
 *	and checkpointer and the MQTT publisher apart. The kernel keeps 15 bytes of a name:
 *	a longer one is cut to its first 15 bytes here (pthread_setname_np() would refuse it).
 *	A failure (none is expected on Linux) leaves the thread's name as it was and is logged at
 *	debug level: a name is a convenience, never a reason to stop a thread.
 */
#ifndef DJ_COMMON_DJ_THREAD_H
#define DJ_COMMON_DJ_THREAD_H

#define DJ_THREAD_NAME_MAX 15	/* bytes the kernel keeps, without the NUL */

/*! \brief Name the calling thread \p name, cut to DJ_THREAD_NAME_MAX bytes. */
void dj_thread_name(const char *name);

#endif
