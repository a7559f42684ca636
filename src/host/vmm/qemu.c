/* qemu.c — the `qemu` VMM backend: a real guest under QEMU, driven over
 * QMP (qmp.h) and the agent channel (agent_client.h).
 *
 * This file only wires existing pieces together: qemu_launch.h builds the
 * command line and owns the child, overlay.h builds the initrd the guest
 * boots (profile initrd + agent overlay + boot-opt files), agent_client.h
 * speaks the wire protocol of src/proto/protocol.h.
 *
 * One VM owns a run directory <run_dir>/qemu-<name>-<n>/ (or, when the
 * socket paths would not fit in sun_path, /tmp/pvq-XXXXXX, removed at
 * destroy) holding qmp.sock, agent.sock, console.sock/console.log and
 * qemu.log (see qemu_launch.h).
 *
 * State (lvm.c runs the user-visible state machine; this is ours):
 *
 *     create --boot--> RUNNING --shutdown/power_button--> stopped
 *                        |  ^ reset (warm reboot, same QEMU)
 *                        v
 *                      GONE: QEMU died or the channel broke; every op
 *                      fails fast with the reason, destroy still reaps.
 *
 * Boot: listen on agent.sock, spawn QEMU (it connects as a client), then
 * QMP connect, accept and Hello, each in short slices so that a QEMU that
 * exits early is noticed at once. Any failure kills QEMU and reports its
 * exit status and the tail of the console log.
 *
 * Snapshots (qemu_snap.h moves the bytes): take = quiet channel, stop,
 * RAM section + migration stream, cont; restore = a new QEMU built from
 * the snapshot header (memory, cpus, cmdline, device layout, QEMU
 * version), -incoming defer, cont, Hello, guest clock := host clock.
 * Booted guests keep RAM in an unlinked /dev/shm file mapped share=on
 * (the fast path); restored guests map the expanded RAM privately.
 *
 * Lifetimes: File and Process handles hold a reference on the VM, so a
 * handle closed after the VM was destroyed (Lua finalizer order is not
 * ours to choose) frees nothing twice; its op just does not reach a guest.
 *
 * Errors: 0 / -1 with err filled (no "vm `x`:" prefix: lvm.c adds it);
 * an agent-side errno is put in errno (ENOENT for a missing file) and its
 * strerror text in err. QEMU is spawned from the calling (runner main)
 * thread, as PR_SET_PDEATHSIG requires. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <msgpack.h>

#include "errbuf.h"
#include "config.h"
#include "proto/protocol.h"
#include "snap/snapfile.h"
#include "vmm/agent_client.h"
#include "vmm/guest_ops.h"
#include "vmm/overlay.h"
#include "vmm/qemu_launch.h"
#include "vmm/qemu_snap.h"
#include "vmm/qemu_vm.h"
#include "vmm/rngfeed.h"
#include "vmm/qmp.h"
#include "vmm/vmm.h"

#define DEFAULT_AGENT_TIMEOUT_NS (INT64_C(30) * 1000000000)
#define OP_TIMEOUT_MS 120000      /* file ops and the like */
#define EXEC_GRACE_MS 30000       /* beyond an exec's own timeout */
#define QMP_TIMEOUT_MS 5000
#define KVM_PROBE_MS 5000
#define CONSOLE_TAIL_MAX 2048

struct vmm_vm {
	char *name;
	char *dir;                /* run directory */
	bool dir_tmp;             /* a /tmp fallback: removed at destroy */
	/* the profile, copied at create */
	char *kernel, *initrd, *cmdline, *overlay_path, *accel;
	bool inject_agent;
	int64_t agent_boot_timeout_ns;
	char *profile;            /* profile name (snapshot header) */
	/* as booted or restored (snapshot header) */
	uint64_t memory;          /* bytes, MiB-rounded */
	int cpus;
	bool has_initial_time;
	char *boot_cmdline;       /* the final kernel cmdline */
	/* the boot-opt `files` as the newc archive merged into the initrd
	 * (NULL when none): a snapshot carries it ("boot_files" section) so
	 * the restored QEMU boots the same initrd on vm:reset() */
	unsigned char *boot_cpio;
	size_t boot_cpio_len;
	char *qemu_version;       /* query-version, fetched once */
	/* fast path: guest RAM in an unlinked /dev/shm file QEMU maps
	 * share=on (it opens /proc/<us>/fd/<ram_fd>); -1 when the RAM is
	 * anonymous or a private mapping of a restored snapshot's RAM */
	int ram_fd;
	/* rng_seed: virtio-rng fed from a FIFO by a seeded generator
	 * (rngfeed.c); rng_pid is that generator while the guest runs */
	bool has_rng_seed;
	uint64_t rng_seed;
	pid_t rng_pid;
	/* the running guest */
	struct qemu_proc proc;
	struct qmp *qmp;
	struct agent_client *ac;
	char *gone;               /* why ops fail fast; NULL while usable */
	char pathbuf[4096];       /* qemu_run_path_op's answer */
	int refs;                 /* 1 for the VM + 1 per open file/process */
	bool destroyed;
};

struct vmm_file {
	struct vmm_vm *vm;
	uint64_t handle;
};

struct vmm_proc {
	struct vmm_vm *vm;
	uint64_t handle;
	int64_t pid;
	bool done;                /* the agent freed the handle */
};

static unsigned vm_seq;

/* ---- small helpers -------------------------------------------------- */

static char *xstrdup(const char *s)
{
	return s ? strdup(s) : NULL;
}

/* Strip a leading "vm `<name>`: " (lvm.c adds its own) in place. */
static void strip_vm_prefix(const struct vmm_vm *vm, char *err)
{
	char pre[300];
	size_t n;
	if (!err)
		return;
	n = (size_t)snprintf(pre, sizeof pre, "vm `%s`: ", vm->name);
	if (n < sizeof pre && !strncmp(err, pre, n))
		memmove(err, err + n, strlen(err + n) + 1);
}

static void run_path(const struct vmm_vm *vm, const char *leaf, char *buf, size_t len)
{
	if (qemu_run_path(buf, len, vm->dir, leaf) < 0)
		buf[0] = 0;
}

/* The last max bytes of <dir>/<leaf>, starting at a line boundary when
 * one is near; NUL-terminated, \r removed. malloc'd, or NULL. */
static char *file_tail(const struct vmm_vm *vm, const char *leaf, size_t max, size_t *outlen)
{
	char path[4096], *buf;
	struct stat st;
	off_t off;
	ssize_t n;
	size_t len = 0;
	int fd;

	run_path(vm, leaf, path, sizeof path);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) < 0) {
		if (fd >= 0)
			close(fd);
		return NULL;
	}
	off = st.st_size > (off_t)max ? st.st_size - (off_t)max : 0;
	buf = malloc(max + 1);
	if (!buf) {
		close(fd);
		return NULL;
	}
	while (len < max && (n = pread(fd, buf + len, max - len, off + (off_t)len)) > 0)
		len += (size_t)n;
	close(fd);
	buf[len] = 0;
	if (off > 0) {
		char *nl = memchr(buf, '\n', len);
		if (nl && (size_t)(nl - buf) < len / 2) {
			len -= (size_t)(nl + 1 - buf);
			memmove(buf, nl + 1, len + 1);
		}
	}
	{
		size_t j = 0;
		for (size_t i = 0; i < len; i++)
			if (buf[i] != '\r')
				buf[j++] = buf[i];
		len = j;
		buf[len] = 0;
	}
	if (outlen)
		*outlen = len;
	return buf;
}

/* err = "<what>" + the console tail, fitted into errlen (at most
 * CONSOLE_TAIL_MAX bytes of console). */
static void err_with_console(const struct vmm_vm *vm, char *err, size_t errlen, const char *what)
{
	static const char sep[] = "\n--- console (last lines) ---\n";
	size_t wl = strlen(what), room;
	char *tail;

	if (!err || !errlen)
		return;
	room = errlen > wl + sizeof sep + 1 ? errlen - wl - sizeof sep - 1 : 0;
	if (room > CONSOLE_TAIL_MAX)
		room = CONSOLE_TAIL_MAX;
	tail = room >= 32 ? file_tail(vm, "console.log", room, NULL) : NULL;
	if (tail && *tail)
		err_set(err, errlen, "%s%s%s", what, sep, tail);
	else
		err_set(err, errlen, "%s%s", what, tail ? " (the console log is empty)" : "");
	free(tail);
}

/* The last line of qemu.log (QEMU's own error), or "". */
static void qemu_log_line(const struct vmm_vm *vm, char *buf, size_t len)
{
	char *t = file_tail(vm, "qemu.log", 1024, NULL), *line, *end;
	buf[0] = 0;
	if (!t)
		return;
	end = t + strlen(t);
	while (end > t && (end[-1] == '\n' || end[-1] == ' '))
		*--end = 0;
	line = strrchr(t, '\n');
	line = line ? line + 1 : t;
	if (*line)
		snprintf(buf, len, ": %s", line);
	free(t);
}

/* ---- the QEMU process ----------------------------------------------- */

/* Kill QEMU, reap it, close both channels. Safe to repeat. */
static void stop_guest(struct vmm_vm *vm)
{
	qemu_kill(&vm->proc);
	rngfeed_stop(vm->rng_pid);
	vm->rng_pid = 0;
	qmp_close(vm->qmp);
	vm->qmp = NULL;
	if (vm->ram_fd >= 0)
		close(vm->ram_fd);
	vm->ram_fd = -1;
	if (vm->ac)
		agent_client_disconnect(vm->ac);
}

/* Mark the VM unusable with reason (ops then fail fast with it). */
static void set_gone(struct vmm_vm *vm, const char *reason)
{
	if (!vm->gone)
		vm->gone = strdup(reason);
}

/* After a failed channel operation: if QEMU has exited (or does so
 * within wait_ms), describe that with the console tail into err and mark
 * the VM gone. Returns true when QEMU is gone. */
static bool check_qemu_died(struct vmm_vm *vm, int wait_ms, char *err, size_t errlen)
{
	char st[160], what[512], line[300];
	if (vm->proc.pid <= 0 && !vm->proc.reaped)
		return false;
	if (vm->proc.pid > 0 && qemu_wait(&vm->proc, wait_ms) != 1)
		return false;
	qemu_describe_status(&vm->proc, st, sizeof st);
	qemu_log_line(vm, line, sizeof line);
	snprintf(what, sizeof what, "QEMU %s%s", st, line);
	err_with_console(vm, err, errlen, what);
	set_gone(vm, err);
	stop_guest(vm);
	return true;
}

static int fail_gone(struct vmm_vm *vm, char *err, size_t errlen)
{
	err_set(err, errlen, "the VM is gone: %s", vm->gone);
	errno = EIO;
	return -1;
}

/* ---- requests --------------------------------------------------------- */

enum ftype { F_STR, F_BIN, F_INT, F_BOOL, F_STRV, F_ENV, F_INTS };

struct fld {
	const char *key;
	enum ftype t;
	const char *s;            /* F_STR, F_BIN */
	size_t n;                 /* F_BIN length, F_INTS count */
	int64_t i;                /* F_INT, F_BOOL */
	const char *const *v;     /* F_STRV, F_ENV ("K=V") */
	const int64_t *iv;        /* F_INTS */
};

struct req {
	struct fld f[12];
	size_t n;
};

static void add_str(struct req *r, const char *k, const char *s)
{
	r->f[r->n++] = (struct fld){ .key = k, .t = F_STR, .s = s };
}

static void add_bin(struct req *r, const char *k, const void *p, size_t n)
{
	r->f[r->n++] = (struct fld){ .key = k, .t = F_BIN, .s = p ? p : "", .n = n };
}

static void add_int(struct req *r, const char *k, int64_t i)
{
	r->f[r->n++] = (struct fld){ .key = k, .t = F_INT, .i = i };
}

static void add_bool(struct req *r, const char *k, bool b)
{
	r->f[r->n++] = (struct fld){ .key = k, .t = F_BOOL, .i = b };
}

static void build(msgpack_packer *pk, void *ctx)
{
	const struct req *r = ctx;
	for (size_t i = 0; i < r->n; i++) {
		const struct fld *f = &r->f[i];
		size_t n = 0;
		proto_pack_key(pk, f->key);
		switch (f->t) {
		case F_STR:
			proto_pack_cstr(pk, f->s);
			break;
		case F_BIN:
			proto_pack_bytes(pk, f->s, f->n);
			break;
		case F_INT:
			msgpack_pack_int64(pk, f->i);
			break;
		case F_BOOL:
			if (f->i)
				msgpack_pack_true(pk);
			else
				msgpack_pack_false(pk);
			break;
		case F_STRV:
			while (f->v[n])
				n++;
			msgpack_pack_array(pk, n);
			for (size_t j = 0; j < n; j++)
				proto_pack_cstr(pk, f->v[j]);
			break;
		case F_ENV:
			while (f->v[n])
				n++;
			msgpack_pack_map(pk, n);
			for (size_t j = 0; j < n; j++) {
				const char *eq = strchr(f->v[j], '=');
				size_t kl = eq ? (size_t)(eq - f->v[j]) : strlen(f->v[j]);
				msgpack_pack_str(pk, kl);
				msgpack_pack_str_body(pk, f->v[j], kl);
				proto_pack_cstr(pk, eq ? eq + 1 : "");
			}
			break;
		case F_INTS:
			msgpack_pack_array(pk, f->n);
			for (size_t j = 0; j < f->n; j++)
				msgpack_pack_int64(pk, f->iv[j]);
			break;
		}
	}
}

/* One request/response with the agent. On failure err says why (without
 * the "vm `x`:" prefix); an agent-side errno is left in errno. reply must
 * be freed by the caller on success only. */
static int call(struct vmm_vm *vm, int kind, const struct req *r, int timeout_ms,
		struct agent_reply *reply, char *err, size_t errlen)
{
	int rc;
	memset(reply, 0, sizeof *reply);
	if (vm->gone)
		return fail_gone(vm, err, errlen);
	if (!vm->ac || agent_client_fd(vm->ac) < 0) {
		err_set(err, errlen, "the VM is not running");
		errno = EIO;
		return -1;
	}
	rc = agent_call(vm->ac, kind, r ? r->n : 0, build, (void *)(uintptr_t)r, timeout_ms,
			reply, err, errlen);
	if (rc == 0)
		return 0;
	if (reply->code[0]) {
		/* The agent answered "err": its message, its errno. */
		int e = reply->err_no ? reply->err_no : EIO;
		err_set(err, errlen, "%s", reply->message);
		agent_reply_free(reply);
		errno = e;
		return -1;
	}
	agent_reply_free(reply);
	strip_vm_prefix(vm, err);
	if (agent_client_broken(vm->ac)) {
		/* EOF usually means QEMU went away: say so, with the console. */
		if (!check_qemu_died(vm, 1000, err, errlen))
			set_gone(vm, err);
	} else {
		check_qemu_died(vm, 0, err, errlen);
	}
	errno = EIO;
	return -1;
}

/* Call with a request and ignore the value. */
static int call_nil(struct vmm_vm *vm, int kind, const struct req *r, char *err, size_t errlen)
{
	struct agent_reply rep;
	if (call(vm, kind, r, OP_TIMEOUT_MS, &rep, err, errlen) < 0)
		return -1;
	agent_reply_free(&rep);
	return 0;
}

static int bad_reply(struct agent_reply *rep, const char *what, char *err, size_t errlen)
{
	agent_reply_free(rep);
	err_set(err, errlen, "malformed reply from the agent (%s)", what);
	errno = EPROTO;
	return -1;
}

/* ---- create / boot ---------------------------------------------------- */

static int qemu_create(struct vmm_vm **out, const struct vmm_create_args *a,
		       char *err, size_t errlen)
{
	struct vmm_vm *vm = calloc(1, sizeof *vm);
	const struct vmm_profile *p = a->profile;
	struct sockaddr_un sa;

	if (!vm)
		goto oom;
	vm->refs = 1;
	vm->ram_fd = -1;
	vm->name = strdup(a->name);
	vm->profile = xstrdup(p->name);
	vm->kernel = xstrdup(p->kernel);
	vm->initrd = xstrdup(p->initrd);
	vm->cmdline = xstrdup(p->cmdline);
	vm->overlay_path = xstrdup(p->agent_overlay_path);
	vm->accel = strdup(p->accel ? p->accel : "auto");
	vm->inject_agent = p->inject_agent;
	vm->agent_boot_timeout_ns = p->agent_boot_timeout_ns;
	if (!vm->name || !vm->accel || (p->kernel && !vm->kernel) || (p->initrd && !vm->initrd) ||
	    (p->cmdline && !vm->cmdline) || (p->agent_overlay_path && !vm->overlay_path))
		goto oom;
	for (;;) {
		char *dir, *leaf;
		if (asprintf(&dir, "%s/qemu-%s-%u", a->run_dir, a->name, vm_seq++) < 0)
			goto oom;
		leaf = strrchr(dir, '/') + 1;
		for (char *c = leaf; *c; c++)
			if (!(isalnum((unsigned char)*c) || *c == '-' || *c == '_' || *c == '.'))
				*c = '_';
		if (strlen(dir) + sizeof "/console.sock" > sizeof sa.sun_path) {
			/* Unix socket paths must fit sun_path: a short dir instead. */
			free(dir);
			dir = strdup("/tmp/pvq-XXXXXX");
			if (!dir)
				goto oom;
			if (!mkdtemp(dir)) {
				err_set(err, errlen, "mkdtemp `/tmp/pvq-XXXXXX`: %s", strerror(errno));
				free(dir);
				goto fail;
			}
			vm->dir = dir;
			vm->dir_tmp = true;
			break;
		}
		if (mkdir(dir, 0755) == 0) {
			vm->dir = dir;
			break;
		}
		if (errno != EEXIST) {
			err_set(err, errlen, "mkdir `%s`: %s", dir, strerror(errno));
			free(dir);
			goto fail;
		}
		free(dir);
	}
	*out = vm;
	return 0;
oom:
	err_set(err, errlen, "out of memory");
fail:
	if (vm) {
		free(vm->name); free(vm->kernel); free(vm->initrd); free(vm->cmdline);
		free(vm->overlay_path); free(vm->accel); free(vm->profile); free(vm);
	}
	return -1;
}

/* $XDG_CACHE_HOME/provium or ~/.cache/provium; malloc'd or NULL. */
static char *cache_root(void)
{
	const char *x = getenv("XDG_CACHE_HOME"), *h = getenv("HOME");
	char *p = NULL;
	if (x && *x == '/') {
		if (asprintf(&p, "%s/provium", x) < 0)
			p = NULL;
	} else if (h && *h) {
		if (asprintf(&p, "%s/.cache/provium", h) < 0)
			p = NULL;
	} else if (asprintf(&p, "/tmp/provium-cache-%d", (int)getuid()) < 0) {
		p = NULL;
	}
	return p;
}

/* The base cmdline with extra parameters inserted before a standalone
 * "--" (what follows it belongs to init). malloc'd. */
static char *cmdline_with(const char *base, const char *extra)
{
	const char *dd = NULL, *s = base ? base : "";
	char *out;
	for (const char *p = s; *p; p++) {
		if (p[0] == '-' && p[1] == '-' && (p == s || isspace((unsigned char)p[-1])) &&
		    (p[2] == 0 || isspace((unsigned char)p[2]))) {
			dd = p;
			break;
		}
	}
	if (!extra || !*extra)
		return strdup(s);
	if (!dd) {
		if (asprintf(&out, "%s%s%s", s, *s ? " " : "", extra) < 0)
			return NULL;
	} else if (asprintf(&out, "%.*s%s %s", (int)(dd - s), s, extra, dd) < 0) {
		return NULL;
	}
	return out;
}

/* Build the final kernel cmdline for these opts. malloc'd into *out. */
static int boot_cmdline(const struct vmm_vm *vm, const struct vmm_boot_opts *o, char **out,
			char *err, size_t errlen)
{
	char extra[4096] = "", *base;
	size_t n = 0;
	int rc;
	if (o->kernel_cmdline_append && *o->kernel_cmdline_append)
		n += (size_t)snprintf(extra + n, sizeof extra - n, "%s", o->kernel_cmdline_append);
	if (o->has_initial_time && n < sizeof extra)
		n += (size_t)snprintf(extra + n, sizeof extra - n, "%sprovium.time_ns=%lld",
				      n ? " " : "", (long long)(o->initial_time * 1e9));
	if (n >= sizeof extra) {
		err_set(err, errlen, "kernel_cmdline_append is too long");
		return -1;
	}
	base = cmdline_with(o->kernel_cmdline ? o->kernel_cmdline : vm->cmdline, extra);
	if (!base) {
		err_set(err, errlen, "out of memory");
		return -1;
	}
	rc = qemu_cmdline_assemble(base, vm->inject_agent, out, err, errlen);
	free(base);
	return rc;
}

/* The boot-opt files as one newc archive; *cpio NULL when there are none. */
static int boot_files_cpio(const struct vmm_boot_opts *o, unsigned char **cpio, size_t *len,
			   char *err, size_t errlen)
{
	struct overlay_file *files;
	int rc;
	*cpio = NULL;
	*len = 0;
	if (!o->nfiles)
		return 0;
	files = calloc(o->nfiles, sizeof *files);
	if (!files) {
		err_set(err, errlen, "out of memory");
		return -1;
	}
	for (size_t i = 0; i < o->nfiles; i++)
		files[i] = (struct overlay_file){
			.path = o->files[i].path, .data = o->files[i].content,
			.len = o->files[i].len,
			.mode = o->files[i].mode < 0 ? 0 : (unsigned)o->files[i].mode,
		};
	rc = overlay_files_cpio(files, o->nfiles, cpio, len, err, errlen);
	free(files);
	return rc;
}

/* The initrd QEMU gets: the profile's, merged with the agent overlay and
 * the boot-files archive (cpio, from boot_files_cpio or a snapshot) when
 * there are any. *out malloc'd (NULL = none). */
static int boot_initrd(const struct vmm_vm *vm, const unsigned char *cpio, size_t cpio_len,
		       char **out, char *err, size_t errlen)
{
	struct overlay_part parts[3];
	char *ovl = NULL, *root = NULL;
	size_t np = 0;
	int rc = -1;

	*out = NULL;
	if (!vm->inject_agent && !cpio_len) {
		if (vm->initrd && !(*out = strdup(vm->initrd))) {
			err_set(err, errlen, "out of memory");
			return -1;
		}
		return 0;
	}
	if (vm->initrd)
		parts[np++] = (struct overlay_part){ .path = vm->initrd };
	if (vm->inject_agent) {
		if (overlay_find(vm->overlay_path, NULL, &ovl, err, errlen) < 0)
			goto out;
		parts[np++] = (struct overlay_part){ .path = ovl };
	}
	if (cpio_len)
		parts[np++] = (struct overlay_part){ .data = cpio, .len = cpio_len };
	root = cache_root();
	if (!root) {
		err_set(err, errlen, "no cache directory ($HOME unset)");
		goto out;
	}
	rc = overlay_merge(root, parts, np, out, err, errlen);
out:
	free(ovl);
	free(root);
	return rc;
}

static bool file_exists(const char *p)
{
	struct stat st;
	return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

/* Wait for QMP (when qmp is non-NULL), QEMU's connection to agent.sock
 * (when accept) and HelloOk, in slices
 * so that an early QEMU exit is seen at once. 0, or -1 with err. */
static int handshake(struct vmm_vm *vm, struct qemu_proc *proc, struct qmp **qmp,
		     struct agent_client *ac, bool accept, int64_t deadline, char *err, size_t errlen)
{
	char path[4096];
	int64_t slice;

	run_path(vm, "qmp.sock", path, sizeof path);
	while (qmp && !*qmp) {
		if (qemu_wait(proc, 0) != 0)
			return -1;
		slice = qmp_now_ns() + 250000000;
		*qmp = qmp_connect(path, slice < deadline ? slice : deadline, err, errlen);
		if (!*qmp && qmp_now_ns() >= deadline)
			return -1;
	}
	while (accept) {
		if (qemu_wait(proc, 0) != 0)
			return -1;
		slice = qmp_now_ns() + 250000000;
		if (agent_client_accept(ac, slice < deadline ? slice : deadline, err, errlen) == 0)
			break;
		if (qmp_now_ns() >= deadline)
			return -1;
	}
	for (;;) {
		if (qemu_wait(proc, 0) != 0)
			return -1;
		slice = qmp_now_ns() + 1000000000;
		if (agent_client_hello(ac, slice < deadline ? slice : deadline, NULL, err, errlen) == 0)
			return 0;
		if (agent_client_broken(ac) || strstr(err, "refused the handshake") ||
		    qmp_now_ns() >= deadline)
			return -1;
	}
}

/* accel = "auto" probe: boot the same guest under KVM to the agent
 * handshake before the deadline. */
struct probe_ctx {
	const char *kernel, *initrd, *cmdline;
};

static int kvm_probe(void *vctx, int64_t deadline, char *err, size_t errlen)
{
	const struct probe_ctx *p = vctx;
	char dir[] = "/tmp/pvk-XXXXXX", path[4096];
	struct vmm_vm tmp = { .name = (char *)(uintptr_t)"kvm-probe", .dir = dir };
	struct agent_client *ac = NULL;
	struct qemu_proc proc = { 0 };
	int rc = -1;
	static const char *const leaves[] = { "qmp.sock", "agent.sock", "console.sock",
		"console.log", "qemu.log" };

	if (!mkdtemp(dir)) {
		err_set(err, errlen, "mkdtemp: %s", strerror(errno));
		return -1;
	}
	run_path(&tmp, "agent.sock", path, sizeof path);
	ac = agent_client_listen("kvm-probe", path, err, errlen);
	if (ac) {
		struct qemu_spec s = {
			.name = "provium-kvm-probe", .run_dir = dir, .kernel = p->kernel,
			.initrd = p->initrd, .cmdline = p->cmdline, .memory = QEMU_DEFAULT_MEMORY,
			.cpus = 1, .accel = ACCEL_KVM, .agent = true, .console = true,
		};
		if (qemu_spawn(&s, &proc, err, errlen) == 0) {
			rc = handshake(&tmp, &proc, NULL, ac, true, deadline, err, errlen);
			if (rc < 0 && qemu_wait(&proc, 0) == 1)
				err_set(err, errlen, "the KVM guest exited before the handshake");
			else if (rc < 0)
				err_set(err, errlen, "timed out");
		}
	}
	qemu_kill(&proc);
	agent_client_free(ac);
	for (size_t i = 0; i < sizeof leaves / sizeof leaves[0]; i++) {
		run_path(&tmp, leaves[i], path, sizeof path);
		unlink(path);
	}
	rmdir(dir);
	return rc;
}

static enum accel_kind pick_accel(const struct vmm_vm *vm, const char *initrd, const char *cmdline)
{
	const char *env = getenv("PROVIUM_ACCEL");
	const char *a = env && *env ? env : vm->accel;
	struct probe_ctx ctx = { .kernel = vm->kernel, .initrd = initrd, .cmdline = cmdline };
	struct qemu_accel_probe pr = {
		.kernel = vm->kernel, .timeout_ms = KVM_PROBE_MS, .boot = kvm_probe, .ctx = &ctx,
	};
	char why[256];
	if (!strcmp(a, "kvm"))
		return ACCEL_KVM;
	if (!strcmp(a, "tcg"))
		return ACCEL_TCG;
	return qemu_accel_resolve(ACCEL_AUTO, &pr, why, sizeof why);
}

/* ---- guest RAM (the snapshot fast path) ------------------------------- */

static uint64_t mem_rounded(uint64_t m)
{
	if (!m)
		m = QEMU_DEFAULT_MEMORY;
	return (m + (1u << 20) - 1) & ~(uint64_t)((1u << 20) - 1);
}

/* PROVIUM_SNAP_FAST=0 keeps guest RAM anonymous (snapshots then carry it
 * in the migration stream). */
static bool fast_path_enabled(void)
{
	const char *e = getenv("PROVIUM_SNAP_FAST");
	return !(e && !strcmp(e, "0"));
}

/* The extra QEMU arguments that put guest RAM in a memory-backend-file. */
struct ram_args {
	char obj[4200];
	const char *v[5];
};

static void ram_args_set(struct ram_args *ra, const char *mem_path, uint64_t size, bool share)
{
	snprintf(ra->obj, sizeof ra->obj,
		 "memory-backend-file,id=pc.ram,size=%llu,mem-path=%s,share=%s",
		 (unsigned long long)size, mem_path, share ? "on" : "off");
	ra->v[0] = "-object";
	ra->v[1] = ra->obj;
	ra->v[2] = "-machine";
	ra->v[3] = "memory-backend=pc.ram";
	ra->v[4] = NULL;
}

/* The QEMU arguments of one boot or restore beyond qemu_launch's own:
 * guest RAM in a file (ram_args) and the seeded virtio-rng. */
struct extra_args {
	char rng_obj[4200];
	const char *v[10];
	size_t n;
};

static void extra_add_ram(struct extra_args *x, const struct ram_args *ra)
{
	for (size_t i = 0; ra->v[i]; i++)
		x->v[x->n++] = ra->v[i];
	x->v[x->n] = NULL;
}

/* With rng_seed: start the generator on <run dir>/rng.fifo and add a
 * virtio-rng-pci device reading it. 0, or -1 with err. */
static int extra_add_rng(struct vmm_vm *vm, struct extra_args *x, char *err, size_t errlen)
{
	char fifo[4096];
	if (!vm->has_rng_seed)
		return 0;
	run_path(vm, "rng.fifo", fifo, sizeof fifo);
	unlink(fifo);
	if (rngfeed_start(fifo, vm->rng_seed, &vm->rng_pid, err, errlen) < 0)
		return -1;
	snprintf(x->rng_obj, sizeof x->rng_obj, "rng-random,id=rng0,filename=%s", fifo);
	x->v[x->n++] = "-object";
	x->v[x->n++] = x->rng_obj;
	x->v[x->n++] = "-device";
	x->v[x->n++] = "virtio-rng-pci,rng=rng0";
	x->v[x->n] = NULL;
	return 0;
}

/* Booted guests: RAM in an unlinked file on /dev/shm (tmpfs: no disk
 * writeback, gone when both we and QEMU close it, even after SIGKILL).
 * QEMU maps it share=on, so a snapshot reads the pages from our fd with
 * the VM stopped. 0, or -1 when no such file can be had (anonymous RAM
 * then; not an error). */
static int ram_shared_file(struct vmm_vm *vm, uint64_t size, struct ram_args *ra)
{
	char tmpl[] = "/dev/shm/provium-ram-XXXXXX", mp[64];
	int fd = mkostemp(tmpl, O_CLOEXEC);
	if (fd < 0)
		return -1;
	unlink(tmpl);
	if (ftruncate(fd, (off_t)size) < 0) {
		close(fd);
		return -1;
	}
	snprintf(mp, sizeof mp, "/proc/%d/fd/%d", (int)getpid(), fd);
	ram_args_set(ra, mp, size, true);
	vm->ram_fd = fd;
	return 0;
}

static int qemu_boot(struct vmm_vm *vm, const struct vmm_boot_opts *o,
		     struct vmm_boot_info *info, char *err, size_t errlen)
{
	char *initrd = NULL, *cmdline = NULL, path[4096];
	unsigned char *cpio = NULL;
	size_t cpio_len = 0;
	int64_t timeout = o->agent_timeout_ns > 0 ? o->agent_timeout_ns :
			  vm->agent_boot_timeout_ns > 0 ? vm->agent_boot_timeout_ns :
			  DEFAULT_AGENT_TIMEOUT_NS;
	int64_t deadline;
	int rc = -1;

	if (!vm->kernel || !*vm->kernel) {
		err_set(err, errlen, "profile has no kernel");
		return -1;
	}
	if (!file_exists(vm->kernel)) {
		err_set(err, errlen, "kernel `%s` not found (run `make guest` for the default profile)",
		       vm->kernel);
		return -1;
	}
	if (vm->initrd && !file_exists(vm->initrd)) {
		err_set(err, errlen, "initrd `%s` not found (run `make guest` for the default profile)",
		       vm->initrd);
		return -1;
	}
	if (boot_cmdline(vm, o, &cmdline, err, errlen) < 0 ||
	    boot_files_cpio(o, &cpio, &cpio_len, err, errlen) < 0 ||
	    boot_initrd(vm, cpio, cpio_len, &initrd, err, errlen) < 0)
		goto out;

	free(vm->gone);
	vm->gone = NULL;
	if (!vm->ac) {
		run_path(vm, "agent.sock", path, sizeof path);
		vm->ac = agent_client_listen(vm->name, path, err, errlen);
		if (!vm->ac) {
			strip_vm_prefix(vm, err);
			goto out;
		}
	}
	vm->has_rng_seed = o->has_rng_seed;
	vm->rng_seed = o->rng_seed;
	{
		struct ram_args ra;
		struct extra_args xa = { .n = 0 };
		uint64_t mem = mem_rounded(o->memory);
		struct qemu_spec s = {
			.name = vm->name, .run_dir = vm->dir, .kernel = vm->kernel, .initrd = initrd,
			.cmdline = cmdline, .memory = mem, .cpus = o->cpus,
			.accel = pick_accel(vm, initrd, cmdline), .agent = true, .console = true,
			.vmgenid = true,
		};
		if (vm->ram_fd >= 0)
			close(vm->ram_fd);
		vm->ram_fd = -1;
		if (fast_path_enabled() && ram_shared_file(vm, mem, &ra) == 0)
			extra_add_ram(&xa, &ra);
		if (extra_add_rng(vm, &xa, err, errlen) < 0)
			goto out;
		if (xa.n)
			s.extra = xa.v;
		/* the console log of an earlier boot of this VM is not this one's */
		run_path(vm, "console.log", path, sizeof path);
		unlink(path);
		deadline = qmp_now_ns() + timeout;
		if (qemu_spawn(&s, &vm->proc, err, errlen) < 0)
			goto out;
	}
	if (handshake(vm, &vm->proc, &vm->qmp, vm->ac, true, deadline, err, errlen) < 0) {
		char what[512];
		if (!check_qemu_died(vm, 200, err, errlen)) {
			snprintf(what, sizeof what,
				 "the agent did not answer within %.1f s (QEMU was still running and "
				 "has been killed)", (double)timeout / 1e9);
			err_with_console(vm, err, errlen, what);
		}
		free(vm->gone);
		vm->gone = NULL;
		stop_guest(vm);
		goto out;
	}
	info->cid = 0;
	info->memory_bytes = mem_rounded(o->memory);
	vm->memory = info->memory_bytes;
	vm->cpus = o->cpus > 0 ? o->cpus : 1;
	vm->has_initial_time = o->has_initial_time;
	free(vm->boot_cmdline);
	vm->boot_cmdline = cmdline;
	cmdline = NULL;
	free(vm->boot_cpio);
	vm->boot_cpio = cpio;
	vm->boot_cpio_len = cpio_len;
	cpio = NULL;
	rc = 0;
out:
	free(initrd);
	free(cmdline);
	free(cpio);
	return rc;
}

/* ---- lifecycle ---------------------------------------------------------- */

static int qmp_cmd(struct vmm_vm *vm, const char *cmd, json_t *args, char *err, size_t errlen)
{
	int rc;
	if (vm->gone)
		return fail_gone(vm, err, errlen);
	if (!vm->qmp) {
		err_set(err, errlen, "the VM is not running");
		return -1;
	}
	rc = qmp_execute(vm->qmp, cmd, args, QMP_TIMEOUT_MS, NULL, err, errlen);
	if (rc < 0 && qmp_broken(vm->qmp))
		check_qemu_died(vm, 1000, err, errlen);
	return rc;
}

static int qemu_shutdown(struct vmm_vm *vm, char *err, size_t errlen)
{
	char e[256];
	if (vm->proc.pid > 0 && !vm->gone && vm->ac && agent_client_fd(vm->ac) >= 0) {
		struct agent_reply rep;
		struct req r = { .n = 0 };
		/* Graceful: the agent syncs and powers off (about 1 s). */
		if (agent_call(vm->ac, PROTO_K_POWEROFF, 0, build, &r, 2000, &rep, e, sizeof e) == 0)
			qemu_wait(&vm->proc, 4000);
		agent_reply_free(&rep);
	}
	if (vm->proc.pid > 0 && vm->qmp && !qmp_broken(vm->qmp) &&
	    qmp_execute(vm->qmp, "quit", NULL, 1000, NULL, e, sizeof e) == 0)
		qemu_wait(&vm->proc, 2000);
	stop_guest(vm);
	return 0;
}

static int qemu_pause(struct vmm_vm *vm, char *err, size_t errlen)
{
	return qmp_cmd(vm, "stop", NULL, err, errlen);
}

static int qemu_resume(struct vmm_vm *vm, char *err, size_t errlen)
{
	return qmp_cmd(vm, "cont", NULL, err, errlen);
}

static int set_reboot_action(struct vmm_vm *vm, const char *action, char *err, size_t errlen)
{
	json_t *a = json_pack("{s:s}", "reboot", action);
	int rc = a ? qmp_cmd(vm, "set-action", a, err, errlen) : -1;
	json_decref(a);
	return rc;
}

static int qemu_reset(struct vmm_vm *vm, char *err, size_t errlen)
{
	int64_t timeout = vm->agent_boot_timeout_ns > 0 ? vm->agent_boot_timeout_ns
						       : DEFAULT_AGENT_TIMEOUT_NS;
	char e2[256];
	int rc;

	/* -no-reboot turns a reset into an exit: reset for the duration. */
	if (set_reboot_action(vm, "reset", err, errlen) < 0)
		return -1;
	qmp_clear_events(vm->qmp);
	if (qmp_cmd(vm, "system_reset", NULL, err, errlen) < 0 ||
	    qmp_wait_event(vm->qmp, "RESET", QMP_TIMEOUT_MS, NULL, err, errlen) < 0) {
		set_reboot_action(vm, "shutdown", e2, sizeof e2);
		return -1;
	}
	/* The rebooted agent waits for a Hello on the same connection;
	 * anything the old one still had in flight is ignored until HelloOk. */
	rc = handshake(vm, &vm->proc, NULL, vm->ac, false, qmp_now_ns() + timeout, err, errlen);
	if (rc < 0) {
		strip_vm_prefix(vm, err);
		if (!check_qemu_died(vm, 200, err, errlen)) {
			char what[512];
			snprintf(what, sizeof what, "after the reset: %s", err);
			err_with_console(vm, err, errlen, what);
			set_gone(vm, err);
		}
		return -1;
	}
	return set_reboot_action(vm, "shutdown", err, errlen);
}

static int qemu_power_button(struct vmm_vm *vm, char *err, size_t errlen)
{
	if (qmp_cmd(vm, "system_powerdown", NULL, err, errlen) < 0)
		return -1;
	if (qemu_wait(&vm->proc, 30000) != 1) {
		stop_guest(vm);
		err_set(err, errlen, "the guest did not power off within 30 s of the power button; "
		       "QEMU was killed");
		return -1;
	}
	stop_guest(vm);
	return 0;
}

static void vm_free(struct vmm_vm *vm)
{
	free(vm->name); free(vm->dir); free(vm->kernel); free(vm->initrd);
	free(vm->cmdline); free(vm->overlay_path); free(vm->accel); free(vm->gone);
	free(vm->profile); free(vm->boot_cmdline); free(vm->qemu_version); free(vm->boot_cpio);
	if (vm->ram_fd >= 0)
		close(vm->ram_fd);
	free(vm);
}

static void vm_unref(struct vmm_vm *vm)
{
	if (--vm->refs == 0)
		vm_free(vm);
}

static void qemu_destroy(struct vmm_vm *vm)
{
	static const char *const leaves[] = { "qmp.sock", "agent.sock", "console.sock",
		"console.log", "qemu.log" };
	char path[4096];
	if (!vm)
		return;
	stop_guest(vm);
	agent_client_free(vm->ac);
	vm->ac = NULL;
	for (size_t i = 0; i < sizeof leaves / sizeof leaves[0]; i++) {
		if (!vm->dir_tmp && i >= 3)
			break; /* keep the logs in the runner's run dir */
		run_path(vm, leaves[i], path, sizeof path);
		unlink(path);
	}
	if (vm->dir_tmp)
		rmdir(vm->dir);
	vm->destroyed = true;
	set_gone(vm, "the VM was destroyed");
	vm_unref(vm);
}

/* ---- exec ------------------------------------------------------------------ */

/* Fill r with the exec/spawn fields of x (argv from exec_argv). */
static void exec_fields(struct req *r, const struct vmm_exec_req *x, const char *const *argv)
{
	r->f[r->n++] = (struct fld){ .key = "argv", .t = F_STRV, .v = argv };
	if (x->env && (x->env[0] || x->env_clear))
		r->f[r->n++] = (struct fld){ .key = "env", .t = F_ENV, .v = x->env };
	else if (x->env_clear) {
		static const char *const none[] = { NULL };
		r->f[r->n++] = (struct fld){ .key = "env", .t = F_ENV, .v = none };
	}
	if (x->env_clear)
		add_bool(r, "env_clear", true);
	if (x->cwd)
		add_str(r, "cwd", x->cwd);
	if (x->stdin_data)
		add_bin(r, "stdin", x->stdin_data, x->stdin_len);
}

/* argv with argv[0] replaced by the executable (the agent execs argv[0]
 * via PATH). malloc'd array of borrowed strings. */
static const char **exec_argv(const struct vmm_exec_req *x)
{
	size_t n = 0;
	const char **v;
	while (x->argv && x->argv[n])
		n++;
	v = calloc(n + 2, sizeof *v);
	if (!v)
		return NULL;
	v[0] = x->file ? x->file : (n ? x->argv[0] : "true");
	for (size_t i = 1; i < n; i++)
		v[i] = x->argv[i];
	v[n ? n : 1] = NULL;
	return v;
}

static char *dup_bytes(const char *p, size_t n)
{
	char *o = malloc(n + 1);
	if (!o)
		return NULL;
	if (n)
		memcpy(o, p, n);
	o[n] = 0;
	return o;
}

/* Parse an ExecResult value into res. 0 or -1. */
static int parse_exec_result(const msgpack_object *v, struct vmm_exec_result *res)
{
	int64_t status = 0, sig = 0;
	int to = 0;
	const char *o = NULL, *e = NULL;
	size_t ol = 0, el = 0;
	memset(res, 0, sizeof *res);
	if (!v || proto_get_int(v, "status", &status) < 0)
		return -1;
	proto_get_bytes(v, "stdout", &o, &ol);
	proto_get_bytes(v, "stderr", &e, &el);
	proto_get_bool(v, "timed_out", &to);
	if (proto_get_int(v, "signal", &sig) < 0)
		sig = 0;
	if (to) {
		res->status = VMM_TIMED_OUT;
		res->exit_code = -2;
	} else if (sig > 0) {
		res->status = VMM_SIGNALLED;
		res->exit_code = -1;
		res->signal = (int)sig;
	} else {
		res->status = VMM_EXITED;
		res->exit_code = (int)status;
	}
	res->out = dup_bytes(o, ol);
	res->err = dup_bytes(e, el);
	res->out_len = ol;
	res->err_len = el;
	if (!res->out || !res->err) {
		vmm_exec_result_free(res);
		return -1;
	}
	return 0;
}

static int qemu_exec(struct vmm_vm *vm, const struct vmm_exec_req *x,
		     struct vmm_exec_result *res, char *err, size_t errlen)
{
	struct req r = { .n = 0 };
	struct agent_reply rep;
	const char **argv = exec_argv(x);
	int wait_ms = -1, rc;

	if (!argv) {
		err_set(err, errlen, "out of memory");
		return -1;
	}
	exec_fields(&r, x, argv);
	if (x->timeout_ns >= 0) {
		int64_t ms = (x->timeout_ns + 999999) / 1000000;
		if (ms < 1)
			ms = 1;
		if (ms > INT32_MAX - EXEC_GRACE_MS)
			ms = INT32_MAX - EXEC_GRACE_MS;
		add_int(&r, "timeout_ms", ms);
		wait_ms = (int)ms + EXEC_GRACE_MS;
	}
	rc = call(vm, PROTO_K_EXEC, &r, wait_ms, &rep, err, errlen);
	free(argv);
	if (rc < 0)
		return -1;
	if (parse_exec_result(rep.value, res) < 0)
		return bad_reply(&rep, "exec result", err, errlen);
	agent_reply_free(&rep);
	return 0;
}

/* ---- files ----------------------------------------------------------------- */

static int qemu_read_file(struct vmm_vm *vm, const char *path, char **data, size_t *len,
			  char *err, size_t errlen)
{
	struct req r = { .n = 0 };
	struct agent_reply rep;
	const char *p;
	size_t n;
	add_str(&r, "path", path);
	if (call(vm, PROTO_K_READ_FILE, &r, OP_TIMEOUT_MS, &rep, err, errlen) < 0)
		return -1;
	if (!rep.value || proto_obj_bytes(rep.value, &p, &n) < 0)
		return bad_reply(&rep, "read_file", err, errlen);
	*data = dup_bytes(p, n);
	*len = n;
	agent_reply_free(&rep);
	if (!*data) {
		err_set(err, errlen, "out of memory");
		return -1;
	}
	return 0;
}

static int qemu_write_file(struct vmm_vm *vm, const char *path, const char *data, size_t len,
			   char *err, size_t errlen)
{
	/* Frames are bounded: big files go in chunks (the first truncates). */
	size_t chunk = PROTO_IO_MAX / 2, off = 0;
	do {
		struct req r = { .n = 0 };
		size_t n = len - off < chunk ? len - off : chunk;
		add_str(&r, "path", path);
		add_bin(&r, "data", data + off, n);
		if (off)
			add_bool(&r, "append", true);
		if (call_nil(vm, PROTO_K_WRITE_FILE, &r, err, errlen) < 0)
			return -1;
		off += n;
	} while (off < len);
	return 0;
}

static enum vmm_entry_type entry_type(const msgpack_object *o, const char *key)
{
	static const char *const names[] = { "file", "directory", "symlink", "fifo", "socket",
		"block_device", "char_device", "other" };
	const char *p;
	size_t n;
	if (proto_get_bytes(o, key, &p, &n) < 0)
		return VMM_ENT_OTHER;
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
		if (strlen(names[i]) == n && !memcmp(names[i], p, n))
			return (enum vmm_entry_type)i;
	return VMM_ENT_OTHER;
}

static int qemu_stat(struct vmm_vm *vm, const char *path, struct vmm_stat *st,
		     char *err, size_t errlen)
{
	struct req r = { .n = 0 };
	struct agent_reply rep;
	uint64_t size = 0, perm = 0;
	int64_t mtime = 0;
	add_str(&r, "path", path);
	if (call(vm, PROTO_K_STAT, &r, OP_TIMEOUT_MS, &rep, err, errlen) < 0)
		return -1;
	if (!rep.value || proto_get_uint(rep.value, "size", &size) < 0 ||
	    proto_get_uint(rep.value, "perm", &perm) < 0)
		return bad_reply(&rep, "stat", err, errlen);
	proto_get_int(rep.value, "mtime_ns", &mtime);
	st->size = size;
	st->perm = (unsigned)(perm & 07777);
	st->mtime_ns = mtime;
	st->type = entry_type(rep.value, "entry_type");
	agent_reply_free(&rep);
	return 0;
}

static int dirent_cmp(const void *a, const void *b)
{
	return strcmp(((const struct vmm_dirent *)a)->name, ((const struct vmm_dirent *)b)->name);
}

static int qemu_listdir(struct vmm_vm *vm, const char *path, struct vmm_dirent **ents,
			size_t *n, char *err, size_t errlen)
{
	struct req r = { .n = 0 };
	struct agent_reply rep;
	struct vmm_dirent *v;
	uint32_t cnt;
	add_str(&r, "path", path);
	if (call(vm, PROTO_K_LISTDIR, &r, OP_TIMEOUT_MS, &rep, err, errlen) < 0)
		return -1;
	if (!rep.value || rep.value->type != MSGPACK_OBJECT_ARRAY)
		return bad_reply(&rep, "listdir", err, errlen);
	cnt = rep.value->via.array.size;
	v = calloc(cnt ? cnt : 1, sizeof *v);
	if (!v) {
		agent_reply_free(&rep);
		err_set(err, errlen, "out of memory");
		return -1;
	}
	for (uint32_t i = 0; i < cnt; i++) {
		const msgpack_object *e = &rep.value->via.array.ptr[i];
		const char *p;
		size_t l;
		if (proto_get_bytes(e, "name", &p, &l) < 0 || !(v[i].name = dup_bytes(p, l))) {
			vmm_dirents_free(v, i);
			return bad_reply(&rep, "listdir entry", err, errlen);
		}
		v[i].type = entry_type(e, "entry_type");
	}
	agent_reply_free(&rep);
	qsort(v, cnt, sizeof *v, dirent_cmp);
	*ents = v;
	*n = cnt;
	return 0;
}

static int qemu_mkdir(struct vmm_vm *vm, const char *path, bool parents, int perm,
		      char *err, size_t errlen)
{
	struct req r = { .n = 0 };
	add_str(&r, "path", path);
	add_bool(&r, "parents", parents);
	if (perm >= 0)
		add_int(&r, "perm", perm);
	return call_nil(vm, PROTO_K_MKDIR, &r, err, errlen);
}

static int qemu_unlink(struct vmm_vm *vm, const char *path, char *err, size_t errlen)
{
	struct req r = { .n = 0 };
	add_str(&r, "path", path);
	return call_nil(vm, PROTO_K_UNLINK, &r, err, errlen);
}

static int qemu_rename(struct vmm_vm *vm, const char *from, const char *to,
		       char *err, size_t errlen)
{
	struct req r = { .n = 0 };
	add_str(&r, "from", from);
	add_str(&r, "to", to);
	return call_nil(vm, PROTO_K_RENAME, &r, err, errlen);
}

/* ---- open files -------------------------------------------------------------- */

static int qemu_open(struct vmm_vm *vm, const char *path, int mode, int perm,
		     struct vmm_file **out, char *err, size_t errlen)
{
	struct req r = { .n = 0 };
	struct agent_reply rep;
	struct vmm_file *f;
	int64_t h;
	add_str(&r, "path", path);
	add_int(&r, "mode", mode & (int)PROTO_OPEN_ALL);
	if (perm >= 0)
		add_int(&r, "perm", perm);
	if (call(vm, PROTO_K_FILE_OPEN, &r, OP_TIMEOUT_MS, &rep, err, errlen) < 0)
		return -1;
	if (!rep.value || proto_obj_int(rep.value, &h) < 0 || h <= 0)
		return bad_reply(&rep, "file_open", err, errlen);
	agent_reply_free(&rep);
	f = calloc(1, sizeof *f);
	if (!f) {
		err_set(err, errlen, "out of memory");
		return -1;
	}
	f->vm = vm;
	f->handle = (uint64_t)h;
	vm->refs++;
	*out = f;
	return 0;
}

static int qemu_file_read(struct vmm_file *f, void *buf, size_t n, size_t *got,
			  char *err, size_t errlen)
{
	struct req r = { .n = 0 };
	struct agent_reply rep;
	const char *p;
	size_t l;
	add_int(&r, "handle", (int64_t)f->handle);
	add_int(&r, "n", (int64_t)(n > PROTO_IO_MAX ? PROTO_IO_MAX : n));
	if (call(f->vm, PROTO_K_FILE_READ, &r, OP_TIMEOUT_MS, &rep, err, errlen) < 0)
		return -1;
	if (!rep.value || proto_obj_bytes(rep.value, &p, &l) < 0 || l > n)
		return bad_reply(&rep, "file_read", err, errlen);
	if (l)
		memcpy(buf, p, l);
	*got = l;
	agent_reply_free(&rep);
	return 0;
}

static int qemu_file_write(struct vmm_file *f, const void *buf, size_t n, size_t *put,
			   char *err, size_t errlen)
{
	size_t done = 0;
	do {
		struct req r = { .n = 0 };
		struct agent_reply rep;
		size_t c = n - done > PROTO_IO_MAX / 2 ? PROTO_IO_MAX / 2 : n - done;
		int64_t w;
		add_int(&r, "handle", (int64_t)f->handle);
		add_bin(&r, "data", (const char *)buf + done, c);
		if (call(f->vm, PROTO_K_FILE_WRITE, &r, OP_TIMEOUT_MS, &rep, err, errlen) < 0)
			return -1;
		if (!rep.value || proto_obj_int(rep.value, &w) < 0 || w < 0 || (size_t)w > c)
			return bad_reply(&rep, "file_write", err, errlen);
		agent_reply_free(&rep);
		done += (size_t)w;
		if ((size_t)w < c)
			break;
	} while (done < n);
	*put = done;
	return 0;
}

static int qemu_file_seek(struct vmm_file *f, int64_t off, enum vmm_whence w, int64_t *pos,
			  char *err, size_t errlen)
{
	static const char *const wh[] = { "set", "cur", "end" };
	struct req r = { .n = 0 };
	struct agent_reply rep;
	int64_t p;
	add_int(&r, "handle", (int64_t)f->handle);
	add_int(&r, "offset", off);
	add_str(&r, "whence", wh[w]);
	if (call(f->vm, PROTO_K_FILE_SEEK, &r, OP_TIMEOUT_MS, &rep, err, errlen) < 0)
		return -1;
	if (!rep.value || proto_obj_int(rep.value, &p) < 0)
		return bad_reply(&rep, "file_seek", err, errlen);
	agent_reply_free(&rep);
	*pos = p;
	return 0;
}

static uint64_t qemu_file_handle(struct vmm_file *f)
{
	return f->handle;
}

static void qemu_file_close(struct vmm_file *f)
{
	char e[256];
	if (!f)
		return;
	if (!f->vm->gone) {
		struct req r = { .n = 0 };
		add_int(&r, "handle", (int64_t)f->handle);
		call_nil(f->vm, PROTO_K_FILE_CLOSE, &r, e, sizeof e);
	}
	vm_unref(f->vm);
	free(f);
}

/* ---- async processes ------------------------------------------------------------ */

static int qemu_exec_async(struct vmm_vm *vm, const struct vmm_exec_req *x,
			   struct vmm_proc **out, char *err, size_t errlen)
{
	struct req r = { .n = 0 };
	struct agent_reply rep;
	struct vmm_proc *p;
	const char **argv = exec_argv(x);
	uint64_t h = 0;
	int64_t pid = 0;
	int rc;
	if (!argv) {
		err_set(err, errlen, "out of memory");
		return -1;
	}
	exec_fields(&r, x, argv);
	rc = call(vm, PROTO_K_SPAWN, &r, OP_TIMEOUT_MS, &rep, err, errlen);
	free(argv);
	if (rc < 0)
		return -1;
	if (!rep.value || proto_get_uint(rep.value, "handle", &h) < 0 || !h)
		return bad_reply(&rep, "spawn", err, errlen);
	proto_get_int(rep.value, "pid", &pid);
	agent_reply_free(&rep);
	p = calloc(1, sizeof *p);
	if (!p) {
		err_set(err, errlen, "out of memory");
		return -1;
	}
	p->vm = vm;
	p->handle = h;
	p->pid = pid;
	vm->refs++;
	*out = p;
	return 0;
}

static int qemu_proc_wait(struct vmm_proc *p, int64_t timeout_ns, bool *done,
			  struct vmm_exec_result *res, char *err, size_t errlen)
{
	int64_t end = timeout_ns >= 0 ? qmp_now_ns() + timeout_ns : INT64_MAX;
	int sleep_ms = 10;
	*done = false;
	if (p->done) {
		err_set(err, errlen, "the process was already waited for");
		return -1;
	}
	/* Poll proc_status (the agent's proc_wait would kill on its timeout,
	 * and vmm wants the process left running), then collect. */
	for (;;) {
		struct req r = { .n = 0 };
		struct agent_reply rep;
		int running = 1;
		add_int(&r, "handle", (int64_t)p->handle);
		if (call(p->vm, PROTO_K_PROC_STATUS, &r, OP_TIMEOUT_MS, &rep, err, errlen) < 0)
			return -1;
		if (!rep.value || proto_get_bool(rep.value, "running", &running) < 0)
			return bad_reply(&rep, "proc_status", err, errlen);
		agent_reply_free(&rep);
		if (!running) {
			if (call(p->vm, PROTO_K_PROC_WAIT, &r, OP_TIMEOUT_MS, &rep, err, errlen) < 0)
				return -1;
			p->done = true;
			if (parse_exec_result(rep.value, res) < 0)
				return bad_reply(&rep, "proc_wait", err, errlen);
			agent_reply_free(&rep);
			*done = true;
			return 0;
		}
		int64_t now = qmp_now_ns();
		if (now >= end)
			return 0;
		if (end != INT64_MAX && (end - now) / 1000000 < sleep_ms)
			sleep_ms = (int)((end - now) / 1000000) + 1;
		poll(NULL, 0, sleep_ms);
		if (sleep_ms < 100)
			sleep_ms *= 2;
	}
}

static int qemu_proc_kill(struct vmm_proc *p, int sig, char *err, size_t errlen)
{
	struct req r = { .n = 0 };
	if (p->done)
		return 0;
	add_int(&r, "handle", (int64_t)p->handle);
	add_int(&r, "signal", sig);
	return call_nil(p->vm, PROTO_K_PROC_KILL, &r, err, errlen);
}

static int qemu_proc_stdin_write(struct vmm_proc *p, const char *data, size_t len, size_t *put,
				 char *err, size_t errlen)
{
	struct req r = { .n = 0 };
	struct agent_reply rep;
	int64_t w;
	add_int(&r, "handle", (int64_t)p->handle);
	add_bin(&r, "data", data, len > PROTO_IO_MAX / 2 ? PROTO_IO_MAX / 2 : len);
	if (call(p->vm, PROTO_K_PROC_STDIN, &r, OP_TIMEOUT_MS, &rep, err, errlen) < 0)
		return -1;
	if (!rep.value || proto_obj_int(rep.value, &w) < 0 || w < 0)
		return bad_reply(&rep, "proc_stdin", err, errlen);
	agent_reply_free(&rep);
	*put = (size_t)w;
	return 0;
}

static int qemu_proc_close_stdin(struct vmm_proc *p, char *err, size_t errlen)
{
	struct req r = { .n = 0 };
	add_int(&r, "handle", (int64_t)p->handle);
	return call_nil(p->vm, PROTO_K_PROC_STDIN_CLOSE, &r, err, errlen);
}

static int64_t qemu_proc_pid(struct vmm_proc *p)
{
	return p->pid;
}

static uint64_t qemu_proc_handle(struct vmm_proc *p)
{
	return p->handle;
}

static void qemu_proc_free(struct vmm_proc *p)
{
	char e[256];
	if (!p)
		return;
	if (!p->done && !p->vm->gone) {
		/* Kill and collect, so the agent frees the handle. */
		struct req r = { .n = 0 };
		struct agent_reply rep;
		add_int(&r, "handle", (int64_t)p->handle);
		add_int(&r, "signal", SIGKILL);
		if (call_nil(p->vm, PROTO_K_PROC_KILL, &r, e, sizeof e) == 0) {
			r.n = 1;
			if (call(p->vm, PROTO_K_PROC_WAIT, &r, 10000, &rep, e, sizeof e) == 0)
				agent_reply_free(&rep);
		}
	}
	vm_unref(p->vm);
	free(p);
}

/* ---- guest-kernel features ---------------------------------------------------------- */

static int qemu_console_tail(struct vmm_vm *vm, size_t max, char **out, size_t *len,
			     char *err, size_t errlen)
{
	char path[4096];
	char *t;
	run_path(vm, "console.log", path, sizeof path);
	t = file_tail(vm, "console.log", max, len);
	if (!t) {
		if (errno == ENOENT) {
			*out = strdup("");
			*len = 0;
			return *out ? 0 : -1;
		}
		err_set(err, errlen, "read `%s`: %s", path, strerror(errno));
		return -1;
	}
	*out = t;
	return 0;
}

static int qemu_syscall(struct vmm_vm *vm, int64_t nr, const int64_t args[6], int64_t *ret,
			int *err_no, char *err, size_t errlen)
{
	struct req r = { .n = 0 };
	struct agent_reply rep;
	int64_t rv, en = 0;
	add_int(&r, "nr", nr);
	r.f[r.n++] = (struct fld){ .key = "args", .t = F_INTS, .iv = args, .n = 6 };
	if (call(vm, PROTO_K_SYSCALL, &r, OP_TIMEOUT_MS, &rep, err, errlen) < 0)
		return -1;
	if (!rep.value || proto_get_int(rep.value, "ret", &rv) < 0)
		return bad_reply(&rep, "syscall", err, errlen);
	proto_get_int(rep.value, "errno", &en);
	agent_reply_free(&rep);
	*ret = rv;
	*err_no = (int)en;
	return 0;
}

/* vmm_ops.agent: the connected client (guest_ops.c speaks through it). */
static struct agent_client *qemu_agent(struct vmm_vm *vm)
{
	return vm->gone || !vm->ac || agent_client_fd(vm->ac) < 0 ? NULL : vm->ac;
}

/* vmm_ops.run_path: "<run dir>/<leaf>", valid until the next call. */
static const char *qemu_run_path_op(struct vmm_vm *vm, const char *leaf)
{
	if (qemu_run_path(vm->pathbuf, sizeof vm->pathbuf, vm->dir, leaf) < 0)
		return NULL;
	return vm->pathbuf;
}

/* ---- snapshots ---------------------------------------------------------------------------
 *
 * Take: the channel must be quiet (agent_client_pending after a Ping),
 * QMP `stop`, then the VM's boot-opt files (section "boot_files", the
 * newc archive merged into its initrd, when it has any: a restore boots
 * the same initrd, which vm:reset() reloads), then (fast path, RAM in a
 * shared file) the RAM file's non-zero pages as section "ram" and the
 * migration stream with x-ignore-shared (device state only) as section
 * "migration"; otherwise just the full migration stream. `cont` if the
 * VM was running: it keeps running after vm:snapshot().
 *
 * Sections in order: [boot_files] [ram] migration; a snapshot without
 * boot_files (none at boot, or an older provium) restores as before.
 *
 * Restore: a new QEMU with the header's memory/cpus and device layout,
 * -incoming defer and -S; with a "ram" section the RAM is first expanded
 * (once per snapshot file: "<snap>.ram-<ram_id>", reused while it exists)
 * into a sparse file that QEMU maps privately (share=off: copy-on-write,
 * the file is never written, many VMs share its page cache). Then
 * migrate-incoming, `cont`, a fresh Hello (the agent starts a new
 * session) and the guest wall clock set to the host's unless the VM had
 * pinned initial_time. vmgenid: the new QEMU picks a new generation id,
 * which the guest kernel turns into an RNG reseed. */

#define SNAP_DEVICES "[\"q35\",\"virtio-serial-pci\",\"virtserialport:" QEMU_AGENT_PORT_NAME \
	"\",\"isa-serial:console\",\"vmgenid\"]"
/* the same plus the seeded virtio-rng of a VM booted with rng_seed */
#define SNAP_DEVICES_RNG "[\"q35\",\"virtio-serial-pci\",\"virtserialport:" QEMU_AGENT_PORT_NAME \
	"\",\"isa-serial:console\",\"vmgenid\",\"virtio-rng-pci\"]"
#define RESTORE_HELLO_NS (INT64_C(15) * 1000000000)

static const char *qemu_version(struct vmm_vm *vm, char *err, size_t errlen)
{
	if (!vm->qemu_version && vm->qmp)
		vm->qemu_version = qsnap_qemu_version(vm->qmp, err, errlen);
	return vm->qemu_version;
}

/* Is the VM running (not stopped/paused)? -1 on a QMP error. */
static int vm_running(struct vmm_vm *vm, char *err, size_t errlen)
{
	json_t *ret = NULL;
	int r;
	if (qmp_execute(vm->qmp, "query-status", NULL, QMP_TIMEOUT_MS, &ret, err, errlen) < 0)
		return -1;
	r = json_is_true(json_object_get(ret, "running"));
	json_decref(ret);
	return r;
}

static int qemu_snapshot(struct vmm_vm *vm, const char *path, char *err, size_t errlen)
{
	struct snap_writer *w = NULL;
	struct snap_header h = { 0 };
	char bd[256], e2[256];
	unsigned char rnd[16];
	const char *ver;
	int running, rc = -1;
	bool fast = vm->ram_fd >= 0;

	if (vm->gone)
		return fail_gone(vm, err, errlen);
	if (!vm->qmp || !vm->ac || agent_client_fd(vm->ac) < 0) {
		err_set(err, errlen, "the VM is not running");
		return -1;
	}
	if (!(ver = qemu_version(vm, err, errlen)))
		return -1;
	if ((running = vm_running(vm, err, errlen)) < 0)
		return -1;
	/* Quiesce: nothing may be in flight on the agent channel (a reply or
	 * stream data would be lost across a restore, and the op would still
	 * be running in the restored guest). A Ping round trip first reads
	 * whatever the agent sent before its answer (a late reply, which ends
	 * an abandoned request; the tail of a closed stream); what is still
	 * outstanding after it is really in flight. A paused guest cannot
	 * answer: only what already arrived is read. */
	{
		struct agent_reply rep;
		struct req none = { .n = 0 };
		char what[512];
		size_t n;
		if (running) {
			if (call(vm, PROTO_K_PING, &none, QMP_TIMEOUT_MS, &rep, err, errlen) < 0)
				return -1;
			agent_reply_free(&rep);
		} else if (agent_client_drain(vm->ac, err, errlen) < 0) {
			strip_vm_prefix(vm, err);
			return -1;
		}
		if ((n = agent_client_describe_pending(vm->ac, what, sizeof what)) > 0) {
			err_set(err, errlen, "refused: %zu agent operation%s in flight: %s; wait for %s to "
			       "finish (close its stream) before snapshotting", n, n == 1 ? " is" : "s are",
			       what, n == 1 ? "it" : "them");
			return -1;
		}
	}
	if (running && qmp_cmd(vm, "stop", NULL, err, errlen) < 0)
		return -1;
	{
		FILE *ur = fopen("/dev/urandom", "rbe");
		size_t got = ur ? fread(rnd, 1, sizeof rnd, ur) : 0;
		if (ur)
			fclose(ur);
		if (got != sizeof rnd) {
			uint64_t t = (uint64_t)qmp_now_ns() ^ (uint64_t)getpid() << 32;
			memcpy(rnd, &t, 8);
			memcpy(rnd + 8, &vm, sizeof vm < 8 ? sizeof vm : 8);
		}
	}
	{
		char id[33];
		for (int i = 0; i < 16; i++)
			snprintf(id + 2 * i, 3, "%02x", rnd[i]);
		snprintf(bd, sizeof bd, "{\"ram\":\"%s\",\"ram_id\":\"%s\",\"ram_size\":%llu,"
			 "\"rng_seed\":%s%llu%s}",
			 fast ? "file" : "stream", id, (unsigned long long)vm->memory,
			 vm->has_rng_seed ? "\"" : "", (unsigned long long)vm->rng_seed,
			 vm->has_rng_seed ? "\"" : "");
	}
	h.vm_name = vm->name;
	h.profile = vm->profile ? vm->profile : (char *)(uintptr_t)"";
	h.backend = (char *)(uintptr_t)"qemu";
	h.qemu_version = (char *)(uintptr_t)ver;
	h.memory = vm->memory;
	h.cpus = vm->cpus;
	h.kernel_cmdline = vm->boot_cmdline;
	h.devices = (char *)(uintptr_t)(vm->has_rng_seed ? SNAP_DEVICES_RNG : SNAP_DEVICES);
	h.has_initial_time = vm->has_initial_time;
	h.backend_data = bd;
	if (snapfile_create(&w, path, &h, err, errlen) < 0)
		goto out;
	if (vm->boot_cpio_len &&
	    (snapfile_section_begin(w, "boot_files", err, errlen) < 0 ||
	     snapfile_write(w, vm->boot_cpio, vm->boot_cpio_len, err, errlen) < 0 ||
	     snapfile_section_end(w, err, errlen) < 0))
		goto out;
	if (fast && (snapfile_section_begin(w, "ram", err, errlen) < 0 ||
		     qsnap_write_ram(w, vm->ram_fd, vm->memory, err, errlen) < 0 ||
		     snapfile_section_end(w, err, errlen) < 0))
		goto out;
	if (snapfile_section_begin(w, "migration", err, errlen) < 0 ||
	    qsnap_save_stream(vm->qmp, w, fast, err, errlen) < 0 ||
	    snapfile_section_end(w, err, errlen) < 0)
		goto out;
	rc = snapfile_finish(w, err, errlen);
	w = NULL;
out:
	snapfile_abort(w);
	if (running && qmp_cmd(vm, "cont", NULL, rc < 0 ? e2 : err, rc < 0 ? sizeof e2 : errlen) < 0)
		rc = -1;
	if (rc < 0 && qmp_broken(vm->qmp))
		check_qemu_died(vm, 500, err, errlen);
	return rc;
}

/* Fill *fast, *ram_id (malloc'd) and vm's rng seed from the header's
 * backend_data. */
static int snap_backend_data(struct vmm_vm *vm, const struct snap_header *h, const char *path,
			     bool *fast, char **ram_id, char *err, size_t errlen)
{
	json_t *o = h->backend_data ? json_loads(h->backend_data, 0, NULL) : NULL;
	const char *ram = json_string_value(json_object_get(o, "ram"));
	const char *id = json_string_value(json_object_get(o, "ram_id"));
	const char *seed = json_string_value(json_object_get(o, "rng_seed"));
	*fast = ram && !strcmp(ram, "file");
	*ram_id = NULL;
	/* rng_seed is a decimal string (u64 does not fit a JSON integer) */
	vm->has_rng_seed = h->devices && !strcmp(h->devices, SNAP_DEVICES_RNG);
	vm->rng_seed = seed ? strtoull(seed, NULL, 10) : 0;
	if (*fast) {
		size_t n = id ? strlen(id) : 0;
		if (n != 32 || strspn(id, "0123456789abcdef") != n ||
		    json_integer_value(json_object_get(o, "ram_size")) != (json_int_t)h->memory) {
			json_decref(o);
			err_set(err, errlen, "snapshot `%s`: corrupt header (backend data)", path);
			return -1;
		}
		*ram_id = strdup(id);
	}
	json_decref(o);
	return 0;
}

#define BOOT_FILES_MAX (UINT64_C(1) << 30)

/* The whole current section of r (raw bytes long) into *buf. */
static int read_section(struct snap_reader *r, uint64_t raw, unsigned char **buf, size_t *len,
			char *err, size_t errlen)
{
	size_t have = 0, got;
	*buf = NULL;
	*len = 0;
	if (raw == 0 || raw > BOOT_FILES_MAX) {
		err_set(err, errlen, "corrupt (`boot_files` section of %llu bytes)",
		       (unsigned long long)raw);
		return -1;
	}
	if (!(*buf = malloc((size_t)raw + 1))) {
		err_set(err, errlen, "out of memory");
		return -1;
	}
	/* one byte of room past raw: the end must come exactly there */
	for (;;) {
		if (snapfile_read(r, *buf + have, (size_t)raw + 1 - have, &got, err, errlen) < 0)
			goto fail;
		if (!got)
			break;
		have += got;
		if (have > raw)
			break;
	}
	if (have != raw) {
		err_set(err, errlen, "corrupt (`boot_files` section length)");
		goto fail;
	}
	*len = have;
	return 0;
fail:
	free(*buf);
	*buf = NULL;
	return -1;
}

/* PROVIUM_TRACE_RESTORE=1: one stderr line per restore phase with the
 * milliseconds since the restore began (a measuring aid, off by default). */
static void restore_trace(int64_t t0, const char *phase)
{
	static int on = -1;
	if (on < 0) {
		const char *e = getenv("PROVIUM_TRACE_RESTORE");
		on = e && *e && strcmp(e, "0") != 0;
	}
	if (on)
		fprintf(stderr, "provium: restore: %8.2f ms  %s\n",
			(double)(qmp_now_ns() - t0) / 1e6, phase);
}

/* An expanded RAM file of this size is in place. */
static bool ram_file_ok(const char *p, uint64_t size)
{
	struct stat st;
	return stat(p, &st) == 0 && S_ISREG(st.st_mode) && (uint64_t)st.st_size == size;
}

static int qemu_restore(struct vmm_vm *vm, const char *path, char *err, size_t errlen)
{
	struct snap_reader *r = NULL;
	struct snap_header h = { 0 };
	struct ram_args ra;
	char *ram_id = NULL, *ram_path = NULL, *initrd = NULL, apath[4096], qpath[4096];
	unsigned char *cpio = NULL;
	size_t cpio_len = 0;
	const char *sect, *ver;
	uint64_t raw;
	bool fast = false, have_h = false;
	int rc = -1, k;
	int64_t deadline, t0 = qmp_now_ns();

	if (snapfile_open(&r, path, &h, err, errlen) < 0)
		return -1;
	restore_trace(t0, "snapshot header read");
	have_h = true;
	if (strcmp(h.backend, "qemu") != 0) {
		err_set(err, errlen, "snapshot `%s` was taken by the %s backend, not qemu", path, h.backend);
		goto out;
	}
	if (!h.devices || (strcmp(h.devices, SNAP_DEVICES) != 0 &&
			   strcmp(h.devices, SNAP_DEVICES_RNG) != 0)) {
		err_set(err, errlen, "snapshot `%s`: its device layout %s is not one this provium builds",
		       path, h.devices ? h.devices : "(none)");
		goto out;
	}
	if (h.memory < (1u << 20) || h.cpus < 1) {
		err_set(err, errlen, "snapshot `%s`: corrupt header (memory/cpus)", path);
		goto out;
	}
	if (snap_backend_data(vm, &h, path, &fast, &ram_id, err, errlen) < 0)
		goto out;
	k = snapfile_next_section(r, &sect, &raw, err, errlen);
	if (k == 1 && !strcmp(sect, "boot_files")) {
		if (read_section(r, raw, &cpio, &cpio_len, err, errlen) < 0) {
			char e2[1024];
			snprintf(e2, sizeof e2, "snapshot `%s`: %s", path, err);
			err_set(err, errlen, "%s", e2);
			goto out;
		}
		k = snapfile_next_section(r, &sect, &raw, err, errlen);
	}
	restore_trace(t0, "boot_files section read");
	if (fast) {
		if (k != 1 || strcmp(sect, "ram") != 0) {
			if (k >= 0)
				err_set(err, errlen, "snapshot `%s`: corrupt (no `ram` section)", path);
			goto out;
		}
		if (asprintf(&ram_path, "%s.ram-%s", path, ram_id) < 0) {
			ram_path = NULL;
			err_set(err, errlen, "out of memory");
			goto out;
		}
		/* Only complete files ever carry the final name (qsnap_expand_ram
		 * renames a fsync'd temp), so one of the right size is trusted. */
		if (!ram_file_ok(ram_path, h.memory) &&
		    qsnap_expand_ram(r, ram_path, h.memory, err, errlen) < 0) {
			char e2[1024];
			snprintf(e2, sizeof e2, "snapshot `%s`: %s", path, err);
			err_set(err, errlen, "%s", e2);
			goto out;
		}
		k = snapfile_next_section(r, &sect, &raw, err, errlen);
		restore_trace(t0, "RAM file checked/expanded");
	}
	if (k != 1 || strcmp(sect, "migration") != 0) {
		if (k >= 0)
			err_set(err, errlen, "snapshot `%s`: corrupt (no `migration` section)", path);
		goto out;
	}

	/* The same machine: header memory/cpus/cmdline, the profile's kernel
	 * and the initrd it booted (profile + agent + its boot files): fw_cfg
	 * contents are not part of the stream, and vm:reset() boots them. */
	if (!vm->kernel || !file_exists(vm->kernel)) {
		err_set(err, errlen, "kernel `%s` not found (run `make guest` for the default profile)",
		       vm->kernel ? vm->kernel : "");
		goto out;
	}
	if (boot_initrd(vm, cpio, cpio_len, &initrd, err, errlen) < 0)
		goto out;
	restore_trace(t0, "initrd ready");
	stop_guest(vm);
	free(vm->gone);
	vm->gone = NULL;
	if (!vm->ac) {
		run_path(vm, "agent.sock", apath, sizeof apath);
		vm->ac = agent_client_listen(vm->name, apath, err, errlen);
		if (!vm->ac) {
			strip_vm_prefix(vm, err);
			goto out;
		}
	}
	{
		struct qemu_spec s = {
			.name = vm->name, .run_dir = vm->dir, .kernel = vm->kernel, .initrd = initrd,
			.cmdline = h.kernel_cmdline, .memory = h.memory, .cpus = h.cpus,
			.accel = pick_accel(vm, initrd, h.kernel_cmdline), .agent = true,
			.console = true, .vmgenid = true, .incoming_defer = true, .paused = true,
		};
		struct extra_args xa = { .n = 0 };
		if (fast) {
			ram_args_set(&ra, ram_path, h.memory, false);
			extra_add_ram(&xa, &ra);
		}
		if (extra_add_rng(vm, &xa, err, errlen) < 0)
			goto out;
		if (xa.n)
			s.extra = xa.v;
		run_path(vm, "console.log", apath, sizeof apath);
		unlink(apath);
		if (qemu_spawn(&s, &vm->proc, err, errlen) < 0)
			goto out;
	}
	restore_trace(t0, "QEMU spawned");
	deadline = qmp_now_ns() + RESTORE_HELLO_NS;
	run_path(vm, "qmp.sock", qpath, sizeof qpath);
	while (!vm->qmp) {
		int64_t slice = qmp_now_ns() + 250000000;
		if (qemu_wait(&vm->proc, 0) != 0)
			goto dead;
		vm->qmp = qmp_connect(qpath, slice < deadline ? slice : deadline, err, errlen);
		if (!vm->qmp && qmp_now_ns() >= deadline)
			goto fail;
	}
	restore_trace(t0, "QMP connected");
	if (agent_client_accept(vm->ac, deadline, err, errlen) < 0)
		goto fail;
	restore_trace(t0, "agent socket accepted");
	free(vm->qemu_version);
	vm->qemu_version = NULL;
	if (!(ver = qemu_version(vm, err, errlen)))
		goto fail;
	if (strcmp(ver, h.qemu_version) != 0) {
		err_set(err, errlen, "snapshot `%s` was taken with QEMU %s; this is QEMU %s", path,
		       h.qemu_version, ver);
		goto fail;
	}
	restore_trace(t0, "QEMU version checked");
	if (qsnap_load_stream(vm->qmp, r, fast, err, errlen) < 0) {
		char e2[1024];
		snprintf(e2, sizeof e2, "snapshot `%s`: %s", path, err);
		err_set(err, errlen, "%s", e2);
		goto fail;
	}
	k = snapfile_next_section(r, &sect, &raw, err, errlen);
	if (k != 0) {
		if (k > 0)
			err_set(err, errlen, "snapshot `%s`: corrupt (unexpected section `%s`)", path, sect);
		goto fail;
	}
	restore_trace(t0, "migration stream loaded");
	if (qmp_cmd(vm, "cont", NULL, err, errlen) < 0)
		goto fail;
	restore_trace(t0, "cont");
	if (handshake(vm, &vm->proc, NULL, vm->ac, false, deadline, err, errlen) < 0) {
		strip_vm_prefix(vm, err);
		goto fail;
	}
	restore_trace(t0, "agent Hello answered");
	vm->memory = h.memory;
	vm->cpus = h.cpus;
	vm->has_initial_time = h.has_initial_time;
	free(vm->boot_cmdline);
	vm->boot_cmdline = h.kernel_cmdline ? strdup(h.kernel_cmdline) : NULL;
	free(vm->boot_cpio);
	vm->boot_cpio = cpio;
	vm->boot_cpio_len = cpio_len;
	cpio = NULL;
	vm->ram_fd = -1;
	if (!h.has_initial_time) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		if (guest_clock_set(&vmm_qemu_ops, vm, (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec,
				    err, errlen) < 0) {
			strip_vm_prefix(vm, err);
			goto fail;
		}
		restore_trace(t0, "guest clock set");
	}
	rc = 0;
	goto out;
dead:
	check_qemu_died(vm, 200, err, errlen);
fail:
	if (vm->proc.pid > 0 && !vm->proc.reaped && qemu_wait(&vm->proc, 0) == 1) {
		char what[1024];
		snprintf(what, sizeof what, "%s", err);
		check_qemu_died(vm, 0, err, errlen);
		if (!strstr(err, what)) {
			char both[2048];
			snprintf(both, sizeof both, "%s (%s)", what, err);
			err_set(err, errlen, "%s", both);
		}
	}
	free(vm->gone);
	vm->gone = NULL;
	stop_guest(vm);
out:
	snapfile_close(r);
	if (have_h)
		snap_header_free(&h);
	free(ram_id);
	free(ram_path);
	free(initrd);
	free(cpio);
	return rc;
}

/* ---- test hooks (qemu_vm.h) ------------------------------------------------------------ */

pid_t qemu_vm_pid(const struct vmm_vm *vm)
{
	return vm && vm->proc.pid > 0 ? vm->proc.pid : 0;
}

int qemu_vm_reconnect(struct vmm_vm *vm, char *err, size_t errlen)
{
	char path[4096];
	json_t *a;
	int rc;
	int64_t deadline;

	if (vm->gone)
		return fail_gone(vm, err, errlen);
	run_path(vm, "agent.sock", path, sizeof path);
	a = json_pack("{s:s, s:{s:s, s:{s:{s:s, s:{s:s}}, s:b}}}", "id", "agent", "backend",
		      "type", "socket", "data", "addr", "type", "unix", "data", "path", path,
		      "server", 0);
	if (!a) {
		err_set(err, errlen, "out of memory");
		return -1;
	}
	/* QEMU opens the new backend (connects: it waits in our backlog)
	 * and closes the old connection. */
	rc = qmp_cmd(vm, "chardev-change", a, err, errlen);
	json_decref(a);
	if (rc < 0)
		return -1;
	deadline = qmp_now_ns() + INT64_C(10) * 1000000000;
	rc = handshake(vm, &vm->proc, NULL, vm->ac, true, deadline, err, errlen);
	if (rc < 0) {
		strip_vm_prefix(vm, err);
		check_qemu_died(vm, 0, err, errlen);
	}
	return rc;
}

const struct vmm_ops vmm_qemu_ops = {
	.name = "qemu",
	.unsupported_hint = " yet",
	.create = qemu_create,
	.boot = qemu_boot,
	.shutdown = qemu_shutdown,
	.pause = qemu_pause,
	.resume = qemu_resume,
	.reset = qemu_reset,
	.power_button = qemu_power_button,
	.destroy = qemu_destroy,
	.exec = qemu_exec,
	.read_file = qemu_read_file,
	.write_file = qemu_write_file,
	.stat = qemu_stat,
	.listdir = qemu_listdir,
	.mkdir = qemu_mkdir,
	.unlink = qemu_unlink,
	.rename = qemu_rename,
	.open = qemu_open,
	.file_read = qemu_file_read,
	.file_write = qemu_file_write,
	.file_seek = qemu_file_seek,
	.file_handle = qemu_file_handle,
	.file_close = qemu_file_close,
	.exec_async = qemu_exec_async,
	.proc_wait = qemu_proc_wait,
	.proc_kill = qemu_proc_kill,
	.proc_stdin_write = qemu_proc_stdin_write,
	.proc_close_stdin = qemu_proc_close_stdin,
	.proc_pid = qemu_proc_pid,
	.proc_handle = qemu_proc_handle,
	.proc_free = qemu_proc_free,
	.console_tail = qemu_console_tail,
	.snapshot = qemu_snapshot,
	.restore = qemu_restore,
	.syscall = qemu_syscall,
	.agent = qemu_agent,
	.run_path = qemu_run_path_op,
};
