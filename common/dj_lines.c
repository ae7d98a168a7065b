/*
 * dj_lines.c - line-oriented text files (dj_lines.h).
 */
#include <string.h>

#include "common/dj_err.h"
#include "common/dj_lines.h"

int dj_lines_next(FILE *f, char *line, size_t size, const char *path, int *lineno, char *err,
		  size_t errlen)
{
	while (fgets(line, (int)size, f) != NULL) {
		(*lineno)++;
		if (strchr(line, '\n') == NULL && !feof(f)) {
			dj_errbuf(err, errlen, "%s:%d: line too long", path, *lineno);
			return DJ_EMALFORMED;
		}
		line[strcspn(line, "\r\n")] = '\0';
		if (line[0] != '\0' && line[0] != '#')
			return 1;
	}
	return 0;
}
