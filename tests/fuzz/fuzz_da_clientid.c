/*
 * fuzz_da_clientid.c - libFuzzer target: the dane_clientid extension data from a ClientHello
 * (da_clientid_decode) and identity names (da_name_normalize).
 * Invariants: no crash or sanitizer report; a decoded name is normalised (lower case, LDH and
 * '_' labels, <= 253 characters) and encodes back to the same wire bytes up to case.
 */
#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "backend-auth/da_tls.h"
#include "common/dj_err.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char name[DA_NAME_MAX], norm[DA_NAME_MAX], why[DA_WHY_MAX], text[300];
	unsigned char wire[300];
	size_t len = 0;

	if (da_clientid_decode(data, size, name, sizeof(name), why, sizeof(why)) == DJ_EOK) {
		if (strlen(name) > 253 || da_name_normalize(name, norm, sizeof(norm), why,
							     sizeof(why)) != DJ_EOK ||
		    strcmp(name, norm) != 0)
			abort();
		if (da_clientid_encode(name, wire, sizeof(wire), &len) != DJ_EOK || len != size)
			abort();
		for (size_t i = 0; i < len; i++)
			if (tolower(wire[i]) != tolower(data[i]))
				abort();
	}
	if (size < sizeof(text)) {
		memcpy(text, data, size);
		text[size] = '\0';
		if (da_name_normalize(text, norm, sizeof(norm), why, sizeof(why)) == DJ_EOK &&
		    (strlen(norm) > 253 || strncasecmp(norm, text, strlen(norm)) != 0))
			abort();
	}
	return 0;
}
