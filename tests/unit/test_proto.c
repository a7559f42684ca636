/* test_proto.c — the protocol pin test.
 *
 * Locks the exact bytes of the handshake (Hello, HelloOk, HelloErr), both
 * OpResult shapes, the request head, the OpenMode bits and the message
 * kind numbers. If this fails after a change to src/proto/, the wire
 * changed: bump PROTOCOL_VERSION and update the expectations here — on
 * purpose, never silently. Also covers the shared decode helpers.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <errno.h>
#include <string.h>
#include <cmocka.h>

#include "proto/protocol.h"

struct enc {
	msgpack_sbuffer sb;
	msgpack_packer pk;
};

static void enc_init(struct enc *e)
{
	msgpack_sbuffer_init(&e->sb);
	msgpack_packer_init(&e->pk, &e->sb, msgpack_sbuffer_write);
}

static void expect_bytes(struct enc *e, const char *want, size_t n)
{
	if (e->sb.size != n || memcmp(e->sb.data, want, n) != 0) {
		print_error("encoded %zu bytes:", e->sb.size);
		for (size_t i = 0; i < e->sb.size; i++)
			print_error(" %02x", (unsigned char)e->sb.data[i]);
		print_error("\n");
	}
	assert_int_equal(e->sb.size, n);
	assert_memory_equal(e->sb.data, want, n);
	msgpack_sbuffer_destroy(&e->sb);
}

#define EXPECT(e, lit) expect_bytes((e), (lit), sizeof(lit) - 1)

static void pin_version_and_limits(void **state)
{
	(void)state;
	/* 2: syscall gained "patches" (nested pointers) and ptrs[i] = -1
	 * 3: net_setup (kind 160, the 160.. network group) */
	assert_int_equal(PROTOCOL_VERSION, 4);
	assert_string_equal(PROTO_F_PATCHES, "patches");
	assert_int_equal(PROTO_FRAME_MAX, 32u << 20);
	assert_string_equal(PROTO_PORT_NAME, "org.provium.agent");
}

static void pin_open_mode_bits(void **state)
{
	(void)state;
	assert_int_equal(PROTO_OPEN_READ, 1);
	assert_int_equal(PROTO_OPEN_WRITE, 2);
	assert_int_equal(PROTO_OPEN_CREATE, 4);
	assert_int_equal(PROTO_OPEN_TRUNCATE, 8);
	assert_int_equal(PROTO_OPEN_APPEND, 16);
	assert_int_equal(PROTO_OPEN_EXCLUSIVE, 32);
	assert_int_equal(PROTO_OPEN_ALL, 63);
}

static void pin_kinds(void **state)
{
	(void)state;
	assert_int_equal(PROTO_K_HELLO, 1);
	assert_int_equal(PROTO_K_HELLO_OK, 2);
	assert_int_equal(PROTO_K_HELLO_ERR, 3);
	assert_int_equal(PROTO_K_EXEC, 100);
	assert_int_equal(PROTO_K_READ_FILE, 101);
	assert_int_equal(PROTO_K_WRITE_FILE, 102);
	assert_int_equal(PROTO_K_STAT, 103);
	assert_int_equal(PROTO_K_LISTDIR, 104);
	assert_int_equal(PROTO_K_MKDIR, 105);
	assert_int_equal(PROTO_K_UNLINK, 106);
	assert_int_equal(PROTO_K_RENAME, 107);
	assert_int_equal(PROTO_K_CLOCK_GET, 108);
	assert_int_equal(PROTO_K_CLOCK_SET, 109);
	assert_int_equal(PROTO_K_PING, 110);
	assert_int_equal(PROTO_K_SPAWN, 120);
	assert_int_equal(PROTO_K_PROC_STREAM, 126);
	assert_int_equal(PROTO_K_FILE_OPEN, 130);
	assert_int_equal(PROTO_K_FILE_CLOSE, 134);
	assert_int_equal(PROTO_K_TAIL, 140);
	assert_int_equal(PROTO_K_STREAM_CLOSE, 142);
	assert_int_equal(PROTO_K_SYSCALL, 150);
	assert_int_equal(PROTO_K_POWEROFF, 151);
	assert_int_equal(PROTO_K_NET_SETUP, 160);
	assert_int_equal(PROTO_K_READ_MEM, 152);
	assert_int_equal(PROTO_K_WORKER_SPAWN, 170);
	assert_int_equal(PROTO_K_WORKER_JOIN, 171);
	assert_int_equal(PROTO_K_WORKER_KILL, 172);
	assert_string_equal(PROTO_F_WORKER, "worker");
	assert_string_equal(PROTO_ERR_WORKER_GONE, "worker_gone");
	assert_int_equal(PROTO_K_OP_RESULT, 200);
	assert_int_equal(PROTO_K_STREAM_DATA, 300);
	assert_int_equal(PROTO_K_STREAM_END, 301);
	assert_string_equal(proto_kind_name(PROTO_K_EXEC), "exec");
	assert_string_equal(proto_kind_name(PROTO_K_NET_SETUP), "net_setup");
	assert_string_equal(proto_kind_name(PROTO_K_READ_MEM), "read_mem");
	assert_string_equal(proto_kind_name(PROTO_K_WORKER_SPAWN), "worker_spawn");
	assert_string_equal(proto_kind_name(PROTO_K_WORKER_JOIN), "worker_join");
	assert_string_equal(proto_kind_name(PROTO_K_WORKER_KILL), "worker_kill");
	assert_null(proto_kind_name(99));
}

static void pin_hello(void **state)
{
	struct enc e;
	(void)state;

	enc_init(&e);
	proto_pack_hello(&e.pk, PROTOCOL_VERSION);
	EXPECT(&e, "\x82\xa4kind\x01\xb0protocol_version\x04");
}

static void pin_hello_ok(void **state)
{
	static const char *const feats[] = { "exec", "files" };
	struct enc e;
	(void)state;

	enc_init(&e);
	proto_pack_hello_ok(&e.pk, "1.0", "Linux 6.1", feats, 2);
	EXPECT(&e, "\x84\xa4kind\x02"
		   "\xad" "agent_version" "\xa3" "1.0"
		   "\xa8" "guest_os" "\xa9" "Linux 6.1"
		   "\xa8" "features" "\x92\xa4" "exec" "\xa5" "files");
}

static void pin_hello_err(void **state)
{
	struct enc e;
	(void)state;

	enc_init(&e);
	proto_pack_hello_err(&e.pk, "bad");
	EXPECT(&e, "\x82\xa4kind\x03\xa7message\xa3" "bad");
}

static void pin_op_result_ok(void **state)
{
	struct enc e;
	(void)state;

	enc_init(&e);
	proto_pack_ok_head(&e.pk, 7);
	msgpack_pack_nil(&e.pk);
	EXPECT(&e, "\x84\xa4kind\xcc\xc8\xa2id\x07\xa7outcome\xa2ok\xa5value\xc0");
}

static void pin_op_result_err(void **state)
{
	struct enc e;
	(void)state;

	enc_init(&e);
	proto_pack_err(&e.pk, 300, "ENOENT", "No such file or directory", 2);
	EXPECT(&e, "\x84\xa4kind\xcc\xc8\xa2id\xcd\x01\x2c"
		   "\xa7outcome\xa3" "err"
		   "\xa5" "error" "\x83"
		   "\xa4" "code" "\xa6" "ENOENT"
		   "\xa7" "message" "\xb9" "No such file or directory"
		   "\xa5" "errno" "\x02");
}

static void pin_request_head(void **state)
{
	struct enc e;
	(void)state;

	enc_init(&e);
	proto_pack_request_head(&e.pk, PROTO_K_READ_FILE, 5, 1);
	proto_pack_key(&e.pk, "path");
	proto_pack_cstr(&e.pk, "/x");
	EXPECT(&e, "\x83\xa4kind\x65\xa2id\x05\xa4path\xa2/x");
}

static void decode_helpers(void **state)
{
	struct enc e;
	msgpack_unpacked u;
	size_t off = 0;
	int64_t i;
	uint64_t v;
	int b;
	const char *p;
	size_t n;
	(void)state;

	enc_init(&e);
	msgpack_pack_map(&e.pk, 5);
	proto_pack_key(&e.pk, "neg");
	msgpack_pack_int(&e.pk, -5);
	proto_pack_key(&e.pk, "bin");
	proto_pack_bytes(&e.pk, "a\0b", 3);
	proto_pack_key(&e.pk, "str");
	proto_pack_cstr(&e.pk, "hi");
	proto_pack_key(&e.pk, "nil");
	msgpack_pack_nil(&e.pk);
	proto_pack_key(&e.pk, "t");
	msgpack_pack_true(&e.pk);

	msgpack_unpacked_init(&u);
	assert_int_equal(msgpack_unpack_next(&u, e.sb.data, e.sb.size, &off),
			 MSGPACK_UNPACK_SUCCESS);
	assert_int_equal(proto_get_int(&u.data, "neg", &i), 0);
	assert_int_equal(i, -5);
	assert_int_equal(proto_get_uint(&u.data, "neg", &v), -1);
	assert_int_equal(proto_get_bytes(&u.data, "bin", &p, &n), 0);
	assert_int_equal(n, 3);
	assert_memory_equal(p, "a\0b", 3);
	assert_int_equal(proto_get_bytes(&u.data, "str", &p, &n), 0);
	assert_int_equal(n, 2);
	assert_null(proto_get(&u.data, "nil"));     /* nil means absent */
	assert_null(proto_get(&u.data, "missing"));
	assert_int_equal(proto_get_bool(&u.data, "t", &b), 0);
	assert_int_equal(b, 1);
	assert_int_equal(proto_get_bool(&u.data, "neg", &b), -1);
	assert_int_equal(errno, EINVAL);
	msgpack_unpacked_destroy(&u);
	msgpack_sbuffer_destroy(&e.sb);
}

static void errno_names(void **state)
{
	char buf[16];
	(void)state;

	assert_string_equal(proto_errno_name(ENOENT, buf, sizeof buf), "ENOENT");
	assert_string_equal(proto_errno_name(EACCES, buf, sizeof buf), "EACCES");
	assert_string_equal(proto_errno_name(99999, buf, sizeof buf), "E99999");
}

/* The pre-check every decode path runs on untrusted msgpack. */
static void msgpack_precheck(void **state)
{
	struct enc e;
	(void)state;
	enc_init(&e);
	proto_pack_hello(&e.pk, PROTOCOL_VERSION);
	assert_int_equal(proto_msgpack_sane(e.sb.data, e.sb.size), 0);
	/* trailing byte, and a value cut short */
	msgpack_sbuffer_write(&e.sb, "\xc0", 1);
	assert_int_equal(proto_msgpack_sane(e.sb.data, e.sb.size), -1);
	assert_int_equal(proto_msgpack_sane(e.sb.data, e.sb.size - 2), -1);
	msgpack_sbuffer_destroy(&e.sb);
	/* array32 / map32 declaring 2^32-1 elements in a 5-byte frame */
	assert_int_equal(proto_msgpack_sane("\xdd\xff\xff\xff\xff", 5), -1);
	assert_int_equal(proto_msgpack_sane("\xdf\xff\xff\xff\xff", 5), -1);
	/* bin32 longer than the frame; the never-used byte 0xc1 */
	assert_int_equal(proto_msgpack_sane("\xc6\x00\x01\x00\x00\x41", 6), -1);
	assert_int_equal(proto_msgpack_sane("\xc1", 1), -1);
	assert_int_equal(proto_msgpack_sane("", 0), -1);
	/* nested containers that fit */
	assert_int_equal(proto_msgpack_sane("\x81\xa1k\x92\x01\x93\x02\x03\xc0", 9), 0);
	assert_int_equal(proto_msgpack_sane("\x81\xa1k\x92\x01\x93\x02\x03", 8), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(pin_version_and_limits),
		cmocka_unit_test(pin_open_mode_bits),
		cmocka_unit_test(pin_kinds),
		cmocka_unit_test(pin_hello),
		cmocka_unit_test(pin_hello_ok),
		cmocka_unit_test(pin_hello_err),
		cmocka_unit_test(pin_op_result_ok),
		cmocka_unit_test(pin_op_result_err),
		cmocka_unit_test(pin_request_head),
		cmocka_unit_test(decode_helpers),
		cmocka_unit_test(errno_names),
		cmocka_unit_test(msgpack_precheck),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
