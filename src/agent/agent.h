/* agent.h — what the files of provium-agent share.
 *
 * The agent is one static binary with two roles:
 *
 *   boot.c / main.c   PID 1: mounts, modules, lo, then supervises the op
 *                     server and either execs the initrd's /init or stays a
 *                     minimal init (reaper + ACPI power button).
 *   server.c          the op server: one poll loop over the virtio-serial
 *                     port, process pipes and timers; framing, handshake,
 *                     dispatch, replies and stream channels.
 *   ops_fs.c          one-shot file ops, file handles, clock.
 *   ops_proc.c        exec / spawn / process handles and their streams.
 *   ops_misc.c        tail, syscall, poweroff.
 *   ops_net.c         net_setup (NIC address/link, default route, DNS,
 *                     the managed /etc/hosts block).
 *   ops_worker.c      workers: op-server forks reached over a socketpair,
 *                     and the relay of "worker"-routed requests.
 *
 * Everything runs on the server's single thread; handlers never block for
 * long (a process is forked and its pipes join the poll loop). A handler
 * answers its request exactly once, either before returning or later from
 * a poll callback (checking server_live(gen) first: a reply meant for a
 * connection that has since dropped is discarded).
 */
#ifndef PROVIUM_AGENT_H
#define PROVIUM_AGENT_H

#include <stddef.h>
#include <stdint.h>
#include <poll.h>
#include <sys/types.h>

#include "proto/codec.h"
#include "proto/protocol.h"

#ifndef PROVIUM_VERSION
#define PROVIUM_VERSION "dev"
#endif

/* ---- logging (to the console, prefixed "provium-agent: ") ---- */
void agent_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* ---- growable byte buffer ---- */
struct buf {
	char *p;
	size_t len, cap;
};
/* Append n bytes. 0 or -1 (ENOMEM). */
int buf_add(struct buf *b, const void *p, size_t n);
/* Drop the first n bytes. */
void buf_consume(struct buf *b, size_t n);
void buf_free(struct buf *b);
/* Write all n bytes of buf to fd (EINTR retried). 0, or -1 with errno. */
int agent_write_all(int fd, const void *buf, size_t n);

/* ---- boot.c (PID 1 duties) ---- */
void boot_console(void);
void boot_mounts(void);
void boot_modules(const char *dir);
void boot_loopback(void);
void boot_cmdline_clock(void);
void boot_rc(const char *path);

/* ---- server.c ---- */
/* Run the op server forever (returns only on a fatal setup error). */
int server_main(void);
/* Monotonic clock in ms. */
int64_t now_ms(void);
/* Current connection generation (bumps on every disconnect). */
uint64_t server_gen(void);
/* True if a reply for generation gen may still be sent. */
int server_live(uint64_t gen);

/* poll watches: cb(ctx, fd, revents) runs when fd is ready. */
typedef void (*watch_cb)(void *ctx, int fd, short revents);
int watch_add(int fd, short events, watch_cb cb, void *ctx);
void watch_events(int fd, short events);
void watch_del(int fd);

/* Replies: exactly one per request id. */
struct out {
	msgpack_sbuffer sb;
	msgpack_packer pk;
};
/* Start an ok OpResult for id: pack exactly one value into o->pk, then
 * out_send(o). */
void reply_ok_begin(struct out *o, uint64_t id);
/* Send a finished message (frames it; an over-size OpResult becomes a
 * too_large error for id). */
void out_send(struct out *o, uint64_t id);
void reply_nil(uint64_t id);
void reply_int(uint64_t id, int64_t v);
void reply_err(uint64_t id, const char *code, const char *msg, int err_no);
void reply_errno(uint64_t id, int err_no);
void reply_bad(uint64_t id, const char *what);

/* Streams. */
uint64_t chan_alloc(void);
void stream_data(uint64_t chan, const void *p, size_t n);
void stream_end(uint64_t chan, const char *error);

/* Request fields: every handler decodes its request with the shared
 * codec (proto/codec.h). req_decode fills s (the struct of m) or answers
 * bad_request naming the missing / ill-typed field: 0 or -1. */
int req_decode(uint64_t id, const msgpack_object *req, const struct proto_msg *m, void *s);
/* A malloc'd NUL-terminated copy of a decoded string (caller frees), or
 * NULL after answering bad_request (what: it holds a NUL byte) or
 * "out of memory". */
char *req_str(uint64_t id, struct proto_str s, const char *what);

/* ---- op handlers: (id, request map) ---- */
typedef void (*op_fn)(uint64_t id, const msgpack_object *req);
void op_read_file(uint64_t id, const msgpack_object *req);
void op_write_file(uint64_t id, const msgpack_object *req);
void op_stat(uint64_t id, const msgpack_object *req);
void op_listdir(uint64_t id, const msgpack_object *req);
void op_mkdir(uint64_t id, const msgpack_object *req);
void op_unlink(uint64_t id, const msgpack_object *req);
void op_rename(uint64_t id, const msgpack_object *req);
void op_clock_get(uint64_t id, const msgpack_object *req);
void op_clock_set(uint64_t id, const msgpack_object *req);
void op_file_open(uint64_t id, const msgpack_object *req);
void op_file_read(uint64_t id, const msgpack_object *req);
void op_file_write(uint64_t id, const msgpack_object *req);
void op_file_seek(uint64_t id, const msgpack_object *req);
void op_file_close(uint64_t id, const msgpack_object *req);
/* File handle lookup for fd_stream: fd or -1. */
int file_handle_fd(uint64_t handle);

void op_exec(uint64_t id, const msgpack_object *req);
void op_spawn(uint64_t id, const msgpack_object *req);
void op_proc_wait(uint64_t id, const msgpack_object *req);
void op_proc_status(uint64_t id, const msgpack_object *req);
void op_proc_kill(uint64_t id, const msgpack_object *req);
void op_proc_stdin(uint64_t id, const msgpack_object *req);
void op_proc_stdin_close(uint64_t id, const msgpack_object *req);
void op_proc_stream(uint64_t id, const msgpack_object *req);
/* SIGCHLD: reap and finish processes. */
void proc_reap(void);
/* Timer tick: enforce timeouts. Returns ms until the next deadline or -1. */
int proc_tick(int64_t now);
/* Connection dropped: forget channels and pending replies. */
void proc_disconnect(void);
/* Close a proc stream channel; 0 if it was one, -1 if not ours. */
int proc_stream_close(uint64_t chan);

void op_tail(uint64_t id, const msgpack_object *req);
void op_fd_stream(uint64_t id, const msgpack_object *req);
void op_stream_close(uint64_t id, const msgpack_object *req);
void op_syscall(uint64_t id, const msgpack_object *req);
void op_poweroff(uint64_t id, const msgpack_object *req);
/* Tail polling tick: returns ms until the next wanted tick or -1. */
int tail_tick(int64_t now);
void tail_disconnect(void);

void op_net_setup(uint64_t id, const msgpack_object *req);
/* Test hook (ops_fault.c): reply with hostile bytes instead of a result. */
void op_fault_frame(uint64_t id, const msgpack_object *req);
/* Queue raw bytes on the port as they are (no framing); dropped outside
 * a session. 0, or -1 (out of memory). */
int server_send_raw(const void *p, size_t n);
/* Polling tick for net_setups waiting for their NIC: ms until the next
 * wanted tick or -1. */
int net_tick(int64_t now);
/* Connection dropped: forget waiting net_setups (unapplied). */
void net_disconnect(void);

/* ---- workers (ops_worker.c; server.c's worker side) ---- */
void op_worker_spawn(uint64_t id, const msgpack_object *req);
void op_worker_join(uint64_t id, const msgpack_object *req);
void op_worker_kill(uint64_t id, const msgpack_object *req);
/* Relay the framed request frame[0..n) (4-byte header included) to
 * worker wid; answers id itself if there is no such worker. */
void worker_relay(uint64_t id, uint64_t wid, const char *frame, size_t n);
/* SIGCHLD: 1 if pid was a worker (its status is kept), else 0. */
int worker_reaped(pid_t pid, int wstatus);
/* Timer tick (join timeouts): ms until the next deadline or -1. */
int worker_tick(int64_t now);
/* In a freshly forked worker: drop the parent's workers (no signals). */
void worker_forget_all(void);
/* In a freshly forked worker: become the op server of fd (never returns);
 * its stream channels are numbered slot << 40 | n. */
void server_become_worker(int fd, uint64_t handle, uint64_t slot) __attribute__((noreturn));
/* 1 inside a worker process. */
int server_is_worker(void);
/* Queue an already framed message (header included) for the host. */
void server_forward(const char *frame, size_t n);
/* In a fresh worker: forget the parent's processes / file handles
 * without touching them (their fds are closed by the caller). */
void proc_forget_all(void);
void files_forget_all(void);

void op_read_mem(uint64_t id, const msgpack_object *req);

/* Power off / reboot now (after the pending output was flushed). */
void server_flush(void);
void agent_poweroff(int reboot_instead) __attribute__((noreturn));

#endif
