/*
 * fuzz_da_answer.c - libFuzzer target: DNS answers as libunbound hands them over
 * (da__answer_from_packet, through ldns) for TLSA, NAPTR, SRV, A and AAAA, and TLSA rdata
 * (da_tlsa_parse). The first input byte picks the type and the security bit.
 * Invariants: no crash or sanitizer report; an insecure answer is never DA_SECURE; a secure
 * TLSA verdict holds only usable records (usage 2 or 3).
 */
#include <stdint.h>
#include <stdlib.h>

#include "backend-auth/da_internal.h"
#include "common/dj_err.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint16_t types[] = { 52, 35, 33, 1, 28 }; /* TLSA NAPTR SRV A AAAA */
	struct da_answer *a = NULL;
	struct da_tlsa t;
	uint16_t type;
	int sec;

	if (size < 1)
		return 0;
	type = types[data[0] % 5];
	sec = (data[0] >> 4) & 1;
	if (da__answer_from_packet(type, 0, data + 1, size - 1, sec, NULL, 60, &a) == DJ_EOK) {
		if (!sec && a->status == DA_SECURE)
			abort();
		for (size_t i = 0; type == DA_T_TLSA && a->status == DA_SECURE && i < a->n; i++)
			if (a->tlsa[i].usage != DJ_TLSA_USAGE_DANE_TA &&
			    a->tlsa[i].usage != DJ_TLSA_USAGE_DANE_EE)
				abort();
		da__answer_unref(a);
	}
	if (da_tlsa_parse(data + 1, size - 1, &t) == DJ_EOK && t.data + t.len > data + size)
		abort();
	return 0;
}
