/* qemu_spare.c — warm spare QEMUs (see qemu_spare.h for the policy and
 * the calling sequence).
 *
 * Owns: the table of spares (at most QSPARE_MAX), each with its QEMU
 * process, its run directory "<VM run dir's parent>/spare-XXXXXX" (or
 * /tmp/pvs-XXXXXX when socket paths would not fit) and the listening
 * agent socket QEMU connected to at start-up.
 *
 * A spare is matched by its key: the QEMU argv qemu_build_argv makes of
 * the spec with a fixed run directory and no name, plus the identity
 * (device, inode, size, mtime) of the guest RAM file it maps. Everything
 * that reaches QEMU is in the argv (kernel, merged initrd, cmdline,
 * memory, cpus, accelerator, devices, RAM file path), so a spare can only
 * serve a restore that would have launched the very same QEMU; a RAM file
 * expanded again (same path, new inode) never matches an old spare.
 *
 * States of one entry: empty -> (prepare) pending: the spec kept ->
 * (launch_pending: at once on an idle host, else at the restored VM's
 * first agent op, so that its start-up burst does not compete with that
 * op for a busy CPU) starting:
 * QEMU spawned, paused, waiting for an incoming migration -> (take)
 * handed over, entry empty;
 * or -> (drop: file end, replaced, memory pressure, dead) killed, reaped,
 * directory removed, entry empty. */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "psi.h"
#include "vmm/qemu_spare.h"
#include "vmm/qmp.h"

#define KEY_DIR "/provium-spare-key"

struct spare {
	char *key;                /* NULL = entry empty */
	/* wanted, not launched yet: a deep copy of the spec (its strings in
	 * strs) and the VM's directory, until qspare_launch_pending */
	bool pending;
	struct qemu_spec spec;
	char **strs;
	size_t nstrs;
	char *vm_dir;
	char dir[108];
	struct qemu_proc proc;
	int lfd;                  /* listening agent socket */
	unsigned seq;             /* age: the lowest is replaced first */
};

static struct spare spares[QSPARE_MAX];
static unsigned spare_seq;

/* the files a spare's QEMU made in its directory, moved to the VM's */
static const char *const moved[] = { "qmp.sock", "console.sock", "console.log", "qemu.log" };

bool qspare_enabled(void)
{
	const char *e = getenv("PROVIUM_SPARE");
	return !(e && !strcmp(e, "0"));
}

/* The identity of the RAM file named by mem-path= in spec's extra
 * arguments, appended to key text (nothing when there is none). */
static void ram_identity(const struct qemu_spec *s, char *buf, size_t len)
{
	buf[0] = 0;
	for (const char *const *e = s->extra; e && *e; e++) {
		const char *m = strstr(*e, "mem-path=");
		struct stat st;
		char path[4096];
		if (!m)
			continue;
		m += strlen("mem-path=");
		snprintf(path, sizeof path, "%.*s", (int)strcspn(m, ","), m);
		if (stat(path, &st) == 0)
			snprintf(buf, len, "\x1f" "ram=%llu:%llu:%lld:%lld.%09ld",
				 (unsigned long long)st.st_dev, (unsigned long long)st.st_ino,
				 (long long)st.st_size, (long long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
		return;
	}
}

/* malloc'd key of spec, or NULL. */
static char *spec_key(const struct qemu_spec *spec)
{
	struct qemu_spec s = *spec;
	char **argv = NULL, err[256], ram[128];
	size_t n = 1;
	char *k, *p;

	s.run_dir = KEY_DIR;
	s.name = NULL;
	if (qemu_build_argv(&s, &argv, err, sizeof err) < 0)
		return NULL;
	ram_identity(spec, ram, sizeof ram);
	for (char **a = argv; *a; a++)
		n += strlen(*a) + 1;
	k = malloc(n + strlen(ram));
	if (k) {
		p = k;
		for (char **a = argv; *a; a++) {
			size_t l = strlen(*a);
			memcpy(p, *a, l);
			p += l;
			*p++ = '\x1f';
		}
		strcpy(p, ram);
	}
	qemu_argv_free(argv);
	return k;
}

static void path_in(char *buf, size_t len, const char *dir, const char *leaf)
{
	if (qemu_run_path(buf, len, dir, leaf) < 0)
		buf[0] = 0;
}

/* Kill the spare's QEMU, remove its directory, empty the entry. */
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
	if (sp->pending) {
		sp->pending = false;
		free(sp->key);
		sp->key = NULL;
		return;
	}
	qemu_kill(&sp->proc);
	if (sp->lfd >= 0)
		close(sp->lfd);
	sp->lfd = -1;
	for (size_t i = 0; sp->dir[0] && i < sizeof moved / sizeof moved[0]; i++) {
		path_in(p, sizeof p, sp->dir, moved[i]);
		unlink(p);
	}
	if (sp->dir[0]) {
		path_in(p, sizeof p, sp->dir, "agent.sock");
		unlink(p);
		rmdir(sp->dir);
	}
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

/* Accept QEMU's agent connection on lfd until deadline; fd or -1. */
static int accept_until(int lfd, int64_t deadline_ns)
{
	for (;;) {
		int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
		if (fd >= 0)
			return fd;
		if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
			return -1;
		int64_t left = deadline_ns - qmp_now_ns();
		if (left <= 0)
			return -1;
		struct pollfd pfd = { .fd = lfd, .events = POLLIN };
		poll(&pfd, 1, (int)(left / 1000000) + 1);
	}
}

int qspare_take(const struct qemu_spec *spec, const char *vm_dir, int64_t deadline_ns,
		struct qemu_proc *proc, struct qmp **qmp, int *agent_fd)
{
	struct spare *sp = NULL;
	struct qmp *q = NULL;
	char *key, p[4200], to[4200], err[512];
	int fd = -1;

	if (!qspare_count())
		return 0;
	if (!qspare_enabled() || psi_memory_pressured()) {
		qspare_drop_all();
		return 0;
	}
	if (!(key = spec_key(spec)))
		return 0;
	for (int i = 0; i < QSPARE_MAX && !sp; i++)
		if (spares[i].key && !strcmp(spares[i].key, key))
			sp = &spares[i];
	free(key);
	if (!sp)
		return 0;
	if (sp->pending) {
		drop(sp);  /* never launched: this restore spawns, and wants anew */
		return 0;
	}
	path_in(p, sizeof p, sp->dir, "qmp.sock");
	while (!q) {
		int64_t slice = qmp_now_ns() + 250000000;
		if (qemu_wait(&sp->proc, 0) != 0 || qmp_now_ns() >= deadline_ns)
			goto fail;
		q = qmp_connect(p, slice < deadline_ns ? slice : deadline_ns, err, sizeof err);
	}
	if ((fd = accept_until(sp->lfd, deadline_ns)) < 0)
		goto fail;
	for (size_t i = 0; i < sizeof moved / sizeof moved[0]; i++) {
		path_in(p, sizeof p, sp->dir, moved[i]);
		path_in(to, sizeof to, vm_dir, moved[i]);
		if (rename(p, to) < 0 && !(errno == ENOENT && i == 1))
			goto fail;
	}
	*proc = sp->proc;
	*qmp = q;
	*agent_fd = fd;
	memset(&sp->proc, 0, sizeof sp->proc);
	drop(sp);  /* no QEMU any more: only the listener and the directory */
	return 1;
fail:
	qmp_close(q);
	if (fd >= 0)
		close(fd);
	drop(sp);
	return 0;
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

int qspare_prepare(const struct qemu_spec *spec, const char *vm_dir)
{
	struct spare *sp = NULL;
	char *key;

	if (!qspare_enabled() || spec->npass_fds || psi_memory_pressured())
		return 0;
	if (!(key = spec_key(spec)))
		return 0;
	for (int i = 0; i < QSPARE_MAX; i++) {
		if (spares[i].key && !strcmp(spares[i].key, key)) {
			if (spares[i].pending || qemu_wait(&spares[i].proc, 0) == 0) {
				free(key);
				return 1;  /* already there */
			}
			drop(&spares[i]);
		}
	}
	for (int i = 0; i < QSPARE_MAX; i++)
		if (!spares[i].key && !sp)
			sp = &spares[i];
	if (!sp) {
		sp = &spares[0];
		for (int i = 1; i < QSPARE_MAX; i++)
			if (spares[i].seq < sp->seq)
				sp = &spares[i];
		drop(sp);
	}
	sp->key = key;   /* from here on, drop() cleans up */
	sp->pending = true;
	sp->seq = spare_seq++;
	sp->lfd = -1;
	if (copy_spec(sp, spec) < 0 || !(sp->vm_dir = strdup(vm_dir))) {
		drop(sp);
		return 0;
	}
	return 1;
}

/* Launch the pending entry sp: 0, or -1 (the entry is dropped). */
static int launch(struct spare *sp)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char err[512];

	sp->pending = false;   /* from here on, drop() kills and removes */
	sp->dir[0] = 0;
	if (spare_dir(sp, sp->vm_dir) < 0)
		goto fail;
	if (qemu_run_path(sa.sun_path, sizeof sa.sun_path, sp->dir, "agent.sock") < 0)
		goto fail;
	sp->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (sp->lfd < 0 || bind(sp->lfd, (struct sockaddr *)&sa, sizeof sa) < 0 ||
	    listen(sp->lfd, 4) < 0)
		goto fail;
	sp->spec.run_dir = sp->dir;   /* the name stays: most likely the next VM's */
	if (qemu_spawn(&sp->spec, &sp->proc, err, sizeof err) < 0)
		goto fail;
	return 0;
fail:
	drop(sp);
	return -1;
}

void qspare_launch_pending(void)
{
	bool any = false;
	for (int i = 0; i < QSPARE_MAX; i++)
		any = any || (spares[i].key && spares[i].pending);
	if (!any)
		return;
	if (!qspare_enabled() || psi_memory_pressured()) {
		qspare_drop_all();
		return;
	}
	for (int i = 0; i < QSPARE_MAX; i++)
		if (spares[i].key && spares[i].pending)
			launch(&spares[i]);
}
