/* agent_codec.h — the host side of the agent wire protocol's bodies:
 * every request the host sends (the fields after kind/id, see
 * proto/protocol.h) and every structured reply value it decodes.
 *
 * Requests. A request is a struct agent_req: the list of key/value pairs
 * one agent_req_*() constructor fills, in wire order. agent_req_build is
 * the agent_build_fn that packs it and agent_req_nfields the count to
 * announce, so every caller sends the same way:
 *
 *   struct agent_req r;
 *   agent_req_exec(&r, x, timeout_ms);
 *   agent_call(c, PROTO_K_EXEC, agent_req_nfields(&r), agent_req_build, &r, ...);
 *
 * The struct borrows every pointer it is given (strings, buffers, the
 * exec request, the syscall): keep them alive until the send. Requests
 * without fields (ping, clock_get, poweroff, worker_spawn) need none: an
 * empty request (agent_req_init) packs nothing.
 *
 * Every field name and wire type lives in the shared tables of
 * proto/codec.c (the agent's handlers use the same ones): this adapter
 * only maps vmm / guest_ops types onto their structs.
 *
 * Replies. The agent_dec_*() decoders take the OpResult value
 * (agent_reply.value: already framed, size-checked by proto_msgpack_sane
 * and unpacked by agent_client.c, NULL for nil) and type-check every field
 * they read: a malformed value is -1, never a crash. They set no err
 * text; the callers name the op ("malformed reply from the agent (x)",
 * "agent: malformed x reply").
 *
 * tests/unit/test_agent_codec.c packs every request and reads it back
 * the way the agent's handlers read it (src/agent/ops_*.c), pins the exec
 * request's bytes, and feeds each decoder well-formed and malformed
 * values. */
#ifndef PROVIUM_AGENT_CODEC_H
#define PROVIUM_AGENT_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <msgpack.h>

#include "proto/codec.h"
#include "vmm/guest_ops.h"
#include "vmm/vmm.h"

/* ---- requests ---------------------------------------------------------- */

/* One request: the shared message table (proto/codec.h) and its struct.
 * The lists in u read the caller's arrays through their ctx (borrowed). */
struct agent_req {
	const struct proto_msg *m;    /* NULL: no fields */
	union {
		struct proto_exec exec;
		struct proto_path path;
		struct proto_write_file write_file;
		struct proto_mkdir mkdir;
		struct proto_rename rename;
		struct proto_clock_set clock_set;
		struct proto_handle handle;
		struct proto_file_open file_open;
		struct proto_tail tail;
		struct proto_channel channel;
		struct proto_syscall syscall;
		struct proto_read_mem read_mem;
		struct proto_net_setup net_setup;
		struct proto_fault fault;
	} u;
};

/* An empty request. Every constructor below starts with it. */
void agent_req_init(struct agent_req *r);
/* The number of key/value pairs r packs (agent_send's nfields). */
size_t agent_req_nfields(const struct agent_req *r);
/* agent_build_fn: packs the pairs of ctx (a struct agent_req *). */
void agent_req_build(msgpack_packer *pk, void *ctx);

/* exec (100) and spawn (120): argv (argv[0] replaced by x->file, an
 * empty argv sends [file or "true"]), env (also {} when only env_clear),
 * env_clear, cwd, stdin; timeout_ms when >= 0 (exec only: spawn passes
 * -1). x->timeout_ns is not looked at: the caller turns it into
 * timeout_ms its own way. */
void agent_req_exec(struct agent_req *r, const struct vmm_exec_req *x, int64_t timeout_ms);
/* The timeout_ms an exec with timeout_ns sends: -1 (none) when
 * timeout_ns < 0, else timeout_ns rounded up to whole ms, at least 1 (on
 * the wire 0 means "no timeout", so a zero timeout — an expired test
 * deadline, or timeout=0 — is 1 ms, an immediate kill), at most max_ms.
 * vm:run and the batch's run both use it. */
int64_t agent_exec_timeout_ms(int64_t timeout_ns, int64_t max_ms);
/* read_file (101), stat (103), listdir (104), unlink (106): {path}. */
void agent_req_path(struct agent_req *r, const char *path);
/* write_file (102): {path, data, append: true only when append}. */
void agent_req_write_file(struct agent_req *r, const char *path, const void *data, size_t n,
			  bool append);
/* mkdir (105): {path, parents, perm when >= 0}. */
void agent_req_mkdir(struct agent_req *r, const char *path, bool parents, int perm);
/* rename (107): {from, to}. */
void agent_req_rename(struct agent_req *r, const char *from, const char *to);
/* clock_set (109): {ns}. */
void agent_req_clock_set(struct agent_req *r, int64_t ns);
/* Requests on a handle alone: proc_wait (121), proc_status (122),
 * proc_stdin_close (125), file_close (134), fd_stream (141): {handle}. */
void agent_req_handle(struct agent_req *r, uint64_t handle);
/* proc_kill (123): {handle, signal}. */
void agent_req_proc_kill(struct agent_req *r, uint64_t handle, int sig);
/* proc_stdin (124), file_write (132): {handle, data}. */
void agent_req_handle_data(struct agent_req *r, uint64_t handle, const void *data, size_t n);
/* proc_stream (126): {handle, which: "stdout"|"stderr"}. */
void agent_req_proc_stream(struct agent_req *r, uint64_t handle, bool stderr_);
/* file_open (130): {path, mode (& PROTO_OPEN_ALL), perm when >= 0}. */
void agent_req_file_open(struct agent_req *r, const char *path, int mode, int perm);
/* file_read (131): {handle, n}. */
void agent_req_file_read(struct agent_req *r, uint64_t handle, uint64_t n);
/* file_seek (133): {handle, offset, whence: "set"|"cur"|"end"}. */
void agent_req_file_seek(struct agent_req *r, uint64_t handle, int64_t offset,
			 enum vmm_whence whence);
/* tail (140): {path, start: "beginning"|"end"|offset} from a TAIL req. */
void agent_req_tail(struct agent_req *r, const struct vmm_stream_req *s);
/* stream_close (142): {channel}. */
void agent_req_stream_close(struct agent_req *r, uint64_t channel);
/* syscall (150): {nr, args[6], bufs, ptrs, patches} (bufs/ptrs only
 * with nbufs, patches only with nbufs and npatches). The _ints form is
 * the same request without buffers. */
void agent_req_syscall(struct agent_req *r, const struct guest_syscall *s);
void agent_req_syscall_ints(struct agent_req *r, int64_t nr, const int64_t args[6]);
/* read_mem (152): {addr, len}. */
void agent_req_read_mem(struct agent_req *r, uint64_t addr, uint64_t len);
/* net_setup (160): the set fields of s (NULL / -1 left out). */
void agent_req_net_setup(struct agent_req *r, const struct guest_net_setup *s);
/* worker_spawn (170): {handle} (the host-chosen worker handle). */
void agent_req_worker_spawn(struct agent_req *r, uint64_t handle);
/* worker_join (171): {handle, timeout_ms}; worker_kill (172):
 * {handle, signal}. */
void agent_req_worker_join(struct agent_req *r, uint64_t handle, int64_t timeout_ms);
void agent_req_worker_kill(struct agent_req *r, uint64_t handle, int sig);
/* The fault_frame test hook (190): {mode}. */
void agent_req_fault_frame(struct agent_req *r, const char *mode);

/* A batch op (guest_batch): its request kind, and its request, built
 * with the constructors above (an exec's timeout_ms is
 * agent_exec_timeout_ms(timeout_ns), as for vm:run). */
int agent_batch_kind(enum guest_batch_kind k);
void agent_req_batch_op(struct agent_req *r, const struct guest_batch_op *o);

/* ---- replies ----------------------------------------------------------- */

/* entry_type names ("file", ..., "other") as enum vmm_entry_type;
 * anything else is VMM_ENT_OTHER. */
enum vmm_entry_type agent_dec_entry_type(const char *p, size_t n);

/* ExecResult (exec, proc_wait) -> res (out/err malloc'd). Needs an int
 * status; stdout/stderr bytes (absent: ""), signal an int or nil,
 * timed_out a bool; signal > 0 means signalled. 0 or -1 (res freed and
 * zeroed). */
int agent_dec_exec_result(const msgpack_object *v, struct vmm_exec_result *res);
/* stat -> st: size, mtime_ns, perm and entry_type required (an unknown
 * entry_type name is VMM_ENT_OTHER). 0 or -1. */
int agent_dec_stat(const msgpack_object *v, struct vmm_stat *st);
/* listdir -> *ents (malloc'd, in the agent's order: the caller sorts),
 * *n. 0; -1 with *what "listdir" (not an array) or "listdir entry" (an
 * entry without a name or entry_type string); -1 with *what NULL when out of memory. */
int agent_dec_listdir(const msgpack_object *v, struct vmm_dirent **ents, size_t *n,
		      const char **what);
/* spawn / worker_spawn: {handle: uint, pid: int}. spawn needs a non-zero
 * handle, pid optional (need_pid false); worker_spawn needs both. */
int agent_dec_handle_pid(const msgpack_object *v, bool need_pid, uint64_t *handle,
			 int64_t *pid);
/* proc_status: {running: bool}. 0 or -1. */
int agent_dec_proc_running(const msgpack_object *v, int *running);
/* syscall -> res: ret required, errno optional, out_bufs (an array of
 * exactly nbufs byte strings) when nbufs > 0. 0 or -1 (res freed). */
int agent_dec_syscall(const msgpack_object *v, size_t nbufs, struct guest_syscall_result *res);
/* net_setup: {ifname: str}; p/n point into v. 0 or -1. */
int agent_dec_net_setup(const msgpack_object *v, const char **p, size_t *n);
/* tail / fd_stream / proc_stream: {channel: uint, non-zero}. 0 or -1. */
int agent_dec_channel(const msgpack_object *v, uint64_t *channel);
/* worker_join: {status: int, signal: int|nil}; *sig 0 when nil. */
int agent_dec_worker_join(const msgpack_object *v, int *status, int *sig);

/* The ok value of a batch op (guest_batch) into res: the same decoders
 * as the single ops (one strictness for both, see proto/codec.h); a
 * read_file value is bytes (nil: ""). 0 or -1 (what was decoded so far
 * stays in res for guest_batch_res_free). */
int agent_dec_batch_value(const struct guest_batch_op *o, const msgpack_object *v,
			  struct guest_batch_res *res);

#endif
