/* test_fixture.c — the fixture cache key (src/host/fixture/key.c) and the
 * cache directory (cache.c): each key input changes the key, scanning
 * limits, cycles; install, locks, eviction order. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

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
	cache_rm_rf(dir);
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
	assert_true(changes("fx/derived", m_base_for_derived)); /* transitive fixture */

	/* Identity folds in. */
	struct fixture_ctx c = {.roots = (const char *const *)roots, .cfg = &cfg, .identity = "QEMU 7.2"};
	char err[256], q[65];
	assert_int_equal(fixture_key(&c, "fx/base", q, err, sizeof err), 0);
	key_of("fx/base", a);
	assert_string_not_equal(a, q);
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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(key_inputs),
		cmocka_unit_test(key_helper_relative),
		cmocka_unit_test(key_cycle_and_missing),
		cmocka_unit_test(cache_install_and_lock),
		cmocka_unit_test(cache_eviction_order),
		cmocka_unit_test(cache_temps_of_dead_builders),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
