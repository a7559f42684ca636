/* test_frame.c — the length-prefixed frame reader/writer and event frames. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <errno.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "events.h"
#include "frame.h"

static void roundtrip_through_pipe(void **state)
{
	int p[2];
	unsigned char buf[256];
	struct frame_reader r;
	const unsigned char *body;
	size_t len;
	(void)state;

	assert_int_equal(pipe(p), 0);
	assert_int_equal(frame_write(p[1], "hello", 5), 0);
	assert_int_equal(frame_write(p[1], "", 0), 0);
	close(p[1]);
	ssize_t n = read(p[0], buf, sizeof buf);
	close(p[0]);
	assert_int_equal(n, 4 + 5 + 4);
	assert_memory_equal(buf, "\0\0\0\5hello\0\0\0\0", 13);

	frame_reader_init(&r, 64);
	assert_int_equal(frame_reader_feed(&r, buf, (size_t)n), 0);
	assert_int_equal(frame_reader_next(&r, &body, &len), 1);
	assert_int_equal(len, 5);
	assert_memory_equal(body, "hello", 5);
	assert_int_equal(frame_reader_next(&r, &body, &len), 1);
	assert_int_equal(len, 0);
	assert_int_equal(frame_reader_next(&r, &body, &len), 0);
	frame_reader_free(&r);
}

static void split_feeds_byte_by_byte(void **state)
{
	const unsigned char wire[] = "\0\0\0\3abc\0\0\0\2de";
	struct frame_reader r;
	const unsigned char *body;
	size_t len;
	int got = 0;
	(void)state;

	frame_reader_init(&r, 16);
	for (size_t i = 0; i < sizeof wire - 1; i++) {
		assert_int_equal(frame_reader_feed(&r, wire + i, 1), 0);
		int rc;
		while ((rc = frame_reader_next(&r, &body, &len)) == 1) {
			if (got == 0) {
				assert_int_equal(len, 3);
				assert_memory_equal(body, "abc", 3);
				assert_int_equal(i, 6); /* complete only on its last byte */
			} else {
				assert_int_equal(len, 2);
				assert_memory_equal(body, "de", 2);
			}
			got++;
		}
		assert_int_equal(rc, 0);
	}
	assert_int_equal(got, 2);
	frame_reader_free(&r);
}

static void body_stays_valid_until_next_call(void **state)
{
	const unsigned char wire[] = "\0\0\0\3abc\0\0\0\3xyz";
	struct frame_reader r;
	const unsigned char *b1, *b2;
	size_t l1, l2;
	(void)state;

	frame_reader_init(&r, 16);
	frame_reader_feed(&r, wire, sizeof wire - 1);
	assert_int_equal(frame_reader_next(&r, &b1, &l1), 1);
	assert_memory_equal(b1, "abc", 3);
	assert_int_equal(frame_reader_next(&r, &b2, &l2), 1);
	assert_memory_equal(b2, "xyz", 3);
	frame_reader_free(&r);
}

static void oversize_is_an_error_not_an_allocation(void **state)
{
	const unsigned char wire[] = { 0xff, 0xff, 0xff, 0xf0, 'x' };
	struct frame_reader r;
	const unsigned char *body;
	size_t len;
	(void)state;

	frame_reader_init(&r, 1024);
	frame_reader_feed(&r, wire, sizeof wire);
	errno = 0;
	assert_int_equal(frame_reader_next(&r, &body, &len), -1);
	assert_int_equal(errno, EMSGSIZE);
	frame_reader_free(&r);

	/* exactly max is fine, max+1 is not */
	unsigned char ok[4 + 8] = { 0, 0, 0, 8 };
	frame_reader_init(&r, 8);
	frame_reader_feed(&r, ok, sizeof ok);
	assert_int_equal(frame_reader_next(&r, &body, &len), 1);
	frame_reader_free(&r);
	unsigned char big[4] = { 0, 0, 0, 9 };
	frame_reader_init(&r, 8);
	frame_reader_feed(&r, big, sizeof big);
	assert_int_equal(frame_reader_next(&r, &body, &len), -1);
	frame_reader_free(&r);
}

static void event_frame_shape(void **state)
{
	struct event_buf eb;
	msgpack_unpacked u;
	size_t off = 0;
	(void)state;

	event_begin(&eb, "test_started");
	msgpack_pack_map(&eb.pk, 1);
	event_pack_str(&eb.pk, "name");
	event_pack_str(&eb.pk, "x");
	msgpack_unpacked_init(&u);
	assert_int_equal(msgpack_unpack_next(&u, eb.sb.data, eb.sb.size, &off), MSGPACK_UNPACK_SUCCESS);
	assert_int_equal(u.data.type, MSGPACK_OBJECT_MAP);
	assert_int_equal(u.data.via.map.size, 3);
	msgpack_object_kv *kv = u.data.via.map.ptr;
	assert_memory_equal(kv[0].key.via.str.ptr, "ts", 2);
	assert_true(kv[0].val.type == MSGPACK_OBJECT_POSITIVE_INTEGER);
	assert_true(kv[0].val.via.u64 > 1600000000ull * 1000000000ull);
	assert_memory_equal(kv[1].key.via.str.ptr, "kind", 4);
	assert_int_equal(kv[1].val.via.str.size, 12);
	assert_memory_equal(kv[1].val.via.str.ptr, "test_started", 12);
	assert_memory_equal(kv[2].key.via.str.ptr, "payload", 7);
	assert_int_equal(kv[2].val.type, MSGPACK_OBJECT_MAP);
	msgpack_unpacked_destroy(&u);
	event_discard(&eb);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(roundtrip_through_pipe),
		cmocka_unit_test(split_feeds_byte_by_byte),
		cmocka_unit_test(body_stays_valid_until_next_call),
		cmocka_unit_test(oversize_is_an_error_not_an_allocation),
		cmocka_unit_test(event_frame_shape),
	};
	return cmocka_run_group_tests_name("frame", tests, NULL, NULL);
}
