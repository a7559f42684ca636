/* boot.c — PID 1's one-time duties, in the order main.c calls them.
 *
 *   boot_mounts      proc, sysfs, devtmpfs, devpts, /dev/shm, tmpfs /tmp
 *                    and /run (an already-mounted target is fine); a
 *                    /dev/hvc0 -> ttyS0 link when there is no hvc0
 *   boot_console     make fds 0-2 the console if the initramfs had no
 *                    /dev/console node when the kernel started us
 *   boot_cmdline_clock  "provium.time_ns=<int>" on the kernel command line
 *                    sets CLOCK_REALTIME (boot opt initial_time)
 *   boot_modules     load <dir>/order: one module file name per line,
 *                    relative to <dir>, in load order; '#' starts a
 *                    comment. finit_module(2), falling back to
 *                    init_module(2). A module already present (EEXIST) is
 *                    fine; a missing or mismatched one is logged and
 *                    skipped — never fatal.
 *   boot_loopback    bring "lo" up (the kernel adds 127.0.0.1/8 itself)
 *   boot_rc          run the initrd's /etc/provium/rc, when executable,
 *                    and wait for it (at most RC_WAIT_MS): the init-less
 *                    guest kit starts its services (syslogd) there; a
 *                    profile with its own /init never gets here
 *
 * agent_poweroff is here too: SIGTERM everyone, give them a moment, SIGKILL,
 * sync, then reboot(2) with POWER_OFF (or RESTART). Under QEMU's
 * -no-reboot either one ends the QEMU process.
 *
 * Failures are logged to the console and boot carries on: a guest with no
 * /tmp is still more debuggable than a kernel panic from PID 1 exiting.
 */
#include "agent/agent.h"

#include <errno.h>
#include <dirent.h>
#include <fcntl.h>
#include <net/if.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void mount_one(const char *src, const char *dst, const char *type,
		      unsigned long flags, const char *data)
{
	mkdir(dst, 0755);
	if (mount(src, dst, type, flags, data) < 0 && errno != EBUSY)
		agent_log("mount %s on %s: %s", type, dst, strerror(errno));
}

void boot_mounts(void)
{
	mount_one("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
	mount_one("sysfs", "/sys", "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
	mount_one("devtmpfs", "/dev", "devtmpfs", MS_NOSUID, "mode=0755");
	mount_one("devpts", "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC,
		  "gid=5,mode=620,ptmxmode=666");
	mount_one("tmpfs", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777");
	mount_one("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777");
	mount_one("tmpfs", "/run", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755");
	/* The guest console is ttyS0 here; tests written for a virtio
	 * console write to /dev/hvc0, so give that name to it too. */
	if (access("/dev/hvc0", F_OK) < 0 && access("/dev/ttyS0", F_OK) == 0 &&
	    symlink("ttyS0", "/dev/hvc0") < 0)
		agent_log("symlink /dev/hvc0: %s", strerror(errno));
}

void boot_console(void)
{
	int fd;

	if (fcntl(STDERR_FILENO, F_GETFD) >= 0)
		return;
	fd = open("/dev/console", O_RDWR | O_NOCTTY);
	if (fd < 0)
		return;
	for (int i = 0; i < 3; i++)
		if (fd != i)
			dup2(fd, i);
	if (fd > 2)
		close(fd);
}

void boot_cmdline_clock(void)
{
	char line[4096], *p;
	FILE *f = fopen("/proc/cmdline", "re");
	size_t n;

	if (!f)
		return;
	n = fread(line, 1, sizeof line - 1, f);
	fclose(f);
	line[n] = 0;
	for (p = strtok(line, " \t\n"); p; p = strtok(NULL, " \t\n")) {
		if (strncmp(p, "provium.time_ns=", 16) == 0) {
			long long ns = strtoll(p + 16, NULL, 10);
			struct timespec ts;

			ts.tv_sec = ns / 1000000000LL;
			ts.tv_nsec = ns % 1000000000LL;
			if (ts.tv_nsec < 0) {
				ts.tv_nsec += 1000000000LL;
				ts.tv_sec--;
			}
			if (clock_settime(CLOCK_REALTIME, &ts) < 0)
				agent_log("initial clock: %s", strerror(errno));
		}
	}
}

/* Load one module file. 0, or -1 with errno. */
static int load_module(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	int ret;

	if (fd < 0)
		return -1;
	ret = (int)syscall(SYS_finit_module, fd, "", 0);
	if (ret < 0 && errno == ENOSYS) {
		struct stat st;
		char *img;

		if (fstat(fd, &st) < 0 || !(img = malloc((size_t)st.st_size)))
			goto out;
		if (read(fd, img, (size_t)st.st_size) == st.st_size)
			ret = (int)syscall(SYS_init_module, img,
					   (unsigned long)st.st_size, "");
		free(img);
	}
out:
	{
		int e = errno;

		close(fd);
		errno = e;
	}
	return ret;
}

void boot_modules(const char *dir)
{
	char path[1024], line[512];
	FILE *f;
	int loaded = 0, failed = 0;

	snprintf(path, sizeof path, "%s/order", dir);
	f = fopen(path, "re");
	if (!f) {
		if (errno != ENOENT)
			agent_log("%s: %s", path, strerror(errno));
		return;
	}
	while (fgets(line, sizeof line, f)) {
		char *s = line;

		s[strcspn(s, "#\r\n")] = 0;
		while (*s == ' ' || *s == '\t')
			s++;
		for (size_t n = strlen(s); n && (s[n - 1] == ' ' || s[n - 1] == '\t'); n--)
			s[n - 1] = 0;
		if (!*s)
			continue;
		snprintf(path, sizeof path, "%s/%s", dir, s);
		if (load_module(path) < 0 && errno != EEXIST) {
			agent_log("module %s: %s", s, strerror(errno));
			failed++;
		} else {
			loaded++;
		}
	}
	fclose(f);
	agent_log("modules: %d loaded, %d failed", loaded, failed);
}

void boot_loopback(void)
{
	struct ifreq ifr;
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	if (s < 0) {
		agent_log("lo: socket: %s", strerror(errno));
		return;
	}
	memset(&ifr, 0, sizeof ifr);
	strcpy(ifr.ifr_name, "lo");
	if (ioctl(s, SIOCGIFFLAGS, &ifr) < 0) {
		agent_log("lo: SIOCGIFFLAGS: %s", strerror(errno));
	} else {
		ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
		if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0)
			agent_log("lo: SIOCSIFFLAGS: %s", strerror(errno));
	}
	close(s);
}

#define RC_WAIT_MS 5000

void boot_rc(const char *path)
{
	pid_t pid;
	int st;

	if (access(path, X_OK) < 0)
		return;
	pid = fork();
	if (pid < 0) {
		agent_log("%s: fork: %s", path, strerror(errno));
		return;
	}
	if (pid == 0) {
		execl(path, path, (char *)NULL);
		agent_log("%s: exec: %s", path, strerror(errno));
		_exit(127);
	}
	for (int ms = 0; ms < RC_WAIT_MS; ms++) {
		pid_t w = waitpid(pid, &st, WNOHANG);

		if (w == pid) {
			if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
				agent_log("%s: exit status %d", path,
					  WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
			return;
		}
		if (w < 0 && errno != EINTR)
			return;
		usleep(1000);
	}
	agent_log("%s: still running after %d ms; booting on", path, RC_WAIT_MS);
}

/* Is any user-space process other than us and PID 1 still running?
 * Kernel threads (empty cmdline) and zombies do not count. */
static int user_processes_left(void)
{
	DIR *d = opendir("/proc");
	struct dirent *de;
	pid_t self = getpid();
	int left = 0;
	if (!d)
		return 0;
	while (!left && (de = readdir(d))) {
		char path[64], buf[256];
		long pid = strtol(de->d_name, NULL, 10);
		ssize_t n;
		int fd;
		if (pid <= 1 || pid == self)
			continue;
		snprintf(path, sizeof path, "/proc/%ld/stat", pid);
		if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
			continue;
		n = read(fd, buf, sizeof buf - 1);
		close(fd);
		if (n <= 0)
			continue;
		buf[n] = 0;
		{
			/* "pid (comm) S ..." — the state follows the last ')' */
			char *rp = strrchr(buf, ')');
			if (!rp || rp[1] != ' ' || rp[2] == 'Z')
				continue;
		}
		snprintf(path, sizeof path, "/proc/%ld/cmdline", pid);
		if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
			continue;
		n = read(fd, buf, 1);
		close(fd);
		if (n > 0)
			left = 1;
	}
	closedir(d);
	return left;
}

void agent_poweroff(int reboot_instead)
{
	agent_log("%s", reboot_instead ? "rebooting" : "powering off");
	kill(-1, SIGTERM);
	/* Give them up to 1 s, but no longer than they take. */
	for (int i = 0; i < 100; i++) {
		/* Reap what we can; other processes' children go to PID 1. */
		while (waitpid(-1, NULL, WNOHANG) > 0)
			;
		if (!user_processes_left())
			break;
		usleep(10000);
	}
	kill(-1, SIGKILL);
	sync();
	reboot(reboot_instead ? RB_AUTOBOOT : RB_POWER_OFF);
	agent_log("reboot(2): %s", strerror(errno));
	for (;;)
		pause();
}
