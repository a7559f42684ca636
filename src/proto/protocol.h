/* protocol.h — the wire protocol between provium (host) and provium-agent
 * (guest). This header is the whole contract: both sides include it, and
 * tests/unit/test_proto.c pins the byte shape of the handshake, OpResult
 * and the OpenMode bits.
 *
 *   !!! Bump PROTOCOL_VERSION whenever anything below changes on the wire:
 *   !!! a message kind number, a field name, a field's type, an OpenMode
 *   !!! bit, a result shape. Then update the pin test. Never silently.
 *
 * Transport. One virtio-serial port named "org.provium.agent"
 * (/dev/virtio-ports/org.provium.agent in the guest, a unix socket on the
 * host). A byte stream of frames:
 *
 *     u32 big-endian body length | body: exactly one msgpack map
 *
 * A frame whose declared length exceeds PROTO_FRAME_MAX is a protocol
 * error on either side (the reader drops the connection / resynchronises
 * at the next Hello; it never allocates the declared size first).
 *
 * Every map has an integer "kind" (PROTO_K_*). Kinds live in ranges:
 *
 *     1..99     handshake                  host <-> agent
 *     100..199  requests (ops)             host  -> agent, carry "id"
 *     200..299  responses                  agent -> host, carry "id"
 *     300..399  stream frames              agent -> host, carry "channel"
 *
 * Encoding rules. Field names are msgpack str. Byte payloads (file data,
 * stdin/stdout, stream data) are msgpack bin; receivers also accept str
 * for them. Integers are msgpack ints (either signedness form, receivers
 * accept both). An absent optional field means its documented default;
 * nil is treated like absent. Unknown fields are ignored (additive only
 * within one version — but see the bump rule above: host and agent ship
 * in lock-step, so in practice every wire change bumps the version).
 *
 * Handshake. After connecting (and after EVERY reconnect — a snapshot
 * restore looks like a disconnect/reconnect to the guest) the host sends
 * Hello. The agent answers HelloOk if the version matches, else HelloErr
 * and keeps waiting for another Hello. Before a successful Hello the
 * agent ignores every other frame. On disconnect the agent drops any
 * partial frame, forgets in-flight request ids (their replies are
 * discarded), closes every stream channel, and waits for a new Hello;
 * processes and file handles survive (they belong to the guest, not to
 * the connection).
 *
 *   Hello     {kind=1, protocol_version: uint}
 *             Its bytes are canonical — exactly what proto_pack_hello()
 *             emits (fixmap, "kind" first, smallest int forms): the agent
 *             resynchronises on them after a host vanished mid-frame.
 *             After connecting, the host ignores every frame until a
 *             HelloOk/HelloErr (older sessions' leftovers).
 *   HelloOk   {kind=2, agent_version: str, guest_os: str, features: [str]}
 *   HelloErr  {kind=3, message: str}
 *
 * Requests and responses. Every request carries "id" (uint, chosen by the
 * host, unique among its outstanding requests). Exactly one OpResult with
 * the same id answers each request. Requests are multiplexed: the agent
 * may answer out of order (a long exec does not hold up a stat), so a
 * "batch" is simply N pipelined requests.
 *
 *   OpResult ok   {kind=200, id: uint, outcome: "ok",  value: any}
 *   OpResult err  {kind=200, id: uint, outcome: "err",
 *                  error: {code: str, message: str, errno: int}}
 *
 * error.code is the symbolic errno name ("ENOENT", "EACCES", ...) when the
 * failure is an errno (error.errno then holds the guest's number and
 * message is strerror's text, e.g. "No such file or directory"), or one of
 * the PROTO_ERR_* codes below with errno 0.
 *
 * Streams. Some ops open a stream and return its channel number (uint,
 * allocated by the agent, never 0, never reused within one agent boot).
 * Data then flows agent -> host as
 *
 *   StreamData {kind=300, channel: uint, data: bin}
 *   StreamEnd  {kind=301, channel: uint, error: str (optional)}
 *
 * StreamEnd is the last frame of a channel (EOF of the source, or the
 * source failed: "error" says why). The host closes a channel early with
 * the stream_close op; no StreamData for it follows the op's OpResult.
 * All channels end when the connection drops.
 *
 * Ops (request fields after kind/id; "->" is the OpResult value). The
 * field tables both sides encode and decode with are in proto/codec.c
 * (one generic, strict decoder: a missing required field or a field of
 * the wrong type is bad_request / a malformed reply):
 *
 *   exec         100  argv: [str]          direct exec (argv[0] via PATH)
 *                     | shell: str         run via /bin/sh -c <shell>
 *                     env: {str: str}      added to (or, with env_clear,
 *                     env_clear: bool      replacing) the agent's env
 *                     cwd: str
 *                     stdin: bin           fed to stdin, then stdin closes
 *                     timeout_ms: uint     0/absent = none; on expiry the
 *                                          process group gets SIGKILL
 *                -> ExecResult {status: int, stdout: bin, stderr: bin,
 *                               signal: int|nil, timed_out: bool}
 *                   exited: status = exit code, signal nil;
 *                   signalled: status -1, signal = number;
 *                   timed out: status -2, timed_out true, signal nil.
 *                   Each of stdout/stderr is capped at PROTO_OUTPUT_MAX
 *                   bytes (excess discarded; the process is not blocked).
 *   read_file    101  path: str               -> bin (whole file)
 *   write_file   102  path: str, data: bin, mode: uint (default 0644,
 *                     used only when the file is created), append: bool
 *                     (default false: truncate first; true lets the host
 *                     push files larger than a frame in chunks) -> nil
 *   stat         103  path: str, follow: bool (default false = lstat)
 *                -> {size: uint, mtime_ns: int, perm: uint (mode & 07777),
 *                    entry_type: str, uid: uint, gid: uint}
 *                entry_type is one of "file" "directory" "symlink" "fifo"
 *                "socket" "block_device" "char_device" "other".
 *   listdir      104  path: str  -> [{name: str, entry_type: str}]
 *                sorted by name, without "." and "..".
 *   mkdir        105  path: str, parents: bool, perm: uint (default 0755)
 *                -> nil (parents=true: existing directories are fine)
 *   unlink       106  path: str  -> nil (a file, or an empty directory)
 *   rename       107  from: str, to: str  -> nil
 *   clock_get    108  -> int (CLOCK_REALTIME, ns since epoch)
 *   clock_set    109  ns: int  -> nil
 *   ping         110  -> nil
 *
 *   spawn        120  like exec without timeout_ms; stdin (optional) is
 *                     written first and stdin stays open.
 *                -> {handle: uint, pid: int}
 *                output is captured (each stream capped at
 *                PROTO_OUTPUT_MAX) until proc_wait collects it.
 *   proc_wait    121  handle: uint, timeout_ms: uint (0/absent = forever;
 *                     on expiry SIGKILL, result timed_out)
 *                -> ExecResult (as exec); frees the handle.
 *   proc_status  122  handle  -> {running: bool, pid: int, status: int,
 *                     signal: int|nil}   (status/signal valid when !running)
 *   proc_kill    123  handle, signal: int (default SIGTERM)  -> nil
 *   proc_stdin   124  handle, data: bin  -> uint bytes written
 *   proc_stdin_close 125 handle  -> nil
 *   proc_stream  126  handle, which: "stdout"|"stderr"
 *                -> {channel: uint}. The channel first replays what was
 *                captured so far, then follows live output; StreamEnd at
 *                the process's EOF on that pipe.
 *
 *   file_open    130  path: str, mode: uint (PROTO_OPEN_* bits),
 *                     perm: uint (default 0644)  -> uint handle
 *   file_read    131  handle, n: uint (capped at PROTO_IO_MAX) -> bin
 *                     ("" at EOF)
 *   file_write   132  handle, data: bin  -> uint bytes written
 *   file_seek    133  handle, offset: int, whence: "set"|"cur"|"end"
 *                -> uint new offset
 *   file_close   134  handle  -> nil
 *
 *   tail         140  path: str, start: "beginning"|"end"|int (>=0
 *                     absolute offset, <0 bytes before EOF; default
 *                     "end")  -> {channel: uint}
 *   fd_stream    141  handle (a file_open handle)  -> {channel: uint}
 *                     streams from the handle's current offset on.
 *   stream_close 142  channel: uint  -> nil
 *
 *   syscall      150  nr: int, args: [int] (up to 6), bufs: [bin],
 *                     ptrs: [int] (ptrs[i] = arg slot 0..5 receiving the
 *                     address of bufs[i], or -1: no slot, the buffer is
 *                     reached only through a patch),
 *                     patches: [[target: uint, offset: uint,
 *                     source: uint]] (optional; before the call the
 *                     guest address of bufs[source] is written as 8
 *                     bytes little-endian at bufs[target][offset..+8] —
 *                     nested pointers, e.g. an ioctl struct holding a
 *                     pointer to a payload; target/source index bufs and
 *                     offset + 8 <= len(bufs[target]), else bad_request)
 *                -> {ret: int, errno: int, out_bufs: [bin]}
 *                   out_bufs omitted when no bufs were given.
 *   poweroff     151  reboot: bool (default false)  -> nil, then the
 *                     guest syncs and powers off (or reboots).
 *   read_mem     152  addr: uint, len: uint (<= PROTO_IO_MAX, else
 *                     too_large) -> bin: len bytes of the serving
 *                     process's own memory at virtual address addr (read
 *                     through /proc/self/mem, so an unmapped address is
 *                     an errno error, EIO, never a crash).
 *
 *   net_setup    160  configure one NIC, the default route, DNS and the
 *                     provium-managed block of /etc/hosts; every field is
 *                     optional and the steps run in this order:
 *                     mac: str "52:56:xx:xx:xx:xx"  the interface whose
 *                       /sys/class/net/<if>/address equals it (any case);
 *                       waits up to wait_ms: uint (default 5000) for a
 *                       hotplugged NIC to appear (other requests are
 *                       served meanwhile), else error code "ENODEV"
 *                       (errno ENODEV) naming the MAC
 *                     addr: str dotted IPv4, prefix: uint 0..32 (default
 *                       24)  replaces the interface's address (needs mac)
 *                     up: bool (default true when mac is given; needs mac)
 *                       link up / down
 *                     gateway: str dotted IPv4  every default route is
 *                       deleted, then "default via gateway dev <if>" added
 *                       (needs mac); "" = only delete the default routes
 *                     dns: str dotted IPv4  /etc/resolv.conf becomes
 *                       "nameserver <dns>\n"
 *                     hosts: str  replaces the managed block of /etc/hosts
 *                       (the lines between "# provium: begin (managed; do
 *                       not edit)" and "# provium: end", markers included;
 *                       appended when absent; "" removes it; the rest of
 *                       the file is kept; the text may not contain a
 *                       marker line)
 *                -> {ifname: str}  ("" when no mac was given)
 *                Files are replaced atomically (temp file + rename). Not
 *                transactional: a failing step leaves the earlier ones
 *                done; its error message names the step (code and errno
 *                are still the errno's). Ill-formed fields (a bad dotted
 *                quad, prefix > 32, addr without mac) are bad_request
 *                before anything is changed.
 *
 *   worker_spawn 170  handle: uint (optional, > 0)  -> {handle: uint,
 *                     pid: int}. A worker is a separate guest process: a
 *                     fork of the op server that serves requests over a
 *                     socketpair (its own pid, uids, fds, memory). The
 *                     host chooses the handle (a counter of its own, so a
 *                     restore, which rewinds the guest, cannot make the
 *                     agent hand out a handle again); a handle already in
 *                     use is error EEXIST. Without the field the agent
 *                     picks the next free number itself (old tools).
 *   worker_join  171  handle, timeout_ms: uint (0/absent = forever; on
 *                     expiry SIGKILL)  -> {status: int, signal: int|nil}
 *                     The agent closes its end of the worker's socket
 *                     (an idle worker exits 0 at that EOF), reaps the
 *                     process and frees the handle. status is the exit
 *                     code, or -1 when signal is set.
 *   worker_kill  172  handle, signal: int (default SIGTERM)  -> nil
 *                     Signals the worker's child processes (its spawn /
 *                     run_async processes), then the worker itself, even
 *                     while the worker is blocked in a syscall (ESRCH once
 *                     the worker has exited).
 *
 *   Routing. Any request except the worker_* ops may carry
 *   "worker": uint. The agent then relays the frame unchanged to that
 *   worker process, which runs it as the op server would (a syscall
 *   there runs with the worker's pid, credentials and memory) and whose
 *   OpResult (and stream frames: a worker's channel numbers are
 *   slot << 40 | n with a per-boot slot of the worker, so they never
 *   collide with the agent's, which stay below 2^40) the agent relays
 *   back. Process and file handles a routed spawn / file_open returns
 *   live in that worker's tables: every later op on them (and their
 *   streams) carries the same "worker". A
 *   worker serves its requests one after another; a blocking syscall in
 *   one worker holds up only that worker. An unknown or joined worker
 *   is error no_handle; requests in flight when a worker dies are
 *   answered with error worker_gone. Inside a worker the worker_* ops
 *   are bad_request.
 *
 * Handles (processes, files) are uint, never 0. Process handles are never
 * reused within one agent boot; a file handle is the file's guest fd
 * number (>= 3), so it can be passed to syscall as a descriptor, and is
 * reused only after its file was closed.
 */
#ifndef PROVIUM_PROTOCOL_H
#define PROVIUM_PROTOCOL_H

#include <stdint.h>

/* Bump on ANY wire change (see the essay above) and update test_proto.c.
 * 2: syscall gained "patches" and ptrs[i] = -1.
 * 3: net_setup (kind 160, the new 160.. network group).
 * 4: read_mem (152), worker_spawn/join/kill (170..172), the "worker"
 *    routing field, error code worker_gone, feature "workers". */
#define PROTOCOL_VERSION 4

/* Largest frame body either side accepts (bytes). */
#define PROTO_FRAME_MAX (32u << 20)
/* Largest byte payload an agent puts in one value (read_file, file_read,
 * stdout + stderr of one ExecResult, each), leaving room for the envelope. */
#define PROTO_IO_MAX (PROTO_FRAME_MAX - 4096u)
#define PROTO_OUTPUT_MAX (PROTO_IO_MAX / 2u)
/* StreamData frames carry at most this many bytes each. */
#define PROTO_STREAM_CHUNK (64u << 10)

/* The virtio-serial port name (guest: /dev/virtio-ports/<name>). */
#define PROTO_PORT_NAME "org.provium.agent"

/* ---- message kinds: bump PROTOCOL_VERSION if any number changes ---- */
enum proto_kind {
	/* 1..99 handshake */
	PROTO_K_HELLO = 1,
	PROTO_K_HELLO_OK = 2,
	PROTO_K_HELLO_ERR = 3,

	/* 100..199 requests */
	PROTO_K_EXEC = 100,
	PROTO_K_READ_FILE = 101,
	PROTO_K_WRITE_FILE = 102,
	PROTO_K_STAT = 103,
	PROTO_K_LISTDIR = 104,
	PROTO_K_MKDIR = 105,
	PROTO_K_UNLINK = 106,
	PROTO_K_RENAME = 107,
	PROTO_K_CLOCK_GET = 108,
	PROTO_K_CLOCK_SET = 109,
	PROTO_K_PING = 110,

	PROTO_K_SPAWN = 120,
	PROTO_K_PROC_WAIT = 121,
	PROTO_K_PROC_STATUS = 122,
	PROTO_K_PROC_KILL = 123,
	PROTO_K_PROC_STDIN = 124,
	PROTO_K_PROC_STDIN_CLOSE = 125,
	PROTO_K_PROC_STREAM = 126,

	PROTO_K_FILE_OPEN = 130,
	PROTO_K_FILE_READ = 131,
	PROTO_K_FILE_WRITE = 132,
	PROTO_K_FILE_SEEK = 133,
	PROTO_K_FILE_CLOSE = 134,

	PROTO_K_TAIL = 140,
	PROTO_K_FD_STREAM = 141,
	PROTO_K_STREAM_CLOSE = 142,

	PROTO_K_SYSCALL = 150,
	PROTO_K_POWEROFF = 151,
	PROTO_K_READ_MEM = 152,

	/* 160.. network */
	PROTO_K_NET_SETUP = 160,

	/* 170.. workers */
	PROTO_K_WORKER_SPAWN = 170,
	PROTO_K_WORKER_JOIN = 171,
	PROTO_K_WORKER_KILL = 172,

	/* 190: test hook only (docs/internals.md): the agent answers with
	 * the hostile bytes named by "mode" instead of an OpResult */
	PROTO_K_FAULT_FRAME = 190,

	/* 200..299 responses */
	PROTO_K_OP_RESULT = 200,

	/* 300..399 stream frames */
	PROTO_K_STREAM_DATA = 300,
	PROTO_K_STREAM_END = 301,
};

#define PROTO_REQ_FIRST 100
#define PROTO_REQ_LAST 199

/* ---- OpenMode bits (file_open "mode"): bump if any bit moves ---- */
#define PROTO_OPEN_READ      (1u << 0)
#define PROTO_OPEN_WRITE     (1u << 1)
#define PROTO_OPEN_CREATE    (1u << 2)
#define PROTO_OPEN_TRUNCATE  (1u << 3)
#define PROTO_OPEN_APPEND    (1u << 4)
#define PROTO_OPEN_EXCLUSIVE (1u << 5)
#define PROTO_OPEN_ALL       ((1u << 6) - 1u)

/* ---- field names ---- */
#define PROTO_F_KIND "kind"
#define PROTO_F_ID "id"
#define PROTO_F_CHANNEL "channel"
#define PROTO_F_PROTOCOL_VERSION "protocol_version"
#define PROTO_F_AGENT_VERSION "agent_version"
#define PROTO_F_GUEST_OS "guest_os"
#define PROTO_F_FEATURES "features"
#define PROTO_F_MESSAGE "message"
#define PROTO_F_OUTCOME "outcome"
#define PROTO_F_VALUE "value"
#define PROTO_F_ERROR "error"
#define PROTO_F_CODE "code"
#define PROTO_F_ERRNO "errno"
#define PROTO_F_DATA "data"
#define PROTO_F_PATCHES "patches"
#define PROTO_F_WORKER "worker"

#define PROTO_OUTCOME_OK "ok"
#define PROTO_OUTCOME_ERR "err"

/* ---- non-errno error codes (error.code, with errno 0) ---- */
#define PROTO_ERR_BAD_REQUEST "bad_request"   /* missing/ill-typed field */
#define PROTO_ERR_UNKNOWN_OP "unknown_op"     /* kind not served */
#define PROTO_ERR_NO_HANDLE "no_handle"       /* unknown process/file/channel */
#define PROTO_ERR_TOO_LARGE "too_large"       /* result would exceed a frame */
#define PROTO_ERR_INTERNAL "internal"
#define PROTO_ERR_WORKER_GONE "worker_gone"   /* the worker died mid-request */

/* ---- features advertised in HelloOk.features ---- */
#define PROTO_FEAT_EXEC "exec"
#define PROTO_FEAT_FILES "files"
#define PROTO_FEAT_CLOCK "clock"
#define PROTO_FEAT_PROCESS "process"
#define PROTO_FEAT_FILE_HANDLES "file_handles"
#define PROTO_FEAT_TAIL "tail"
#define PROTO_FEAT_SYSCALL "syscall"
#define PROTO_FEAT_POWEROFF "poweroff"
#define PROTO_FEAT_NET "net"
#define PROTO_FEAT_WORKERS "workers"

/* ---- shared encode/decode helpers (protocol.c; msgpack-c only) ----
 * Both sides build the pinned messages through these, so the pin test in
 * tests/unit/test_proto.c guards what actually goes on the wire. */
#include <stddef.h>
#include <msgpack.h>

/* Pack Hello{protocol_version}. */
void proto_pack_hello(msgpack_packer *pk, uint32_t version);
/* Pack HelloOk; features is an array of nfeatures strings. */
void proto_pack_hello_ok(msgpack_packer *pk, const char *agent_version,
			 const char *guest_os, const char *const *features,
			 size_t nfeatures);
/* Pack HelloErr{message}. */
void proto_pack_hello_err(msgpack_packer *pk, const char *message);
/* Pack the head of an ok OpResult; the caller packs exactly one value
 * object right after (msgpack_pack_nil for "no value"). */
void proto_pack_ok_head(msgpack_packer *pk, uint64_t id);
/* Pack a whole err OpResult. */
void proto_pack_err(msgpack_packer *pk, uint64_t id, const char *code,
		    const char *message, int err_no);
/* Pack the head of a request {kind, id, + nfields more}: the caller packs
 * nfields key/value pairs after it. */
void proto_pack_request_head(msgpack_packer *pk, int kind, uint64_t id,
			     size_t nfields);
/* Pack a msgpack str key. */
void proto_pack_key(msgpack_packer *pk, const char *key);
/* Pack a NUL-terminated string as msgpack str. */
void proto_pack_cstr(msgpack_packer *pk, const char *s);
/* Pack bytes as msgpack bin. */
void proto_pack_bytes(msgpack_packer *pk, const void *p, size_t n);

/* Look up key in a map object; NULL if o is not a map or key is absent.
 * A nil value is returned as NULL too (nil means "absent"). */
const msgpack_object *proto_get(const msgpack_object *o, const char *key);
/* Typed getters: 0 on success, -1 if absent or ill-typed (errno EINVAL). */
int proto_get_int(const msgpack_object *o, const char *key, int64_t *out);
int proto_get_uint(const msgpack_object *o, const char *key, uint64_t *out);
int proto_get_bool(const msgpack_object *o, const char *key, int *out);
/* str or bin: pointer into the object (not NUL-terminated) + length. */
int proto_get_bytes(const msgpack_object *o, const char *key,
		    const char **p, size_t *n);
/* Object as integer (either signedness form). 0 or -1. */
int proto_obj_int(const msgpack_object *o, int64_t *out);
/* Object as bytes (str or bin). 0 or -1. */
int proto_obj_bytes(const msgpack_object *o, const char **p, size_t *n);
/* Name of a kind ("exec", "hello_ok", ...), or NULL if unknown. */
const char *proto_kind_name(int kind);
/* Structural pre-check of untrusted msgpack, run before msgpack-c sees
 * it on every decode path: exactly one value filling [0, n), and no
 * container declaring more elements than bytes remain (msgpack-c
 * allocates the declared count up front, so a 5-byte frame could
 * otherwise ask for 64 GiB). 0 or -1. */
int proto_msgpack_sane(const void *p, size_t n);
/* Symbolic errno name ("ENOENT"), or "EIO"-style fallback "E<num>" in buf. */
const char *proto_errno_name(int err_no, char *buf, size_t buflen);

#endif
