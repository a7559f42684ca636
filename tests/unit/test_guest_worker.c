/* test_guest_worker.c — the host end of workers, read_mem and the
 * pipelined syscall (guest_worker.c, agent_client_route), against a fake
 * agent on a socketpair.
 *
 * Pins: a routed request carries "worker" and an unrouted one does not;
 * worker_* ops are never routed; the decoding of worker_spawn /
 * worker_join / read_mem replies (a guest errno is -1 with errno and
 * guest_errno set); worker handles chosen by the host (sent in the spawn,
 * the next one tried on EEXIST, an agent answering with another handle
 * refused); syscall_begin/finish matching replies that arrive out of
 * order; the hint on a protocol-version HelloErr. The agent side runs
 * on a real guest in tests/vm/workers.test.lua. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "frame.h"
#include "proto/protocol.h"
#include "vmm/agent_client.h"
#include "vmm/guest_ops.h"

static int peer;                    /* the fake agent's end */
static uint64_t last_handle;        /* "handle" of the last request taken, 0 = none */
static struct agent_client *client;

static struct agent_client *fake_agent_of(struct vmm_vm *vm)
{
	(void)vm;
	return client;
}

static const struct vmm_ops fake_ops = { .agent = fake_agent_of };

static int setup(void **st)
{
	int sv[2];
	(void)st;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return -1;
	client = agent_client_from_fd("fake", sv[0]);
	peer = sv[1];
	return client ? 0 : -1;
}

static int teardown(void **st)
{
	(void)st;
	agent_client_free(client);
	close(peer);
	return 0;
}

/* Read one request the host sent (it is already in the socket: agent_send
 * wrote it). Returns its id; kind and worker (0 = absent) as seen. */
static uint64_t take_request(int64_t *kind, uint64_t *worker)
{
	unsigned char hdr[4], *body;
	uint32_t n;
	size_t off = 0;
	uint64_t id = 0;
	msgpack_unpacked u;

	assert_int_equal(read(peer, hdr, 4), 4);
	n = (uint32_t)hdr[0] << 24 | (uint32_t)hdr[1] << 16 | (uint32_t)hdr[2] << 8 | hdr[3];
	body = malloc(n);
	assert_non_null(body);
	while (off < n) {
		ssize_t got = read(peer, body + off, n - off);
		assert_true(got > 0);
		off += (size_t)got;
	}
	msgpack_unpacked_init(&u);
	assert_int_equal(msgpack_unpack_next(&u, (const char *)body, n, NULL), MSGPACK_UNPACK_SUCCESS);
	proto_get_uint(&u.data, PROTO_F_ID, &id);
	*kind = 0;
	proto_get_int(&u.data, PROTO_F_KIND, kind);
	*worker = 0;
	proto_get_uint(&u.data, PROTO_F_WORKER, worker);
	last_handle = 0;
	proto_get_uint(&u.data, "handle", &last_handle);
	msgpack_unpacked_destroy(&u);
	free(body);
	return id;
}

static void send_msg(msgpack_sbuffer *sb)
{
	assert_int_equal(frame_write(peer, sb->data, sb->size), 0);
	msgpack_sbuffer_destroy(sb);
}

/* {ret, errno} answer for id. */
static void answer_syscall(uint64_t id, int64_t ret)
{
	msgpack_sbuffer sb;
	msgpack_packer pk;
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	proto_pack_ok_head(&pk, id);
	msgpack_pack_map(&pk, 2);
	proto_pack_key(&pk, "ret");
	msgpack_pack_int64(&pk, ret);
	proto_pack_key(&pk, PROTO_F_ERRNO);
	msgpack_pack_int(&pk, 0);
	send_msg(&sb);
}

static void routing(void **st)
{
	struct guest_syscall s = {.nr = 39};
	uint64_t id, a, b, w;
	int64_t kind;
	char err[256];
	(void)st;

	assert_int_equal(guest_route(&fake_ops, NULL, 7), 0);
	assert_int_equal(guest_syscall_begin(&fake_ops, NULL, &s, &a, err, sizeof err), 0);
	id = take_request(&kind, &w);
	assert_int_equal(id, a);
	assert_int_equal(kind, PROTO_K_SYSCALL);
	assert_int_equal(w, 7);
	/* back to the agent itself: no worker field */
	assert_int_equal(guest_route(&fake_ops, NULL, 0), 7);
	assert_int_equal(guest_syscall_begin(&fake_ops, NULL, &s, &b, err, sizeof err), 0);
	take_request(&kind, &w);
	assert_int_equal(w, 0);
	/* replies out of order: each finish gets its own */
	answer_syscall(b, 222);
	answer_syscall(a, 111);
	struct guest_syscall_result r;
	assert_int_equal(guest_syscall_finish(&fake_ops, NULL, a, 0, 1000, &r, err, sizeof err), 0);
	assert_int_equal(r.ret, 111);
	guest_syscall_result_free(&r);
	assert_int_equal(guest_syscall_finish(&fake_ops, NULL, b, 0, 1000, &r, err, sizeof err), 0);
	assert_int_equal(r.ret, 222);
	guest_syscall_result_free(&r);
	/* an id awaited twice is an error, not a hang */
	assert_int_equal(guest_syscall_finish(&fake_ops, NULL, a, 0, 1000, &r, err, sizeof err), -1);
	assert_non_null(strstr(err, "no outstanding request"));
}

static void spawn_join_kill(void **st)
{
	msgpack_sbuffer sb;
	msgpack_packer pk;
	uint64_t id, w, h = 0;
	int64_t kind, pid = 0;
	int status = 99, sig = 99;
	char err[256];
	(void)st;

	guest_route(&fake_ops, NULL, 3);        /* worker ops ignore a route */
	/* The handle is the host's choice: a fake agent in a child answers
	 * the first spawn request EEXIST (in use), the second ok with the
	 * handle it was sent, if it differs from the first. */
	pid_t child = fork();
	assert_true(child >= 0);
	if (child == 0) {
		uint64_t first, rid;
		rid = take_request(&kind, &w);
		first = last_handle;
		msgpack_sbuffer_init(&sb);
		msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
		proto_pack_err(&pk, rid, "EEXIST", "worker already exists", EEXIST);
		send_msg(&sb);
		rid = take_request(&kind, &w);
		msgpack_sbuffer_init(&sb);
		msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
		proto_pack_ok_head(&pk, rid);
		msgpack_pack_map(&pk, 2);
		proto_pack_key(&pk, "handle");
		msgpack_pack_uint64(&pk, first && last_handle != first ? last_handle : 5);
		proto_pack_key(&pk, "pid");
		msgpack_pack_int(&pk, kind == PROTO_K_WORKER_SPAWN && w == 0 ? 321 : 0);
		send_msg(&sb);
		_exit(0);
	}
	assert_int_equal(guest_worker_spawn(&fake_ops, NULL, &h, &pid, err, sizeof err), 0);
	assert_int_equal(waitpid(child, NULL, 0), child);
	assert_true(h >> 24 != 0);              /* the random prefix */
	assert_int_equal(pid, 321);

	/* The next spawn sends the next handle; an agent answering with a
	 * handle of its own (a kit from before) is refused. */
	uint64_t h1 = h;
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	proto_pack_ok_head(&pk, 3);
	msgpack_pack_map(&pk, 2);
	proto_pack_key(&pk, "handle");
	msgpack_pack_uint64(&pk, 5);
	proto_pack_key(&pk, "pid");
	msgpack_pack_int(&pk, 321);
	send_msg(&sb);
	assert_int_equal(guest_worker_spawn(&fake_ops, NULL, &h, &pid, err, sizeof err), -1);
	assert_non_null(strstr(err, "rebuild the kit"));
	id = take_request(&kind, &w);
	assert_int_equal(id, 3);
	assert_int_equal(kind, PROTO_K_WORKER_SPAWN);
	assert_int_equal(w, 0);
	assert_int_equal(last_handle, h1 + 1);

	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	proto_pack_ok_head(&pk, 4);
	msgpack_pack_map(&pk, 2);
	proto_pack_key(&pk, "status");
	msgpack_pack_int(&pk, -1);
	proto_pack_key(&pk, "signal");
	msgpack_pack_int(&pk, 9);
	send_msg(&sb);
	assert_int_equal(guest_worker_join(&fake_ops, NULL, 5, 100, &status, &sig, err, sizeof err), 0);
	take_request(&kind, &w);
	assert_int_equal(kind, PROTO_K_WORKER_JOIN);
	assert_int_equal(w, 0);
	assert_int_equal(status, -1);
	assert_int_equal(sig, 9);

	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	proto_pack_err(&pk, 5, PROTO_ERR_NO_HANDLE, "unknown worker 5", 0);
	send_msg(&sb);
	assert_int_equal(guest_worker_kill(&fake_ops, NULL, 5, 15, err, sizeof err), -1);
	assert_non_null(strstr(err, "unknown worker 5"));
	/* the route set before survives the worker ops */
	assert_int_equal(guest_route(&fake_ops, NULL, 0), 3);
}

static void read_mem(void **st)
{
	msgpack_sbuffer sb;
	msgpack_packer pk;
	char *data = NULL, err[256];
	int gerr = -1;
	uint64_t w;
	int64_t kind;
	(void)st;

	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	proto_pack_ok_head(&pk, 1);
	proto_pack_bytes(&pk, "abcd", 4);
	send_msg(&sb);
	assert_int_equal(guest_read_mem(&fake_ops, NULL, 0x1000, 4, &data, &gerr, err, sizeof err), 0);
	take_request(&kind, &w);
	assert_int_equal(kind, PROTO_K_READ_MEM);
	assert_memory_equal(data, "abcd", 4);
	assert_int_equal(gerr, 0);
	free(data);

	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	proto_pack_err(&pk, 2, "EIO", "Input/output error", EIO);
	send_msg(&sb);
	errno = 0;
	assert_int_equal(guest_read_mem(&fake_ops, NULL, 0, 8, &data, &gerr, err, sizeof err), -1);
	assert_int_equal(gerr, EIO);
	assert_int_equal(errno, EIO);
	assert_null(data);

	/* a reply of the wrong length is malformed, not trusted */
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	proto_pack_ok_head(&pk, 3);
	proto_pack_bytes(&pk, "ab", 2);
	send_msg(&sb);
	assert_int_equal(guest_read_mem(&fake_ops, NULL, 0, 8, &data, &gerr, err, sizeof err), -1);
	assert_non_null(strstr(err, "malformed read_mem reply"));
	assert_int_equal(gerr, 0);
}

static void old_agent_hint(void **st)
{
	msgpack_sbuffer sb;
	msgpack_packer pk;
	char err[512];
	(void)st;

	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	proto_pack_hello_err(&pk, "protocol version mismatch: host 4, agent 3");
	send_msg(&sb);
	assert_int_equal(agent_client_hello(client, INT64_MAX, NULL, err, sizeof err), -1);
	assert_non_null(strstr(err, "protocol version mismatch: host 4, agent 3"));
	assert_non_null(strstr(err, "make guest"));
}

static void no_agent(void **st)
{
	static const struct vmm_ops none = {0};
	struct guest_syscall s = {.nr = 39};
	uint64_t id, h;
	int64_t pid;
	char *data, err[64];
	int gerr;
	(void)st;
	assert_int_equal(guest_syscall_begin(&none, NULL, &s, &id, err, sizeof err), VMM_UNSUPPORTED);
	assert_int_equal(guest_worker_spawn(&none, NULL, &h, &pid, err, sizeof err), VMM_UNSUPPORTED);
	assert_int_equal(guest_read_mem(&none, NULL, 0, 1, &data, &gerr, err, sizeof err),
	                 VMM_UNSUPPORTED);
	assert_int_equal(guest_route(&none, NULL, 4), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(routing, setup, teardown),
		cmocka_unit_test_setup_teardown(spawn_join_kill, setup, teardown),
		cmocka_unit_test_setup_teardown(read_mem, setup, teardown),
		cmocka_unit_test_setup_teardown(old_agent_hint, setup, teardown),
		cmocka_unit_test(no_agent),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
