/* test_qemu_accel.c — the accel=auto verdict (src/host/vmm/qemu_accel.c)
 * with a fake device and probe: no probe without a usable device, one
 * probe per key and then the cache; and the built-in banner probe with a
 * stand-in QEMU script, whose run directory is a temp dir under $TMPDIR
 * that is gone when the verdict is in. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vmm/qemu_accel.h"

static int probe_calls;
static int fake_probe(void *ctx, int64_t deadline, char *err, size_t errlen)
{
	(void)deadline;
	probe_calls++;
	snprintf(err, errlen, "fake hang");
	return *(int *)ctx;
}

static void test_accel(void **state)
{
	(void)state;
	char why[512], dir[] = "/tmp/test-accel-XXXXXX", kern[4200], cpath[4200];
	assert_non_null(mkdtemp(dir));
	snprintf(kern, sizeof kern, "%s/vmlinuz", dir);
	FILE *f = fopen(kern, "w");
	assert_non_null(f);
	fputs("kernel", f);
	fclose(f);

	assert_int_equal(qemu_accel_resolve(ACCEL_TCG, NULL, why, sizeof why), ACCEL_TCG);
	assert_int_equal(qemu_accel_resolve(ACCEL_KVM, NULL, why, sizeof why), ACCEL_KVM);

	int verdict = -1;
	struct qemu_accel_probe p = { .kernel = kern, .cache_dir = dir, .kvm_dev = "/nonexistent/kvm",
				      .boot = fake_probe, .ctx = &verdict, .timeout_ms = 100 };
	assert_int_equal(qemu_accel_resolve(ACCEL_AUTO, &p, why, sizeof why), ACCEL_TCG);
	assert_non_null(strstr(why, "/nonexistent/kvm"));
	assert_int_equal(probe_calls, 0);

	/* an openable "device": probe runs once, the verdict is cached */
	p.kvm_dev = "/dev/null";
	assert_int_equal(qemu_accel_cache_path(&p, cpath, sizeof cpath), 0);
	assert_int_equal(strncmp(cpath, dir, strlen(dir)), 0);
	assert_int_equal(qemu_accel_resolve(ACCEL_AUTO, &p, why, sizeof why), ACCEL_TCG);
	assert_int_equal(probe_calls, 1);
	assert_non_null(strstr(why, "fake hang"));
	assert_int_equal(access(cpath, F_OK), 0);
	assert_int_equal(qemu_accel_resolve(ACCEL_AUTO, &p, why, sizeof why), ACCEL_TCG);
	assert_int_equal(probe_calls, 1);
	assert_non_null(strstr(why, "cached"));

	/* another kernel image is another key */
	f = fopen(kern, "w");
	fputs("another kernel, longer", f);
	fclose(f);
	char cpath2[4200];
	assert_int_equal(qemu_accel_cache_path(&p, cpath2, sizeof cpath2), 0);
	assert_string_not_equal(cpath, cpath2);
	verdict = 0;
	assert_int_equal(qemu_accel_resolve(ACCEL_AUTO, &p, why, sizeof why), ACCEL_KVM);
	assert_int_equal(probe_calls, 2);
	assert_int_equal(qemu_accel_resolve(ACCEL_AUTO, &p, why, sizeof why), ACCEL_KVM);
	assert_int_equal(probe_calls, 2);

	unlink(cpath);
	unlink(cpath2);
	unlink(kern);
	rmdir(dir);
}

/* A stand-in QEMU: records the console log path it was given, prints a
 * kernel banner there (or exits at once when banner is false) and waits
 * to be killed. */
static void write_fake_qemu(const char *script, const char *seen, bool banner)
{
	FILE *f = fopen(script, "w");
	assert_non_null(f);
	fprintf(f, "#!/bin/sh\n"
		   "for a in \"$@\"; do case \"$a\" in *logfile=*) log=\"${a##*logfile=}\";; esac; done\n"
		   "echo \"$log\" > '%s'\n", seen);
	if (banner)
		fputs("echo 'Linux version 6.1.0 (fake)' > \"$log\"\nexec sleep 1000\n", f);
	else
		fputs("exit 3\n", f);
	fclose(f);
	assert_int_equal(chmod(script, 0755), 0);
}

/* The probe's run directory as the stand-in saw it: the console log's
 * directory. */
static void seen_dir(const char *seen, char *buf, size_t len)
{
	FILE *f = fopen(seen, "r");
	assert_non_null(f);
	assert_non_null(fgets(buf, (int)len, f));
	fclose(f);
	char *slash = strrchr(buf, '/');
	assert_non_null(slash);
	*slash = 0;
}

static void test_banner_probe(void **state)
{
	(void)state;
	char dir[] = "/tmp/test-accel-XXXXXX", tmp[4200], kern[4200], script[4200], seen[4200];
	char why[512], cpath[4200], run[4200], want[4400];
	const char *old = getenv("TMPDIR");
	char *saved = old ? strdup(old) : NULL;

	assert_non_null(mkdtemp(dir));
	snprintf(tmp, sizeof tmp, "%s/tmp", dir);
	assert_int_equal(mkdir(tmp, 0700), 0);
	snprintf(kern, sizeof kern, "%s/vmlinuz", dir);
	snprintf(script, sizeof script, "%s/fake-qemu", dir);
	snprintf(seen, sizeof seen, "%s/seen", dir);
	FILE *f = fopen(kern, "w");
	assert_non_null(f);
	fputs("kernel", f);
	fclose(f);
	setenv("TMPDIR", tmp, 1);

	/* the banner shows: KVM, from a run dir under $TMPDIR, removed after */
	write_fake_qemu(script, seen, true);
	struct qemu_accel_probe p = { .qemu = script, .kernel = kern, .cache_dir = dir,
				      .kvm_dev = "/dev/null", .timeout_ms = 10000 };
	assert_int_equal(qemu_accel_resolve(ACCEL_AUTO, &p, why, sizeof why), ACCEL_KVM);
	assert_string_equal(why, "KVM probe boot succeeded");
	seen_dir(seen, run, sizeof run);
	snprintf(want, sizeof want, "%s/provium-accel-", tmp);
	assert_int_equal(strncmp(run, want, strlen(want)), 0);
	assert_int_equal(access(run, F_OK), -1);
	assert_int_equal(qemu_accel_cache_path(&p, cpath, sizeof cpath), 0);
	assert_int_equal(unlink(cpath), 0);

	/* the guest ends before its banner: TCG, the reason kept, dir removed */
	write_fake_qemu(script, seen, false);
	assert_int_equal(qemu_accel_cache_path(&p, cpath, sizeof cpath), 0);
	assert_int_equal(qemu_accel_resolve(ACCEL_AUTO, &p, why, sizeof why), ACCEL_TCG);
	assert_non_null(strstr(why, "KVM probe: KVM probe guest exited with status 3 before its banner"));
	seen_dir(seen, run, sizeof run);
	assert_int_equal(strncmp(run, want, strlen(want)), 0);
	assert_int_equal(access(run, F_OK), -1);

	if (saved)
		setenv("TMPDIR", saved, 1);
	else
		unsetenv("TMPDIR");
	free(saved);
	unlink(cpath);
	unlink(seen);
	unlink(script);
	unlink(kern);
	assert_int_equal(rmdir(tmp), 0);
	assert_int_equal(rmdir(dir), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_accel),
		cmocka_unit_test(test_banner_probe),
	};
	return cmocka_run_group_tests_name("qemu_accel", tests, NULL, NULL);
}
