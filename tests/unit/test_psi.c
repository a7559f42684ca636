/* test_psi.c — psi.c against fake PSI files (PROVIUM_PSI_DIR): the
 * `some avg10` parser, the dispatcher's pressure threshold, memory
 * pressure alone, and the idle-CPU answer that lets a warm spare QEMU
 * start beside a restore. Each test works in a private directory. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fsutil.h"
#include "psi.h"

static char dir[256];

static void put(const char *kind, const char *text)
{
	char p[512];
	FILE *f;
	snprintf(p, sizeof p, "%s/%s", dir, kind);
	assert_non_null(f = fopen(p, "w"));
	fputs(text, f);
	fclose(f);
}

static int setup(void **st)
{
	(void)st;
	const char *t = getenv("TMPDIR");
	snprintf(dir, sizeof dir, "%s/test_psi.XXXXXX", t && *t ? t : "/tmp");
	if (!mkdtemp(dir))
		return -1;
	setenv("PROVIUM_PSI_DIR", dir, 1);
	unsetenv("PROVIUM_NO_PSI");
	return 0;
}

static int teardown(void **st)
{
	(void)st;
	unsetenv("PROVIUM_PSI_DIR");
	unsetenv("PROVIUM_NO_PSI");
	return rm_rf(dir);
}

static void avg10_parsed(void **st)
{
	char p[512];
	(void)st;
	put("cpu", "some avg10=12.50 avg60=1.00 avg300=0.00 total=9\n"
	           "full avg10=99.00 avg60=0.00 avg300=0.00 total=0\n");
	snprintf(p, sizeof p, "%s/cpu", dir);
	assert_true(psi_some_avg10(p) == 12.5);
	put("cpu", "some avg10=x avg60=1.00\n");
	assert_true(psi_some_avg10(p) == -1);
	put("cpu", "full avg10=3.00\n");
	assert_true(psi_some_avg10(p) == -1);
	snprintf(p, sizeof p, "%s/none", dir);
	assert_true(psi_some_avg10(p) == -1);
}

static void pressure_threshold(void **st)
{
	(void)st;
	assert_false(psi_pressured());           /* no files: no pressure */
	put("cpu", "some avg10=50.00 avg60=0 avg300=0 total=0\n");
	assert_false(psi_pressured());           /* at the threshold: not over */
	put("cpu", "some avg10=50.01 avg60=0 avg300=0 total=0\n");
	assert_true(psi_pressured());
	assert_false(psi_memory_pressured());
	put("cpu", "some avg10=0.00 avg60=0 avg300=0 total=0\n");
	put("memory", "some avg10=80.00 avg60=0 avg300=0 total=0\n");
	assert_true(psi_pressured());
	assert_true(psi_memory_pressured());
	setenv("PROVIUM_NO_PSI", "1", 1);
	assert_false(psi_pressured());
	assert_false(psi_memory_pressured());
}

static void cpu_idle(void **st)
{
	(void)st;
	assert_false(psi_cpu_idle());            /* unreadable: not idle */
	put("cpu", "some avg10=0.00 avg60=0 avg300=0 total=0\n");
	assert_true(psi_cpu_idle());
	put("cpu", "some avg10=10.00 avg60=0 avg300=0 total=0\n");
	assert_true(psi_cpu_idle());
	put("cpu", "some avg10=10.01 avg60=0 avg300=0 total=0\n");
	assert_false(psi_cpu_idle());
	put("cpu", "some avg10=0.00 avg60=0 avg300=0 total=0\n");
	setenv("PROVIUM_NO_PSI", "1", 1);
	assert_false(psi_cpu_idle());            /* PSI off: the conservative answer */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(avg10_parsed, setup, teardown),
		cmocka_unit_test_setup_teardown(pressure_threshold, setup, teardown),
		cmocka_unit_test_setup_teardown(cpu_idle, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
