/* test_fixture.c — the fixture cache key (src/host/fixture/key.c) and the
 * cache directory (cache.c): each key input changes the key, scanning
 * limits, cycles; install, locks, eviction order; expanded RAM files
 * as part of their entry (sizes by blocks, orphans, evict, clean); the
 * lab pack (labpack.c): round trip, RAM files left out, corruption and
 * unsafe paths refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "config.h"
#include "fixture/cache.h"
#include "fixture/key.h"
#include "fixture/labpack.h"
#include "fsutil.h"

static char dir[64], root[128], *roots[2];
static struct config cfg;
static struct profile profs[2];

static void put(const char *rel, const char *text)
{
	char p[512];
	FILE *f;
	snprintf(p, sizeof p, "%s/%s", dir, rel);
	f = fopen(p, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static int setup(void **st)
{
	(void)st;
	strcpy(dir, "/tmp/provium-fixture-XXXXXX");
	if (!mkdtemp(dir))
		return -1;
	snprintf(root, sizeof root, "%s/tests", dir);
	mkdir(root, 0755);
	roots[0] = root;
	char p[256];
	snprintf(p, sizeof p, "%s/tests/fx", dir);
	mkdir(p, 0755);
	snprintf(p, sizeof p, "%s/tests/lib", dir);
	mkdir(p, 0755);
	snprintf(p, sizeof p, "%s/host", dir);
	mkdir(p, 0755);
	memset(&cfg, 0, sizeof cfg);
	profs[0].name = (char *)(uintptr_t)"a";
	profs[1].name = (char *)(uintptr_t)"b";
	cfg.profiles = profs;
	cfg.nprofiles = 2;
	return 0;
}

static int teardown(void **st)
{
	(void)st;
	rm_rf(dir);
	return 0;
}

static void key_of(const char *name, char hex[65])
{
	struct fixture_ctx c = {.roots = (const char *const *)roots, .cfg = &cfg, .identity = "local"};
	char err[512];
	if (fixture_key(&c, name, hex, err, sizeof err) != 0)
		fail_msg("fixture_key(%s): %s", name, err);
}

/* Run mutate() and say whether the key of name changed. */
static int changes(const char *name, void (*mutate)(void))
{
	char a[65], b[65];
	key_of(name, a);
	mutate();
	key_of(name, b);
	return strcmp(a, b) != 0;
}

static void m_src(void) { put("tests/fx/base.fixture.lua", "local h = require('lib.h')\n-- v2\n"
	"provium:depends_on_file('../../host/dep')\nlocal vm = x:push_file('../../host/bin', '/b')\n"
	"x:push_file('../../host/big', '/big', {auto_dep = false})\nx:push_file(var, '/v')\n"
	"-- require('lib.comment')\nlocal s = [[ require('lib.comment') ]]\n"); }
static void m_helper(void) { put("tests/lib/h.lua", "local d = require('lib.deep')\nreturn 2\n"); }
static void m_deep(void) { put("tests/lib/deep.lua", "return 'deep2'\n"); }
static void m_comment(void) { put("tests/lib/comment.lua", "return 'c2'\n"); }
static void m_dep(void) { put("host/dep", "dep-longer-now\n"); }
static void m_bin(void) { put("host/bin", "bin-longer-now\n"); }
static void m_big(void) { put("host/big", "big-longer-now\n"); }
static void m_var(void) { put("host/var", "var-longer-now\n"); }
static void m_kernel_b(void) { put("kb", "kernel b, longer\n"); }
static void m_initrd_path(void) { static char p[256]; snprintf(p, sizeof p, "%s/ib2", dir);
	put("ib2", "x"); profs[1].initrd = p; }
static void m_overlay(void) { put("ovl", "agent overlay, rebuilt\n"); }
static void m_base_for_derived(void) { put("tests/fx/base.fixture.lua", "-- changed again\n"); }

static void key_inputs(void **st)
{
	static char kb[256], ib[256];
	(void)st;
	snprintf(kb, sizeof kb, "%s/kb", dir);
	snprintf(ib, sizeof ib, "%s/ib", dir);
	put("kb", "kernel b");
	put("ib", "initrd b");
	profs[1].kernel = kb;
	profs[1].initrd = ib;
	{
		static char ovl[256];
		snprintf(ovl, sizeof ovl, "%s/ovl", dir);
		put("ovl", "agent overlay\n");
		profs[1].inject_agent = true;
		profs[1].agent_overlay_path = ovl;
	}
	put("tests/lib/h.lua", "local d = require('lib.deep')\nreturn 1\n");
	put("tests/lib/deep.lua", "return 'deep'\n");
	put("tests/lib/comment.lua", "return 'c'\n");
	put("host/dep", "dep\n");
	put("host/bin", "bin\n");
	put("host/big", "big\n");
	put("host/var", "var\n");
	m_src();
	put("tests/fx/derived.fixture.lua", "local vm = provium:vm_fixture('fx/base')\n");

	/* Deterministic. */
	char a[65], b[65];
	key_of("fx/base", a);
	key_of("fx/base", b);
	assert_string_equal(a, b);

	assert_true(changes("fx/base", m_helper));
	assert_true(changes("fx/base", m_deep));          /* recursive require */
	assert_false(changes("fx/base", m_comment));      /* require in comment/string */
	assert_true(changes("fx/base", m_dep));           /* depends_on_file, relative to the file */
	assert_true(changes("fx/base", m_bin));           /* literal push_file */
	assert_false(changes("fx/base", m_big));          /* {auto_dep = false} */
	assert_false(changes("fx/base", m_var));          /* variable path */
	assert_true(changes("fx/base", m_kernel_b));      /* another profile's kernel */
	assert_true(changes("fx/base", m_initrd_path));   /* initrd path */
	assert_true(changes("fx/base", m_overlay));       /* a new agent overlay */
	assert_true(changes("fx/derived", m_base_for_derived)); /* transitive fixture */

	/* Identity folds in. */
	struct fixture_ctx c = {.roots = (const char *const *)roots, .cfg = &cfg, .identity = "QEMU 7.2"};
	char err[256], q[65];
	assert_int_equal(fixture_key(&c, "fx/base", q, err, sizeof err), 0);
	key_of("fx/base", a);
	assert_string_not_equal(a, q);
}

/* Portability: a non-local identity carries the machine type and the
 * host's KVM/TCG verdict; a pinned accel changes a qemu key (not a
 * local one). */
static void key_platform(void **st)
{
	struct fixture_ctx c = {.roots = (const char *const *)roots, .cfg = &cfg, .identity = "QEMU 7.2"};
	struct fixture_ctx l = {.roots = (const char *const *)roots, .cfg = &cfg, .identity = "local"};
	char err[256], q1[65], q2[65], l1[65], l2[65];
	char *id;
	(void)st;
	setenv("PROVIUM_QEMU", "/bin/true", 1);
	id = fixture_identity("qemu");
	unsetenv("PROVIUM_QEMU");
	assert_non_null(id);
	assert_non_null(strstr(id, "| machine q35 |"));
	assert_true(strstr(id, "tcg only") || strstr(id, "kvm usable, cpu host: "));
	free(id);
	put("tests/fx/acc.fixture.lua", "return 1\n");
	assert_int_equal(fixture_key(&c, "fx/acc", q1, err, sizeof err), 0);
	assert_int_equal(fixture_key(&l, "fx/acc", l1, err, sizeof err), 0);
	cfg.profiles[0].accel = ACCEL_TCG;
	assert_int_equal(fixture_key(&c, "fx/acc", q2, err, sizeof err), 0);
	assert_int_equal(fixture_key(&l, "fx/acc", l2, err, sizeof err), 0);
	cfg.profiles[0].accel = ACCEL_AUTO;
	assert_string_not_equal(q1, q2);
	assert_string_equal(l1, l2);
}

static void labpack_roundtrip(void **st)
{
	char src[256], pack[256], out[256], err[256], p[300];
	FILE *f;
	long n;
	(void)st;
	snprintf(src, sizeof src, "%s/lp.lab", dir);
	snprintf(pack, sizeof pack, "%s/lp.pack", dir);
	snprintf(out, sizeof out, "%s/lp.out", dir);
	mkdir(src, 0755);
	snprintf(p, sizeof p, "%s/sub", src);
	mkdir(p, 0755);
	put("lp.lab/lab.json", "{\"vms\":[\"a\"]}");
	put("lp.lab/a.snap", "snap-a");
	put("lp.lab/sub/b.snap", "snap-b");
	put("lp.lab/a.snap.ram-0", "ram");
	put("lp.lab/a.snap.ram-0.sum", "sum");
	assert_int_equal(labpack_write(src, pack, err, sizeof err), 0);
	assert_int_equal(labpack_read(pack, out, err, sizeof err), 0);
	snprintf(p, sizeof p, "%s/sub/b.snap", out);
	assert_int_equal(access(p, F_OK), 0);
	snprintf(p, sizeof p, "%s/lab.json", out);
	assert_int_equal(access(p, F_OK), 0);
	snprintf(p, sizeof p, "%s/a.snap.ram-0", out);
	assert_int_not_equal(access(p, F_OK), 0);      /* local products stay out */
	/* one flipped byte: refused, nothing unpacked */
	f = fopen(pack, "r+b");
	assert_non_null(f);
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, n / 2, SEEK_SET);
	{
		int c = fgetc(f);
		fseek(f, n / 2, SEEK_SET);
		fputc(c ^ 1, f);
	}
	fclose(f);
	snprintf(out, sizeof out, "%s/lp.out2", dir);
	assert_int_equal(labpack_read(pack, out, err, sizeof err), -1);
	assert_non_null(strstr(err, "checksum mismatch"));
	assert_int_not_equal(access(out, F_OK), 0);
}

static void key_helper_relative(void **st)
{
	char a[65], b[65];
	(void)st;
	/* A helper's push_file resolves against the helper's own directory. */
	put("tests/lib/pusher.lua", "x:push_file('hdata', '/h')\nreturn {}\n");
	put("tests/lib/hdata", "1");
	put("tests/fx/rel.fixture.lua", "require('lib.pusher')\n");
	key_of("fx/rel", a);
	put("tests/lib/hdata", "1234");
	key_of("fx/rel", b);
	assert_string_not_equal(a, b);
}

static void key_cycle_and_missing(void **st)
{
	struct fixture_ctx c = {.roots = (const char *const *)roots, .cfg = &cfg, .identity = "local"};
	char err[512], hex[65];
	(void)st;
	put("tests/fx/c1.fixture.lua", "provium:vm_fixture('fx/c2')\n");
	put("tests/fx/c2.fixture.lua", "provium:lab_fixture('fx/c1')\n");
	assert_int_equal(fixture_key(&c, "fx/c1", hex, err, sizeof err), -1);
	assert_non_null(strstr(err, "fixture cycle: fx/c1 -> fx/c2 -> fx/c1"));
	assert_int_equal(fixture_key(&c, "fx/none", hex, err, sizeof err), -1);
	assert_non_null(strstr(err, "fixture `fx/none` not found in any test root"));
}

static void cache_install_and_lock(void **st)
{
	char cdir[256], src[256], err[256], key[65];
	uint64_t bytes;
	struct cache_lock l, m;
	(void)st;
	memset(key, 'a', 64);
	key[64] = '\0';
	snprintf(cdir, sizeof cdir, "%s/cache", dir);
	assert_int_equal(cache_ensure_dir(cdir, err, sizeof err), 0);
	assert_false(cache_entry_exists(cdir, key, FX_VM));
	snprintf(src, sizeof src, "%s/built.snap", dir);
	put("built.snap", "snapshot-bytes");
	assert_int_equal(cache_install(cdir, key, FX_VM, src, &bytes, err, sizeof err), 0);
	assert_int_equal(bytes, 14);
	assert_true(cache_entry_exists(cdir, key, FX_VM));
	assert_int_equal(access(src, F_OK), -1);
	/* lab install over an existing one */
	snprintf(src, sizeof src, "%s/labsrc", dir);
	mkdir(src, 0755);
	put("labsrc/lab.json", "{}");
	assert_int_equal(cache_install(cdir, key, FX_LAB, src, &bytes, err, sizeof err), 0);
	mkdir(src, 0755);
	put("labsrc/lab.json", "{\"v\":2}");
	assert_int_equal(cache_install(cdir, key, FX_LAB, src, &bytes, err, sizeof err), 0);
	assert_int_equal(bytes, 7);
	/* exclusive vs shared, holder file */
	assert_int_equal(cache_lock_open(&l, cdir, key, FX_VM, err, sizeof err), 0);
	assert_int_equal(cache_lock_open(&m, cdir, key, FX_VM, err, sizeof err), 0);
	assert_int_equal(cache_lock_take(&l, LOCK_EX, true), 0);
	assert_int_equal(cache_lock_set_holder(&l, "tests/a.test.lua"), 0);
	assert_int_equal(cache_lock_take(&m, LOCK_SH, true), 1);
	char *h = cache_lock_holder(&m);
	assert_string_equal(h, "tests/a.test.lua");
	free(h);
	cache_lock_unlock(&l);
	assert_int_equal(cache_lock_take(&m, LOCK_SH, true), 0);
	assert_int_equal(cache_lock_take(&l, LOCK_SH, true), 0);
	assert_int_equal(cache_lock_take(&l, LOCK_EX, true), 1);
	cache_lock_close(&l);
	cache_lock_close(&m);
}

static void cache_eviction_order(void **st)
{
	char cdir[128], err[256], key[4][65];
	size_t ev;
	(void)st;
	snprintf(cdir, sizeof cdir, "%s/ev", dir);
	assert_int_equal(cache_ensure_dir(cdir, err, sizeof err), 0);
	for (int i = 0; i < 4; i++) {
		char p[256];
		struct timespec ts[2] = {{1000000 + i * 100, 0}, {0, UTIME_OMIT}};
		memset(key[i], '0' + i, 64);
		key[i][64] = '\0';
		if ((size_t)snprintf(p, sizeof p, "%s/%s.snap", cdir, key[i]) >= sizeof p)
			fail();
		FILE *f = fopen(p, "w");
		for (int k = 0; k < 1000; k++)
			fputc('x', f);
		fclose(f);
		utimensat(AT_FDCWD, p, ts, 0);
	}
	/* Hold the oldest entry's lock: the evictor (its own open file
	 * description) must skip that entry. */
	struct cache_lock l;
	assert_int_equal(cache_lock_open(&l, cdir, key[0], FX_VM, err, sizeof err), 0);
	assert_int_equal(cache_lock_take(&l, LOCK_SH, false), 0);
	assert_int_equal(cache_evict_lru(cdir, 2500, &ev, err, sizeof err), 0);
	assert_int_equal(ev, 2);
	assert_true(cache_entry_exists(cdir, key[0], FX_VM));   /* locked: skipped */
	assert_false(cache_entry_exists(cdir, key[1], FX_VM));  /* oldest unlocked */
	assert_false(cache_entry_exists(cdir, key[2], FX_VM));
	assert_true(cache_entry_exists(cdir, key[3], FX_VM));   /* newest */
	cache_lock_close(&l);
	/* a bumped atime protects an entry */
	assert_int_equal(cache_touch(cdir, key[0], FX_VM), 0);
	assert_int_equal(cache_evict_lru(cdir, 1500, &ev, err, sizeof err), 0);
	assert_true(cache_entry_exists(cdir, key[0], FX_VM));
	assert_false(cache_entry_exists(cdir, key[3], FX_VM));
}

static void cache_temps_of_dead_builders(void **st)
{
	char cdir[256], p[512], err[256], key[65];
	(void)st;
	memset(key, 'b', 64);
	key[64] = '\0';
	snprintf(cdir, sizeof cdir, "%s/tmpc", dir);
	assert_int_equal(cache_ensure_dir(cdir, err, sizeof err), 0);
	snprintf(p, sizeof p, "%s/%s.snap.tmp.999999999", cdir, key);
	FILE *f = fopen(p, "w");
	fclose(f);
	cache_clean_temps(cdir, key);
	assert_int_equal(access(p, F_OK), -1);
	assert_false(cache_entry_exists(cdir, key, FX_VM));
}

/* A sparse file of 64 MiB with 16 KiB of data: what an expanded RAM
 * file looks like. */
static void sparse_ram(const char *path)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	char buf[16384];
	assert_true(fd >= 0);
	memset(buf, 'r', sizeof buf);
	assert_int_equal(ftruncate(fd, 64 << 20), 0);
	assert_int_equal(pwrite(fd, buf, sizeof buf, 1 << 20), (ssize_t)sizeof buf);
	close(fd);
}

static uint64_t blocks_of(const char *path)
{
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	return (uint64_t)st.st_blocks * 512;
}

static void cache_ram_files(void **st)
{
	char cdir[128], p[512], ram[600], orphan[512], otmp[512], lab[512], l1[600], l2[600],
	     l3[600], err[256], k1[65], k2[65], k3[65];
	struct cache_entry *v;
	size_t n, ev;
	uint64_t rb;
	struct cache_lock l;
	(void)st;
	memset(k1, 'c', 64); k1[64] = 0;
	memset(k2, 'd', 64); k2[64] = 0;
	memset(k3, 'e', 64); k3[64] = 0;
	snprintf(cdir, sizeof cdir, "%s/ram", dir);
	assert_int_equal(cache_ensure_dir(cdir, err, sizeof err), 0);
	/* an entry with an expanded RAM file */
	snprintf(p, sizeof p, "%s/ram/%s.snap", dir, k1);
	{
		FILE *f = fopen(p, "w");
		for (int i = 0; i < 100; i++)
			fputc('s', f);
		fclose(f);
	}
	snprintf(ram, sizeof ram, "%s.ram-0123", p);
	sparse_ram(ram);
	rb = blocks_of(ram);
	assert_true(rb >= 16384 && rb < (1 << 20));
	/* list: the entry's size counts the RAM file's blocks, not its 64 MiB */
	assert_int_equal(cache_list(cdir, &v, &n, err, sizeof err), 0);
	assert_int_equal(n, 1);
	assert_int_equal(v[0].size, 100 + rb);
	cache_entries_free(v, n);
	assert_int_equal(cache_entry_usage(cdir, k1, FX_VM), 100 + rb);
	/* an orphan RAM file (no .snap) and a dead expander's temp */
	snprintf(orphan, sizeof orphan, "%s/%s.snap.ram-77", cdir, k2);
	sparse_ram(orphan);
	snprintf(otmp, sizeof otmp, "%s/%s.snap.ram-0123.tmp.999999999", cdir, k1);
	sparse_ram(otmp);
	/* a lab entry: a live RAM file, an orphan one, a dead temp */
	snprintf(lab, sizeof lab, "%s/%s.lab", cdir, k3);
	mkdir(lab, 0755);
	snprintf(l1, sizeof l1, "%s/vm-1.snap", lab);
	{
		FILE *f = fopen(l1, "w");
		fputs("snap", f);
		fclose(f);
	}
	snprintf(l1, sizeof l1, "%s/vm-1.snap.ram-aa", lab);
	sparse_ram(l1);
	snprintf(l2, sizeof l2, "%s/vm-2.snap.ram-bb", lab);
	sparse_ram(l2);
	snprintf(l3, sizeof l3, "%s/vm-1.snap.ram-cc.tmp.999999999", lab);
	sparse_ram(l3);
	/* startup eviction with room to spare: only the debris goes */
	assert_int_equal(cache_evict_lru(cdir, UINT64_C(1) << 40, &ev, err, sizeof err), 0);
	assert_int_equal(ev, 0);
	assert_int_equal(access(orphan, F_OK), -1);
	assert_int_equal(access(otmp, F_OK), -1);
	assert_int_equal(access(l2, F_OK), -1);
	assert_int_equal(access(l3, F_OK), -1);
	assert_int_equal(access(l1, F_OK), 0);
	assert_int_equal(access(ram, F_OK), 0);
	/* the lab's size counts its RAM file's blocks */
	assert_int_equal(cache_entry_usage(cdir, k3, FX_LAB), 4 + blocks_of(l1));
	/* eviction sized by blocks: a limit above both entries' blocks (but
	 * far below their apparent 128 MiB) evicts nothing */
	assert_int_equal(cache_evict_lru(cdir, 100 + rb + 4 + blocks_of(l1), &ev, err, sizeof err), 0);
	assert_int_equal(ev, 0);
	/* ... one byte less evicts the oldest (k1: older atime), RAM and all */
	{
		struct timespec ts[2] = {{1000, 0}, {0, UTIME_OMIT}};
		utimensat(AT_FDCWD, p, ts, 0);
	}
	assert_int_equal(cache_evict_lru(cdir, 100 + rb + 4 + blocks_of(l1) - 1, &ev, err, sizeof err), 0);
	assert_int_equal(ev, 1);
	assert_false(cache_entry_exists(cdir, k1, FX_VM));
	assert_int_equal(access(ram, F_OK), -1);
	assert_true(cache_entry_exists(cdir, k3, FX_LAB));
	/* cache_evict (corrupt entry, rebuild) takes the RAM files along */
	snprintf(p, sizeof p, "%s/%s.snap", cdir, k1);
	{
		FILE *f = fopen(p, "w");
		fclose(f);
	}
	sparse_ram(ram);
	assert_int_equal(cache_evict(cdir, k1, FX_VM), 0);
	assert_int_equal(access(ram, F_OK), -1);
	/* install over an entry drops the old entry's RAM files */
	{
		uint64_t bytes;
		char src[512];
		snprintf(src, sizeof src, "%s/new.snap", dir);
		put("new.snap", "v2");
		sparse_ram(ram);
		assert_int_equal(cache_install(cdir, k1, FX_VM, src, &bytes, err, sizeof err), 0);
		assert_int_equal(access(ram, F_OK), -1);
	}
	/* clean: a key in use keeps its entry, lock and RAM files */
	sparse_ram(ram);
	assert_int_equal(cache_lock_open(&l, cdir, k1, FX_VM, err, sizeof err), 0);
	assert_int_equal(cache_lock_take(&l, LOCK_SH, false), 0);
	assert_int_equal(cache_wipe(cdir, err, sizeof err), -1);
	assert_non_null(strstr(err, "in use"));
	assert_non_null(strstr(err, k1));
	assert_true(cache_entry_exists(cdir, k1, FX_VM));
	assert_int_equal(access(ram, F_OK), 0);
	assert_false(cache_entry_exists(cdir, k3, FX_LAB));
	cache_lock_close(&l);
	/* ... and once free, everything goes */
	assert_int_equal(cache_wipe(cdir, err, sizeof err), 0);
	{
		DIR *d = opendir(cdir);
		struct dirent *de;
		int left = 0;
		while ((de = readdir(d)))
			left += de->d_name[0] != '.';
		closedir(d);
		assert_int_equal(left, 0);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(key_inputs),
		cmocka_unit_test(key_helper_relative),
		cmocka_unit_test(key_cycle_and_missing),
		cmocka_unit_test(cache_install_and_lock),
		cmocka_unit_test(key_platform),
		cmocka_unit_test(labpack_roundtrip),
		cmocka_unit_test(cache_eviction_order),
		cmocka_unit_test(cache_temps_of_dead_builders),
		cmocka_unit_test(cache_ram_files),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
