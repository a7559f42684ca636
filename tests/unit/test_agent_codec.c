/* test_agent_codec.c — the host's adapter over the shared codec
 * (vmm/agent_codec.c over proto/codec.c).
 *
 * Every request constructor is packed behind the real request head
 * (proto_pack_request_head with agent_req_nfields), run through the same
 * size pre-check the agent runs on a frame (proto_msgpack_sane: a wrong
 * nfields leaves a short or over-long map and fails it) and read back
 * field by field with protocol.h's plain getters (proto_get_uint for
 * handles, modes and timeouts, proto_get_int for signals and offsets,
 * ...): a check of the vmm -> wire mapping that does not go through the
 * codec's own tables (tests/unit/test_codec.c round-trips those). The
 * exec request has its bytes pinned (an old agent must read a new host's
 * request byte for byte), and the batch form must give the same bytes.
 * The reply decoders get values in the agent's shape and malformed ones;
 * single ops and batches decode with the same strictness. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/protocol.h"
#include "vmm/agent_codec.h"

/* ---- helpers ---------------------------------------------------------- */

struct msg {
	msgpack_sbuffer sb;
	msgpack_unpacked u;
	const msgpack_object *m;    /* the request map */
};

/* Pack {kind, id 7, r's fields}, size-check it as the agent does, unpack. */
static void pack_req(struct msg *g, int kind, struct agent_req *r)
{
	msgpack_packer pk;
	size_t off = 0;
	int64_t k;
	uint64_t id;
	msgpack_sbuffer_init(&g->sb);
	msgpack_packer_init(&pk, &g->sb, msgpack_sbuffer_write);
	proto_pack_request_head(&pk, kind, 7, agent_req_nfields(r));
	agent_req_build(&pk, r);
	assert_int_equal(proto_msgpack_sane(g->sb.data, g->sb.size), 0);
	msgpack_unpacked_init(&g->u);
	assert_int_equal(msgpack_unpack_next(&g->u, g->sb.data, g->sb.size, &off),
			 MSGPACK_UNPACK_SUCCESS);
	assert_int_equal(off, g->sb.size);
	g->m = &g->u.data;
	assert_int_equal(g->m->type, MSGPACK_OBJECT_MAP);
	assert_int_equal(proto_get_int(g->m, PROTO_F_KIND, &k), 0);
	assert_int_equal(k, kind);
	assert_int_equal(proto_get_uint(g->m, PROTO_F_ID, &id), 0);
	assert_int_equal(id, 7);
	assert_int_equal(g->m->via.map.size, 2 + agent_req_nfields(r));
}

static void msg_free(struct msg *g)
{
	msgpack_unpacked_destroy(&g->u);
	msgpack_sbuffer_destroy(&g->sb);
}

static void expect_str(const msgpack_object *m, const char *key, const char *want)
{
	const char *p;
	size_t n;
	assert_int_equal(proto_get_bytes(m, key, &p, &n), 0);
	assert_int_equal(n, strlen(want));
	assert_memory_equal(p, want, n);
}

static void expect_uint(const msgpack_object *m, const char *key, uint64_t want)
{
	uint64_t v;
	assert_int_equal(proto_get_uint(m, key, &v), 0);
	assert_int_equal(v, want);
}

static void expect_int(const msgpack_object *m, const char *key, int64_t want)
{
	int64_t v;
	assert_int_equal(proto_get_int(m, key, &v), 0);
	assert_int_equal(v, want);
}

static void expect_bool(const msgpack_object *m, const char *key, int want)
{
	int v;
	assert_int_equal(proto_get_bool(m, key, &v), 0);
	assert_int_equal(v, want);
}

static void expect_hex(const msgpack_sbuffer *sb, const char *want, size_t n)
{
	if (sb->size != n || memcmp(sb->data, want, n) != 0) {
		print_error("encoded %zu bytes:", sb->size);
		for (size_t i = 0; i < sb->size; i++)
			print_error(" %02x", (unsigned char)sb->data[i]);
		print_error("\n");
	}
	assert_int_equal(sb->size, n);
	assert_memory_equal(sb->data, want, n);
}

/* A reply value: unpack packed bytes (size-checked first, as
 * agent_client.c does for every frame). */
struct val {
	msgpack_sbuffer sb;
	msgpack_packer pk;
	msgpack_unpacked u;
};

static void val_begin(struct val *v)
{
	msgpack_sbuffer_init(&v->sb);
	msgpack_packer_init(&v->pk, &v->sb, msgpack_sbuffer_write);
}

static const msgpack_object *val_end(struct val *v)
{
	size_t off = 0;
	assert_int_equal(proto_msgpack_sane(v->sb.data, v->sb.size), 0);
	msgpack_unpacked_init(&v->u);
	assert_int_equal(msgpack_unpack_next(&v->u, v->sb.data, v->sb.size, &off),
			 MSGPACK_UNPACK_SUCCESS);
	return v->u.data.type == MSGPACK_OBJECT_NIL ? NULL : &v->u.data;
}

static void val_free(struct val *v)
{
	msgpack_unpacked_destroy(&v->u);
	msgpack_sbuffer_destroy(&v->sb);
}

/* ---- exec ------------------------------------------------------------- */

static const char *const ls_argv[] = { "ls", "-l", NULL };
static const char *const a_env[] = { "A=1", "B", NULL };

static void exec_bytes_pinned(void **st)
{
	struct vmm_exec_req x = { .argv = ls_argv, .env = a_env, .cwd = "/tmp",
		.stdin_data = "hi", .stdin_len = 2, .timeout_ns = 1500000000 };
	struct agent_req r;
	struct msg g;
	static const char want[] =
		"\x87"                                   /* map: kind, id + 5 */
		"\xa4kind" "\x64"                        /* 100 */
		"\xa2id" "\x07"
		"\xa4" "argv" "\x92" "\xa2ls" "\xa2-l"
		"\xa3" "env" "\x82" "\xa1" "A" "\xa1" "1" "\xa1" "B" "\xa0"
		"\xa3" "cwd" "\xa4/tmp"
		"\xa5" "stdin" "\xc4\x02" "hi"
		"\xaa" "timeout_ms" "\xcd\x05\xdc";      /* 1500 */
	(void)st;
	agent_req_exec(&r, &x, 1500);
	pack_req(&g, PROTO_K_EXEC, &r);
	expect_hex(&g.sb, want, sizeof want - 1);
	msg_free(&g);
}

/* The agent (ops_proc.c start/op_exec) reads argv as a non-empty array
 * of strings, env as a map, env_clear bool, cwd str, stdin bytes and
 * timeout_ms uint. */
static void exec_roundtrip(void **st)
{
	static const char *const none[] = { NULL };
	struct vmm_exec_req x = { .file = "/bin/ls", .argv = ls_argv, .env_clear = true };
	struct agent_req r;
	struct msg g;
	const msgpack_object *a, *env;
	(void)st;
	agent_req_exec(&r, &x, -1);
	pack_req(&g, PROTO_K_SPAWN, &r);
	a = proto_get(g.m, "argv");
	assert_non_null(a);
	assert_int_equal(a->type, MSGPACK_OBJECT_ARRAY);
	assert_int_equal(a->via.array.size, 2);
	assert_int_equal(a->via.array.ptr[0].via.str.size, 7);
	assert_memory_equal(a->via.array.ptr[0].via.str.ptr, "/bin/ls", 7);
	env = proto_get(g.m, "env");
	assert_non_null(env);                      /* {} with env_clear alone */
	assert_int_equal(env->type, MSGPACK_OBJECT_MAP);
	assert_int_equal(env->via.map.size, 0);
	expect_bool(g.m, "env_clear", 1);
	assert_null(proto_get(g.m, "timeout_ms"));
	assert_null(proto_get(g.m, "cwd"));
	assert_null(proto_get(g.m, "stdin"));
	msg_free(&g);

	/* An empty argv runs "true"; an empty env without env_clear is left out. */
	x = (struct vmm_exec_req){ .argv = none, .env = none, .stdin_data = "", .timeout_ns = -1 };
	agent_req_exec(&r, &x, 0);
	pack_req(&g, PROTO_K_EXEC, &r);
	a = proto_get(g.m, "argv");
	assert_int_equal(a->via.array.size, 1);
	assert_memory_equal(a->via.array.ptr[0].via.str.ptr, "true", 4);
	assert_null(proto_get(g.m, "env"));
	assert_null(proto_get(g.m, "env_clear"));
	expect_str(g.m, "stdin", "");
	expect_uint(g.m, "timeout_ms", 0);
	msg_free(&g);
}

/* The batch's exec goes through the same encoder: same bytes as a direct
 * exec with the rounded-up timeout; timeout_ns 0 is 1 ms (as in vm:run),
 * no timeout_ms only when timeout_ns < 0. */
static void exec_batch_same_bytes(void **st)
{
	struct guest_batch_op o = { .kind = GB_EXEC, .exec = { .argv = ls_argv, .env = a_env,
		.cwd = "/tmp", .stdin_data = "hi", .stdin_len = 2, .timeout_ns = 1499000001 } };
	struct agent_req r1, r2;
	struct msg g1, g2;
	(void)st;
	agent_req_exec(&r1, &o.exec, 1500);
	agent_req_batch_op(&r2, &o);
	assert_int_equal(agent_batch_kind(GB_EXEC), PROTO_K_EXEC);
	pack_req(&g1, PROTO_K_EXEC, &r1);
	pack_req(&g2, PROTO_K_EXEC, &r2);
	assert_int_equal(g1.sb.size, g2.sb.size);
	assert_memory_equal(g1.sb.data, g2.sb.data, g1.sb.size);
	msg_free(&g1);
	msg_free(&g2);

	o.exec.timeout_ns = 0;
	agent_req_batch_op(&r2, &o);
	pack_req(&g2, PROTO_K_EXEC, &r2);
	expect_uint(g2.m, "timeout_ms", 1);
	msg_free(&g2);
	o.exec.timeout_ns = -1;
	agent_req_batch_op(&r2, &o);
	pack_req(&g2, PROTO_K_EXEC, &r2);
	assert_null(proto_get(g2.m, "timeout_ms"));
	msg_free(&g2);

	/* one rule for both paths: < 0 none, else ceil(ms), at least 1 */
	assert_int_equal(agent_exec_timeout_ms(-1, INT32_MAX), -1);
	assert_int_equal(agent_exec_timeout_ms(0, INT32_MAX), 1);
	assert_int_equal(agent_exec_timeout_ms(1, INT32_MAX), 1);
	assert_int_equal(agent_exec_timeout_ms(1000000, INT32_MAX), 1);
	assert_int_equal(agent_exec_timeout_ms(1000001, INT32_MAX), 2);
	assert_int_equal(agent_exec_timeout_ms(INT64_MAX, 5000), 5000);
}

/* ---- files and handles ---------------------------------------------------- */

static void file_requests(void **st)
{
	struct agent_req r;
	struct msg g;
	(void)st;
	agent_req_path(&r, "/etc/x");
	pack_req(&g, PROTO_K_STAT, &r);
	expect_str(g.m, "path", "/etc/x");
	msg_free(&g);

	agent_req_write_file(&r, "/f", "abc", 3, false);
	pack_req(&g, PROTO_K_WRITE_FILE, &r);
	expect_str(g.m, "path", "/f");
	expect_str(g.m, PROTO_F_DATA, "abc");
	assert_null(proto_get(g.m, "append"));
	msg_free(&g);
	agent_req_write_file(&r, "/f", NULL, 0, true);
	pack_req(&g, PROTO_K_WRITE_FILE, &r);
	expect_str(g.m, PROTO_F_DATA, "");
	expect_bool(g.m, "append", 1);
	msg_free(&g);

	agent_req_mkdir(&r, "/d", true, 0700);
	pack_req(&g, PROTO_K_MKDIR, &r);
	expect_bool(g.m, "parents", 1);
	expect_uint(g.m, "perm", 0700);
	msg_free(&g);
	agent_req_mkdir(&r, "/d", false, -1);
	pack_req(&g, PROTO_K_MKDIR, &r);
	expect_bool(g.m, "parents", 0);
	assert_null(proto_get(g.m, "perm"));
	msg_free(&g);

	agent_req_rename(&r, "/a", "/b");
	pack_req(&g, PROTO_K_RENAME, &r);
	expect_str(g.m, "from", "/a");
	expect_str(g.m, "to", "/b");
	msg_free(&g);

	agent_req_file_open(&r, "/f", (int)(PROTO_OPEN_READ | PROTO_OPEN_CREATE) | 0x400, 0600);
	pack_req(&g, PROTO_K_FILE_OPEN, &r);
	expect_uint(g.m, "mode", PROTO_OPEN_READ | PROTO_OPEN_CREATE);
	expect_uint(g.m, "perm", 0600);
	msg_free(&g);

	agent_req_file_read(&r, 3, 4096);
	pack_req(&g, PROTO_K_FILE_READ, &r);
	expect_uint(g.m, "handle", 3);
	expect_uint(g.m, "n", 4096);
	msg_free(&g);

	agent_req_handle_data(&r, 4, "xy", 2);
	pack_req(&g, PROTO_K_FILE_WRITE, &r);
	expect_uint(g.m, "handle", 4);
	expect_str(g.m, PROTO_F_DATA, "xy");
	msg_free(&g);

	agent_req_file_seek(&r, 5, -10, VMM_SEEK_END);
	pack_req(&g, PROTO_K_FILE_SEEK, &r);
	expect_int(g.m, "offset", -10);
	expect_str(g.m, "whence", "end");
	msg_free(&g);

	agent_req_handle(&r, 6);
	pack_req(&g, PROTO_K_FILE_CLOSE, &r);
	expect_uint(g.m, "handle", 6);
	msg_free(&g);

	agent_req_clock_set(&r, -5);
	pack_req(&g, PROTO_K_CLOCK_SET, &r);
	expect_int(g.m, "ns", -5);
	msg_free(&g);

	agent_req_init(&r);
	pack_req(&g, PROTO_K_PING, &r);
	msg_free(&g);
}

static void proc_and_stream_requests(void **st)
{
	struct agent_req r;
	struct msg g;
	struct vmm_stream_req s = { .kind = VMM_STREAM_TAIL, .path = "/log", .start = VMM_TAIL_BEGINNING };
	(void)st;
	agent_req_proc_kill(&r, 9, 15);
	pack_req(&g, PROTO_K_PROC_KILL, &r);
	expect_uint(g.m, "handle", 9);
	expect_int(g.m, "signal", 15);
	msg_free(&g);

	agent_req_proc_stream(&r, 9, true);
	pack_req(&g, PROTO_K_PROC_STREAM, &r);
	expect_str(g.m, "which", "stderr");
	msg_free(&g);
	agent_req_proc_stream(&r, 9, false);
	pack_req(&g, PROTO_K_PROC_STREAM, &r);
	expect_str(g.m, "which", "stdout");
	msg_free(&g);

	agent_req_tail(&r, &s);
	pack_req(&g, PROTO_K_TAIL, &r);
	expect_str(g.m, "path", "/log");
	expect_str(g.m, "start", "beginning");
	msg_free(&g);
	s.start = VMM_TAIL_END;
	agent_req_tail(&r, &s);
	pack_req(&g, PROTO_K_TAIL, &r);
	expect_str(g.m, "start", "end");
	msg_free(&g);
	s.start = VMM_TAIL_OFFSET;
	s.offset = -100;
	agent_req_tail(&r, &s);
	pack_req(&g, PROTO_K_TAIL, &r);
	expect_int(g.m, "start", -100);
	msg_free(&g);

	agent_req_stream_close(&r, (uint64_t)3 << 40 | 2);
	pack_req(&g, PROTO_K_STREAM_CLOSE, &r);
	expect_uint(g.m, PROTO_F_CHANNEL, (uint64_t)3 << 40 | 2);
	msg_free(&g);

	agent_req_read_mem(&r, UINT64_C(0xffff800000001000), 16);
	pack_req(&g, PROTO_K_READ_MEM, &r);
	expect_uint(g.m, "addr", UINT64_C(0xffff800000001000));
	expect_uint(g.m, "len", 16);
	msg_free(&g);

	agent_req_worker_join(&r, 2, 500);
	pack_req(&g, PROTO_K_WORKER_JOIN, &r);
	expect_uint(g.m, "handle", 2);
	expect_uint(g.m, "timeout_ms", 500);
	msg_free(&g);
	agent_req_worker_kill(&r, 2, 9);
	pack_req(&g, PROTO_K_WORKER_KILL, &r);
	expect_int(g.m, "signal", 9);
	msg_free(&g);

	agent_req_fault_frame(&r, "oversized");
	pack_req(&g, PROTO_K_FAULT_FRAME, &r);
	expect_str(g.m, "mode", "oversized");
	msg_free(&g);
}

/* The agent's op_syscall: nr int, args array of ints, bufs bytes with a
 * ptrs array of the same length, patches [[target, offset, source]]. */
static void syscall_requests(void **st)
{
	const char *bufs[] = { "abcdefgh", "zz" };
	const size_t lens[] = { 8, 2 };
	const int ptrs[] = { 1, -1 };
	const struct guest_patch patches[] = { { .target = 0, .offset = 0, .source = 1 } };
	struct guest_syscall s = { .nr = 16, .args = { 3, 0, 0, 0, 0, -1 } };
	struct agent_req r;
	struct msg g, g2;
	const msgpack_object *o;
	int64_t v;
	(void)st;
	agent_req_syscall(&r, &s);
	assert_int_equal(agent_req_nfields(&r), 2);
	pack_req(&g, PROTO_K_SYSCALL, &r);
	expect_int(g.m, "nr", 16);
	o = proto_get(g.m, "args");
	assert_int_equal(o->via.array.size, 6);
	assert_int_equal(proto_obj_int(&o->via.array.ptr[5], &v), 0);
	assert_int_equal(v, -1);
	assert_null(proto_get(g.m, "bufs"));
	/* the buffer-less form is the same request */
	agent_req_syscall_ints(&r, s.nr, s.args);
	pack_req(&g2, PROTO_K_SYSCALL, &r);
	assert_int_equal(g.sb.size, g2.sb.size);
	assert_memory_equal(g.sb.data, g2.sb.data, g.sb.size);
	msg_free(&g2);
	msg_free(&g);

	s.bufs = bufs;
	s.buf_lens = lens;
	s.ptrs = ptrs;
	s.nbufs = 2;
	agent_req_syscall(&r, &s);
	assert_int_equal(agent_req_nfields(&r), 4);
	pack_req(&g, PROTO_K_SYSCALL, &r);
	o = proto_get(g.m, "bufs");
	assert_int_equal(o->via.array.size, 2);
	assert_int_equal(o->via.array.ptr[1].type, MSGPACK_OBJECT_BIN);
	o = proto_get(g.m, "ptrs");
	assert_int_equal(proto_obj_int(&o->via.array.ptr[1], &v), 0);
	assert_int_equal(v, -1);
	assert_null(proto_get(g.m, PROTO_F_PATCHES));
	msg_free(&g);

	s.patches = patches;
	s.npatches = 1;
	agent_req_syscall(&r, &s);
	assert_int_equal(agent_req_nfields(&r), 5);
	pack_req(&g, PROTO_K_SYSCALL, &r);
	o = proto_get(g.m, PROTO_F_PATCHES);
	assert_int_equal(o->via.array.size, 1);
	assert_int_equal(o->via.array.ptr[0].via.array.size, 3);
	assert_int_equal(o->via.array.ptr[0].via.array.ptr[2].via.u64, 1);
	msg_free(&g);

	/* patches without bufs are not sent */
	s.nbufs = 0;
	agent_req_syscall(&r, &s);
	assert_int_equal(agent_req_nfields(&r), 2);
	pack_req(&g, PROTO_K_SYSCALL, &r);
	msg_free(&g);
}

static void net_setup_request(void **st)
{
	struct guest_net_setup n = { .mac = "52:56:00:00:00:01", .addr = "10.0.0.2", .prefix = 0,
		.up = 0, .gateway = "", .dns = NULL, .hosts = "h", .wait_ms = -1 };
	struct agent_req r;
	struct msg g;
	(void)st;
	agent_req_net_setup(&r, &n);
	pack_req(&g, PROTO_K_NET_SETUP, &r);
	expect_str(g.m, "mac", "52:56:00:00:00:01");
	expect_str(g.m, "addr", "10.0.0.2");
	expect_str(g.m, "gateway", "");
	expect_str(g.m, "hosts", "h");
	assert_null(proto_get(g.m, "dns"));
	expect_uint(g.m, "prefix", 0);
	expect_bool(g.m, "up", 0);
	assert_null(proto_get(g.m, "wait_ms"));
	msg_free(&g);

	n = (struct guest_net_setup){ .prefix = -1, .up = -1, .wait_ms = 250 };
	agent_req_net_setup(&r, &n);
	assert_int_equal(agent_req_nfields(&r), 1);
	pack_req(&g, PROTO_K_NET_SETUP, &r);
	expect_uint(g.m, "wait_ms", 250);
	msg_free(&g);
}

static void batch_requests(void **st)
{
	struct guest_batch_op o = { .kind = GB_MKDIR, .path = "/d", .parents = true, .perm = -1 };
	struct agent_req r;
	struct msg g;
	(void)st;
	agent_req_batch_op(&r, &o);
	pack_req(&g, agent_batch_kind(o.kind), &r);
	expect_bool(g.m, "parents", 1);
	msg_free(&g);
	o = (struct guest_batch_op){ .kind = GB_WRITE_FILE, .path = "/f", .data = "x", .len = 1 };
	agent_req_batch_op(&r, &o);
	pack_req(&g, agent_batch_kind(o.kind), &r);
	expect_str(g.m, PROTO_F_DATA, "x");
	msg_free(&g);
	o = (struct guest_batch_op){ .kind = GB_RENAME, .path = "/a", .path2 = "/b" };
	agent_req_batch_op(&r, &o);
	pack_req(&g, PROTO_K_RENAME, &r);
	expect_str(g.m, "to", "/b");
	msg_free(&g);
	o = (struct guest_batch_op){ .kind = GB_SYSCALL, .nr = 39 };
	agent_req_batch_op(&r, &o);
	pack_req(&g, PROTO_K_SYSCALL, &r);
	expect_int(g.m, "nr", 39);
	msg_free(&g);
	o = (struct guest_batch_op){ .kind = GB_LISTDIR, .path = "/" };
	agent_req_batch_op(&r, &o);
	assert_int_equal(agent_batch_kind(o.kind), PROTO_K_LISTDIR);
	pack_req(&g, PROTO_K_LISTDIR, &r);
	expect_str(g.m, "path", "/");
	msg_free(&g);
}

/* ---- replies ---------------------------------------------------------- */

/* ExecResult in the agent's shape (ops_proc.c pack_result). */
static const msgpack_object *exec_value(struct val *v, int status, int sig, bool timed_out)
{
	val_begin(v);
	msgpack_pack_map(&v->pk, 5);
	proto_pack_key(&v->pk, "status");
	msgpack_pack_int(&v->pk, status);
	proto_pack_key(&v->pk, "stdout");
	proto_pack_bytes(&v->pk, "out", 3);
	proto_pack_key(&v->pk, "stderr");
	proto_pack_bytes(&v->pk, "", 0);
	proto_pack_key(&v->pk, "signal");
	if (sig)
		msgpack_pack_int(&v->pk, sig);
	else
		msgpack_pack_nil(&v->pk);
	proto_pack_key(&v->pk, "timed_out");
	if (timed_out)
		msgpack_pack_true(&v->pk);
	else
		msgpack_pack_false(&v->pk);
	return val_end(v);
}

static void exec_result_decoders(void **st)
{
	struct val v;
	struct vmm_exec_result x;
	struct guest_batch_op o = { .kind = GB_EXEC };
	struct guest_batch_res b;
	(void)st;
	assert_int_equal(agent_dec_exec_result(exec_value(&v, 3, 0, false), &x), 0);
	assert_int_equal(x.status, VMM_EXITED);
	assert_int_equal(x.exit_code, 3);
	assert_int_equal(x.out_len, 3);
	assert_string_equal(x.out, "out");
	assert_string_equal(x.err, "");
	vmm_exec_result_free(&x);
	memset(&b, 0, sizeof b);
	assert_int_equal(agent_dec_batch_value(&o, &v.u.data, &b), 0);
	assert_int_equal(b.exec.status, VMM_EXITED);
	assert_int_equal(b.exec.exit_code, 3);
	guest_batch_res_free(&b, 1);
	val_free(&v);

	assert_int_equal(agent_dec_exec_result(exec_value(&v, -1, 9, false), &x), 0);
	assert_int_equal(x.status, VMM_SIGNALLED);
	assert_int_equal(x.exit_code, -1);
	assert_int_equal(x.signal, 9);
	vmm_exec_result_free(&x);
	memset(&b, 0, sizeof b);
	assert_int_equal(agent_dec_batch_value(&o, &v.u.data, &b), 0);
	assert_int_equal(b.exec.status, VMM_SIGNALLED);
	assert_int_equal(b.exec.signal, 9);
	guest_batch_res_free(&b, 1);
	val_free(&v);

	assert_int_equal(agent_dec_exec_result(exec_value(&v, -2, 0, true), &x), 0);
	assert_int_equal(x.status, VMM_TIMED_OUT);
	assert_int_equal(x.exit_code, -2);
	vmm_exec_result_free(&x);
	val_free(&v);

	/* no status: malformed; nil value: malformed */
	val_begin(&v);
	msgpack_pack_map(&v.pk, 1);
	proto_pack_key(&v.pk, "stdout");
	msgpack_pack_int(&v.pk, 1);
	assert_int_equal(agent_dec_exec_result(val_end(&v), &x), -1);
	val_free(&v);
	assert_int_equal(agent_dec_exec_result(NULL, &x), -1);

	/* an ill-typed stdout: malformed for the single op and the batch
	 * alike (one strictness) */
	val_begin(&v);
	msgpack_pack_map(&v.pk, 2);
	proto_pack_key(&v.pk, "status");
	msgpack_pack_int(&v.pk, 0);
	proto_pack_key(&v.pk, "stdout");
	msgpack_pack_int(&v.pk, 1);
	assert_int_equal(agent_dec_exec_result(val_end(&v), &x), -1);
	assert_null(x.out);
	memset(&b, 0, sizeof b);
	assert_int_equal(agent_dec_batch_value(&o, &v.u.data, &b), -1);
	guest_batch_res_free(&b, 1);
	val_free(&v);
}

static void stat_and_listdir_decoders(void **st)
{
	struct val v;
	struct vmm_stat s;
	struct vmm_dirent *d = NULL;
	size_t n = 0;
	const char *what;
	struct guest_batch_op o = { .kind = GB_STAT };
	struct guest_batch_res b;
	(void)st;
	val_begin(&v);
	msgpack_pack_map(&v.pk, 4);
	proto_pack_key(&v.pk, "size");
	msgpack_pack_uint64(&v.pk, 42);
	proto_pack_key(&v.pk, "mtime_ns");
	msgpack_pack_int64(&v.pk, 5);
	proto_pack_key(&v.pk, "perm");
	msgpack_pack_uint32(&v.pk, 0100644);
	proto_pack_key(&v.pk, "entry_type");
	proto_pack_cstr(&v.pk, "symlink");
	assert_int_equal(agent_dec_stat(val_end(&v), &s), 0);
	assert_int_equal(s.size, 42);
	assert_int_equal(s.mtime_ns, 5);
	assert_int_equal(s.perm, 0644);
	assert_int_equal(s.type, VMM_ENT_SYMLINK);
	memset(&b, 0, sizeof b);
	assert_int_equal(agent_dec_batch_value(&o, &v.u.data, &b), 0);
	assert_int_equal(b.st.type, VMM_ENT_SYMLINK);
	val_free(&v);

	/* without mtime/entry_type: malformed for the op and the batch */
	val_begin(&v);
	msgpack_pack_map(&v.pk, 2);
	proto_pack_key(&v.pk, "size");
	msgpack_pack_uint64(&v.pk, 1);
	proto_pack_key(&v.pk, "perm");
	msgpack_pack_uint64(&v.pk, 0755);
	assert_int_equal(agent_dec_stat(val_end(&v), &s), -1);
	assert_int_equal(agent_dec_batch_value(&o, &v.u.data, &b), -1);
	val_free(&v);
	assert_int_equal(agent_dec_stat(NULL, &s), -1);

	val_begin(&v);
	msgpack_pack_array(&v.pk, 2);
	msgpack_pack_map(&v.pk, 2);
	proto_pack_key(&v.pk, "name");
	proto_pack_cstr(&v.pk, "b");
	proto_pack_key(&v.pk, "entry_type");
	proto_pack_cstr(&v.pk, "directory");
	msgpack_pack_map(&v.pk, 1);
	proto_pack_key(&v.pk, "name");
	proto_pack_cstr(&v.pk, "a");
	/* "a" has no entry_type: malformed for the op and the batch */
	assert_int_equal(agent_dec_listdir(val_end(&v), &d, &n, &what), -1);
	assert_string_equal(what, "listdir entry");
	o.kind = GB_LISTDIR;
	memset(&b, 0, sizeof b);
	assert_int_equal(agent_dec_batch_value(&o, &v.u.data, &b), -1);
	assert_int_equal(b.nents, 0);
	guest_batch_res_free(&b, 1);
	val_free(&v);

	val_begin(&v);
	msgpack_pack_array(&v.pk, 1);
	msgpack_pack_map(&v.pk, 0);
	assert_int_equal(agent_dec_listdir(val_end(&v), &d, &n, &what), -1);
	assert_string_equal(what, "listdir entry");
	val_free(&v);
	val_begin(&v);
	msgpack_pack_int(&v.pk, 1);
	assert_int_equal(agent_dec_listdir(val_end(&v), &d, &n, &what), -1);
	assert_string_equal(what, "listdir");
	val_free(&v);
}

static void small_decoders(void **st)
{
	struct val v;
	uint64_t h = 0, ch = 0;
	int64_t pid = -7;
	int run = -1, status = 5, sig = 5;
	const char *p;
	size_t n;
	(void)st;
	/* spawn: pid optional, handle non-zero; worker_spawn: both needed */
	val_begin(&v);
	msgpack_pack_map(&v.pk, 1);
	proto_pack_key(&v.pk, "handle");
	msgpack_pack_uint64(&v.pk, 4);
	assert_int_equal(agent_dec_handle_pid(val_end(&v), false, &h, &pid), 0);
	assert_int_equal(h, 4);
	assert_int_equal(pid, -7);
	assert_int_equal(agent_dec_handle_pid(&v.u.data, true, &h, &pid), -1);
	val_free(&v);
	val_begin(&v);
	msgpack_pack_map(&v.pk, 2);
	proto_pack_key(&v.pk, "handle");
	msgpack_pack_uint64(&v.pk, 0);
	proto_pack_key(&v.pk, "pid");
	msgpack_pack_int(&v.pk, 77);
	assert_int_equal(agent_dec_handle_pid(val_end(&v), false, &h, &pid), -1);
	assert_int_equal(agent_dec_handle_pid(&v.u.data, true, &h, &pid), 0);
	assert_int_equal(pid, 77);
	val_free(&v);

	val_begin(&v);
	msgpack_pack_map(&v.pk, 1);
	proto_pack_key(&v.pk, "running");
	msgpack_pack_false(&v.pk);
	assert_int_equal(agent_dec_proc_running(val_end(&v), &run), 0);
	assert_int_equal(run, 0);
	val_free(&v);
	assert_int_equal(agent_dec_proc_running(NULL, &run), -1);

	val_begin(&v);
	msgpack_pack_map(&v.pk, 1);
	proto_pack_key(&v.pk, PROTO_F_CHANNEL);
	msgpack_pack_uint64(&v.pk, 0);
	assert_int_equal(agent_dec_channel(val_end(&v), &ch), -1);
	val_free(&v);
	val_begin(&v);
	msgpack_pack_map(&v.pk, 1);
	proto_pack_key(&v.pk, PROTO_F_CHANNEL);
	msgpack_pack_uint64(&v.pk, 12);
	assert_int_equal(agent_dec_channel(val_end(&v), &ch), 0);
	assert_int_equal(ch, 12);
	val_free(&v);

	val_begin(&v);
	msgpack_pack_map(&v.pk, 1);
	proto_pack_key(&v.pk, "ifname");
	proto_pack_cstr(&v.pk, "eth1");
	assert_int_equal(agent_dec_net_setup(val_end(&v), &p, &n), 0);
	assert_int_equal(n, 4);
	assert_memory_equal(p, "eth1", 4);
	val_free(&v);
	assert_int_equal(agent_dec_net_setup(NULL, &p, &n), -1);

	val_begin(&v);
	msgpack_pack_map(&v.pk, 2);
	proto_pack_key(&v.pk, "status");
	msgpack_pack_int(&v.pk, -1);
	proto_pack_key(&v.pk, "signal");
	msgpack_pack_int(&v.pk, 9);
	assert_int_equal(agent_dec_worker_join(val_end(&v), &status, &sig), 0);
	assert_int_equal(status, -1);
	assert_int_equal(sig, 9);
	val_free(&v);
	status = sig = 5;
	assert_int_equal(agent_dec_worker_join(NULL, &status, &sig), -1);
	assert_int_equal(status, 5);

	assert_int_equal(agent_dec_entry_type("char_device", 11), VMM_ENT_CHAR);
	assert_int_equal(agent_dec_entry_type("file", 3), VMM_ENT_OTHER);
}

static void syscall_decoder(void **st)
{
	struct val v;
	struct guest_syscall_result res;
	struct guest_batch_op o = { .kind = GB_SYSCALL };
	struct guest_batch_res b;
	(void)st;
	val_begin(&v);
	msgpack_pack_map(&v.pk, 3);
	proto_pack_key(&v.pk, "ret");
	msgpack_pack_int(&v.pk, -1);
	proto_pack_key(&v.pk, PROTO_F_ERRNO);
	msgpack_pack_int(&v.pk, ENOENT);
	proto_pack_key(&v.pk, "out_bufs");
	msgpack_pack_array(&v.pk, 1);
	proto_pack_bytes(&v.pk, "xyz", 3);
	assert_int_equal(agent_dec_syscall(val_end(&v), 1, &res), 0);
	assert_int_equal(res.ret, -1);
	assert_int_equal(res.err_no, ENOENT);
	assert_int_equal(res.nbufs, 1);
	assert_int_equal(res.out_lens[0], 3);
	assert_memory_equal(res.out_bufs[0], "xyz", 3);
	guest_syscall_result_free(&res);
	/* a buffer count the request did not have */
	assert_int_equal(agent_dec_syscall(&v.u.data, 2, &res), -1);
	assert_null(res.out_bufs);
	assert_int_equal(agent_dec_syscall(&v.u.data, 0, &res), 0);
	assert_int_equal(res.nbufs, 0);
	memset(&b, 0, sizeof b);
	assert_int_equal(agent_dec_batch_value(&o, &v.u.data, &b), 0);
	assert_int_equal(b.sys_ret, -1);
	assert_int_equal(b.sys_errno, ENOENT);
	val_free(&v);
	assert_int_equal(agent_dec_syscall(NULL, 0, &res), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(exec_bytes_pinned),
		cmocka_unit_test(exec_roundtrip),
		cmocka_unit_test(exec_batch_same_bytes),
		cmocka_unit_test(file_requests),
		cmocka_unit_test(proc_and_stream_requests),
		cmocka_unit_test(syscall_requests),
		cmocka_unit_test(net_setup_request),
		cmocka_unit_test(batch_requests),
		cmocka_unit_test(exec_result_decoders),
		cmocka_unit_test(stat_and_listdir_decoders),
		cmocka_unit_test(small_decoders),
		cmocka_unit_test(syscall_decoder),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
