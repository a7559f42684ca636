/* qemu_accel.c — accel = "auto": the KVM-or-TCG verdict, its cache, and
 * the built-in probe boot (see qemu_accel.h for the contract).
 *
 * Owns: the verdict cache, a directory of one-word files ("kvm"/"tcg")
 * named by a hash of what the verdict depends on. A probe's QEMU is
 * spawned and reaped with qemu_launch.h and its run directory is a temp
 * dir (tempfile.h); nothing outlives qemu_accel_resolve() but the cache
 * file. */
#include "errbuf.h"
#include "vmm/qemu_accel.h"
#include "vmm/qemu_launch.h"
#include "atomicfile.h"
#include "fsutil.h"
#include "tempfile.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

static int default_accel_dir(char *buf, size_t len)
{
	const char *x = getenv("XDG_CACHE_HOME");
	int n;
	if (x && *x == '/')
		n = snprintf(buf, len, "%s/provium/accel", x);
	else {
		const char *h = getenv("HOME");
		if (!h || !*h)
			return -1;
		n = snprintf(buf, len, "%s/.cache/provium/accel", h);
	}
	return n < 0 || (size_t)n >= len ? -1 : 0;
}

/* The resolved path of the binary (PATH search for a bare name). */
static int find_binary(const char *name, char *buf, size_t len)
{
	char *p = path_lookup(name);
	int rc = p && snprintf(buf, len, "%s", p) < (int)len ? 0 : -1;
	free(p);
	return rc;
}

static void ident(char *buf, size_t len, const char *path)
{
	struct stat st;
	char real[4096];
	if (!path || !realpath(path, real))
		snprintf(real, sizeof real, "%s", path ? path : "(none)");
	if (stat(real, &st) < 0)
		snprintf(buf, len, "%s missing", real);
	else
		snprintf(buf, len, "%s dev=%llu ino=%llu size=%lld mtime=%lld.%09ld", real,
			 (unsigned long long)st.st_dev, (unsigned long long)st.st_ino,
			 (long long)st.st_size, (long long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
}

int qemu_accel_cache_path(const struct qemu_accel_probe *p, char *buf, size_t len)
{
	char dir[4096], qbin[4096], qid[4400], kid[4400];
	struct utsname u;
	if (p->cache_dir)
		snprintf(dir, sizeof dir, "%s", p->cache_dir);
	else if (default_accel_dir(dir, sizeof dir) < 0)
		return -1;
	if (find_binary(qemu_binary(p->qemu), qbin, sizeof qbin) < 0)
		snprintf(qbin, sizeof qbin, "%s", qemu_binary(p->qemu));
	ident(qid, sizeof qid, qbin);
	ident(kid, sizeof kid, p->kernel);
	if (uname(&u) < 0)
		return -1;

	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	if (!c)
		return -1;
	int ok = EVP_DigestInit_ex(c, EVP_sha256(), NULL) == 1;
	const char *parts[] = { "provium-accel-v1", u.release, u.version, qid, kid };
	for (size_t i = 0; ok && i < sizeof parts / sizeof parts[0]; i++)
		ok = EVP_DigestUpdate(c, parts[i], strlen(parts[i]) + 1) == 1;
	ok = ok && EVP_DigestFinal_ex(c, md, &mdlen) == 1;
	EVP_MD_CTX_free(c);
	if (!ok)
		return -1;
	char hex[2 * EVP_MAX_MD_SIZE + 1];
	for (unsigned i = 0; i < mdlen; i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
	int n = snprintf(buf, len, "%s/%s", dir, hex);
	return n < 0 || (size_t)n >= len ? -1 : 0;
}

/* Atomically write word into path (temp file + fsync + rename). */
static void cache_store(const char *path, const char *word)
{
	char dir[4096], line[64];
	if ((size_t)snprintf(dir, sizeof dir, "%s", path) >= sizeof dir)
		return;
	char *slash = strrchr(dir, '/');
	if (!slash)
		return;
	*slash = 0;
	if (mkdir_p(dir, 0755, NULL) < 0)
		return;
	int n = snprintf(line, sizeof line, "%s\n", word);
	if (n > 0 && (size_t)n < sizeof line)
		write_file_atomic(path, line, (size_t)n, 0644);
}

static int cache_load(const char *path)
{
	char buf[16] = { 0 };
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0)
		return -1;
	if (strncmp(buf, "kvm", 3) == 0)
		return ACCEL_KVM;
	if (strncmp(buf, "tcg", 3) == 0)
		return ACCEL_TCG;
	return -1;
}

/* Built-in probe: boot the kernel alone under KVM and wait for its banner
 * on ttyS0. A guest that hangs in the decompressor never prints it. */
static int banner_probe(const struct qemu_accel_probe *p, int64_t deadline, char *err, size_t errlen)
{
	char *dir = make_temp_dir("provium-accel");
	char log[4200];
	struct qemu_proc proc;
	int rc = -1;

	if (!dir) {
		err_set(err, errlen, "mkdtemp: %s", strerror(errno));
		return -1;
	}
	struct qemu_spec s = {
		.qemu = p->qemu, .name = "provium-accel-probe", .run_dir = dir, .kernel = p->kernel,
		.cmdline = "console=ttyS0 panic=-1", .memory = 128ull << 20, .cpus = 1,
		.accel = ACCEL_KVM, .console = true,
	};
	if (qemu_spawn(&s, &proc, err, errlen) < 0)
		goto out;
	qemu_run_path(log, sizeof log, dir, "console.log");
	for (;;) {
		char buf[8192];
		int fd = open(log, O_RDONLY | O_CLOEXEC);
		ssize_t n = fd >= 0 ? read(fd, buf, sizeof buf - 1) : -1;
		if (fd >= 0)
			close(fd);
		if (n > 0) {
			buf[n] = 0;
			if (memmem(buf, (size_t)n, "Linux version", 13)) {
				rc = 0;
				break;
			}
		}
		if (qemu_wait(&proc, 0) == 1) {
			char st[128];
			qemu_describe_status(&proc, st, sizeof st);
			err_set(err, errlen, "KVM probe guest %s before its banner", st);
			break;
		}
		if (mono_now_ns() >= deadline) {
			err_set(err, errlen, "timed out");
			break;
		}
		poll(NULL, 0, 50);
	}
	qemu_kill(&proc);
out:
	temp_remove(dir);
	free(dir);
	return rc;
}

enum accel_kind qemu_accel_resolve(enum accel_kind want, const struct qemu_accel_probe *p,
				   char *why, size_t whylen)
{
	char cpath[4200], perr[256];
	if (want != ACCEL_AUTO) {
		err_set(why, whylen, "requested");
		return want;
	}
	const char *dev = p && p->kvm_dev ? p->kvm_dev : "/dev/kvm";
	int fd = open(dev, O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		err_set(why, whylen, "%s: %s", dev, strerror(errno));
		return ACCEL_TCG;
	}
	close(fd);
	if (!p || !p->kernel) {
		err_set(why, whylen, "no kernel to probe KVM with");
		return ACCEL_TCG;
	}
	bool cacheable = qemu_accel_cache_path(p, cpath, sizeof cpath) == 0;
	if (cacheable) {
		int v = cache_load(cpath);
		if (v >= 0) {
			err_set(why, whylen, "cached verdict %s", cpath);
			return (enum accel_kind)v;
		}
	}
	int64_t deadline = mono_now_ns() + (int64_t)(p->timeout_ms > 0 ? p->timeout_ms : 4000) * 1000000;
	perr[0] = 0;
	int r = p->boot ? p->boot(p->ctx, deadline, perr, sizeof perr)
			: banner_probe(p, deadline, perr, sizeof perr);
	enum accel_kind verdict = r == 0 ? ACCEL_KVM : ACCEL_TCG;
	if (cacheable)
		cache_store(cpath, verdict == ACCEL_KVM ? "kvm" : "tcg");
	if (r == 0)
		err_set(why, whylen, "KVM probe boot succeeded");
	else
		err_set(why, whylen, "KVM probe: %s", perr[0] ? perr : "failed");
	return verdict;
}
