/*
 * test_dv_csv.c - the CSV enrollment parser: good files, and a table of bad ones, each of
 * which must be refused with the right line and field and without echoing a key.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/dj_err.h"
#include "ownership/dv_csv.h"
#include "dj_test.h"

#define HDR DV_CSV_HEADER "\n"
#define DEV1 "0102030405060708"
#define DEV2 "0102030405060709"
#define JOIN "70b3d57ed0000001"
#define KEY_A "2b7e151628aed2a6abf7158809cf4f3c"
#define KEY_B "000102030405060708090a0b0c0d0e0f"

/* parse_text - parse a NUL-terminated CSV text */
static int parse_text(const char *text, struct dv_csv **out, char *err, size_t errlen)
{
	return dv_csv_parse("devices.csv", text, strlen(text), out, err, errlen);
}

/* test_good - every version, both key layouts, hex prefixes and case */
static void test_good(void **state)
{
	static const char text[] = HDR
		DEV1 "," JOIN ",1.0.2," KEY_A ",\n"
		"0X0102030405060709,0x70B3D57ED0000001,1.0.3," KEY_A ",\n"
		"010203040506070a," JOIN ",1.0.4,0x" KEY_A ",\n"
		"010203040506070b," JOIN ",1.1," KEY_A "," KEY_B "\n"
		"010203040506070c," JOIN ",1.0,2B7E151628AED2A6ABF7158809CF4F3C,\n";
	struct dv_csv *csv = NULL;
	char err[DV_CSV_ERR_MAX];

	(void)state;
	assert_int_equal(parse_text(text, &csv, err, sizeof(err)), DJ_EOK);
	assert_non_null(csv);
	assert_int_equal(csv->n, 5);
	assert_int_equal(csv->rows[0].line, 2);
	assert_int_equal(csv->rows[0].mac_version, LW_V1_0_2);
	assert_int_equal(csv->rows[0].dev_eui[0], 0x01);
	assert_int_equal(csv->rows[0].dev_eui[7], 0x08);
	assert_int_equal(csv->rows[0].join_eui[0], 0x70);
	assert_int_equal(csv->rows[0].app_key[0], 0x2b);
	assert_int_equal(csv->rows[0].app_key[15], 0x3c);
	assert_false(csv->rows[0].has_nwk_key);
	assert_int_equal(csv->rows[1].mac_version, LW_V1_0_3);
	assert_int_equal(csv->rows[1].dev_eui[7], 0x09);
	assert_int_equal(csv->rows[2].mac_version, LW_V1_0_4);
	assert_int_equal(csv->rows[3].mac_version, LW_V1_1);
	assert_true(csv->rows[3].has_nwk_key);
	assert_int_equal(csv->rows[3].nwk_key[15], 0x0f);
	assert_int_equal(csv->rows[4].mac_version, LW_V1_0_0);
	assert_int_equal(csv->rows[4].line, 6);
	dv_csv_free(csv);
}

/* test_bom_crlf_trailing_blank - BOM, CRLF line ends and blank lines at the end are accepted */
static void test_bom_crlf_trailing_blank(void **state)
{
	static const char text[] = "\xef\xbb\xbf" DV_CSV_HEADER "\r\n"
		DEV1 "," JOIN ",1.1.0," KEY_A "," KEY_B "\r\n"
		DEV2 "," JOIN ",1.0.1," KEY_A ",\r\n"
		"\r\n\n   \n";
	struct dv_csv *csv = NULL;
	char err[DV_CSV_ERR_MAX];

	(void)state;
	assert_int_equal(parse_text(text, &csv, err, sizeof(err)), DJ_EOK);
	assert_int_equal(csv->n, 2);
	assert_int_equal(csv->rows[0].mac_version, LW_V1_1);
	assert_int_equal(csv->rows[1].mac_version, LW_V1_0_1);
	dv_csv_free(csv);
	/* no final newline */
	assert_int_equal(parse_text(HDR DEV1 "," JOIN ",1.0.2," KEY_A ",", &csv, err,
				    sizeof(err)), DJ_EOK);
	assert_int_equal(csv->n, 1);
	dv_csv_free(csv);
}

struct bad_case {
	const char *text;
	const char *want;	/* the exact error message */
};

/* bad_cases - each must be refused with exactly this message */
static const struct bad_case bad_cases[] = {
	{ "", "devices.csv:1: empty file: expected the header \"" DV_CSV_HEADER "\"" },
	{ "dev_eui,join_eui,mac_version,app_key\n",
	  "devices.csv:1: the header must be exactly \"" DV_CSV_HEADER "\"" },
	{ "DEV_EUI,join_eui,mac_version,app_key,nwk_key\n",
	  "devices.csv:1: the header must be exactly \"" DV_CSV_HEADER "\"" },
	{ HDR, "devices.csv:1: no devices after the header" },
	{ HDR DEV1 "," JOIN ",1.0.2," KEY_A "\n",
	  "devices.csv:2: expected 5 fields (" DV_CSV_HEADER "), found 4" },
	{ HDR DEV1 "," JOIN ",1.0.2," KEY_A ",,\n",
	  "devices.csv:2: expected 5 fields (" DV_CSV_HEADER "), found 6" },
	{ HDR DEV1 "," JOIN ",1.0.2,\"" KEY_A "\",\n",
	  "devices.csv:2: field app_key: quotes are not supported" },
	{ HDR "010203040506070," JOIN ",1.0.2," KEY_A ",\n",
	  "devices.csv:2: field dev_eui: expected 16 hex digits" },
	{ HDR "01020304050607080," JOIN ",1.0.2," KEY_A ",\n",
	  "devices.csv:2: field dev_eui: expected 16 hex digits" },
	{ HDR " " DEV1 "," JOIN ",1.0.2," KEY_A ",\n",
	  "devices.csv:2: field dev_eui: expected 16 hex digits" },
	{ HDR DEV1 ",70b3d57ed000000g,1.0.2," KEY_A ",\n",
	  "devices.csv:2: field join_eui: expected 16 hex digits" },
	{ HDR DEV1 "," JOIN ",1.2," KEY_A ",\n",
	  "devices.csv:2: field mac_version: expected 1.0, 1.0.0 to 1.0.4, 1.1 or 1.1.0" },
	{ HDR DEV1 "," JOIN ",," KEY_A ",\n",
	  "devices.csv:2: field mac_version: expected 1.0, 1.0.0 to 1.0.4, 1.1 or 1.1.0" },
	{ HDR DEV1 "," JOIN ",1.0.2,2b7e151628aed2a6abf7158809cf4f3,\n",
	  "devices.csv:2: field app_key: expected 32 hex digits" },
	{ HDR DEV1 "," JOIN ",1.0.2," KEY_A KEY_A KEY_A ",\n",
	  "devices.csv:2: field app_key: expected 32 hex digits" },
	{ HDR DEV1 "," JOIN ",1.0.2,,\n", "devices.csv:2: field app_key: expected 32 hex digits" },
	{ HDR DEV1 "," JOIN ",1.0.2," KEY_A "," KEY_B "\n",
	  "devices.csv:2: field nwk_key: must be empty for LoRaWAN 1.0.x (AppKey is the only root "
	  "key)" },
	{ HDR DEV1 "," JOIN ",1.1," KEY_A ",\n",
	  "devices.csv:2: field nwk_key: required for LoRaWAN 1.1 (32 hex digits)" },
	{ HDR DEV1 "," JOIN ",1.1," KEY_A ",000102030405060708090a0b0c0d0e0z\n",
	  "devices.csv:2: field nwk_key: expected 32 hex digits" },
	/* the first error in file order wins: line 3 here, not the duplicate on line 4 */
	{ HDR DEV1 "," JOIN ",1.0.2," KEY_A ",\n" DEV2 "," JOIN ",1.0.2,xx,\n"
	  DEV1 "," JOIN ",1.0.2," KEY_A ",\n",
	  "devices.csv:3: field app_key: expected 32 hex digits" },
	{ HDR DEV1 "," JOIN ",1.0.2," KEY_A ",\n" DEV2 "," JOIN ",1.0.2," KEY_A ",\n"
	  "0x" DEV1 "," JOIN ",1.1," KEY_A "," KEY_B "\n" DEV2 "," JOIN ",1.0.2,xx,\n",
	  "devices.csv:4: field dev_eui: " DEV1 " is already on line 2" },
	{ HDR DEV1 "," JOIN ",1.0.2," KEY_A ",\n\n" DEV2 "," JOIN ",1.0.2," KEY_A ",\n",
	  "devices.csv:3: blank line between rows (only allowed at the end)" },
};

/* test_bad_table - every bad case gives its message, no result, and no key text */
static void test_bad_table(void **state)
{
	struct dv_csv *csv;
	char err[DV_CSV_ERR_MAX];
	size_t i;

	(void)state;
	for (i = 0; i < DJ_ARRAY_LEN(bad_cases); i++) {
		csv = (struct dv_csv *)(uintptr_t)1;	/* must be reset to NULL */
		memset(err, 0, sizeof(err));
		int rc = parse_text(bad_cases[i].text, &csv, err, sizeof(err));
		if (rc != DJ_EMALFORMED || strcmp(err, bad_cases[i].want) != 0)
			fail_msg("case %zu: rc %d, message \"%s\", want \"%s\"", i, rc, err,
				 bad_cases[i].want);
		assert_null(csv);
		assert_null(strstr(err, "2b7e1516"));
		assert_null(strstr(err, "00010203"));
	}
}

/* test_nul_byte - binary data is refused with its line */
static void test_nul_byte(void **state)
{
	static const char text[] = HDR DEV1 "," JOIN ",1.0.2," KEY_A ",\n" "\0" "x\n";
	struct dv_csv *csv;
	char err[DV_CSV_ERR_MAX];

	(void)state;
	assert_int_equal(dv_csv_parse("devices.csv", text, sizeof(text) - 1, &csv, err,
				      sizeof(err)), DJ_EMALFORMED);
	assert_string_equal(err, "devices.csv:3: NUL byte: not a text file");
	assert_null(csv);
}

/* test_file - read from a file; a missing file is DJ_ENOENT with a message */
static void test_file(void **state)
{
	const char *dir = getenv("DJ_TEST_TMPDIR");
	char path[512], err[DV_CSV_ERR_MAX];
	struct dv_csv *csv = NULL;
	FILE *f;

	(void)state;
	if (dir == NULL)
		dir = "/tmp";
	snprintf(path, sizeof(path), "%s/test_dv_csv.csv", dir);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(HDR DEV1 "," JOIN ",1.0.3," KEY_A ",\n"
	      DEV2 "," JOIN ",1.1," KEY_A "," KEY_B "\n", f);
	assert_int_equal(fclose(f), 0);
	assert_int_equal(dv_csv_parse_file(path, &csv, err, sizeof(err)), DJ_EOK);
	assert_int_equal(csv->n, 2);
	dv_csv_free(csv);
	unlink(path);

	assert_int_equal(dv_csv_parse_file(path, &csv, err, sizeof(err)), DJ_ENOENT);
	assert_null(csv);
	assert_non_null(strstr(err, "cannot open"));
	dv_csv_free(NULL);
}

DJ_TEST_MAIN(
	cmocka_unit_test(test_good),
	cmocka_unit_test(test_bom_crlf_trailing_blank),
	cmocka_unit_test(test_bad_table),
	cmocka_unit_test(test_nul_byte),
	cmocka_unit_test(test_file))
