/* fuzz_agent_server.c — the in-guest agent's input parsing against a
 * hostile host: src/agent/server.c parse_input (framing, resync on a
 * Hello, over-size lengths), handle_frame and handle_hello, through
 * agent_fuzz_input (compiled only with -DPROVIUM_FUZZ: ops are never run,
 * replies go nowhere). The last input byte chooses where the input is cut
 * into reads. */
#include <stddef.h>
#include <stdint.h>

int agent_fuzz_input(const unsigned char *data, size_t n, int split);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n)
{
	if (n == 0)
		return 0;
	agent_fuzz_input(data, n - 1, data[n - 1]);
	return 0;
}
