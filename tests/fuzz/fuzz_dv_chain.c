/*
 * fuzz_dv_chain.c - libFuzzer target: the ownership-chain decoder, as danejoind meets it in a
 * TXT record (base64 text) and as the registry stores it (protobuf bytes). The first byte picks
 * the form. Invariants: no crash or sanitizer report; a chain that decodes encodes again and
 * decodes to the same bytes (strict, canonical parsing); the append rule never accepts a link
 * into a full chain.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/dj_err.h"
#include "ownership/dv_chain.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* roundtrip - encode \p c and decode it again: the bytes must be stable */
static void roundtrip(const struct dv_chain *c)
{
	static struct dv_chain again;
	uint8_t *a = NULL, *b = NULL;
	size_t alen = 0, blen = 0;

	if (dv_chain_encode(c, &a, &alen) != DJ_EOK)
		return;
	if (dv_chain_decode(a, alen, &again) != DJ_EOK)
		abort();	/* what we wrote, we must read */
	if (dv_chain_encode(&again, &b, &blen) != DJ_EOK || blen != alen || memcmp(a, b, alen) != 0)
		abort();
	free(a);
	free(b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct dv_chain chain;	/* large: off the stack */
	uint8_t *bin = NULL;
	size_t len = 0;
	char why[128];

	if (size < 1)
		return 0;
	if (data[0] & 1) {
		if (dv_b64_decode((const char *)data + 1, size - 1, &bin, &len) != DJ_EOK)
			return 0;
	} else {
		bin = malloc(size - 1 + 1);
		if (bin == NULL)
			return 0;
		memcpy(bin, data + 1, size - 1);
		len = size - 1;
	}
	if (dv_chain_decode(bin, len, &chain) == DJ_EOK) {
		if (chain.n > DV_CHAIN_MAX)
			abort();
		roundtrip(&chain);
		if (chain.n > 0 && chain.n == DV_CHAIN_MAX &&
		    dv_chain_may_append(&chain, &chain.links[chain.n - 1], why, sizeof(why)))
			abort();
	}
	free(bin);
	return 0;
}
