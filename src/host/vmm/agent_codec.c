/* agent_codec.c — the host's request encoders and reply decoders for the
 * agent wire protocol (see agent_codec.h). Pure: no I/O; the agent
 * client (agent_client.c) frames, sends and size-checks, and the ops
 * (qemu_ops.c, guest_ops.c, guest_worker.c) decide what to ask. Field
 * names, order and integer forms here are what goes on the wire: change
 * them only together with proto/protocol.h (and its version). */
#include "vmm/agent_codec.h"

#include <stdlib.h>
#include <string.h>

#include "proto/protocol.h"

/* ---- requests ---------------------------------------------------------- */

void agent_req_init(struct agent_req *r)
{
	r->n = 0;
}

static struct agent_fld *add(struct agent_req *r, const char *key, enum agent_ftype t)
{
	struct agent_fld *f = &r->f[r->n++];
	memset(f, 0, sizeof *f);
	f->key = key;
	f->t = t;
	return f;
}

static void add_str(struct agent_req *r, const char *key, const char *s)
{
	add(r, key, AF_STR)->s = s;
}

static void add_bin(struct agent_req *r, const char *key, const void *p, size_t n)
{
	struct agent_fld *f = add(r, key, AF_BIN);
	f->s = p ? p : "";
	f->n = n;
}

static void add_int(struct agent_req *r, const char *key, int64_t i)
{
	add(r, key, AF_INT)->i = i;
}

static void add_uint(struct agent_req *r, const char *key, uint64_t u)
{
	add(r, key, AF_UINT)->u = u;
}

static void add_bool(struct agent_req *r, const char *key, bool b)
{
	add(r, key, AF_BOOL)->i = b;
}

static size_t sysbufs_nfields(const struct guest_syscall *s)
{
	return s->nbufs ? 2 + (s->npatches ? 1 : 0) : 0;
}

size_t agent_req_nfields(const struct agent_req *r)
{
	size_t n = 0;
	for (size_t i = 0; i < r->n; i++)
		n += r->f[i].t == AF_SYSBUFS ? sysbufs_nfields(r->f[i].sc) : 1;
	return n;
}

static void pack_bool(msgpack_packer *pk, bool b)
{
	if (b)
		msgpack_pack_true(pk);
	else
		msgpack_pack_false(pk);
}

static size_t count_strv(const char *const *v)
{
	size_t n = 0;
	while (v && v[n])
		n++;
	return n;
}

/* The agent execs argv[0] via PATH: it is the executable (x->file), the
 * program name otherwise; an empty argv runs file or "true". */
static void pack_argv(msgpack_packer *pk, const struct vmm_exec_req *x)
{
	size_t n = count_strv(x->argv);
	if (!n) {
		msgpack_pack_array(pk, 1);
		proto_pack_cstr(pk, x->file ? x->file : "true");
		return;
	}
	msgpack_pack_array(pk, n);
	proto_pack_cstr(pk, x->file ? x->file : x->argv[0]);
	for (size_t i = 1; i < n; i++)
		proto_pack_cstr(pk, x->argv[i]);
}

static void pack_env(msgpack_packer *pk, const char *const *env)
{
	size_t n = count_strv(env);
	msgpack_pack_map(pk, n);
	for (size_t j = 0; j < n; j++) {
		const char *eq = strchr(env[j], '=');
		size_t kl = eq ? (size_t)(eq - env[j]) : strlen(env[j]);
		msgpack_pack_str(pk, kl);
		msgpack_pack_str_body(pk, env[j], kl);
		proto_pack_cstr(pk, eq ? eq + 1 : "");
	}
}

static void pack_sysbufs(msgpack_packer *pk, const struct guest_syscall *s)
{
	if (!s->nbufs)
		return;
	proto_pack_key(pk, "bufs");
	msgpack_pack_array(pk, s->nbufs);
	for (size_t i = 0; i < s->nbufs; i++)
		proto_pack_bytes(pk, s->bufs[i], s->buf_lens[i]);
	proto_pack_key(pk, "ptrs");
	msgpack_pack_array(pk, s->nbufs);
	for (size_t i = 0; i < s->nbufs; i++)
		msgpack_pack_int32(pk, s->ptrs[i]);
	if (!s->npatches)
		return;
	proto_pack_key(pk, PROTO_F_PATCHES);
	msgpack_pack_array(pk, s->npatches);
	for (size_t i = 0; i < s->npatches; i++) {
		msgpack_pack_array(pk, 3);
		msgpack_pack_uint32(pk, s->patches[i].target);
		msgpack_pack_uint64(pk, s->patches[i].offset);
		msgpack_pack_uint32(pk, s->patches[i].source);
	}
}

void agent_req_build(msgpack_packer *pk, void *ctx)
{
	const struct agent_req *r = ctx;
	for (size_t i = 0; i < r->n; i++) {
		const struct agent_fld *f = &r->f[i];
		if (f->t == AF_SYSBUFS) {
			pack_sysbufs(pk, f->sc);
			continue;
		}
		proto_pack_key(pk, f->key);
		switch (f->t) {
		case AF_STR:
			proto_pack_cstr(pk, f->s);
			break;
		case AF_BIN:
			proto_pack_bytes(pk, f->s, f->n);
			break;
		case AF_INT:
			msgpack_pack_int64(pk, f->i);
			break;
		case AF_UINT:
			msgpack_pack_uint64(pk, f->u);
			break;
		case AF_BOOL:
			pack_bool(pk, f->i != 0);
			break;
		case AF_ENV:
			pack_env(pk, f->v);
			break;
		case AF_INTS:
			msgpack_pack_array(pk, f->n);
			for (size_t j = 0; j < f->n; j++)
				msgpack_pack_int64(pk, f->iv[j]);
			break;
		case AF_ARGV:
			pack_argv(pk, f->x);
			break;
		case AF_SYSBUFS:
			break;
		}
	}
}

void agent_req_exec(struct agent_req *r, const struct vmm_exec_req *x, int64_t timeout_ms)
{
	static const char *const none[] = { NULL };
	agent_req_init(r);
	add(r, "argv", AF_ARGV)->x = x;
	if (x->env && (x->env[0] || x->env_clear))
		add(r, "env", AF_ENV)->v = x->env;
	else if (x->env_clear)
		add(r, "env", AF_ENV)->v = none;
	if (x->env_clear)
		add_bool(r, "env_clear", true);
	if (x->cwd)
		add_str(r, "cwd", x->cwd);
	if (x->stdin_data)
		add_bin(r, "stdin", x->stdin_data, x->stdin_len);
	if (timeout_ms >= 0)
		add_int(r, "timeout_ms", timeout_ms);
}

void agent_req_path(struct agent_req *r, const char *path)
{
	agent_req_init(r);
	add_str(r, "path", path);
}

void agent_req_write_file(struct agent_req *r, const char *path, const void *data, size_t n,
			  bool append)
{
	agent_req_path(r, path);
	add_bin(r, PROTO_F_DATA, data, n);
	if (append)
		add_bool(r, "append", true);
}

void agent_req_mkdir(struct agent_req *r, const char *path, bool parents, int perm)
{
	agent_req_path(r, path);
	add_bool(r, "parents", parents);
	if (perm >= 0)
		add_int(r, "perm", perm);
}

void agent_req_rename(struct agent_req *r, const char *from, const char *to)
{
	agent_req_init(r);
	add_str(r, "from", from);
	add_str(r, "to", to);
}

void agent_req_clock_set(struct agent_req *r, int64_t ns)
{
	agent_req_init(r);
	add_int(r, "ns", ns);
}

void agent_req_handle(struct agent_req *r, uint64_t handle)
{
	agent_req_init(r);
	add_uint(r, "handle", handle);
}

void agent_req_proc_kill(struct agent_req *r, uint64_t handle, int sig)
{
	agent_req_handle(r, handle);
	add_int(r, "signal", sig);
}

void agent_req_handle_data(struct agent_req *r, uint64_t handle, const void *data, size_t n)
{
	agent_req_handle(r, handle);
	add_bin(r, PROTO_F_DATA, data, n);
}

void agent_req_proc_stream(struct agent_req *r, uint64_t handle, bool stderr_)
{
	agent_req_handle(r, handle);
	add_str(r, "which", stderr_ ? "stderr" : "stdout");
}

void agent_req_file_open(struct agent_req *r, const char *path, int mode, int perm)
{
	agent_req_path(r, path);
	add_int(r, "mode", mode & (int)PROTO_OPEN_ALL);
	if (perm >= 0)
		add_int(r, "perm", perm);
}

void agent_req_file_read(struct agent_req *r, uint64_t handle, uint64_t n)
{
	agent_req_handle(r, handle);
	add_uint(r, "n", n);
}

void agent_req_file_seek(struct agent_req *r, uint64_t handle, int64_t offset,
			 enum vmm_whence whence)
{
	static const char *const wh[] = { "set", "cur", "end" };
	agent_req_handle(r, handle);
	add_int(r, "offset", offset);
	add_str(r, "whence", wh[whence]);
}

void agent_req_tail(struct agent_req *r, const struct vmm_stream_req *s)
{
	agent_req_path(r, s->path);
	if (s->start == VMM_TAIL_BEGINNING)
		add_str(r, "start", "beginning");
	else if (s->start == VMM_TAIL_END)
		add_str(r, "start", "end");
	else
		add_int(r, "start", s->offset);
}

void agent_req_stream_close(struct agent_req *r, uint64_t channel)
{
	agent_req_init(r);
	add_uint(r, PROTO_F_CHANNEL, channel);
}

void agent_req_syscall_ints(struct agent_req *r, int64_t nr, const int64_t args[6])
{
	struct agent_fld *f;
	agent_req_init(r);
	add_int(r, "nr", nr);
	f = add(r, "args", AF_INTS);
	f->iv = args;
	f->n = 6;
}

void agent_req_syscall(struct agent_req *r, const struct guest_syscall *s)
{
	agent_req_syscall_ints(r, s->nr, s->args);
	if (s->nbufs)
		add(r, "bufs", AF_SYSBUFS)->sc = s;
}

void agent_req_read_mem(struct agent_req *r, uint64_t addr, uint64_t len)
{
	agent_req_init(r);
	add_uint(r, "addr", addr);
	add_uint(r, "len", len);
}

void agent_req_net_setup(struct agent_req *r, const struct guest_net_setup *s)
{
	const char *const strs[][2] = {
		{ "mac", s->mac }, { "addr", s->addr }, { "gateway", s->gateway },
		{ "dns", s->dns }, { "hosts", s->hosts },
	};
	agent_req_init(r);
	for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++)
		if (strs[i][1])
			add_str(r, strs[i][0], strs[i][1]);
	if (s->prefix >= 0)
		add_uint(r, "prefix", (uint32_t)s->prefix);
	if (s->up >= 0)
		add_bool(r, "up", s->up != 0);
	if (s->wait_ms >= 0)
		add_uint(r, "wait_ms", (uint32_t)s->wait_ms);
}

void agent_req_worker_spawn(struct agent_req *r, uint64_t handle)
{
	agent_req_handle(r, handle);
}

void agent_req_worker_join(struct agent_req *r, uint64_t handle, int64_t timeout_ms)
{
	agent_req_handle(r, handle);
	add_int(r, "timeout_ms", timeout_ms);
}

void agent_req_worker_kill(struct agent_req *r, uint64_t handle, int sig)
{
	agent_req_handle(r, handle);
	add_int(r, "signal", sig);
}

void agent_req_fault_frame(struct agent_req *r, const char *mode)
{
	agent_req_init(r);
	add_str(r, "mode", mode);
}

int agent_batch_kind(enum guest_batch_kind k)
{
	static const int kinds[] = {PROTO_K_EXEC, PROTO_K_READ_FILE, PROTO_K_WRITE_FILE,
		PROTO_K_STAT, PROTO_K_LISTDIR, PROTO_K_MKDIR, PROTO_K_UNLINK, PROTO_K_RENAME,
		PROTO_K_SYSCALL};
	return kinds[k];
}

void agent_req_batch_op(struct agent_req *r, const struct guest_batch_op *o)
{
	switch (o->kind) {
	case GB_EXEC:
		agent_req_exec(r, &o->exec, o->exec.timeout_ns > 0
			       ? (o->exec.timeout_ns + 999999) / 1000000 : -1);
		break;
	case GB_WRITE_FILE:
		agent_req_write_file(r, o->path, o->data, o->len, false);
		break;
	case GB_MKDIR:
		agent_req_mkdir(r, o->path, o->parents, o->perm);
		break;
	case GB_RENAME:
		agent_req_rename(r, o->path, o->path2);
		break;
	case GB_SYSCALL:
		agent_req_syscall_ints(r, o->nr, o->args);
		break;
	default:
		agent_req_path(r, o->path);
		break;
	}
}

/* ---- replies ----------------------------------------------------------- */

static const char *const entry_names[] = { "file", "directory", "symlink", "fifo", "socket",
	"block_device", "char_device", "other" };

enum vmm_entry_type agent_dec_entry_type(const char *p, size_t n)
{
	for (size_t i = 0; i < sizeof entry_names / sizeof entry_names[0]; i++)
		if (strlen(entry_names[i]) == n && !memcmp(entry_names[i], p, n))
			return (enum vmm_entry_type)i;
	return VMM_ENT_OTHER;
}

/* The entry_type field of o, VMM_ENT_OTHER when absent or ill-typed. */
static enum vmm_entry_type entry_type_of(const msgpack_object *o)
{
	const char *p;
	size_t n;
	if (proto_get_bytes(o, "entry_type", &p, &n) < 0)
		return VMM_ENT_OTHER;
	return agent_dec_entry_type(p, n);
}

/* A NUL-terminated malloc'd copy of n bytes at p (p may be NULL if n 0). */
static char *dup_n(const char *p, size_t n)
{
	char *o = malloc(n + 1);
	if (!o)
		return NULL;
	if (n)
		memcpy(o, p, n);
	o[n] = 0;
	return o;
}

int agent_dec_exec_result(const msgpack_object *v, struct vmm_exec_result *res)
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
	res->out = dup_n(o, ol);
	res->err = dup_n(e, el);
	res->out_len = ol;
	res->err_len = el;
	if (!res->out || !res->err) {
		vmm_exec_result_free(res);
		return -1;
	}
	return 0;
}

int agent_dec_stat(const msgpack_object *v, struct vmm_stat *st)
{
	uint64_t size = 0, perm = 0;
	int64_t mtime = 0;
	if (!v || proto_get_uint(v, "size", &size) < 0 || proto_get_uint(v, "perm", &perm) < 0)
		return -1;
	proto_get_int(v, "mtime_ns", &mtime);
	st->size = size;
	st->perm = (unsigned)(perm & 07777);
	st->mtime_ns = mtime;
	st->type = entry_type_of(v);
	return 0;
}

int agent_dec_listdir(const msgpack_object *v, struct vmm_dirent **ents, size_t *n,
		      const char **what)
{
	struct vmm_dirent *d;
	uint32_t cnt;
	*what = "listdir";
	if (!v || v->type != MSGPACK_OBJECT_ARRAY)
		return -1;
	cnt = v->via.array.size;
	d = calloc(cnt ? cnt : 1, sizeof *d);
	if (!d) {
		*what = NULL;
		return -1;
	}
	for (uint32_t i = 0; i < cnt; i++) {
		const msgpack_object *e = &v->via.array.ptr[i];
		const char *p;
		size_t l;
		if (proto_get_bytes(e, "name", &p, &l) < 0 || !(d[i].name = dup_n(p, l))) {
			vmm_dirents_free(d, i);
			*what = "listdir entry";
			return -1;
		}
		d[i].type = entry_type_of(e);
	}
	*ents = d;
	*n = cnt;
	return 0;
}

int agent_dec_handle_pid(const msgpack_object *v, bool need_pid, uint64_t *handle,
			 int64_t *pid)
{
	if (!need_pid) {
		if (!v || proto_get_uint(v, "handle", handle) < 0 || !*handle)
			return -1;
		proto_get_int(v, "pid", pid);
		return 0;
	}
	if (proto_get_uint(v, "handle", handle) < 0 || proto_get_int(v, "pid", pid) < 0)
		return -1;
	return 0;
}

int agent_dec_proc_running(const msgpack_object *v, int *running)
{
	return !v || proto_get_bool(v, "running", running) < 0 ? -1 : 0;
}

int agent_dec_syscall(const msgpack_object *v, size_t nbufs, struct guest_syscall_result *res)
{
	int64_t e = 0;
	const msgpack_object *ob;
	memset(res, 0, sizeof(*res));
	if (!v || proto_get_int(v, "ret", &res->ret) < 0)
		return -1;
	proto_get_int(v, PROTO_F_ERRNO, &e);
	res->err_no = (int)e;
	if (!nbufs)
		return 0;
	ob = proto_get(v, "out_bufs");
	if (!ob || ob->type != MSGPACK_OBJECT_ARRAY || ob->via.array.size != nbufs)
		return -1;
	res->out_bufs = calloc(nbufs, sizeof(char *));
	res->out_lens = calloc(nbufs, sizeof(size_t));
	if (!res->out_bufs || !res->out_lens)
		goto fail;
	res->nbufs = nbufs;
	for (size_t i = 0; i < nbufs; i++) {
		const char *p;
		size_t n;
		if (proto_obj_bytes(&ob->via.array.ptr[i], &p, &n) < 0 || !(res->out_bufs[i] = malloc(n + 1)))
			goto fail;
		memcpy(res->out_bufs[i], p, n);
		res->out_lens[i] = n;
	}
	return 0;
fail:
	guest_syscall_result_free(res);
	return -1;
}

int agent_dec_net_setup(const msgpack_object *v, const char **p, size_t *n)
{
	return !v || proto_get_bytes(v, "ifname", p, n) < 0 ? -1 : 0;
}

int agent_dec_channel(const msgpack_object *v, uint64_t *channel)
{
	return !v || proto_get_uint(v, PROTO_F_CHANNEL, channel) < 0 || !*channel ? -1 : 0;
}

int agent_dec_worker_join(const msgpack_object *v, int *status, int *sig)
{
	int64_t st = 0, sg = 0;
	if (proto_get_int(v, "status", &st) < 0)
		return -1;
	proto_get_int(v, "signal", &sg);
	*status = (int)st;
	*sig = (int)sg;
	return 0;
}

/* The batch form of a byte value: nil is "", anything but str/bin -1. */
static int batch_bytes(const msgpack_object *o, char **out, size_t *len)
{
	const char *p;
	size_t n;
	if (!o) {
		p = "";
		n = 0;
	} else if (proto_obj_bytes(o, &p, &n) < 0) {
		return -1;
	}
	if (!(*out = malloc(n + 1)))
		return -1;
	memcpy(*out, p, n);
	(*out)[n] = 0;
	*len = n;
	return 0;
}

int agent_dec_batch_value(const struct guest_batch_op *o, const msgpack_object *v,
			  struct guest_batch_res *res)
{
	switch (o->kind) {
	case GB_EXEC: {
		struct vmm_exec_result *x = &res->exec;
		int64_t status = 0, sig = 0;
		int to = 0;
		if (!v || proto_get_int(v, "status", &status) < 0)
			return -1;
		proto_get_bool(v, "timed_out", &to);
		proto_get_int(v, "signal", &sig);
		if (batch_bytes(proto_get(v, "stdout"), &x->out, &x->out_len) < 0 ||
		    batch_bytes(proto_get(v, "stderr"), &x->err, &x->err_len) < 0)
			return -1;
		x->exit_code = (int)status;
		x->status = to ? VMM_TIMED_OUT : proto_get(v, "signal") ? VMM_SIGNALLED : VMM_EXITED;
		x->signal = x->status == VMM_SIGNALLED ? (int)sig : 0;
		return 0;
	}
	case GB_READ_FILE:
		return batch_bytes(v, &res->data, &res->len);
	case GB_STAT: {
		const char *t;
		size_t tl;
		uint64_t size, perm;
		if (!v || proto_get_uint(v, "size", &size) < 0 ||
		    proto_get_int(v, "mtime_ns", &res->st.mtime_ns) < 0 ||
		    proto_get_uint(v, "perm", &perm) < 0 ||
		    proto_get_bytes(v, "entry_type", &t, &tl) < 0)
			return -1;
		res->st.size = size;
		res->st.perm = (unsigned)(perm & 07777);
		res->st.type = agent_dec_entry_type(t, tl);
		return 0;
	}
	case GB_LISTDIR: {
		uint32_t n;
		if (!v || v->type != MSGPACK_OBJECT_ARRAY)
			return -1;
		n = v->via.array.size;
		if (!(res->ents = calloc(n ? n : 1, sizeof(*res->ents))))
			return -1;
		for (uint32_t i = 0; i < n; i++) {
			const char *nm, *t;
			size_t nl, tl;
			if (proto_get_bytes(&v->via.array.ptr[i], "name", &nm, &nl) < 0 ||
			    proto_get_bytes(&v->via.array.ptr[i], "entry_type", &t, &tl) < 0 ||
			    !(res->ents[i].name = strndup(nm, nl)))
				return -1;
			res->ents[i].type = agent_dec_entry_type(t, tl);
			res->nents = i + 1;
		}
		return 0;
	}
	case GB_SYSCALL: {
		int64_t e = 0;
		if (!v || proto_get_int(v, "ret", &res->sys_ret) < 0)
			return -1;
		proto_get_int(v, PROTO_F_ERRNO, &e);
		res->sys_errno = (int)e;
		return 0;
	}
	default:
		return 0;
	}
}
