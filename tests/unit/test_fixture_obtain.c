/* test_fixture_obtain.c — the get-or-build flow (src/host/fixture/build.c)
 * with a fake build callback, no Lua and no VM: a miss builds, installs
 * and restores what it built; a hit restores without building; a peer
 * holding the build lock is waited for (fixture_build_waiting naming it)
 * and its entry is then a hit; a failing build installs nothing; an
 * unusable entry is evicted and rebuilt; build-only reports the cache. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "config.h"
#include "events.h"
#include "fixture/build.h"
#include "fixture/cache.h"
#include "fixture/key.h"
#include "fsutil.h"

static char dir[64], root[128], cdir[128], rdir[128], *roots[2];
static struct config cfg;
static int evp[2] = {-1, -1};

/* What the fake build does and how often it ran. */
struct fake {
	int calls;
	bool fail;
	char last_name[64];
};

static int fake_build(void *ctx, const struct fixture_env *e, const char *name, enum fx_kind kind,
                      bool any, enum fx_kind *got, char **out, char *err, size_t errlen)
{
	struct fake *f = ctx;
	char p[512];
	FILE *fp;
	(void)any;
	f->calls++;
	snprintf(f->last_name, sizeof f->last_name, "%s", name);
	*out = NULL;
	if (f->fail) {
		snprintf(err, errlen, "fixture `%s`: the fake build failed", name);
		return -1;
	}
	snprintf(p, sizeof p, "%s/built-%d.snap", e->run_dir, f->calls);
	if (!(fp = fopen(p, "w"))) {
		snprintf(err, errlen, "%s: %s", p, strerror(errno));
		return -1;
	}
	fprintf(fp, "snapshot of %s #%d", name, f->calls);
	fclose(fp);
	if (got)
		*got = kind;
	*out = strdup(p);
	return 0;
}

/* What the fake restore saw; bad_first: the first restore fails as a
 * corrupt entry would. */
struct restored {
	int calls;
	int bad_first;
	char content[128];
};

static int fake_restore(void *arg, const char *entry, char *err, size_t errlen)
{
	struct restored *r = arg;
	FILE *fp = fopen(entry, "r");
	size_t n;
	r->calls++;
	if (!fp) {
		snprintf(err, errlen, "%s: %s", entry, strerror(errno));
		return -1;
	}
	n = fread(r->content, 1, sizeof r->content - 1, fp);
	r->content[n] = '\0';
	fclose(fp);
	if (r->bad_first && r->calls == 1) {
		snprintf(err, errlen, "bad snapshot magic");
		return -1;
	}
	return 0;
}

static void put(const char *rel, const char *text)
{
	char p[512];
	FILE *f;
	snprintf(p, sizeof p, "%s/%s", root, rel);
	f = fopen(p, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

/* Everything written to the event pipe so far (frames are msgpack; the
 * kinds and strings appear verbatim). */
static size_t drain_events(char *buf, size_t cap)
{
	size_t len = 0;
	ssize_t n;
	while (len < cap && (n = read(evp[0], buf + len, cap - len)) > 0)
		len += (size_t)n;
	return len;
}

static bool has(const char *buf, size_t len, const char *s)
{
	return memmem(buf, len, s, strlen(s)) != NULL;
}

static struct fixture_env env(struct fake *f)
{
	struct fixture_env e = {
		.cfg = &cfg, .roots = (const char *const *)roots, .vmm = "local",
		.identity = "local", .run_dir = rdir, .event_fd = evp[1],
		.holder = "tests/me.test.lua", .build = fake_build, .build_ctx = f,
	};
	return e;
}

static void key_of(const char *name, char hex[65])
{
	struct fixture_ctx c = {.roots = (const char *const *)roots, .cfg = &cfg, .identity = "local"};
	char err[512];
	if (fixture_key(&c, name, hex, err, sizeof err) != 0)
		fail_msg("fixture_key(%s): %s", name, err);
}

static int setup(void **st)
{
	(void)st;
	unsetenv("PROVIUM_CACHE_REMOTE");
	unsetenv("PROVIUM_CACHE_OVERFLOW");
	strcpy(dir, "/tmp/provium-obtain-XXXXXX");
	if (!mkdtemp(dir))
		return -1;
	snprintf(root, sizeof root, "%s/tests", dir);
	snprintf(cdir, sizeof cdir, "%s/cache", dir);
	snprintf(rdir, sizeof rdir, "%s/run", dir);
	mkdir(root, 0755);
	mkdir(rdir, 0755);
	roots[0] = root;
	memset(&cfg, 0, sizeof cfg);
	cfg.cache_dir = cdir;
	if (pipe2(evp, O_CLOEXEC | O_NONBLOCK) < 0)
		return -1;
	event_set_diag_fd(evp[1]);
	return 0;
}

static int teardown(void **st)
{
	(void)st;
	close(evp[0]);
	close(evp[1]);
	rm_rf(dir);
	return 0;
}

/* A miss builds once, installs, then restores the installed entry; the
 * next obtain is a hit and does not build. */
static void miss_builds_then_hit(void **st)
{
	struct fake f = {0};
	struct restored r = {0};
	struct fixture_env e = env(&f);
	char err[1024] = "", ev[8192], key[65], *entry = NULL;
	size_t n;
	bool cached = true;
	(void)st;
	put("base.fixture.lua", "return vm:snapshot()\n");
	key_of("base", key);
	drain_events(ev, sizeof ev);

	assert_int_equal(fixture_obtain(&e, "base", FX_VM, FX_GET, fake_restore, &r, &cached,
	                                &entry, err, sizeof err), 0);
	assert_int_equal(f.calls, 1);
	assert_string_equal(f.last_name, "base");
	assert_false(cached);
	assert_true(cache_entry_exists(cdir, key, FX_VM));
	assert_int_equal(r.calls, 1);
	assert_string_equal(r.content, "snapshot of base #1");
	assert_non_null(entry);
	assert_non_null(strstr(entry, key));
	free(entry);
	n = drain_events(ev, sizeof ev);
	assert_true(has(ev, n, "fixture_build_started"));
	assert_true(has(ev, n, "fixture_build_done"));
	assert_false(has(ev, n, "fixture_cache_hit"));

	/* hit */
	assert_int_equal(fixture_obtain(&e, "base", FX_VM, FX_GET, fake_restore, &r, &cached,
	                                NULL, err, sizeof err), 0);
	assert_int_equal(f.calls, 1);
	assert_true(cached);
	assert_int_equal(r.calls, 2);
	assert_string_equal(r.content, "snapshot of base #1");
	n = drain_events(ev, sizeof ev);
	assert_true(has(ev, n, "fixture_cache_hit"));
	assert_false(has(ev, n, "fixture_build_started"));

	/* build-only on a present entry: nothing built, reported cached */
	cached = false;
	assert_int_equal(fixture_obtain(&e, "base", FX_VM, FX_BUILD_ONLY, NULL, NULL, &cached,
	                                NULL, err, sizeof err), 0);
	assert_true(cached);
	assert_int_equal(f.calls, 1);
}

/* A peer holds the build lock (it is building): we wait, announcing
 * whom we wait for, and then restore the peer's entry without building. */
static void waits_for_a_peer_builder(void **st)
{
	struct fake f = {0};
	struct restored r = {0};
	struct fixture_env e = env(&f);
	char err[1024] = "", ev[8192], key[65], c;
	int sync[2], go[2], status;
	size_t n;
	pid_t pid;
	(void)st;
	put("peer.fixture.lua", "return vm:snapshot() -- peer\n");
	key_of("peer", key);
	assert_int_equal(cache_ensure_dir(cdir, err, sizeof err), 0);
	assert_int_equal(pipe(sync), 0);
	assert_int_equal(pipe(go), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct cache_lock l = {.fd = -1};
		char src[512];
		uint64_t bytes;
		FILE *fp;
		if (cache_lock_open(&l, cdir, key, FX_VM, err, sizeof err) < 0 ||
		    cache_lock_take(&l, LOCK_EX, false) < 0 ||
		    cache_lock_set_holder(&l, "tests/peer.test.lua") < 0)
			_exit(1);
		if (write(sync[1], "L", 1) != 1)   /* locked: the parent may start */
			_exit(1);
		/* Build only once the parent is waiting on our lock. */
		if (read(go[0], &c, 1) != 1)
			_exit(1);
		snprintf(src, sizeof src, "%s/peer-built.snap", rdir);
		if (!(fp = fopen(src, "w")))
			_exit(1);
		fputs("snapshot by the peer", fp);
		fclose(fp);
		if (cache_install(cdir, key, FX_VM, src, &bytes, err, sizeof err) < 0)
			_exit(1);
		cache_lock_set_holder(&l, "");
		cache_lock_close(&l);
		_exit(0);
	}
	close(sync[1]);
	close(go[0]);
	assert_int_equal(read(sync[0], &c, 1), 1);
	drain_events(ev, sizeof ev);
	{
		/* fixture_obtain blocks on the peer's lock: a second child lets
		 * the peer finish once the waiting event is on the pipe. */
		pid_t rel = fork();
		assert_true(rel >= 0);
		if (rel == 0) {
			char b[8192];
			size_t len = 0;
			for (int i = 0; i < 6000 && !has(b, len, "fixture_build_waiting"); i++) {
				ssize_t k = read(evp[0], b + len, sizeof b - len);
				if (k > 0)
					len += (size_t)k;
				else
					usleep(5000);
			}
			/* give the event back to the parent's reader */
			if (write(evp[1], b, len) < 0)
				_exit(1);
			_exit(write(go[1], "G", 1) == 1 ? 0 : 1);
		}
		assert_int_equal(fixture_obtain(&e, "peer", FX_VM, FX_GET, fake_restore, &r, NULL,
		                                NULL, err, sizeof err), 0);
		assert_int_equal(waitpid(rel, &status, 0), rel);
		assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	close(sync[0]);
	close(go[1]);
	assert_int_equal(f.calls, 0);
	assert_int_equal(r.calls, 1);
	assert_string_equal(r.content, "snapshot by the peer");
	n = drain_events(ev, sizeof ev);
	assert_true(has(ev, n, "fixture_build_waiting"));
	assert_true(has(ev, n, "tests/peer.test.lua"));
	assert_true(has(ev, n, "fixture_cache_hit"));
	assert_false(has(ev, n, "fixture_build_started"));
}

/* A failing build: the error is the callback's, nothing is installed,
 * nothing restored, the lock's holder is cleared. */
static void failed_build_installs_nothing(void **st)
{
	struct fake f = {.fail = true};
	struct restored r = {0};
	struct fixture_env e = env(&f);
	struct cache_lock l = {.fd = -1};
	char err[1024] = "", ev[8192], key[65], *holder;
	size_t n;
	(void)st;
	put("broken.fixture.lua", "error('no')\n");
	key_of("broken", key);
	drain_events(ev, sizeof ev);
	assert_int_equal(fixture_obtain(&e, "broken", FX_VM, FX_GET, fake_restore, &r, NULL, NULL,
	                                err, sizeof err), -1);
	assert_string_equal(err, "fixture `broken`: the fake build failed");
	assert_int_equal(f.calls, 1);
	assert_int_equal(r.calls, 0);
	assert_false(cache_entry_exists(cdir, key, FX_VM));
	n = drain_events(ev, sizeof ev);
	assert_true(has(ev, n, "fixture_build_started"));
	assert_false(has(ev, n, "fixture_build_done"));
	assert_int_equal(cache_lock_open(&l, cdir, key, FX_VM, err, sizeof err), 0);
	holder = cache_lock_holder(&l);
	assert_true(holder == NULL || holder[0] == '\0');
	free(holder);
	cache_lock_close(&l);
	/* the next obtain tries again (a failure is not cached) */
	f.fail = false;
	assert_int_equal(fixture_obtain(&e, "broken", FX_VM, FX_GET, fake_restore, &r, NULL, NULL,
	                                err, sizeof err), 0);
	assert_int_equal(f.calls, 2);
	assert_true(cache_entry_exists(cdir, key, FX_VM));
}

/* An entry the restore rejects is evicted and rebuilt, with a warning
 * naming the fixture; the rebuilt entry is what is restored. */
static void unusable_entry_is_rebuilt(void **st)
{
	struct fake f = {0};
	struct restored r = {.bad_first = 1};
	struct fixture_env e = env(&f);
	char err[1024] = "", ev[8192], key[65], src[512];
	uint64_t bytes;
	size_t n;
	FILE *fp;
	(void)st;
	put("stale.fixture.lua", "return vm:snapshot() -- stale\n");
	key_of("stale", key);
	snprintf(src, sizeof src, "%s/garbage.snap", rdir);
	fp = fopen(src, "w");
	assert_non_null(fp);
	fputs("garbage", fp);
	fclose(fp);
	assert_int_equal(cache_ensure_dir(cdir, err, sizeof err), 0);
	assert_int_equal(cache_install(cdir, key, FX_VM, src, &bytes, err, sizeof err), 0);
	drain_events(ev, sizeof ev);
	assert_int_equal(fixture_obtain(&e, "stale", FX_VM, FX_GET, fake_restore, &r, NULL, NULL,
	                                err, sizeof err), 0);
	assert_int_equal(f.calls, 1);
	assert_int_equal(r.calls, 2);
	assert_string_equal(r.content, "snapshot of stale #1");
	n = drain_events(ev, sizeof ev);
	assert_true(has(ev, n, "cached entry"));
	assert_true(has(ev, n, "is unusable (bad snapshot magic); evicting it and rebuilding"));
	assert_true(has(ev, n, "fixture_build_done"));
	assert_false(has(ev, n, "fixture_cache_hit"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(miss_builds_then_hit),
		cmocka_unit_test(waits_for_a_peer_builder),
		cmocka_unit_test(failed_build_installs_nothing),
		cmocka_unit_test(unusable_entry_is_rebuilt),
	};
	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, setup, teardown);
}
