/* qemu_spare.c — warm spare QEMUs, primed in the background (see
 * qemu_spare.h for the policy and the calling sequence).
 *
 * Owns: the table of spares (at most QSPARE_MAX), each with its QEMU
 * process, its run directory "<VM run dir's parent>/spare-XXXXXX" (or
 * /tmp/pvs-XXXXXX when socket paths would not fit), its agent client
 * (listening in that directory) and its priming thread.
 *
 * A spare is matched by its key: the QEMU argv qemu_build_argv makes of
 * the spec with a fixed run directory and no name, plus the identity
 * (device, inode, size, mtime) of the guest RAM file it maps and of the
 * snapshot file its guest is restored from. Everything that reaches QEMU
 * is in the argv (kernel, merged initrd, cmdline, memory, cpus,
 * accelerator, devices, RAM file path) and the guest state is the
 * snapshot's, so a spare can only serve a restore that would have made
 * the very same VM; a RAM file expanded again or a snapshot rewritten
 * (same path, new inode) never matches an old spare.
 *
 * Priming. A thread (one per launched spare) checks the RAM file's
 * digest (unless an earlier spare checked the same, unchanged file:
 * ram_verified), connects QMP, accepts the
 * agent, loads the snapshot's migration stream, `cont`s, answers the
 * agent's Hello, runs one warm-up `sh -c true` (TCG translates the
 * guest's fork/exec path in this QEMU now, not in the test's first op)
 * and `stop`s the guest. Taking a primed spare is then only `cont`.
 * The thread touches nothing but its entry's QEMU, QMP, agent client and
 * its own snapshot reader; the agent client is a background one (the
 * test's limit and Ctrl-C do not apply to it). It ends by writing one
 * byte to done_wr; the main thread joins it before using or dropping
 * the entry. To cut it short, drop() sets cancel and SIGKILLs the QEMU:
 * every wait of the thread then ends at once (EOF, refused).
 *
 * States of one entry: empty -> (prepare) pending: the spec kept ->
 * (launch_pending: at once on an idle host, else at the restored VM's
 * first agent op, so that its start-up burst does not compete with that
 * op for a busy CPU) priming: QEMU spawned, the thread running ->
 * primed (thread ended, prime_rc 0: guest paused after the warm-up) ->
 * (take) handed over, entry empty;
 * or -> (drop: file end, replaced, memory pressure, priming failed)
 * thread stopped, QEMU killed and reaped, directory removed, entry
 * empty. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "errbuf.h"
#include "proto/protocol.h"
#include "psi.h"
#include "snap/snapfile.h"
#include "vmm/agent_client.h"
#include "vmm/agent_codec.h"
#include "vmm/qemu_migrate.h"
#include "vmm/qemu_ramsum.h"
#include "vmm/qemu_spare.h"
#include "vmm/qmp.h"

#define KEY_DIR "/provium-spare-key"
#define PRIME_NS (INT64_C(30) * 1000000000)   /* the whole priming */
#define QMP_MS 10000                          /* one QMP command */
#define WARMUP_MS 10000                       /* the warm-up exec */
#define TAKE_WAIT_NS (INT64_C(10) * 1000000000) /* a take waits this long for priming */
/* Spares per command line: two, so that back-to-back restores of one
 * snapshot (short tests with reset_between_tests or a per-test fixture)
 * find one primed while the other primes. */
#define QSPARE_DEPTH 2

struct spare {
	char *key;                /* NULL = entry empty */
	/* wanted, not launched yet: a deep copy of the spec (its strings in
	 * strs) and the VM's directory, until qspare_launch_pending */
	bool pending;
	struct qemu_spec spec;
	char **strs;
	size_t nstrs;
	char *vm_dir;
	char *snap;               /* the snapshot the guest is restored from */
	bool fast;                /* it has a RAM file: the stream skips RAM */
	char ram[4096];           /* that RAM file ("" = none) */
	char ram_ok[160];         /* its identity when its digest was checked */
	char ram_known[160];      /* ram_verified when launched */
	char dir[108];
	struct qemu_proc proc;
	struct agent_client *ac;  /* listening in dir */
	/* the priming thread, from launch until joined */
	pthread_t thr;
	bool thr_live;
	int done_rd, done_wr;     /* a pipe: the thread writes a byte at its end */
	atomic_bool cancel;
	int prime_rc;             /* 0 = primed */
	bool trace;               /* PROVIUM_TRACE_RESTORE is on */
	char prime_err[256];
	struct qmp *qmp;
	unsigned seq;             /* age: the lowest is replaced first */
};

static struct spare spares[QSPARE_MAX];
static unsigned spare_seq;
/* The identity of the RAM file a joined priming thread last checked the
 * digest of (main thread only; each launch copies it into ram_known):
 * the next spare of an unchanged file need not read it again. */
static char ram_verified[160];

/* the files a spare's QEMU made in its directory, moved to the VM's */
static const char *const moved[] = { "qmp.sock", "console.sock", "console.log", "qemu.log" };

bool qspare_enabled(void)
{
	const char *e = getenv("PROVIUM_SPARE");
	return !(e && !strcmp(e, "0"));
}

/* The identity of file path as key text ("" when it cannot be had):
 * device, inode, size, mtime and, for the RAM file (tag "ram"), ctime
 * (any change to it, even one that keeps the mtime). Not a snapshot's
 * ctime: the fixture cache touches an entry's times on every hit. */
static void file_identity(const char *tag, const char *path, char *buf, size_t len)
{
	struct stat st;
	buf[0] = 0;
	if (!path || stat(path, &st) != 0)
		return;
	snprintf(buf, len, "\x1f%s=%llu:%llu:%lld:%lld.%09ld", tag,
		 (unsigned long long)st.st_dev, (unsigned long long)st.st_ino,
		 (long long)st.st_size, (long long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
	if (!strcmp(tag, "ram")) {
		size_t n = strlen(buf);
		snprintf(buf + n, len - n, ":%lld.%09ld", (long long)st.st_ctim.tv_sec,
			 st.st_ctim.tv_nsec);
	}
}

/* The RAM file named by mem-path= in spec's extra arguments, into path
 * ("" when there is none). */
static void ram_file(const struct qemu_spec *s, char *path, size_t len)
{
	path[0] = 0;
	for (const char *const *e = s->extra; e && *e; e++) {
		const char *m = strstr(*e, "mem-path=");
		if (!m)
			continue;
		m += strlen("mem-path=");
		snprintf(path, len, "%.*s", (int)strcspn(m, ","), m);
		return;
	}
}

/* The identity of spec's RAM file, appended to key text (nothing when
 * there is none). */
static void ram_identity(const struct qemu_spec *s, char *buf, size_t len)
{
	char path[4096];
	ram_file(s, path, sizeof path);
	buf[0] = 0;
	if (path[0])
		file_identity("ram", path, buf, len);
}

/* malloc'd key of spec restoring snapshot snap, or NULL. */
static char *spec_key(const struct qemu_spec *spec, const char *snap)
{
	struct qemu_spec s = *spec;
	char **argv = NULL, err[256], ram[160], sid[160];
	size_t n = 1;
	char *k, *p;

	s.run_dir = KEY_DIR;
	s.name = NULL;
	file_identity("snap", snap, sid, sizeof sid);
	if (!sid[0] || qemu_build_argv(&s, &argv, err, sizeof err) < 0)
		return NULL;
	ram_identity(spec, ram, sizeof ram);
	for (char **a = argv; *a; a++)
		n += strlen(*a) + 1;
	n += strlen(snap) + 1 + strlen(sid) + strlen(ram);
	k = malloc(n);
	if (k) {
		p = k;
		for (char **a = argv; *a; a++) {
			size_t l = strlen(*a);
			memcpy(p, *a, l);
			p += l;
			*p++ = '\x1f';
		}
		sprintf(p, "%s%s%s", snap, sid, ram);
	}
	qemu_argv_free(argv);
	return k;
}

static void path_in(char *buf, size_t len, const char *dir, const char *leaf)
{
	if (qemu_run_path(buf, len, dir, leaf) < 0)
		buf[0] = 0;
}

/* ---- priming (the thread) -------------------------------------------- */

/* PROVIUM_TRACE_RESTORE (read by launch: no getenv in the thread): one
 * line when a priming ends (stdio locks the stream). */
static void prime_trace(struct spare *sp, int64_t t0)
{
	if (!sp->trace || atomic_load(&sp->cancel))
		return;
	if (sp->prime_rc == 0)
		fprintf(stderr, "provium: spare: primed in %.2f ms\n", (double)(qmp_now_ns() - t0) / 1e6);
	else
		fprintf(stderr, "provium: spare: priming failed after %.2f ms: %s\n",
			(double)(qmp_now_ns() - t0) / 1e6, sp->prime_err);
}

static bool cancelled(struct spare *sp)
{
	return atomic_load(&sp->cancel);
}

/* The warm-up: what vm:run("true") sends. Its outcome does not matter
 * (a guest without /bin/sh fails it); a broken connection shows later,
 * when the connection is handed over. */
static void warm_up(struct spare *sp)
{
	static const char *const argv[] = { "sh", "-c", "true", NULL };
	struct vmm_exec_req x = { .file = "/bin/sh", .argv = argv, .timeout_ns = -1 };
	struct agent_req r;
	struct agent_reply rep;
	char err[256];

	agent_req_exec(&r, &x, WARMUP_MS);
	agent_call(sp->ac, PROTO_K_EXEC, agent_req_nfields(&r), agent_req_build, &r,
		   WARMUP_MS + 1000, &rep, err, sizeof err);
	agent_reply_free(&rep);
}

static void *prime_main(void *arg)
{
	struct spare *sp = arg;
	struct snap_reader *r = NULL;
	struct snap_header h;
	char path[4200], *err = sp->prime_err;
	size_t errlen = sizeof sp->prime_err;
	int64_t t0 = qmp_now_ns(), deadline = t0 + PRIME_NS;
	const char *sect;
	uint64_t raw;
	int k;

	/* The RAM file's digest, checked here rather than by the restore
	 * that takes this spare (qspare_ram_checked): unchanged since when
	 * its identity (inode, size, mtime, ctime) is the same. */
	if (sp->ram[0]) {
		char id[160], id2[160];
		file_identity("ram", sp->ram, id, sizeof id);
		if (id[0] && !strcmp(id, sp->ram_known)) {
			/* an earlier spare checked this very file (ram_verified) */
			memcpy(sp->ram_ok, id, sizeof sp->ram_ok);
		} else if (ramsum_check(sp->ram, err, errlen) != 1) {
			goto out;
		}
		file_identity("ram", sp->ram, id2, sizeof id2);
		if (id[0] && !strcmp(id, id2))
			memcpy(sp->ram_ok, id, sizeof sp->ram_ok);
	}
	path_in(path, sizeof path, sp->dir, "qmp.sock");
	while (!sp->qmp) {
		int64_t slice = qmp_now_ns() + 250000000;
		if (cancelled(sp) || qmp_now_ns() >= deadline)
			goto out;
		sp->qmp = qmp_connect(path, slice < deadline ? slice : deadline, err, errlen);
	}
	for (;;) {
		int64_t slice = qmp_now_ns() + 250000000;
		if (agent_client_accept(sp->ac, slice < deadline ? slice : deadline, err, errlen) == 0)
			break;
		if (cancelled(sp) || qmp_now_ns() >= deadline)
			goto out;
	}
	if (snapfile_open(&r, sp->snap, &h, err, errlen) < 0)
		goto out;
	snap_header_free(&h);
	while ((k = snapfile_next_section(r, &sect, &raw, err, errlen)) == 1 &&
	       strcmp(sect, "migration") != 0)
		;
	if (k != 1) {
		if (k == 0)
			err_set(err, errlen, "snapshot `%s`: no `migration` section", sp->snap);
		goto out;
	}
	if (cancelled(sp) || qmig_load_stream(sp->qmp, r, sp->fast, err, errlen) < 0)
		goto out;
	if (cancelled(sp) || qmp_execute(sp->qmp, "cont", NULL, QMP_MS, NULL, err, errlen) < 0)
		goto out;
	if (cancelled(sp) || agent_client_hello(sp->ac, deadline, NULL, err, errlen) < 0)
		goto out;
	if (cancelled(sp))
		goto out;
	warm_up(sp);
	if (cancelled(sp) || qmp_execute(sp->qmp, "stop", NULL, QMP_MS, NULL, err, errlen) < 0)
		goto out;
	sp->prime_rc = 0;
out:
	snapfile_close(r);
	prime_trace(sp, t0);
	if (write(sp->done_wr, "x", 1) < 0) {
		/* the pipe is ours until joined: cannot happen */
	}
	return NULL;
}

/* Wait until the priming thread of sp ended or deadline_ns passed, then
 * join it: 1 primed, 0 failed or still running at the deadline (the
 * thread is then still live). */
static int prime_wait(struct spare *sp, int64_t deadline_ns)
{
	struct pollfd pfd = { .fd = sp->done_rd, .events = POLLIN };
	for (;;) {
		int64_t left = deadline_ns - qmp_now_ns();
		int ms = left <= 0 ? 0 : (int)(left / 1000000) + 1;
		int n = poll(&pfd, 1, ms);
		if (n > 0)
			break;
		if (n == 0 || (n < 0 && errno != EINTR))
			return 0;
	}
	pthread_join(sp->thr, NULL);
	sp->thr_live = false;
	if (sp->ram_ok[0])
		memcpy(ram_verified, sp->ram_ok, sizeof ram_verified);
	return sp->prime_rc == 0;
}

/* ---- the table ------------------------------------------------------- */

/* Stop the thread, kill the spare's QEMU, remove its directory, empty
 * the entry. */
static void drop(struct spare *sp)
{
	char p[4200];
	if (!sp->key)
		return;
	for (size_t i = 0; i < sp->nstrs; i++)
		free(sp->strs[i]);
	free(sp->strs);
	sp->strs = NULL;
	sp->nstrs = 0;
	free(sp->vm_dir);
	sp->vm_dir = NULL;
	free(sp->snap);
	sp->snap = NULL;
	if (sp->pending) {
		sp->pending = false;
		free(sp->key);
		sp->key = NULL;
		return;
	}
	if (sp->thr_live) {
		atomic_store(&sp->cancel, true);
		if (sp->proc.pid > 0 && !sp->proc.reaped)
			kill(sp->proc.pid, SIGKILL);
		pthread_join(sp->thr, NULL);
		sp->thr_live = false;
	}
	qemu_kill(&sp->proc);
	qmp_close(sp->qmp);
	sp->qmp = NULL;
	agent_client_free(sp->ac);   /* also unlinks agent.sock */
	sp->ac = NULL;
	if (sp->done_rd >= 0)
		close(sp->done_rd);
	if (sp->done_wr >= 0)
		close(sp->done_wr);
	sp->done_rd = sp->done_wr = -1;
	for (size_t i = 0; sp->dir[0] && i < sizeof moved / sizeof moved[0]; i++) {
		path_in(p, sizeof p, sp->dir, moved[i]);
		unlink(p);
	}
	if (sp->dir[0])
		rmdir(sp->dir);
	sp->dir[0] = 0;
	free(sp->key);
	sp->key = NULL;
}

void qspare_drop_all(void)
{
	for (int i = 0; i < QSPARE_MAX; i++)
		drop(&spares[i]);
}

int qspare_count(void)
{
	int n = 0;
	for (int i = 0; i < QSPARE_MAX; i++)
		n += spares[i].key != NULL;
	return n;
}

/* Whether entry sp is healthy: wanted, priming with its QEMU alive, or
 * primed. Joins a thread that ended. */
static bool healthy(struct spare *sp)
{
	if (sp->pending)
		return true;
	if (sp->thr_live)
		prime_wait(sp, qmp_now_ns());   /* joins it if it ended */
	return sp->thr_live ? qemu_wait(&sp->proc, 0) == 0 : sp->prime_rc == 0;
}

/* The entry of key to take: a primed one, else the one priming longest,
 * else a wanted one; NULL when none. */
static struct spare *pick(const char *key)
{
	struct spare *best = NULL;
	int rank = 0;
	for (int i = 0; i < QSPARE_MAX; i++) {
		struct spare *sp = &spares[i];
		int r;
		if (!sp->key || strcmp(sp->key, key) != 0)
			continue;
		if (!sp->pending && sp->thr_live)
			prime_wait(sp, qmp_now_ns());
		r = sp->pending ? 1 : sp->thr_live ? 2 : 3;
		if (r > rank || (r == rank && sp->seq < best->seq)) {
			best = sp;
			rank = r;
		}
	}
	return best;
}

/* sp is done priming and checked ram file identity id. */
static bool ram_ok_for(const struct spare *sp, const char *id)
{
	return !sp->thr_live && id[0] && sp->ram_ok[0] && !strcmp(id, sp->ram_ok);
}

int qspare_ram_checked(const char *ram_path, int64_t deadline_ns)
{
	int64_t wait_until = qmp_now_ns() + TAKE_WAIT_NS;
	struct spare *oldest = NULL;
	char id[160];

	if (!qspare_enabled())
		return 0;
	file_identity("ram", ram_path, id, sizeof id);
	/* a spare done priming first; else wait for the one priming longest */
	for (int i = 0; i < QSPARE_MAX; i++) {
		struct spare *sp = &spares[i];
		if (!sp->key || sp->pending || strcmp(sp->ram, ram_path) != 0)
			continue;
		if (sp->thr_live)
			prime_wait(sp, qmp_now_ns());
		if (ram_ok_for(sp, id))
			return 1;
		if (sp->thr_live && (!oldest || sp->seq < oldest->seq))
			oldest = sp;
	}
	if (!oldest)
		return 0;
	prime_wait(oldest, wait_until < deadline_ns ? wait_until : deadline_ns);
	return ram_ok_for(oldest, id);
}

int qspare_take(const struct qemu_spec *spec, const char *snap, const char *vm_dir,
		int64_t deadline_ns, struct qemu_proc *proc, struct qmp **qmp, int *agent_fd)
{
	struct spare *sp;
	char *key, p[4200], to[4200];
	int64_t wait_until = qmp_now_ns() + TAKE_WAIT_NS;
	int fd;

	if (!qspare_count())
		return 0;
	if (!qspare_enabled() || psi_memory_pressured()) {
		qspare_drop_all();
		return 0;
	}
	if (!(key = spec_key(spec, snap)))
		return 0;
	sp = pick(key);
	free(key);
	if (!sp)
		return 0;
	if (sp->pending) {
		drop(sp);  /* never launched: this restore spawns, and wants anew */
		return 0;
	}
	if (sp->thr_live && prime_wait(sp, wait_until < deadline_ns ? wait_until : deadline_ns) != 1) {
		drop(sp);
		return 0;
	}
	if (sp->prime_rc != 0 || qemu_wait(&sp->proc, 0) != 0 ||
	    (fd = agent_client_release_conn(sp->ac)) < 0) {
		drop(sp);
		return 0;
	}
	for (size_t i = 0; i < sizeof moved / sizeof moved[0]; i++) {
		path_in(p, sizeof p, sp->dir, moved[i]);
		path_in(to, sizeof to, vm_dir, moved[i]);
		if (rename(p, to) < 0 && !(errno == ENOENT && i == 1)) {
			close(fd);
			drop(sp);
			return 0;
		}
	}
	*proc = sp->proc;
	*qmp = sp->qmp;
	*agent_fd = fd;
	sp->qmp = NULL;
	memset(&sp->proc, 0, sizeof sp->proc);
	drop(sp);  /* no QEMU any more: only the listener and the directory */
	return 1;
}

/* A fresh directory for a spare next to vm_dir, into sp->dir. */
static int spare_dir(struct spare *sp, const char *vm_dir)
{
	const char *slash = strrchr(vm_dir, '/');
	int n = slash ? snprintf(sp->dir, sizeof sp->dir, "%.*s/spare-XXXXXX",
				 (int)(slash - vm_dir), vm_dir) : -1;
	if (n < 0 || (size_t)n + sizeof "/console.sock" > sizeof sp->dir)
		snprintf(sp->dir, sizeof sp->dir, "/tmp/pvs-XXXXXX");
	return mkdtemp(sp->dir) ? 0 : -1;
}

/* s with every string copied into sp->strs (sp->spec points at them). */
static int copy_spec(struct spare *sp, const struct qemu_spec *s)
{
	size_t nx = 0, cap;
	for (const char *const *e = s->extra; e && *e; e++)
		nx++;
	cap = nx + 6;
	if (!(sp->strs = calloc(cap + nx + 1, sizeof *sp->strs)))
		return -1;
	sp->spec = *s;
	sp->spec.pass_fds = NULL;
	sp->spec.npass_fds = 0;
	const char **fields[] = { &sp->spec.qemu, &sp->spec.name, &sp->spec.kernel,
				  &sp->spec.initrd, &sp->spec.cmdline };
	for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
		if (!*fields[i])
			continue;
		if (!(sp->strs[sp->nstrs] = strdup(*fields[i])))
			return -1;
		*fields[i] = sp->strs[sp->nstrs++];
	}
	if (nx) {
		/* the extra vector: its strings, then the NULL-terminated array */
		char **v = (char **)&sp->strs[cap];
		for (size_t i = 0; i < nx; i++) {
			if (!(sp->strs[sp->nstrs] = strdup(s->extra[i])))
				return -1;
			v[i] = sp->strs[sp->nstrs++];
		}
		v[nx] = NULL;
		sp->spec.extra = (const char *const *)v;
	}
	return 0;
}

/* The entry to replace when the table is full: the newest second spare
 * of some command line if there is one (that command line keeps a
 * spare), else the oldest entry. */
static struct spare *victim(void)
{
	struct spare *v = NULL;
	for (int i = 0; i < QSPARE_MAX; i++) {
		int same = 0;
		for (int j = 0; j < QSPARE_MAX; j++)
			same += spares[j].key && spares[i].key && !strcmp(spares[i].key, spares[j].key);
		if (same >= 2 && (!v || spares[i].seq > v->seq))
			v = &spares[i];
	}
	if (v)
		return v;
	v = &spares[0];
	for (int i = 1; i < QSPARE_MAX; i++)
		if (spares[i].seq < v->seq)
			v = &spares[i];
	return v;
}

/* Fill the empty entry sp with a wanted spare: 0, or -1 (emptied). */
static int want(struct spare *sp, const char *key, const struct qemu_spec *spec,
		const char *snap, bool fast, const char *vm_dir)
{
	if (!(sp->key = strdup(key)))
		return -1;
	sp->pending = true;   /* from here on, drop() cleans up */
	sp->seq = spare_seq++;
	sp->fast = fast;
	ram_file(spec, sp->ram, sizeof sp->ram);
	sp->ram_ok[0] = 0;
	sp->done_rd = sp->done_wr = -1;
	if (copy_spec(sp, spec) < 0 || !(sp->vm_dir = strdup(vm_dir)) || !(sp->snap = strdup(snap))) {
		drop(sp);
		return -1;
	}
	return 0;
}

int qspare_prepare(const struct qemu_spec *spec, const char *snap, bool fast, const char *vm_dir)
{
	char *key;
	int have = 0;

	if (!qspare_enabled() || spec->npass_fds || psi_memory_pressured())
		return 0;
	if (!(key = spec_key(spec, snap)))
		return 0;
	for (int i = 0; i < QSPARE_MAX; i++) {
		struct spare *sp = &spares[i];
		if (!sp->key || strcmp(sp->key, key) != 0)
			continue;
		if (healthy(sp))
			have++;
		else
			drop(sp);   /* its priming failed or its QEMU died */
	}
	/* The first spare of a command line may replace the oldest of
	 * another; the ones after it only take free entries. */
	while (have < QSPARE_DEPTH) {
		struct spare *sp = NULL;
		for (int i = 0; i < QSPARE_MAX && !sp; i++)
			if (!spares[i].key)
				sp = &spares[i];
		if (!sp && have)
			break;
		if (!sp) {
			sp = victim();
			drop(sp);
		}
		if (want(sp, key, spec, snap, fast, vm_dir) < 0)
			break;
		have++;
	}
	free(key);
	return have > 0;
}

/* Launch the pending entry sp and start priming it: 0, or -1 (the entry
 * is dropped). The QEMU is spawned here, by the main thread: its
 * PR_SET_PDEATHSIG follows the thread that forked it. */
static int launch(struct spare *sp)
{
	char path[4200], err[512];
	sigset_t all, old;
	int pfd[2], rc;

	sp->pending = false;   /* from here on, drop() kills and removes */
	sp->dir[0] = 0;
	sp->prime_rc = -1;
	sp->prime_err[0] = 0;
	memcpy(sp->ram_known, ram_verified, sizeof sp->ram_known);
	{
		const char *e = getenv("PROVIUM_TRACE_RESTORE");
		sp->trace = e && *e && strcmp(e, "0") != 0;
	}
	atomic_store(&sp->cancel, false);
	if (spare_dir(sp, sp->vm_dir) < 0)
		goto fail;
	path_in(path, sizeof path, sp->dir, "agent.sock");
	if (!path[0] || !(sp->ac = agent_client_listen("spare", path, err, sizeof err)))
		goto fail;
	agent_client_set_background(sp->ac);
	if (pipe2(pfd, O_CLOEXEC) < 0)
		goto fail;
	sp->done_rd = pfd[0];
	sp->done_wr = pfd[1];
	sp->spec.run_dir = sp->dir;   /* the name stays: most likely the next VM's */
	if (qemu_spawn(&sp->spec, &sp->proc, err, sizeof err) < 0)
		goto fail;
	/* the thread takes no signal: the runner's handlers stay on this one */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = pthread_create(&sp->thr, NULL, prime_main, sp);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0)
		goto fail;
	sp->thr_live = true;
	return 0;
fail:
	drop(sp);
	return -1;
}

void qspare_launch_pending(int max_inflight)
{
	qemu_reap_killed(false);   /* VMs restored over, their kill not waited for */
	bool any = false;
	for (int i = 0; i < QSPARE_MAX; i++)
		any = any || (spares[i].key && spares[i].pending);
	if (!any)
		return;
	if (!qspare_enabled() || psi_memory_pressured()) {
		qspare_drop_all();
		return;
	}
	/* At most max_inflight primings at once (each is a QEMU start and a
	 * guest run beside the test's VM); the rest wait for a later call,
	 * oldest first. */
	for (;;) {
		struct spare *next = NULL;
		int inflight = 0;
		for (int i = 0; i < QSPARE_MAX; i++) {
			struct spare *sp = &spares[i];
			if (!sp->key)
				continue;
			if (sp->pending) {
				if (!next || sp->seq < next->seq)
					next = sp;
				continue;
			}
			if (sp->thr_live)
				prime_wait(sp, qmp_now_ns());
			inflight += sp->thr_live;
		}
		if (!next || inflight >= max_inflight)
			return;
		launch(next);
	}
}
