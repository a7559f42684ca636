/* test_config.c — provium.toml loading (src/host/config.c): defaults, path
 * resolution, cmdline_file, and every error shape. Each test writes its
 * config into a private mkdtemp directory. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"

static char tmpdir[PATH_MAX];
static char cfgpath[PATH_MAX + 32];

static int setup(void **state)
{
	char *real;
	(void)state;
	snprintf(tmpdir, sizeof tmpdir, "/tmp/provium-test-config-XXXXXX");
	if (!mkdtemp(tmpdir))
		return -1;
	/* /tmp may be a symlink: compare against the canonical path */
	if ((real = realpath(tmpdir, NULL))) {
		snprintf(tmpdir, sizeof tmpdir, "%s", real);
		free(real);
	}
	snprintf(cfgpath, sizeof cfgpath, "%s/provium.toml", tmpdir);
	return 0;
}

static int teardown(void **state)
{
	char cmd[PATH_MAX + 16];
	(void)state;
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static void load_ok(struct config *cfg, const char *text)
{
	char err[1024] = "";
	write_file(cfgpath, text);
	if (config_load(cfg, cfgpath, err, sizeof err) != 0)
		fail_msg("config_load failed: %s", err);
}

/* Load must fail; the message must contain each of the NULL-terminated
 * fragments. */
static void load_bad(const char *text, ...)
{
	struct config cfg;
	char err[1024] = "";
	const char *frag;
	va_list ap;
	write_file(cfgpath, text);
	if (config_load(&cfg, cfgpath, err, sizeof err) == 0) {
		config_free(&cfg);
		fail_msg("config accepted:\n%s", text);
	}
	va_start(ap, text);
	while ((frag = va_arg(ap, const char *)))
		if (!strstr(err, frag))
			fail_msg("error \"%s\" lacks \"%s\"", err, frag);
	va_end(ap);
	/* on failure cfg holds the defaults and can be freed */
	assert_int_equal(cfg.nprofiles, 0);
	config_free(&cfg);
}

static void test_defaults(void **state)
{
	struct config cfg;
	char want[PATH_MAX + 64];
	(void)state;
	setenv("HOME", "/home/someone", 1);
	config_init_default(&cfg);
	assert_int_equal(cfg.nroots, 0);
	assert_null(cfg.roots[0]);
	assert_string_equal(cfg.cache_dir, "/home/someone/.cache/provium/fixtures");
	assert_true(cfg.cache_max_size == (UINT64_C(20) << 30));
	assert_int_equal(cfg.nprofiles, 0);
	assert_null(cfg.path);
	config_free(&cfg);

	load_ok(&cfg, "");
	assert_string_equal(cfg.path, cfgpath);
	assert_string_equal(cfg.dir, tmpdir);
	assert_int_equal(cfg.nroots, 0);
	assert_true(cfg.cache_max_size == (UINT64_C(20) << 30));
	config_free(&cfg);

	load_ok(&cfg, "[profiles.p]\ncmdline = 'console=ttyS0'\n");
	assert_int_equal(cfg.nprofiles, 1);
	snprintf(want, sizeof want, "peios");
	assert_string_equal(cfg.profiles[0].guest_os, want);
	assert_true(cfg.profiles[0].inject_agent);
	assert_true(cfg.profiles[0].agent_boot_timeout_ns == INT64_C(30000000000));
	assert_int_equal(cfg.profiles[0].accel, ACCEL_AUTO);
	assert_null(cfg.profiles[0].kernel);
	assert_null(cfg.profiles[0].agent_overlay_path);
	assert_int_equal(cfg.profiles[0].memory, 0);
	assert_int_equal(cfg.profiles[0].cpus, 0);
	assert_false(cfg.profiles[0].builtin);
	config_free(&cfg);
}

static void test_full_config(void **state)
{
	struct config cfg;
	const struct profile *p;
	char want[PATH_MAX + 64];
	(void)state;
	setenv("HOME", "/home/someone", 1);
	load_ok(&cfg,
		"[provium]\n"
		"roots = ['tests', '/abs/other', './x/../y']\n"
		"cache_dir = 'cache'\n"
		"cache_max_size = '100G'\n"
		"\n"
		"[profiles.zeta]\n"
		"kernel = '/k/bzImage'\n"
		"initrd = 'images/initrd.gz'\n"
		"cmdline = 'console=hvc0 quiet'\n"
		"guest_os = 'peios'\n"
		"inject_agent = false\n"
		"agent_overlay_path = '~/overlay.cpio.gz'\n"
		"agent_boot_timeout = '2m'\n"
		"accel = 'tcg'\n"
		"memory = '512M'\n"
		"cpus = 2\n"
		"modules = 'mods'\n"
		"\n"
		"[profiles.alpha]\n"
		"cmdline = 'a'\n"
		"agent_boot_timeout = 1.5\n"
		"memory = 268435456\n"
		"accel = 'kvm'\n");
	assert_int_equal(cfg.nroots, 3);
	snprintf(want, sizeof want, "%s/tests", tmpdir);
	assert_string_equal(cfg.roots[0], want);
	assert_string_equal(cfg.roots[1], "/abs/other");
	snprintf(want, sizeof want, "%s/x/../y", tmpdir);
	assert_string_equal(cfg.roots[2], want);
	assert_null(cfg.roots[3]);
	snprintf(want, sizeof want, "%s/cache", tmpdir);
	assert_string_equal(cfg.cache_dir, want);
	assert_true(cfg.cache_max_size == (UINT64_C(100) << 30));

	/* sorted by name */
	assert_int_equal(cfg.nprofiles, 2);
	assert_string_equal(cfg.profiles[0].name, "alpha");
	assert_string_equal(cfg.profiles[1].name, "zeta");

	p = config_profile(&cfg, "zeta");
	assert_non_null(p);
	assert_string_equal(p->kernel, "/k/bzImage");
	snprintf(want, sizeof want, "%s/images/initrd.gz", tmpdir);
	assert_string_equal(p->initrd, want);
	assert_string_equal(p->cmdline, "console=hvc0 quiet");
	assert_false(p->inject_agent);
	assert_string_equal(p->agent_overlay_path, "/home/someone/overlay.cpio.gz");
	assert_true(p->agent_boot_timeout_ns == INT64_C(120000000000));
	assert_int_equal(p->accel, ACCEL_TCG);
	assert_true(p->memory == (UINT64_C(512) << 20));
	assert_int_equal(p->cpus, 2);
	snprintf(want, sizeof want, "%s/mods", tmpdir);
	assert_string_equal(p->modules, want);

	p = config_profile(&cfg, "alpha");
	assert_non_null(p);
	assert_true(p->agent_boot_timeout_ns == INT64_C(1500000000));
	assert_true(p->memory == 268435456);
	assert_int_equal(p->accel, ACCEL_KVM);
	assert_null(config_profile(&cfg, "nope"));
	config_free(&cfg);
}

static void test_cmdline_file(void **state)
{
	struct config cfg;
	char path[PATH_MAX + 32];
	(void)state;
	snprintf(path, sizeof path, "%s/cmdline.txt", tmpdir);
	write_file(path, "  console=ttyS0\n\tquiet   panic=1\n\n");
	load_ok(&cfg, "[profiles.a]\ncmdline_file = 'cmdline.txt'\n"
		      "[profiles.b]\ncmdline_file = 'cmdline.txt'\ncmdline = 'loglevel=7'\n");
	assert_string_equal(config_profile(&cfg, "a")->cmdline, "console=ttyS0 quiet panic=1");
	assert_string_equal(config_profile(&cfg, "b")->cmdline,
			    "console=ttyS0 quiet panic=1 loglevel=7");
	assert_string_equal(config_profile(&cfg, "a")->cmdline_file, path);
	config_free(&cfg);

	write_file(path, " \n\t\n");
	load_bad("[profiles.e]\ncmdline_file = 'cmdline.txt'\n", "profile `e` has empty cmdline",
		 NULL);
	load_bad("[profiles.m]\ncmdline_file = 'missing.txt'\n", "invalid config in `", "profile `m`",
		 "missing.txt", "No such file or directory", NULL);
}

static void test_read_error(void **state)
{
	struct config cfg;
	char err[1024], path[PATH_MAX + 32];
	(void)state;
	snprintf(path, sizeof path, "%s/absent.toml", tmpdir);
	assert_int_equal(config_load(&cfg, path, err, sizeof err), -1);
	assert_true(strncmp(err, "read `", 6) == 0);
	assert_non_null(strstr(err, path));
	assert_non_null(strstr(err, "`: No such file or directory"));
	config_free(&cfg);
}

static void test_parse_error(void **state)
{
	char want[PATH_MAX + 64];
	(void)state;
	snprintf(want, sizeof want, "parse `%s`: 3:5 expected `=`", cfgpath);
	load_bad("[provium]\nroots = []\nbad key = 1\n", want, NULL);
	snprintf(want, sizeof want, "parse `%s`: 2:1 ", cfgpath);
	load_bad("[profiles.a]\n[profiles.a]\n", want, NULL);
}

static void test_validation_errors(void **state)
{
	char pre[PATH_MAX + 64];
	(void)state;
	snprintf(pre, sizeof pre, "invalid config in `%s`: ", cfgpath);
	load_bad("[profiles.x]\ncmdline = 'a'\nfoo = 1\n", pre, "unknown key `foo` in [profiles.x] at 3:1",
		 NULL);
	load_bad("[provium]\nroot = ['t']\n", pre, "unknown key `root` in [provium] at 2:1", NULL);
	load_bad("[other]\n", pre, "unknown top-level key `other` at 1:2", NULL);
	load_bad("[profiles.x]\ncmdline = ''\n", pre, "profile `x` has empty cmdline", NULL);
	load_bad("[profiles.x]\ncmdline = '  \t '\n", "profile `x` has empty cmdline", NULL);
	load_bad("[profiles.x]\nkernel = '/k'\n", "profile `x` has empty cmdline", NULL);
	load_bad("[profiles.x]\ncmdline = 'a'\nguest_os = 'linux'\n", pre,
		 "profile `x` has guest_os = `linux`, only `peios` is supported in v1", NULL);
	load_bad("[profiles.x]\ncmdline = 'a'\ncpus = 0\n", pre, "`cpus`", "positive integer", NULL);
	load_bad("[profiles.x]\ncmdline = 'a'\naccel = 'hvf'\n", "`accel` in [profiles.x]", "`hvf`",
		 NULL);
	load_bad("[profiles.x]\ncmdline = 'a'\nmemory = 'lots'\n", "`memory` in [profiles.x]",
		 "bad size `lots`", NULL);
	/* integers are bytes; one too small for a guest is MiB written as
	 * bytes: a config error naming the key and where, not a QEMU failure */
	load_bad("[profiles.x]\ncmdline = 'a'\nmemory = 512\n", pre,
		 "`memory` in [profiles.x]: 512 is 512 bytes (a size without a unit is bytes), "
		 "less than the 16M a guest needs; write \"512M\" for 512 MiB at 3:10", NULL);
	load_bad("[profiles.x]\ncmdline = 'a'\nmemory = '2048'\n", pre,
		 "`memory` in [profiles.x]: 2048 is 2048 bytes", "write \"2048M\"", "at 3:10", NULL);
	load_bad("[profiles.x]\ncmdline = 'a'\nmemory = '8M'\n", pre,
		 "`memory` in [profiles.x]: `8M` is 8388608 bytes, less than the 16M a guest needs at 3:10",
		 NULL);
	load_bad("[profiles.x]\ncmdline = 'a'\nagent_boot_timeout = 'soon'\n",
		 "`agent_boot_timeout` in [profiles.x]", "bad duration `soon`", NULL);
	load_bad("[profiles.x]\ncmdline = 'a'\nagent_boot_timeout = -1\n", "agent_boot_timeout",
		 "non-negative", NULL);
	load_bad("[provium]\ncache_max_size = '5Q'\n", pre, "bad size `5Q`", NULL);
	load_bad("[provium]\nroots = ['a', '']\n", pre, "non-empty", NULL);
	load_bad("[profiles.x]\ncmdline = 'a'\n[profiles.x.sub]\n",
		 "unknown key `sub` in [profiles.x]", NULL);
}

/* A value of the wrong TOML type is a parse error, as in the reference
 * (typed deserialisation): parse `<path>`: <line>:<col> <message>. */
static void test_type_errors(void **state)
{
	char pre[PATH_MAX + 64];
	(void)state;
	snprintf(pre, sizeof pre, "parse `%s`: ", cfgpath);
	load_bad("[profiles.x]\ncmdline = 'a'\ncpus = 'two'\n", pre,
		 "3:8 `cpus` in [profiles.x] must be a positive integer, got string", NULL);
	load_bad("[profiles.x]\ncmdline = 1\n", pre,
		 "2:11 `cmdline` in [profiles.x] must be a string, got integer", NULL);
	load_bad("[profiles.x]\ncmdline = 'a'\ninject_agent = 'yes'\n", pre,
		 "`inject_agent` in [profiles.x] must be a boolean, got string", NULL);
	load_bad("[profiles.x]\ncmdline = 'a'\nkernel = 5\n", pre, "`kernel` in [profiles.x]", NULL);
	load_bad("[provium]\nroots = 'tests'\n", pre, "`roots` in [provium] must be an array of strings",
		 NULL);
	load_bad("[provium]\nroots = ['a', 2]\n", pre, "`roots` in [provium]", "item 2", NULL);
	load_bad("[provium]\ncache_max_size = true\n", pre, "`cache_max_size` in [provium]", NULL);
	load_bad("provium = 1\n", pre, "`provium`", "must be a table", NULL);
	load_bad("profiles = 1\n", pre, "`profiles`", "must be a table", NULL);
	load_bad("[profiles]\nx = 1\n", pre, "profile `x` must be a table", NULL);
}


/* root, disks, build (+ build_inputs, {out}) and their errors */
static void test_root_disks_build(void **state)
{
	struct config cfg;
	char path[PATH_MAX + 64], pre[PATH_MAX + 64], key1[33];
	const struct profile *p;
	(void)state;
	snprintf(path, sizeof path, "%s/in.txt", tmpdir);
	write_file(path, "one");
	setenv("PROVIUM_BUILD_DIR", "/b", 1);
	load_ok(&cfg, "[profiles.x]\ncmdline = 'a'\nroot = 'r.img'\n"
		      "disks = [{id = 'data', image = 'd.img'}, {id = 'log', image = '/abs.img'}]\n"
		      "build = 'cp k {out}/k; echo {out}'\nbuild_inputs = ['in.txt']\n"
		      "kernel = '{out}/k'\ninitrd = 'i'\n");
	p = config_profile(&cfg, "x");
	assert_non_null(p);
	snprintf(path, sizeof path, "%s/r.img", tmpdir);
	assert_string_equal(p->root, path);
	assert_int_equal(p->ndisks, 2);
	assert_string_equal(p->disks[0].id, "data");
	snprintf(path, sizeof path, "%s/d.img", tmpdir);
	assert_string_equal(p->disks[0].image, path);
	assert_string_equal(p->disks[1].image, "/abs.img");
	assert_int_equal(strlen(p->build_key), 32);
	snprintf(path, sizeof path, "/b/x-%.16s", p->build_key);
	assert_string_equal(p->build_out, path);
	snprintf(path, sizeof path, "cp k /b/x-%.16s/k; echo /b/x-%.16s", p->build_key, p->build_key);
	assert_string_equal(p->build, path);
	snprintf(path, sizeof path, "/b/x-%.16s/k", p->build_key);
	assert_string_equal(p->kernel, path);
	memcpy(key1, p->build_key, sizeof key1);
	config_free(&cfg);
	/* the key follows the inputs' content and the command */
	snprintf(path, sizeof path, "%s/in.txt", tmpdir);
	write_file(path, "two");
	load_ok(&cfg, "[profiles.x]\ncmdline = 'a'\nbuild = 'cp k {out}/k; echo {out}'\n"
		      "build_inputs = ['in.txt']\n");
	assert_string_not_equal(config_profile(&cfg, "x")->build_key, key1);
	config_free(&cfg);
	write_file(path, "one");
	load_ok(&cfg, "[profiles.x]\ncmdline = 'a'\nbuild = 'cp k {out}/k; echo {out}'\n"
		      "build_inputs = ['in.txt']\n");
	assert_string_equal(config_profile(&cfg, "x")->build_key, key1);
	config_free(&cfg);
	load_ok(&cfg, "[profiles.x]\ncmdline = 'a'\nbuild = 'cp k {out}/k'\nbuild_inputs = ['in.txt']\n");
	assert_string_not_equal(config_profile(&cfg, "x")->build_key, key1);
	config_free(&cfg);
	unsetenv("PROVIUM_BUILD_DIR");

	snprintf(pre, sizeof pre, "invalid config in `%s`: ", cfgpath);
	load_bad("[profiles.x]\ncmdline = 'a'\nkernel = '{out}/k'\n", pre,
		 "`kernel` in [profiles.x] names {out} but the profile has no `build` at 3:10", NULL);
	load_bad("[profiles.x]\ncmdline = 'a'\nbuild = 'true'\nkernel = 'a/{out}'\n", pre,
		 "{out} must start the path", "at 4:10", NULL);
	load_bad("[profiles.x]\ncmdline = 'a'\nbuild = 'true'\nbuild_inputs = ['nope']\n", pre,
		 "`build_inputs` in [profiles.x]: `nope`: No such file or directory at 4:17", NULL);
	load_bad("[profiles.x]\ncmdline = 'a'\nbuild_inputs = ['in.txt']\n", pre,
		 "without a `build` command at 3:16", NULL);
	load_bad("[profiles.x]\ncmdline = 'a'\nbuild = ' '\n", pre, "empty command at 3:9", NULL);
	load_bad("[profiles.x]\ncmdline = 'a'\ndisks = [{id = 'd'}]\n", pre,
		 "disk 1 in [profiles.x] needs both `id` and `image` at 3:10", NULL);
	load_bad("[profiles.x]\ncmdline = 'a'\ndisks = [{id = 'this-id-is-far-too-long', image = 'a'}]\n",
		 pre, "`id` in [profiles.x.disks] must be 1-20 characters", "at 3:16", NULL);
	load_bad("[profiles.x]\ncmdline = 'a'\ndisks = [{id = 'a', image = 'a'}, {id = 'a', image = 'b'}]\n",
		 pre, "disk `a` in [profiles.x] is listed twice (at 3:41)", NULL);
	load_bad("[profiles.x]\ncmdline = 'a'\ndisks = [{id = 'a', image = 'a', ro = true}]\n", pre,
		 "unknown key `ro` in [profiles.x.disks] at 3:34", NULL);
	load_bad("[profiles.x]\ncmdline = 'a'\nroot = 'r'\ndisks = [{id = 'root', image = 'a'}]\n", pre,
		 "disk id `root` is taken by the profile's `root` image (set at 3:8)", NULL);
	snprintf(pre, sizeof pre, "parse `%s`: ", cfgpath);
	load_bad("[profiles.x]\ncmdline = 'a'\ndisks = ['a.img']\n", pre,
		 "3:10 `disks` in [profiles.x] must be an array of tables, item 1 is string", NULL);
	load_bad("[profiles.x]\ncmdline = 'a'\nbuild = 1\n", pre, "3:9 `build` in [profiles.x] must be a string",
		 NULL);
}

/* [profiles] from_dir: <dir>/<name>/profile.provium.toml */
static void test_from_dir(void **state)
{
	struct config cfg;
	char path[PATH_MAX + 64], pre[4 * PATH_MAX + 256];
	const struct profile *p;
	(void)state;
	snprintf(pre, sizeof pre, "mkdir -p '%s/profs/alpha' '%s/profs/beta' '%s/profs/empty'",
		 tmpdir, tmpdir, tmpdir);
	assert_int_equal(system(pre), 0);
	snprintf(path, sizeof path, "%s/profs/alpha/profile.provium.toml", tmpdir);
	write_file(path, "kernel = 'vmlinuz'\ncmdline = 'console=ttyS0'\n");
	snprintf(path, sizeof path, "%s/profs/beta/profile.provium.toml", tmpdir);
	write_file(path, "cmdline = 'b'\ndisks = [{id = 'd', image = 'd.img'}]\n");
	load_ok(&cfg, "[profiles]\nfrom_dir = 'profs'\n[profiles.main]\ncmdline = 'm'\n");
	assert_int_equal(cfg.nprofiles, 3);
	p = config_profile(&cfg, "alpha");
	assert_non_null(p);
	snprintf(path, sizeof path, "%s/profs/alpha/vmlinuz", tmpdir);
	assert_string_equal(p->kernel, path);
	snprintf(path, sizeof path, "%s/profs/alpha/profile.provium.toml", tmpdir);
	assert_string_equal(p->source, path);
	p = config_profile(&cfg, "beta");
	snprintf(path, sizeof path, "%s/profs/beta/d.img", tmpdir);
	assert_string_equal(p->disks[0].image, path);
	assert_non_null(config_profile(&cfg, "main"));
	assert_null(config_profile(&cfg, "empty"));
	config_free(&cfg);

	/* an error inside a profile file names that file */
	snprintf(path, sizeof path, "%s/profs/beta/profile.provium.toml", tmpdir);
	write_file(path, "cmdline = 'b'\nbogus = 1\n");
	snprintf(pre, sizeof pre, "invalid config in `%s`: unknown key `bogus` in [profiles.beta] at 2:1",
		 path);
	load_bad("[profiles]\nfrom_dir = 'profs'\n", pre, NULL);
	write_file(path, "cmdline = 'b'\ncpus = 'x'\n");
	snprintf(pre, sizeof pre, "parse `%s`: 2:8", path);
	load_bad("[profiles]\nfrom_dir = 'profs'\n", pre, NULL);
	write_file(path, "cmdline = \n");
	snprintf(pre, sizeof pre, "parse `%s`: 1:", path);
	load_bad("[profiles]\nfrom_dir = 'profs'\n", pre, NULL);
	write_file(path, "cmdline = 'b'\n");
	/* the same name twice */
	snprintf(pre, sizeof pre, "invalid config in `%s`: profile `alpha` at 3:11 is already defined by `%s/profs/alpha/profile.provium.toml`",
		 cfgpath, tmpdir);
	load_bad("[profiles]\nfrom_dir = 'profs'\n[profiles.alpha]\ncmdline = 'm'\n", pre, NULL);
	load_bad("[profiles]\nfrom_dir = 'nowhere'\n", "`from_dir` in [profiles]", "No such file or directory at 2:12",
		 NULL);
	load_bad("[profiles]\nfrom_dir = 3\n", "2:12 `from_dir` in [profiles] must be a directory path string",
		 NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_defaults, setup, teardown),
		cmocka_unit_test_setup_teardown(test_root_disks_build, setup, teardown),
		cmocka_unit_test_setup_teardown(test_from_dir, setup, teardown),
		cmocka_unit_test_setup_teardown(test_full_config, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cmdline_file, setup, teardown),
		cmocka_unit_test_setup_teardown(test_read_error, setup, teardown),
		cmocka_unit_test_setup_teardown(test_parse_error, setup, teardown),
		cmocka_unit_test_setup_teardown(test_validation_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_type_errors, setup, teardown),
	};
	return cmocka_run_group_tests_name("config", tests, NULL, NULL);
}
