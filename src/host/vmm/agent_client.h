/* agent_client.h — the host end of the agent channel (src/proto/protocol.h).
 *
 * provium is the *server* of the agent socket and QEMU connects to it as a
 * client (chardev server=off), so the listening socket must exist before
 * QEMU is spawned, and after a snapshot restore the new QEMU simply
 * connects again (agent_client_accept once more, then Hello).
 *
 * Calling sequence:
 *   c = agent_client_listen("vm1", "<run_dir>/agent.sock", err)  before spawn
 *   agent_client_accept(c, deadline, err)      QEMU connected
 *   agent_client_hello(c, deadline, &hello, err)
 *   agent_call(c, PROTO_K_STAT, 1, build, ctx, timeout_ms, &reply, err)
 *   ... or agent_send() N times then agent_wait() each id (pipelining)
 *   agent_stream_next(c, channel, timeout_ms, &chunk, err)
 *   agent_client_free(c)
 *
 * Multiplexing: every frame read while waiting for anything is dispatched:
 * OpResults go to the outstanding request with that id (a reply to an id
 * nobody waits for any more is dropped, and ends that abandoned request), StreamData/StreamEnd go to a
 * per-channel queue (created on first sight: data may arrive before the
 * OpResult that names the channel). Writes also drain incoming frames, so
 * a large push never deadlocks against a guest that is talking.
 *
 * Untrusted input: every byte from the guest is. A declared frame length
 * over PROTO_FRAME_MAX, a body that is not exactly one msgpack map with an
 * integer kind, an unknown kind, an OpResult without a valid id/outcome,
 * stream buffers above AGENT_STREAM_BUFFER_MAX, or more than
 * AGENT_MAX_CHANNELS channels at once break the connection
 * with an error naming the VM ("vm `x`: agent: ..."); every waiting call
 * then fails with that error. Everything blocks only until a deadline.
 *
 * Errors: 0 / -1 (NULL) with err filled. An agent-side failure of an op
 * (OpResult outcome "err") is -1 too, with reply->code / reply->err_no set
 * and err "vm `x`: <op>: <message>". */
#ifndef PROVIUM_AGENT_CLIENT_H
#define PROVIUM_AGENT_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <msgpack.h>

#include "proto/protocol.h"

#define AGENT_STREAM_BUFFER_MAX (256u << 20)
/* Channels with state at once: open, or ended and not yet read, or
 * closed by the host before their StreamEnd. A finished stream's entry
 * is dropped, so only a guest that floods channels reaches it. */
#define AGENT_MAX_CHANNELS 8192

struct agent_client;

struct agent_hello {
	char *agent_version;
	char *guest_os;
	char **features;           /* nfeatures malloc'd strings */
	size_t nfeatures;
};

/* The result of one request. On success value points into the reply's own
 * storage (valid until agent_reply_free). On an agent "err" outcome,
 * code/err_no/message describe it. */
struct agent_reply {
	const msgpack_object *value;   /* NULL for nil */
	char code[32];
	int err_no;
	char message[256];
	/* private */
	unsigned char *body_;
	msgpack_unpacked u_;
	bool have_u_;
};

/* Packs exactly the nfields key/value pairs announced to agent_send. */
typedef void (*agent_build_fn)(msgpack_packer *pk, void *ctx);

/* Create the client and its listening socket at path (a stale socket file
 * is removed first). NULL with err. */
struct agent_client *agent_client_listen(const char *vm_name, const char *path,
					 char *err, size_t errlen);

/* Adopt a connected fd (tests: a socketpair). No listening socket. */
struct agent_client *agent_client_from_fd(const char *vm_name, int fd);

/* Wait for QEMU to connect (drops any previous connection, its pending
 * requests and channels). 0 or -1 with err (timeout included). */
int agent_client_accept(struct agent_client *c, int64_t deadline_ns, char *err, size_t errlen);

/* Take fd (QEMU's connection, accepted on another listening socket: a
 * warm spare's, qemu_spare.h) as the connection, as accept would; the
 * previous one is dropped. fd must be non-blocking and CLOEXEC. */
void agent_client_adopt_conn(struct agent_client *c, int fd);

/* Send Hello and wait for HelloOk (re-sent every 2 s until the deadline, in
 * case the guest opened its port late). hello may be NULL. HelloErr or a
 * version mismatch is an error quoting the agent's message. */
int agent_client_hello(struct agent_client *c, int64_t deadline_ns, struct agent_hello *hello,
		       char *err, size_t errlen);
void agent_hello_free(struct agent_hello *h);

/* Send one request {kind, id, <nfields pairs from build>}; *id gets its id. */
int agent_send(struct agent_client *c, int kind, size_t nfields, agent_build_fn build, void *ctx,
	       int timeout_ms, uint64_t *id, char *err, size_t errlen);

/* Route every request sent from now on to guest worker `worker` (the
 * request gains "worker": worker, and the agent relays it to that worker
 * process); 0 routes to the agent itself again. Returns the previous
 * route, so a caller restores it when done (also on failure). */
uint64_t agent_client_route(struct agent_client *c, uint64_t worker);
/* The current route (0 = the agent itself). */
uint64_t agent_client_current_route(const struct agent_client *c);

/* Wait for the OpResult of id. On timeout the id is abandoned (a late
 * reply is dropped). reply must be freed with agent_reply_free, also on
 * failure. */
int agent_wait(struct agent_client *c, uint64_t id, int timeout_ms, struct agent_reply *reply,
	       char *err, size_t errlen);

/* agent_send + agent_wait. */
int agent_call(struct agent_client *c, int kind, size_t nfields, agent_build_fn build, void *ctx,
	       int timeout_ms, struct agent_reply *reply, char *err, size_t errlen);

void agent_reply_free(struct agent_reply *reply);

/* One chunk of a stream: either data (len > 0) or the end of the channel
 * (eof, no data; error non-empty if the source failed). */
struct agent_chunk {
	unsigned char *data;       /* malloc'd, may be NULL when len == 0 */
	size_t len;
	bool eof;
	char error[256];
};

/* Next chunk of channel: 1 = chunk (data or eof), 0 = timeout, -1 = error
 * (connection broken). After eof the channel is forgotten. */
int agent_stream_next(struct agent_client *c, uint64_t channel, int timeout_ms,
		      struct agent_chunk *chunk, char *err, size_t errlen);

/* Forget a channel locally (after stream_close): its queue is dropped and
 * later StreamData for it is discarded. */
void agent_stream_forget(struct agent_client *c, uint64_t channel);

/* What is in flight on the connection: requests sent and not answered
 * yet (including those whose waiter timed out: the guest may still be
 * running them; their late reply ends them) plus stream channels that
 * carried data and are neither ended nor closed by the host. 0 when
 * quiet (and for NULL). Frames not read yet are not seen: pump first
 * (a Ping round trip) to know. */
int agent_client_pending(const struct agent_client *c);

/* Read and dispatch whatever frames are already readable, without
 * waiting (a paused guest cannot answer a Ping). 0, or -1 if broken. */
int agent_client_drain(struct agent_client *c, char *err, size_t errlen);

/* The same, named: "exec (request 7), stream channel 3" into buf
 * (truncated to len); returns the count. */
size_t agent_client_describe_pending(const struct agent_client *c, char *buf, size_t len);

/* A liveness check for the waits (agent_wait, agent_stream_next, Hello,
 * writes): called at least every interval_ms while a call blocks; when it
 * returns -1 (why filled) the connection breaks with why as the reason and
 * the waiting call fails at once (the qemu backend: a kernel panic on the
 * console, QEMU's exit). NULL fn removes it. Kept across accepts. */
typedef int (*agent_watch_fn)(void *ctx, char *why, size_t whylen);
void agent_client_set_watch(struct agent_client *c, agent_watch_fn fn, void *ctx,
			    int interval_ms);

/* Process-wide: every op wait of every client (request writes, replies,
 * stream chunks) ends by deadline_ns (CLOCK_MONOTONIC) at the latest; 0 = no
 * limit. A reply cut short fails as a timeout "before the test's
 * deadline". The runner sets it around a test's scope teardown, so the
 * per-test timeout bounds closes that talk to a hung guest. */
void agent_client_set_limit(int64_t deadline_ns);
/* Lift the limit for a wait that is bounded on its own (returns the
 * limit in force), then put it back; what the limit cut is kept. */
int64_t agent_client_suspend_limit(void);
void agent_client_restore_limit(int64_t deadline_ns);
/* The op name of the first reply the limit cut short since it was set,
 * or NULL. */
const char *agent_client_limit_cut(void);

/* Non-NULL once the connection is unusable: the reason. */
const char *agent_client_broken(const struct agent_client *c);

/* The connected fd (-1 when none). */
int agent_client_fd(const struct agent_client *c);

/* Mark c as a background client (a warm spare's, qemu_spare.c): its
 * waits ignore the test's limit (agent_client_set_limit) and Ctrl-C, so
 * a thread may use it while the main thread runs the test. */
void agent_client_set_background(struct agent_client *c);

/* Hand over c's connection: its fd (the caller's to close), c left
 * unconnected; -1 (c unchanged) when there is none or it is not clean
 * (broken, bytes of a frame read, a request or stream open). The fd
 * goes to another client with agent_client_adopt_conn, past Hello. */
int agent_client_release_conn(struct agent_client *c);

/* Close the connection (keep listening). */
void agent_client_disconnect(struct agent_client *c);

/* Close everything, unlink the socket path. NULL is fine. */
void agent_client_free(struct agent_client *c);

#endif
