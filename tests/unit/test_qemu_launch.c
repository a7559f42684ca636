/* test_qemu_launch.c — argv and cmdline assembly, spawn/reap of a stand-in
 * binary (the accel=auto verdict is test_qemu_accel.c's). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "vmm/qemu_launch.h"

static char *asm_ok(const char *base, bool inject)
{
	char err[512], *out = NULL;
	if (qemu_cmdline_assemble(base, inject, &out, err, sizeof err) < 0)
		fail_msg("assemble(%s): %s", base ? base : "NULL", err);
	return out;
}

static void check_asm(const char *base, bool inject, const char *want)
{
	char *got = asm_ok(base, inject);
	if (strcmp(got, want) != 0)
		fail_msg("assemble(%s, %d) = `%s`, want `%s`", base ? base : "NULL", inject, got, want);
	free(got);
}

static void test_cmdline(void **state)
{
	(void)state;
	check_asm("quiet", false, "quiet console=ttyS0");
	check_asm("quiet", true, "quiet console=ttyS0 rdinit=/sbin/provium-agent");
	check_asm("console=hvc0 quiet", true, "console=hvc0 quiet console=ttyS0 rdinit=/sbin/provium-agent");
	check_asm("console=ttyS0 quiet", false, "console=ttyS0 quiet");
	check_asm("console=ttyS0,115200n8", false, "console=ttyS0,115200n8");
	check_asm("console=ttyS01", false, "console=ttyS01 console=ttyS0");
	check_asm("  a   b  ", false, "a   b console=ttyS0");
	check_asm(NULL, true, "console=ttyS0 rdinit=/sbin/provium-agent");
	check_asm("", false, "console=ttyS0");
	check_asm("rdinit=/sbin/provium-agent", true, "rdinit=/sbin/provium-agent console=ttyS0");
	check_asm("rdinit=/init", false, "rdinit=/init console=ttyS0");
	/* parameters after "--" belong to init: insert ours before it */
	check_asm("quiet -- single rdinit=/x", true,
		  "quiet console=ttyS0 rdinit=/sbin/provium-agent -- single rdinit=/x");
	check_asm("foo=\"a b\" quiet", false, "foo=\"a b\" quiet console=ttyS0");
}

static void test_rdinit_conflict(void **state)
{
	(void)state;
	char err[512], *out = (char *)1;
	assert_int_equal(qemu_cmdline_assemble("quiet rdinit=/init", true, &out, err, sizeof err), -1);
	assert_null(out);
	assert_non_null(strstr(err, "rdinit=/init"));
	assert_non_null(strstr(err, "inject_agent = false"));
}

static int has_pair(char **argv, const char *a, const char *b)
{
	for (size_t i = 0; argv[i]; i++)
		if (strcmp(argv[i], a) == 0 && (!b || (argv[i + 1] && strcmp(argv[i + 1], b) == 0)))
			return 1;
	return 0;
}

static void test_argv(void **state)
{
	(void)state;
	char err[512], **argv = NULL;
	struct qemu_spec s = {
		.qemu = "/usr/bin/qemu-system-x86_64", .name = "web,1", .run_dir = "/tmp/run,x",
		.kernel = "/k/vmlinuz", .initrd = "/c/merged.cpio.gz", .cmdline = "console=ttyS0",
		.memory = 300ull << 20, .cpus = 2, .accel = ACCEL_TCG, .agent = true,
		.console = true, .vmgenid = true, .incoming_defer = true, .paused = true,
	};
	assert_int_equal(qemu_build_argv(&s, &argv, err, sizeof err), 0);
	assert_string_equal(argv[0], "/usr/bin/qemu-system-x86_64");
	assert_true(has_pair(argv, "-name", "guest=web,,1"));
	assert_true(has_pair(argv, "-accel", "tcg"));
	assert_false(has_pair(argv, "-cpu", "host"));
	assert_true(has_pair(argv, "-m", "300M"));
	assert_true(has_pair(argv, "-smp", "2"));
	assert_true(has_pair(argv, "-no-reboot", NULL));
	assert_true(has_pair(argv, "-S", NULL));
	assert_true(has_pair(argv, "-nodefaults", NULL));
	assert_true(has_pair(argv, "-chardev", "socket,id=qmp,path=/tmp/run,,x/qmp.sock,server=on,wait=off"));
	assert_true(has_pair(argv, "-mon", "chardev=qmp,mode=control"));
	assert_true(has_pair(argv, "-chardev",
			     "socket,id=con,path=/tmp/run,,x/console.sock,server=on,wait=off,"
			     "logfile=/tmp/run,,x/console.log"));
	assert_true(has_pair(argv, "-serial", "chardev:con"));
	assert_true(has_pair(argv, "-chardev", "socket,id=agent,path=/tmp/run,,x/agent.sock,server=off"));
	assert_true(has_pair(argv, "-device", "virtio-serial-pci,id=vser0"));
	assert_true(has_pair(argv, "-device",
			     "virtserialport,bus=vser0.0,chardev=agent,name=org.provium.agent"));
	assert_true(has_pair(argv, "-device", "vmgenid"));
	assert_true(has_pair(argv, "-kernel", "/k/vmlinuz"));
	assert_true(has_pair(argv, "-initrd", "/c/merged.cpio.gz"));
	assert_true(has_pair(argv, "-append", "console=ttyS0"));
	assert_true(has_pair(argv, "-incoming", "defer"));
	qemu_argv_free(argv);

	/* defaults: 256 MiB, 1 cpu, kvm gets -cpu host, no optional devices */
	struct qemu_spec d = { .run_dir = "/r", .accel = ACCEL_KVM, .memory = 1 };
	assert_int_equal(qemu_build_argv(&d, &argv, err, sizeof err), 0);
	assert_true(has_pair(argv, "-m", "1M"));
	assert_true(has_pair(argv, "-smp", "1"));
	assert_true(has_pair(argv, "-accel", "kvm"));
	assert_true(has_pair(argv, "-cpu", "host"));
	assert_false(has_pair(argv, "-S", NULL));
	assert_false(has_pair(argv, "-kernel", NULL));
	assert_false(has_pair(argv, "-incoming", NULL));
	assert_false(has_pair(argv, "-serial", NULL));
	qemu_argv_free(argv);

	/* a run dir too long for sun_path is refused, naming it */
	char longdir[200];
	memset(longdir, 'd', sizeof longdir - 1);
	longdir[0] = '/';
	longdir[sizeof longdir - 1] = 0;
	struct qemu_spec l = { .run_dir = longdir };
	assert_int_equal(qemu_build_argv(&l, &argv, err, sizeof err), -1);
	assert_non_null(strstr(err, "too long"));
	assert_null(argv);
}

static void test_spawn_and_reap(void **state)
{
	(void)state;
	char dir[] = "/tmp/test-qemu-launch-XXXXXX", err[512], path[4200];
	struct qemu_proc p;
	assert_non_null(mkdtemp(dir));

	/* exec failure is reported, not hidden behind exit 127 */
	struct qemu_spec bad = { .qemu = "/nonexistent/qemu", .run_dir = dir };
	assert_int_equal(qemu_spawn(&bad, &p, err, sizeof err), -1);
	assert_non_null(strstr(err, "/nonexistent/qemu"));
	assert_int_equal(p.pid, 0);

	/* /bin/true ignores the arguments: exits 0, reaped by qemu_wait */
	struct qemu_spec t = { .qemu = "/bin/true", .run_dir = dir };
	assert_int_equal(qemu_spawn(&t, &p, err, sizeof err), 0);
	assert_true(p.pid > 0);
	assert_int_equal(qemu_wait(&p, 10000), 1);
	assert_true(WIFEXITED(p.status) && WEXITSTATUS(p.status) == 0);
	qemu_kill(&p); /* harmless after reap */
	snprintf(path, sizeof path, "%s/qemu.log", dir);
	assert_int_equal(access(path, F_OK), 0);

	/* a never-ending child: wait times out, kill reaps it */
	char script[4200];
	snprintf(script, sizeof script, "%s/hang.sh", dir);
	FILE *f = fopen(script, "w");
	assert_non_null(f);
	fputs("#!/bin/sh\nexec sleep 1000\n", f);
	fclose(f);
	chmod(script, 0755);
	struct qemu_spec y = { .qemu = script, .run_dir = dir };
	assert_int_equal(qemu_spawn(&y, &p, err, sizeof err), 0);
	assert_int_equal(qemu_wait(&p, 20), 0);
	qemu_kill(&p);
	assert_true(p.reaped);
	assert_true(WIFSIGNALED(p.status));
	char st[128];
	qemu_describe_status(&p, st, sizeof st);
	assert_non_null(strstr(st, "signal 9"));

	/* killed without waiting: reads as reaped (SIGKILL) at once, the
	 * process is reaped by qemu_reap_killed (a blocking one leaves no
	 * child behind) */
	assert_int_equal(qemu_spawn(&y, &p, err, sizeof err), 0);
	pid_t child = p.pid;
	qemu_kill_nowait(&p);
	assert_true(p.reaped);
	assert_int_equal(p.pid, 0);
	assert_true(WIFSIGNALED(p.status) && WTERMSIG(p.status) == SIGKILL);
	qemu_kill(&p); /* harmless */
	qemu_reap_killed(true);
	errno = 0;
	assert_int_equal(waitpid(child, NULL, WNOHANG), -1);
	assert_int_equal(errno, ECHILD);
	qemu_reap_killed(false);   /* nothing left: a no-op */
	unlink(path);
	unlink(script);
	rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cmdline),
		cmocka_unit_test(test_rdinit_conflict),
		cmocka_unit_test(test_argv),
		cmocka_unit_test(test_spawn_and_reap),
	};
	return cmocka_run_group_tests_name("qemu_launch", tests, NULL, NULL);
}
