/*
 * fuzz_js_config.c - libFuzzer target: the INI configuration loader (through a file, as the
 * programs read it). Invariant: no crash, leak or sanitizer report.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "common/dj_err.h"
#include "engine/js_config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char path[64];
	struct js_config cfg;
	char err[JS_CONFIG_ERR_MAX];
	FILE *f;

	if (path[0] == '\0')
		snprintf(path, sizeof(path), "/tmp/dj-fuzz-config-%d.conf", (int)getpid());
	f = fopen(path, "w");
	if (f == NULL)
		abort();
	fwrite(data, 1, size, f);
	fclose(f);
	if (js_config_load(path, &cfg, err, sizeof(err)) == DJ_EOK)
		js_config_free(&cfg);
	return 0;
}
