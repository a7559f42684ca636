/* guest_ops.c — clock, net_setup, syscall, streams and batches over the
 * guest agent (see guest_ops.h for the dispatch order and the error
 * contract).
 *
 * Everything here is a thin codec between the C structs of vmm.h /
 * guest_ops.h and the request/reply maps of proto/protocol.h; the agent
 * client does the framing, multiplexing and deadlines. Replies are
 * untrusted: every field is type-checked and a malformed reply is an
 * error naming the op, never a crash. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vmm/agent_client.h"
#include "vmm/guest_ops.h"

struct guest_stream {
	const struct vmm_ops *ops;
	struct vmm_vm *vm;
	struct vmm_stream *bs;        /* backend-served, or NULL */
	uint64_t chan;                /* agent channel when bs is NULL */
	bool ended;
};

static struct agent_client *agent_of(const struct vmm_ops *ops, struct vmm_vm *vm)
{
	return ops->agent ? ops->agent(vm) : NULL;
}

static void seterr(char *err, size_t errlen, const char *msg)
{
	snprintf(err, errlen, "%s", msg);
}

/* After a failed agent call: errno from the guest's errno, if any. */
static int fail_reply(const struct agent_reply *r)
{
	errno = r->err_no ? r->err_no : EIO;
	return -1;
}

static int bad_reply(const char *op, char *err, size_t errlen)
{
	snprintf(err, errlen, "agent: malformed %s reply", op);
	errno = EPROTO;
	return -1;
}

static int ms_of(int64_t ns)
{
	if (ns < 0)
		return -1;
	if (ns / 1000000 > 0x7fffffff)
		return 0x7fffffff;
	return (int)((ns + 999999) / 1000000);
}

/* ---- clock ---------------------------------------------------------- */

static void build_ns(msgpack_packer *pk, void *ctx)
{
	proto_pack_key(pk, "ns");
	msgpack_pack_int64(pk, *(const int64_t *)ctx);
}

int guest_clock_get(const struct vmm_ops *ops, struct vmm_vm *vm, int64_t *ns,
                    char *err, size_t errlen)
{
	struct agent_client *c = agent_of(ops, vm);
	struct agent_reply r;
	int rc;
	if (!c)
		return VMM_UNSUPPORTED;
	rc = agent_call(c, PROTO_K_CLOCK_GET, 0, NULL, NULL, GUEST_OP_TIMEOUT_MS, &r, err, errlen);
	if (rc == 0 && (!r.value || proto_obj_int(r.value, ns) < 0))
		rc = bad_reply("clock_get", err, errlen);
	else if (rc < 0)
		fail_reply(&r);
	agent_reply_free(&r);
	return rc;
}

int guest_clock_set(const struct vmm_ops *ops, struct vmm_vm *vm, int64_t ns,
                    char *err, size_t errlen)
{
	struct agent_client *c = agent_of(ops, vm);
	struct agent_reply r;
	int rc;
	if (!c)
		return VMM_UNSUPPORTED;
	rc = agent_call(c, PROTO_K_CLOCK_SET, 1, build_ns, &ns, GUEST_OP_TIMEOUT_MS, &r, err, errlen);
	if (rc < 0)
		fail_reply(&r);
	agent_reply_free(&r);
	return rc;
}

/* ---- network -------------------------------------------------------- */

/* Fields of r that are set (non-NULL / >= 0). */
static size_t net_setup_nfields(const struct guest_net_setup *r)
{
	return (r->mac != NULL) + (r->addr != NULL) + (r->prefix >= 0) + (r->up >= 0) +
	       (r->gateway != NULL) + (r->dns != NULL) + (r->hosts != NULL) +
	       (r->wait_ms >= 0);
}

static void build_net_setup(msgpack_packer *pk, void *ctx)
{
	const struct guest_net_setup *r = ctx;
	const char *const strs[][2] = {
		{ "mac", r->mac }, { "addr", r->addr }, { "gateway", r->gateway },
		{ "dns", r->dns }, { "hosts", r->hosts },
	};
	for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++) {
		if (!strs[i][1])
			continue;
		proto_pack_key(pk, strs[i][0]);
		proto_pack_cstr(pk, strs[i][1]);
	}
	if (r->prefix >= 0) {
		proto_pack_key(pk, "prefix");
		msgpack_pack_uint32(pk, (uint32_t)r->prefix);
	}
	if (r->up >= 0) {
		proto_pack_key(pk, "up");
		if (r->up)
			msgpack_pack_true(pk);
		else
			msgpack_pack_false(pk);
	}
	if (r->wait_ms >= 0) {
		proto_pack_key(pk, "wait_ms");
		msgpack_pack_uint32(pk, (uint32_t)r->wait_ms);
	}
}

int guest_net_setup(const struct vmm_ops *ops, struct vmm_vm *vm,
                    const struct guest_net_setup *r, char *ifname, size_t ifnamelen,
                    char *err, size_t errlen)
{
	struct agent_client *c = agent_of(ops, vm);
	struct guest_net_setup copy = *r;   /* build callbacks take a non-const ctx */
	struct agent_reply rep;
	const char *p;
	size_t n;
	int rc, timeout = GUEST_OP_TIMEOUT_MS;
	if (ifnamelen)
		ifname[0] = 0;
	if (!c)
		return VMM_UNSUPPORTED;
	/* The agent may wait wait_ms for the NIC before it starts working. */
	if (r->wait_ms > 0)
		timeout = r->wait_ms > 0x7fffffff - GUEST_OP_TIMEOUT_MS ? 0x7fffffff
		        : r->wait_ms + GUEST_OP_TIMEOUT_MS;
	rc = agent_call(c, PROTO_K_NET_SETUP, net_setup_nfields(r), build_net_setup, &copy,
	                timeout, &rep, err, errlen);
	if (rc == 0 && (!rep.value || proto_get_bytes(rep.value, "ifname", &p, &n) < 0))
		rc = bad_reply("net_setup", err, errlen);
	else if (rc == 0 && ifnamelen)
		snprintf(ifname, ifnamelen, "%.*s", (int)n, p);
	else if (rc < 0)
		fail_reply(&rep);
	agent_reply_free(&rep);
	return rc;
}

/* ---- syscall -------------------------------------------------------- */

size_t guest_syscall_nfields(const struct guest_syscall *s)
{
	return 2 + (s->nbufs ? 2 : 0) + (s->nbufs && s->npatches ? 1 : 0);
}

void guest_build_syscall(msgpack_packer *pk, void *ctx)
{
	const struct guest_syscall *s = ctx;
	proto_pack_key(pk, "nr");
	msgpack_pack_int64(pk, s->nr);
	proto_pack_key(pk, "args");
	msgpack_pack_array(pk, 6);
	for (int i = 0; i < 6; i++)
		msgpack_pack_int64(pk, s->args[i]);
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

/* Decode {ret, errno, out_bufs?} into res. 0 or -1. */
int guest_decode_syscall(const msgpack_object *v, size_t nbufs, struct guest_syscall_result *res)
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

int guest_syscall(const struct vmm_ops *ops, struct vmm_vm *vm, const struct guest_syscall *s,
                  struct guest_syscall_result *res, char *err, size_t errlen)
{
	struct agent_client *c = agent_of(ops, vm);
	struct agent_reply r;
	int rc;
	memset(res, 0, sizeof(*res));
	if (!c) {
		if (!s->nbufs && ops->syscall)
			return ops->syscall(vm, s->nr, s->args, &res->ret, &res->err_no, err, errlen);
		return VMM_UNSUPPORTED;
	}
	struct guest_syscall copy = *s;   /* build callbacks take a non-const ctx */
	size_t nfields = guest_syscall_nfields(s);
	rc = agent_call(c, PROTO_K_SYSCALL, nfields, guest_build_syscall, &copy,
	                GUEST_OP_TIMEOUT_MS, &r, err, errlen);
	if (rc == 0 && guest_decode_syscall(r.value, s->nbufs, res) < 0)
		rc = bad_reply("syscall", err, errlen);
	else if (rc < 0)
		fail_reply(&r);
	agent_reply_free(&r);
	return rc;
}

void guest_syscall_result_free(struct guest_syscall_result *res)
{
	for (size_t i = 0; res->out_bufs && i < res->nbufs; i++)
		free(res->out_bufs[i]);
	free(res->out_bufs);
	free(res->out_lens);
	res->out_bufs = NULL;
	res->out_lens = NULL;
	res->nbufs = 0;
}

/* ---- streams -------------------------------------------------------- */

struct stream_build {
	const struct vmm_stream_req *r;
	uint64_t handle;
};

static void build_stream(msgpack_packer *pk, void *ctx)
{
	const struct stream_build *b = ctx;
	switch (b->r->kind) {
	case VMM_STREAM_TAIL:
		proto_pack_key(pk, "path");
		proto_pack_cstr(pk, b->r->path);
		proto_pack_key(pk, "start");
		if (b->r->start == VMM_TAIL_BEGINNING)
			proto_pack_cstr(pk, "beginning");
		else if (b->r->start == VMM_TAIL_END)
			proto_pack_cstr(pk, "end");
		else
			msgpack_pack_int64(pk, b->r->offset);
		break;
	case VMM_STREAM_FD:
		proto_pack_key(pk, "handle");
		msgpack_pack_uint64(pk, b->handle);
		break;
	case VMM_STREAM_PROC_STDOUT:
	case VMM_STREAM_PROC_STDERR:
		proto_pack_key(pk, "handle");
		msgpack_pack_uint64(pk, b->handle);
		proto_pack_key(pk, "which");
		proto_pack_cstr(pk, b->r->kind == VMM_STREAM_PROC_STDOUT ? "stdout" : "stderr");
		break;
	}
}

int guest_stream_open(const struct vmm_ops *ops, struct vmm_vm *vm, const struct vmm_stream_req *r,
                      struct guest_stream **out, char *err, size_t errlen)
{
	struct guest_stream *s;
	struct agent_client *c;
	struct agent_reply rep;
	struct stream_build b = {r, 0};
	int kind, nf, rc;
	uint64_t chan;

	*out = NULL;
	if (!(s = calloc(1, sizeof(*s)))) {
		seterr(err, errlen, "out of memory");
		return -1;
	}
	s->ops = ops;
	s->vm = vm;
	if (ops->stream_open) {
		rc = ops->stream_open(vm, r, &s->bs, err, errlen);
		if (rc == 0)
			*out = s;
		else
			free(s);
		return rc;
	}
	if (!(c = agent_of(ops, vm))) {
		free(s);
		return VMM_UNSUPPORTED;
	}
	switch (r->kind) {
	case VMM_STREAM_TAIL: kind = PROTO_K_TAIL; nf = 2; break;
	case VMM_STREAM_FD: kind = PROTO_K_FD_STREAM; nf = 1; b.handle = ops->file_handle(r->file); break;
	default: kind = PROTO_K_PROC_STREAM; nf = 2; b.handle = ops->proc_handle(r->proc); break;
	}
	rc = agent_call(c, kind, (size_t)nf, build_stream, &b, GUEST_OP_TIMEOUT_MS, &rep, err, errlen);
	if (rc == 0 && (!rep.value || proto_get_uint(rep.value, PROTO_F_CHANNEL, &chan) < 0 || !chan))
		rc = bad_reply(proto_kind_name(kind), err, errlen);
	else if (rc < 0)
		fail_reply(&rep);
	agent_reply_free(&rep);
	if (rc < 0) {
		free(s);
		return -1;
	}
	s->chan = chan;
	*out = s;
	return 0;
}

int guest_stream_next(struct guest_stream *s, int64_t timeout_ns, char **data, size_t *len,
                      bool *eof, char *err, size_t errlen)
{
	struct agent_client *c;
	struct agent_chunk ch;
	int rc;
	*data = NULL;
	*len = 0;
	*eof = false;
	if (s->bs)
		return s->ops->stream_next(s->bs, timeout_ns, data, len, eof, err, errlen);
	if (s->ended) {
		*eof = true;
		return 1;
	}
	if (!(c = agent_of(s->ops, s->vm))) {
		/* The connection is gone (shutdown): the stream ended with it. */
		s->ended = true;
		*eof = true;
		return 1;
	}
	memset(&ch, 0, sizeof ch);
	rc = agent_stream_next(c, s->chan, ms_of(timeout_ns), &ch, err, errlen);
	if (rc <= 0)
		return rc;
	if (ch.eof) {
		s->ended = true;
		*eof = true;
		free(ch.data);
		return 1;
	}
	*data = (char *)ch.data;
	*len = ch.len;
	return 1;
}

static void build_chan(msgpack_packer *pk, void *ctx)
{
	proto_pack_key(pk, PROTO_F_CHANNEL);
	msgpack_pack_uint64(pk, *(const uint64_t *)ctx);
}

void guest_stream_close(struct guest_stream *s)
{
	struct agent_client *c;
	if (!s)
		return;
	if (s->bs) {
		s->ops->stream_close(s->bs);
	} else if ((c = agent_of(s->ops, s->vm)) && !agent_client_broken(c)) {
		struct agent_reply r;
		char err[256];
		if (!s->ended)
			agent_call(c, PROTO_K_STREAM_CLOSE, 1, build_chan, &s->chan, 5000, &r, err, sizeof err);
		else
			memset(&r, 0, sizeof r);
		agent_reply_free(&r);
		agent_stream_forget(c, s->chan);
	}
	free(s);
}

/* ---- batch ---------------------------------------------------------- */

static const char *const type_names[] = {"file", "directory", "symlink", "fifo",
	"socket", "block_device", "char_device", "other"};

static enum vmm_entry_type type_of(const char *p, size_t n)
{
	for (size_t i = 0; i < sizeof type_names / sizeof type_names[0]; i++)
		if (strlen(type_names[i]) == n && !memcmp(type_names[i], p, n))
			return (enum vmm_entry_type)i;
	return VMM_ENT_OTHER;
}

static int op_kind(enum guest_batch_kind k)
{
	static const int kinds[] = {PROTO_K_EXEC, PROTO_K_READ_FILE, PROTO_K_WRITE_FILE,
		PROTO_K_STAT, PROTO_K_LISTDIR, PROTO_K_MKDIR, PROTO_K_UNLINK, PROTO_K_RENAME,
		PROTO_K_SYSCALL};
	return kinds[k];
}

static size_t count_strv(const char *const *v)
{
	size_t n = 0;
	while (v && v[n])
		n++;
	return n;
}

static size_t op_nfields(const struct guest_batch_op *o)
{
	const struct vmm_exec_req *e = &o->exec;
	switch (o->kind) {
	case GB_EXEC:
		return 1 + (e->env != NULL) + (e->env_clear ? 1 : 0) + (e->cwd != NULL) +
		       (e->stdin_data != NULL) + (e->timeout_ns > 0);
	case GB_WRITE_FILE: return 2;
	case GB_MKDIR: return 2 + (o->perm >= 0);
	case GB_RENAME: return 2;
	case GB_SYSCALL: return 2;
	default: return 1;
	}
}

static void build_op(msgpack_packer *pk, void *ctx)
{
	const struct guest_batch_op *o = ctx;
	const struct vmm_exec_req *e = &o->exec;
	switch (o->kind) {
	case GB_EXEC: {
		size_t n = count_strv(e->argv);
		proto_pack_key(pk, "argv");
		msgpack_pack_array(pk, n);
		for (size_t i = 0; i < n; i++)
			proto_pack_cstr(pk, i == 0 && e->file ? e->file : e->argv[i]);
		if (e->env) {
			size_t ne = count_strv(e->env);
			proto_pack_key(pk, "env");
			msgpack_pack_map(pk, ne);
			for (size_t i = 0; i < ne; i++) {
				const char *eq = strchr(e->env[i], '=');
				size_t kl = eq ? (size_t)(eq - e->env[i]) : strlen(e->env[i]);
				msgpack_pack_str(pk, kl);
				msgpack_pack_str_body(pk, e->env[i], kl);
				proto_pack_cstr(pk, eq ? eq + 1 : "");
			}
		}
		if (e->env_clear) {
			proto_pack_key(pk, "env_clear");
			msgpack_pack_true(pk);
		}
		if (e->cwd) {
			proto_pack_key(pk, "cwd");
			proto_pack_cstr(pk, e->cwd);
		}
		if (e->stdin_data) {
			proto_pack_key(pk, "stdin");
			proto_pack_bytes(pk, e->stdin_data, e->stdin_len);
		}
		if (e->timeout_ns > 0) {
			proto_pack_key(pk, "timeout_ms");
			msgpack_pack_uint64(pk, (uint64_t)((e->timeout_ns + 999999) / 1000000));
		}
		break;
	}
	case GB_WRITE_FILE:
		proto_pack_key(pk, "path");
		proto_pack_cstr(pk, o->path);
		proto_pack_key(pk, PROTO_F_DATA);
		proto_pack_bytes(pk, o->data, o->len);
		break;
	case GB_MKDIR:
		proto_pack_key(pk, "path");
		proto_pack_cstr(pk, o->path);
		proto_pack_key(pk, "parents");
		if (o->parents)
			msgpack_pack_true(pk);
		else
			msgpack_pack_false(pk);
		if (o->perm >= 0) {
			proto_pack_key(pk, "perm");
			msgpack_pack_uint32(pk, (uint32_t)o->perm);
		}
		break;
	case GB_RENAME:
		proto_pack_key(pk, "from");
		proto_pack_cstr(pk, o->path);
		proto_pack_key(pk, "to");
		proto_pack_cstr(pk, o->path2);
		break;
	case GB_SYSCALL:
		proto_pack_key(pk, "nr");
		msgpack_pack_int64(pk, o->nr);
		proto_pack_key(pk, "args");
		msgpack_pack_array(pk, 6);
		for (int i = 0; i < 6; i++)
			msgpack_pack_int64(pk, o->args[i]);
		break;
	default:
		proto_pack_key(pk, "path");
		proto_pack_cstr(pk, o->path);
		break;
	}
}

static int dup_bytes(const msgpack_object *o, char **out, size_t *len)
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

/* Decode the ok value of op o into res. 0 or -1 (malformed). */
static int decode_op(const struct guest_batch_op *o, const msgpack_object *v,
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
		if (dup_bytes(proto_get(v, "stdout"), &x->out, &x->out_len) < 0 ||
		    dup_bytes(proto_get(v, "stderr"), &x->err, &x->err_len) < 0)
			return -1;
		x->exit_code = (int)status;
		x->status = to ? VMM_TIMED_OUT : proto_get(v, "signal") ? VMM_SIGNALLED : VMM_EXITED;
		x->signal = x->status == VMM_SIGNALLED ? (int)sig : 0;
		return 0;
	}
	case GB_READ_FILE:
		return dup_bytes(v, &res->data, &res->len);
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
		res->st.type = type_of(t, tl);
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
			res->ents[i].type = type_of(t, tl);
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

static int run_one(const struct vmm_ops *ops, struct vmm_vm *vm, const struct guest_batch_op *o,
                   struct guest_batch_res *r)
{
#define CALL(op, ...) (ops->op ? ops->op(vm, __VA_ARGS__) : VMM_UNSUPPORTED)
	switch (o->kind) {
	case GB_EXEC: return CALL(exec, &o->exec, &r->exec, r->err, sizeof r->err);
	case GB_READ_FILE: return CALL(read_file, o->path, &r->data, &r->len, r->err, sizeof r->err);
	case GB_WRITE_FILE: return CALL(write_file, o->path, o->data, o->len, r->err, sizeof r->err);
	case GB_STAT: return CALL(stat, o->path, &r->st, r->err, sizeof r->err);
	case GB_LISTDIR: return CALL(listdir, o->path, &r->ents, &r->nents, r->err, sizeof r->err);
	case GB_MKDIR: return CALL(mkdir, o->path, o->parents, o->perm, r->err, sizeof r->err);
	case GB_UNLINK: return CALL(unlink, o->path, r->err, sizeof r->err);
	case GB_RENAME: return CALL(rename, o->path, o->path2, r->err, sizeof r->err);
	case GB_SYSCALL: {
		struct guest_syscall s = {.nr = o->nr};
		struct guest_syscall_result sr;
		int rc;
		memcpy(s.args, o->args, sizeof s.args);
		rc = guest_syscall(ops, vm, &s, &sr, r->err, sizeof r->err);
		r->sys_ret = sr.ret;
		r->sys_errno = sr.err_no;
		guest_syscall_result_free(&sr);
		return rc;
	}
	}
#undef CALL
	return VMM_UNSUPPORTED;
}

int guest_batch(const struct vmm_ops *ops, struct vmm_vm *vm, const struct guest_batch_op *bops,
                size_t n, struct guest_batch_res *res, char *err, size_t errlen)
{
	struct agent_client *c = agent_of(ops, vm);
	uint64_t *ids;
	int ret = 0;

	memset(res, 0, n * sizeof(*res));
	if (!c) {
		for (size_t i = 0; i < n; i++) {
			errno = 0;
			res[i].rc = run_one(ops, vm, &bops[i], &res[i]);
			res[i].err_no = res[i].rc == -1 ? errno : 0;
		}
		return 0;
	}
	if (!(ids = calloc(n ? n : 1, sizeof(*ids)))) {
		seterr(err, errlen, "out of memory");
		return -1;
	}
	/* Pipelined: every request goes out before any reply is awaited. */
	for (size_t i = 0; i < n; i++) {
		struct guest_batch_op copy = bops[i];
		if (agent_send(c, op_kind(bops[i].kind), op_nfields(&bops[i]), build_op,
		               &copy, GUEST_OP_TIMEOUT_MS, &ids[i], err, errlen) < 0) {
			ret = -1;
			for (size_t j = i; j < n; j++) {
				res[j].rc = -1;
				snprintf(res[j].err, sizeof res[j].err, "%.250s", err);
			}
			n = i;
			break;
		}
	}
	for (size_t i = 0; i < n; i++) {
		struct agent_reply r;
		int64_t budget = bops[i].kind == GB_EXEC && bops[i].exec.timeout_ns > 0
			? bops[i].exec.timeout_ns / 1000000 + GUEST_OP_TIMEOUT_MS : GUEST_OP_TIMEOUT_MS;
		char e[512];
		if (agent_wait(c, ids[i], (int)budget, &r, e, sizeof e) < 0) {
			res[i].rc = -1;
			res[i].err_no = r.err_no;
			snprintf(res[i].err, sizeof res[i].err, "%.250s", r.code[0] ? r.message : e);
		} else if (decode_op(&bops[i], r.value, &res[i]) < 0) {
			res[i].rc = -1;
			snprintf(res[i].err, sizeof res[i].err, "agent: malformed %s reply",
			         proto_kind_name(op_kind(bops[i].kind)));
		}
		agent_reply_free(&r);
	}
	free(ids);
	return ret;
}

void guest_batch_res_free(struct guest_batch_res *res, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		vmm_exec_result_free(&res[i].exec);
		free(res[i].data);
		res[i].data = NULL;
		if (res[i].ents)
			vmm_dirents_free(res[i].ents, res[i].nents);
		res[i].ents = NULL;
	}
}
