/* qmp-probe.c — drive a real QEMU through qemu_launch + qmp (no kernel).
 *
 * usage: qmp-probe RUN_DIR
 * Spawns QEMU paused (-S) with no kernel, the agent port and the console
 * wired; checks QEMU connects to the agent socket provium listens on, then:
 * query-status (paused), cont + RESUME, query-status (running), stop +
 * STOP, an unknown command's error text, quit + SHUTDOWN, and that the
 * process exits and is reaped. Prints one "ok ..." line per step;
 * exit 0 on success, 1 with "FAIL ..." on the first failure.
 *
 * usage: qmp-probe --orphan RUN_DIR
 * Spawns QEMU the same way, prints "qemu-pid N" once QMP answers, then
 * SIGKILLs itself: the caller checks that PR_SET_PDEATHSIG took QEMU down. */
#include <stdio.h>
#include <stdlib.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "vmm/agent_client.h"
#include "vmm/qemu_launch.h"
#include "vmm/qmp.h"

static struct qemu_proc proc;

static void fail(const char *what, const char *err)
{
	printf("FAIL %s: %s\n", what, err);
	qemu_kill(&proc);
	exit(1);
}

static void expect_status(struct qmp *q, const char *want)
{
	char err[512];
	json_t *ret = NULL;
	if (qmp_execute(q, "query-status", NULL, 5000, &ret, err, sizeof err) < 0)
		fail("query-status", err);
	const char *st = json_string_value(json_object_get(ret, "status"));
	if (!st || !strstr(want, st)) {
		snprintf(err, sizeof err, "status %s, want %s", st ? st : "(none)", want);
		json_decref(ret);
		fail("query-status", err);
	}
	printf("ok query-status: %s\n", st);
	json_decref(ret);
}

int main(int argc, char **argv)
{
	char err[512], path[4200];
	bool orphan = argc == 3 && strcmp(argv[1], "--orphan") == 0;
	if (orphan) {
		argv++;
		argc--;
	}
	if (argc != 2) {
		fprintf(stderr, "usage: qmp-probe [--orphan] RUN_DIR\n");
		return 2;
	}
	struct qemu_spec s = { .run_dir = argv[1], .name = "qmp-probe", .accel = ACCEL_TCG,
			       .paused = true, .vmgenid = true, .memory = 64ull << 20,
			       .agent = true, .console = true };
	qemu_run_path(path, sizeof path, argv[1], "agent.sock");
	struct agent_client *ac = agent_client_listen("probe", path, err, sizeof err);
	if (!ac)
		fail("agent listen", err);
	if (qemu_spawn(&s, &proc, err, sizeof err) < 0)
		fail("spawn", err);
	printf("ok spawned pid %d\n", (int)proc.pid);
	if (agent_client_accept(ac, qmp_now_ns() + 10000000000LL, err, sizeof err) < 0)
		fail("agent accept", err);
	printf("ok QEMU connected to the agent socket\n");
	qemu_run_path(path, sizeof path, argv[1], "qmp.sock");
	struct qmp *q = qmp_connect(path, qmp_now_ns() + 10000000000LL, err, sizeof err);
	if (!q)
		fail("connect", err);
	printf("ok connected\n");
	if (orphan) {
		expect_status(q, "prelaunch|paused");
		printf("qemu-pid %d\n", (int)proc.pid);
		fflush(stdout);
		raise(SIGKILL);
	}
	expect_status(q, "prelaunch|paused"); /* -S without a kernel: QEMU 7.2 says prelaunch */
	if (qmp_execute(q, "cont", NULL, 5000, NULL, err, sizeof err) < 0)
		fail("cont", err);
	if (qmp_wait_event(q, "RESUME", 5000, NULL, err, sizeof err) < 0)
		fail("RESUME", err);
	printf("ok cont + RESUME\n");
	expect_status(q, "running");
	if (qmp_execute(q, "stop", NULL, 5000, NULL, err, sizeof err) < 0)
		fail("stop", err);
	if (qmp_wait_event(q, "STOP", 5000, NULL, err, sizeof err) < 0)
		fail("STOP", err);
	printf("ok stop + STOP\n");
	expect_status(q, "paused");
	if (qmp_execute(q, "no-such-command", NULL, 5000, NULL, err, sizeof err) == 0)
		fail("no-such-command", "succeeded");
	if (!strstr(err, "CommandNotFound"))
		fail("no-such-command error text", err);
	printf("ok error reply: %s\n", err);
	if (qmp_execute(q, "cont", NULL, 5000, NULL, err, sizeof err) < 0)
		fail("cont", err);
	printf("ok cont again\n");
	if (qmp_execute(q, "quit", NULL, 5000, NULL, err, sizeof err) < 0)
		fail("quit", err);
	if (qmp_wait_event(q, "SHUTDOWN", 5000, NULL, err, sizeof err) < 0 &&
	    !qmp_broken(q)) /* QEMU may close before the event is read */
		fail("SHUTDOWN", err);
	printf("ok quit\n");
	if (qemu_wait(&proc, 10000) != 1)
		fail("wait", "QEMU still running 10 s after quit");
	char st[128];
	qemu_describe_status(&proc, st, sizeof st);
	printf("ok qemu %s\n", st);
	qmp_close(q);
	agent_client_free(ac);
	return 0;
}
