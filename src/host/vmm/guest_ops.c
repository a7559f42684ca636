/* guest_ops.c — clock, net_setup, syscall, streams and batches over the
 * guest agent (see guest_ops.h for the dispatch order and the error
 * contract).
 *
 * Requests are built and replies decoded by vmm/agent_codec.h (replies
 * are untrusted: a malformed one is an error naming the op, never a
 * crash); the agent client does the framing, multiplexing and deadlines.
 * What stays here is the choice of backend op or agent, the timeouts
 * and the error contract of guest_ops.h. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vmm/agent_client.h"
#include "vmm/agent_codec.h"
#include "vmm/guest_ops.h"

struct guest_stream {
	const struct vmm_ops *ops;
	struct vmm_vm *vm;
	struct vmm_stream *bs;        /* backend-served, or NULL */
	uint64_t chan;                /* agent channel when bs is NULL */
	uint64_t route;               /* the worker serving it, 0 = the agent */
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
	struct agent_req q;
	struct agent_reply r;
	int rc;
	if (!c)
		return VMM_UNSUPPORTED;
	agent_req_clock_set(&q, ns);
	rc = agent_call(c, PROTO_K_CLOCK_SET, agent_req_nfields(&q), agent_req_build, &q,
	                GUEST_OP_TIMEOUT_MS, &r, err, errlen);
	if (rc < 0)
		fail_reply(&r);
	agent_reply_free(&r);
	return rc;
}

/* ---- network -------------------------------------------------------- */

int guest_net_setup(const struct vmm_ops *ops, struct vmm_vm *vm,
                    const struct guest_net_setup *r, char *ifname, size_t ifnamelen,
                    char *err, size_t errlen)
{
	struct agent_client *c = agent_of(ops, vm);
	struct agent_req q;
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
	agent_req_net_setup(&q, r);
	rc = agent_call(c, PROTO_K_NET_SETUP, agent_req_nfields(&q), agent_req_build, &q,
	                timeout, &rep, err, errlen);
	if (rc == 0 && agent_dec_net_setup(rep.value, &p, &n) < 0)
		rc = bad_reply("net_setup", err, errlen);
	else if (rc == 0 && ifnamelen)
		snprintf(ifname, ifnamelen, "%.*s", (int)n, p);
	else if (rc < 0)
		fail_reply(&rep);
	agent_reply_free(&rep);
	return rc;
}

/* ---- syscall -------------------------------------------------------- */

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
	struct agent_req q;
	agent_req_syscall(&q, s);
	rc = agent_call(c, PROTO_K_SYSCALL, agent_req_nfields(&q), agent_req_build, &q,
	                GUEST_OP_TIMEOUT_MS, &r, err, errlen);
	if (rc == 0 && agent_dec_syscall(r.value, s->nbufs, res) < 0)
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

int guest_stream_open(const struct vmm_ops *ops, struct vmm_vm *vm, const struct vmm_stream_req *r,
                      struct guest_stream **out, char *err, size_t errlen)
{
	struct guest_stream *s;
	struct agent_client *c;
	struct agent_reply rep;
	struct agent_req q;
	int kind, rc;
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
	/* A File's or Process's stream is served where its handle lives (a
	 * worker's, see qemu_ops.c); a tail where requests go now. */
	switch (r->kind) {
	case VMM_STREAM_TAIL:
		kind = PROTO_K_TAIL;
		agent_req_tail(&q, r);
		s->route = agent_client_current_route(c);
		break;
	case VMM_STREAM_FD:
		kind = PROTO_K_FD_STREAM;
		agent_req_handle(&q, ops->file_handle(r->file));
		s->route = ops->file_route ? ops->file_route(r->file) : 0;
		break;
	default:
		kind = PROTO_K_PROC_STREAM;
		agent_req_proc_stream(&q, ops->proc_handle(r->proc), r->kind == VMM_STREAM_PROC_STDERR);
		s->route = ops->proc_route ? ops->proc_route(r->proc) : 0;
		break;
	}
	uint64_t old = agent_client_route(c, s->route);
	rc = agent_call(c, kind, agent_req_nfields(&q), agent_req_build, &q, GUEST_OP_TIMEOUT_MS,
	                &rep, err, errlen);
	agent_client_route(c, old);
	if (rc == 0 && agent_dec_channel(rep.value, &chan) < 0)
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
		if (!s->ended) {
			struct agent_req q;
			uint64_t old = agent_client_route(c, s->route);
			agent_req_stream_close(&q, s->chan);
			agent_call(c, PROTO_K_STREAM_CLOSE, agent_req_nfields(&q), agent_req_build, &q,
			           5000, &r, err, sizeof err);
			agent_client_route(c, old);
		} else
			memset(&r, 0, sizeof r);
		agent_reply_free(&r);
		agent_stream_forget(c, s->chan);
	}
	free(s);
}

/* ---- batch ---------------------------------------------------------- */

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
		struct agent_req q;
		agent_req_batch_op(&q, &bops[i]);
		if (agent_send(c, agent_batch_kind(bops[i].kind), agent_req_nfields(&q),
		               agent_req_build, &q, GUEST_OP_TIMEOUT_MS, &ids[i], err, errlen) < 0) {
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
		} else if (agent_dec_batch_value(&bops[i], r.value, &res[i]) < 0) {
			res[i].rc = -1;
			snprintf(res[i].err, sizeof res[i].err, "agent: malformed %s reply",
			         proto_kind_name(agent_batch_kind(bops[i].kind)));
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
