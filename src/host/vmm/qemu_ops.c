/* qemu_ops.c — the agent-backed guest operations of the `qemu` VMM
 * backend: exec, whole-file ops (read/write/stat/listdir/mkdir/unlink/
 * rename), open files, async processes, syscall, the console tail and the
 * agent/run_path accessors, plus the round trip they all use (qvm_call).
 * Requests are built and replies decoded by vmm/agent_codec.h. qemu.c
 * owns the VM and points its vmm_ops table here.
 *
 * Every op is one or more request/response round trips over the VM's
 * agent_client (src/proto/protocol.h). A VM that is gone fails fast;
 * a broken channel is turned into "QEMU exited ..." with the console tail
 * when QEMU died. File and Process handles hold a reference on the VM
 * (qvm_vm_unref when they are freed), so a handle that outlives its VM
 * frees nothing twice; its op just does not reach a guest.
 *
 * Routing. A File or Process created while the agent client was routed
 * to a worker (worker:open_file, worker:run_async) lives in that worker's
 * handle tables: it remembers the route and every later op on it is sent
 * with that route (and an agent File/Process with none, even when called
 * inside a routed call), see rcall.
 *
 * Errors: 0 / -1 with err filled (no "vm `x`:" prefix: lvm.c adds it);
 * an agent-side errno is put in errno and its strerror text in err. */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <msgpack.h>

#include "errbuf.h"
#include "proto/protocol.h"
#include "vmm/agent_client.h"
#include "vmm/qemu_launch.h"
#include "vmm/qemu_priv.h"
#include "vmm/qemu_spare.h"
#include "vmm/qmp.h"
#include "vmm/vmm.h"

#define OP_TIMEOUT_MS 120000      /* file ops and the like */
#define EXEC_GRACE_MS 30000       /* beyond an exec's own timeout */

struct vmm_file {
	struct vmm_vm *vm;
	uint64_t handle;
	uint64_t route;           /* the worker it was opened in, 0 = the agent */
};

struct vmm_proc {
	struct vmm_vm *vm;
	uint64_t handle;
	uint64_t route;           /* the worker it runs under, 0 = the agent */
	int64_t pid;
	bool done;                /* the agent freed the handle */
};

/* ---- requests --------------------------------------------------------- */

/* One request/response with the agent. On failure err says why (without
 * the "vm `x`:" prefix); an agent-side errno is left in errno. reply must
 * be freed by the caller on success only. */
int qvm_call(struct vmm_vm *vm, int kind, const struct agent_req *r, int timeout_ms,
	     struct agent_reply *reply, char *err, size_t errlen)
{
	int rc;
	memset(reply, 0, sizeof *reply);
	if (vm->gone)
		return qvm_fail_gone(vm, err, errlen);
	if (!vm->ac || agent_client_fd(vm->ac) < 0) {
		err_set(err, errlen, "the VM is not running");
		errno = EIO;
		return -1;
	}
	rc = agent_call(vm->ac, kind, r ? agent_req_nfields(r) : 0, r ? agent_req_build : NULL,
			(void *)(uintptr_t)r, timeout_ms, reply, err, errlen);
	if (rc == 0) {
		qspare_launch_pending(QSPARE_MAX);  /* after the restored guest's first op */
		return 0;
	}
	if (reply->code[0]) {
		/* The agent answered "err": its message, its errno. */
		int e = reply->err_no ? reply->err_no : EIO;
		err_set(err, errlen, "%s", reply->message);
		agent_reply_free(reply);
		errno = e;
		return -1;
	}
	agent_reply_free(reply);
	qvm_strip_vm_prefix(vm, err);
	if (agent_client_broken(vm->ac)) {
		/* EOF usually means QEMU went away: say so, with the console. */
		if (!qvm_check_qemu_died(vm, 1000, err, errlen))
			qvm_set_gone(vm, err);
	} else {
		qvm_check_qemu_died(vm, 0, err, errlen);
	}
	errno = EIO;
	return -1;
}

/* Call with a request and ignore the value. */
static int call_nil(struct vmm_vm *vm, int kind, const struct agent_req *r, char *err,
		    size_t errlen)
{
	struct agent_reply rep;
	if (qvm_call(vm, kind, r, OP_TIMEOUT_MS, &rep, err, errlen) < 0)
		return -1;
	agent_reply_free(&rep);
	return 0;
}

/* qvm_call with the agent client routed to worker `route` (0 = the agent
 * itself) for this one request; the previous route is put back. */
static int rcall(struct vmm_vm *vm, uint64_t route, int kind, const struct agent_req *r,
		 int timeout_ms, struct agent_reply *reply, char *err, size_t errlen)
{
	struct agent_client *c = vm->ac;
	uint64_t old = c ? agent_client_route(c, route) : 0;
	int rc = qvm_call(vm, kind, r, timeout_ms, reply, err, errlen);
	if (c)
		agent_client_route(c, old);
	return rc;
}

/* call_nil, routed as rcall. */
static int rcall_nil(struct vmm_vm *vm, uint64_t route, int kind, const struct agent_req *r,
		     char *err, size_t errlen)
{
	struct agent_reply rep;
	if (rcall(vm, route, kind, r, OP_TIMEOUT_MS, &rep, err, errlen) < 0)
		return -1;
	agent_reply_free(&rep);
	return 0;
}

/* The route requests take now (0 without a client). */
static uint64_t cur_route(struct vmm_vm *vm)
{
	return vm->ac ? agent_client_current_route(vm->ac) : 0;
}

static int bad_reply(struct agent_reply *rep, const char *what, char *err, size_t errlen)
{
	agent_reply_free(rep);
	err_set(err, errlen, "malformed reply from the agent (%s)", what);
	errno = EPROTO;
	return -1;
}

/* A NUL-terminated malloc'd copy of a reply's bytes. */
static char *dup_bytes(const char *p, size_t n)
{
	char *o = malloc(n + 1);
	if (!o)
		return NULL;
	if (n)
		memcpy(o, p, n);
	o[n] = 0;
	return o;
}

/* ---- exec ------------------------------------------------------------------ */

int qemu_exec(struct vmm_vm *vm, const struct vmm_exec_req *x,
	      struct vmm_exec_result *res, char *err, size_t errlen)
{
	struct agent_req r;
	struct agent_reply rep;
	int64_t ms;
	int wait_ms = -1;

	ms = agent_exec_timeout_ms(x->timeout_ns, INT32_MAX - EXEC_GRACE_MS);
	if (ms >= 0)
		wait_ms = (int)ms + EXEC_GRACE_MS;
	agent_req_exec(&r, x, ms);
	if (qvm_call(vm, PROTO_K_EXEC, &r, wait_ms, &rep, err, errlen) < 0)
		return -1;
	if (agent_dec_exec_result(rep.value, res) < 0)
		return bad_reply(&rep, "exec result", err, errlen);
	agent_reply_free(&rep);
	return 0;
}

/* ---- files ----------------------------------------------------------------- */

int qemu_read_file(struct vmm_vm *vm, const char *path, char **data, size_t *len,
		   char *err, size_t errlen)
{
	struct agent_req r;
	struct agent_reply rep;
	const char *p;
	size_t n;
	agent_req_path(&r, path);
	if (qvm_call(vm, PROTO_K_READ_FILE, &r, OP_TIMEOUT_MS, &rep, err, errlen) < 0)
		return -1;
	if (!rep.value || proto_obj_bytes(rep.value, &p, &n) < 0)
		return bad_reply(&rep, "read_file", err, errlen);
	*data = dup_bytes(p, n);
	*len = n;
	agent_reply_free(&rep);
	if (!*data) {
		err_set(err, errlen, "out of memory");
		return -1;
	}
	return 0;
}

int qemu_write_file(struct vmm_vm *vm, const char *path, const char *data, size_t len,
		    char *err, size_t errlen)
{
	/* Frames are bounded: big files go in chunks (the first truncates). */
	size_t chunk = PROTO_IO_MAX / 2, off = 0;
	do {
		struct agent_req r;
		size_t n = len - off < chunk ? len - off : chunk;
		agent_req_write_file(&r, path, data + off, n, off != 0);
		if (call_nil(vm, PROTO_K_WRITE_FILE, &r, err, errlen) < 0)
			return -1;
		off += n;
	} while (off < len);
	return 0;
}

int qemu_stat(struct vmm_vm *vm, const char *path, struct vmm_stat *st,
	      char *err, size_t errlen)
{
	struct agent_req r;
	struct agent_reply rep;
	agent_req_path(&r, path);
	if (qvm_call(vm, PROTO_K_STAT, &r, OP_TIMEOUT_MS, &rep, err, errlen) < 0)
		return -1;
	if (agent_dec_stat(rep.value, st) < 0)
		return bad_reply(&rep, "stat", err, errlen);
	agent_reply_free(&rep);
	return 0;
}

static int dirent_cmp(const void *a, const void *b)
{
	return strcmp(((const struct vmm_dirent *)a)->name, ((const struct vmm_dirent *)b)->name);
}

int qemu_listdir(struct vmm_vm *vm, const char *path, struct vmm_dirent **ents,
		 size_t *n, char *err, size_t errlen)
{
	struct agent_req r;
	struct agent_reply rep;
	struct vmm_dirent *v;
	size_t cnt;
	const char *what;
	agent_req_path(&r, path);
	if (qvm_call(vm, PROTO_K_LISTDIR, &r, OP_TIMEOUT_MS, &rep, err, errlen) < 0)
		return -1;
	if (agent_dec_listdir(rep.value, &v, &cnt, &what) < 0) {
		if (what)
			return bad_reply(&rep, what, err, errlen);
		agent_reply_free(&rep);
		err_set(err, errlen, "out of memory");
		return -1;
	}
	agent_reply_free(&rep);
	qsort(v, cnt, sizeof *v, dirent_cmp);
	*ents = v;
	*n = cnt;
	return 0;
}

int qemu_mkdir(struct vmm_vm *vm, const char *path, bool parents, int perm,
	       char *err, size_t errlen)
{
	struct agent_req r;
	agent_req_mkdir(&r, path, parents, perm);
	return call_nil(vm, PROTO_K_MKDIR, &r, err, errlen);
}

int qemu_unlink(struct vmm_vm *vm, const char *path, char *err, size_t errlen)
{
	struct agent_req r;
	agent_req_path(&r, path);
	return call_nil(vm, PROTO_K_UNLINK, &r, err, errlen);
}

int qemu_rename(struct vmm_vm *vm, const char *from, const char *to,
		char *err, size_t errlen)
{
	struct agent_req r;
	agent_req_rename(&r, from, to);
	return call_nil(vm, PROTO_K_RENAME, &r, err, errlen);
}

/* ---- open files -------------------------------------------------------------- */

int qemu_open(struct vmm_vm *vm, const char *path, int mode, int perm,
	      struct vmm_file **out, char *err, size_t errlen)
{
	struct agent_req r;
	struct agent_reply rep;
	struct vmm_file *f;
	int64_t h;
	agent_req_file_open(&r, path, mode, perm);
	if (qvm_call(vm, PROTO_K_FILE_OPEN, &r, OP_TIMEOUT_MS, &rep, err, errlen) < 0)
		return -1;
	if (!rep.value || proto_obj_int(rep.value, &h) < 0 || h <= 0)
		return bad_reply(&rep, "file_open", err, errlen);
	agent_reply_free(&rep);
	f = calloc(1, sizeof *f);
	if (!f) {
		err_set(err, errlen, "out of memory");
		return -1;
	}
	f->vm = vm;
	f->handle = (uint64_t)h;
	f->route = cur_route(vm);
	vm->refs++;
	*out = f;
	return 0;
}

int qemu_file_read(struct vmm_file *f, void *buf, size_t n, size_t *got,
		   char *err, size_t errlen)
{
	struct agent_req r;
	struct agent_reply rep;
	const char *p;
	size_t l;
	agent_req_file_read(&r, f->handle, n > PROTO_IO_MAX ? PROTO_IO_MAX : n);
	if (rcall(f->vm, f->route, PROTO_K_FILE_READ, &r, OP_TIMEOUT_MS, &rep, err, errlen) < 0)
		return -1;
	if (!rep.value || proto_obj_bytes(rep.value, &p, &l) < 0 || l > n)
		return bad_reply(&rep, "file_read", err, errlen);
	if (l)
		memcpy(buf, p, l);
	*got = l;
	agent_reply_free(&rep);
	return 0;
}

int qemu_file_write(struct vmm_file *f, const void *buf, size_t n, size_t *put,
		    char *err, size_t errlen)
{
	size_t done = 0;
	do {
		struct agent_req r;
		struct agent_reply rep;
		size_t c = n - done > PROTO_IO_MAX / 2 ? PROTO_IO_MAX / 2 : n - done;
		int64_t w;
		agent_req_handle_data(&r, f->handle, (const char *)buf + done, c);
		if (rcall(f->vm, f->route, PROTO_K_FILE_WRITE, &r, OP_TIMEOUT_MS, &rep, err,
			  errlen) < 0)
			return -1;
		if (!rep.value || proto_obj_int(rep.value, &w) < 0 || w < 0 || (size_t)w > c)
			return bad_reply(&rep, "file_write", err, errlen);
		agent_reply_free(&rep);
		done += (size_t)w;
		if ((size_t)w < c)
			break;
	} while (done < n);
	*put = done;
	return 0;
}

int qemu_file_seek(struct vmm_file *f, int64_t off, enum vmm_whence w, int64_t *pos,
		   char *err, size_t errlen)
{
	struct agent_req r;
	struct agent_reply rep;
	int64_t p;
	agent_req_file_seek(&r, f->handle, off, w);
	if (rcall(f->vm, f->route, PROTO_K_FILE_SEEK, &r, OP_TIMEOUT_MS, &rep, err, errlen) < 0)
		return -1;
	if (!rep.value || proto_obj_int(rep.value, &p) < 0)
		return bad_reply(&rep, "file_seek", err, errlen);
	agent_reply_free(&rep);
	*pos = p;
	return 0;
}

uint64_t qemu_file_handle(struct vmm_file *f)
{
	return f->handle;
}

uint64_t qemu_file_route(struct vmm_file *f)
{
	return f->route;
}

void qemu_file_close(struct vmm_file *f)
{
	char e[256];
	if (!f)
		return;
	if (!f->vm->gone && !f->vm->paused) {
		struct agent_req r;
		agent_req_handle(&r, f->handle);
		rcall_nil(f->vm, f->route, PROTO_K_FILE_CLOSE, &r, e, sizeof e);
	}
	qvm_vm_unref(f->vm);
	free(f);
}

/* ---- async processes ------------------------------------------------------------ */

int qemu_exec_async(struct vmm_vm *vm, const struct vmm_exec_req *x,
		    struct vmm_proc **out, char *err, size_t errlen)
{
	struct agent_req r;
	struct agent_reply rep;
	struct vmm_proc *p;
	uint64_t h = 0;
	int64_t pid = 0;
	agent_req_exec(&r, x, -1);
	if (qvm_call(vm, PROTO_K_SPAWN, &r, OP_TIMEOUT_MS, &rep, err, errlen) < 0)
		return -1;
	if (agent_dec_handle_pid(rep.value, false, &h, &pid) < 0)
		return bad_reply(&rep, "spawn", err, errlen);
	agent_reply_free(&rep);
	p = calloc(1, sizeof *p);
	if (!p) {
		err_set(err, errlen, "out of memory");
		return -1;
	}
	p->vm = vm;
	p->handle = h;
	p->pid = pid;
	p->route = cur_route(vm);
	vm->refs++;
	*out = p;
	return 0;
}

int qemu_proc_wait(struct vmm_proc *p, int64_t timeout_ns, bool *done,
		   struct vmm_exec_result *res, char *err, size_t errlen)
{
	int64_t end = timeout_ns >= 0 ? qmp_now_ns() + timeout_ns : INT64_MAX;
	int sleep_ms = 10;
	*done = false;
	if (p->done) {
		err_set(err, errlen, "the process was already waited for");
		return -1;
	}
	/* Poll proc_status (the agent's proc_wait would kill on its timeout,
	 * and vmm wants the process left running), then collect. */
	for (;;) {
		struct agent_req r;
		struct agent_reply rep;
		int running = 1;
		agent_req_handle(&r, p->handle);
		if (rcall(p->vm, p->route, PROTO_K_PROC_STATUS, &r, OP_TIMEOUT_MS, &rep, err,
			  errlen) < 0)
			return -1;
		if (agent_dec_proc_running(rep.value, &running) < 0)
			return bad_reply(&rep, "proc_status", err, errlen);
		agent_reply_free(&rep);
		if (!running) {
			if (rcall(p->vm, p->route, PROTO_K_PROC_WAIT, &r, OP_TIMEOUT_MS, &rep, err,
				  errlen) < 0)
				return -1;
			p->done = true;
			if (agent_dec_exec_result(rep.value, res) < 0)
				return bad_reply(&rep, "proc_wait", err, errlen);
			agent_reply_free(&rep);
			*done = true;
			return 0;
		}
		int64_t now = qmp_now_ns();
		if (now >= end)
			return 0;
		if (end != INT64_MAX && (end - now) / 1000000 < sleep_ms)
			sleep_ms = (int)((end - now) / 1000000) + 1;
		poll(NULL, 0, sleep_ms);
		if (sleep_ms < 100)
			sleep_ms *= 2;
	}
}

int qemu_proc_kill(struct vmm_proc *p, int sig, char *err, size_t errlen)
{
	struct agent_req r;
	if (p->done)
		return 0;
	agent_req_proc_kill(&r, p->handle, sig);
	return rcall_nil(p->vm, p->route, PROTO_K_PROC_KILL, &r, err, errlen);
}

int qemu_proc_stdin_write(struct vmm_proc *p, const char *data, size_t len, size_t *put,
			  char *err, size_t errlen)
{
	struct agent_req r;
	struct agent_reply rep;
	int64_t w;
	agent_req_handle_data(&r, p->handle, data, len > PROTO_IO_MAX / 2 ? PROTO_IO_MAX / 2 : len);
	if (rcall(p->vm, p->route, PROTO_K_PROC_STDIN, &r, OP_TIMEOUT_MS, &rep, err, errlen) < 0)
		return -1;
	if (!rep.value || proto_obj_int(rep.value, &w) < 0 || w < 0)
		return bad_reply(&rep, "proc_stdin", err, errlen);
	agent_reply_free(&rep);
	*put = (size_t)w;
	return 0;
}

int qemu_proc_close_stdin(struct vmm_proc *p, char *err, size_t errlen)
{
	struct agent_req r;
	agent_req_handle(&r, p->handle);
	return rcall_nil(p->vm, p->route, PROTO_K_PROC_STDIN_CLOSE, &r, err, errlen);
}

int64_t qemu_proc_pid(struct vmm_proc *p)
{
	return p->pid;
}

uint64_t qemu_proc_handle(struct vmm_proc *p)
{
	return p->handle;
}

uint64_t qemu_proc_route(struct vmm_proc *p)
{
	return p->route;
}

void qemu_proc_free(struct vmm_proc *p)
{
	char e[256];
	if (!p)
		return;
	if (!p->done && !p->vm->gone && !p->vm->paused) {
		/* Kill and collect, so the agent frees the handle. (A paused
		 * guest cannot answer: its process is left to the guest.) */
		struct agent_req r;
		struct agent_reply rep;
		agent_req_proc_kill(&r, p->handle, SIGKILL);
		if (rcall_nil(p->vm, p->route, PROTO_K_PROC_KILL, &r, e, sizeof e) == 0) {
			agent_req_handle(&r, p->handle);
			if (rcall(p->vm, p->route, PROTO_K_PROC_WAIT, &r, 10000, &rep, e, sizeof e) == 0)
				agent_reply_free(&rep);
		}
	}
	qvm_vm_unref(p->vm);
	free(p);
}

/* ---- guest-kernel features ---------------------------------------------------------- */

int qemu_console_tail(struct vmm_vm *vm, size_t max, char **out, size_t *len,
		      char *err, size_t errlen)
{
	char path[4096];
	char *t;
	qvm_run_path(vm, "console.log", path, sizeof path);
	t = qvm_file_tail(vm, "console.log", max, len);
	if (!t) {
		if (errno == ENOENT) {
			*out = strdup("");
			*len = 0;
			return *out ? 0 : -1;
		}
		err_set(err, errlen, "read `%s`: %s", path, strerror(errno));
		return -1;
	}
	*out = t;
	return 0;
}

int qemu_syscall(struct vmm_vm *vm, int64_t nr, const int64_t args[6], int64_t *ret,
		 int *err_no, char *err, size_t errlen)
{
	struct agent_req r;
	struct agent_reply rep;
	struct guest_syscall_result sr;
	agent_req_syscall_ints(&r, nr, args);
	if (qvm_call(vm, PROTO_K_SYSCALL, &r, OP_TIMEOUT_MS, &rep, err, errlen) < 0)
		return -1;
	if (agent_dec_syscall(rep.value, 0, &sr) < 0)
		return bad_reply(&rep, "syscall", err, errlen);
	agent_reply_free(&rep);
	*ret = sr.ret;
	*err_no = sr.err_no;
	return 0;
}

/* vmm_ops.agent: the connected client (guest_ops.c speaks through it). */
struct agent_client *qemu_agent(struct vmm_vm *vm)
{
	return vm->gone || !vm->ac || agent_client_fd(vm->ac) < 0 ? NULL : vm->ac;
}

/* vmm_ops.run_path: "<run dir>/<leaf>", valid until the next call. */
const char *qemu_run_path_op(struct vmm_vm *vm, const char *leaf)
{
	if (qemu_run_path(vm->pathbuf, sizeof vm->pathbuf, vm->dir, leaf) < 0)
		return NULL;
	return vm->pathbuf;
}
