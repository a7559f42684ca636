/* test_qmp.c — the QMP client against a scripted peer on a socketpair.
 *
 * A forked child plays QEMU: it writes a fixed script of lines (greeting,
 * replies by id, events, garbage) and then either keeps the socket open
 * until the parent closes it or closes it at once (EOF cases). Ids are
 * deterministic: 1 is qmp_capabilities, 2 the first command, ... */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "vmm/qmp.h"

#define GREET "{\"QMP\": {\"version\": {}, \"capabilities\": []}}\n" \
	      "{\"return\": {}, \"id\": 1}\n"

static pid_t peer;

/* Start a peer writing len bytes of script; hold = keep the socket open. */
static int start_peer(const char *script, size_t len, int hold)
{
	int sv[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	peer = fork();
	assert_true(peer >= 0);
	if (peer == 0) {
		close(sv[0]);
		size_t off = 0;
		while (off < len) {
			ssize_t n = write(sv[1], script + off, len - off);
			if (n <= 0)
				_exit(1);
			off += (size_t)n;
		}
		char b[4096];
		ssize_t r;
		/* hold: until the parent closes; else just past qmp_capabilities */
		while ((r = read(sv[1], b, sizeof b)) > 0)
			if (!hold && memchr(b, '\n', (size_t)r))
				break;
		_exit(0);
	}
	close(sv[1]);
	return sv[0];
}

static void stop_peer(void)
{
	kill(peer, SIGKILL);
	waitpid(peer, NULL, 0);
}

static struct qmp *open_script(const char *script, int hold)
{
	char err[256];
	int fd = start_peer(script, strlen(script), hold);
	struct qmp *q = qmp_open_fd(fd, qmp_now_ns() + 5000000000LL, err, sizeof err);
	if (!q)
		fail_msg("open: %s", err);
	return q;
}

static void test_execute_and_events(void **state)
{
	(void)state;
	char err[256];
	json_t *ret = NULL, *ev = NULL;
	struct qmp *q = open_script(GREET
		"{\"event\": \"STOP\", \"timestamp\": {\"seconds\": 1, \"microseconds\": 2}}\n"
		"{\"return\": {\"status\": \"paused\", \"running\": false, \"big\": 9007199254740993}, \"id\": 2}\n"
		"{\"event\": \"RESUME\"}\n", 1);
	assert_int_equal(qmp_execute(q, "query-status", NULL, 5000, &ret, err, sizeof err), 0);
	assert_string_equal(json_string_value(json_object_get(ret, "status")), "paused");
	/* jansson keeps 64-bit integers exact */
	assert_true(json_integer_value(json_object_get(ret, "big")) == 9007199254740993LL);
	json_decref(ret);
	/* RESUME arrives later, STOP was queued during the command */
	assert_int_equal(qmp_wait_event(q, "RESUME", 5000, &ev, err, sizeof err), 0);
	assert_string_equal(json_string_value(json_object_get(ev, "event")), "RESUME");
	json_decref(ev);
	ev = qmp_pop_event(q);
	assert_non_null(ev);
	assert_string_equal(json_string_value(json_object_get(ev, "event")), "STOP");
	json_decref(ev);
	assert_null(qmp_pop_event(q));
	qmp_close(q);
	stop_peer();
}

static void test_error_reply(void **state)
{
	(void)state;
	char err[256];
	struct qmp *q = open_script(GREET
		"{\"error\": {\"class\": \"GenericError\", \"desc\": \"nope\"}, \"id\": 2}\n"
		"{\"return\": {}, \"id\": 3}\n", 1);
	assert_int_equal(qmp_execute(q, "stop", NULL, 5000, NULL, err, sizeof err), -1);
	assert_string_equal(err, "QMP stop: GenericError: nope");
	assert_null(qmp_broken(q));
	assert_int_equal(qmp_execute(q, "cont", NULL, 5000, NULL, err, sizeof err), 0);
	qmp_close(q);
	stop_peer();
}

static void test_stale_reply_dropped(void **state)
{
	(void)state;
	char err[256];
	json_t *ret = NULL;
	/* a reply to an id we never sent / no longer wait for, then ours */
	struct qmp *q = open_script(GREET
		"{\"return\": {\"who\": \"stale\"}, \"id\": 77}\n"
		"{\"return\": {\"who\": \"mine\"}}\n"
		"{\"return\": {\"who\": \"ours\"}, \"id\": 2}\n", 1);
	assert_int_equal(qmp_execute(q, "x", NULL, 5000, &ret, err, sizeof err), 0);
	assert_string_equal(json_string_value(json_object_get(ret, "who")), "ours");
	json_decref(ret);
	qmp_close(q);
	stop_peer();
}

static void test_timeout_then_late_reply(void **state)
{
	(void)state;
	char err[256];
	struct qmp *q = open_script(GREET, 1);
	assert_int_equal(qmp_execute(q, "slow", NULL, 50, NULL, err, sizeof err), -1);
	assert_non_null(strstr(err, "timed out"));
	assert_null(qmp_broken(q));
	qmp_close(q);
	stop_peer();
}

static void expect_broken(const char *script, int hold, const char *what)
{
	char err[256];
	struct qmp *q = open_script(script, hold);
	assert_int_equal(qmp_execute(q, "x", NULL, 5000, NULL, err, sizeof err), -1);
	if (!strstr(err, what))
		fail_msg("error `%s` does not mention `%s`", err, what);
	assert_non_null(qmp_broken(q));
	/* sticky */
	assert_int_equal(qmp_execute(q, "y", NULL, 5000, NULL, err, sizeof err), -1);
	assert_int_equal(qmp_wait_event(q, NULL, 10, NULL, err, sizeof err), -1);
	qmp_close(q);
	stop_peer();
}

static void test_garbage_lines(void **state)
{
	(void)state;
	expect_broken(GREET "{\"return\": {}, \"id\": 2\n", 1, "malformed JSON");
	expect_broken(GREET "\x01\x02\xff\xfe garbage\n", 1, "malformed JSON");
	expect_broken(GREET "[1, 2, 3]\n", 1, "not an object");
	expect_broken(GREET "\"str\"\n", 1, "JSON"); /* jansson rejects scalars itself */
	expect_broken(GREET "{\"hello\": 1}\n", 1, "unexpected message");
	expect_broken(GREET "{\"return\": {}, \"id\": 2} trailing\n", 1, "malformed JSON");
	expect_broken(GREET "{\"return\": {\"s\": \"a\\u0000b\"}, \"id\": 2}\n", 1, "malformed JSON");
	expect_broken(GREET "{\"return\": {}, ", 0, "closed");
	expect_broken(GREET, 0, "closed");
}

static void test_oversized_line(void **state)
{
	(void)state;
	size_t n = QMP_MAX_LINE + 100000;
	char *big = malloc(strlen(GREET) + n + 1);
	assert_non_null(big);
	strcpy(big, GREET);
	memset(big + strlen(GREET), 'a', n);
	big[strlen(GREET) + n] = 0;
	expect_broken(big, 1, "maximum size");
	free(big);
}

static void test_blank_lines_and_bad_greeting(void **state)
{
	(void)state;
	char err[256];
	struct qmp *q = open_script("\n  \r\n" GREET "\n{\"return\": 5, \"id\": 2}\n", 1);
	json_t *ret = NULL;
	assert_int_equal(qmp_execute(q, "x", NULL, 5000, &ret, err, sizeof err), 0);
	assert_int_equal(json_integer_value(ret), 5);
	json_decref(ret);
	qmp_close(q);
	stop_peer();

	int fd = start_peer("{\"return\": {}}\n", 15, 1);
	assert_null(qmp_open_fd(fd, qmp_now_ns() + 5000000000LL, err, sizeof err));
	assert_non_null(strstr(err, "greeting"));
	stop_peer();

	fd = start_peer("", 0, 1);
	assert_null(qmp_open_fd(fd, qmp_now_ns() + 50000000LL, err, sizeof err));
	assert_non_null(strstr(err, "timed out"));
	stop_peer();
}

static void test_connect_missing_socket(void **state)
{
	(void)state;
	char err[256];
	assert_null(qmp_connect("/nonexistent/qmp.sock", qmp_now_ns() + 30000000LL, err, sizeof err));
	assert_non_null(strstr(err, "/nonexistent/qmp.sock"));
	char longp[300];
	memset(longp, 'x', sizeof longp - 1);
	longp[0] = '/';
	longp[sizeof longp - 1] = 0;
	assert_null(qmp_connect(longp, qmp_now_ns(), err, sizeof err));
	assert_non_null(strstr(err, "too long"));
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_execute_and_events),
		cmocka_unit_test(test_error_reply),
		cmocka_unit_test(test_stale_reply_dropped),
		cmocka_unit_test(test_timeout_then_late_reply),
		cmocka_unit_test(test_garbage_lines),
		cmocka_unit_test(test_oversized_line),
		cmocka_unit_test(test_blank_lines_and_bad_greeting),
		cmocka_unit_test(test_connect_missing_socket),
	};
	return cmocka_run_group_tests_name("qmp", tests, NULL, NULL);
}
