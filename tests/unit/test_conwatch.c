/* test_conwatch.c — the console watch (src/host/vmm/conwatch.c): which
 * console lines announce a kernel panic, incremental matching of a log
 * that grows in pieces, and the excerpt around the panic. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vmm/conwatch.h"

static bool panic_line(const char *s)
{
	return conwatch_is_panic_line(s, strlen(s));
}

static void test_panic_lines(void **state)
{
	(void)state;
	assert_true(panic_line("[    2.345678] Kernel panic - not syncing: Attempted to kill init! "
			       "exitcode=0x00000300"));
	assert_true(panic_line("Kernel panic - not syncing: sysrq triggered crash"));
	assert_true(panic_line("[    2.401234] ---[ end Kernel panic - not syncing: Fatal exception ]---"));
	assert_true(panic_line("<0>[    1.0] Kernel panic - not syncing: VFS: Unable to mount root fs"));
	/* interleaved with user output on the serial line */
	assert_true(panic_line("hello[    3.1] Kernel panic - not syncing: Out of memory"));
	assert_false(panic_line(""));
	assert_false(panic_line("[    0.000000] Kernel command line: console=ttyS0 panic=-1 quiet"));
	assert_false(panic_line("[    5.0] sysrq: Trigger a crash"));
	assert_false(panic_line("kernel panic - not syncing"));      /* case matters */
	assert_false(panic_line("Kernel panic"));                    /* not the banner */
	assert_false(panic_line("[    9.9] BUG: kernel NULL pointer dereference, address: 0"));
}

static const char LOG[] =
	"[    0.000000] Linux version 6.1.0\r\n"
	"[    1.500000] Run /sbin/provium-agent as init process\r\n"
	"init-exits-now\r\n"
	"[    2.345678] Kernel panic - not syncing: Attempted to kill init! exitcode=0x00000300\r\n"
	"[    2.350000] CPU: 0 PID: 1 Comm: provium-agent\r\n"
	"[    2.401234] ---[ end Kernel panic - not syncing: Attempted to kill init! exitcode=0x00000300 ]---\r\n";

static void test_feed_in_pieces(void **state)
{
	struct conwatch w;
	const char *at = strstr(LOG, "[    2.345678]");
	size_t n = strlen(LOG);
	(void)state;
	/* byte by byte: the same verdict as all at once */
	conwatch_reset(&w);
	for (size_t i = 0; i < n; i++) {
		bool dead = conwatch_feed(&w, LOG + i, 1);
		/* not before the panic line is complete */
		assert_int_equal(dead, LOG + i >= strchr(at, '\n'));
	}
	assert_true(w.dead);
	assert_true(w.ended);
	assert_string_equal(w.panic,
			    "Kernel panic - not syncing: Attempted to kill init! exitcode=0x00000300");
	assert_int_equal(w.panic_off, at - LOG);
	assert_int_equal(w.panic_end, strchr(at, '\n') + 1 - LOG);
	assert_int_equal(w.off, n);

	/* a partial panic line is not a verdict yet */
	conwatch_reset(&w);
	assert_false(conwatch_feed(&w, "[ 1.0] Kernel panic - not syncing: x", 36));
	assert_false(w.dead);
	assert_true(conwatch_feed(&w, "yz\n", 3));
	assert_string_equal(w.panic, "Kernel panic - not syncing: xyz");
	assert_false(w.ended);

	/* a quiet log stays alive */
	conwatch_reset(&w);
	assert_false(conwatch_feed(&w, "a\nb\nc\n", 6));
}

static char path[64];

static void write_log(const char *s, const char *mode)
{
	FILE *f = fopen(path, mode);
	assert_non_null(f);
	fputs(s, f);
	fclose(f);
}

static void test_poll_growing_log(void **state)
{
	struct conwatch w;
	int fd;
	(void)state;
	snprintf(path, sizeof path, "/tmp/test_conwatch.XXXXXX");
	fd = mkstemp(path);
	assert_true(fd >= 0);
	close(fd);
	conwatch_reset(&w);
	assert_false(conwatch_poll(&w, "/nonexistent/console.log"));
	write_log("[ 0.1] booting\n[ 0.2] Kernel pa", "w");
	assert_false(conwatch_poll(&w, path));
	write_log("nic - not syncing: boom\n", "a");
	assert_true(conwatch_poll(&w, path));
	assert_string_equal(w.panic, "Kernel panic - not syncing: boom");
	assert_false(w.ended);
	write_log("[ 0.3] ---[ end Kernel panic - not syncing: boom ]---\n", "a");
	assert_true(conwatch_poll(&w, path));
	assert_true(w.ended);
	/* the log recreated (a new QEMU) and shorter: start over */
	write_log("fresh\n", "w");
	assert_false(conwatch_poll(&w, path));
	assert_int_equal(w.off, 6);
	unlink(path);
}

static void test_excerpt(void **state)
{
	struct conwatch w;
	char line[128], *ex;
	FILE *f;
	int fd;
	(void)state;
	snprintf(path, sizeof path, "/tmp/test_conwatch.XXXXXX");
	fd = mkstemp(path);
	assert_true(fd >= 0);
	close(fd);
	f = fopen(path, "w");
	assert_non_null(f);
	for (int i = 0; i < 200; i++)
		fprintf(f, "[ %d.0] boot line %d\r\n", i, i);
	fputs("[ 9.0] Kernel panic - not syncing: sysrq triggered crash\r\n", f);
	for (int i = 0; i < 80; i++)
		fprintf(f, "[ 9.1]  trace_frame_%d+0x1/0x2\r\n", i);
	fputs("[ 9.2] ---[ end Kernel panic - not syncing: sysrq triggered crash ]---\r\n", f);
	fclose(f);

	conwatch_reset(&w);
	assert_null(conwatch_excerpt(&w, path, 2048));   /* not dead */
	assert_true(conwatch_poll(&w, path));
	ex = conwatch_excerpt(&w, path, 2048);
	assert_non_null(ex);
	assert_true(strlen(ex) <= 2048);
	assert_null(strchr(ex, '\r'));
	/* starts at a line, has the lines just before the panic and the panic */
	assert_memory_equal(ex, "[ ", 2);
	assert_non_null(strstr(ex, "[ 199.0] boot line 199\n[ 9.0] Kernel panic - not syncing: "
				   "sysrq triggered crash\n"));
	assert_null(strstr(ex, "boot line 0\n"));
	/* the long trace: its first lines, the rest elided, the end marker kept */
	{
		const char *m = strstr(ex, "[... ");
		int elided = -1, shown = 0;
		assert_non_null(m);
		assert_int_equal(sscanf(m, "[... %d lines ...]", &elided), 1);
		assert_non_null(strstr(m, " lines ...]\n[ 9.2] ---[ end Kernel panic"));
		assert_string_equal(ex + strlen(ex) - 4, "---\n");  /* ends with the marker */
		for (const char *p = ex; (p = strstr(p, "trace_frame_")); p++)
			shown++;
		assert_true(shown >= 5);        /* who panicked and how */
		assert_int_equal(shown + elided, 80);
		snprintf(line, sizeof line, "trace_frame_%d+", shown - 1);
		assert_non_null(strstr(ex, line));
		assert_true(strstr(ex, line) < m);
	}
	free(ex);

	/* a short tail after the panic comes whole */
	ex = conwatch_excerpt(&w, path, 8192);
	assert_non_null(ex);
	snprintf(line, sizeof line, "trace_frame_%d+0x1/0x2\n[ 9.2] ---[ end", 79);
	assert_non_null(strstr(ex, line));
	assert_non_null(strstr(ex, "trace_frame_0+"));
	free(ex);
	unlink(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_panic_lines),
		cmocka_unit_test(test_feed_in_pieces),
		cmocka_unit_test(test_poll_growing_log),
		cmocka_unit_test(test_excerpt),
	};
	return cmocka_run_group_tests_name("conwatch", tests, NULL, NULL);
}
