/*
 * bench_pg_read.c - the PostgreSQL store's group read against single reads (issue 15). Prints
 * figures; asserts nothing about time.
 *
 *   bench_pg_read CONNINFO PGDIR [DEVICES [GROUPS [ROUNDS]]]
 *
 * Imports DEVICES devices (default 20,000) into the database of CONNINFO (a fresh schema is the
 * caller's: bench_pg_read.sh starts a private cluster), then ROUNDS times (default 3), one mode
 * after the other: GROUPS groups (default 2,000) of 32 random devices, read as 32
 * js_store_device_get calls ("single") or as one js_store_device_get_many ("group"). For each
 * mode and round: wall µs per group, the round trips the store's readers made per group (their
 * counters, js_store_pg_internal.h), the client's CPU µs per group (getrusage) and the server's
 * (utime + stime of the postmaster's children, /proc, PGDIR the cluster's directory holding
 * data/postmaster.pid).
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <openssl/rand.h>

#include "common/dj_err.h"
#include "store/js_keystore.h"
#include "store/js_store.h"
#include "store/js_store_pg_internal.h"

#define BP_GROUP JS_KS_BATCH_MAX	/* an engine group at its largest */
#define BP_PATH_MAX 4096
#define BP_STAT_MAX 1024

struct bp_fig {
	double wall_us, client_us, server_us, trips;
};

/* die - report a failure and exit */
static void die(const char *what, int ret)
{
	fprintf(stderr, "bench_pg_read: %s: %s\n", what, dj_strerror(ret));
	exit(1);
}

/* now_us - monotonic microseconds */
static double now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

/* client_us - this process's user + system CPU, µs */
static double client_us(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e6 + ru.ru_utime.tv_usec +
	       ru.ru_stime.tv_usec;
}

/* stat_ticks - utime + stime of process pid when its parent is ppid, else 0 */
static long long stat_ticks(const char *pid, long ppid)
{
	char path[BP_PATH_MAX], line[BP_STAT_MAX];
	long long ut = 0, st = 0;
	long pp = -1;
	FILE *f;
	char *p;

	snprintf(path, sizeof(path), "/proc/%s/stat", pid);
	f = fopen(path, "r");
	if (f == NULL)
		return 0;
	p = fgets(line, sizeof(line), f);
	fclose(f);
	p = p != NULL ? strrchr(line, ')') : NULL;	/* after "pid (comm)" */
	if (p == NULL || sscanf(p + 2, "%*c %ld %*d %*d %*d %*d %*u %*u %*u %*u %*u %lld %lld",
				&pp, &ut, &st) != 3)
		return 0;
	return pp == ppid ? ut + st : 0;
}

/* server_us - CPU µs of the postmaster's children (the backends serving the store) */
static double server_us(const char *pgdir)
{
	char path[BP_PATH_MAX];
	long long ticks = 0;
	long pm = -1;
	struct dirent *e;
	FILE *f;
	DIR *d;

	snprintf(path, sizeof(path), "%s/data/postmaster.pid", pgdir);
	f = fopen(path, "r");
	if (f == NULL || fscanf(f, "%ld", &pm) != 1)
		die("postmaster.pid", DJ_ENOENT);
	fclose(f);
	d = opendir("/proc");
	while (d != NULL && (e = readdir(d)) != NULL)
		if (e->d_name[0] >= '0' && e->d_name[0] <= '9')
			ticks += stat_ticks(e->d_name, pm);
	if (d != NULL)
		closedir(d);
	return ticks * 1e6 / sysconf(_SC_CLK_TCK);
}

/* trips - round trips the store's readers have made */
static uint64_t trips(struct js_store *s)
{
	struct js_store__pg *q = s->be;
	uint64_t n = 0;

	for (size_t k = 0; k < JS_PG_READERS; k++)
		n += q->rd[k].round_trips;
	return n;
}

/* import - devices 0..n-1 (DevEUI 70 00 00 00 and i), random wrapped root keys */
static void import(struct js_store *s, struct js_keystore *ks, unsigned n)
{
	struct js_device *d = calloc(n, sizeof(*d));
	uint8_t key[16];
	size_t len, failed;
	int ret;

	if (d == NULL)
		die("calloc", DJ_ENOMEM);
	for (unsigned i = 0; i < n; i++) {
		d[i].dev_eui[0] = 0x70;
		d[i].dev_eui[4] = (uint8_t)(i >> 24);
		d[i].dev_eui[5] = (uint8_t)(i >> 16);
		d[i].dev_eui[6] = (uint8_t)(i >> 8);
		d[i].dev_eui[7] = (uint8_t)i;
		memset(d[i].join_eui, 0x11, LW_EUI_LEN);
		d[i].mac_version = LW_V1_1;
		if (RAND_bytes(key, sizeof(key)) != 1)
			die("RAND_bytes", DJ_ECRYPTO);
		ret = js_keystore_seal_root(ks, d[i].dev_eui, key, key, d[i].root_token, &len);
		if (ret != DJ_EOK)
			die("seal", ret);
		d[i].root_token_len = (uint32_t)len;
	}
	ret = js_store_devices_add(s, d, n, "bench", &failed);
	if (ret != DJ_EOK)
		die("devices_add", ret);
	free(d);
}

/* run - groups of BP_GROUP random devices, read one by one or as groups; the figures per
 * group */
static struct bp_fig run(struct js_store *s, const char *pgdir, unsigned devs, unsigned groups,
			 bool grouped)
{
	static struct js_device d[BP_GROUP];
	uint8_t eui[BP_GROUP][LW_EUI_LEN] = { { 0 } };
	const uint8_t *ep[BP_GROUP];
	struct js_device *dp[BP_GROUP];
	int rets[BP_GROUP];
	double w0 = now_us(), c0 = client_us(), s0 = server_us(pgdir);
	uint64_t t0 = trips(s);
	struct bp_fig f;

	for (unsigned g = 0; g < groups; g++) {
		for (size_t i = 0; i < BP_GROUP; i++) {
			unsigned id = (unsigned)random() % devs;

			eui[i][0] = 0x70;
			eui[i][5] = (uint8_t)(id >> 16);
			eui[i][6] = (uint8_t)(id >> 8);
			eui[i][7] = (uint8_t)id;
			ep[i] = eui[i];
			dp[i] = &d[i];
		}
		if (grouped && js_store_device_get_many(s, BP_GROUP, ep, dp, rets) != DJ_EOK)
			die("get_many", DJ_EINVAL);
		for (size_t i = 0; !grouped && i < BP_GROUP; i++)
			rets[i] = js_store_device_get(s, ep[i], dp[i]);
		for (size_t i = 0; i < BP_GROUP; i++)
			if (rets[i] != DJ_EOK)
				die("read", rets[i]);
	}
	f.wall_us = (now_us() - w0) / groups;
	f.client_us = (client_us() - c0) / groups;
	f.server_us = (server_us(pgdir) - s0) / groups;
	f.trips = (double)(trips(s) - t0) / groups;
	return f;
}

int main(int argc, char **argv)
{
	uint8_t master[JS_MASTER_KEY_LEN] = { 0x42 }, kcv[JS_KCV_LEN];
	struct js_keystore *ks = NULL;
	struct js_store *s = NULL;
	struct js_store_props p = { 0 };
	unsigned devs = argc > 3 ? (unsigned)atoi(argv[3]) : 20000;
	unsigned groups = argc > 4 ? (unsigned)atoi(argv[4]) : 2000;
	unsigned rounds = argc > 5 ? (unsigned)atoi(argv[5]) : 3;
	int ret;

	if (argc < 3 || devs == 0 || devs > 0xffffff || groups == 0) {
		fprintf(stderr, "usage: bench_pg_read CONNINFO PGDIR"
			" [DEVICES [GROUPS [ROUNDS]]]\n");
		return 2;
	}
	ret = js_keystore_new(master, &ks);
	if (ret != DJ_EOK)
		die("keystore", ret);
	js_keystore_kcv(ks, kcv);
	p.conninfo = argv[1];
	p.kcv = kcv;
	ret = js_store_open(&p, &s);
	if (ret != DJ_EOK)
		die("open", ret);
	import(s, ks, devs);
	srandom(1);
	(void)run(s, argv[2], devs, BP_GROUP, false);	/* readers connected, statements ready */
	(void)run(s, argv[2], devs, BP_GROUP, true);
	printf("bench_pg_read: %u devices, %u groups of %d per mode and round\n", devs, groups,
	       BP_GROUP);
	printf("%-6s %5s %14s %12s %14s %14s\n", "mode", "round", "wall us/group",
	       "trips/group", "client us/gr", "server us/gr");
	for (unsigned r = 0; r < rounds; r++) {
		for (int m = 0; m < 2; m++) {
			struct bp_fig f = run(s, argv[2], devs, groups, m == 1);

			printf("%-6s %5u %14.1f %12.2f %14.1f %14.1f\n", m ? "group" : "single",
			       r + 1, f.wall_us, f.trips, f.client_us, f.server_us);
		}
	}
	js_store_close(s);
	js_keystore_free(ks);
	return 0;
}
