/* fuzz_events.c — runner event frames (what --save-events writes and
 * the dispatcher reads from each runner): frame.c's reader and
 * dispatch.c's handle_frame decode (proto_msgpack_sane, kinds, test
 * outcomes, _test_log, open test/claim bookkeeping) then
 * close_open_events (the hostile-ts duration), through
 * dispatch_fuzz_events (compiled only with -DPROVIUM_FUZZ). The last
 * input byte chooses where the stream is cut into reads. */
#include <stddef.h>
#include <stdint.h>

int dispatch_fuzz_events(const unsigned char *data, size_t n, int split);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n)
{
	if (n == 0)
		return 0;
	dispatch_fuzz_events(data, n - 1, data[n - 1]);
	return 0;
}
