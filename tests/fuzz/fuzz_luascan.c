/* fuzz_luascan.c — the static scanner of test files (luascan_buffer,
 * src/host/luascan.c) on any bytes; results freed on success and on
 * error alike. */
#include <stdint.h>

#include "luascan.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n)
{
	struct luascan_result r = { 0 };
	char err[256];

	luascan_buffer((const char *)data, n, &r, err, sizeof err);
	luascan_free(&r);
	return 0;
}
