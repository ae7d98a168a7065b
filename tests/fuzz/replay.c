/*
 * replay.c - the fuzz targets without libFuzzer: a driver that any compiler builds, so that
 * ctest runs every target in every build (the smoke run of issue 12; the long runs are
 * tests/fuzz/run with clang).
 *
 *   fuzz_X [--mutations N] PATH...
 *
 * Each PATH is a file or a directory of files (tests/fuzz/corpus/<target>/). Every input is run
 * as it is, then N times mutated in a fixed, seeded way (bit flips, truncations, byte
 * insertions), so the run is the same every time and a failure is reproducible from its seed.
 * A target signals a broken invariant by abort(); the sanitizers of the build do the rest.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define INPUT_MAX 65536		/* larger corpus files are refused: the targets use -max_len 4096 */

static unsigned long mutations = 64;
static unsigned long runs;

/* next - xorshift64: a fixed sequence from the seed */
static uint64_t next(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/* run_one - the input, then its mutations */
static void run_one(const uint8_t *in, size_t len)
{
	static uint8_t buf[INPUT_MAX + 16];
	uint64_t seed = 0x9e3779b97f4a7c15ull ^ len;

	LLVMFuzzerTestOneInput(in, len);
	runs++;
	for (unsigned long m = 0; m < mutations; m++) {
		size_t n = len;
		uint64_t r = next(&seed);

		memcpy(buf, in, len);
		switch (r % 4) {
		case 0:		/* flip one bit */
			if (n > 0)
				buf[(r >> 8) % n] ^= (uint8_t)(1u << ((r >> 4) % 8));
			break;
		case 1:		/* truncate */
			n = n > 0 ? (size_t)((r >> 8) % n) : 0;
			break;
		case 2:		/* insert a byte */
			if (n < INPUT_MAX) {
				size_t at = n > 0 ? (size_t)((r >> 8) % (n + 1)) : 0;

				memmove(buf + at + 1, buf + at, n - at);
				buf[at] = (uint8_t)(r >> 32);
				n++;
			}
			break;
		default:	/* overwrite a byte with an edge value */
			if (n > 0)
				buf[(r >> 8) % n] = (uint8_t[]){ 0, 0xff, 0x7f, 0x80, '"', '\n', '=', ',' }[(r >> 40) % 8];
			break;
		}
		LLVMFuzzerTestOneInput(buf, n);
		runs++;
	}
}

/* run_path - a file, or every regular file of a directory */
static int run_path(const char *path)
{
	static uint8_t in[INPUT_MAX];
	struct stat st;
	DIR *d;
	struct dirent *e;
	FILE *f;
	size_t n;

	if (stat(path, &st) != 0) {
		fprintf(stderr, "replay: %s: cannot stat\n", path);
		return 1;
	}
	if (S_ISDIR(st.st_mode)) {
		char sub[4096];
		int bad = 0;

		d = opendir(path);
		if (d == NULL)
			return 1;
		while ((e = readdir(d)) != NULL) {
			if (e->d_name[0] == '.')
				continue;
			snprintf(sub, sizeof(sub), "%s/%s", path, e->d_name);
			bad |= run_path(sub);
		}
		closedir(d);
		return bad;
	}
	f = fopen(path, "rb");
	if (f == NULL) {
		fprintf(stderr, "replay: %s: cannot open\n", path);
		return 1;
	}
	n = fread(in, 1, sizeof(in), f);
	fclose(f);
	run_one(in, n);
	return 0;
}

int main(int argc, char **argv)
{
	int bad = 0, i = 1;

	if (argc > 2 && strcmp(argv[1], "--mutations") == 0) {
		mutations = strtoul(argv[2], NULL, 10);
		i = 3;
	}
	if (i >= argc) {
		fprintf(stderr, "usage: %s [--mutations N] PATH...\n", argv[0]);
		return 2;
	}
	for (; i < argc; i++)
		bad |= run_path(argv[i]);
	printf("replay: %lu inputs run\n", runs);
	return bad;
}
