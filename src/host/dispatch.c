/* dispatch.c — fork-per-file dispatcher (contract in dispatch.h).
 *
 * State per running file (struct job): child pid (= its process group),
 * the read end of its event pipe with an incremental frame reader, start
 * time and deadline, the reservation taken from the pool and the
 * file_result being built. Lifecycle of a job:
 *
 *   queued --(pool fits)--> running --(child reaped)--> finished
 *                             |  deadline: SIGKILL group, timed_out
 *                             |  SIGINT/SIGTERM: SIGKILL every group
 *
 * One poll() loop waits on every pipe and a self-pipe written by the
 * SIGCHLD/SIGINT/SIGTERM handlers; it wakes at least every second for
 * pool_state and the nearest deadline. A child is finished when
 * waitpid() reaps it: its pipe is drained (nothing it wrote is lost),
 * then its whole group is SIGKILLed so no QEMU it started outlives it.
 * End of pipe alone is not trusted, since a grandchild may hold it.
 *
 * The documented event pairs hold even when a runner dies: the raw
 * test_started of the test in flight and the claim_acquired not yet
 * released are kept, and a file that times out or crashes closes them
 * with a synthesised test_failed (reason = the file's failure) and
 * claim_released before its file_completed. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <msgpack.h>

#ifdef __SANITIZE_ADDRESS__
#include <sanitizer/lsan_interface.h>
#endif

#include "errbuf.h"
#include "dispatch.h"
#include "events.h"
#include "fixture/cache.h"
#include "frame.h"
#include "live.h"
#include "luascan.h"
#include "proto/protocol.h"
#include "psi.h"
#include "rundir.h"
#include "units.h"
#include "fsutil.h"
#include "tempfile.h"
#include "vmm/qemu_spare.h"

/* ---- signals and the self-pipe ---- */

static int sig_pipe[2] = { -1, -1 };
static volatile sig_atomic_t got_signal;

static void on_signal(int sig)
{
	int saved = errno;
	if (sig != SIGCHLD && !got_signal)
		got_signal = sig;
	if (sig_pipe[1] >= 0) {
		ssize_t r = write(sig_pipe[1], "x", 1);
		(void)r;
	}
	errno = saved;
}

int dispatch_signals_install(void)
{
	struct sigaction sa;

	if (sig_pipe[0] < 0 && pipe2(sig_pipe, O_CLOEXEC | O_NONBLOCK) < 0)
		return -1;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_RESTART;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sa.sa_flags = SA_RESTART | SA_NOCLDSTOP;
	sigaction(SIGCHLD, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	return 0;
}

int dispatch_pending_signal(void)
{
	return got_signal;
}

static void drain_sig_pipe(void)
{
	char buf[64];
	while (sig_pipe[0] >= 0 && read(sig_pipe[0], buf, sizeof buf) > 0)
		;
}

void dispatch_sleep_ms(int ms)
{
	struct pollfd p = { .fd = sig_pipe[0], .events = POLLIN };
	if (got_signal)
		return;
	poll(&p, sig_pipe[0] >= 0 ? 1 : 0, ms);
	drain_sig_pipe();
}

/* ---- the per-run temp dir (tempfile.c: removed at exit by its owner only) ---- */

int dispatch_tmp_create(char **out, char *err, size_t errlen)
{
	const char *base = temp_base();
	char *t;

	rundir_sweep_stale(base);
	if (!(t = make_temp_dir("provium-run"))) {
		snprintf(err, errlen, "creating a run directory under `%s`: %s", base, strerror(errno));
		return -1;
	}
	if (rundir_mark_owner(t) < 0) {
		snprintf(err, errlen, "writing `%s/owner`: %s", t, strerror(errno));
		temp_remove(t);
		free(t);
		return -1;
	}
	*out = t;
	return 0;
}

/* ---- event helpers ---- */

static void pack_amount(msgpack_packer *pk, struct amount a)
{
	msgpack_pack_map(pk, 2);
	event_pack_str(pk, "memory_bytes");
	msgpack_pack_uint64(pk, a.mem);
	event_pack_str(pk, "cpus");
	msgpack_pack_uint32(pk, a.cpus);
}

static void emit(struct sinks *s, struct event_buf *eb)
{
	sinks_emit(s, eb->sb.data, eb->sb.size);
	event_discard(eb);
}

/* ---- static scan of each file: fixture refs and declared claim ---- */

struct scan {
	char **refs; size_t nrefs;
	bool has_claim, has_mem, has_cpus;
	uint64_t mem; int64_t cpus;
};

static void scan_file(const char *path, struct scan *sc)
{
	struct luascan_result r;
	char err[256];

	memset(sc, 0, sizeof *sc);
	memset(&r, 0, sizeof r);
	luascan_file(path, &r, err, sizeof err); /* partial results are fine */
	for (size_t i = 0; i < r.ncalls; i++) {
		const struct luascan_call *c = &r.calls[i];
		if ((c->fn == LS_VM_FIXTURE || c->fn == LS_LAB_FIXTURE) && c->arg) {
			char *ref = strndup(c->arg, c->arg_len);
			size_t n = ref ? strlen(ref) : 0;
			if (n > 12 && strcmp(ref + n - 12, ".fixture.lua") == 0)
				ref[n - 12] = '\0';
			char **nv = ref ? realloc(sc->refs, (sc->nrefs + 1) * sizeof *nv) : NULL;
			if (!nv) {
				free(ref);
				continue;
			}
			sc->refs = nv;
			sc->refs[sc->nrefs++] = ref;
		} else if (c->fn == LS_CLAIM && c->at_top_level && !sc->has_claim) {
			sc->has_claim = true;
			sc->has_mem = c->has_memory;
			sc->mem = c->memory;
			sc->has_cpus = c->has_cpus;
			sc->cpus = c->cpus;
		}
	}
	luascan_free(&r);
}

static void scan_free(struct scan *sc)
{
	for (size_t i = 0; i < sc->nrefs; i++)
		free(sc->refs[i]);
	free(sc->refs);
}

/* ---- jobs ---- */

struct job {
	size_t idx;
	pid_t pid;
	int fd;
	int ofd;                       /* read end of the capture pipe (fds 1/2) */
	char *line; size_t nline;      /* streamed output: the partial last line */
	struct frame_reader fr;
	int64_t start, deadline;       /* monotonic ns; deadline 0 = none */
	bool timed_out, file_done, reaped, proto_error;
	int wstatus;
	unsigned char *open_test; size_t open_test_len;   /* test_started body */
	unsigned char *open_claim; size_t open_claim_len; /* claim_acquired body */
	struct amount res;
	struct file_result r;
};

struct run {
	const struct dispatch_opts *o;
	const struct file_list *files;
	struct job *jobs;
	size_t njobs, capjobs;
	struct dispatch_outcome *out;
	bool stop;
	/* Rendering is in discovery order, whatever the completion order:
	 * done[i] holds file i's result until every earlier file has been
	 * printed (or will never be: flush_done() at the end). */
	struct file_result **done;
	size_t next_print;
	bool cut;   /* --fail-fast: a failed file was rendered; render no later one */
	size_t ndone;       /* files completed */
	int64_t t0;         /* monotonic start of the run */
	struct live live;   /* the progress line (human output on a terminal) */
	FILE *stream;       /* where streamed runner output goes, or NULL (captured) */
	/* dispatch_run's per-file reservations and admission flags, and its
	 * poll set. Kept here, not in locals, so that a runner forked off
	 * the dispatcher still reaches them (an ASan build checks each
	 * runner for leaks before it exits). */
	struct amount *res;
	bool *blocked, *psi_blocked;
	struct pollfd *pfd;
};

static const msgpack_object *map_get(const msgpack_object *m, const char *key)
{
	size_t n = strlen(key);
	if (!m || m->type != MSGPACK_OBJECT_MAP)
		return NULL;
	for (uint32_t i = 0; i < m->via.map.size; i++) {
		const msgpack_object *k = &m->via.map.ptr[i].key;
		if (k->type == MSGPACK_OBJECT_STR && k->via.str.size == n &&
		    memcmp(k->via.str.ptr, key, n) == 0)
			return &m->via.map.ptr[i].val;
	}
	return NULL;
}

/* malloc'd copy of a str/bin object, or NULL. */
static char *obj_str(const msgpack_object *o)
{
	if (!o)
		return NULL;
	if (o->type == MSGPACK_OBJECT_STR)
		return strndup(o->via.str.ptr, o->via.str.size);
	if (o->type == MSGPACK_OBJECT_BIN)
		return strndup(o->via.bin.ptr, o->via.bin.size);
	return NULL;
}

/* Replace *dst with a copy of body (NULL: just forget it). */
static void keep_body(unsigned char **dst, size_t *dlen, const unsigned char *body, size_t len)
{
	free(*dst);
	*dst = NULL;
	*dlen = 0;
	if (body && (*dst = malloc(len))) {
		memcpy(*dst, body, len);
		*dlen = len;
	}
}

/* The runner died with a test in flight or a claim held: close them with
 * the events it never sent. reason is the file's failure message. */
static void close_open_events(struct run *rn, struct job *j, const char *reason)
{
	msgpack_unpacked u;
	size_t off = 0;
	struct event_buf eb;

	msgpack_unpacked_init(&u);
	if (j->open_test &&
	    msgpack_unpack_next(&u, (const char *)j->open_test, j->open_test_len, &off) == MSGPACK_UNPACK_SUCCESS) {
		const msgpack_object *pl = map_get(&u.data, "payload");
		const msgpack_object *meta = map_get(pl, "meta");
		const msgpack_object *ts = map_get(&u.data, "ts");
		char *name = obj_str(map_get(pl, "name"));
		int64_t dur = 0;

		/* ts comes from the runner: a hostile value (>= 2^63, or
		 * in the future) must not overflow the subtraction. */
		if (ts && ts->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
			uint64_t now = (uint64_t)event_now_ns();
			dur = ts->via.u64 < now ? (int64_t)(now - ts->via.u64) : 0;
		}
		event_begin(&eb, "test_failed");
		msgpack_pack_map(&eb.pk, 6);
		event_pack_str(&eb.pk, "path");
		event_pack_str(&eb.pk, j->r.path);
		event_pack_str(&eb.pk, "name");
		event_pack_str(&eb.pk, name ? name : "?");
		event_pack_str(&eb.pk, "duration_ns");
		msgpack_pack_uint64(&eb.pk, (uint64_t)(dur < 0 ? 0 : dur));
		event_pack_str(&eb.pk, "reason");
		event_pack_str(&eb.pk, reason);
		event_pack_str(&eb.pk, "console_excerpt");
		event_pack_str(&eb.pk, "");
		event_pack_str(&eb.pk, "meta");
		if (meta)
			msgpack_pack_object(&eb.pk, *meta);
		else
			msgpack_pack_map(&eb.pk, 0);
		emit(rn->o->sinks, &eb);
		file_result_add_test(&j->r, name ? name : "?", TS_FAILED, reason);
		file_result_set_duration(&j->r, dur);
		free(name);
	}
	msgpack_unpacked_destroy(&u);
	msgpack_unpacked_init(&u);
	off = 0;
	if (j->open_claim &&
	    msgpack_unpack_next(&u, (const char *)j->open_claim, j->open_claim_len, &off) == MSGPACK_UNPACK_SUCCESS) {
		const msgpack_object *amount = map_get(map_get(&u.data, "payload"), "amount");
		event_begin(&eb, "claim_released");
		msgpack_pack_map(&eb.pk, 2);
		event_pack_str(&eb.pk, "path");
		event_pack_str(&eb.pk, j->r.path);
		event_pack_str(&eb.pk, "amount");
		if (amount)
			msgpack_pack_object(&eb.pk, *amount);
		else
			pack_amount(&eb.pk, (struct amount){ 0 });
		emit(rn->o->sinks, &eb);
	}
	msgpack_unpacked_destroy(&u);
	keep_body(&j->open_test, &j->open_test_len, NULL, 0);
	keep_body(&j->open_claim, &j->open_claim_len, NULL, 0);
}

static void handle_frame(struct run *rn, struct job *j, const unsigned char *body, size_t len)
{
	msgpack_unpacked u;
	size_t off = 0;
	const msgpack_object *kind, *payload;
	char *k = NULL;

	msgpack_unpacked_init(&u);
	if (proto_msgpack_sane(body, len) < 0 ||
	    msgpack_unpack_next(&u, (const char *)body, len, &off) != MSGPACK_UNPACK_SUCCESS ||
	    !(k = obj_str(kind = map_get(&u.data, "kind")))) {
		file_result_add_chunk_error(&j->r, "runner sent a malformed event frame");
		goto out;
	}
	payload = map_get(&u.data, "payload");
	if (k[0] == '_') {
		if (!strcmp(k, "_file_done")) {
			j->file_done = true;
		} else if (!strcmp(k, "_diag")) {
			/* a harness message from the runner: straight to the
			 * user's stderr (the runner's own is captured) */
			char *m = obj_str(map_get(payload, "message"));
			if (m) {
				live_erase(&rn->live);
				fprintf(stderr, "%s\n", m);
				fflush(stderr);
			}
			free(m);
		} else if (!strcmp(k, "_chunk_error")) {
			char *m = obj_str(map_get(payload, "message"));
			file_result_add_chunk_error(&j->r, m ? m : "chunk error");
			free(m);
		} else if (!strcmp(k, "_test_log")) {
			const msgpack_object *lg = map_get(payload, "log");
			struct file_result *r = &j->r;
			free(r->pending_log_name);
			for (size_t i = 0; i < r->npending_log; i++)
				free(r->pending_log[i]);
			free(r->pending_log);
			r->pending_log = NULL;
			r->npending_log = 0;
			r->pending_log_name = obj_str(map_get(payload, "name"));
			if (lg && lg->type == MSGPACK_OBJECT_ARRAY && lg->via.array.size) {
				r->pending_log = calloc(lg->via.array.size, sizeof *r->pending_log);
				for (uint32_t i = 0; r->pending_log && i < lg->via.array.size; i++) {
					char *s = obj_str(&lg->via.array.ptr[i]);
					if (s)
						r->pending_log[r->npending_log++] = s;
				}
			}
		}
		goto out; /* private: never forwarded */
	}
	sinks_emit(rn->o->sinks, body, len);
	if (!strcmp(k, "test_started"))
		keep_body(&j->open_test, &j->open_test_len, body, len);
	else if (!strcmp(k, "claim_acquired"))
		keep_body(&j->open_claim, &j->open_claim_len, body, len);
	else if (!strcmp(k, "claim_released"))
		keep_body(&j->open_claim, &j->open_claim_len, NULL, 0);
	if (!strcmp(k, "test_passed") || !strcmp(k, "test_failed") || !strcmp(k, "test_skipped"))
		keep_body(&j->open_test, &j->open_test_len, NULL, 0);
	if (!strcmp(k, "test_passed") || !strcmp(k, "test_failed") || !strcmp(k, "test_skipped")) {
		char *name = obj_str(map_get(payload, "name"));
		char *reason = k[5] == 'p' ? NULL : obj_str(map_get(payload, "reason"));
		enum test_status st = k[5] == 'p' ? TS_PASSED : k[5] == 'f' ? TS_FAILED : TS_SKIPPED;
		const msgpack_object *d = map_get(payload, "duration_ns");
		file_result_add_test(&j->r, name ? name : "?", st, reason);
		if (st != TS_SKIPPED && d && d->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
			file_result_set_duration(&j->r, d->via.u64 > INT64_MAX ? INT64_MAX : (int64_t)d->via.u64);
		if (st == TS_FAILED) {
			char *con = obj_str(map_get(payload, "console_excerpt"));
			file_result_set_console(&j->r, con);
			free(con);
		}
		free(name);
		free(reason);
	}
out:
	free(k);
	msgpack_unpacked_destroy(&u);
}

#ifdef PROVIUM_FUZZ
/* Fuzzing entry (tests/fuzz/fuzz_events.c), built only with
 * -DPROVIUM_FUZZ: a runner's event stream (the frames --save-events
 * writes) through read_job's frame reader and handle_frame, fed in chunks
 * that end after each byte equal to split, then close_open_events as when
 * the runner dies. Sinks are all off. */
int dispatch_fuzz_events(const unsigned char *data, size_t n, int split);
int dispatch_fuzz_events(const unsigned char *data, size_t n, int split)
{
	struct sinks s = { .save_fd = -1, .stdout_fd = -1, .listen_fd = -1 };
	struct dispatch_opts o = { .sinks = &s };
	struct run rn = { .o = &o };
	struct job j = { .fd = -1 };
	size_t at = 0;
	int rc = 0;

	j.r.path = strdup("fuzz.test.lua");
	frame_reader_init(&j.fr, FRAME_MAX_DEFAULT);
	while (at < n && rc >= 0) {
		const unsigned char *body;
		size_t k = 1, len;

		while (at + k < n && data[at + k - 1] != (unsigned char)split)
			k++;
		if (frame_reader_feed(&j.fr, data + at, k) < 0)
			break;
		at += k;
		while ((rc = frame_reader_next(&j.fr, &body, &len)) == 1)
			handle_frame(&rn, &j, body, len);
	}
	close_open_events(&rn, &j, "runner died");
	frame_reader_free(&j.fr);
	file_result_free(&j.r);
	return 0;
}
#endif

static void read_job(struct run *rn, struct job *j)
{
	unsigned char buf[65536];

	for (;;) {
		ssize_t n = read(j->fd, buf, sizeof buf);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) {
				close(j->fd);
				j->fd = -1;
			}
			return;
		}
		if (j->proto_error)
			continue;
		if (frame_reader_feed(&j->fr, buf, (size_t)n) < 0) {
			file_result_add_chunk_error(&j->r, "dispatcher out of memory reading runner events");
			j->proto_error = true;
			kill(-j->pid, SIGKILL);
			continue;
		}
		const unsigned char *body;
		size_t len;
		int rc;
		while ((rc = frame_reader_next(&j->fr, &body, &len)) == 1)
			handle_frame(rn, j, body, len);
		if (rc < 0) {
			file_result_add_chunk_error(&j->r, "runner sent an oversized event frame (protocol error)");
			j->proto_error = true;
			kill(-j->pid, SIGKILL);
		}
	}
}

static void progress(struct run *rn, bool force)
{
	struct live_progress p = { .done = rn->ndone, .passed = rn->out->totals.passed, .failed = rn->out->totals.failed };
	int64_t now = mono_now_ns();
	const struct job *slow = NULL;

	if (!rn->live.on)
		return;
	for (size_t i = 0; i < rn->njobs; i++) {
		const struct job *j = &rn->jobs[i];
		if (j->reaped)
			continue; /* being finished: already counted as done */
		p.running++;
		for (size_t k = 0; k < j->r.ntests; k++) {
			p.passed += j->r.tests[k].status == TS_PASSED;
			p.failed += j->r.tests[k].status == TS_FAILED;
		}
		if (!slow || j->start < slow->start)
			slow = j;
	}
	p.queued = rn->files->n - rn->ndone - p.running; /* under --fail-fast: never run */
	p.elapsed_ns = now - rn->t0;
	if (slow) {
		p.slowest = slow->r.path;
		p.slowest_ns = now - slow->start;
	}
	live_draw(&rn->live, &p, force);
}

/* Streamed output: write j's complete lines as `[path] line` (all of it,
 * newline added, when final). */
static void stream_lines(struct run *rn, struct job *j, bool final)
{
	size_t off = 0;
	bool any = false;

	for (;;) {
		char *nl = memchr(j->line + off, '\n', j->nline - off);
		size_t n = nl ? (size_t)(nl - (j->line + off)) : j->nline - off;
		if (!nl && !(final && n) && n < 65536)
			break;
		if (!any && rn->stream == rn->o->out)
			live_erase(&rn->live);
		any = true;
		fprintf(rn->stream, "[%s] %.*s\n", j->r.path, (int)n, j->line + off);
		off += n + (nl ? 1 : 0);
	}
	memmove(j->line, j->line + off, j->nline - off);
	j->nline -= off;
	if (any) {
		fflush(rn->stream);
		progress(rn, true);
	}
}

static void take_output(struct run *rn, struct job *j, const char *buf, size_t n)
{
	file_result_add_output(&j->r, buf, n); /* also when streamed: --junit keeps it */
	if (!rn->stream)
		return;
	char *nb = realloc(j->line, j->nline + n);
	if (!nb)
		return;
	j->line = nb;
	memcpy(j->line + j->nline, buf, n);
	j->nline += n;
	stream_lines(rn, j, false);
}

/* Read the capture pipe without blocking: a bounded number of reads from
 * the poll loop (a runner writing without pause cannot hold it), until
 * empty when drain. EOF closes it. */
static void read_output(struct run *rn, struct job *j, bool drain)
{
	char buf[65536];

	for (int k = 0; j->ofd >= 0 && (drain || k < 16); k++) {
		ssize_t n = read(j->ofd, buf, sizeof buf);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) {
				close(j->ofd);
				j->ofd = -1;
			}
			return;
		}
		take_output(rn, j, buf, (size_t)n);
	}
}

/* The job is over: drain its capture pipe, close it, flush its last line. */
static void end_output(struct run *rn, struct job *j)
{
	read_output(rn, j, true);
	if (j->ofd >= 0)
		close(j->ofd);
	j->ofd = -1;
	if (rn->stream)
		stream_lines(rn, j, true);
	free(j->line);
	j->line = NULL;
	j->nline = 0;
}

static void child_main(struct run *rn, struct job *j, int wfd, int ofd)
{
	const struct dispatch_opts *o = rn->o;
	const struct found_file *f = &rn->files->v[j->idx];
	pid_t parent = getppid();
	char *run_dir = NULL;
	struct runner_opts ro;

	signal(SIGINT, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	signal(SIGCHLD, SIG_DFL);
	signal(SIGPIPE, SIG_DFL);
	setpgid(0, 0);
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent)
		_exit(127); /* the dispatcher died before prctl took effect */
	close(sig_pipe[0]);
	close(sig_pipe[1]);
	sig_pipe[0] = sig_pipe[1] = -1;
	for (size_t i = 0; i < rn->njobs; i++) {
		if (rn->jobs[i].fd >= 0)
			close(rn->jobs[i].fd);
		if (rn->jobs[i].ofd >= 0)
			close(rn->jobs[i].ofd);
	}
	sinks_close_in_child(o->sinks);
	/* fds 1 and 2 are the capture pipe: nothing the file prints reaches
	 * the terminal or the frame / JSON stream directly. stdout was
	 * flushed before fork, so its buffering can still be set: line
	 * buffered, so a killed runner loses at most a partial line. */
	if (dup2(ofd, 1) < 0 || dup2(ofd, 2) < 0)
		_exit(126);
	close(ofd);
	setvbuf(stdout, NULL, _IOLBF, 0);
	/* unique per file and per --watch iteration */
	if (asprintf(&run_dir, "%s/%zu-XXXXXX", o->tmp_dir, j->idx) < 0 || !mkdtemp(run_dir))
		_exit(126);
	memset(&ro, 0, sizeof ro);
	ro.cfg = o->cfg;
	ro.path = f->path;
	ro.relpath = f->display;
	ro.roots = o->roots;
	ro.filter = o->filter;
	ro.only = f->tests;
	ro.nonly = f->ntests;
	ro.vmm = o->vmm;
	ro.pool = o->pool;
	ro.run_dir = run_dir;
	ro.event_fd = wfd;
	int rc = runner_main(&ro);
#ifdef __SANITIZE_ADDRESS__
	/* _exit skips LeakSanitizer's atexit check: run it here, so that an
	 * ASan build (make asan) reports what one runner leaked. */
	free(run_dir);
	__lsan_do_leak_check();
#endif
	_exit(rc & 0xff);
}

static int spawn(struct run *rn, size_t idx, struct amount res)
{
	int p[2], c[2];
	struct job *j;

	if (rn->njobs == rn->capjobs) {
		size_t cap = rn->capjobs ? rn->capjobs * 2 : 8;
		struct job *nv = realloc(rn->jobs, cap * sizeof *nv);
		if (!nv)
			return -1;
		rn->jobs = nv;
		rn->capjobs = cap;
	}
	if (pipe2(p, O_CLOEXEC) < 0)
		return -1;
	if (pipe2(c, O_CLOEXEC) < 0) {
		int e = errno;
		close(p[0]);
		close(p[1]);
		errno = e;
		return -1;
	}
	j = &rn->jobs[rn->njobs];
	memset(j, 0, sizeof *j);
	j->idx = idx;
	j->fd = p[0];
	j->ofd = c[0];
	j->res = res;
	j->r.path = strdup(rn->files->v[idx].display);
	frame_reader_init(&j->fr, FRAME_MAX_DEFAULT);
	fflush(NULL);
	j->pid = fork();
	if (j->pid < 0) {
		int e = errno;
		close(p[0]);
		close(p[1]);
		close(c[0]);
		close(c[1]);
		free(j->r.path);
		frame_reader_free(&j->fr);
		errno = e;
		return -1;
	}
	if (j->pid == 0) {
		close(p[0]);
		close(c[0]);
		child_main(rn, j, p[1], c[1]);
	}
	setpgid(j->pid, j->pid); /* also from the parent: no window where -pid is wrong */
	close(p[1]);
	close(c[1]);
	fcntl(j->fd, F_SETFL, fcntl(j->fd, F_GETFL) | O_NONBLOCK);
	fcntl(j->ofd, F_SETFL, fcntl(j->ofd, F_GETFL) | O_NONBLOCK);
	j->start = mono_now_ns();
	j->deadline = rn->o->timeout_ns > 0 ? j->start + rn->o->timeout_ns : 0;
	rn->njobs++;
	return 0;
}

/* Move *r into out->results (for --durations / --junit); *r is left
 * zeroed. On allocation failure the file is just not kept. */
static void keep_result(struct dispatch_outcome *out, struct file_result *r)
{
	struct file_result *k = malloc(sizeof *k);
	struct file_result **nv = realloc(out->results, (out->nresults + 1) * sizeof *nv);
	if (nv)
		out->results = nv;
	if (!k || !nv) {
		free(k);
		return;
	}
	*k = *r;
	memset(r, 0, sizeof *r);
	nv[out->nresults++] = k;
}

/* Render one finished file and count it in the summary, unless
 * --fail-fast already rendered a failed file before it (in render order):
 * like the reference, output stops after the first failed file. */
static void render(struct run *rn, struct file_result *r)
{
	const struct dispatch_opts *o = rn->o;
	struct report_style st = { .verbosity = o->verbosity, .json = o->json, .color = o->color,
				   .show_output = !rn->stream };

	if (rn->cut)
		return;
	live_erase(&rn->live);
	report_file(o->out, r, &st);
	report_totals_add(&rn->out->totals, r);
	if (o->fail_fast && r->status != FS_PASSED)
		rn->cut = true;
	keep_result(rn->out, r);
	progress(rn, true);
}

/* Print the finished results that are next in discovery order; with all,
 * every remaining one (files that never ran leave gaps). */
static void flush_done(struct run *rn, bool all)
{
	while (rn->next_print < rn->files->n) {
		struct file_result *r = rn->done[rn->next_print];
		if (!r && !all)
			return;
		if (r) {
			render(rn, r);
			file_result_free(r);
			free(r);
			rn->done[rn->next_print] = NULL;
		}
		rn->next_print++;
	}
}

/* File idx finished: its file_completed now, its rendering now (human
 * output) or in discovery order (--json). Takes the contents of *r (left
 * zeroed). */
static void complete(struct run *rn, size_t idx, struct file_result *r, int64_t dur)
{
	const struct dispatch_opts *o = rn->o;
	struct event_buf eb;

	r->duration_ns = dur;
	event_begin(&eb, "file_completed");
	msgpack_pack_map(&eb.pk, 3);
	event_pack_str(&eb.pk, "path");
	event_pack_str(&eb.pk, r->path);
	event_pack_str(&eb.pk, "status");
	event_pack_str(&eb.pk, file_status_name(r->status));
	event_pack_str(&eb.pk, "duration_ns");
	msgpack_pack_uint64(&eb.pk, (uint64_t)(dur < 0 ? 0 : dur));
	emit(o->sinks, &eb);
	if (r->status != FS_PASSED) {
		const char *abs = NULL;
		for (size_t i = 0; i < rn->files->n; i++)
			if (!strcmp(rn->files->v[i].display, r->path))
				abs = rn->files->v[i].abs;
		char **nv = realloc(rn->out->failed_abs, (rn->out->nfailed + 1) * sizeof *nv);
		if (nv && abs) {
			rn->out->failed_abs = nv;
			nv[rn->out->nfailed++] = strdup(abs);
		} else if (nv) {
			rn->out->failed_abs = nv;
		}
		if (o->fail_fast)
			rn->stop = true;
	}
	rn->ndone++;
	if (!o->json) {
		render(rn, r);
		return;
	}
	struct file_result *keep = malloc(sizeof *keep);
	if (keep && idx < rn->files->n && !rn->done[idx]) {
		*keep = *r;
		memset(r, 0, sizeof *r);
		rn->done[idx] = keep;
		flush_done(rn, false);
	} else {
		free(keep);
		render(rn, r); /* out of memory: print now */
	}
}

static void finish_job(struct run *rn, struct job *j)
{
	struct file_result *r = &j->r;
	char msg[160];
	int st = j->wstatus;

	if (j->fd >= 0)
		read_job(rn, j);      /* whatever the child wrote before exiting */
	kill(-j->pid, SIGKILL);       /* leftovers of its group (QEMU: own group, PDEATHSIG) */
	if (j->fd >= 0)
		close(j->fd);
	j->fd = -1;
	end_output(rn, j);            /* after the kill: the group wrote its last */
	if (j->timed_out) {
		char secs[32];
		format_seconds(rn->o->timeout_ns, secs, sizeof secs);
		snprintf(msg, sizeof msg, "file timed out after %s", secs);
		file_result_add_chunk_error(r, msg);
		close_open_events(rn, j, msg);
		r->status = FS_TIMED_OUT;
	} else if (!j->file_done || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		if (WIFSIGNALED(st)) {
			const char *ab = sigabbrev_np(WTERMSIG(st));
			if (ab)
				snprintf(msg, sizeof msg, "runner crashed: killed by signal SIG%s", ab);
			else
				snprintf(msg, sizeof msg, "runner crashed: killed by signal %d", WTERMSIG(st));
		} else if (WEXITSTATUS(st) != 0) {
			snprintf(msg, sizeof msg, "runner exited with status %d", WEXITSTATUS(st));
		} else {
			snprintf(msg, sizeof msg, "runner exited without finishing the file");
		}
		file_result_add_chunk_error(r, msg);
		close_open_events(rn, j, msg);
		r->status = FS_CRASHED;
	} else {
		/* A chunk error (the file's top level raised, or would not
		 * load) produced no test outcomes: like the reference's
		 * runner, that file is `crashed`, not `failed`. */
		bool failed = false;
		for (size_t i = 0; i < r->ntests; i++)
			failed |= r->tests[i].status == TS_FAILED;
		r->status = r->chunk_error ? FS_CRASHED : failed ? FS_FAILED : FS_PASSED;
		close_open_events(rn, j, "runner finished without reporting the outcome");
	}
	pool_give(rn->o->pool, j->res);
	complete(rn, j->idx, r, mono_now_ns() - j->start);
	file_result_free(r);
	frame_reader_free(&j->fr);
}

static void emit_pool_state(struct run *rn)
{
	struct event_buf eb;
	event_begin(&eb, "pool_state");
	msgpack_pack_map(&eb.pk, 2);
	event_pack_str(&eb.pk, "used");
	pack_amount(&eb.pk, rn->o->pool->used);
	event_pack_str(&eb.pk, "available");
	pack_amount(&eb.pk, pool_available(rn->o->pool));
	emit(rn->o->sinks, &eb);
}

static void emit_blocked(struct run *rn, const char *path, struct amount a, const char *reason)
{
	struct event_buf eb;
	event_begin(&eb, "file_blocked");
	msgpack_pack_map(&eb.pk, 3);
	event_pack_str(&eb.pk, "path");
	event_pack_str(&eb.pk, path);
	event_pack_str(&eb.pk, "waiting_for");
	pack_amount(&eb.pk, a);
	event_pack_str(&eb.pk, "reason");
	event_pack_str(&eb.pk, reason);
	emit(rn->o->sinks, &eb);
}

/* PSI throttle: is the host too pressured to start another file? Only
 * asked while a file is in flight (an idle run always makes progress, so
 * other work on a shared host can slow a run but never stall it); the
 * answer is re-read at most every 500 ms. */
static bool psi_holds(struct run *rn)
{
	static int64_t last;
	static bool held;
	int64_t now = mono_now_ns();

	if (rn->njobs == 0)
		return false;
	if (!last || now - last >= 500000000) {
		held = psi_pressured();
		last = now;
	}
	return held;
}

int dispatch_run(const struct dispatch_opts *o, const struct file_list *files,
		 struct dispatch_outcome *out, char *err, size_t errlen)
{
	struct run rn = { .o = o, .files = files, .out = out };
	struct amount *res = rn.res = calloc(files->n + 1, sizeof *res);
	bool *blocked = rn.blocked = calloc(files->n + 1, sizeof *blocked);
	bool *psi_blocked = rn.psi_blocked = calloc(files->n + 1, sizeof *psi_blocked);

	rn.done = calloc(files->n + 1, sizeof *rn.done);
	size_t next = 0;
	int64_t last_pool = 0;

	rn.t0 = mono_now_ns();
	/* the progress line: human output only (a JSON reader wants lines) */
	live_init(&rn.live, o->out);
	if (o->json)
		rn.live.on = false;
	rn.stream = o->json ? stderr : o->no_capture ? o->out : NULL;
	int rc = -1;

	memset(out, 0, sizeof *out);
	if (!res || !blocked || !psi_blocked || !rn.done) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	/* file_discovered for every file, before anything is dispatched */
	for (size_t i = 0; i < files->n; i++) {
		struct scan sc;
		struct event_buf eb;
		scan_file(files->v[i].path, &sc);
		res[i] = pool_reservation(o->vmm == VMM_LOCAL, sc.has_mem, sc.mem, sc.has_cpus, sc.cpus);
		if (o->vmm != VMM_LOCAL && qspare_enabled())
			res[i] = pool_with_spares(res[i]);  /* the runner's warm spare QEMUs */
		event_begin(&eb, "file_discovered");
		msgpack_pack_map(&eb.pk, 3);
		event_pack_str(&eb.pk, "path");
		event_pack_str(&eb.pk, files->v[i].display);
		event_pack_str(&eb.pk, "fixture_refs");
		msgpack_pack_array(&eb.pk, sc.nrefs);
		for (size_t k = 0; k < sc.nrefs; k++)
			event_pack_str(&eb.pk, sc.refs[k]);
		event_pack_str(&eb.pk, "declared_claim");
		if (sc.has_claim) {
			struct amount a = { sc.has_mem ? sc.mem : 0,
					    sc.has_cpus && sc.cpus > 0 ? (uint32_t)sc.cpus : 0 };
			pack_amount(&eb.pk, a);
		} else {
			msgpack_pack_nil(&eb.pk);
		}
		emit(o->sinks, &eb);
		scan_free(&sc);
	}

	for (;;) {
		if (got_signal)
			break;
		/* admit FIFO while the pool has room */
		while (!rn.stop && next < files->n) {
			struct amount a = res[next];
			struct event_buf eb;
			char m[512];
			if (pool_exceeds_message(o->pool, a, m, sizeof m)) {
				struct file_result r;
				memset(&r, 0, sizeof r);
				r.path = strdup(files->v[next].display);
				file_result_add_chunk_error(&r, m);
				r.status = FS_CRASHED; /* an infrastructure failure, no test ran */
				complete(&rn, next, &r, 0);
				file_result_free(&r);
				next++;
				continue;
			}
			if (psi_holds(&rn)) {
				if (!psi_blocked[next]) {
					psi_blocked[next] = true;
					emit_blocked(&rn, files->v[next].display, a, "psi_pressure");
				}
				break;
			}
			if (!pool_fits(o->pool, a)) {
				if (!blocked[next]) {
					blocked[next] = true;
					emit_blocked(&rn, files->v[next].display, a, "pool_full");
				}
				break;
			}
			if (spawn(&rn, next, a) < 0) {
				snprintf(err, errlen, "starting a runner for `%s`: %s",
					 files->v[next].display, strerror(errno));
				goto out;
			}
			pool_take(o->pool, a);
			event_begin(&eb, "file_dispatched");
			msgpack_pack_map(&eb.pk, 2);
			event_pack_str(&eb.pk, "path");
			event_pack_str(&eb.pk, files->v[next].display);
			event_pack_str(&eb.pk, "reservation");
			pack_amount(&eb.pk, a);
			emit(o->sinks, &eb);
			next++;
		}
		if (rn.njobs == 0)
			break;

		int64_t now = mono_now_ns();
		if (now - last_pool >= 1000000000) {
			emit_pool_state(&rn);
			last_pool = now;
		}
		int wait_ms = 1000 - (int)((now - last_pool) / 1000000);
		if (rn.live.on && wait_ms > 250)
			wait_ms = 250; /* the progress line's clock */
		for (size_t i = 0; i < rn.njobs; i++) {
			struct job *j = &rn.jobs[i];
			if (j->deadline && !j->timed_out) {
				int64_t d = (j->deadline - now) / 1000000 + 1;
				if (d < wait_ms)
					wait_ms = d < 0 ? 0 : (int)d;
			}
		}
		free(rn.pfd);
		rn.pfd = calloc(2 * rn.njobs + 2, sizeof *rn.pfd);
		if (!rn.pfd) {
			snprintf(err, errlen, "out of memory");
			goto out;
		}
		size_t np = 0;
		rn.pfd[np++] = (struct pollfd){ .fd = sig_pipe[0], .events = POLLIN };
		for (size_t i = 0; i < rn.njobs; i++) {
			rn.pfd[np++] = (struct pollfd){ .fd = rn.jobs[i].fd, .events = POLLIN };
			rn.pfd[np++] = (struct pollfd){ .fd = rn.jobs[i].ofd, .events = POLLIN };
		}
		if (o->sinks->listen_fd >= 0)
			rn.pfd[np++] = (struct pollfd){ .fd = o->sinks->listen_fd, .events = POLLIN };
		if (poll(rn.pfd, np, wait_ms) < 0 && errno != EINTR) {
			snprintf(err, errlen, "poll: %s", strerror(errno));
			goto out;
		}
		drain_sig_pipe();
		sinks_accept(o->sinks);
		for (size_t i = 0; i < rn.njobs; i++) {
			if (rn.jobs[i].fd >= 0 && rn.pfd[2 * i + 1].revents)
				read_job(&rn, &rn.jobs[i]);
			if (rn.jobs[i].ofd >= 0 && rn.pfd[2 * i + 2].revents)
				read_output(&rn, &rn.jobs[i], false);
		}

		/* reap */
		pid_t pid;
		int st;
		while ((pid = waitpid(-1, &st, WNOHANG)) > 0) {
			for (size_t i = 0; i < rn.njobs; i++) {
				if (rn.jobs[i].pid == pid && !rn.jobs[i].reaped) {
					rn.jobs[i].reaped = true;
					rn.jobs[i].wstatus = st;
				}
			}
		}
		/* finish reaped jobs (completion order), enforce deadlines */
		now = mono_now_ns();
		for (size_t i = 0; i < rn.njobs;) {
			struct job *j = &rn.jobs[i];
			if (j->reaped) {
				finish_job(&rn, j);
				rn.jobs[i] = rn.jobs[--rn.njobs];
				continue;
			}
			if (j->deadline && !j->timed_out && now >= j->deadline) {
				j->timed_out = true;
				kill(-j->pid, SIGKILL);
			}
			i++;
		}
		progress(&rn, false);
	}

	if (got_signal) {
		/* Interrupted: kill every runner group, reap them, list the
		 * files that did not finish; what finished is rendered. */
		out->signal = got_signal;
		for (size_t i = 0; i < rn.njobs; i++)
			kill(-rn.jobs[i].pid, SIGKILL);
		out->interrupted = calloc(rn.njobs + 1, sizeof *out->interrupted);
		out->not_run = calloc(files->n - next + 1, sizeof *out->not_run);
		for (size_t i = next; out->not_run && i < files->n; i++)
			if ((out->not_run[out->nnot_run] = strdup(files->v[i].display)))
				out->nnot_run++;
		for (size_t i = 0; i < rn.njobs; i++) {
			waitpid(rn.jobs[i].pid, NULL, 0);
			if (out->interrupted && (out->interrupted[out->ninterrupted] = strdup(rn.jobs[i].r.path)))
				out->ninterrupted++;
			end_output(&rn, &rn.jobs[i]); /* streamed: its last lines */
			if (rn.jobs[i].fd >= 0)
				close(rn.jobs[i].fd);
			pool_give(o->pool, rn.jobs[i].res);
			file_result_free(&rn.jobs[i].r);
			frame_reader_free(&rn.jobs[i].fr);
		}
		rn.njobs = 0;
	}
	rc = 0;
out:
	if (rc < 0) {
		for (size_t i = 0; i < rn.njobs; i++) {
			kill(-rn.jobs[i].pid, SIGKILL);
			waitpid(rn.jobs[i].pid, NULL, 0);
			if (rn.jobs[i].fd >= 0)
				close(rn.jobs[i].fd);
			if (rn.jobs[i].ofd >= 0)
				close(rn.jobs[i].ofd);
			free(rn.jobs[i].line);
			file_result_free(&rn.jobs[i].r);
			frame_reader_free(&rn.jobs[i].fr);
		}
	}
	if (rn.done) {
		flush_done(&rn, true); /* what finished, also when interrupted */
		free(rn.done);
	}
	live_erase(&rn.live); /* the summary follows on a clean line */
	free(rn.jobs);
	free(rn.pfd);
	free(res);
	free(blocked);
	free(psi_blocked);
	return rc;
}

void dispatch_outcome_free(struct dispatch_outcome *out)
{
	for (size_t i = 0; i < out->nfailed; i++)
		free(out->failed_abs[i]);
	free(out->failed_abs);
	for (size_t i = 0; i < out->nresults; i++) {
		file_result_free(out->results[i]);
		free(out->results[i]);
	}
	free(out->results);
	for (size_t i = 0; i < out->ninterrupted; i++)
		free(out->interrupted[i]);
	free(out->interrupted);
	for (size_t i = 0; i < out->nnot_run; i++)
		free(out->not_run[i]);
	free(out->not_run);
	memset(out, 0, sizeof *out);
}
