/* qemu_ops.c — the agent-backed guest operations of the `qemu` VMM
 * backend: exec, whole-file ops (read/write/stat/listdir/mkdir/unlink/
 * rename), open files, async processes, syscall, the console tail and the
 * agent/run_path accessors, plus the request builder they all use
 * (struct req, qvm_call). qemu.c owns the VM and points its vmm_ops
 * table here.
 *
 * Every op is one or more request/response round trips over the VM's
 * agent_client (src/proto/protocol.h). A VM that is gone fails fast;
 * a broken channel is turned into "QEMU exited ..." with the console tail
 * when QEMU died. File and Process handles hold a reference on the VM
 * (qvm_vm_unref when they are freed), so a handle that outlives its VM
 * frees nothing twice; its op just does not reach a guest.
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
};

struct vmm_proc {
	struct vmm_vm *vm;
	uint64_t handle;
	int64_t pid;
	bool done;                /* the agent freed the handle */
};

/* ---- requests --------------------------------------------------------- */

static void add_str(struct req *r, const char *k, const char *s)
{
	r->f[r->n++] = (struct fld){ .key = k, .t = F_STR, .s = s };
}

static void add_bin(struct req *r, const char *k, const void *p, size_t n)
{
	r->f[r->n++] = (struct fld){ .key = k, .t = F_BIN, .s = p ? p : "", .n = n };
}

static void add_int(struct req *r, const char *k, int64_t i)
{
	r->f[r->n++] = (struct fld){ .key = k, .t = F_INT, .i = i };
}

static void add_bool(struct req *r, const char *k, bool b)
{
	r->f[r->n++] = (struct fld){ .key = k, .t = F_BOOL, .i = b };
}

void qvm_build(msgpack_packer *pk, void *ctx)
{
	const struct req *r = ctx;
	for (size_t i = 0; i < r->n; i++) {
		const struct fld *f = &r->f[i];
		size_t n = 0;
		proto_pack_key(pk, f->key);
		switch (f->t) {
		case F_STR:
			proto_pack_cstr(pk, f->s);
			break;
		case F_BIN:
			proto_pack_bytes(pk, f->s, f->n);
			break;
		case F_INT:
			msgpack_pack_int64(pk, f->i);
			break;
		case F_BOOL:
			if (f->i)
				msgpack_pack_true(pk);
			else
				msgpack_pack_false(pk);
			break;
		case F_STRV:
			while (f->v[n])
				n++;
			msgpack_pack_array(pk, n);
			for (size_t j = 0; j < n; j++)
				proto_pack_cstr(pk, f->v[j]);
			break;
		case F_ENV:
			while (f->v[n])
				n++;
			msgpack_pack_map(pk, n);
			for (size_t j = 0; j < n; j++) {
				const char *eq = strchr(f->v[j], '=');
				size_t kl = eq ? (size_t)(eq - f->v[j]) : strlen(f->v[j]);
				msgpack_pack_str(pk, kl);
				msgpack_pack_str_body(pk, f->v[j], kl);
				proto_pack_cstr(pk, eq ? eq + 1 : "");
			}
			break;
		case F_INTS:
			msgpack_pack_array(pk, f->n);
			for (size_t j = 0; j < f->n; j++)
				msgpack_pack_int64(pk, f->iv[j]);
			break;
		}
	}
}

/* One request/response with the agent. On failure err says why (without
 * the "vm `x`:" prefix); an agent-side errno is left in errno. reply must
 * be freed by the caller on success only. */
int qvm_call(struct vmm_vm *vm, int kind, const struct req *r, int timeout_ms,
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
	rc = agent_call(vm->ac, kind, r ? r->n : 0, qvm_build, (void *)(uintptr_t)r, timeout_ms,
			reply, err, errlen);
	if (rc == 0) {
		qspare_launch_pending();  /* after the restored guest's first op */
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
static int call_nil(struct vmm_vm *vm, int kind, const struct req *r, char *err, size_t errlen)
{
	struct agent_reply rep;
	if (qvm_call(vm, kind, r, OP_TIMEOUT_MS, &rep, err, errlen) < 0)
		return -1;
	agent_reply_free(&rep);
	return 0;
}

static int bad_reply(struct agent_reply *rep, const char *what, char *err, size_t errlen)
{
	agent_reply_free(rep);
	err_set(err, errlen, "malformed reply from the agent (%s)", what);
	errno = EPROTO;
	return -1;
}


/* ---- exec ------------------------------------------------------------------ */

/* Fill r with the exec/spawn fields of x (argv from exec_argv). */
static void exec_fields(struct req *r, const struct vmm_exec_req *x, const char *const *argv)
{
	r->f[r->n++] = (struct fld){ .key = "argv", .t = F_STRV, .v = argv };
	if (x->env && (x->env[0] || x->env_clear))
		r->f[r->n++] = (struct fld){ .key = "env", .t = F_ENV, .v = x->env };
	else if (x->env_clear) {
		static const char *const none[] = { NULL };
		r->f[r->n++] = (struct fld){ .key = "env", .t = F_ENV, .v = none };
	}
	if (x->env_clear)
		add_bool(r, "env_clear", true);
	if (x->cwd)
		add_str(r, "cwd", x->cwd);
	if (x->stdin_data)
		add_bin(r, "stdin", x->stdin_data, x->stdin_len);
}

/* argv with argv[0] replaced by the executable (the agent execs argv[0]
 * via PATH). malloc'd array of borrowed strings. */
static const char **exec_argv(const struct vmm_exec_req *x)
{
	size_t n = 0;
	const char **v;
	while (x->argv && x->argv[n])
		n++;
	v = calloc(n + 2, sizeof *v);
	if (!v)
		return NULL;
	v[0] = x->file ? x->file : (n ? x->argv[0] : "true");
	for (size_t i = 1; i < n; i++)
		v[i] = x->argv[i];
	v[n ? n : 1] = NULL;
	return v;
}

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

/* Parse an ExecResult value into res. 0 or -1. */
static int parse_exec_result(const msgpack_object *v, struct vmm_exec_result *res)
{
	int64_t status = 0, sig = 0;
	int to = 0;
	const char *o = NULL, *e = NULL;
	size_t ol = 0, el = 0;
	memset(res, 0, sizeof *res);
	if (!v || proto_get_int(v, "status", &status) < 0)
		return -1;
	proto_get_bytes(v, "stdout", &o, &ol);
	proto_get_bytes(v, "stderr", &e, &el);
	proto_get_bool(v, "timed_out", &to);
	if (proto_get_int(v, "signal", &sig) < 0)
		sig = 0;
	if (to) {
		res->status = VMM_TIMED_OUT;
		res->exit_code = -2;
	} else if (sig > 0) {
		res->status = VMM_SIGNALLED;
		res->exit_code = -1;
		res->signal = (int)sig;
	} else {
		res->status = VMM_EXITED;
		res->exit_code = (int)status;
	}
	res->out = dup_bytes(o, ol);
	res->err = dup_bytes(e, el);
	res->out_len = ol;
	res->err_len = el;
	if (!res->out || !res->err) {
		vmm_exec_result_free(res);
		return -1;
	}
	return 0;
}

int qemu_exec(struct vmm_vm *vm, const struct vmm_exec_req *x,
	      struct vmm_exec_result *res, char *err, size_t errlen)
{
	struct req r = { .n = 0 };
	struct agent_reply rep;
	const char **argv = exec_argv(x);
	int wait_ms = -1, rc;

	if (!argv) {
		err_set(err, errlen, "out of memory");
		return -1;
	}
	exec_fields(&r, x, argv);
	if (x->timeout_ns >= 0) {
		int64_t ms = (x->timeout_ns + 999999) / 1000000;
		if (ms < 1)
			ms = 1;
		if (ms > INT32_MAX - EXEC_GRACE_MS)
			ms = INT32_MAX - EXEC_GRACE_MS;
		add_int(&r, "timeout_ms", ms);
		wait_ms = (int)ms + EXEC_GRACE_MS;
	}
	rc = qvm_call(vm, PROTO_K_EXEC, &r, wait_ms, &rep, err, errlen);
	free(argv);
	if (rc < 0)
		return -1;
	if (parse_exec_result(rep.value, res) < 0)
		return bad_reply(&rep, "exec result", err, errlen);
	agent_reply_free(&rep);
	return 0;
}

/* ---- files ----------------------------------------------------------------- */

int qemu_read_file(struct vmm_vm *vm, const char *path, char **data, size_t *len,
		   char *err, size_t errlen)
{
	struct req r = { .n = 0 };
	struct agent_reply rep;
	const char *p;
	size_t n;
	add_str(&r, "path", path);
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
		struct req r = { .n = 0 };
		size_t n = len - off < chunk ? len - off : chunk;
		add_str(&r, "path", path);
		add_bin(&r, "data", data + off, n);
		if (off)
			add_bool(&r, "append", true);
		if (call_nil(vm, PROTO_K_WRITE_FILE, &r, err, errlen) < 0)
			return -1;
		off += n;
	} while (off < len);
	return 0;
}

static enum vmm_entry_type entry_type(const msgpack_object *o, const char *key)
{
	static const char *const names[] = { "file", "directory", "symlink", "fifo", "socket",
		"block_device", "char_device", "other" };
	const char *p;
	size_t n;
	if (proto_get_bytes(o, key, &p, &n) < 0)
		return VMM_ENT_OTHER;
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
		if (strlen(names[i]) == n && !memcmp(names[i], p, n))
			return (enum vmm_entry_type)i;
	return VMM_ENT_OTHER;
}

int qemu_stat(struct vmm_vm *vm, const char *path, struct vmm_stat *st,
	      char *err, size_t errlen)
{
	struct req r = { .n = 0 };
	struct agent_reply rep;
	uint64_t size = 0, perm = 0;
	int64_t mtime = 0;
	add_str(&r, "path", path);
	if (qvm_call(vm, PROTO_K_STAT, &r, OP_TIMEOUT_MS, &rep, err, errlen) < 0)
		return -1;
	if (!rep.value || proto_get_uint(rep.value, "size", &size) < 0 ||
	    proto_get_uint(rep.value, "perm", &perm) < 0)
		return bad_reply(&rep, "stat", err, errlen);
	proto_get_int(rep.value, "mtime_ns", &mtime);
	st->size = size;
	st->perm = (unsigned)(perm & 07777);
	st->mtime_ns = mtime;
	st->type = entry_type(rep.value, "entry_type");
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
	struct req r = { .n = 0 };
	struct agent_reply rep;
	struct vmm_dirent *v;
	uint32_t cnt;
	add_str(&r, "path", path);
	if (qvm_call(vm, PROTO_K_LISTDIR, &r, OP_TIMEOUT_MS, &rep, err, errlen) < 0)
		return -1;
	if (!rep.value || rep.value->type != MSGPACK_OBJECT_ARRAY)
		return bad_reply(&rep, "listdir", err, errlen);
	cnt = rep.value->via.array.size;
	v = calloc(cnt ? cnt : 1, sizeof *v);
	if (!v) {
		agent_reply_free(&rep);
		err_set(err, errlen, "out of memory");
		return -1;
	}
	for (uint32_t i = 0; i < cnt; i++) {
		const msgpack_object *e = &rep.value->via.array.ptr[i];
		const char *p;
		size_t l;
		if (proto_get_bytes(e, "name", &p, &l) < 0 || !(v[i].name = dup_bytes(p, l))) {
			vmm_dirents_free(v, i);
			return bad_reply(&rep, "listdir entry", err, errlen);
		}
		v[i].type = entry_type(e, "entry_type");
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
	struct req r = { .n = 0 };
	add_str(&r, "path", path);
	add_bool(&r, "parents", parents);
	if (perm >= 0)
		add_int(&r, "perm", perm);
	return call_nil(vm, PROTO_K_MKDIR, &r, err, errlen);
}

int qemu_unlink(struct vmm_vm *vm, const char *path, char *err, size_t errlen)
{
	struct req r = { .n = 0 };
	add_str(&r, "path", path);
	return call_nil(vm, PROTO_K_UNLINK, &r, err, errlen);
}

int qemu_rename(struct vmm_vm *vm, const char *from, const char *to,
		char *err, size_t errlen)
{
	struct req r = { .n = 0 };
	add_str(&r, "from", from);
	add_str(&r, "to", to);
	return call_nil(vm, PROTO_K_RENAME, &r, err, errlen);
}

/* ---- open files -------------------------------------------------------------- */

int qemu_open(struct vmm_vm *vm, const char *path, int mode, int perm,
	      struct vmm_file **out, char *err, size_t errlen)
{
	struct req r = { .n = 0 };
	struct agent_reply rep;
	struct vmm_file *f;
	int64_t h;
	add_str(&r, "path", path);
	add_int(&r, "mode", mode & (int)PROTO_OPEN_ALL);
	if (perm >= 0)
		add_int(&r, "perm", perm);
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
	vm->refs++;
	*out = f;
	return 0;
}

int qemu_file_read(struct vmm_file *f, void *buf, size_t n, size_t *got,
		   char *err, size_t errlen)
{
	struct req r = { .n = 0 };
	struct agent_reply rep;
	const char *p;
	size_t l;
	add_int(&r, "handle", (int64_t)f->handle);
	add_int(&r, "n", (int64_t)(n > PROTO_IO_MAX ? PROTO_IO_MAX : n));
	if (qvm_call(f->vm, PROTO_K_FILE_READ, &r, OP_TIMEOUT_MS, &rep, err, errlen) < 0)
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
		struct req r = { .n = 0 };
		struct agent_reply rep;
		size_t c = n - done > PROTO_IO_MAX / 2 ? PROTO_IO_MAX / 2 : n - done;
		int64_t w;
		add_int(&r, "handle", (int64_t)f->handle);
		add_bin(&r, "data", (const char *)buf + done, c);
		if (qvm_call(f->vm, PROTO_K_FILE_WRITE, &r, OP_TIMEOUT_MS, &rep, err, errlen) < 0)
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
	static const char *const wh[] = { "set", "cur", "end" };
	struct req r = { .n = 0 };
	struct agent_reply rep;
	int64_t p;
	add_int(&r, "handle", (int64_t)f->handle);
	add_int(&r, "offset", off);
	add_str(&r, "whence", wh[w]);
	if (qvm_call(f->vm, PROTO_K_FILE_SEEK, &r, OP_TIMEOUT_MS, &rep, err, errlen) < 0)
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

void qemu_file_close(struct vmm_file *f)
{
	char e[256];
	if (!f)
		return;
	if (!f->vm->gone && !f->vm->paused) {
		struct req r = { .n = 0 };
		add_int(&r, "handle", (int64_t)f->handle);
		call_nil(f->vm, PROTO_K_FILE_CLOSE, &r, e, sizeof e);
	}
	qvm_vm_unref(f->vm);
	free(f);
}

/* ---- async processes ------------------------------------------------------------ */

int qemu_exec_async(struct vmm_vm *vm, const struct vmm_exec_req *x,
		    struct vmm_proc **out, char *err, size_t errlen)
{
	struct req r = { .n = 0 };
	struct agent_reply rep;
	struct vmm_proc *p;
	const char **argv = exec_argv(x);
	uint64_t h = 0;
	int64_t pid = 0;
	int rc;
	if (!argv) {
		err_set(err, errlen, "out of memory");
		return -1;
	}
	exec_fields(&r, x, argv);
	rc = qvm_call(vm, PROTO_K_SPAWN, &r, OP_TIMEOUT_MS, &rep, err, errlen);
	free(argv);
	if (rc < 0)
		return -1;
	if (!rep.value || proto_get_uint(rep.value, "handle", &h) < 0 || !h)
		return bad_reply(&rep, "spawn", err, errlen);
	proto_get_int(rep.value, "pid", &pid);
	agent_reply_free(&rep);
	p = calloc(1, sizeof *p);
	if (!p) {
		err_set(err, errlen, "out of memory");
		return -1;
	}
	p->vm = vm;
	p->handle = h;
	p->pid = pid;
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
		struct req r = { .n = 0 };
		struct agent_reply rep;
		int running = 1;
		add_int(&r, "handle", (int64_t)p->handle);
		if (qvm_call(p->vm, PROTO_K_PROC_STATUS, &r, OP_TIMEOUT_MS, &rep, err, errlen) < 0)
			return -1;
		if (!rep.value || proto_get_bool(rep.value, "running", &running) < 0)
			return bad_reply(&rep, "proc_status", err, errlen);
		agent_reply_free(&rep);
		if (!running) {
			if (qvm_call(p->vm, PROTO_K_PROC_WAIT, &r, OP_TIMEOUT_MS, &rep, err, errlen) < 0)
				return -1;
			p->done = true;
			if (parse_exec_result(rep.value, res) < 0)
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
	struct req r = { .n = 0 };
	if (p->done)
		return 0;
	add_int(&r, "handle", (int64_t)p->handle);
	add_int(&r, "signal", sig);
	return call_nil(p->vm, PROTO_K_PROC_KILL, &r, err, errlen);
}

int qemu_proc_stdin_write(struct vmm_proc *p, const char *data, size_t len, size_t *put,
			  char *err, size_t errlen)
{
	struct req r = { .n = 0 };
	struct agent_reply rep;
	int64_t w;
	add_int(&r, "handle", (int64_t)p->handle);
	add_bin(&r, "data", data, len > PROTO_IO_MAX / 2 ? PROTO_IO_MAX / 2 : len);
	if (qvm_call(p->vm, PROTO_K_PROC_STDIN, &r, OP_TIMEOUT_MS, &rep, err, errlen) < 0)
		return -1;
	if (!rep.value || proto_obj_int(rep.value, &w) < 0 || w < 0)
		return bad_reply(&rep, "proc_stdin", err, errlen);
	agent_reply_free(&rep);
	*put = (size_t)w;
	return 0;
}

int qemu_proc_close_stdin(struct vmm_proc *p, char *err, size_t errlen)
{
	struct req r = { .n = 0 };
	add_int(&r, "handle", (int64_t)p->handle);
	return call_nil(p->vm, PROTO_K_PROC_STDIN_CLOSE, &r, err, errlen);
}

int64_t qemu_proc_pid(struct vmm_proc *p)
{
	return p->pid;
}

uint64_t qemu_proc_handle(struct vmm_proc *p)
{
	return p->handle;
}

void qemu_proc_free(struct vmm_proc *p)
{
	char e[256];
	if (!p)
		return;
	if (!p->done && !p->vm->gone && !p->vm->paused) {
		/* Kill and collect, so the agent frees the handle. (A paused
		 * guest cannot answer: its process is left to the guest.) */
		struct req r = { .n = 0 };
		struct agent_reply rep;
		add_int(&r, "handle", (int64_t)p->handle);
		add_int(&r, "signal", SIGKILL);
		if (call_nil(p->vm, PROTO_K_PROC_KILL, &r, e, sizeof e) == 0) {
			r.n = 1;
			if (qvm_call(p->vm, PROTO_K_PROC_WAIT, &r, 10000, &rep, e, sizeof e) == 0)
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
	struct req r = { .n = 0 };
	struct agent_reply rep;
	int64_t rv, en = 0;
	add_int(&r, "nr", nr);
	r.f[r.n++] = (struct fld){ .key = "args", .t = F_INTS, .iv = args, .n = 6 };
	if (qvm_call(vm, PROTO_K_SYSCALL, &r, OP_TIMEOUT_MS, &rep, err, errlen) < 0)
		return -1;
	if (!rep.value || proto_get_int(rep.value, "ret", &rv) < 0)
		return bad_reply(&rep, "syscall", err, errlen);
	proto_get_int(rep.value, "errno", &en);
	agent_reply_free(&rep);
	*ret = rv;
	*err_no = (int)en;
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
