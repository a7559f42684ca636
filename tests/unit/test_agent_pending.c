/* test_agent_pending.c — agent_client_pending(): what is in flight on an
 * agent connection, against a scripted fake agent on a socketpair.
 *
 * This is the state vm:snapshot() refuses on (qemu_snapshot). Lua ops
 * are synchronous, so a Lua test cannot have a request outstanding while
 * it calls vm:snapshot(); the one way to get there from Lua is an op
 * whose waiter timed out while the guest still runs it, which needs a
 * guest that hangs on purpose. Here the fake agent simply does not
 * answer: a request sent and unanswered is pending; one whose waiter
 * timed out stays pending until its late reply arrives (or a new Hello
 * starts a new agent session); a stream channel that carried data is
 * pending until its StreamEnd or until the host forgets it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "clock.h"
#include "frame.h"
#include "proto/protocol.h"
#include "vmm/agent_client.h"

static int peer;                    /* the fake agent's end */
static struct agent_client *c;

static int setup(void **st)
{
	int sv[2];
	(void)st;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return -1;
	c = agent_client_from_fd("fake", sv[0]);
	peer = sv[1];
	return c ? 0 : -1;
}

static int teardown(void **st)
{
	(void)st;
	agent_client_free(c);
	close(peer);
	return 0;
}

/* Read one request frame on the fake side; its id. */
static uint64_t fake_read_request(int *kind)
{
	unsigned char hdr[4], *body;
	uint32_t n;
	msgpack_unpacked u;
	uint64_t id = 0;
	int64_t k = 0;
	size_t off = 0;
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
	assert_int_equal(proto_get_uint(&u.data, "id", &id), 0);
	assert_int_equal(proto_get_int(&u.data, PROTO_F_KIND, &k), 0);
	if (kind)
		*kind = (int)k;
	msgpack_unpacked_destroy(&u);
	free(body);
	return id;
}

static void fake_send(msgpack_sbuffer *sb)
{
	assert_int_equal(frame_write(peer, sb->data, sb->size), 0);
	msgpack_sbuffer_destroy(sb);
}

static void fake_ok(uint64_t id)
{
	msgpack_sbuffer sb;
	msgpack_packer pk;
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	proto_pack_ok_head(&pk, id);
	msgpack_pack_nil(&pk);
	fake_send(&sb);
}

static void fake_stream(uint64_t channel, const char *data)
{
	msgpack_sbuffer sb;
	msgpack_packer pk;
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, data ? 3 : 2);
	proto_pack_key(&pk, PROTO_F_KIND);
	msgpack_pack_int(&pk, data ? PROTO_K_STREAM_DATA : PROTO_K_STREAM_END);
	proto_pack_key(&pk, PROTO_F_CHANNEL);
	msgpack_pack_uint64(&pk, channel);
	if (data) {
		proto_pack_key(&pk, PROTO_F_DATA);
		proto_pack_bytes(&pk, data, strlen(data));
	}
	fake_send(&sb);
}

static void requests_in_flight(void **st)
{
	char err[256], what[256];
	struct agent_reply rep;
	uint64_t id, ping;
	int kind;
	(void)st;
	assert_int_equal(agent_client_pending(c), 0);
	assert_int_equal(agent_client_describe_pending(c, what, sizeof what), 0);
	assert_string_equal(what, "");

	/* sent, not answered */
	assert_int_equal(agent_send(c, PROTO_K_STAT, 0, NULL, NULL, 1000, &id, err, sizeof err), 0);
	assert_int_equal(fake_read_request(&kind), id);
	assert_int_equal(kind, PROTO_K_STAT);
	assert_int_equal(agent_client_pending(c), 1);
	assert_int_equal(agent_client_describe_pending(c, what, sizeof what), 1);
	assert_non_null(strstr(what, "stat (request "));

	/* its waiter gives up: still in flight (the guest runs it) */
	assert_int_equal(agent_wait(c, id, 30, &rep, err, sizeof err), -1);
	agent_reply_free(&rep);
	assert_non_null(strstr(err, "did not answer"));
	assert_int_equal(agent_client_pending(c), 1);
	agent_client_describe_pending(c, what, sizeof what);
	assert_non_null(strstr(what, "its caller timed out"));
	/* nobody can wait for it any more */
	assert_int_equal(agent_wait(c, id, 30, &rep, err, sizeof err), -1);
	agent_reply_free(&rep);
	assert_non_null(strstr(err, "no outstanding request"));

	/* a Ping round trip reads the late reply first: quiet again */
	assert_int_equal(agent_send(c, PROTO_K_PING, 0, NULL, NULL, 1000, &ping, err, sizeof err), 0);
	assert_int_equal(agent_client_pending(c), 2);
	assert_int_equal(fake_read_request(NULL), ping);
	fake_ok(id);
	fake_ok(ping);
	assert_int_equal(agent_wait(c, ping, 1000, &rep, err, sizeof err), 0);
	agent_reply_free(&rep);
	assert_int_equal(agent_client_pending(c), 0);

	/* answered but not collected yet is not in flight */
	assert_int_equal(agent_send(c, PROTO_K_PING, 0, NULL, NULL, 1000, &ping, err, sizeof err), 0);
	fake_read_request(NULL);
	assert_int_equal(agent_send(c, PROTO_K_PING, 0, NULL, NULL, 1000, &id, err, sizeof err), 0);
	fake_read_request(NULL);
	fake_ok(ping);
	fake_ok(id);
	assert_int_equal(agent_wait(c, id, 1000, &rep, err, sizeof err), 0);   /* reads both */
	agent_reply_free(&rep);
	assert_int_equal(agent_client_pending(c), 0);
	assert_int_equal(agent_wait(c, ping, 1000, &rep, err, sizeof err), 0);
	agent_reply_free(&rep);
}

static void streams_in_flight(void **st)
{
	char err[256], what[256];
	struct agent_chunk ch;
	(void)st;
	/* data on a channel: open until its StreamEnd */
	fake_stream(9, "hello");
	assert_int_equal(agent_stream_next(c, 9, 1000, &ch, err, sizeof err), 1);
	assert_int_equal(ch.len, 5);
	free(ch.data);
	assert_int_equal(agent_client_pending(c), 1);
	agent_client_describe_pending(c, what, sizeof what);
	assert_string_equal(what, "stream channel 9");
	fake_stream(9, NULL);
	assert_int_equal(agent_stream_next(c, 9, 1000, &ch, err, sizeof err), 1);
	assert_true(ch.eof);
	assert_int_equal(agent_client_pending(c), 0);
	/* ... or until the host closes (forgets) it */
	fake_stream(10, "x");
	assert_int_equal(agent_stream_next(c, 10, 1000, &ch, err, sizeof err), 1);
	free(ch.data);
	assert_int_equal(agent_client_pending(c), 1);
	agent_stream_forget(c, 10);
	assert_int_equal(agent_client_pending(c), 0);
}

static void new_session_ends_abandoned(void **st)
{
	char err[256];
	struct agent_reply rep;
	msgpack_sbuffer sb;
	msgpack_packer pk;
	uint64_t id;
	(void)st;
	assert_int_equal(agent_send(c, PROTO_K_EXEC, 0, NULL, NULL, 1000, &id, err, sizeof err), 0);
	fake_read_request(NULL);
	assert_int_equal(agent_wait(c, id, 30, &rep, err, sizeof err), -1);
	agent_reply_free(&rep);
	assert_int_equal(agent_client_pending(c), 1);
	/* the guest rebooted (vm:reset): a new Hello, a new agent session */
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	proto_pack_hello_ok(&pk, "fake", "linux", NULL, 0);
	fake_send(&sb);
	assert_int_equal(agent_client_hello(c, INT64_MAX, NULL, err, sizeof err), 0);
	assert_int_equal(agent_client_pending(c), 0);
	assert_int_equal(agent_client_pending(NULL), 0);
}

/* A paused guest cannot answer a Ping: drain reads what already came. */
static void drain_reads_what_arrived(void **st)
{
	char err[256];
	struct agent_reply rep;
	uint64_t id;
	(void)st;
	assert_int_equal(agent_send(c, PROTO_K_STAT, 0, NULL, NULL, 1000, &id, err, sizeof err), 0);
	fake_read_request(NULL);
	assert_int_equal(agent_wait(c, id, 30, &rep, err, sizeof err), -1);
	agent_reply_free(&rep);
	assert_int_equal(agent_client_drain(c, err, sizeof err), 0);   /* nothing there yet */
	assert_int_equal(agent_client_pending(c), 1);
	fake_ok(id);
	assert_int_equal(agent_client_drain(c, err, sizeof err), 0);
	assert_int_equal(agent_client_pending(c), 0);
}

/* Finished streams settle: more of them than AGENT_MAX_CHANNELS in one
 * session (read to EOF, or closed by the host before their StreamEnd)
 * never reach the cap. */
static void settled_streams_do_not_count(void **st)
{
	char err[256];
	struct agent_chunk ch;
	(void)st;
	for (uint64_t i = 1000; i < 1000 + AGENT_MAX_CHANNELS + 2000; i++) {
		fake_stream(i, "x");
		if (i & 1) {
			fake_stream(i, NULL);
			assert_int_equal(agent_stream_next(c, i, 1000, &ch, err, sizeof err), 1);
			free(ch.data);
			assert_int_equal(agent_stream_next(c, i, 1000, &ch, err, sizeof err), 1);
			assert_true(ch.eof);
			agent_stream_forget(c, i);          /* a second close is harmless */
		} else {
			agent_stream_forget(c, i);          /* closed before anything came */
			fake_stream(i, NULL);
			assert_int_equal(agent_client_drain(c, err, sizeof err), 0);
		}
	}
	assert_null(agent_client_broken(c));
	assert_int_equal(agent_client_pending(c), 0);
}

/* A guest flooding StreamEnd frames on distinct channels hits the cap
 * and the connection breaks with a clear protocol error (a lookup per
 * frame is O(1), so this is quick). */
static void channel_flood_breaks_connection(void **st)
{
	int sv[2];
	char err[256];
	struct agent_client *fc;
	pid_t pid;
	(void)st;
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	fc = agent_client_from_fd("flood", sv[0]);
	assert_non_null(fc);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		peer = sv[1];
		for (uint64_t i = 1; i <= 65536; i++)
			fake_stream(i, NULL);
		_exit(0);
	}
	close(sv[1]);
	for (int i = 0; i < 100000 && !agent_client_broken(fc); i++)
		if (agent_client_drain(fc, err, sizeof err) < 0)
			break;
	assert_non_null(agent_client_broken(fc));
	assert_non_null(strstr(agent_client_broken(fc), "stream channels open at once"));
	agent_client_free(fc);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
}

/* A background client (a warm spare's, used from its priming thread)
 * waits by its own timeouts: the test's limit neither cuts its waits nor
 * gets blamed for them. */
static void background_client_ignores_the_test_limit(void **st)
{
	char err[256];
	struct agent_reply rep;
	uint64_t id;
	(void)st;
	agent_client_set_limit(mono_now_ns() + 20 * 1000000);   /* 20 ms from now */
	/* an ordinary client: the limit cuts the wait and is named */
	assert_int_equal(agent_send(c, PROTO_K_PING, 0, NULL, NULL, 1000, &id, err, sizeof err), 0);
	fake_read_request(NULL);
	assert_int_equal(agent_wait(c, id, 5000, &rep, err, sizeof err), -1);
	agent_reply_free(&rep);
	assert_non_null(strstr(err, "before the test's deadline"));
	assert_non_null(agent_client_limit_cut());
	fake_ok(id);   /* the late reply, read by the next wait */

	agent_client_set_limit(mono_now_ns() + 20 * 1000000);
	agent_client_set_background(c);
	assert_int_equal(agent_send(c, PROTO_K_PING, 0, NULL, NULL, 1000, &id, err, sizeof err), 0);
	assert_int_equal(fake_read_request(NULL), id);
	usleep(60 * 1000);   /* past the limit: a background wait goes on */
	fake_ok(id);
	assert_int_equal(agent_wait(c, id, 5000, &rep, err, sizeof err), 0);
	agent_reply_free(&rep);
	assert_null(agent_client_limit_cut());
	/* its own timeout still binds */
	assert_int_equal(agent_send(c, PROTO_K_PING, 0, NULL, NULL, 1000, &id, err, sizeof err), 0);
	fake_read_request(NULL);
	assert_int_equal(agent_wait(c, id, 30, &rep, err, sizeof err), -1);
	agent_reply_free(&rep);
	assert_non_null(strstr(err, "did not answer within 30 ms"));
	agent_client_set_limit(0);
}

/* The connection is handed over (a primed spare to its VM's client) only
 * when nothing of it is in flight or half read. */
static void release_conn_only_when_clean(void **st)
{
	char err[256];
	struct agent_reply rep;
	uint64_t id;
	unsigned char half[] = { 0, 0, 0, 9, 0x81 };   /* a 9-byte frame, 1 byte of it */
	int fd;
	(void)st;
	/* a request in flight: kept */
	assert_int_equal(agent_send(c, PROTO_K_PING, 0, NULL, NULL, 1000, &id, err, sizeof err), 0);
	fake_read_request(NULL);
	assert_int_equal(agent_client_release_conn(c), -1);
	assert_true(agent_client_fd(c) >= 0);
	fake_ok(id);
	assert_int_equal(agent_wait(c, id, 1000, &rep, err, sizeof err), 0);
	agent_reply_free(&rep);
	/* a stream with data not yet read: kept */
	fake_stream(5, "x");
	assert_int_equal(agent_client_drain(c, err, sizeof err), 0);
	assert_int_equal(agent_client_release_conn(c), -1);
	agent_stream_forget(c, 5);
	/* part of a frame read: kept */
	assert_int_equal(write(peer, half, sizeof half), (ssize_t)sizeof half);
	assert_int_equal(agent_client_drain(c, err, sizeof err), 0);
	assert_int_equal(agent_client_release_conn(c), -1);
	agent_client_free(c);   /* the half frame stays with this connection */
	close(peer);
	assert_int_equal(setup(NULL), 0);
	/* clean: the fd is the caller's, the client is left unconnected */
	fd = agent_client_release_conn(c);
	assert_true(fd >= 0);
	assert_int_equal(agent_client_fd(c), -1);
	assert_int_equal(agent_client_release_conn(c), -1);
	/* and it still talks to the peer */
	assert_int_equal(write(fd, "ping", 4), 4);
	char buf[4];
	assert_int_equal(read(peer, buf, 4), 4);
	assert_memory_equal(buf, "ping", 4);
	close(fd);
	/* a connected client again for the tests that follow */
	agent_client_free(c);
	close(peer);
	assert_int_equal(setup(NULL), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(requests_in_flight),
		cmocka_unit_test(background_client_ignores_the_test_limit),
		cmocka_unit_test(release_conn_only_when_clean),
		cmocka_unit_test(streams_in_flight),
		cmocka_unit_test(drain_reads_what_arrived),
		cmocka_unit_test(new_session_ends_abandoned),
		cmocka_unit_test(settled_streams_do_not_count),
		cmocka_unit_test(channel_flood_breaks_connection),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
