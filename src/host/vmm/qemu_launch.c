/* qemu_launch.c — the QEMU command line and the child process (the
 * "auto" accelerator verdict is qemu_accel.c's).
 *
 * Owns: nothing long-lived. qemu_spawn() hands the pid to the caller in a
 * struct qemu_proc; qemu_kill()/qemu_wait() reap it.
 *
 * Spawn sequence: open qemu.log and /dev/null in the parent, fork; the
 * child moves to its own process group (terminal signals such as the
 * REPL's Ctrl-C never reach it), sets PR_SET_PDEATHSIG(SIGKILL), then
 * compares getppid() with the parent's pid taken before fork (if the
 * parent died in between, the signal will never come, so the child
 * exits), restores default signal handling, wires fds 0-2 and execs.
 * An exec failure travels back over a CLOEXEC pipe as an errno, so
 * qemu_spawn() reports "exec qemu: ENOENT" rather than a child that
 * silently exited 127.
 *
 * Option values that carry paths are escaped QEMU-style (',' -> ',,'). */
#include "errbuf.h"
#include "vmm/qemu_launch.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

const char *qemu_binary(const char *want)
{
	if (want && *want)
		return want;
	const char *env = getenv("PROVIUM_QEMU");
	return env && *env ? env : "qemu-system-x86_64";
}

int qemu_run_path(char *buf, size_t len, const char *run_dir, const char *leaf)
{
	int n = snprintf(buf, len, "%s/%s", run_dir, leaf);
	if (n < 0 || (size_t)n >= len) {
		errno = ENAMETOOLONG;
		return -1;
	}
	return 0;
}

/* ---- argv vector ---------------------------------------------------- */

struct strv {
	char **v;
	size_t n, cap;
	bool oom;
};

static void sv_push(struct strv *s, char *str)
{
	if (!str) {
		s->oom = true;
		return;
	}
	if (s->n + 2 > s->cap) {
		size_t ncap = s->cap ? s->cap * 2 : 32;
		char **nv = realloc(s->v, ncap * sizeof *nv);
		if (!nv) {
			free(str);
			s->oom = true;
			return;
		}
		s->v = nv;
		s->cap = ncap;
	}
	s->v[s->n++] = str;
	s->v[s->n] = NULL;
}

static void sv_add(struct strv *s, const char *str)
{
	sv_push(s, strdup(str));
}

static void sv_addf(struct strv *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sv_addf(struct strv *s, const char *fmt, ...)
{
	char *p = NULL;
	va_list ap;
	va_start(ap, fmt);
	if (vasprintf(&p, fmt, ap) < 0)
		p = NULL;
	va_end(ap);
	sv_push(s, p);
}

/* QEMU option escaping: every ',' doubled. malloc'd. */
static char *qesc(const char *s)
{
	size_t n = 0;
	for (const char *p = s; *p; p++)
		n += *p == ',' ? 2 : 1;
	char *o = malloc(n + 1), *q = o;
	if (!o)
		return NULL;
	for (const char *p = s; *p; p++) {
		*q++ = *p;
		if (*p == ',')
			*q++ = ',';
	}
	*q = 0;
	return o;
}

void qemu_argv_free(char **argv)
{
	if (!argv)
		return;
	for (char **p = argv; *p; p++)
		free(*p);
	free(argv);
}

/* Socket path for leaf, checked against sun_path; escaped for QEMU. */
static char *sock_opt(const char *run_dir, const char *leaf, char *err, size_t errlen)
{
	char path[4096];
	struct sockaddr_un sa;
	if (qemu_run_path(path, sizeof path, run_dir, leaf) < 0 || strlen(path) >= sizeof sa.sun_path) {
		err_set(err, errlen, "socket path too long for a unix socket (max %zu bytes): %s/%s",
		       sizeof sa.sun_path - 1, run_dir, leaf);
		return NULL;
	}
	char *e = qesc(path);
	if (!e)
		err_set(err, errlen, "out of memory");
	return e;
}

int qemu_build_argv(const struct qemu_spec *s, char ***argv, char *err, size_t errlen)
{
	struct strv v = { 0 };
	char *qmp = NULL, *con = NULL, *conlog = NULL, *agent = NULL;
	int rc = -1;

	*argv = NULL;
	if (!s->run_dir || !*s->run_dir) {
		err_set(err, errlen, "qemu: no run directory");
		return -1;
	}
	if (!(qmp = sock_opt(s->run_dir, "qmp.sock", err, errlen)))
		goto out;
	if (s->console && !(con = sock_opt(s->run_dir, "console.sock", err, errlen)))
		goto out;
	if (s->agent && !(agent = sock_opt(s->run_dir, "agent.sock", err, errlen)))
		goto out;
	if (s->console) {
		char p[4096];
		if (qemu_run_path(p, sizeof p, s->run_dir, "console.log") < 0 || !(conlog = qesc(p))) {
			err_set(err, errlen, "console log path too long: %s", s->run_dir);
			goto out;
		}
	}

	uint64_t mem = s->memory ? s->memory : QEMU_DEFAULT_MEMORY;
	uint64_t mib = (mem + (1u << 20) - 1) >> 20;

	sv_add(&v, qemu_binary(s->qemu));
	if (s->name) {
		char *e = qesc(s->name);
		sv_add(&v, "-name");
		if (e)
			sv_addf(&v, "guest=%s", e);
		else
			v.oom = true;
		free(e);
	}
	sv_add(&v, "-nodefaults");
	sv_add(&v, "-no-user-config");
	sv_add(&v, "-display");
	sv_add(&v, "none");
	sv_add(&v, "-machine");
	sv_add(&v, "q35");
	sv_add(&v, "-accel");
	sv_add(&v, s->accel == ACCEL_KVM ? "kvm" : "tcg");
	if (s->accel == ACCEL_KVM) {
		sv_add(&v, "-cpu");
		sv_add(&v, "host");
	}
	sv_add(&v, "-m");
	sv_addf(&v, "%lluM", (unsigned long long)mib);
	sv_add(&v, "-smp");
	sv_addf(&v, "%d", s->cpus > 0 ? s->cpus : 1);
	sv_add(&v, "-no-reboot");
	if (s->paused)
		sv_add(&v, "-S");
	sv_add(&v, "-chardev");
	sv_addf(&v, "socket,id=qmp,path=%s,server=on,wait=off", qmp);
	sv_add(&v, "-mon");
	sv_add(&v, "chardev=qmp,mode=control");
	if (s->console) {
		sv_add(&v, "-chardev");
		sv_addf(&v, "socket,id=con,path=%s,server=on,wait=off,logfile=%s", con, conlog);
		sv_add(&v, "-serial");
		sv_add(&v, "chardev:con");
	}
	if (s->agent) {
		sv_add(&v, "-chardev");
		sv_addf(&v, "socket,id=agent,path=%s,server=off", agent);
		sv_add(&v, "-device");
		sv_add(&v, "virtio-serial-pci,id=vser0");
		sv_add(&v, "-device");
		sv_add(&v, "virtserialport,bus=vser0.0,chardev=agent,name=" QEMU_AGENT_PORT_NAME);
	}
	/* Empty root ports: q35 cannot hotplug onto pcie.0 itself. Their
	 * qdev ids are "pdisk<N>-port" (qemu_disk.c and qemu_net.c plug into
	 * them). */
	for (int i = 0; s->disk_slots && i < QEMU_DISK_SLOTS; i++) {
		sv_add(&v, "-device");
		sv_addf(&v, "pcie-root-port,id=pdisk%d-port,bus=pcie.0,chassis=%d,slot=%d",
		        i, 16 + i, 16 + i);
	}
	if (s->vmgenid) {
		sv_add(&v, "-device");
		sv_add(&v, "vmgenid");
	}
	if (s->kernel) {
		sv_add(&v, "-kernel");
		sv_add(&v, s->kernel);
	}
	if (s->initrd) {
		sv_add(&v, "-initrd");
		sv_add(&v, s->initrd);
	}
	if (s->cmdline) {
		sv_add(&v, "-append");
		sv_add(&v, s->cmdline);
	}
	if (s->incoming_defer) {
		sv_add(&v, "-incoming");
		sv_add(&v, "defer");
	}
	for (const char *const *e = s->extra; e && *e; e++)
		sv_add(&v, *e);
	if (v.oom || !v.v) {
		err_set(err, errlen, "qemu argv: out of memory");
		goto out;
	}
	*argv = v.v;
	v.v = NULL;
	rc = 0;
out:
	qemu_argv_free(v.v);
	free(qmp);
	free(con);
	free(conlog);
	free(agent);
	return rc;
}

/* ---- the child ------------------------------------------------------ */

/* Only async-signal-safe calls between fork and exec. */
static void child_exec(char **argv, pid_t parent, int in, int out, int errpipe,
		       const int *pass, size_t npass)
{
	int e;
	/* Its own process group: the terminal's Ctrl-C (SIGINT to the
	 * foreground group, e.g. `provium repl`) never reaches QEMU, which
	 * would exit on it. PDEATHSIG still ends it with its parent. */
	if (setpgid(0, 0) < 0)
		goto fail;
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0)
		goto fail;
	if (getppid() != parent)
		_exit(127); /* the runner died before PDEATHSIG was armed */
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	for (int sig = 1; sig < 32; sig++) {
		if (sig != SIGKILL && sig != SIGSTOP)
			signal(sig, SIG_DFL);
	}
	if (dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(out, 2) < 0)
		goto fail;
#ifdef CLOSE_RANGE_CLOEXEC
	/* QEMU inherits only 0-2: fds opened without O_CLOEXEC (a test's
	 * io.open, the caller's) close at exec; errpipe stays usable until then. */
	(void)close_range(3, ~0U, CLOSE_RANGE_CLOEXEC);
#endif
	for (size_t i = 0; i < npass; i++)
		if (fcntl(pass[i], F_SETFD, 0) < 0)
			goto fail;
	execvp(argv[0], argv);
fail:
	e = errno;
	if (write(errpipe, &e, sizeof e) < 0) {
		/* nothing more we can do */
	}
	_exit(127);
}

int qemu_spawn(const struct qemu_spec *s, struct qemu_proc *p, char *err, size_t errlen)
{
	char **argv = NULL;
	char logpath[4096];
	int in = -1, out = -1, pfd[2] = { -1, -1 };
	int rc = -1;

	memset(p, 0, sizeof *p);
	if (qemu_build_argv(s, &argv, err, errlen) < 0)
		return -1;
	if (qemu_run_path(logpath, sizeof logpath, s->run_dir, "qemu.log") < 0) {
		err_set(err, errlen, "run directory path too long: %s", s->run_dir);
		goto out;
	}
	in = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (in < 0) {
		err_set(err, errlen, "open /dev/null: %s", strerror(errno));
		goto out;
	}
	out = open(logpath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (out < 0) {
		err_set(err, errlen, "open %s: %s", logpath, strerror(errno));
		goto out;
	}
	if (pipe2(pfd, O_CLOEXEC) < 0) {
		err_set(err, errlen, "pipe: %s", strerror(errno));
		goto out;
	}
	pid_t parent = getpid();
	pid_t pid = fork();
	if (pid < 0) {
		err_set(err, errlen, "fork: %s", strerror(errno));
		goto out;
	}
	if (pid == 0)
		child_exec(argv, parent, in, out, pfd[1], s->pass_fds, s->npass_fds);
	setpgid(pid, pid);   /* also here: no window in the parent's group */
	close(pfd[1]);
	pfd[1] = -1;
	int childerr = 0;
	ssize_t n;
	do
		n = read(pfd[0], &childerr, sizeof childerr);
	while (n < 0 && errno == EINTR);
	p->pid = pid;
	if (n > 0) {
		struct qemu_proc tmp = *p;
		qemu_kill(&tmp);
		memset(p, 0, sizeof *p);
		err_set(err, errlen, "exec %s: %s", argv[0], strerror(childerr));
		goto out;
	}
	rc = 0;
out:
	if (in >= 0)
		close(in);
	if (out >= 0)
		close(out);
	if (pfd[0] >= 0)
		close(pfd[0]);
	if (pfd[1] >= 0)
		close(pfd[1]);
	qemu_argv_free(argv);
	return rc;
}

/* ---- waiting and killing -------------------------------------------- */

static int reap(struct qemu_proc *p, int flags)
{
	int st;
	pid_t r;
	do
		r = waitpid(p->pid, &st, flags);
	while (r < 0 && errno == EINTR);
	if (r == p->pid) {
		p->status = st;
		p->reaped = true;
		p->pid = 0;
		return 1;
	}
	if (r < 0 && errno == ECHILD) { /* someone else reaped it */
		p->reaped = true;
		p->pid = 0;
		return 1;
	}
	return r < 0 ? -1 : 0;
}

int qemu_wait(struct qemu_proc *p, int timeout_ms)
{
	if (p->pid <= 0)
		return 1;
	if (timeout_ms < 0)
		return reap(p, 0);
	int64_t deadline = mono_now_ns() + (int64_t)timeout_ms * 1000000;
	int pidfd = (int)syscall(SYS_pidfd_open, p->pid, 0);
	int r;
	for (;;) {
		r = reap(p, WNOHANG);
		if (r != 0)
			break;
		int64_t left = deadline - mono_now_ns();
		if (left <= 0)
			break;
		int ms = (int)((left + 999999) / 1000000);
		if (pidfd >= 0) {
			struct pollfd pf = { .fd = pidfd, .events = POLLIN };
			poll(&pf, 1, ms);
		} else {
			poll(NULL, 0, ms < 5 ? ms : 5);
		}
	}
	if (pidfd >= 0)
		close(pidfd);
	return r;
}

/* QEMUs SIGKILLed by qemu_kill_nowait and not waited for yet. */
#define UNREAPED_MAX 64
static pid_t unreaped[UNREAPED_MAX];
static int nunreaped;

void qemu_kill_nowait(struct qemu_proc *p)
{
	if (!p || p->pid <= 0)
		return;
	if (nunreaped == UNREAPED_MAX) {
		qemu_kill(p);
		return;
	}
	int e = errno;
	kill(p->pid, SIGKILL);
	unreaped[nunreaped++] = p->pid;
	p->pid = 0;
	p->reaped = true;
	p->status = SIGKILL;   /* as waitpid reports a SIGKILL death */
	errno = e;
}

void qemu_reap_killed(bool block)
{
	int e = errno;
	for (int i = 0; i < nunreaped;) {
		pid_t r;
		do
			r = waitpid(unreaped[i], NULL, block ? 0 : WNOHANG);
		while (r < 0 && errno == EINTR);
		if (r == unreaped[i] || (r < 0 && errno == ECHILD))
			unreaped[i] = unreaped[--nunreaped];
		else
			i++;
	}
	errno = e;
}

void qemu_kill(struct qemu_proc *p)
{
	if (!p || p->pid <= 0)
		return;
	int e = errno;
	kill(p->pid, SIGKILL);
	reap(p, 0);
	errno = e;
}

void qemu_describe_status(const struct qemu_proc *p, char *buf, size_t len)
{
	if (!p->reaped)
		snprintf(buf, len, "still running");
	else if (WIFEXITED(p->status))
		snprintf(buf, len, "exited with status %d", WEXITSTATUS(p->status));
	else if (WIFSIGNALED(p->status))
		snprintf(buf, len, "killed by signal %d (%s)", WTERMSIG(p->status), strsignal(WTERMSIG(p->status)));
	else
		snprintf(buf, len, "ended (status 0x%x)", p->status);
}

/* ---- kernel cmdline ------------------------------------------------- */

/* Next whitespace-separated token of s (double quotes keep spaces).
 * Returns the token start, sets *len; NULL at the end. */
static const char *next_token(const char **s, size_t *len)
{
	const char *p = *s;
	while (*p == ' ' || *p == '\t' || *p == '\n')
		p++;
	if (!*p)
		return NULL;
	const char *start = p;
	bool quoted = false;
	while (*p && (quoted || (*p != ' ' && *p != '\t' && *p != '\n'))) {
		if (*p == '"')
			quoted = !quoted;
		p++;
	}
	*len = (size_t)(p - start);
	*s = p;
	return start;
}

static bool tok_is(const char *t, size_t n, const char *lit)
{
	return n == strlen(lit) && memcmp(t, lit, n) == 0;
}

static bool tok_prefix(const char *t, size_t n, const char *pre)
{
	size_t pl = strlen(pre);
	return n >= pl && memcmp(t, pre, pl) == 0;
}

int qemu_cmdline_assemble(const char *base, bool inject_agent, char **out, char *err, size_t errlen)
{
	bool has_console = false, has_rdinit = false;
	const char *init_args = NULL; /* position of a standalone "--" */
	const char *s = base ? base : "";
	const char *t;
	size_t n;

	*out = NULL;
	while ((t = next_token(&s, &n))) {
		if (tok_is(t, n, "--")) {
			init_args = t;
			break;
		}
		if (tok_is(t, n, "console=ttyS0") || tok_prefix(t, n, "console=ttyS0,"))
			has_console = true;
		if (inject_agent && tok_prefix(t, n, "rdinit=")) {
			if (tok_is(t, n, "rdinit=" QEMU_AGENT_RDINIT)) {
				has_rdinit = true;
			} else {
				err_set(err, errlen,
				       "kernel cmdline sets `%.*s`, which conflicts with the injected agent "
				       "(rdinit=" QEMU_AGENT_RDINIT "): remove the rdinit= or set "
				       "inject_agent = false on the profile",
				       (int)n, t);
				return -1;
			}
		}
	}
	const char *end = init_args ? init_args : (base ? base + strlen(base) : "");
	const char *b = base ? base : "";
	/* trim trailing whitespace of the kernel part */
	while (end > b && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\n'))
		end--;
	while (b < end && (*b == ' ' || *b == '\t' || *b == '\n'))
		b++;
	size_t klen = (size_t)(end - b);
	size_t cap = klen + 64 + strlen(QEMU_AGENT_RDINIT) + (init_args ? strlen(init_args) : 0);
	char *r = malloc(cap);
	if (!r) {
		err_set(err, errlen, "out of memory");
		return -1;
	}
	memcpy(r, b, klen);
	size_t off = klen;
	if (!has_console)
		off += (size_t)sprintf(r + off, "%sconsole=ttyS0", off ? " " : "");
	if (inject_agent && !has_rdinit)
		off += (size_t)sprintf(r + off, "%srdinit=" QEMU_AGENT_RDINIT, off ? " " : "");
	if (init_args)
		off += (size_t)sprintf(r + off, "%s%s", off ? " " : "", init_args);
	r[off] = 0;
	*out = r;
	return 0;
}
