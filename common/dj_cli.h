/*
 * dj_cli.h - the one helper file of the three CLIs (danejoin-ca, danejoin-client,
 *	      danejoin-devices): messages on stderr, numbers from flags, small files.
 *
 * DESCRIPTION
 *	Knot keeps one utils/common for kdig, knsupdate and khost; this is ours. It is a library
 *	of its own (dj_cli), linked by the CLIs only: unlike every other library it prints, because
 *	printing is what a CLI does with an error. Messages go to stderr, one line each, starting
 *	with the program's name (or "program: command"), as the tests and operators expect them.
 */
#ifndef DJ_COMMON_DJ_CLI_H
#define DJ_COMMON_DJ_CLI_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/dj_compiler.h"

/*!
 * \brief Print "WHO: message" and a newline on stderr.
 * \param who  the program's name, or "program: command" (borrowed).
 */
void dj_cli_err(const char *who, const char *fmt, ...) DJ_PRINTF(2, 3);

/*! \brief dj_cli_err with a va_list. */
void dj_cli_verr(const char *who, const char *fmt, va_list ap) DJ_PRINTF(2, 0);

/*!
 * \brief Print "PROGRAM: COMMAND: message (see PROGRAM --help)" on stderr.
 * \return \p code, so that a caller can write `return dj_cli_usage(EXIT_USAGE, ...)`.
 */
int dj_cli_usage(int code, const char *program, const char *command, const char *fmt, ...)
	DJ_PRINTF(4, 5);

/*!
 * \brief Parse a flag's unsigned decimal in [\p min, \p max]: digits only (no sign, no space,
 * no hex), nothing after them, no overflow.
 * \return true with \p out set; false (\p out untouched) otherwise.
 */
bool dj_cli_parse_ulong(const char *s, unsigned long min, unsigned long max,
			unsigned long *out) DJ_MUSTCHECK;

/*! \brief dj_cli_parse_ulong for an unsigned int. */
bool dj_cli_parse_uint(const char *s, unsigned min, unsigned max, unsigned *out) DJ_MUSTCHECK;

/*!
 * \brief Read a whole regular file of at most \p max bytes.
 *
 * On failure the reason is printed: "WHO: LABEL PATH: cannot read (no such regular file)",
 * "... larger than MAX bytes", "... cannot open: ERRNO TEXT", or "WHO: out of memory".
 * \param label  NULL, or the flag the path came from ("--message").
 * \param out    a malloc'd buffer, NUL-terminated after its \p len bytes; the caller's.
 *		 Written on success only.
 * \retval DJ_EOK, DJ_EIO (absent, too large, unreadable), DJ_ENOMEM.
 */
int dj_cli_read_file(const char *who, const char *label, const char *path, size_t max,
		     uint8_t **out, size_t *len) DJ_MUSTCHECK;

#endif /* DJ_COMMON_DJ_CLI_H */
