/*
 * fuzz_bi_msg.c - libFuzzer target: the TS002 JSON parser. Invariants: no crash or sanitizer
 * report; whatever parses encodes, and the encoding parses again to the same message.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bi/bi_msg.h"
#include "common/dj_err.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct bi_msg m, m2;
	char err[BI_ERR_MAX], *json = NULL;
	size_t len = 0;

	if (bi_msg_parse((const char *)data, size, &m, err, sizeof(err)) != DJ_EOK)
		return 0;
	if (bi_msg_encode(&m, &json, &len) != DJ_EOK)
		return 0;	/* a parsed field outside encodable range is refused, not a bug */
	if (bi_msg_parse(json, len, &m2, err, sizeof(err)) != DJ_EOK || m2.type != m.type ||
	    m2.transaction_id != m.transaction_id || m2.result != m.result)
		abort();
	free(json);
	bi_msg_wipe(&m);
	bi_msg_wipe(&m2);
	return 0;
}
