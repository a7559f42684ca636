/* codec.h — the one codec of the agent wire protocol's message bodies,
 * shared by the host (src/host/vmm/agent_codec.c adapts vmm types to it)
 * and the static agent (its handlers in src/agent/ops_*.c decode with it
 * and answer with its reply encoders). protocol.h stays the contract
 * (kinds, field meaning, handshake); this file is the only place that
 * knows each message's field names, wire types, order and presence.
 *
 * A message is a plain C struct (no host or agent types) plus a field
 * table (struct proto_msg). One generic encoder packs the struct's
 * fields in table order; one generic decoder reads a msgpack map into it
 * and type-checks every field it reads:
 *
 *   - a required field (PROTO_REQD) that is absent or nil is malformed;
 *   - an optional field that is absent or nil leaves its has_ flag false
 *     and its value zero (the handler applies the documented default);
 *   - a present field of the wrong type is malformed (never "absent"):
 *     one rule for every op, single or batched, host or agent side;
 *   - lists are bounded (PROTO_LIST_MAX elements, syscall args 6) on top
 *     of proto_msgpack_sane, which already ran on the whole frame.
 *
 * Decoded strings, byte strings and lists point into the msgpack object
 * (valid while it is): decoding allocates nothing. Lists are read and
 * written through an accessor (struct proto_list), so an encoder can
 * take them from any C array without copying and a decoder hands out
 * the msgpack array it checked.
 *
 * Field order is the wire order of today's senders: pinned by
 * tests/unit/test_agent_codec.c (the exec request's bytes) and
 * round-tripped by tests/unit/test_codec.c. Change a table only together
 * with protocol.h and PROTOCOL_VERSION. */
#ifndef PROVIUM_PROTO_CODEC_H
#define PROVIUM_PROTO_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <msgpack.h>

/* Largest element count of a decoded list (argv, env, bufs, patches,
 * dirents, out_bufs): far above any real request, far below what a
 * frame can declare. */
#define PROTO_LIST_MAX 65536u
#define PROTO_SYSCALL_ARGS 6u

/* Borrowed bytes (not NUL-terminated). */
struct proto_str {
	const char *p;
	size_t n;
};

/* One list element; which members mean what depends on the list type:
 *   PT_STRS, PT_BINS  s
 *   PT_ENV            s (name), v (value)
 *   PT_INTS           i
 *   PT_PATCHES        i (target), j (offset), k (source)
 *   dirents           s (name), v (entry_type) */
struct proto_elem {
	struct proto_str s, v;
	int64_t i, j, k;
};

/* A list: n elements, element i through at(). A decoded list's at reads
 * the checked msgpack array obj; an encoder's at reads ctx. */
struct proto_list {
	size_t n;
	void (*at)(const struct proto_list *l, size_t i, struct proto_elem *e);
	const void *ctx;
	const msgpack_object *obj;
};

/* A list over a C array of NUL-terminated strings (PT_STRS / PT_BINS). */
void proto_list_cstrs(struct proto_list *l, const char *const *v, size_t n);
/* A list over a C array of int64 (PT_INTS). */
void proto_list_ints(struct proto_list *l, const int64_t *v, size_t n);
/* Element i of l. */
struct proto_elem proto_list_at(const struct proto_list *l, size_t i);

/* tail's start: "beginning" | "end" (is_int false, s) or an offset. */
struct proto_strint {
	bool is_int;
	struct proto_str s;
	int64_t i;
};

enum proto_ftype {
	PT_STR,      /* struct proto_str, msgpack str (bin accepted) */
	PT_BIN,      /* struct proto_str, msgpack bin (str accepted) */
	PT_INT,      /* int64_t, either signedness form */
	PT_UINT,     /* uint64_t, a non-negative int */
	PT_BOOL,     /* bool */
	PT_STRS,     /* struct proto_list of str: [str] */
	PT_BINS,     /* struct proto_list of bin: [bin] */
	PT_ENV,      /* struct proto_list of pairs: {str: str} */
	PT_INTS,     /* struct proto_list of int: [int] (a uint above
	                INT64_MAX reads as its two's complement) */
	PT_PATCHES,  /* struct proto_list of [uint, uint, uint] */
	PT_STRINT,   /* struct proto_strint: str or int */
};

#define PROTO_REQD 1u   /* decode: absent is malformed; encode: always */
#define PROTO_NIL  2u   /* encode: an absent optional field packs nil */

struct proto_field {
	const char *key;
	enum proto_ftype t;
	unsigned flags;
	size_t off;          /* of the value in the message struct */
	size_t has;          /* of its bool has_ flag (optional fields) */
	size_t max;          /* list bound (0: PROTO_LIST_MAX) */
};

struct proto_msg {
	const char *name;    /* "exec", "stat reply", ... */
	const struct proto_field *f;
	size_t n;
	size_t size;         /* of the message struct (decode zeroes it) */
};

/* Number of key/value pairs encoding m would pack. */
size_t proto_nfields(const struct proto_msg *m, const void *s);
/* Pack the pairs of s (no map header: a request's head or a reply's
 * map header comes first, see below). */
void proto_pack_fields(msgpack_packer *pk, const struct proto_msg *m, const void *s);
/* Pack s as one msgpack map (a reply value). */
void proto_pack_map(msgpack_packer *pk, const struct proto_msg *m, const void *s);
/* Decode the map o into s (zeroed first). 0, or -1 with *bad (when not
 * NULL) set to a static message naming the field ("field `path`:
 * missing", "field `mode`: not an unsigned integer", "exec: not a map"). */
int proto_decode(const struct proto_msg *m, const msgpack_object *o, void *s, const char **bad);

/* ---- requests (host -> agent; the fields after kind/id) ---------------- */

/* exec (100) and spawn (120; timeout_ms not read). */
struct proto_exec {
	struct proto_list argv;  bool has_argv;
	struct proto_str shell;  bool has_shell;
	struct proto_list env;   bool has_env;
	bool env_clear;          bool has_env_clear;
	struct proto_str cwd;    bool has_cwd;
	struct proto_str stdin_; bool has_stdin;
	uint64_t timeout_ms;     bool has_timeout_ms;
};
extern const struct proto_msg proto_m_exec;

/* read_file (101), listdir (104), unlink (106): {path};
 * stat (103): {path, follow}. */
struct proto_path {
	struct proto_str path;
	bool follow;             bool has_follow;
};
extern const struct proto_msg proto_m_path, proto_m_stat;

/* write_file (102). */
struct proto_write_file {
	struct proto_str path;
	struct proto_str data;
	uint64_t mode;           bool has_mode;
	bool append;             bool has_append;
};
extern const struct proto_msg proto_m_write_file;

/* mkdir (105). */
struct proto_mkdir {
	struct proto_str path;
	bool parents;            bool has_parents;
	uint64_t perm;           bool has_perm;
};
extern const struct proto_msg proto_m_mkdir;

/* rename (107). */
struct proto_rename {
	struct proto_str from, to;
};
extern const struct proto_msg proto_m_rename;

/* clock_set (109). */
struct proto_clock_set {
	int64_t ns;
};
extern const struct proto_msg proto_m_clock_set;

/* One handle and its optional companions:
 *   proto_m_handle      {handle}  proc_status, proc_stdin_close,
 *                       file_close, fd_stream
 *   proto_m_handle_opt  {handle?} worker_spawn
 *   proto_m_wait        {handle, timeout_ms?}  proc_wait, worker_join
 *   proto_m_kill        {handle, signal?}  proc_kill, worker_kill
 *   proto_m_handle_data {handle, data}  proc_stdin, file_write
 *   proto_m_proc_stream {handle, which}
 *   proto_m_file_read   {handle, n?}
 *   proto_m_file_seek   {handle, offset?, whence?} */
struct proto_handle {
	uint64_t handle;         bool has_handle;
	uint64_t timeout_ms;     bool has_timeout_ms;
	int64_t signal;          bool has_signal;
	struct proto_str data;
	struct proto_str which;
	uint64_t n;              bool has_n;
	int64_t offset;          bool has_offset;
	struct proto_str whence; bool has_whence;
};
extern const struct proto_msg proto_m_handle, proto_m_handle_opt, proto_m_wait,
	proto_m_kill, proto_m_handle_data, proto_m_proc_stream, proto_m_file_read,
	proto_m_file_seek;

/* file_open (130). */
struct proto_file_open {
	struct proto_str path;
	uint64_t mode;
	uint64_t perm;           bool has_perm;
};
extern const struct proto_msg proto_m_file_open;

/* tail (140). */
struct proto_tail {
	struct proto_str path;
	struct proto_strint start; bool has_start;
};
extern const struct proto_msg proto_m_tail;

/* stream_close (142). */
struct proto_channel {
	uint64_t channel;
};
extern const struct proto_msg proto_m_channel;

/* syscall (150). */
struct proto_syscall {
	int64_t nr;
	struct proto_list args;    bool has_args;     /* <= 6 */
	struct proto_list bufs;    bool has_bufs;
	struct proto_list ptrs;    bool has_ptrs;
	struct proto_list patches; bool has_patches;
};
extern const struct proto_msg proto_m_syscall;

/* poweroff (151). */
struct proto_poweroff {
	bool reboot;             bool has_reboot;
};
extern const struct proto_msg proto_m_poweroff;

/* read_mem (152). */
struct proto_read_mem {
	uint64_t addr, len;
};
extern const struct proto_msg proto_m_read_mem;

/* net_setup (160): every field optional. */
struct proto_net_setup {
	struct proto_str mac;     bool has_mac;
	struct proto_str addr;    bool has_addr;
	struct proto_str gateway; bool has_gateway;
	struct proto_str dns;     bool has_dns;
	struct proto_str hosts;   bool has_hosts;
	uint64_t prefix;          bool has_prefix;
	bool up;                  bool has_up;
	uint64_t wait_ms;         bool has_wait_ms;
};
extern const struct proto_msg proto_m_net_setup;

/* fault_frame (190, test hook). */
struct proto_fault {
	struct proto_str mode;
};
extern const struct proto_msg proto_m_fault;

/* ---- structured replies (agent -> host; OpResult values) --------------- */

/* ExecResult (exec, proc_wait): signal nil unless signalled. */
struct proto_exec_result {
	int64_t status;
	struct proto_str out;    bool has_out;
	struct proto_str err;    bool has_err;
	int64_t signal;          bool has_signal;
	bool timed_out;          bool has_timed_out;
};
extern const struct proto_msg proto_m_exec_result;

/* stat. */
struct proto_stat {
	uint64_t size;
	int64_t mtime_ns;
	uint64_t perm;
	struct proto_str entry_type;
	uint64_t uid;            bool has_uid;
	uint64_t gid;            bool has_gid;
};
extern const struct proto_msg proto_m_stat_reply;

/* spawn / worker_spawn: {handle, pid}. */
struct proto_handle_pid {
	uint64_t handle;
	int64_t pid;             bool has_pid;
};
extern const struct proto_msg proto_m_handle_pid;

/* proc_status. */
struct proto_proc_status {
	bool running;
	int64_t pid;             bool has_pid;
	int64_t status;          bool has_status;
	int64_t signal;          bool has_signal;
};
extern const struct proto_msg proto_m_proc_status;

/* tail / fd_stream / proc_stream: {channel} (proto_m_channel). */

/* syscall: {ret, errno, out_bufs?}. */
struct proto_syscall_result {
	int64_t ret;
	int64_t err_no;          bool has_err_no;
	struct proto_list out_bufs; bool has_out_bufs;
};
extern const struct proto_msg proto_m_syscall_result;

/* net_setup: {ifname}. */
struct proto_ifname {
	struct proto_str ifname;
};
extern const struct proto_msg proto_m_ifname;

/* worker_join: {status, signal: int|nil}. */
struct proto_worker_exit {
	int64_t status;
	int64_t signal;          bool has_signal;
};
extern const struct proto_msg proto_m_worker_exit;

/* Every table above, requests first (tests/unit/test_codec.c walks
 * them all and pins their schema). */
extern const struct proto_msg *const proto_msgs[];
extern const size_t proto_nmsgs;

/* listdir: [{name: str, entry_type: str}] — an array, not a map. Both
 * members of every entry are required. */
void proto_pack_dirents(msgpack_packer *pk, const struct proto_list *ents);
int proto_decode_dirents(const msgpack_object *o, struct proto_list *ents, const char **bad);

/* A NUL-terminated malloc'd copy of s, or NULL (out of memory, or s
 * holds a NUL byte: errno EINVAL). */
char *proto_str_dup(struct proto_str s);
/* s equals the C string c. */
bool proto_str_is(struct proto_str s, const char *c);
/* A proto_str over a C string (NULL is ""). */
struct proto_str proto_cstr(const char *c);

#endif
