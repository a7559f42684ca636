/* test_snapfile.c — snapshot file round trip and every corruption the
 * reader must catch (src/host/snap/snapfile.c, snaptree.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "snap/snapfile.h"
#include "snap/snaptree.h"
#include "fixture/cache.h"
#include "fsutil.h"

static char dir[64];

static int setup(void **st)
{
	(void)st;
	strcpy(dir, "/tmp/provium-snapfile-XXXXXX");
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **st)
{
	(void)st;
	rm_rf(dir);
	return 0;
}

static void write_snap(const char *path, size_t n)
{
	char name[] = "vm1", prof[] = "default", be[] = "local";
	struct snap_header h = {.vm_name = name, .profile = prof, .backend = be,
	                        .qemu_version = be, .memory = 1 << 20, .cpus = 2};
	struct snap_writer *w;
	char err[256];
	assert_int_equal(snapfile_create(&w, path, &h, err, sizeof err), 0);
	assert_int_equal(snapfile_section_begin(w, "data", err, sizeof err), 0);
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)(i * 7 + (i >> 8));
		assert_int_equal(snapfile_write(w, &c, 1, err, sizeof err), 0);
	}
	assert_int_equal(snapfile_section_end(w, err, sizeof err), 0);
	assert_int_equal(snapfile_finish(w, err, sizeof err), 0);
}

static void round_trip(void **st)
{
	char path[128], err[256];
	struct snap_reader *r;
	struct snap_header h;
	const char *name;
	uint64_t raw;
	size_t total = 0, got;
	unsigned char buf[1000];
	(void)st;
	snprintf(path, sizeof path, "%s/a.snap", dir);
	write_snap(path, 100000);
	assert_int_equal(snapfile_open(&r, path, &h, err, sizeof err), 0);
	assert_string_equal(h.vm_name, "vm1");
	assert_string_equal(h.profile, "default");
	assert_int_equal(h.memory, 1 << 20);
	assert_int_equal(h.cpus, 2);
	assert_int_equal(h.version, SNAPFILE_VERSION);
	assert_int_equal(snapfile_next_section(r, &name, &raw, err, sizeof err), 1);
	assert_string_equal(name, "data");
	assert_int_equal(raw, 100000);
	do {
		assert_int_equal(snapfile_read(r, buf, sizeof buf, &got, err, sizeof err), 0);
		for (size_t i = 0; i < got; i++)
			assert_int_equal(buf[i], (unsigned char)((total + i) * 7 + ((total + i) >> 8)));
		total += got;
	} while (got);
	assert_int_equal(total, 100000);
	assert_int_equal(snapfile_next_section(r, &name, &raw, err, sizeof err), 0);
	snapfile_close(r);
	snap_header_free(&h);
	assert_int_equal(snapfile_verify(path, err, sizeof err), 0);
}

static void expect_verify_fails(const char *path, const char *needle)
{
	char err[512] = "";
	assert_int_equal(snapfile_verify(path, err, sizeof err), -1);
	if (!strstr(err, needle))
		fail_msg("error \"%s\" lacks \"%s\"", err, needle);
}

static void truncated(void **st)
{
	char path[128];
	struct stat s;
	(void)st;
	snprintf(path, sizeof path, "%s/t.snap", dir);
	write_snap(path, 50000);
	assert_int_equal(stat(path, &s), 0);
	for (off_t cut = 4; cut < s.st_size; cut += s.st_size / 7 + 1) {
		assert_int_equal(truncate(path, cut), 0);
		char err[512] = "";
		assert_int_equal(snapfile_verify(path, err, sizeof err), -1);
		assert_non_null(strstr(err, path));
	}
	write_snap(path, 50000);
	assert_int_equal(truncate(path, s.st_size - 1), 0);
	expect_verify_fails(path, "truncated");
}

static void garbled(void **st)
{
	char path[128];
	struct stat s;
	FILE *f;
	(void)st;
	snprintf(path, sizeof path, "%s/g.snap", dir);
	write_snap(path, 50000);
	assert_int_equal(stat(path, &s), 0);
	/* A flipped byte in the compressed payload (middle of the file). */
	f = fopen(path, "r+b");
	fseek(f, s.st_size / 2, SEEK_SET);
	int c = fgetc(f);
	fseek(f, s.st_size / 2, SEEK_SET);
	fputc(c ^ 0x55, f);
	fclose(f);
	expect_verify_fails(path, "corrupt");
	/* A flipped byte in the header. */
	write_snap(path, 100);
	f = fopen(path, "r+b");
	fseek(f, 20, SEEK_SET);
	fputc('#', f);
	fclose(f);
	expect_verify_fails(path, "corrupt header");
	/* Bad magic. */
	write_snap(path, 100);
	f = fopen(path, "r+b");
	fputs("NOPE", f);
	fclose(f);
	expect_verify_fails(path, "not a provium snapshot");
}

static void wrong_version(void **st)
{
	char path[128];
	FILE *f;
	unsigned char v[4] = {0, 0, 0, 99};
	(void)st;
	snprintf(path, sizeof path, "%s/v.snap", dir);
	write_snap(path, 10);
	f = fopen(path, "r+b");
	fseek(f, 8, SEEK_SET);
	fwrite(v, 1, 4, f);
	fclose(f);
	expect_verify_fails(path, "format version 99, this provium reads versions 3 to 4");
}

/* A version-3 file (before boot-time disks) is still read, without disks;
 * a version-4 header's disk list round-trips, and a non-array is corrupt. */
static void version3_and_disks(void **st)
{
	char path[128], err[256];
	char name[] = "vm1", prof[] = "default", be[] = "qemu";
	char disks[] = "[{\"id\":\"root\",\"image\":\"/i/r.img\",\"root\":true,\"size\":512,"
	               "\"dev\":\"/dev/vda\"}]";
	struct snap_header h = {.vm_name = name, .profile = prof, .backend = be,
	                        .qemu_version = be, .memory = 1 << 20, .cpus = 1, .disks = disks};
	struct snap_header got;
	struct snap_writer *w;
	unsigned char v[4] = {0, 0, 0, 3};
	FILE *f;
	(void)st;
	snprintf(path, sizeof path, "%s/d.snap", dir);
	assert_int_equal(snapfile_create(&w, path, &h, err, sizeof err), 0);
	assert_int_equal(snapfile_finish(w, err, sizeof err), 0);
	assert_int_equal(snapfile_read_header(path, &got, err, sizeof err), 0);
	assert_int_equal(got.version, 4);
	assert_non_null(got.disks);
	assert_non_null(strstr(got.disks, "\"dev\":\"/dev/vda\""));
	snap_header_free(&got);

	snprintf(path, sizeof path, "%s/v3.snap", dir);
	write_snap(path, 10);
	f = fopen(path, "r+b");
	fseek(f, 8, SEEK_SET);
	fwrite(v, 1, 4, f);
	fclose(f);
	assert_int_equal(snapfile_verify(path, err, sizeof err), 0);
	assert_int_equal(snapfile_read_header(path, &got, err, sizeof err), 0);
	assert_int_equal(got.version, 3);
	assert_null(got.disks);
	snap_header_free(&got);
}

static void tree_round_trip(void **st)
{
	char src[128], dst[128], path[160], err[512];
	char name[] = "t", be[] = "local";
	struct snap_header h = {.vm_name = name, .profile = be, .backend = be, .qemu_version = be};
	struct snap_writer *w;
	struct snap_reader *r;
	const char *sect;
	uint64_t raw;
	FILE *f;
	char buf[64] = "";
	(void)st;
	snprintf(src, sizeof src, "%s/src", dir);
	snprintf(dst, sizeof dst, "%s/dst", dir);
	mkdir(src, 0755);
	mkdir(dst, 0755);
	snprintf(path, sizeof path, "%s/sub", src);
	mkdir(path, 0700);
	snprintf(path, sizeof path, "%s/sub/f", src);
	f = fopen(path, "w");
	fputs("content", f);
	fclose(f);
	snprintf(path, sizeof path, "%s/link", src);
	assert_int_equal(symlink("sub/f", path), 0);
	snprintf(path, sizeof path, "%s/tree.snap", dir);
	assert_int_equal(snapfile_create(&w, path, &h, err, sizeof err), 0);
	assert_int_equal(snapfile_section_begin(w, "fs", err, sizeof err), 0);
	assert_int_equal(snaptree_write(w, src, err, sizeof err), 0);
	assert_int_equal(snapfile_finish(w, err, sizeof err), 0);
	assert_int_equal(snapfile_open(&r, path, &h, err, sizeof err), 0);
	snap_header_free(&h);
	assert_int_equal(snapfile_next_section(r, &sect, &raw, err, sizeof err), 1);
	assert_int_equal(snaptree_extract(r, dst, err, sizeof err), 0);
	snapfile_close(r);
	snprintf(path, sizeof path, "%s/link", dst);
	f = fopen(path, "r");
	assert_non_null(f);
	assert_non_null(fgets(buf, sizeof buf, f));
	fclose(f);
	assert_string_equal(buf, "content");
}

/* One raw tree record (the format in snaptree.c). */
static void put_rec(struct snap_writer *w, char type, const char *rel, unsigned mode,
                    const char *data)
{
	unsigned char b[1 + 2 + 4 + 8 + 8];
	size_t pl = strlen(rel), dl = data ? strlen(data) : 0;
	char err[256];
	memset(b, 0, sizeof b);
	b[0] = (unsigned char)type;
	b[1] = (unsigned char)(pl >> 8);
	b[2] = (unsigned char)pl;
	b[5] = (unsigned char)(mode >> 8);
	b[6] = (unsigned char)mode;
	b[22] = (unsigned char)dl;
	assert_int_equal(snapfile_write(w, b, 3, err, sizeof err), 0);
	assert_int_equal(snapfile_write(w, rel, pl, err, sizeof err), 0);
	assert_int_equal(snapfile_write(w, b + 3, sizeof b - 3, err, sizeof err), 0);
	if (dl)
		assert_int_equal(snapfile_write(w, data, dl, err, sizeof err), 0);
}

/* A crafted tree: a symlink to a file outside the target, then a directory
 * record of the same name with mode 0777. Extraction must refuse it and
 * leave the outside file's mode alone (it used to chmod through the link). */
static void tree_symlink_then_dir(void **st)
{
	char outside[128], dst[128], path[160], err[512];
	char name[] = "t", be[] = "local";
	struct snap_header h = {.vm_name = name, .profile = be, .backend = be, .qemu_version = be};
	struct snap_writer *w;
	struct snap_reader *r;
	const char *sect;
	uint64_t raw;
	struct stat sb;
	FILE *f;
	(void)st;
	snprintf(outside, sizeof outside, "%s/outside", dir);
	snprintf(dst, sizeof dst, "%s/dst2", dir);
	mkdir(dst, 0755);
	f = fopen(outside, "w");
	assert_non_null(f);
	fclose(f);
	assert_int_equal(chmod(outside, 0600), 0);
	snprintf(path, sizeof path, "%s/evil.snap", dir);
	assert_int_equal(snapfile_create(&w, path, &h, err, sizeof err), 0);
	assert_int_equal(snapfile_section_begin(w, "fs", err, sizeof err), 0);
	put_rec(w, 'L', "x", 0777, outside);
	put_rec(w, 'D', "x", 0777, NULL);
	put_rec(w, 'E', "", 0, NULL);
	assert_int_equal(snapfile_finish(w, err, sizeof err), 0);
	assert_int_equal(snapfile_open(&r, path, &h, err, sizeof err), 0);
	snap_header_free(&h);
	assert_int_equal(snapfile_next_section(r, &sect, &raw, err, sizeof err), 1);
	assert_int_equal(snaptree_extract(r, dst, err, sizeof err), -1);
	snapfile_close(r);
	assert_non_null(strstr(err, "is not a directory"));
	assert_int_equal(stat(outside, &sb), 0);
	assert_int_equal(sb.st_mode & 07777, 0600);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(round_trip),
		cmocka_unit_test(truncated),
		cmocka_unit_test(garbled),
		cmocka_unit_test(wrong_version),
		cmocka_unit_test(version3_and_disks),
		cmocka_unit_test(tree_round_trip),
		cmocka_unit_test(tree_symlink_then_dir),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
