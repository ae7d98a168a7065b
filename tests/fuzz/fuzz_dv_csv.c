/*
 * fuzz_dv_csv.c - libFuzzer target: the enrollment CSV parser. Invariant: no crash or
 * sanitizer report, and an accepted file yields rows with valid versions.
 */
#include <stdint.h>
#include <stdlib.h>

#include "common/dj_err.h"
#include "ownership/dv_csv.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct dv_csv *csv = NULL;
	char err[DV_CSV_ERR_MAX];

	if (dv_csv_parse("fuzz.csv", (const char *)data, size, &csv, err, sizeof(err)) == DJ_EOK) {
		for (size_t i = 0; i < csv->n; i++)
			if (csv->rows[i].mac_version > LW_V1_1 ||
			    csv->rows[i].has_nwk_key != (csv->rows[i].mac_version == LW_V1_1))
				abort();
	}
	dv_csv_free(csv);
	return 0;
}
