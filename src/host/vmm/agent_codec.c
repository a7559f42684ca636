/* agent_codec.c — the host's adapter to the shared codec of the agent
 * wire protocol (proto/codec.h, see agent_codec.h): vmm / guest_ops types
 * in, proto message structs out, and back for the replies. Pure: no I/O;
 * the agent client (agent_client.c) frames, sends and size-checks, and
 * the ops (qemu_ops.c, guest_ops.c, guest_worker.c) decide what to ask.
 * No field name or wire type is spelled here: the tables of
 * proto/codec.c are the only place that knows them. */
#include "vmm/agent_codec.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/protocol.h"

/* ---- requests ---------------------------------------------------------- */

void agent_req_init(struct agent_req *r)
{
	memset(r, 0, sizeof *r);
}

/* r set up for message m, its struct zeroed. */
static void *req_of(struct agent_req *r, const struct proto_msg *m)
{
	agent_req_init(r);
	r->m = m;
	return &r->u;
}

size_t agent_req_nfields(const struct agent_req *r)
{
	return r->m ? proto_nfields(r->m, &r->u) : 0;
}

void agent_req_build(msgpack_packer *pk, void *ctx)
{
	const struct agent_req *r = ctx;
	if (r->m)
		proto_pack_fields(pk, r->m, &r->u);
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
static void at_argv(const struct proto_list *l, size_t i, struct proto_elem *e)
{
	const struct vmm_exec_req *x = l->ctx;
	if (i == 0)
		e->s = proto_cstr(x->file ? x->file : x->argv && x->argv[0] ? x->argv[0] : "true");
	else
		e->s = proto_cstr(x->argv[i]);
}

/* "K=V" entries as {K: V} ("K" alone: an empty value). */
static void at_env(const struct proto_list *l, size_t i, struct proto_elem *e)
{
	const char *kv = ((const char *const *)l->ctx)[i], *eq = strchr(kv, '=');
	e->s.p = kv;
	e->s.n = eq ? (size_t)(eq - kv) : strlen(kv);
	e->v = proto_cstr(eq ? eq + 1 : "");
}

void agent_req_exec(struct agent_req *r, const struct vmm_exec_req *x, int64_t timeout_ms)
{
	struct proto_exec *q = req_of(r, &proto_m_exec);
	size_t argc = count_strv(x->argv);
	q->has_argv = true;
	q->argv.n = argc ? argc : 1;
	q->argv.at = at_argv;
	q->argv.ctx = x;
	if (x->env_clear || (x->env && x->env[0])) {
		q->has_env = true;
		q->env.n = count_strv(x->env);
		q->env.at = at_env;
		q->env.ctx = x->env;
	}
	q->has_env_clear = q->env_clear = x->env_clear;
	if (x->cwd) {
		q->has_cwd = true;
		q->cwd = proto_cstr(x->cwd);
	}
	if (x->stdin_data) {
		q->has_stdin = true;
		q->stdin_.p = x->stdin_data;
		q->stdin_.n = x->stdin_len;
	}
	if (timeout_ms >= 0) {
		q->has_timeout_ms = true;
		q->timeout_ms = (uint64_t)timeout_ms;
	}
}

int64_t agent_exec_timeout_ms(int64_t timeout_ns, int64_t max_ms)
{
	int64_t ms;
	if (timeout_ns < 0)
		return -1;
	ms = timeout_ns / 1000000 + (timeout_ns % 1000000 != 0);
	if (ms < 1)
		ms = 1;
	return ms > max_ms ? max_ms : ms;
}

void agent_req_path(struct agent_req *r, const char *path)
{
	struct proto_path *q = req_of(r, &proto_m_path);
	q->path = proto_cstr(path);
}

void agent_req_write_file(struct agent_req *r, const char *path, const void *data, size_t n,
			  bool append)
{
	struct proto_write_file *q = req_of(r, &proto_m_write_file);
	q->path = proto_cstr(path);
	q->data.p = data ? data : "";
	q->data.n = n;
	q->has_append = q->append = append;
}

void agent_req_mkdir(struct agent_req *r, const char *path, bool parents, int perm)
{
	struct proto_mkdir *q = req_of(r, &proto_m_mkdir);
	q->path = proto_cstr(path);
	q->has_parents = true;
	q->parents = parents;
	if (perm >= 0) {
		q->has_perm = true;
		q->perm = (uint64_t)perm;
	}
}

void agent_req_rename(struct agent_req *r, const char *from, const char *to)
{
	struct proto_rename *q = req_of(r, &proto_m_rename);
	q->from = proto_cstr(from);
	q->to = proto_cstr(to);
}

void agent_req_clock_set(struct agent_req *r, int64_t ns)
{
	struct proto_clock_set *q = req_of(r, &proto_m_clock_set);
	q->ns = ns;
}

/* A handle request of message m. */
static struct proto_handle *handle_req(struct agent_req *r, const struct proto_msg *m,
				       uint64_t handle)
{
	struct proto_handle *q = req_of(r, m);
	q->handle = handle;
	q->has_handle = true;
	return q;
}

void agent_req_handle(struct agent_req *r, uint64_t handle)
{
	handle_req(r, &proto_m_handle, handle);
}

void agent_req_proc_kill(struct agent_req *r, uint64_t handle, int sig)
{
	struct proto_handle *q = handle_req(r, &proto_m_kill, handle);
	q->has_signal = true;
	q->signal = sig;
}

void agent_req_handle_data(struct agent_req *r, uint64_t handle, const void *data, size_t n)
{
	struct proto_handle *q = handle_req(r, &proto_m_handle_data, handle);
	q->data.p = data ? data : "";
	q->data.n = n;
}

void agent_req_proc_stream(struct agent_req *r, uint64_t handle, bool stderr_)
{
	struct proto_handle *q = handle_req(r, &proto_m_proc_stream, handle);
	q->which = proto_cstr(stderr_ ? "stderr" : "stdout");
}

void agent_req_file_open(struct agent_req *r, const char *path, int mode, int perm)
{
	struct proto_file_open *q = req_of(r, &proto_m_file_open);
	q->path = proto_cstr(path);
	q->mode = (uint64_t)(mode & (int)PROTO_OPEN_ALL);
	if (perm >= 0) {
		q->has_perm = true;
		q->perm = (uint64_t)perm;
	}
}

void agent_req_file_read(struct agent_req *r, uint64_t handle, uint64_t n)
{
	struct proto_handle *q = handle_req(r, &proto_m_file_read, handle);
	q->has_n = true;
	q->n = n;
}

void agent_req_file_seek(struct agent_req *r, uint64_t handle, int64_t offset,
			 enum vmm_whence whence)
{
	static const char *const wh[] = { "set", "cur", "end" };
	struct proto_handle *q = handle_req(r, &proto_m_file_seek, handle);
	q->has_offset = q->has_whence = true;
	q->offset = offset;
	q->whence = proto_cstr(wh[whence]);
}

void agent_req_tail(struct agent_req *r, const struct vmm_stream_req *s)
{
	struct proto_tail *q = req_of(r, &proto_m_tail);
	q->path = proto_cstr(s->path);
	q->has_start = true;
	if (s->start == VMM_TAIL_BEGINNING) {
		q->start.s = proto_cstr("beginning");
	} else if (s->start == VMM_TAIL_END) {
		q->start.s = proto_cstr("end");
	} else {
		q->start.is_int = true;
		q->start.i = s->offset;
	}
}

void agent_req_stream_close(struct agent_req *r, uint64_t channel)
{
	struct proto_channel *q = req_of(r, &proto_m_channel);
	q->channel = channel;
}

void agent_req_syscall_ints(struct agent_req *r, int64_t nr, const int64_t args[6])
{
	struct proto_syscall *q = req_of(r, &proto_m_syscall);
	q->nr = nr;
	q->has_args = true;
	proto_list_ints(&q->args, args, 6);
}

static void at_sysbuf(const struct proto_list *l, size_t i, struct proto_elem *e)
{
	const struct guest_syscall *s = l->ctx;
	e->s.p = s->bufs[i];
	e->s.n = s->buf_lens[i];
}

static void at_sysptr(const struct proto_list *l, size_t i, struct proto_elem *e)
{
	e->i = ((const struct guest_syscall *)l->ctx)->ptrs[i];
}

static void at_syspatch(const struct proto_list *l, size_t i, struct proto_elem *e)
{
	const struct guest_patch *p = &((const struct guest_syscall *)l->ctx)->patches[i];
	e->i = p->target;
	e->j = (int64_t)p->offset;
	e->k = p->source;
}

void agent_req_syscall(struct agent_req *r, const struct guest_syscall *s)
{
	struct proto_syscall *q;
	agent_req_syscall_ints(r, s->nr, s->args);
	if (!s->nbufs)
		return;
	q = &r->u.syscall;
	q->has_bufs = q->has_ptrs = true;
	q->bufs = (struct proto_list){ s->nbufs, at_sysbuf, s, NULL };
	q->ptrs = (struct proto_list){ s->nbufs, at_sysptr, s, NULL };
	if (s->npatches) {
		q->has_patches = true;
		q->patches = (struct proto_list){ s->npatches, at_syspatch, s, NULL };
	}
}

void agent_req_read_mem(struct agent_req *r, uint64_t addr, uint64_t len)
{
	struct proto_read_mem *q = req_of(r, &proto_m_read_mem);
	q->addr = addr;
	q->len = len;
}

/* An optional string field: set when c is not NULL. */
static void opt_str(struct proto_str *f, bool *has, const char *c)
{
	if (c) {
		*has = true;
		*f = proto_cstr(c);
	}
}

void agent_req_net_setup(struct agent_req *r, const struct guest_net_setup *s)
{
	struct proto_net_setup *q = req_of(r, &proto_m_net_setup);
	opt_str(&q->mac, &q->has_mac, s->mac);
	opt_str(&q->addr, &q->has_addr, s->addr);
	opt_str(&q->gateway, &q->has_gateway, s->gateway);
	opt_str(&q->dns, &q->has_dns, s->dns);
	opt_str(&q->hosts, &q->has_hosts, s->hosts);
	if ((q->has_prefix = s->prefix >= 0))
		q->prefix = (uint32_t)s->prefix;
	if ((q->has_up = s->up >= 0))
		q->up = s->up != 0;
	if ((q->has_wait_ms = s->wait_ms >= 0))
		q->wait_ms = (uint32_t)s->wait_ms;
}

void agent_req_worker_spawn(struct agent_req *r, uint64_t handle)
{
	handle_req(r, &proto_m_handle_opt, handle);
}

void agent_req_worker_join(struct agent_req *r, uint64_t handle, int64_t timeout_ms)
{
	struct proto_handle *q = handle_req(r, &proto_m_wait, handle);
	q->has_timeout_ms = true;
	q->timeout_ms = timeout_ms < 0 ? 0 : (uint64_t)timeout_ms;
}

void agent_req_worker_kill(struct agent_req *r, uint64_t handle, int sig)
{
	agent_req_proc_kill(r, handle, sig);
}

void agent_req_fault_frame(struct agent_req *r, const char *mode)
{
	struct proto_fault *q = req_of(r, &proto_m_fault);
	q->mode = proto_cstr(mode);
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
		agent_req_exec(r, &o->exec, agent_exec_timeout_ms(o->exec.timeout_ns, INT32_MAX));
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

/* A NUL-terminated malloc'd copy of s (embedded NULs kept: byte data). */
static char *dup_bytes(struct proto_str s)
{
	char *o = malloc(s.n + 1);
	if (!o)
		return NULL;
	if (s.n)
		memcpy(o, s.p, s.n);
	o[s.n] = 0;
	return o;
}

int agent_dec_exec_result(const msgpack_object *v, struct vmm_exec_result *res)
{
	struct proto_exec_result x;
	memset(res, 0, sizeof *res);
	if (proto_decode(&proto_m_exec_result, v, &x, NULL) < 0)
		return -1;
	if (x.timed_out) {
		res->status = VMM_TIMED_OUT;
		res->exit_code = -2;
	} else if (x.signal > 0) {
		res->status = VMM_SIGNALLED;
		res->exit_code = -1;
		res->signal = (int)x.signal;
	} else {
		res->status = VMM_EXITED;
		res->exit_code = (int)x.status;
	}
	res->out = dup_bytes(x.out);
	res->err = dup_bytes(x.err);
	res->out_len = x.out.n;
	res->err_len = x.err.n;
	if (!res->out || !res->err) {
		vmm_exec_result_free(res);
		memset(res, 0, sizeof *res);
		return -1;
	}
	return 0;
}

int agent_dec_stat(const msgpack_object *v, struct vmm_stat *st)
{
	struct proto_stat x;
	if (proto_decode(&proto_m_stat_reply, v, &x, NULL) < 0)
		return -1;
	st->size = x.size;
	st->perm = (unsigned)(x.perm & 07777);
	st->mtime_ns = x.mtime_ns;
	st->type = agent_dec_entry_type(x.entry_type.p, x.entry_type.n);
	return 0;
}

int agent_dec_listdir(const msgpack_object *v, struct vmm_dirent **ents, size_t *n,
		      const char **what)
{
	struct proto_list l;
	struct vmm_dirent *d;
	if (proto_decode_dirents(v, &l, NULL) < 0) {
		*what = v && v->type == MSGPACK_OBJECT_ARRAY ? "listdir entry" : "listdir";
		return -1;
	}
	if (!(d = calloc(l.n ? l.n : 1, sizeof *d))) {
		*what = NULL;
		return -1;
	}
	for (size_t i = 0; i < l.n; i++) {
		struct proto_elem e = proto_list_at(&l, i);
		if (!(d[i].name = proto_str_dup(e.s))) {
			vmm_dirents_free(d, i);
			*what = errno == EINVAL ? "listdir entry" : NULL;
			return -1;
		}
		d[i].type = agent_dec_entry_type(e.v.p, e.v.n);
	}
	*ents = d;
	*n = l.n;
	return 0;
}

int agent_dec_handle_pid(const msgpack_object *v, bool need_pid, uint64_t *handle,
			 int64_t *pid)
{
	struct proto_handle_pid x;
	if (proto_decode(&proto_m_handle_pid, v, &x, NULL) < 0 ||
	    (need_pid ? !x.has_pid : !x.handle))
		return -1;
	*handle = x.handle;
	if (x.has_pid)
		*pid = x.pid;
	return 0;
}

int agent_dec_proc_running(const msgpack_object *v, int *running)
{
	struct proto_proc_status x;
	if (proto_decode(&proto_m_proc_status, v, &x, NULL) < 0)
		return -1;
	*running = x.running;
	return 0;
}

int agent_dec_syscall(const msgpack_object *v, size_t nbufs, struct guest_syscall_result *res)
{
	struct proto_syscall_result x;
	memset(res, 0, sizeof(*res));
	if (proto_decode(&proto_m_syscall_result, v, &x, NULL) < 0)
		return -1;
	res->ret = x.ret;
	res->err_no = (int)x.err_no;
	if (!nbufs)
		return 0;
	if (!x.has_out_bufs || x.out_bufs.n != nbufs)
		return -1;
	res->out_bufs = calloc(nbufs, sizeof(char *));
	res->out_lens = calloc(nbufs, sizeof(size_t));
	if (!res->out_bufs || !res->out_lens)
		goto fail;
	res->nbufs = nbufs;
	for (size_t i = 0; i < nbufs; i++) {
		struct proto_elem e = proto_list_at(&x.out_bufs, i);
		if (!(res->out_bufs[i] = dup_bytes(e.s)))
			goto fail;
		res->out_lens[i] = e.s.n;
	}
	return 0;
fail:
	guest_syscall_result_free(res);
	return -1;
}

int agent_dec_net_setup(const msgpack_object *v, const char **p, size_t *n)
{
	struct proto_ifname x;
	if (proto_decode(&proto_m_ifname, v, &x, NULL) < 0)
		return -1;
	*p = x.ifname.p;
	*n = x.ifname.n;
	return 0;
}

int agent_dec_channel(const msgpack_object *v, uint64_t *channel)
{
	struct proto_channel x;
	if (proto_decode(&proto_m_channel, v, &x, NULL) < 0 || !x.channel)
		return -1;
	*channel = x.channel;
	return 0;
}

int agent_dec_worker_join(const msgpack_object *v, int *status, int *sig)
{
	struct proto_worker_exit x;
	if (proto_decode(&proto_m_worker_exit, v, &x, NULL) < 0)
		return -1;
	*status = (int)x.status;
	*sig = (int)x.signal;
	return 0;
}

/* The batch form of a byte value: nil is "", anything but str/bin -1. */
static int batch_bytes(const msgpack_object *o, char **out, size_t *len)
{
	struct proto_str s = { "", 0 };
	if (o && proto_obj_bytes(o, &s.p, &s.n) < 0)
		return -1;
	if (!(*out = dup_bytes(s)))
		return -1;
	*len = s.n;
	return 0;
}

int agent_dec_batch_value(const struct guest_batch_op *o, const msgpack_object *v,
			  struct guest_batch_res *res)
{
	switch (o->kind) {
	case GB_EXEC:
		return agent_dec_exec_result(v, &res->exec);
	case GB_READ_FILE:
		return batch_bytes(v, &res->data, &res->len);
	case GB_STAT:
		return agent_dec_stat(v, &res->st);
	case GB_LISTDIR: {
		const char *what;
		return agent_dec_listdir(v, &res->ents, &res->nents, &what);
	}
	case GB_SYSCALL: {
		struct guest_syscall_result r;
		if (agent_dec_syscall(v, 0, &r) < 0)
			return -1;
		res->sys_ret = r.ret;
		res->sys_errno = r.err_no;
		return 0;
	}
	default:
		return 0;
	}
}
