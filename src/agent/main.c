/* main.c — provium-agent's entry point: PID 1 wrapper and supervisor.
 *
 * Started by the kernel as rdinit=/sbin/provium-agent (the agent arrives
 * in a second cpio concatenated after the profile's initrd). As PID 1 it
 *
 *   1. does the boot duties of boot.c (mounts, console, clock from the
 *      command line, modules from /lib/modules/provium/order, lo up);
 *   2. forks a supervisor, which runs the op server (server.c) in a child
 *      and restarts it (after a short pause) if it ever dies;
 *      without an /init of the initrd's, runs its /etc/provium/rc first
 *      (boot_rc), so what rc starts is up before the host's first op;
 *   3. execs the initrd's own /init if there is an executable one — the
 *      profile's init then owns the rest of the boot, and the op server
 *      simply lives on as one of its processes;
 *   4. otherwise stays PID 1 as a minimal init: reaps every orphan, and
 *      powers the guest off when the ACPI power button is pressed.
 *
 * Power button choice: the kit loads the ACPI "button" driver and
 * "evdev", so the button shows up as an input device; PID 1 watches every
 * /dev/input/event* whose key bitmap has KEY_POWER (re-scanning for a few
 * seconds, since devices can appear after the modules load) and calls
 * agent_poweroff() on a KEY_POWER press. No acpid, no netlink.
 *
 * Run as a non-PID-1 process with "--server", the binary is just the op
 * server (handy for debugging inside a guest that has its own init).
 */
#include "agent/agent.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/input.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/reboot.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define MODULE_DIR "/lib/modules/provium"
#define RC_PATH "/etc/provium/rc"
#define MAX_INPUTS 16

static void supervise(void)
{
	for (;;) {
		pid_t pid = fork();
		int st;

		if (pid == 0) {
			_exit(server_main() < 0 ? 1 : 0);
		}
		if (pid < 0) {
			agent_log("fork: %s", strerror(errno));
			sleep(1);
			continue;
		}
		while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
			;
		agent_log("op server exited (status 0x%x); restarting", st);
		usleep(200000);
	}
}

static int has_key_power(int fd)
{
	unsigned long bits[KEY_MAX / (8 * sizeof(unsigned long)) + 1];
	size_t w = 8 * sizeof(unsigned long);

	memset(bits, 0, sizeof bits);
	if (ioctl(fd, EVIOCGBIT(EV_KEY, sizeof bits), bits) < 0)
		return 0;
	return (bits[KEY_POWER / w] >> (KEY_POWER % w)) & 1;
}

/* Open every not-yet-open input device that can send KEY_POWER. */
static int scan_inputs(struct pollfd *p, int n, char names[][256])
{
	DIR *d = opendir("/dev/input");
	struct dirent *e;

	if (!d)
		return n;
	while ((e = readdir(d)) && n < MAX_INPUTS) {
		char path[300];
		int fd, seen = 0;

		if (strncmp(e->d_name, "event", 5) != 0)
			continue;
		for (int i = 1; i < n; i++)
			if (strcmp(names[i], e->d_name) == 0)
				seen = 1;
		if (seen)
			continue;
		snprintf(path, sizeof path, "/dev/input/%s", e->d_name);
		fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
		if (fd < 0)
			continue;
		if (!has_key_power(fd)) {
			close(fd);
			continue;
		}
		snprintf(names[n], 256, "%s", e->d_name);
		p[n++] = (struct pollfd){ .fd = fd, .events = POLLIN };
		agent_log("power button: %s", path);
	}
	closedir(d);
	return n;
}

static void minimal_init(void)
{
	struct pollfd p[MAX_INPUTS];
	char names[MAX_INPUTS][256];
	sigset_t set;
	int n = 1, scans = 0;

	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	sigprocmask(SIG_BLOCK, &set, NULL);
	p[0] = (struct pollfd){ .fd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK),
				.events = POLLIN };
	names[0][0] = 0;
	reboot(RB_DISABLE_CAD);
	for (;;) {
		int timeout = -1;

		if (n == 1 && scans < 10) {
			n = scan_inputs(p, n, names);
			scans++;
			timeout = n == 1 ? 1000 : -1;
		}
		if (poll(p, (nfds_t)n, timeout) < 0 && errno != EINTR)
			usleep(100000);
		if (p[0].revents) {
			struct signalfd_siginfo si;

			while (read(p[0].fd, &si, sizeof si) > 0)
				;
		}
		while (waitpid(-1, NULL, WNOHANG) > 0)
			;
		for (int i = 1; i < n; i++) {
			struct input_event ev;

			if (!(p[i].revents & POLLIN))
				continue;
			while (read(p[i].fd, &ev, sizeof ev) == (ssize_t)sizeof ev)
				if (ev.type == EV_KEY && ev.code == KEY_POWER &&
				    ev.value == 1) {
					agent_log("power button pressed (%s)", names[i]);
					agent_poweroff(0);
				}
		}
	}
}

int main(int argc, char **argv)
{
	pid_t pid;
	int own_init;

	if (getpid() != 1) {
		if (argc > 1 && strcmp(argv[1], "--server") == 0)
			return server_main() < 0 ? 1 : 0;
		fprintf(stderr, "usage: provium-agent --server  "
			"(as PID 1 it boots the guest)\n");
		return 2;
	}
	setenv("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", 1);
	/* The kernel hands init HOME=/; root's home is /root. */
	if (!getenv("HOME") || strcmp(getenv("HOME"), "/") == 0)
		setenv("HOME", "/root", 1);
	setenv("TERM", "linux", 0);
	umask(022);

	boot_mounts();
	boot_console();
	agent_log("provium-agent %s starting (protocol %d)", PROVIUM_VERSION,
		  PROTOCOL_VERSION);
	boot_cmdline_clock();
	boot_modules(MODULE_DIR);
	boot_loopback();
	own_init = access("/init", X_OK) == 0;
	if (!own_init)
		boot_rc(RC_PATH);

	pid = fork();
	if (pid == 0) {
		setsid();
		supervise();
	}
	if (pid < 0)
		agent_log("fork: %s", strerror(errno));

	if (own_init) {
		static char init_path[] = "/init";

		argv[0] = init_path;
		execv("/init", argv);
		agent_log("exec /init: %s; staying as a minimal init",
			  strerror(errno));
	}
	minimal_init();
	return 0;
}
