/*
 * dj_lines.h - reading a line-oriented text file (CSV, key=value state) with line numbers,
 *		blank lines and '#' comments skipped, over-long lines refused.
 */
#ifndef DJ_COMMON_DJ_LINES_H
#define DJ_COMMON_DJ_LINES_H

#include <stddef.h>
#include <stdio.h>

/*!
 * \brief The next line of \p f that is neither blank nor a '#' comment, without its line end
 *        (\\n or \\r\\n), in \p line (\p size bytes). \p lineno counts every line read, for
 *        messages "PATH:LINE: ...".
 * \retval 1               a line is in \p line.
 * \retval 0               the end of the file.
 * \retval DJ_EMALFORMED   a line does not fit in \p line ("PATH:LINE: line too long" in \p err).
 */
int dj_lines_next(FILE *f, char *line, size_t size, const char *path, int *lineno, char *err,
		  size_t errlen);

#endif /* DJ_COMMON_DJ_LINES_H */
