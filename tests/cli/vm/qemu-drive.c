/* qemu-drive.c — drives the qemu VMM backend directly (no Lua) for
 * tests/cli/t_vm_reconnect.sh:
 *
 *   qemu-drive KIT_DIR RUN_DIR N
 *
 * boots the kit's guest, then N times: drop the host end of the agent
 * channel and connect again (qemu_vm_reconnect: QEMU re-connects, fresh
 * Hello), followed by a working op (read_file; every 10th an exec). Then
 * destroy, and check the QEMU process is gone. Prints "ok ..." lines and
 * "FAIL ..." on the first failure (exit 1). Timings are informational. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "vmm/qemu_vm.h"
#include "vmm/vmm.h"
#include "clock.h"

/* Seconds on the monotonic clock (informational timings). */
static double now(void)
{
	return (double)mono_now_ns() / 1e9;
}

int main(int argc, char **argv)
{
	char kernel[4096], initrd[4096], overlay[4096], err[4096];
	struct vmm_vm *vm = NULL;
	const struct vmm_ops *ops = &vmm_qemu_ops;
	int n = argc > 3 ? atoi(argv[3]) : 100, ok = 0;
	double t0, worst = 0, sum = 0;
	pid_t pid;

	if (argc < 3) {
		fprintf(stderr, "usage: qemu-drive KIT_DIR RUN_DIR [N]\n");
		return 2;
	}
	snprintf(kernel, sizeof kernel, "%s/vmlinuz", argv[1]);
	snprintf(initrd, sizeof initrd, "%s/initrd.cpio.gz", argv[1]);
	snprintf(overlay, sizeof overlay, "%s/agent-overlay.cpio.gz", argv[1]);
	struct vmm_profile prof = {
		.name = "default", .kernel = kernel, .initrd = initrd, .cmdline = "panic=-1 quiet",
		.guest_os = "peios", .agent_overlay_path = overlay, .inject_agent = true,
		.agent_boot_timeout_ns = 60000000000LL, .accel = "tcg",
	};
	struct vmm_create_args ca = { .name = "rc", .run_dir = argv[2], .profile = &prof };
	struct vmm_boot_opts bo = { .memory = 256u << 20, .cpus = 1 };
	struct vmm_boot_info info;

	if (ops->create(&vm, &ca, err, sizeof err) < 0) {
		printf("FAIL create: %s\n", err);
		return 1;
	}
	t0 = now();
	if (ops->boot(vm, &bo, &info, err, sizeof err) < 0) {
		printf("FAIL boot: %s\n", err);
		ops->destroy(vm);
		return 1;
	}
	printf("ok booted in %.2f s\n", now() - t0);
	pid = qemu_vm_pid(vm);
	for (int i = 0; i < n; i++) {
		char *data = NULL;
		size_t len = 0;
		double t = now(), d;
		if (qemu_vm_reconnect(vm, err, sizeof err) < 0) {
			printf("FAIL reconnect %d: %s\n", i, err);
			break;
		}
		if (ops->read_file(vm, "/proc/uptime", &data, &len, err, sizeof err) < 0 || !len) {
			printf("FAIL read_file after reconnect %d: %s\n", i, err);
			break;
		}
		free(data);
		if (i % 10 == 0) {
			const char *av[] = { "echo", "x", NULL };
			struct vmm_exec_req r = { .file = "echo", .argv = av, .timeout_ns = 10000000000LL };
			struct vmm_exec_result res;
			if (ops->exec(vm, &r, &res, err, sizeof err) < 0 || strcmp(res.out, "x\n") != 0) {
				printf("FAIL exec after reconnect %d: %s\n", i, err);
				break;
			}
			vmm_exec_result_free(&res);
		}
		d = now() - t;
		sum += d;
		if (d > worst)
			worst = d;
		ok++;
	}
	if (ok == n)
		printf("ok %d reconnects, each followed by a working op (mean %.1f ms, max %.1f ms)\n",
		       n, sum / n * 1000, worst * 1000);
	ops->destroy(vm);
	if (pid > 0 && kill(pid, 0) == 0) {
		printf("FAIL QEMU %d still running after destroy\n", (int)pid);
		return 1;
	}
	printf("ok destroy reaped QEMU\n");
	return ok == n ? 0 : 1;
}
