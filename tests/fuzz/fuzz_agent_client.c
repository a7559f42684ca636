/* fuzz_agent_client.c — the host end of the agent channel against a
 * hostile guest: src/host/frame.c's reader and agent_client.c's dispatch
 * (OpResult, StreamData, StreamEnd, HelloOk, the channel table and its
 * cap), through agent_client_from_fd on a socketpair.
 *
 * The fuzz bytes are what the guest writes. They are pushed from the peer
 * end (non-blocking, interleaved with agent_client_drain, so a flood
 * larger than the socket buffer gets through), then: a Ping is sent and
 * waited for (id 1: the input may hold its OpResult), the channel named by
 * the first input byte is read, the peer closes, and everything left is
 * drained. Every wait has a zero timeout: an input can never hang it. */
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fuzz_common.h"
#include "vmm/agent_client.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n)
{
	int sv[2];
	struct agent_client *c;
	struct agent_reply reply = { 0 };
	struct agent_chunk ch = { 0 };
	char err[512];
	size_t at = 0;
	uint64_t id = 0;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		abort();
	c = agent_client_from_fd("fuzz", sv[0]);
	if (!c)
		abort();
	fuzz_nonblock(sv[1]);
	for (int spins = 0; at < n && spins < 100000; spins++) {
		fuzz_push(sv[1], data, n, &at);
		if (agent_client_drain(c, err, sizeof err) < 0)
			break;
	}
	if (agent_send(c, PROTO_K_PING, 0, NULL, NULL, 0, &id, err, sizeof err) == 0)
		agent_wait(c, id, 0, &reply, err, sizeof err);
	agent_reply_free(&reply);
	if (agent_stream_next(c, n ? data[0] : 1, 0, &ch, err, sizeof err) == 1)
		free(ch.data);
	close(sv[1]);
	agent_client_drain(c, err, sizeof err);
	(void)agent_client_pending(c);
	agent_client_describe_pending(c, err, sizeof err);
	agent_client_free(c);
	return 0;
}
