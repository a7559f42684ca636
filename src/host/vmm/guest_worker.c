/* guest_worker.c — the agent ops behind workers and guest memory:
 * worker_spawn / worker_join / worker_kill, request routing to a worker,
 * read_mem, and the pipelined (begin now, finish later) syscall that
 * worker:syscall_async uses.
 *
 * Worker handles are chosen here (next_worker_handle).
 *
 * Like guest_ops.c: requests and reply decoders from vmm/agent_codec.h
 * over the agent client; errors follow guest_ops.h (0, -1 with err and
 * errno, VMM_UNSUPPORTED without an agent). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "clock.h"
#include "vmm/agent_client.h"
#include "vmm/agent_codec.h"
#include "vmm/guest_ops.h"

static struct agent_client *agent_of(const struct vmm_ops *ops, struct vmm_vm *vm)
{
	return ops->agent ? ops->agent(vm) : NULL;
}

static int bad_reply(const char *op, char *err, size_t errlen)
{
	snprintf(err, errlen, "agent: malformed %s reply", op);
	errno = EPROTO;
	return -1;
}

static int fail_reply(const struct agent_reply *r)
{
	errno = r->err_no ? r->err_no : EIO;
	return -1;
}

uint64_t guest_route(const struct vmm_ops *ops, struct vmm_vm *vm, uint64_t handle)
{
	struct agent_client *c = agent_of(ops, vm);
	return c ? agent_client_route(c, handle) : 0;
}

/* ---- pipelined syscall ---------------------------------------------- */

int guest_syscall_begin(const struct vmm_ops *ops, struct vmm_vm *vm, const struct guest_syscall *s,
                        uint64_t *id, char *err, size_t errlen)
{
	struct agent_client *c = agent_of(ops, vm);
	struct agent_req q;
	if (!c)
		return VMM_UNSUPPORTED;
	agent_req_syscall(&q, s);
	return agent_send(c, PROTO_K_SYSCALL, agent_req_nfields(&q), agent_req_build, &q,
	                  GUEST_OP_TIMEOUT_MS, id, err, errlen);
}

int guest_syscall_finish(const struct vmm_ops *ops, struct vmm_vm *vm, uint64_t id, size_t nbufs,
                         int timeout_ms, struct guest_syscall_result *res, char *err, size_t errlen)
{
	struct agent_client *c = agent_of(ops, vm);
	struct agent_reply r;
	int rc;
	memset(res, 0, sizeof(*res));
	if (!c)
		return VMM_UNSUPPORTED;
	rc = agent_wait(c, id, timeout_ms, &r, err, errlen);
	if (rc == 0 && agent_dec_syscall(r.value, nbufs, res) < 0)
		rc = bad_reply("syscall", err, errlen);
	else if (rc < 0)
		fail_reply(&r);
	agent_reply_free(&r);
	return rc;
}

/* ---- read_mem ------------------------------------------------------- */

int guest_read_mem(const struct vmm_ops *ops, struct vmm_vm *vm, uint64_t addr, uint64_t len,
                   char **data, int *guest_errno, char *err, size_t errlen)
{
	struct agent_client *c = agent_of(ops, vm);
	struct agent_req q;
	struct agent_reply r;
	const char *p;
	size_t n;
	int rc;
	*data = NULL;
	*guest_errno = 0;
	if (!c)
		return VMM_UNSUPPORTED;
	agent_req_read_mem(&q, addr, len);
	rc = agent_call(c, PROTO_K_READ_MEM, agent_req_nfields(&q), agent_req_build, &q,
	                GUEST_OP_TIMEOUT_MS, &r, err, errlen);
	if (rc == 0) {
		if (!r.value || proto_obj_bytes(r.value, &p, &n) < 0 || n != len)
			rc = bad_reply("read_mem", err, errlen);
		else if (!(*data = malloc(n ? n : 1))) {
			snprintf(err, errlen, "out of memory");
			errno = ENOMEM;
			rc = -1;
		} else
			memcpy(*data, p, n);
	} else {
		*guest_errno = r.err_no;
		fail_reply(&r);
	}
	agent_reply_free(&r);
	return rc;
}

/* ---- workers -------------------------------------------------------- */

/* Worker handles are chosen here, never by the guest (the agent's own
 * counter would be rewound by a restore, so a stale Worker object could
 * name a newer worker): the low 24 bits count the workers this process
 * spawned, the high 24 bits are random per process, so a worker living in
 * a snapshot another provium process took (a cached fixture) is not named
 * by one of ours either, unless the two random prefixes match (1 in
 * 2^24, and then only for the same count). A handle is never reused
 * within this process; the agent refuses one that is in use (EEXIST) and
 * the next is tried. The prefix is drawn again in a forked child (each
 * runner has its own). */
static uint64_t next_worker_handle(void)
{
	static pid_t owner;
	static uint64_t prefix, count;
	if (owner != getpid() || !prefix) {
		unsigned char b[3] = {0};
		owner = getpid();
		count = 0;
		if (getrandom(b, sizeof b, 0) != (ssize_t)sizeof b) {
			uint64_t t = (uint64_t)mono_now_ns() ^ ((uint64_t)owner << 20);
			b[0] = (unsigned char)t, b[1] = (unsigned char)(t >> 8), b[2] = (unsigned char)(t >> 16);
		}
		prefix = (uint64_t)b[0] | (uint64_t)b[1] << 8 | (uint64_t)b[2] << 16;
		if (!prefix)
			prefix = 1;
	}
	if (++count > 0xffffff) {   /* 16M workers: start a new prefix */
		count = 1;
		prefix = prefix % 0xffffff + 1;
	}
	return prefix << 24 | count;
}

int guest_worker_spawn(const struct vmm_ops *ops, struct vmm_vm *vm, uint64_t *handle,
                       int64_t *pid, char *err, size_t errlen)
{
	struct agent_client *c = agent_of(ops, vm);
	struct agent_req q;
	struct agent_reply r;
	int rc, tries = 0;
	uint64_t want;
	if (!c)
		return VMM_UNSUPPORTED;
	/* Never routed: worker ops belong to the agent itself. */
	uint64_t route = agent_client_route(c, 0);
	do {
		want = next_worker_handle();
		agent_req_worker_spawn(&q, want);
		rc = agent_call(c, PROTO_K_WORKER_SPAWN, agent_req_nfields(&q), agent_req_build, &q,
		                GUEST_OP_TIMEOUT_MS, &r, err, errlen);
		if (rc == 0 || r.err_no != EEXIST)
			break;
		agent_reply_free(&r);
	} while (++tries < 64);
	agent_client_route(c, route);
	if (rc == 0 && agent_dec_handle_pid(r.value, true, handle, pid) < 0)
		rc = bad_reply("worker_spawn", err, errlen);
	else if (rc == 0 && *handle != want) {
		snprintf(err, errlen, "the guest kit's agent picks worker handles itself "
		         "(it predates host-chosen handles): rebuild the kit with `make guest`");
		errno = EPROTO;
		rc = -1;
	} else if (rc < 0)
		fail_reply(&r);
	agent_reply_free(&r);
	return rc;
}

int guest_worker_join(const struct vmm_ops *ops, struct vmm_vm *vm, uint64_t handle,
                      int timeout_ms, int *status, int *sig, char *err, size_t errlen)
{
	struct agent_client *c = agent_of(ops, vm);
	struct agent_req q;
	struct agent_reply r;
	int rc;
	*status = *sig = 0;
	if (!c)
		return VMM_UNSUPPORTED;
	uint64_t route = agent_client_route(c, 0);
	/* The agent SIGKILLs at timeout_ms: allow it that long plus a round trip. */
	agent_req_worker_join(&q, handle, timeout_ms);
	rc = agent_call(c, PROTO_K_WORKER_JOIN, agent_req_nfields(&q), agent_req_build, &q,
	                timeout_ms > 0 ? timeout_ms + GUEST_OP_TIMEOUT_MS : -1, &r, err, errlen);
	agent_client_route(c, route);
	if (rc == 0 && agent_dec_worker_join(r.value, status, sig) < 0)
		rc = bad_reply("worker_join", err, errlen);
	else if (rc < 0)
		fail_reply(&r);
	agent_reply_free(&r);
	return rc;
}

int guest_worker_kill(const struct vmm_ops *ops, struct vmm_vm *vm, uint64_t handle, int sig,
                      char *err, size_t errlen)
{
	struct agent_client *c = agent_of(ops, vm);
	struct agent_req q;
	struct agent_reply r;
	int rc;
	if (!c)
		return VMM_UNSUPPORTED;
	uint64_t route = agent_client_route(c, 0);
	agent_req_worker_kill(&q, handle, sig);
	rc = agent_call(c, PROTO_K_WORKER_KILL, agent_req_nfields(&q), agent_req_build, &q,
	                GUEST_OP_TIMEOUT_MS, &r, err, errlen);
	agent_client_route(c, route);
	if (rc < 0)
		fail_reply(&r);
	agent_reply_free(&r);
	return rc;
}
