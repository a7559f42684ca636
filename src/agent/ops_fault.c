/* ops_fault.c — the `_fault_frame` test hook: the agent answers a
 * FAULT_FRAME request with hostile bytes on its port instead of an
 * OpResult, so the host's handling of a bad frame (agent_client.c: the
 * connection breaks with an error naming the cause, only that VM ends)
 * is tested end to end on a real guest. Only `vm:_fault_frame(mode)`
 * (docs/internals.md, internal test methods) sends the request.
 *
 * Modes (the request's "mode" string):
 *   oversized  a frame header declaring PROTO_FRAME_MAX + 1 bytes
 *   truncated  a whole frame whose body is a msgpack map cut short
 *   array32    an OpResult for the request whose value is an array32
 *              declaring 2^32-1 elements and holding none
 *   streamend  StreamEnd frames for 9000 distinct channels (more than the
 *              host keeps state for at once)
 * An unknown mode is an ordinary bad_request reply. */
#include "agent/agent.h"

#include <stdlib.h>
#include <string.h>

#define FLOOD_CHANNELS 9000

static void put_u32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)(v >> 24);
	p[1] = (unsigned char)(v >> 16);
	p[2] = (unsigned char)(v >> 8);
	p[3] = (unsigned char)v;
}

/* Queue sb's bytes behind a length header. */
static int send_framed(const msgpack_sbuffer *sb)
{
	unsigned char h[4];

	put_u32(h, (uint32_t)sb->size);
	if (server_send_raw(h, 4) < 0)
		return -1;
	return server_send_raw(sb->data, sb->size);
}

static int fault_array32(uint64_t id)
{
	static const unsigned char huge[] = { 0xdd, 0xff, 0xff, 0xff, 0xff };
	msgpack_sbuffer sb;
	msgpack_packer pk;
	int rc;

	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	proto_pack_ok_head(&pk, id);
	msgpack_sbuffer_write(&sb, (const char *)huge, sizeof huge);
	rc = send_framed(&sb);
	msgpack_sbuffer_destroy(&sb);
	return rc;
}

static int fault_streamend(void)
{
	msgpack_sbuffer sb;
	msgpack_packer pk;
	int rc = 0;

	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	for (uint64_t ch = 1; rc == 0 && ch <= FLOOD_CHANNELS; ch++) {
		sb.size = 0;
		msgpack_pack_map(&pk, 2);
		proto_pack_key(&pk, PROTO_F_KIND);
		msgpack_pack_int(&pk, PROTO_K_STREAM_END);
		proto_pack_key(&pk, PROTO_F_CHANNEL);
		/* never a real channel: worker slot 2^24 - 1 is never reached */
		msgpack_pack_uint64(&pk, (0xffffffull << 40) + ch);
		rc = send_framed(&sb);
	}
	msgpack_sbuffer_destroy(&sb);
	return rc;
}

void op_fault_frame(uint64_t id, const msgpack_object *req)
{
	struct proto_fault q;
	char *mode;
	unsigned char b[16];
	int rc;

	if (req_decode(id, req, &proto_m_fault, &q) < 0 ||
	    !(mode = req_str(id, q.mode, "fault_frame: mode (string) required")))
		return;
	agent_log("fault_frame: sending a hostile `%s` frame (test hook)", mode);
	if (!strcmp(mode, "oversized")) {
		put_u32(b, PROTO_FRAME_MAX + 1);
		rc = server_send_raw(b, 4);
	} else if (!strcmp(mode, "truncated")) {
		/* {"kind": 2.. : a map of 2 pairs, the first key cut short */
		static const unsigned char body[] = { 0x82, 0xa4, 'k', 'i' };
		put_u32(b, sizeof body);
		memcpy(b + 4, body, sizeof body);
		rc = server_send_raw(b, 4 + sizeof body);
	} else if (!strcmp(mode, "array32")) {
		rc = fault_array32(id);
	} else if (!strcmp(mode, "streamend")) {
		rc = fault_streamend();
	} else {
		reply_bad(id, "fault_frame: unknown mode (oversized, truncated, array32, streamend)");
		free(mode);
		return;
	}
	if (rc < 0)
		agent_log("fault_frame: out of memory queueing the frame");
	free(mode);
}
