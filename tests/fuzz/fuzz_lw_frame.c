/*
 * fuzz_lw_frame.c - libFuzzer target: LoRaWAN frame parsing (requests and Join-accepts).
 * Invariants: no crash or sanitizer report; a parsed request re-serializes to the same bytes
 * except the MIC (recomputed) and MHDR's RFU bits 4..2 (ignored on receipt, zero when built;
 * the MIC is always checked over the bytes as received).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/dj_err.h"
#include "lorawan/lw_frame.h"

#define MHDR_NOT_RFU 0xe3	/* MType (7..5) and Major (1..0); bits 4..2 are RFU */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct lw_crypto *cx;
	static const uint8_t raw[LW_KEY_LEN] = { 1, 2, 3 };
	struct lw_request req, again;
	struct lw_accept ja;
	enum lw_frame_status st;
	uint8_t mic[LW_MIC_LEN];
	struct lw_key k;

	if (cx == NULL && lw_crypto_new(&cx) != DJ_EOK)
		abort();
	lw_key_set(&k, raw);
	if (lw_frame_parse_request(data, size, &req) == LW_FRAME_OK) {
		again = req;
		if (lw_frame_build_request(cx, &k, &again) != DJ_EOK || again.phy_len != size ||
		    again.phy[0] != (data[0] & MHDR_NOT_RFU) ||
		    memcmp(again.phy + 1, data + 1, size - 1 - LW_MIC_LEN) != 0)
			abort();
	}
	if (lw_frame_open_accept(cx, &k, data, size, &ja, mic, &st) != DJ_EOK)
		ja.has_cflist = false;	/* refused: what matters is that it returned */
	lw_crypto_forget(cx);
	return 0;
}
