/*
 * it_net.h - loopback sockets and a temporary directory, shared by the C integration drivers
 * that run a server in-process (test_srv.c, test_srv_records.c).
 */
#ifndef DJ_TESTS_INTEGRATION_IT_NET_H
#define DJ_TESTS_INTEGRATION_IT_NET_H

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "it_check.h"

/* it_tmpdir - make a fresh directory $TMPDIR/PREFIX_XXXXXX (default /tmp) into \p dir */
static inline void it_tmpdir(char *dir, size_t size, const char *prefix)
{
	const char *tmp = getenv("TMPDIR");

	snprintf(dir, size, "%s/%s_XXXXXX", tmp != NULL ? tmp : "/tmp", prefix);
	CHECK(mkdtemp(dir) != NULL, "mkdtemp %s: %s", dir, strerror(errno));
}

/* it_rm_dir - remove \p dir (the test's temporary PKI) if it was made */
static inline void it_rm_dir(const char *dir)
{
	char cmd[512];

	if (dir[0] != '\0') {
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
		if (system(cmd) != 0)
			fprintf(stderr, "could not remove %s\n", dir);
	}
}

/* it_free_port - a loopback port nobody listens on right now */
static inline unsigned it_free_port(void)
{
	struct sockaddr_in a = {.sin_family = AF_INET};
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	CHECK(fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0, "bind: %s",
	      strerror(errno));
	CHECK(getsockname(fd, (struct sockaddr *)&a, &len) == 0, "getsockname");
	close(fd);
	return ntohs(a.sin_port);
}

/* it_tcp_connect - a plain TCP connection to 127.0.0.1:port (TCP_NODELAY if \p nodelay), or -1 */
static inline int it_tcp_connect(unsigned port, bool nodelay)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	int fd = socket(AF_INET, SOCK_STREAM, 0), on = 1;

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
	    (!nodelay || setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on)) == 0))
		return fd;
	if (fd >= 0)
		close(fd);
	return -1;
}

/* it_wait_ready - connect-retry for up to \p wait_ms until the listener on \p port answers */
static inline void it_wait_ready(unsigned port, int wait_ms)
{
	struct timespec ts = {0, 10 * 1000 * 1000};
	int i, fd = -1;

	for (i = 0; i < wait_ms / 10 && fd < 0; i++) {
		fd = it_tcp_connect(port, false);
		if (fd < 0)
			nanosleep(&ts, NULL);
	}
	CHECK(fd >= 0, "port %u never accepted", port);
	close(fd);
}

#endif /* DJ_TESTS_INTEGRATION_IT_NET_H */
