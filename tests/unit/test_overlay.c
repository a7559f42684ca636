/* test_overlay.c — newc generation (checked by GNU cpio and by parsing it
 * back), the content-hash merge cache, and overlay discovery order. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vmm/overlay.h"

static char tmpdir[64];

static int setup(void **state)
{
	(void)state;
	snprintf(tmpdir, sizeof tmpdir, "/tmp/test-overlay-XXXXXX");
	return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	char cmd[128];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

static void write_file(const char *path, const void *data, size_t len)
{
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	assert_int_equal(fwrite(data, 1, len, f), len);
	fclose(f);
}

static unsigned hex8(const unsigned char *p)
{
	char b[9];
	memcpy(b, p, 8);
	b[8] = 0;
	return (unsigned)strtoul(b, NULL, 16);
}

static void test_files_cpio(void **state)
{
	(void)state;
	char err[256];
	unsigned char *buf;
	size_t len;
	const struct overlay_file files[] = {
		{ "/etc/hostname", "v\n", 2, 0 },
		{ "//etc//motd", "hello", 5, 0600 },
		{ "/usr/local/bin/tool", "#!/bin/sh\n", 10, 0755 },
		{ "/empty", "", 0, 0 },
	};
	assert_int_equal(overlay_files_cpio(files, 4, &buf, &len, err, sizeof err), 0);
	assert_int_equal(len % 4, 0);

	/* parse it back */
	const char *want[] = { "etc", "etc/hostname", "etc/motd", "usr", "usr/local", "usr/local/bin",
			       "usr/local/bin/tool", "empty", "TRAILER!!!" };
	unsigned want_mode[] = { 040755, 0100644, 0100600, 040755, 040755, 040755, 0100755, 0100644, 0 };
	size_t off = 0, i = 0;
	while (off < len) {
		assert_true(i < 9);
		assert_memory_equal(buf + off, "070701", 6);
		unsigned mode = hex8(buf + off + 14);
		unsigned fsize = hex8(buf + off + 54);
		unsigned nsize = hex8(buf + off + 94);
		const char *name = (const char *)buf + off + 110;
		assert_string_equal(name, want[i]);
		assert_int_equal(mode, want_mode[i]);
		off += (110 + nsize + 3) & ~3u;
		if (strcmp(name, "etc/motd") == 0)
			assert_memory_equal(buf + off, "hello", 5);
		off += (fsize + 3) & ~3u;
		i++;
	}
	assert_int_equal(i, 9);
	assert_int_equal(off, len);

	/* and GNU cpio agrees */
	char path[256], cmd[512], line[256];
	snprintf(path, sizeof path, "%s/files.cpio", tmpdir);
	write_file(path, buf, len);
	free(buf);
	snprintf(cmd, sizeof cmd, "cpio -it --quiet < '%s' 2>&1", path);
	FILE *p = popen(cmd, "r");
	assert_non_null(p);
	size_t n = 0;
	while (fgets(line, sizeof line, p)) {
		line[strcspn(line, "\n")] = 0;
		assert_true(n < 8);
		assert_string_equal(line, want[n]);
		n++;
	}
	assert_int_equal(pclose(p), 0);
	assert_int_equal(n, 8);
}

static void test_files_cpio_rejects(void **state)
{
	(void)state;
	char err[256];
	unsigned char *buf = NULL;
	size_t len = 0;
	const char *bad[] = { "etc/x", "/etc/../x", "/./x", "/", "" };
	for (size_t i = 0; i < 5; i++) {
		struct overlay_file f = { bad[i], "x", 1, 0 };
		assert_int_equal(overlay_files_cpio(&f, 1, &buf, &len, err, sizeof err), -1);
		assert_null(buf);
		assert_non_null(strstr(err, "must be absolute"));
	}
	/* no files: just the trailer */
	assert_int_equal(overlay_files_cpio(NULL, 0, &buf, &len, err, sizeof err), 0);
	assert_true(len == 124);
	free(buf);
}

static void test_merge_cache(void **state)
{
	(void)state;
	char err[256], a[256], b[256], *out = NULL, *out2 = NULL, *cp = NULL;
	snprintf(a, sizeof a, "%s/initrd", tmpdir);
	snprintf(b, sizeof b, "%s/overlay", tmpdir);
	write_file(a, "ABCDEFG", 7);     /* 7 bytes: padded with one zero */
	write_file(b, "overlay!", 8);
	struct overlay_part parts[] = { { a, NULL, 0 }, { b, NULL, 0 }, { NULL, "mem", 3 } };
	assert_int_equal(overlay_merge(tmpdir, parts, 3, &out, err, sizeof err), 0);

	const unsigned char want[] = "ABCDEFG\0overlay!mem\0";
	FILE *f = fopen(out, "r");
	assert_non_null(f);
	unsigned char got[64];
	size_t n = fread(got, 1, sizeof got, f);
	fclose(f);
	assert_int_equal(n, 20);
	assert_memory_equal(got, want, 20);

	/* named by the sha256 of exactly those bytes */
	unsigned char md[32];
	unsigned mdlen = 0;
	EVP_Digest(want, 20, md, &mdlen, EVP_sha256(), NULL);
	char expect[512];
	int o = snprintf(expect, sizeof expect, "%s/agent-overlay-cache/", tmpdir);
	for (unsigned i = 0; i < 32; i++)
		o += snprintf(expect + o, sizeof expect - (size_t)o, "%02x", md[i]);
	snprintf(expect + o, sizeof expect - (size_t)o, ".cpio.gz");
	assert_string_equal(out, expect);
	assert_int_equal(overlay_cache_path(tmpdir, parts, 3, &cp, err, sizeof err), 0);
	assert_string_equal(cp, expect);

	/* hit: same path, file untouched */
	struct stat st1, st2;
	assert_int_equal(stat(out, &st1), 0);
	assert_int_equal(overlay_merge(tmpdir, parts, 3, &out2, err, sizeof err), 0);
	assert_string_equal(out, out2);
	assert_int_equal(stat(out2, &st2), 0);
	assert_int_equal(st1.st_ino, st2.st_ino);
	free(out2);

	/* change an input: another entry */
	write_file(b, "overlay?", 8);
	assert_int_equal(overlay_merge(tmpdir, parts, 3, &out2, err, sizeof err), 0);
	assert_string_not_equal(out, out2);
	free(out2);
	free(out);
	free(cp);

	/* a missing input names the path */
	struct overlay_part miss = { "/nonexistent/initrd", NULL, 0 };
	assert_int_equal(overlay_merge(tmpdir, &miss, 1, &out, err, sizeof err), -1);
	assert_non_null(strstr(err, "/nonexistent/initrd"));
}

static void test_find(void **state)
{
	(void)state;
	char err[512], *out = NULL, p[512], exe[512], share[512];
	unsetenv("PROVIUM_OVERLAY");

	/* explicit profile path wins; missing -> error naming it */
	snprintf(p, sizeof p, "%s/explicit.cpio.gz", tmpdir);
	write_file(p, "x", 1);
	assert_int_equal(overlay_find(p, "/nonexistent", &out, err, sizeof err), 0);
	assert_string_equal(out, p);
	free(out);
	assert_int_equal(overlay_find("/nonexistent/o.cpio.gz", NULL, &out, err, sizeof err), -1);
	assert_non_null(strstr(err, "/nonexistent/o.cpio.gz"));

	/* env next */
	setenv("PROVIUM_OVERLAY", p, 1);
	assert_int_equal(overlay_find(NULL, "/nonexistent", &out, err, sizeof err), 0);
	assert_string_equal(out, p);
	free(out);
	setenv("PROVIUM_OVERLAY", "/nonexistent/env.cpio.gz", 1);
	assert_int_equal(overlay_find(NULL, "/nonexistent", &out, err, sizeof err), -1);
	assert_non_null(strstr(err, "PROVIUM_OVERLAY"));
	unsetenv("PROVIUM_OVERLAY");

	/* walking up from <tmp>/tree/build/bin finds <tmp>/tree/build/guest/... */
	snprintf(exe, sizeof exe, "%s/tree", tmpdir);
	mkdir(exe, 0755);
	snprintf(exe, sizeof exe, "%s/tree/build", tmpdir);
	mkdir(exe, 0755);
	snprintf(p, sizeof p, "%s/tree/build/guest", tmpdir);
	mkdir(p, 0755);
	snprintf(p, sizeof p, "%s/tree/build/guest/agent-overlay.cpio.gz", tmpdir);
	write_file(p, "y", 1);
	snprintf(exe, sizeof exe, "%s/tree/build/bin", tmpdir);
	mkdir(exe, 0755);
	snprintf(share, sizeof share, "%s/tree/build/share", tmpdir);
	mkdir(share, 0755);
	assert_int_equal(overlay_find(NULL, exe, &out, err, sizeof err), 0);
	assert_string_equal(out, p);
	free(out);

	/* <exe>/../share/provium/ comes before the walk */
	snprintf(share, sizeof share, "%s/tree/build/share/provium", tmpdir);
	mkdir(share, 0755);
	snprintf(share, sizeof share, "%s/tree/build/share/provium/agent-overlay.cpio.gz", tmpdir);
	write_file(share, "z", 1);
	assert_int_equal(overlay_find(NULL, exe, &out, err, sizeof err), 0);
	assert_non_null(strstr(out, "/share/provium/agent-overlay.cpio.gz"));
	free(out);

	/* nothing anywhere */
	assert_int_equal(overlay_find(NULL, "/nonexistent/bin", &out, err, sizeof err), -1);
	assert_non_null(strstr(err, "agent overlay not found"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_files_cpio),
		cmocka_unit_test(test_files_cpio_rejects),
		cmocka_unit_test(test_merge_cache),
		cmocka_unit_test(test_find),
	};
	return cmocka_run_group_tests_name("overlay", tests, setup, teardown);
}
