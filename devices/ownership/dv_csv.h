/*
 * dv_csv.h - the CSV enrollment format: one device per row, with its root keys.
 *
 * SYNOPSIS
 *	struct dv_csv *csv;
 *	char err[DV_CSV_ERR_MAX];
 *	if (dv_csv_parse_file("devices.csv", &csv, err, sizeof(err)) != DJ_EOK)
 *		fprintf(stderr, "%s\n", err);	// "devices.csv:17: field app_key: ..."
 *	...
 *	dv_csv_free(csv);			// wipes the raw keys
 *
 * DESCRIPTION
 *	The first line is exactly the header
 *
 *		dev_eui,join_eui,mac_version,app_key,nwk_key
 *
 *	and each following line one device: DevEUI and JoinEUI as 16 hex digits, the LoRaWAN
 *	version as lw_version_parse() accepts ("1.0", "1.0.0" .. "1.0.4", "1.1", "1.1.0"), AppKey as
 *	32 hex digits, and NwkKey as 32 hex digits for LoRaWAN 1.1 and empty for 1.0.x (a 1.0.x
 *	device has one root key, TS001-1.0.4 §6.2.2). Hex may carry a 0x prefix, in either case.
 *
 *	Lines may end in CRLF; the file may start with a UTF-8 BOM and end with blank lines. There
 *	is no quoting: a field holding a quote, a row with more or fewer than five fields, a blank
 *	line between rows and a DevEUI listed twice are errors. The whole file is checked before
 *	anything is returned, and the first error (in file order) is reported with its line number
 *	and field, never with the value of a key.
 *
 *	The header may instead be DV_CSV_HEADER_ATTRS: five more columns (model, firmware,
 *	manufacturer, date as YYYY-MM-DD, identity_sha256 as 64 hex digits), each may be empty;
 *	values are printable ASCII without '"', '\\', ',' or ';', at most 64 characters.
 *
 *	The rows hold raw root keys; the read buffer is wiped as soon as it is parsed, and
 *	dv_csv_free() wipes the rows (OPENSSL_cleanse).
 */
#ifndef DJ_DEVICES_DV_CSV_H
#define DJ_DEVICES_DV_CSV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/dj_compiler.h"
#include "lorawan/lw_crypto.h"
#include "lorawan/lw_frame.h"

#define DV_CSV_HEADER "dev_eui,join_eui,mac_version,app_key,nwk_key"
#define DV_CSV_FIELDS 5
/* The enrollment form (danejoin-devices enroll): the same columns, then the attributes that
 * are published in the device's TXT record (docs/dns-records.md). Each may be empty. */
#define DV_CSV_HEADER_ATTRS DV_CSV_HEADER ",model,firmware,manufacturer,date,identity_sha256"
#define DV_CSV_FIELDS_ATTRS 10
#define DV_CSV_ATTR_MAX 64		/* characters per attribute (DV_ATTR_VALUE_MAX) */
#define DV_CSV_ERR_MAX 512		/* room for any message the parser writes */
#define DV_CSV_MAX_BYTES (256u << 20)	/* refuse files larger than this (256 MiB) */

struct dv_csv_row {
	unsigned line;			/* 1-based line number in the file */
	uint8_t dev_eui[LW_EUI_LEN];
	uint8_t join_eui[LW_EUI_LEN];
	enum lw_version mac_version;
	uint8_t app_key[LW_KEY_LEN];
	bool has_nwk_key;		/* true exactly for LoRaWAN 1.1 */
	uint8_t nwk_key[LW_KEY_LEN];
	/* DV_CSV_HEADER_ATTRS files only ("" when empty or absent) */
	char model[DV_CSV_ATTR_MAX + 1];
	char firmware[DV_CSV_ATTR_MAX + 1];
	char manufacturer[DV_CSV_ATTR_MAX + 1];
	char date[11];			/* YYYY-MM-DD */
	bool has_identity;
	uint8_t identity[32];		/* SHA-256 of the device's SPKI (TLSA 3 1 1) */
};

struct dv_csv {
	size_t n;
	bool has_attrs;			/* the file has the DV_CSV_HEADER_ATTRS header */
	struct dv_csv_row *rows;	/* in file order */
};

/*!
 * \brief Parse an enrollment file held in memory.
 * \param name  the name used in error messages (borrowed).
 * \param buf   the file's bytes (borrowed; not modified; the caller wipes it).
 * \param out   receives the parsed file on success only; free with dv_csv_free().
 * \param err   receives "NAME:LINE: field F: what is wrong" (or "NAME:LINE: what is wrong") on
 *              DJ_EMALFORMED; may be NULL.
 * \retval DJ_EOK
 * \retval DJ_EMALFORMED  the file is not a valid enrollment file; nothing is returned
 * \retval DJ_ENOMEM
 */
int dv_csv_parse(const char *name, const char *buf, size_t len, struct dv_csv **out, char *err,
		 size_t errlen) DJ_MUSTCHECK;

/*!
 * \brief Read and parse an enrollment file (\p path is also the name in messages).
 * \retval DJ_EOK, DJ_EMALFORMED, DJ_ENOMEM, DJ_ENOENT, DJ_EACCES, DJ_EIO (file cannot be read;
 *         \p err says so), DJ_ERANGE (larger than DV_CSV_MAX_BYTES)
 */
int dv_csv_parse_file(const char *path, struct dv_csv **out, char *err, size_t errlen) DJ_MUSTCHECK;

/*! \brief Wipe the keys and free (NULL is accepted). */
void dv_csv_free(struct dv_csv *csv);

#endif /* DJ_DEVICES_DV_CSV_H */
