/* guest_ops.h — guest-agent ops shared by every backend that has an agent:
 * clock, network setup, syscall with buffers, streams (tails, fd and
 * process output) and pipelined batches.
 *
 * The Lua bindings call these instead of a vmm_ops member. Each one picks
 * its implementation in this order: the backend's own op (stream_* for
 * streams, syscall for integer-only syscalls), else the agent channel the
 * backend exposes through ops->agent(vm), else VMM_UNSUPPORTED. Batches
 * without an agent fall back to calling the backend's ops one by one, so
 * `vm:batch` works on every backend that serves the individual ops.
 *
 * Errors follow vmm.h: 0, -1 with err (errno set for OS and guest errno
 * failures: a guest ENOENT sets errno = ENOENT), or VMM_UNSUPPORTED. */
#ifndef PROVIUM_GUEST_OPS_H
#define PROVIUM_GUEST_OPS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vmm/vmm.h"

/* Default bound of one agent round trip (ms). */
#define GUEST_OP_TIMEOUT_MS 60000

/* ---- clock ---- */
int guest_clock_get(const struct vmm_ops *ops, struct vmm_vm *vm, int64_t *ns,
                    char *err, size_t errlen);
int guest_clock_set(const struct vmm_ops *ops, struct vmm_vm *vm, int64_t ns,
                    char *err, size_t errlen);

/* ---- network (agent op net_setup) ---- */

/* What to configure; NULL / -1 fields are left out of the request (the
 * agent's defaults then apply, see net_setup in proto/protocol.h).
 * Beware: 0 is a real value for prefix (a /0) and wait_ms (no wait). */
struct guest_net_setup {
	const char *mac;          /* "52:56:xx:xx:xx:xx": the NIC to configure */
	const char *addr;         /* dotted IPv4 (needs mac), replaces the old one */
	int prefix;               /* 0..32, -1 = default 24 */
	int up;                   /* 0 / 1, -1 = default (up when mac is given) */
	const char *gateway;      /* default route via it (needs mac); "" = delete it */
	const char *dns;          /* dotted IPv4: /etc/resolv.conf */
	const char *hosts;        /* the managed /etc/hosts block; "" = remove it */
	int wait_ms;              /* for a hotplugged NIC, -1 = default 5000 */
};

/* Apply r in the guest; ifname (if ifnamelen > 0) gets the interface
 * configured, "" when no mac was given. No MAC match within wait_ms is
 * -1 with errno ENODEV. */
int guest_net_setup(const struct vmm_ops *ops, struct vmm_vm *vm,
                    const struct guest_net_setup *r, char *ifname, size_t ifnamelen,
                    char *err, size_t errlen);

/* ---- syscall ---- */

/* Before the call, the guest address of bufs[source] is written (8 bytes,
 * little-endian) into bufs[target] at offset: nested pointers, e.g. an
 * ioctl struct whose field points at a payload. The agent validates
 * indexes and offset + 8 <= buf_lens[target] and refuses a bad patch. */
struct guest_patch {
	uint32_t target, source;
	uint64_t offset;
};

struct guest_syscall {
	int64_t nr;
	int64_t args[6];
	const char *const *bufs;  /* nbufs byte buffers, or NULL */
	const size_t *buf_lens;
	const int *ptrs;          /* arg slot (0..5) receiving bufs[i]'s address,
	                             or -1: reached only through a patch */
	size_t nbufs;
	const struct guest_patch *patches;  /* npatches, or NULL (agent only) */
	size_t npatches;
};

struct guest_syscall_result {
	int64_t ret;
	int err_no;               /* 0 unless the syscall failed */
	char **out_bufs;          /* nbufs malloc'd buffers (post-call contents) */
	size_t *out_lens;
	size_t nbufs;
};

int guest_syscall(const struct vmm_ops *ops, struct vmm_vm *vm, const struct guest_syscall *s,
                  struct guest_syscall_result *res, char *err, size_t errlen);
void guest_syscall_result_free(struct guest_syscall_result *res);

/* Pipelined syscall (guest_worker.c): begin sends s and returns its
 * request id at once; finish waits up to timeout_ms (-1 = forever) for
 * that id and decodes it as guest_syscall does (nbufs: how many buffers
 * s had). Agent only (VMM_UNSUPPORTED without one). */
int guest_syscall_begin(const struct vmm_ops *ops, struct vmm_vm *vm, const struct guest_syscall *s,
                        uint64_t *id, char *err, size_t errlen);
int guest_syscall_finish(const struct vmm_ops *ops, struct vmm_vm *vm, uint64_t id, size_t nbufs,
                         int timeout_ms, struct guest_syscall_result *res, char *err, size_t errlen);

/* (The syscall request and reply codec is agent_req_syscall /
 * agent_dec_syscall in vmm/agent_codec.h.) */

/* ---- guest memory and workers (guest_worker.c, agent only) ---- */

/* len bytes of the serving process's memory at addr (*data malloc'd).
 * A guest errno (an unmapped address: EIO) is -1 with errno set and
 * *guest_errno = that errno; other failures leave *guest_errno 0. */
int guest_read_mem(const struct vmm_ops *ops, struct vmm_vm *vm, uint64_t addr, uint64_t len,
                   char **data, int *guest_errno, char *err, size_t errlen);

/* Spawn a worker process in the guest: its handle and pid. */
int guest_worker_spawn(const struct vmm_ops *ops, struct vmm_vm *vm, uint64_t *handle,
                       int64_t *pid, char *err, size_t errlen);
/* Close the worker's channel and reap it (SIGKILL after timeout_ms, 0 =
 * never): exit status, or -1 with *sig the killing signal (else 0). */
int guest_worker_join(const struct vmm_ops *ops, struct vmm_vm *vm, uint64_t handle,
                      int timeout_ms, int *status, int *sig, char *err, size_t errlen);
int guest_worker_kill(const struct vmm_ops *ops, struct vmm_vm *vm, uint64_t handle, int sig,
                      char *err, size_t errlen);
/* Route the VM's agent requests to worker handle (0 = the agent
 * itself) until the next call; returns the previous route (0 without an
 * agent). See agent_client_route. */
uint64_t guest_route(const struct vmm_ops *ops, struct vmm_vm *vm, uint64_t handle);

/* ---- streams ---- */
struct guest_stream;

/* Open a stream; NULL-safe close. next: 1 = chunk or *eof, 0 = timeout,
 * -1 = error (like vmm_ops.stream_next). */
int guest_stream_open(const struct vmm_ops *ops, struct vmm_vm *vm, const struct vmm_stream_req *r,
                      struct guest_stream **out, char *err, size_t errlen);
int guest_stream_next(struct guest_stream *s, int64_t timeout_ns, char **data, size_t *len,
                      bool *eof, char *err, size_t errlen);
void guest_stream_close(struct guest_stream *s);

/* ---- batch ---- */
enum guest_batch_kind {
	GB_EXEC = 0, GB_READ_FILE, GB_WRITE_FILE, GB_STAT, GB_LISTDIR, GB_MKDIR,
	GB_UNLINK, GB_RENAME, GB_SYSCALL,
};

struct guest_batch_op {
	enum guest_batch_kind kind;
	struct vmm_exec_req exec;         /* GB_EXEC */
	const char *path, *path2;         /* path ops; rename: path -> path2 */
	const char *data;                 /* GB_WRITE_FILE */
	size_t len;
	bool parents;                     /* GB_MKDIR */
	int perm;                         /* GB_MKDIR, -1 = default */
	int64_t nr, args[6];              /* GB_SYSCALL */
};

struct guest_batch_res {
	int rc;                           /* 0, -1 (err/err_no set) or VMM_UNSUPPORTED */
	char err[256];                    /* the guest's message, e.g. "No such file or directory" */
	int err_no;
	struct vmm_exec_result exec;      /* GB_EXEC */
	char *data;                       /* GB_READ_FILE, malloc'd */
	size_t len;
	struct vmm_stat st;               /* GB_STAT */
	struct vmm_dirent *ents;          /* GB_LISTDIR */
	size_t nents;
	int64_t sys_ret;                  /* GB_SYSCALL */
	int sys_errno;
};

/* Run n ops: pipelined over the agent (one write of every request, then
 * every reply), else one by one through the backend. Each res[i] gets its
 * own outcome; a failed op never stops the others. Returns 0, or -1 with
 * err when the channel itself failed (every res[i] then says so too). */
int guest_batch(const struct vmm_ops *ops, struct vmm_vm *vm, const struct guest_batch_op *bops,
                size_t n, struct guest_batch_res *res, char *err, size_t errlen);
void guest_batch_res_free(struct guest_batch_res *res, size_t n);

#endif
