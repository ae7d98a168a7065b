/*
 * dj_thread.c - the one way a thread names itself (dj_thread.h)
 */
#define _GNU_SOURCE	/* pthread_setname_np */
#include <pthread.h>
#include <string.h>

#include "common/dj_log.h"
#include "common/dj_thread.h"

void dj_thread_name(const char *name)
{
	char buf[DJ_THREAD_NAME_MAX + 1];
	size_t n = strnlen(name, DJ_THREAD_NAME_MAX);
	int rc;

	memcpy(buf, name, n);
	buf[n] = '\0';
	rc = pthread_setname_np(pthread_self(), buf);
	if (rc != 0)
		dj_debug("thread name %s not set (error %d)", buf, rc);
}
