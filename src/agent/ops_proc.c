/* ops_proc.c — guest processes: exec (synchronous for the host, never for
 * the agent), spawn and the process-handle ops.
 *
 * Every process is forked with its own process group and three pipes
 * whose agent ends join the server's poll loop (watch_add), so a long
 * exec never holds up other requests. Its state:
 *
 *     RUNNING --(SIGCHLD, reaped)--> EXITED --(result sent)--> freed
 *
 * At the reap the agent drains whatever is still in the stdout/stderr
 * pipes (everything the process wrote is there by then) and closes them —
 * a background grandchild keeping the pipes open cannot stall the result.
 * An exec is answered right at the reap; a spawned process waits in the
 * table until proc_wait collects it (or is answered at the reap if a
 * proc_wait is already pending). Timeouts (exec timeout_ms, proc_wait
 * timeout_ms) SIGKILL the whole process group from proc_tick().
 *
 * Captured output is capped at PROTO_OUTPUT_MAX per pipe (the rest is
 * read and dropped, so the process never blocks on a full pipe). A
 * proc_stream channel first replays the capture, then forwards live
 * chunks; it ends (StreamEnd) when that pipe reaches EOF.
 *
 * Before exec the child reports a setup failure (chdir, execvp) through a
 * close-on-exec status pipe, so the host gets the errno as an op error
 * instead of a mysterious exit 127.
 *
 * On a host disconnect: pending replies are forgotten (a finished exec is
 * then simply freed), stream channels are dropped; processes and spawn
 * handles survive for the next connection.
 */
#include "agent/agent.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

struct pipe_out {
	int fd;                 /* -1 once closed */
	struct buf cap;         /* captured bytes (capped) */
	uint64_t chan;          /* live stream channel, 0 = none */
};

struct proc {
	uint64_t handle;
	pid_t pid;
	int sync;               /* exec: answer exec_id at the reap */
	uint64_t exec_id, exec_gen;
	int waiting;            /* a proc_wait is pending */
	uint64_t wait_id, wait_gen;
	int64_t deadline;       /* ms, 0 = none */
	int in_fd;
	struct buf inq;
	size_t in_off;
	int in_close;           /* close stdin once inq is written */
	struct pipe_out o[2];   /* stdout, stderr */
	int exited, wstatus, timed_out;
	struct proc *next;
};

static struct proc *procs;
static uint64_t next_handle = 1;

static struct proc *find_handle(uint64_t h)
{
	for (struct proc *p = procs; p; p = p->next)
		if (p->handle == h)
			return p;
	return NULL;
}

static void close_in(struct proc *p)
{
	if (p->in_fd >= 0) {
		watch_del(p->in_fd);
		close(p->in_fd);
		p->in_fd = -1;
	}
	buf_free(&p->inq);
	p->in_off = 0;
}

static void close_out(struct proc *p, int i)
{
	if (p->o[i].fd >= 0) {
		watch_del(p->o[i].fd);
		close(p->o[i].fd);
		p->o[i].fd = -1;
	}
	if (p->o[i].chan) {
		stream_end(p->o[i].chan, NULL);
		p->o[i].chan = 0;
	}
}

static void proc_free(struct proc *p)
{
	struct proc **pp;

	for (pp = &procs; *pp; pp = &(*pp)->next) {
		if (*pp == p) {
			*pp = p->next;
			break;
		}
	}
	close_in(p);
	for (int i = 0; i < 2; i++) {
		close_out(p, i);
		buf_free(&p->o[i].cap);
	}
	free(p);
}

/* Read what the pipe has now. Returns 1 at EOF/error, else 0. */
static int drain(struct proc *p, int i)
{
	char tmp[65536];

	for (;;) {
		ssize_t n = read(p->o[i].fd, tmp, sizeof tmp);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return errno == EAGAIN ? 0 : 1;
		if (n == 0)
			return 1;
		if (p->o[i].cap.len < PROTO_OUTPUT_MAX) {
			size_t room = PROTO_OUTPUT_MAX - p->o[i].cap.len;

			buf_add(&p->o[i].cap, tmp, (size_t)n < room ? (size_t)n : room);
		}
		if (p->o[i].chan)
			stream_data(p->o[i].chan, tmp, (size_t)n);
	}
}

static void on_out(void *ctx, int fd, short revents)
{
	struct proc *p = ctx;
	int i = p->o[0].fd == fd ? 0 : 1;

	if (drain(p, i))
		close_out(p, i);
}

static void flush_in(struct proc *p)
{
	while (p->in_off < p->inq.len) {
		ssize_t n = write(p->in_fd, p->inq.p + p->in_off,
				  p->inq.len - p->in_off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			if (errno == EAGAIN) {
				watch_events(p->in_fd, POLLOUT);
				return;
			}
			close_in(p);  /* EPIPE: the reader is gone */
			return;
		}
		p->in_off += (size_t)n;
	}
	p->inq.len = 0;
	p->in_off = 0;
	watch_events(p->in_fd, 0);
	if (p->in_close)
		close_in(p);
}

static void on_in(void *ctx, int fd, short revents)
{
	struct proc *p = ctx;

	if (revents & (POLLERR | POLLHUP)) {
		close_in(p);
		return;
	}
	flush_in(p);
}

static void pack_result(struct out *o, struct proc *p)
{
	struct proto_exec_result r = { 0 };

	if (p->timed_out) {
		r.status = -2;
	} else if (WIFSIGNALED(p->wstatus)) {
		r.status = -1;
		r.signal = WTERMSIG(p->wstatus);
		r.has_signal = true;
	} else {
		r.status = WEXITSTATUS(p->wstatus);
	}
	r.out = (struct proto_str){ p->o[0].cap.p ? p->o[0].cap.p : "", p->o[0].cap.len };
	r.err = (struct proto_str){ p->o[1].cap.p ? p->o[1].cap.p : "", p->o[1].cap.len };
	r.has_out = r.has_err = r.has_timed_out = true;
	r.timed_out = p->timed_out;
	proto_pack_map(&o->pk, &proto_m_exec_result, &r);
}

/* Answer id (if its connection is still there) with p's result, free p. */
static void finish(struct proc *p, uint64_t id, uint64_t gen)
{
	if (server_live(gen)) {
		struct out o;

		reply_ok_begin(&o, id);
		pack_result(&o, p);
		out_send(&o, id);
	}
	proc_free(p);
}

void proc_reap(void)
{
	for (;;) {
		int st;
		pid_t pid = waitpid(-1, &st, WNOHANG);
		struct proc *p;

		if (pid <= 0)
			return;
		for (p = procs; p && p->pid != pid; p = p->next)
			;
		if (!p && worker_reaped(pid, st))
			continue;
		if (!p || p->exited)
			continue;
		p->exited = 1;
		p->wstatus = st;
		p->deadline = 0;
		for (int i = 0; i < 2; i++) {
			if (p->o[i].fd >= 0)
				drain(p, i);
			close_out(p, i);
		}
		close_in(p);
		if (p->sync)
			finish(p, p->exec_id, p->exec_gen);
		else if (p->waiting)
			finish(p, p->wait_id, p->wait_gen);
	}
}

int proc_tick(int64_t now)
{
	int64_t next = -1;

	for (struct proc *p = procs; p; p = p->next) {
		if (!p->deadline || p->exited)
			continue;
		if (now >= p->deadline) {
			p->timed_out = 1;
			p->deadline = 0;
			kill(-p->pid, SIGKILL);
			kill(p->pid, SIGKILL);
			continue;
		}
		if (next < 0 || p->deadline - now < next)
			next = p->deadline - now;
	}
	return (int)next;
}

/* A fresh worker inherits the parent's table: the processes are the
 * parent's children (not ours to signal, wait for or time out), and
 * their pipe fds were closed wholesale by server_become_worker. The
 * entries are dropped without freeing: the memory is a fork's copy. */
void proc_forget_all(void)
{
	procs = NULL;
}

void proc_disconnect(void)
{
	struct proc *p = procs, *nx;

	for (; p; p = nx) {
		nx = p->next;
		for (int i = 0; i < 2; i++)
			p->o[i].chan = 0;
		if (p->waiting) {
			p->waiting = 0;
			p->deadline = 0;
		}
		/* A running exec keeps running; finish() drops its reply. */
	}
}

int proc_stream_close(uint64_t chan)
{
	for (struct proc *p = procs; p; p = p->next) {
		for (int i = 0; i < 2; i++) {
			if (p->o[i].chan == chan) {
				p->o[i].chan = 0;
				return 0;
			}
		}
	}
	return -1;
}

/* Collect a str/bin array into a NULL-terminated argv. NULL on error. */
static char **build_argv(const struct proto_list *a)
{
	char **v;

	if (a->n == 0)
		return NULL;
	v = calloc(a->n + 1, sizeof(*v));
	if (!v)
		return NULL;
	for (size_t i = 0; i < a->n; i++) {
		if (!(v[i] = proto_str_dup(proto_list_at(a, i).s))) {
			for (size_t j = 0; j < i; j++)
				free(v[j]);
			free(v);
			return NULL;
		}
	}
	return v;
}

static void free_argv(char **v)
{
	if (!v)
		return;
	for (char **s = v; *s; s++)
		free(*s);
	free(v);
}

/* In the child: apply env/env_clear. Returns 0 or -1. */
static int child_env(const struct proto_exec *q)
{
	if (q->env_clear)
		clearenv();
	for (size_t i = 0; q->has_env && i < q->env.n; i++) {
		struct proto_elem e = proto_list_at(&q->env, i);
		char *ks = strndup(e.s.p, e.s.n), *vs = strndup(e.v.p, e.v.n);

		if (!ks || !vs || setenv(ks, vs, 1) < 0)
			return -1;
	}
	return 0;
}

static void set_nonblock(int fd)
{
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
}

/* Fork and exec the request's command. Returns the new proc (in the
 * table, pipes watched) or NULL after answering id with an error. */
static struct proc *start(uint64_t id, const struct proto_exec *q, int keep_stdin)
{
	char **argv = NULL, *cwd = NULL;
	const char *in = q->stdin_.p;
	size_t inn = q->stdin_.n;
	int pin[2] = { -1, -1 }, pout[2] = { -1, -1 }, perr[2] = { -1, -1 };
	int pst[2] = { -1, -1 }, child_errno = 0;
	struct proc *p = NULL;
	pid_t pid;
	ssize_t r;

	if (q->has_argv) {
		argv = build_argv(&q->argv);
		if (!argv) {
			reply_bad(id, "argv must be a non-empty array of strings");
			goto fail;
		}
	} else if (q->has_shell) {
		argv = calloc(4, sizeof(*argv));
		if (!argv || !(argv[0] = strdup("/bin/sh")) ||
		    !(argv[1] = strdup("-c")) || !(argv[2] = strndup(q->shell.p, q->shell.n))) {
			reply_errno(id, ENOMEM);
			goto fail;
		}
	} else {
		reply_bad(id, "exec needs argv or shell");
		goto fail;
	}
	if (q->has_cwd && !(cwd = req_str(id, q->cwd, "cwd must be a string")))
		goto fail;
	p = calloc(1, sizeof(*p));
	if (!p || pipe2(pin, O_CLOEXEC) < 0 || pipe2(pout, O_CLOEXEC) < 0 ||
	    pipe2(perr, O_CLOEXEC) < 0 || pipe2(pst, O_CLOEXEC) < 0) {
		reply_errno(id, errno ? errno : ENOMEM);
		goto fail;
	}
	pid = fork();
	if (pid < 0) {
		reply_errno(id, errno);
		goto fail;
	}
	if (pid == 0) {
		sigset_t all;
		int e;

		sigemptyset(&all);
		sigprocmask(SIG_SETMASK, &all, NULL);
		for (int s = 1; s < NSIG; s++)
			signal(s, SIG_DFL);
		setpgid(0, 0);
		dup2(pin[0], 0);
		dup2(pout[1], 1);
		dup2(perr[1], 2);
		if (child_env(q) < 0)
			e = EINVAL;
		else if (cwd && chdir(cwd) < 0)
			e = errno;
		else {
			execvp(argv[0], argv);
			e = errno;
		}
		if (write(pst[1], &e, sizeof e) < 0) {
			/* parent sees EOF and a 127 exit */
		}
		_exit(127);
	}
	close(pin[0]);
	close(pout[1]);
	close(perr[1]);
	close(pst[1]);
	pin[0] = pout[1] = perr[1] = pst[1] = -1;
	do
		r = read(pst[0], &child_errno, sizeof child_errno);
	while (r < 0 && errno == EINTR);
	if (r == (ssize_t)sizeof child_errno) {
		while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
			;
		reply_errno(id, child_errno);
		goto fail;
	}
	close(pst[0]);
	pst[0] = -1;

	p->handle = next_handle++;
	p->pid = pid;
	p->in_fd = pin[1];
	p->o[0].fd = pout[0];
	p->o[1].fd = perr[0];
	pin[1] = pout[0] = perr[0] = -1;
	for (int i = 0; i < 2; i++) {
		set_nonblock(p->o[i].fd);
		watch_add(p->o[i].fd, POLLIN, on_out, p);
	}
	set_nonblock(p->in_fd);
	watch_add(p->in_fd, 0, on_in, p);
	p->next = procs;
	procs = p;
	if (inn)
		buf_add(&p->inq, in, inn);
	p->in_close = !keep_stdin;
	flush_in(p);
	free_argv(argv);
	free(cwd);
	return p;

fail:
	for (int i = 0; i < 2; i++) {
		if (pin[i] >= 0) close(pin[i]);
		if (pout[i] >= 0) close(pout[i]);
		if (perr[i] >= 0) close(perr[i]);
		if (pst[i] >= 0) close(pst[i]);
	}
	free(p);
	free_argv(argv);
	free(cwd);
	return NULL;
}

void op_exec(uint64_t id, const msgpack_object *req)
{
	struct proto_exec q;
	uint64_t tmo;
	struct proc *p;

	if (req_decode(id, req, &proto_m_exec, &q) < 0)
		return;
	tmo = q.timeout_ms;   /* 0 / absent: none */
	p = start(id, &q, 0);
	if (!p)
		return;
	p->sync = 1;
	p->exec_id = id;
	p->exec_gen = server_gen();
	if (tmo)
		p->deadline = now_ms() + (int64_t)tmo;
}

void op_spawn(uint64_t id, const msgpack_object *req)
{
	struct proto_exec q;
	struct proto_handle_pid r = { 0 };
	struct proc *p;
	struct out o;

	if (req_decode(id, req, &proto_m_exec, &q) < 0 || !(p = start(id, &q, 1)))
		return;
	r.handle = p->handle;
	r.pid = p->pid;
	r.has_pid = true;
	reply_ok_begin(&o, id);
	proto_pack_map(&o.pk, &proto_m_handle_pid, &r);
	out_send(&o, id);
}

/* The request's process (an async one) or NULL after answering. */
static struct proc *need_proc(uint64_t id, const msgpack_object *req,
			      const struct proto_msg *m, struct proto_handle *q)
{
	struct proc *p;

	if (req_decode(id, req, m, q) < 0)
		return NULL;
	p = find_handle(q->handle);
	if (!p || p->sync) {
		reply_err(id, PROTO_ERR_NO_HANDLE, "no such process handle", 0);
		return NULL;
	}
	return p;
}

void op_proc_wait(uint64_t id, const msgpack_object *req)
{
	struct proto_handle q;
	struct proc *p = need_proc(id, req, &proto_m_wait, &q);
	uint64_t tmo;

	if (!p)
		return;
	if (p->waiting) {
		reply_err(id, "EBUSY", "process is already being waited for", EBUSY);
		return;
	}
	if (p->exited) {
		finish(p, id, server_gen());
		return;
	}
	tmo = q.timeout_ms;   /* 0 / absent: forever */
	p->waiting = 1;
	p->wait_id = id;
	p->wait_gen = server_gen();
	p->deadline = tmo ? now_ms() + (int64_t)tmo : 0;
}

void op_proc_status(uint64_t id, const msgpack_object *req)
{
	struct proto_handle q;
	struct proc *p = need_proc(id, req, &proto_m_handle, &q);
	struct proto_proc_status r = { 0 };
	struct out o;

	if (!p)
		return;
	r.has_pid = r.has_status = true;
	if (p->exited) {
		if (WIFSIGNALED(p->wstatus)) {
			r.status = -1;
			r.signal = WTERMSIG(p->wstatus);
			r.has_signal = r.signal != 0;
		} else {
			r.status = WEXITSTATUS(p->wstatus);
		}
	}
	r.running = !p->exited;
	r.pid = p->pid;
	reply_ok_begin(&o, id);
	proto_pack_map(&o.pk, &proto_m_proc_status, &r);
	out_send(&o, id);
}

void op_proc_kill(uint64_t id, const msgpack_object *req)
{
	struct proto_handle q;
	struct proc *p = need_proc(id, req, &proto_m_kill, &q);
	int64_t sig;

	if (!p)
		return;
	sig = q.has_signal ? q.signal : SIGTERM;
	if (sig < 0 || sig >= NSIG) {
		reply_errno(id, EINVAL);
		return;
	}
	if (p->exited) {
		reply_nil(id);  /* nothing left to signal */
		return;
	}
	if (kill(p->pid, (int)sig) < 0)
		reply_errno(id, errno);
	else
		reply_nil(id);
}

void op_proc_stdin(uint64_t id, const msgpack_object *req)
{
	struct proto_handle q;
	struct proc *p = need_proc(id, req, &proto_m_handle_data, &q);
	const char *d;
	size_t n;

	if (!p)
		return;
	d = q.data.p;
	n = q.data.n;
	if (p->in_fd < 0 || p->in_close) {
		reply_errno(id, EPIPE);
		return;
	}
	if (buf_add(&p->inq, d, n) < 0) {
		reply_errno(id, ENOMEM);
		return;
	}
	flush_in(p);
	reply_int(id, (int64_t)n);
}

void op_proc_stdin_close(uint64_t id, const msgpack_object *req)
{
	struct proto_handle q;
	struct proc *p = need_proc(id, req, &proto_m_handle, &q);

	if (!p)
		return;
	p->in_close = 1;
	if (p->in_fd >= 0 && p->in_off >= p->inq.len)
		close_in(p);
	reply_nil(id);
}

void op_proc_stream(uint64_t id, const msgpack_object *req)
{
	struct proto_handle q;
	struct proc *p = need_proc(id, req, &proto_m_proc_stream, &q);
	struct proto_channel r;
	int i;
	struct out o;
	uint64_t chan;

	if (!p)
		return;
	if (proto_str_is(q.which, "stdout"))
		i = 0;
	else if (proto_str_is(q.which, "stderr"))
		i = 1;
	else {
		reply_bad(id, "which must be stdout or stderr");
		return;
	}
	chan = chan_alloc();
	r.channel = chan;
	reply_ok_begin(&o, id);
	proto_pack_map(&o.pk, &proto_m_channel, &r);
	out_send(&o, id);
	if (p->o[i].cap.len)
		stream_data(chan, p->o[i].cap.p, p->o[i].cap.len);
	if (p->o[i].fd < 0) {
		stream_end(chan, NULL);
		return;
	}
	if (p->o[i].chan)
		stream_end(p->o[i].chan, "superseded by a new stream");
	p->o[i].chan = chan;
}
