/*
 * dj_hex.h - hexadecimal text <-> bytes, and EUI helpers.
 *
 * DESCRIPTION
 *	Parsing accepts an optional "0x"/"0X" prefix and either case (vectors.md interop facts).
 *	EUIs, NetIDs and nonces are kept as byte arrays in the order they are printed (most significant
 *	byte first); the on-air (little-endian) order is produced only by lw_frame.
 */
#ifndef DJ_COMMON_DJ_HEX_H
#define DJ_COMMON_DJ_HEX_H

#include <stddef.h>
#include <stdint.h>

#include "common/dj_compiler.h"

#define DJ_HEX_PARSE_MAX 64	/* the most bytes dj_hex_parse() takes (DJ_EINVAL above) */

/*!
 * \brief Parse exactly \p len bytes of hex from the NUL-terminated \p text.
 * \retval DJ_EOK          \p out holds \p len bytes.
 * \retval DJ_EMALFORMED   wrong length or a non-hex character; \p out untouched.
 */
int dj_hex_parse(const char *text, uint8_t *out, size_t len) DJ_MUSTCHECK;

/*!
 * \brief Parse hex of any even length up to \p cap bytes; the length goes to \p out_len.
 */
int dj_hex_parse_var(const char *text, uint8_t *out, size_t cap, size_t *out_len) DJ_MUSTCHECK;

/*!
 * \brief Parse the \p n characters at \p text (no NUL needed; a NUL among them is not hex):
 * an optional "0x"/"0X" prefix, then an even number of hex digits, up to \p cap bytes.
 * \retval DJ_EOK          \p out holds *\p out_len bytes.
 * \retval DJ_EMALFORMED   odd length, longer than \p cap or a non-hex character; \p out untouched.
 */
int dj_hex_parse_n(const char *text, size_t n, uint8_t *out, size_t cap, size_t *out_len)
	DJ_MUSTCHECK;

/*! \brief Write 2*len lowercase hex digits and a NUL to \p out (room for 2*len+1). */
void dj_hex_format(const uint8_t *in, size_t len, char *out);

/*! \brief Same, uppercase. */
void dj_hex_format_upper(const uint8_t *in, size_t len, char *out);

/*! \brief Big-endian bytes to an integer (len <= 8). */
uint64_t dj_be_get(const uint8_t *in, size_t len);

/*! \brief Integer to big-endian bytes (len <= 8). */
void dj_be_put(uint64_t v, uint8_t *out, size_t len);

#endif /* DJ_COMMON_DJ_HEX_H */
