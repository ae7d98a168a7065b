/*
 * dj_cli.c - the CLI helpers (dj_cli.h).
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/dj_cli.h"
#include "common/dj_err.h"

#define DECIMAL 10

void dj_cli_verr(const char *who, const char *fmt, va_list ap)
{
	fprintf(stderr, "%s: ", who);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
}

void dj_cli_err(const char *who, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	dj_cli_verr(who, fmt, ap);
	va_end(ap);
}

int dj_cli_usage(int code, const char *program, const char *command, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: %s: ", program, command);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, " (see %s --help)\n", program);
	return code;
}

bool dj_cli_parse_ulong(const char *s, unsigned long min, unsigned long max, unsigned long *out)
{
	char *end;
	unsigned long v;

	/* strtoul alone would take a sign, spaces and "0x" */
	if (s == NULL || *s < '0' || *s > '9')
		return false;
	errno = 0;
	v = strtoul(s, &end, DECIMAL);
	if (errno != 0 || *end != '\0' || v < min || v > max)
		return false;
	*out = v;
	return true;
}

bool dj_cli_parse_uint(const char *s, unsigned min, unsigned max, unsigned *out)
{
	unsigned long v;

	if (!dj_cli_parse_ulong(s, min, max, &v))
		return false;
	*out = (unsigned)v;
	return true;
}

int dj_cli_read_file(const char *who, const char *label, const char *path, size_t max,
		     uint8_t **out, size_t *len)
{
	const char *sp = label != NULL ? " " : "";
	struct stat st;
	uint8_t *buf = NULL;
	FILE *f = NULL;
	size_t n;
	int rc = DJ_EIO;

	if (label == NULL)
		label = "";
	if (stat(path, &st) != 0 || !S_ISREG(st.st_mode)) {
		dj_cli_err(who, "%s%s%s: cannot read (no such regular file)", label, sp, path);
		goto out;
	}
	if ((uintmax_t)st.st_size > max) {
		dj_cli_err(who, "%s%s%s: larger than %zu bytes", label, sp, path, max);
		goto out;
	}
	f = fopen(path, "rb");
	if (f == NULL) {
		dj_cli_err(who, "%s%s%s: cannot open: %s", label, sp, path, strerror(errno));
		goto out;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (buf == NULL) {
		dj_cli_err(who, "out of memory");
		rc = DJ_ENOMEM;
		goto out;
	}
	n = fread(buf, 1, (size_t)st.st_size, f);
	buf[n] = '\0';
	*out = buf;
	*len = n;
	buf = NULL;
	rc = DJ_EOK;
out:
	if (f != NULL)
		fclose(f);
	free(buf);
	return rc;
}
