/* local.c — the `--vmm local` backend: a VM without a guest.
 *
 * NOT ISOLATED. Nothing here boots a kernel: commands run directly on the
 * host, as the user running provium. The backend exists so the framework,
 * the lab graph and the Lua bindings can be tested in milliseconds. Never
 * point it at a test that would be unsafe to run on the host itself.
 *
 * Each VM owns a private scratch directory <run_dir>/vm-<name>-<n>/root
 * (created at create(), removed by nobody: the runner's run directory is
 * cleaned by its owner). Guest paths for file ops map below it, so the
 * guest path "/tmp/x" is <root>/tmp/x. Commands run with their working
 * directory inside <root> (cwd "/etc" -> <root>/etc), but an absolute path
 * *inside a command line* is the host's: `vm:run("cat /tmp/x")` reads the
 * host's /tmp/x. Tests meant for both backends use relative paths in
 * commands or the file ops.
 *
 * State: lvm.c runs the state machine; here boot/pause/resume/reset only
 * record the fact (there is nothing to pause), shutdown kills every async
 * process still running. Processes run in their own process group so a
 * timeout or kill reaches the whole shell pipeline.
 *
 * Errors: 0, or -1 with err filled ("<strerror>" style, errno preserved);
 * ops needing a guest kernel are NULL in vmm_local_ops (VMM_UNSUPPORTED). */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <time.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>

#include "errbuf.h"
#include "interrupt.h"
#include "vmm/vmm.h"
#include "snap/snapfile.h"
#include "snap/snaptree.h"
#include "fsutil.h"
#include "clock.h"

extern char **environ;

struct vmm_vm {
	char *name;
	char *root;                 /* scratch dir: guest "/" */
	char *profile;              /* for the snapshot header */
	uint64_t memory;            /* as booted (snapshot header) */
	int cpus;
	struct vmm_proc *procs;     /* live async processes (for shutdown) */
};

struct vmm_proc {
	struct vmm_vm *vm;          /* NULL once the vm is gone */
	struct vmm_proc *next;
	pid_t pid;                  /* process group leader too */
	int in_fd, out_fd, err_fd;  /* -1 when closed */
	char *out, *err;
	size_t out_len, err_len, out_cap, err_cap;
	bool reaped;
	int wstatus;
	uint64_t handle;
};

struct vmm_file {
	int fd;
};

static unsigned vm_seq;
static uint64_t proc_seq;

/* Map a guest path to a malloc'd host path below vm->root. */
static char *map_path(const struct vmm_vm *vm, const char *path)
{
	char *out;
	const char *sep = path[0] == '/' ? "" : "/";
	if (asprintf(&out, "%s%s%s", vm->root, sep, path) < 0)
		return NULL;
	return out;
}

static int local_create(struct vmm_vm **out, const struct vmm_create_args *a,
                        char *err, size_t errlen)
{
	struct vmm_vm *vm = calloc(1, sizeof(*vm));
	char *tmp = NULL;
	if (!vm)
		goto fail;
	vm->name = strdup(a->name);
	vm->profile = strdup(a->profile && a->profile->name ? a->profile->name : "");
	if (!vm->name || !vm->profile)
		goto fail;
	/* <run_dir>/vm-<name>-<n>: the first n not taken; the name is
	 * sanitised to a single path component. */
	for (;;) {
		char *dir, *slash;
		if (asprintf(&dir, "%s/vm-%s-%u", a->run_dir, a->name, vm_seq++) < 0)
			goto fail;
		slash = strrchr(dir, '/');
		for (char *c = slash + 1; *c; c++)
			if (!(isalnum((unsigned char)*c) || *c == '-' || *c == '_' || *c == '.'))
				*c = '_';
		if (mkdir(dir, 0755) == 0 || errno != EEXIST) {
			int rc = asprintf(&vm->root, "%s/root", dir);
			free(dir);
			if (rc < 0) {
				vm->root = NULL;
				goto fail;
			}
			break;
		}
		free(dir);
	}
	if (mkdir_p(vm->root, 0755, NULL) < 0 ||
	    asprintf(&tmp, "%s/tmp", vm->root) < 0 || mkdir(tmp, 0777) < 0) {
		err_set(err, errlen, "create scratch dir `%s`: %s", vm->root, strerror(errno));
		free(tmp);
		goto fail_msg;
	}
	free(tmp);
	*out = vm;
	return 0;
fail:
	err_set(err, errlen, "%s", strerror(errno));
fail_msg:
	if (vm) {
		free(vm->name);
		free(vm->profile);
		free(vm->root);
		free(vm);
	}
	return -1;
}

static int local_boot(struct vmm_vm *vm, const struct vmm_boot_opts *o,
                      struct vmm_boot_info *info, char *err, size_t errlen)
{
	/* Boot-opt files land in the scratch tree, as the agent would put
	 * them into the initramfs. */
	for (size_t i = 0; i < o->nfiles; i++) {
		char *p = map_path(vm, o->files[i].path);
		char *slash;
		FILE *f;
		if (!p) {
			err_set(err, errlen, "%s", strerror(errno));
			return -1;
		}
		slash = strrchr(p, '/');
		if (slash && slash != p) {
			*slash = '\0';
			if (mkdir_p(p, 0755, NULL) < 0) {
				err_set(err, errlen, "boot file `%s`: %s", o->files[i].path, strerror(errno));
				free(p);
				return -1;
			}
			*slash = '/';
		}
		f = fopen(p, "wbe");
		if (!f || fwrite(o->files[i].content, 1, o->files[i].len, f) != o->files[i].len ||
		    fclose(f) != 0) {
			err_set(err, errlen, "boot file `%s`: %s", o->files[i].path, strerror(errno));
			free(p);
			return -1;
		}
		free(p);
	}
	vm->memory = o->memory;
	vm->cpus = o->cpus;
	info->cid = 0;
	info->memory_bytes = o->memory;
	return 0;
}

static void proc_unlink(struct vmm_proc *p)
{
	if (!p->vm)
		return;
	for (struct vmm_proc **pp = &p->vm->procs; *pp; pp = &(*pp)->next) {
		if (*pp == p) {
			*pp = p->next;
			break;
		}
	}
	p->vm = NULL;
}

static void proc_hard_kill(struct vmm_proc *p)
{
	if (!p->reaped) {
		kill(-p->pid, SIGKILL);
		if (waitpid(p->pid, &p->wstatus, 0) == p->pid)
			p->reaped = true;
	}
}

static int local_shutdown(struct vmm_vm *vm, char *err, size_t errlen)
{
	while (vm->procs) {
		struct vmm_proc *p = vm->procs;
		proc_hard_kill(p);
		proc_unlink(p);
	}
	return 0;
}

static int local_nop(struct vmm_vm *vm, char *err, size_t errlen)
{
	return 0;
}

static void local_destroy(struct vmm_vm *vm)
{
	if (!vm)
		return;
	local_shutdown(vm, NULL, 0);
	free(vm->name);
	free(vm->profile);
	free(vm->root);
	free(vm);
}

/* ---- processes ---------------------------------------------------- */

static void closefd(int *fd)
{
	if (*fd >= 0) {
		close(*fd);
		*fd = -1;
	}
}

/* Build the child's environment: malloc'd array of borrowed strings. */
static const char **build_env(const struct vmm_exec_req *r)
{
	size_t n = 0, m = 0;
	if (!r->env_clear)
		for (char **e = environ; *e; e++)
			n++;
	if (r->env)
		for (const char *const *e = r->env; *e; e++)
			m++;
	const char **out = calloc(n + m + 1, sizeof(*out));
	size_t k = 0;
	if (!out)
		return NULL;
	if (!r->env_clear) {
		for (char **e = environ; *e; e++) {
			const char *eq = strchr(*e, '=');
			size_t kl = eq ? (size_t)(eq - *e) : strlen(*e);
			bool overridden = false;
			for (size_t j = 0; r->env && j < m; j++)
				if (!strncmp(r->env[j], *e, kl) && r->env[j][kl] == '=')
					overridden = true;
			if (!overridden)
				out[k++] = *e;
		}
	}
	for (size_t j = 0; j < m; j++)
		out[k++] = r->env[j];
	out[k] = NULL;
	return out;
}

/* Fork and exec r with stdin on a socket (writes never raise SIGPIPE),
 * stdout/stderr on pipes, in a new process group. */
static int spawn(struct vmm_vm *vm, const struct vmm_exec_req *r,
                 struct vmm_proc **out, char *err, size_t errlen)
{
	int in[2] = {-1, -1}, po[2] = {-1, -1}, pe[2] = {-1, -1}, ex[2] = {-1, -1};
	char *cwd = NULL;
	const char **envp = NULL;
	struct vmm_proc *p = NULL;
	pid_t pid;
	int child_errno = 0;
	ssize_t n;

	cwd = map_path(vm, r->cwd ? r->cwd : "/");
	envp = build_env(r);
	p = calloc(1, sizeof(*p));
	if (!cwd || !envp || !p)
		goto fail_errno;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, in) < 0 ||
	    pipe2(po, O_CLOEXEC) < 0 || pipe2(pe, O_CLOEXEC) < 0 ||
	    pipe2(ex, O_CLOEXEC) < 0)
		goto fail_errno;
	pid = fork();
	if (pid < 0)
		goto fail_errno;
	if (pid == 0) {
		sigset_t none;
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		signal(SIGPIPE, SIG_DFL);
		setpgid(0, 0);
		if (dup2(in[1], 0) < 0 || dup2(po[1], 1) < 0 || dup2(pe[1], 2) < 0 ||
		    chdir(cwd) < 0) {
			int e = errno;
			if (write(ex[1], &e, sizeof(e)) < 0) { /* nothing to do */ }
			_exit(127);
		}
#ifdef CLOSE_RANGE_CLOEXEC
		/* the process gets 0-2 only, not the runner's other fds */
		(void)close_range(3, ~0U, CLOSE_RANGE_CLOEXEC);
#endif
		execvpe(r->file, (char *const *)(uintptr_t)r->argv,
		        (char *const *)(uintptr_t)envp);
		{
			int e = errno;
			if (write(ex[1], &e, sizeof(e)) < 0) { /* nothing to do */ }
		}
		_exit(127);
	}
	setpgid(pid, pid); /* both sides: no race with an early kill(-pid) */
	close(in[1]); close(po[1]); close(pe[1]); close(ex[1]);
	do
		n = read(ex[0], &child_errno, sizeof(child_errno));
	while (n < 0 && errno == EINTR);
	close(ex[0]);
	if (n == (ssize_t)sizeof(child_errno)) {
		waitpid(pid, NULL, 0);
		close(in[0]); close(po[0]); close(pe[0]);
		errno = child_errno;
		err_set(err, errlen, "%s: %s", r->file, strerror(child_errno));
		goto fail;
	}
	fcntl(in[0], F_SETFL, O_NONBLOCK);
	fcntl(po[0], F_SETFL, O_NONBLOCK);
	fcntl(pe[0], F_SETFL, O_NONBLOCK);
	p->pid = pid;
	p->in_fd = in[0];
	p->out_fd = po[0];
	p->err_fd = pe[0];
	p->handle = ++proc_seq;
	p->vm = vm;
	p->next = vm->procs;
	vm->procs = p;
	free(cwd);
	free(envp);
	*out = p;
	return 0;

fail_errno:
	err_set(err, errlen, "%s", strerror(errno));
	for (int i = 0; i < 2; i++) {
		if (in[i] >= 0) close(in[i]);
		if (po[i] >= 0) close(po[i]);
		if (pe[i] >= 0) close(pe[i]);
		if (ex[i] >= 0) close(ex[i]);
	}
fail:
	free(cwd);
	free(envp);
	free(p);
	return -1;
}

static int buf_append(char **buf, size_t *len, size_t *cap, const char *d, size_t n)
{
	if (*len + n + 1 > *cap) {
		size_t nc = *cap ? *cap : 4096;
		while (nc < *len + n + 1)
			nc *= 2;
		char *nb = realloc(*buf, nc);
		if (!nb)
			return -1;
		*buf = nb;
		*cap = nc;
	}
	memcpy(*buf + *len, d, n);
	*len += n;
	(*buf)[*len] = '\0';
	return 0;
}

/* Read what is available on fd into the buffer; closes fd at EOF. */
static int drain(int *fd, char **buf, size_t *len, size_t *cap)
{
	char tmp[65536];
	while (*fd >= 0) {
		ssize_t n = read(*fd, tmp, sizeof(tmp));
		if (n > 0) {
			if (buf_append(buf, len, cap, tmp, (size_t)n) < 0)
				return -1;
		} else if (n == 0) {
			closefd(fd);
		} else if (errno == EINTR) {
			continue;
		} else if (errno == EAGAIN) {
			break;
		} else {
			closefd(fd);
		}
	}
	return 0;
}

/* Pump output (and stdin_data when given) until the process exits or
 * deadline_ns (monotonic, < 0: none) passes. 0 with *done; -1 on error. */
static int pump(struct vmm_proc *p, const char *in, size_t in_len,
                int64_t deadline_ns, bool *done, char *err, size_t errlen)
{
	size_t in_off = 0;
	*done = false;
	if (in && in_len == 0)
		closefd(&p->in_fd);
	while (!p->reaped) {
		struct pollfd fds[3];
		int nf = 0, timeout_ms = 20, w;
		if (waitpid(p->pid, &w, WNOHANG) == p->pid) {
			p->wstatus = w;
			p->reaped = true;
			break;
		}
		if (intr_pending()) {
			/* Ctrl-C in the REPL (local_exec then kills the group). */
			err_set(err, errlen, "interrupted");
			errno = EINTR;
			return -1;
		}
		if (deadline_ns >= 0) {
			int64_t left = deadline_ns - mono_now_ns();
			if (left <= 0)
				return 0;
			if (left / 1000000 < timeout_ms)
				timeout_ms = (int)(left / 1000000) + 1;
		}
		if (p->out_fd >= 0)
			fds[nf++] = (struct pollfd){.fd = p->out_fd, .events = POLLIN};
		if (p->err_fd >= 0)
			fds[nf++] = (struct pollfd){.fd = p->err_fd, .events = POLLIN};
		if (in && p->in_fd >= 0)
			fds[nf++] = (struct pollfd){.fd = p->in_fd, .events = POLLOUT};
		/* Exit is polled with WNOHANG: a short poll timeout bounds the
		 * latency once both pipes are at EOF or held by a grandchild. */
		if (poll(fds, (nfds_t)nf, timeout_ms) < 0 && errno != EINTR) {
			err_set(err, errlen, "poll: %s", strerror(errno));
			return -1;
		}
		if (drain(&p->out_fd, &p->out, &p->out_len, &p->out_cap) < 0 ||
		    drain(&p->err_fd, &p->err, &p->err_len, &p->err_cap) < 0) {
			err_set(err, errlen, "%s", strerror(errno));
			return -1;
		}
		if (in && p->in_fd >= 0) {
			ssize_t n = send(p->in_fd, in + in_off, in_len - in_off,
			                 MSG_NOSIGNAL | MSG_DONTWAIT);
			if (n > 0)
				in_off += (size_t)n;
			else if (n < 0 && errno != EAGAIN && errno != EINTR)
				closefd(&p->in_fd); /* reader gone: drop the rest */
			if (in_off >= in_len)
				closefd(&p->in_fd);
		}
	}
	/* Exited: take what is already buffered, but do not wait for EOF (a
	 * background grandchild may hold the pipes open for ever). */
	drain(&p->out_fd, &p->out, &p->out_len, &p->out_cap);
	drain(&p->err_fd, &p->err, &p->err_len, &p->err_cap);
	*done = true;
	return 0;
}

/* Move the reaped process's outcome into res. */
static void take_result(struct vmm_proc *p, struct vmm_exec_result *res, bool timed_out)
{
	memset(res, 0, sizeof(*res));
	if (timed_out) {
		res->status = VMM_TIMED_OUT;
		res->exit_code = -2;
	} else if (WIFSIGNALED(p->wstatus)) {
		res->status = VMM_SIGNALLED;
		res->exit_code = -1;
		res->signal = WTERMSIG(p->wstatus);
	} else {
		res->status = VMM_EXITED;
		res->exit_code = WEXITSTATUS(p->wstatus);
	}
	res->out = p->out ? p->out : strdup("");
	res->err = p->err ? p->err : strdup("");
	res->out_len = p->out_len;
	res->err_len = p->err_len;
	p->out = p->err = NULL;
	p->out_len = p->err_len = p->out_cap = p->err_cap = 0;
}

static void local_proc_free(struct vmm_proc *p)
{
	if (!p)
		return;
	proc_hard_kill(p);
	proc_unlink(p);
	closefd(&p->in_fd);
	closefd(&p->out_fd);
	closefd(&p->err_fd);
	free(p->out);
	free(p->err);
	free(p);
}

static int local_exec(struct vmm_vm *vm, const struct vmm_exec_req *r,
                      struct vmm_exec_result *res, char *err, size_t errlen)
{
	struct vmm_proc *p;
	bool done;
	int64_t deadline = r->timeout_ns >= 0 ? mono_now_ns() + r->timeout_ns : -1;
	if (spawn(vm, r, &p, err, errlen) < 0)
		return -1;
	if (pump(p, r->stdin_data ? r->stdin_data : "", r->stdin_len, deadline,
	         &done, err, errlen) < 0) {
		local_proc_free(p);
		return -1;
	}
	if (!done) {
		proc_hard_kill(p);
		drain(&p->out_fd, &p->out, &p->out_len, &p->out_cap);
		drain(&p->err_fd, &p->err, &p->err_len, &p->err_cap);
	}
	take_result(p, res, !done);
	local_proc_free(p);
	return 0;
}

static int local_exec_async(struct vmm_vm *vm, const struct vmm_exec_req *r,
                            struct vmm_proc **out, char *err, size_t errlen)
{
	struct vmm_proc *p;
	if (spawn(vm, r, &p, err, errlen) < 0)
		return -1;
	if (r->stdin_data && r->stdin_len) {
		/* Initial stdin: written now, best effort, without blocking. */
		ssize_t n = send(p->in_fd, r->stdin_data, r->stdin_len,
		                 MSG_NOSIGNAL | MSG_DONTWAIT);
		(void)n;
	}
	*out = p;
	return 0;
}

static int local_proc_wait(struct vmm_proc *p, int64_t timeout_ns, bool *done,
                           struct vmm_exec_result *res, char *err, size_t errlen)
{
	int64_t deadline = timeout_ns >= 0 ? mono_now_ns() + timeout_ns : -1;
	if (pump(p, NULL, 0, deadline, done, err, errlen) < 0)
		return -1;
	if (*done)
		take_result(p, res, false);
	return 0;
}

static int local_proc_kill(struct vmm_proc *p, int sig, char *err, size_t errlen)
{
	if (p->reaped)
		return 0;
	if (kill(-p->pid, sig) < 0 && errno != ESRCH) {
		err_set(err, errlen, "kill: %s", strerror(errno));
		return -1;
	}
	return 0;
}

static int local_proc_stdin_write(struct vmm_proc *p, const char *data, size_t len,
                                  size_t *put, char *err, size_t errlen)
{
	size_t off = 0;
	if (p->in_fd < 0) {
		errno = EPIPE;
		err_set(err, errlen, "stdin is closed");
		return -1;
	}
	while (off < len) {
		ssize_t n = send(p->in_fd, data + off, len - off, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			err_set(err, errlen, "stdin: %s", strerror(errno));
			return -1;
		}
		off += (size_t)n;
	}
	*put = off;
	return 0;
}

static int local_proc_close_stdin(struct vmm_proc *p, char *err, size_t errlen)
{
	closefd(&p->in_fd);
	return 0;
}

static int64_t local_proc_pid(struct vmm_proc *p)
{
	return p->pid;
}

static uint64_t local_proc_handle(struct vmm_proc *p)
{
	return p->handle;
}

/* ---- files -------------------------------------------------------- */

static int local_read_file(struct vmm_vm *vm, const char *path, char **data,
                           size_t *len, char *err, size_t errlen)
{
	char *hp = map_path(vm, path), *buf = NULL;
	size_t n = 0, cap = 0;
	int fd, rc = -1;
	if (!hp)
		goto out_err;
	fd = open(hp, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		goto out_err;
	for (;;) {
		char tmp[65536];
		ssize_t k = read(fd, tmp, sizeof(tmp));
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0) {
			int e = errno;
			close(fd);
			errno = e;
			goto out_err;
		}
		if (k == 0)
			break;
		if (buf_append(&buf, &n, &cap, tmp, (size_t)k) < 0) {
			close(fd);
			goto out_err;
		}
	}
	close(fd);
	*data = buf ? buf : strdup("");
	*len = n;
	buf = NULL;
	rc = 0;
	goto out;
out_err:
	err_set(err, errlen, "%s", strerror(errno));
out:
	free(buf);
	free(hp);
	return rc;
}

static int local_write_file(struct vmm_vm *vm, const char *path, const char *data,
                            size_t len, char *err, size_t errlen)
{
	char *hp = map_path(vm, path);
	size_t off = 0;
	int fd;
	if (!hp)
		goto fail;
	fd = open(hp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		goto fail;
	while (off < len) {
		ssize_t k = write(fd, data + off, len - off);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0) {
			int e = errno;
			close(fd);
			errno = e;
			goto fail;
		}
		off += (size_t)k;
	}
	if (close(fd) < 0)
		goto fail;
	free(hp);
	return 0;
fail:
	err_set(err, errlen, "%s", strerror(errno));
	free(hp);
	return -1;
}

static enum vmm_entry_type mode_type(mode_t m)
{
	if (S_ISREG(m)) return VMM_ENT_FILE;
	if (S_ISDIR(m)) return VMM_ENT_DIR;
	if (S_ISLNK(m)) return VMM_ENT_SYMLINK;
	if (S_ISFIFO(m)) return VMM_ENT_FIFO;
	if (S_ISSOCK(m)) return VMM_ENT_SOCKET;
	if (S_ISBLK(m)) return VMM_ENT_BLOCK;
	if (S_ISCHR(m)) return VMM_ENT_CHAR;
	return VMM_ENT_OTHER;
}

static int local_stat(struct vmm_vm *vm, const char *path, struct vmm_stat *st,
                      char *err, size_t errlen)
{
	char *hp = map_path(vm, path);
	struct stat s;
	if (!hp || lstat(hp, &s) < 0) {
		err_set(err, errlen, "%s", strerror(errno));
		free(hp);
		return -1;
	}
	free(hp);
	st->size = (uint64_t)s.st_size;
	st->mtime_ns = (int64_t)s.st_mtim.tv_sec * 1000000000 + s.st_mtim.tv_nsec;
	st->perm = s.st_mode & 07777;
	st->type = mode_type(s.st_mode);
	return 0;
}

static int cmp_dirent(const void *a, const void *b)
{
	return strcmp(((const struct vmm_dirent *)a)->name,
	              ((const struct vmm_dirent *)b)->name);
}

static int local_listdir(struct vmm_vm *vm, const char *path,
                         struct vmm_dirent **ents, size_t *nents,
                         char *err, size_t errlen)
{
	char *hp = map_path(vm, path);
	DIR *d = hp ? opendir(hp) : NULL;
	struct vmm_dirent *v = NULL;
	size_t n = 0, cap = 0;
	struct dirent *de;
	if (!d)
		goto fail;
	while ((errno = 0, de = readdir(d))) {
		struct stat s;
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (n == cap) {
			size_t nc = cap ? cap * 2 : 16;
			struct vmm_dirent *nv = realloc(v, nc * sizeof(*nv));
			if (!nv)
				goto fail;
			v = nv;
			cap = nc;
		}
		v[n].name = strdup(de->d_name);
		if (!v[n].name)
			goto fail;
		v[n].type = fstatat(dirfd(d), de->d_name, &s, AT_SYMLINK_NOFOLLOW) == 0
		                ? mode_type(s.st_mode) : VMM_ENT_OTHER;
		n++;
	}
	if (errno)
		goto fail;
	closedir(d);
	free(hp);
	if (n)
		qsort(v, n, sizeof(*v), cmp_dirent);
	*ents = v;
	*nents = n;
	return 0;
fail:
	err_set(err, errlen, "%s", strerror(errno));
	if (d)
		closedir(d);
	free(hp);
	vmm_dirents_free(v, n);
	return -1;
}

static int local_mkdir(struct vmm_vm *vm, const char *path, bool parents,
                       int perm, char *err, size_t errlen)
{
	char *hp = map_path(vm, path);
	mode_t mode = perm < 0 ? 0777 : (mode_t)perm;
	int rc;
	if (!hp)
		rc = -1;
	else if (parents)
		rc = mkdir_p(hp, mode, NULL);
	else
		rc = mkdir(hp, mode);
	if (rc == 0 && perm >= 0)
		rc = chmod(hp, mode); /* exact bits, whatever the umask */
	if (rc < 0)
		err_set(err, errlen, "%s", strerror(errno));
	free(hp);
	return rc;
}

static int local_unlink(struct vmm_vm *vm, const char *path, char *err, size_t errlen)
{
	char *hp = map_path(vm, path);
	int rc = hp ? unlink(hp) : -1;
	if (rc < 0 && hp && (errno == EISDIR || errno == EPERM)) {
		struct stat s;
		if (lstat(hp, &s) == 0 && S_ISDIR(s.st_mode))
			rc = rmdir(hp);
		else
			errno = EPERM;
	}
	if (rc < 0)
		err_set(err, errlen, "%s", strerror(errno));
	free(hp);
	return rc;
}

static int local_rename(struct vmm_vm *vm, const char *from, const char *to,
                        char *err, size_t errlen)
{
	char *a = map_path(vm, from), *b = map_path(vm, to);
	int rc = (a && b) ? rename(a, b) : -1;
	if (rc < 0)
		err_set(err, errlen, "%s", strerror(errno));
	free(a);
	free(b);
	return rc;
}

static int local_open(struct vmm_vm *vm, const char *path, int mode, int perm,
                      struct vmm_file **out, char *err, size_t errlen)
{
	int flags = O_CLOEXEC, fd;
	bool rd = mode & VMM_O_READ, wr = mode & (VMM_O_WRITE | VMM_O_APPEND);
	char *hp = map_path(vm, path);
	struct vmm_file *f = calloc(1, sizeof(*f));
	if (!hp || !f)
		goto fail;
	flags |= rd && wr ? O_RDWR : wr ? O_WRONLY : O_RDONLY;
	if (mode & VMM_O_CREATE) flags |= O_CREAT;
	if (mode & VMM_O_TRUNCATE) flags |= O_TRUNC;
	if (mode & VMM_O_APPEND) flags |= O_APPEND;
	if (mode & VMM_O_EXCLUSIVE) flags |= O_EXCL;
	fd = open(hp, flags, perm < 0 ? 0644 : (mode_t)perm);
	if (fd < 0)
		goto fail;
	if ((flags & O_CREAT) && perm >= 0)
		fchmod(fd, (mode_t)perm); /* exact bits, whatever the umask */
	f->fd = fd;
	*out = f;
	free(hp);
	return 0;
fail:
	err_set(err, errlen, "%s", strerror(errno));
	free(hp);
	free(f);
	return -1;
}

static int local_file_read(struct vmm_file *f, void *buf, size_t n, size_t *got,
                           char *err, size_t errlen)
{
	ssize_t k;
	do
		k = read(f->fd, buf, n);
	while (k < 0 && errno == EINTR);
	if (k < 0) {
		err_set(err, errlen, "%s", strerror(errno));
		return -1;
	}
	*got = (size_t)k;
	return 0;
}

static int local_file_write(struct vmm_file *f, const void *buf, size_t n,
                            size_t *put, char *err, size_t errlen)
{
	ssize_t k;
	do
		k = write(f->fd, buf, n);
	while (k < 0 && errno == EINTR);
	if (k < 0) {
		err_set(err, errlen, "%s", strerror(errno));
		return -1;
	}
	*put = (size_t)k;
	return 0;
}

static int local_file_seek(struct vmm_file *f, int64_t off, enum vmm_whence w,
                           int64_t *pos, char *err, size_t errlen)
{
	int wh = w == VMM_SEEK_CUR ? SEEK_CUR : w == VMM_SEEK_END ? SEEK_END : SEEK_SET;
	off_t r = lseek(f->fd, (off_t)off, wh);
	if (r < 0) {
		err_set(err, errlen, "%s", strerror(errno));
		return -1;
	}
	*pos = (int64_t)r;
	return 0;
}

static uint64_t local_file_handle(struct vmm_file *f)
{
	return (uint64_t)f->fd;
}

static void local_file_close(struct vmm_file *f)
{
	if (!f)
		return;
	close(f->fd);
	free(f);
}

/* ---- snapshots ------------------------------------------------------ */

/* The whole state of a local VM is its scratch tree: a snapshot is that
 * tree as one "fs" section behind the usual header (snapfile.h). */
static int local_snapshot(struct vmm_vm *vm, const char *path, char *err, size_t errlen)
{
	struct snap_header h = {
		.vm_name = vm->name, .profile = vm->profile, .backend = (char *)(uintptr_t)"local",
		.qemu_version = (char *)(uintptr_t)"local", .memory = vm->memory, .cpus = vm->cpus,
	};
	struct snap_writer *w;
	if (snapfile_create(&w, path, &h, err, errlen) < 0)
		return -1;
	if (snapfile_section_begin(w, "fs", err, errlen) < 0 ||
	    snaptree_write(w, vm->root, err, errlen) < 0 ||
	    snapfile_section_end(w, err, errlen) < 0) {
		snapfile_abort(w);
		return -1;
	}
	return snapfile_finish(w, err, errlen);
}

/* Best-effort rm -rf (the scratch trees are ours). */
/* Unpack the snapshot into a fresh sibling of the current root, then
 * switch to it (the old tree is removed). Any failure leaves vm as it was. */
static int local_restore(struct vmm_vm *vm, const char *path, char *err, size_t errlen)
{
	struct snap_reader *r;
	struct snap_header h;
	const char *sect;
	uint64_t raw;
	char *nroot = NULL;
	int rc;
	if (snapfile_open(&r, path, &h, err, errlen) < 0)
		return -1;
	if (strcmp(h.backend, "local") != 0) {
		err_set(err, errlen, "snapshot `%s` was taken by the %s backend, not local", path, h.backend);
		goto fail;
	}
	for (unsigned n = 0; ; n++) {
		free(nroot);
		if (asprintf(&nroot, "%s.r%u", vm->root, n) < 0) {
			nroot = NULL;
			err_set(err, errlen, "%s", strerror(errno));
			goto fail;
		}
		if (mkdir(nroot, 0755) == 0)
			break;
		if (errno != EEXIST) {
			err_set(err, errlen, "restore: mkdir `%s`: %s", nroot, strerror(errno));
			goto fail;
		}
	}
	err[0] = '\0';
	rc = snapfile_next_section(r, &sect, &raw, err, errlen);
	if (rc == 0 || (rc == 1 && strcmp(sect, "fs") != 0)) {
		err_set(err, errlen, "snapshot `%s`: corrupt (no `fs` section)", path);
		goto fail_tree;
	}
	if (rc < 0 || snaptree_extract(r, nroot, err, errlen) < 0)
		goto fail_tree;
	rc = snapfile_next_section(r, &sect, &raw, err, errlen);
	if (rc != 0) {
		if (rc > 0)
			err_set(err, errlen, "snapshot `%s`: corrupt (unexpected section `%s`)", path, sect);
		goto fail_tree;
	}
	snapfile_close(r);
	local_shutdown(vm, NULL, 0);
	rm_rf(vm->root);
	/* The root path stays the same for the VM's whole life. */
	if (rename(nroot, vm->root) < 0) {
		free(vm->root);
		vm->root = nroot;
	} else {
		free(nroot);
	}
	vm->memory = h.memory;
	vm->cpus = h.cpus;
	snap_header_free(&h);
	return 0;
fail_tree:
	rm_rf(nroot);
fail:
	free(nroot);
	snap_header_free(&h);
	snapfile_close(r);
	return -1;
}

/* ---- tails (host-served: there is no agent) ----------------------------
 * vm:tail_file on a scratch file, with the agent's semantics: the start
 * offset (end / beginning / absolute / before EOF), appended bytes as they
 * come, a restart at 0 when the file shrinks below the offset, no end
 * until closed. fd and process streams stay unsupported here. */

#define LOCAL_TAIL_POLL_MS 20
#define LOCAL_TAIL_CHUNK   (64u << 10)

struct vmm_stream {
	int fd;
	off_t off;
	char buf[LOCAL_TAIL_CHUNK];   /* one poll's read; copied out when not empty */
};

static int local_stream_open(struct vmm_vm *vm, const struct vmm_stream_req *r,
                             struct vmm_stream **out, char *err, size_t errlen)
{
	struct vmm_stream *s;
	struct stat st;
	char *host;
	int fd;
	if (r->kind != VMM_STREAM_TAIL)
		return VMM_UNSUPPORTED;
	if (!(host = map_path(vm, r->path))) {
		err_set(err, errlen, "out of memory");
		return -1;
	}
	fd = open(host, O_RDONLY | O_CLOEXEC);
	free(host);
	if (fd < 0 || fstat(fd, &st) < 0) {
		int e = errno;
		if (fd >= 0)
			close(fd);
		err_set(err, errlen, "%s", strerror(e));
		errno = e;
		return -1;
	}
	if (!(s = calloc(1, sizeof *s))) {
		close(fd);
		err_set(err, errlen, "out of memory");
		return -1;
	}
	s->fd = fd;
	s->off = r->start == VMM_TAIL_BEGINNING ? 0
	       : r->start == VMM_TAIL_OFFSET ? (r->offset >= 0 ? (off_t)r->offset
	                                                        : st.st_size + (off_t)r->offset)
	       : st.st_size;
	if (s->off < 0)
		s->off = 0;
	*out = s;
	return 0;
}

static int local_stream_next(struct vmm_stream *s, int64_t timeout_ns, char **data,
                             size_t *len, bool *eof, char *err, size_t errlen)
{
	int64_t t0 = mono_now_ns();
	*eof = false;
	for (;;) {
		struct stat st;
		ssize_t n;
		if (fstat(s->fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size < s->off)
			s->off = 0;
		n = pread(s->fd, s->buf, sizeof s->buf, s->off);
		if (n > 0) {
			if (!(*data = malloc((size_t)n))) {
				err_set(err, errlen, "out of memory");
				return -1;
			}
			memcpy(*data, s->buf, (size_t)n);
			s->off += n;
			*len = (size_t)n;
			return 1;
		}
		if (n < 0 && errno != EINTR) {
			err_set(err, errlen, "tail: %s", strerror(errno));
			return -1;
		}
		int64_t spent = mono_now_ns() - t0;
		if (timeout_ns >= 0 && spent >= timeout_ns)
			return 0;
		struct timespec nap = {0, LOCAL_TAIL_POLL_MS * 1000000L};
		if (timeout_ns >= 0 && timeout_ns - spent < LOCAL_TAIL_POLL_MS * INT64_C(1000000))
			nap.tv_nsec = (long)(timeout_ns - spent);
		nanosleep(&nap, NULL);
	}
}

static void local_stream_close(struct vmm_stream *s)
{
	if (!s)
		return;
	close(s->fd);
	free(s);
}

const struct vmm_ops vmm_local_ops = {
	.name = "local",
	.unsupported_hint = " (it runs no guest kernel); use --vmm qemu",
	.create = local_create,
	.boot = local_boot,
	.shutdown = local_shutdown,
	.pause = local_nop,
	.resume = local_nop,
	.reset = local_nop,
	.power_button = local_shutdown,
	.destroy = local_destroy,
	.exec = local_exec,
	.read_file = local_read_file,
	.write_file = local_write_file,
	.stat = local_stat,
	.listdir = local_listdir,
	.mkdir = local_mkdir,
	.unlink = local_unlink,
	.rename = local_rename,
	.open = local_open,
	.file_read = local_file_read,
	.file_write = local_file_write,
	.file_seek = local_file_seek,
	.file_handle = local_file_handle,
	.file_close = local_file_close,
	.exec_async = local_exec_async,
	.proc_wait = local_proc_wait,
	.proc_kill = local_proc_kill,
	.proc_stdin_write = local_proc_stdin_write,
	.proc_close_stdin = local_proc_close_stdin,
	.proc_pid = local_proc_pid,
	.proc_handle = local_proc_handle,
	.proc_free = local_proc_free,
	.snapshot = local_snapshot,
	.restore = local_restore,
	.stream_open = local_stream_open,
	.stream_next = local_stream_next,
	.stream_close = local_stream_close,
	/* console_tail, syscall: need a guest kernel. agent, run_path: no
	 * agent and no console here, so clock, syscall/ioctl, fd/process
	 * streams, console and workers raise "not supported by the local
	 * backend"; tails are served from the scratch directory above;
	 * vm:batch runs its ops one after the other. */
};
