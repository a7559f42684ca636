/* qemu.c — the `qemu` VMM backend: a real guest under QEMU, driven over
 * QMP (qmp.h) and the agent channel (agent_client.h). This file owns the
 * VM itself: create, boot (initrd, cmdline, accelerator, guest RAM file),
 * the handshake, shutdown/pause/resume/reset/power button, destroy, and
 * the vmm_ops table. The agent-backed guest operations live in
 * qemu_ops.c, snapshot take/restore in qemu_snapshot.c (the bytes are
 * moved by qemu_migrate.c); what they share is in qemu_priv.h.
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
 * Snapshots (qemu_migrate.h moves the bytes): take = quiet channel, stop,
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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <jansson.h>

#include "errbuf.h"
#include "proto/protocol.h"
#include "vmm/agent_client.h"
#include "vmm/overlay.h"
#include "vmm/qemu_accel.h"
#include "vmm/qemu_launch.h"
#include "vmm/qemu_priv.h"
#include "vmm/qemu_vm.h"
#include "vmm/rngfeed.h"
#include "vmm/qmp.h"
#include "vmm/vmm.h"

#define DEFAULT_AGENT_TIMEOUT_NS (INT64_C(30) * 1000000000)
#define KVM_PROBE_MS 5000
#define CONSOLE_TAIL_MAX 2048

static unsigned vm_seq;

/* ---- small helpers -------------------------------------------------- */

static char *xstrdup(const char *s)
{
	return s ? strdup(s) : NULL;
}

/* Strip a leading "vm `<name>`: " (lvm.c adds its own) in place. */
void qvm_strip_vm_prefix(const struct vmm_vm *vm, char *err)
{
	char pre[300];
	size_t n;
	if (!err)
		return;
	n = (size_t)snprintf(pre, sizeof pre, "vm `%s`: ", vm->name);
	if (n < sizeof pre && !strncmp(err, pre, n))
		memmove(err, err + n, strlen(err + n) + 1);
}

void qvm_run_path(const struct vmm_vm *vm, const char *leaf, char *buf, size_t len)
{
	if (qemu_run_path(buf, len, vm->dir, leaf) < 0)
		buf[0] = 0;
}

/* The last max bytes of <dir>/<leaf>, starting at a line boundary when
 * one is near; NUL-terminated, \r removed. malloc'd, or NULL. */
char *qvm_file_tail(const struct vmm_vm *vm, const char *leaf, size_t max, size_t *outlen)
{
	char path[4096], *buf;
	struct stat st;
	off_t off;
	ssize_t n;
	size_t len = 0;
	int fd;

	qvm_run_path(vm, leaf, path, sizeof path);
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
	tail = room >= 32 ? qvm_file_tail(vm, "console.log", room, NULL) : NULL;
	if (tail && *tail)
		err_set(err, errlen, "%s%s%s", what, sep, tail);
	else
		err_set(err, errlen, "%s%s", what, tail ? " (the console log is empty)" : "");
	free(tail);
}

/* err = "<what>" + the console around the kernel panic (conwatch). */
static void err_with_panic(const struct vmm_vm *vm, char *err, size_t errlen, const char *what)
{
	static const char sep[] = "\n--- console (around the kernel panic) ---\n";
	size_t wl = strlen(what), room;
	char path[4096], *ex;

	if (!err || !errlen)
		return;
	room = errlen > wl + sizeof sep + 1 ? errlen - wl - sizeof sep - 1 : 0;
	if (room > CONSOLE_TAIL_MAX)
		room = CONSOLE_TAIL_MAX;
	qvm_run_path(vm, "console.log", path, sizeof path);
	ex = conwatch_excerpt(&vm->con, path, room);
	if (ex && *ex)
		err_set(err, errlen, "%s%s%s", what, sep, ex);
	else
		err_set(err, errlen, "%s", what);
	free(ex);
}

void qvm_console_restart(struct vmm_vm *vm)
{
	char path[4096];
	qvm_run_path(vm, "console.log", path, sizeof path);
	unlink(path);
	conwatch_reset(&vm->con);
}

/* Has the kernel panicked (console.log read up to now)? */
static bool console_panicked(struct vmm_vm *vm)
{
	char path[4096];
	if (vm->con.dead)
		return true;
	qvm_run_path(vm, "console.log", path, sizeof path);
	return path[0] && conwatch_poll(&vm->con, path);
}

/* The agent channel's watch (agent_client_set_watch): a panic on the
 * console or QEMU's exit ends an op's wait at once, instead of at its
 * timeout. qvm_check_qemu_died then describes it. */
int qvm_guest_watch(void *ctx, char *why, size_t whylen)
{
	struct vmm_vm *vm = ctx;
	if (console_panicked(vm)) {
		snprintf(why, whylen, "the guest kernel panicked: %s", vm->con.panic);
		return -1;
	}
	if (vm->proc.pid > 0 && qemu_wait(&vm->proc, 0) == 1) {
		snprintf(why, whylen, "QEMU exited");
		return -1;
	}
	return 0;
}

/* The last line of qemu.log (QEMU's own error), or "". */
static void qemu_log_line(const struct vmm_vm *vm, char *buf, size_t len)
{
	char *t = qvm_file_tail(vm, "qemu.log", 1024, NULL), *line, *end;
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
void qvm_stop_guest(struct vmm_vm *vm)
{
	vm->paused = false;
	qemu_kill(&vm->proc);
	{
		char e[256];
		qbdisk_stop_all(vm, NBDMED_COMMIT, e, sizeof e);
	}
	rngfeed_stop(vm->rng_pid);
	vm->rng_pid = 0;
	qmp_close(vm->qmp);
	vm->qmp = NULL;
	if (vm->ram_fd >= 0)
		close(vm->ram_fd);
	vm->ram_fd = -1;
	if (vm->ac)
		agent_client_disconnect(vm->ac);
	qdisk_forget_all(vm);
	qnet_forget_slots(vm);
}

/* Mark the VM unusable with reason (ops then fail fast with it). */
void qvm_set_gone(struct vmm_vm *vm, const char *reason)
{
	if (!vm->gone)
		vm->gone = strdup(reason);
}

/* After a failed channel operation: if QEMU has exited (or does so
 * within wait_ms), describe that with the console tail into err and mark
 * the VM gone. Returns true when QEMU is gone. */
bool qvm_check_qemu_died(struct vmm_vm *vm, int wait_ms, char *err, size_t errlen)
{
	char st[160], what[600], line[300];
	if (vm->proc.pid <= 0 && !vm->proc.reaped)
		return false;
	if (console_panicked(vm)) {
		/* Let the kernel finish its banner (up to the end marker) or
		 * QEMU exit (panic=-1 reboots: -no-reboot), within a second. */
		for (int i = 0; i < 20 && !vm->con.ended && vm->proc.pid > 0; i++) {
			if (qemu_wait(&vm->proc, 50) == 1)
				break;
			console_panicked(vm);
		}
		console_panicked(vm);
		if (vm->proc.pid > 0 && qemu_wait(&vm->proc, 0) != 1)
			snprintf(st, sizeof st, "QEMU was still running and has been killed");
		else {
			char s2[140];
			qemu_describe_status(&vm->proc, s2, sizeof s2);
			snprintf(st, sizeof st, "QEMU %s", s2);
		}
		snprintf(what, sizeof what, "the guest kernel panicked: %s (%s)", vm->con.panic, st);
		err_with_panic(vm, err, errlen, what);
	} else {
		if (vm->proc.pid > 0 && qemu_wait(&vm->proc, wait_ms) != 1)
			return false;
		/* a panic printed just before QEMU went away */
		if (console_panicked(vm))
			return qvm_check_qemu_died(vm, 0, err, errlen);
		qemu_describe_status(&vm->proc, st, sizeof st);
		qemu_log_line(vm, line, sizeof line);
		snprintf(what, sizeof what, "QEMU %s%s", st, line);
		err_with_console(vm, err, errlen, what);
	}
	qvm_set_gone(vm, err);
	qvm_stop_guest(vm);
	return true;
}

/* ops->gone: an exited QEMU is reaped and described now (later ops fail
 * fast with the reason). */
static bool qemu_gone(struct vmm_vm *vm)
{
	char e[4096];
	return vm->gone || qvm_check_qemu_died(vm, 0, e, sizeof e);
}

int qvm_fail_gone(struct vmm_vm *vm, char *err, size_t errlen)
{
	err_set(err, errlen, "the VM is gone (it died; create a new VM): %s", vm->gone);
	errno = EIO;
	return -1;
}

/* ---- requests --------------------------------------------------------- */

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
	/* the profile's root image is the first disk: /dev/vda */
	if (o->ndisks && o->disks[0].root && n < sizeof extra) {
		const char *b = o->kernel_cmdline ? o->kernel_cmdline : vm->cmdline;
		if (!b || (strncmp(b, "root=", 5) && !strstr(b, " root=")))
			n += (size_t)snprintf(extra + n, sizeof extra - n, "%sroot=/dev/vda",
					      n ? " " : "");
	}
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
int qvm_boot_initrd(const struct vmm_vm *vm, const unsigned char *cpio, size_t cpio_len,
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

bool qvm_file_exists(const char *p)
{
	struct stat st;
	return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

/* Wait for QMP (when qmp is non-NULL), QEMU's connection to agent.sock
 * (when accept) and HelloOk, in slices
 * so that an early QEMU exit is seen at once. 0, or -1 with err. */
int qvm_handshake(struct vmm_vm *vm, struct qemu_proc *proc, struct qmp **qmp,
		  struct agent_client *ac, bool accept, int64_t deadline, char *err, size_t errlen)
{
	char path[4096];
	int64_t slice;

	qvm_run_path(vm, "qmp.sock", path, sizeof path);
	while (qmp && !*qmp) {
		if (qemu_wait(proc, 0) != 0 || console_panicked(vm))
			return -1;
		slice = qmp_now_ns() + 250000000;
		*qmp = qmp_connect(path, slice < deadline ? slice : deadline, err, errlen);
		if (!*qmp && qmp_now_ns() >= deadline)
			return -1;
	}
	while (accept) {
		if (qemu_wait(proc, 0) != 0 || console_panicked(vm))
			return -1;
		slice = qmp_now_ns() + 250000000;
		if (agent_client_accept(ac, slice < deadline ? slice : deadline, err, errlen) == 0)
			break;
		if (qmp_now_ns() >= deadline)
			return -1;
	}
	for (;;) {
		if (qemu_wait(proc, 0) != 0 || console_panicked(vm))
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
	qvm_run_path(&tmp, "agent.sock", path, sizeof path);
	ac = agent_client_listen("kvm-probe", path, err, errlen);
	if (ac) {
		struct qemu_spec s = {
			.name = "provium-kvm-probe", .run_dir = dir, .kernel = p->kernel,
			.initrd = p->initrd, .cmdline = p->cmdline, .memory = QEMU_DEFAULT_MEMORY,
			.cpus = 1, .accel = ACCEL_KVM, .agent = true, .console = true,
		};
		if (qemu_spawn(&s, &proc, err, errlen) == 0) {
			rc = qvm_handshake(&tmp, &proc, NULL, ac, true, deadline, err, errlen);
			if (rc < 0 && qemu_wait(&proc, 0) == 1)
				err_set(err, errlen, "the KVM guest exited before the handshake");
			else if (rc < 0)
				err_set(err, errlen, "timed out");
		}
	}
	qemu_kill(&proc);
	agent_client_free(ac);
	for (size_t i = 0; i < sizeof leaves / sizeof leaves[0]; i++) {
		qvm_run_path(&tmp, leaves[i], path, sizeof path);
		unlink(path);
	}
	rmdir(dir);
	return rc;
}

enum accel_kind qvm_pick_accel(const struct vmm_vm *vm, const char *initrd, const char *cmdline)
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

void qvm_ram_args_set(struct ram_args *ra, const char *mem_path, uint64_t size, bool share)
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


void qvm_extra_add_ram(struct extra_args *x, const struct ram_args *ra)
{
	for (size_t i = 0; ra->v[i]; i++)
		x->v[x->n++] = ra->v[i];
	x->v[x->n] = NULL;
}

/* With rng_seed: start the generator on <run dir>/rng.fifo and add a
 * virtio-rng-pci device reading it. 0, or -1 with err. */
int qvm_extra_add_rng(struct vmm_vm *vm, struct extra_args *x, char *err, size_t errlen)
{
	char fifo[4096];
	if (!vm->has_rng_seed)
		return 0;
	qvm_run_path(vm, "rng.fifo", fifo, sizeof fifo);
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
	qvm_ram_args_set(ra, mp, size, true);
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
	if (!qvm_file_exists(vm->kernel)) {
		err_set(err, errlen, "kernel `%s` not found (run `make guest` for the default profile)",
		       vm->kernel);
		return -1;
	}
	if (vm->initrd && !qvm_file_exists(vm->initrd)) {
		err_set(err, errlen, "initrd `%s` not found (run `make guest` for the default profile)",
		       vm->initrd);
		return -1;
	}
	if (boot_cmdline(vm, o, &cmdline, err, errlen) < 0 ||
	    boot_files_cpio(o, &cpio, &cpio_len, err, errlen) < 0 ||
	    qvm_boot_initrd(vm, cpio, cpio_len, &initrd, err, errlen) < 0)
		goto out;

	free(vm->gone);
	vm->gone = NULL;
	if (!vm->ac) {
		qvm_run_path(vm, "agent.sock", path, sizeof path);
		vm->ac = agent_client_listen(vm->name, path, err, errlen);
		if (!vm->ac) {
			qvm_strip_vm_prefix(vm, err);
			goto out;
		}
		agent_client_set_watch(vm->ac, qvm_guest_watch, vm, QVM_WATCH_MS);
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
			.accel = qvm_pick_accel(vm, initrd, cmdline), .agent = true, .console = true,
			.vmgenid = true,
			.disk_slots = !o->no_hotplug,
		};
		if (vm->ram_fd >= 0)
			close(vm->ram_fd);
		vm->ram_fd = -1;
		if (fast_path_enabled() && ram_shared_file(vm, mem, &ra) == 0)
			qvm_extra_add_ram(&xa, &ra);
		if (qvm_extra_add_rng(vm, &xa, err, errlen) < 0)
			goto out;
		qnet_boot_args(vm, &xa);
		if (qbdisk_boot_args(vm, o, &xa, err, errlen) < 0)
			goto out;
		if (xa.n)
			s.extra = xa.v;
		s.pass_fds = xa.fds;
		s.npass_fds = xa.nfds;
		/* the console log of an earlier boot of this VM is not this one's */
		qvm_console_restart(vm);
		deadline = qmp_now_ns() + timeout;
		if (qemu_spawn(&s, &vm->proc, err, errlen) < 0)
			goto out;
	}
	if (qvm_handshake(vm, &vm->proc, &vm->qmp, vm->ac, true, deadline, err, errlen) < 0) {
		char what[512];
		if (!qvm_check_qemu_died(vm, 200, err, errlen)) {
			snprintf(what, sizeof what,
				 "the agent did not answer within %.1f s (QEMU was still running and "
				 "has been killed)", (double)timeout / 1e9);
			err_with_console(vm, err, errlen, what);
		}
		free(vm->gone);
		vm->gone = NULL;
		qvm_stop_guest(vm);
		goto out;
	}
	if (qnet_after_start(vm, err, errlen) < 0) {
		qvm_stop_guest(vm);
		goto out;
	}
	qbdisk_after_start(vm, o);
	info->cid = 0;
	info->memory_bytes = mem_rounded(o->memory);
	vm->memory = info->memory_bytes;
	vm->cpus = o->cpus > 0 ? o->cpus : 1;
	vm->has_initial_time = o->has_initial_time;
	vm->slots = !o->no_hotplug;
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

int qvm_qmp_cmd(struct vmm_vm *vm, const char *cmd, json_t *args, char *err, size_t errlen)
{
	int rc;
	if (vm->gone)
		return qvm_fail_gone(vm, err, errlen);
	if (!vm->qmp) {
		err_set(err, errlen, "the VM is not running");
		return -1;
	}
	rc = qmp_execute(vm->qmp, cmd, args, QMP_TIMEOUT_MS, NULL, err, errlen);
	if (rc < 0 && qmp_broken(vm->qmp))
		qvm_check_qemu_died(vm, 1000, err, errlen);
	return rc;
}

static int qemu_shutdown(struct vmm_vm *vm, char *err, size_t errlen)
{
	char e[256];
	if (vm->proc.pid > 0 && !vm->gone && vm->ac && agent_client_fd(vm->ac) >= 0) {
		struct agent_reply rep;
		/* A shutdown is bounded on its own (2 s + 4 s, then quit and
		 * kill): a test's teardown deadline (agent_client_set_limit)
		 * does not cut the guest's clean poweroff short. */
		int64_t limit = agent_client_suspend_limit();
		/* Graceful: the agent syncs and powers off (about 1 s). */
		if (agent_call(vm->ac, PROTO_K_POWEROFF, 0, NULL, NULL, 2000, &rep, e, sizeof e) == 0)
			qemu_wait(&vm->proc, 4000);
		agent_reply_free(&rep);
		agent_client_restore_limit(limit);
	}
	if (vm->proc.pid > 0 && vm->qmp && !qmp_broken(vm->qmp) &&
	    qmp_execute(vm->qmp, "quit", NULL, 1000, NULL, e, sizeof e) == 0)
		qemu_wait(&vm->proc, 2000);
	qvm_stop_guest(vm);
	return 0;
}

/* ops->halt: QEMU killed without the guest's poweroff (about 1 s of
 * TCG), unless a disk is attached: its image gets the guest's flush.
 * Without any disk (nothing to commit once QEMU is gone) the kill is not
 * waited for: the kernel tears the old QEMU down while the restore that
 * replaces it goes on (qemu_reap_killed reaps it). */
static int qemu_halt(struct vmm_vm *vm, char *err, size_t errlen)
{
	if (qdisk_any(vm))
		return qemu_shutdown(vm, err, errlen);
	if (!vm->nbdisks)
		qemu_kill_nowait(&vm->proc);
	qvm_stop_guest(vm);
	return 0;
}

/* ops->discard (vm:close, the scope walker): a guest whose end nothing
 * outside it can see (no disk of any kind: nothing to flush; no NIC: no
 * peer sees its connections close) is killed without its poweroff
 * (~120 ms of TCG per test-scoped VM); any other gets the graceful
 * shutdown. */
static int qemu_discard(struct vmm_vm *vm, char *err, size_t errlen)
{
	bool nic = false;
	for (int i = 0; i < QEMU_NET_SLOTS; i++)
		nic = nic || vm->nics[i].id != NULL;
	if (vm->nbdisks || nic)
		return qemu_shutdown(vm, err, errlen);
	return qemu_halt(vm, err, errlen);   /* no disk: killed, not waited for */
}

static int qemu_pause(struct vmm_vm *vm, char *err, size_t errlen)
{
	if (qvm_qmp_cmd(vm, "stop", NULL, err, errlen) < 0)
		return -1;
	vm->paused = true;
	return 0;
}

static int qemu_resume(struct vmm_vm *vm, char *err, size_t errlen)
{
	if (qvm_qmp_cmd(vm, "cont", NULL, err, errlen) < 0)
		return -1;
	vm->paused = false;
	return 0;
}

static int set_reboot_action(struct vmm_vm *vm, const char *action, char *err, size_t errlen)
{
	json_t *a = json_pack("{s:s}", "reboot", action);
	int rc = a ? qvm_qmp_cmd(vm, "set-action", a, err, errlen) : -1;
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
	if (qvm_qmp_cmd(vm, "system_reset", NULL, err, errlen) < 0 ||
	    qmp_wait_event(vm->qmp, "RESET", QMP_TIMEOUT_MS, NULL, err, errlen) < 0) {
		set_reboot_action(vm, "shutdown", e2, sizeof e2);
		return -1;
	}
	/* The rebooted agent waits for a Hello on the same connection;
	 * anything the old one still had in flight is ignored until HelloOk. */
	rc = qvm_handshake(vm, &vm->proc, NULL, vm->ac, false, qmp_now_ns() + timeout, err, errlen);
	if (rc < 0) {
		qvm_strip_vm_prefix(vm, err);
		if (!qvm_check_qemu_died(vm, 200, err, errlen)) {
			char what[512];
			snprintf(what, sizeof what, "after the reset: %s", err);
			err_with_console(vm, err, errlen, what);
			qvm_set_gone(vm, err);
		}
		return -1;
	}
	return set_reboot_action(vm, "shutdown", err, errlen);
}

/* The power goes out: QEMU dies first (no request may follow), then the
 * disks' servers drop what the guest never flushed. */
static int qemu_power_cut(struct vmm_vm *vm, char *err, size_t errlen)
{
	int rc;
	qemu_kill(&vm->proc);
	rc = qbdisk_stop_all(vm, NBDMED_DROP, err, errlen);
	qvm_stop_guest(vm);
	return rc;
}

static int qemu_power_button(struct vmm_vm *vm, char *err, size_t errlen)
{
	if (qvm_qmp_cmd(vm, "system_powerdown", NULL, err, errlen) < 0)
		return -1;
	if (qemu_wait(&vm->proc, 30000) != 1) {
		qvm_stop_guest(vm);
		err_set(err, errlen, "the guest did not power off within 30 s of the power button; "
		       "QEMU was killed");
		return -1;
	}
	qvm_stop_guest(vm);
	return 0;
}

static void vm_free(struct vmm_vm *vm)
{
	free(vm->name); free(vm->dir); free(vm->kernel); free(vm->initrd);
	free(vm->cmdline); free(vm->overlay_path); free(vm->accel); free(vm->gone);
	free(vm->profile); free(vm->boot_cmdline); free(vm->qemu_version); free(vm->boot_cpio);
	if (vm->ram_fd >= 0)
		close(vm->ram_fd);
	qnet_free(vm);
	free(vm);
}

void qvm_vm_unref(struct vmm_vm *vm)
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
	qvm_stop_guest(vm);
	qbdisk_restore_images_clear(vm);
	agent_client_free(vm->ac);
	vm->ac = NULL;
	for (size_t i = 0; i < sizeof leaves / sizeof leaves[0]; i++) {
		if (!vm->dir_tmp && i >= 3)
			break; /* keep the logs in the runner's run dir */
		qvm_run_path(vm, leaves[i], path, sizeof path);
		unlink(path);
	}
	if (vm->dir_tmp)
		rmdir(vm->dir);
	vm->destroyed = true;
	qvm_set_gone(vm, "the VM was destroyed");
	qvm_vm_unref(vm);
}

/* ---- test hooks (qemu_vm.h) ------------------------------------------------------------ */

pid_t qemu_vm_pid(const struct vmm_vm *vm)
{
	return vm && vm->proc.pid > 0 ? vm->proc.pid : 0;
}

int qemu_vm_fault_frame(struct vmm_vm *vm, const char *mode, char *err, size_t errlen)
{
	struct agent_req r;
	struct agent_reply rep;

	agent_req_fault_frame(&r, mode);
	if (qvm_call(vm, PROTO_K_FAULT_FRAME, &r, 30000, &rep, err, errlen) < 0)
		return -1;
	agent_reply_free(&rep);
	return 0;
}

int qemu_vm_reconnect(struct vmm_vm *vm, char *err, size_t errlen)
{
	char path[4096];
	json_t *a;
	int rc;
	int64_t deadline;

	if (vm->gone)
		return qvm_fail_gone(vm, err, errlen);
	qvm_run_path(vm, "agent.sock", path, sizeof path);
	a = json_pack("{s:s, s:{s:s, s:{s:{s:s, s:{s:s}}, s:b}}}", "id", "agent", "backend",
		      "type", "socket", "data", "addr", "type", "unix", "data", "path", path,
		      "server", 0);
	if (!a) {
		err_set(err, errlen, "out of memory");
		return -1;
	}
	/* QEMU opens the new backend (connects: it waits in our backlog)
	 * and closes the old connection. */
	rc = qvm_qmp_cmd(vm, "chardev-change", a, err, errlen);
	json_decref(a);
	if (rc < 0)
		return -1;
	deadline = qmp_now_ns() + INT64_C(10) * 1000000000;
	rc = qvm_handshake(vm, &vm->proc, NULL, vm->ac, true, deadline, err, errlen);
	if (rc < 0) {
		qvm_strip_vm_prefix(vm, err);
		qvm_check_qemu_died(vm, 0, err, errlen);
	}
	return rc;
}

const struct vmm_ops vmm_qemu_ops = {
	.name = "qemu",
	.unsupported_hint = " yet",
	.nic_add = qemu_nic_add,
	.nic_link = qemu_nic_link,
	.create = qemu_create,
	.boot = qemu_boot,
	.shutdown = qemu_shutdown,
	.halt = qemu_halt,
	.discard = qemu_discard,
	.pause = qemu_pause,
	.resume = qemu_resume,
	.reset = qemu_reset,
	.power_button = qemu_power_button,
	.power_cut = qemu_power_cut,
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
	.file_route = qemu_file_route,
	.file_close = qemu_file_close,
	.exec_async = qemu_exec_async,
	.proc_wait = qemu_proc_wait,
	.proc_kill = qemu_proc_kill,
	.proc_stdin_write = qemu_proc_stdin_write,
	.proc_close_stdin = qemu_proc_close_stdin,
	.proc_pid = qemu_proc_pid,
	.proc_handle = qemu_proc_handle,
	.proc_route = qemu_proc_route,
	.proc_free = qemu_proc_free,
	.gone = qemu_gone,
	.console_tail = qemu_console_tail,
	.snapshot = qemu_snapshot,
	.restore = qemu_restore,
	.restore_images = qbdisk_restore_images,
	.syscall = qemu_syscall,
	.agent = qemu_agent,
	.run_path = qemu_run_path_op,
	.disk_attach = qdisk_attach,
	.disk_faults = qdisk_faults,
	.disk_detach = qdisk_detach,
};
