/* test_ramsum.c — the digest of expanded RAM files
 * (src/host/vmm/qemu_ramsum.c): the canonical digest does not depend on
 * how zero pages are stored, and any changed byte — in a used page or in
 * a hole — or a missing or damaged digest file fails the check. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fixture/cache.h"
#include "vmm/qemu_ramsum.h"
#include "fsutil.h"

#define SIZE (8u << 20)
static char dir[64], ram[128];

/* A sparse RAM file with a few used pages; its digest recorded. */
static int setup(void **st)
{
	struct ramsum s;
	unsigned char page[RAMSUM_PAGE];
	char err[256];
	int fd;
	(void)st;
	strcpy(dir, "/tmp/provium-ramsum-XXXXXX");
	if (!mkdtemp(dir))
		return -1;
	snprintf(ram, sizeof ram, "%s/x.snap.ram-1", dir);
	fd = open(ram, O_RDWR | O_CREAT | O_TRUNC, 0644);
	if (fd < 0 || ftruncate(fd, SIZE) < 0)
		return -1;
	ramsum_init(&s);
	for (uint64_t off = RAMSUM_PAGE; off < SIZE; off += 97 * RAMSUM_PAGE) {
		memset(page, (int)(off >> 12) | 1, sizeof page);
		if (pwrite(fd, page, sizeof page, (off_t)off) != (ssize_t)sizeof page)
			return -1;
		ramsum_pages(&s, off, page, sizeof page);
	}
	/* an all-zero page written as data counts as a hole */
	memset(page, 0, sizeof page);
	if (pwrite(fd, page, sizeof page, 3 * RAMSUM_PAGE) != (ssize_t)sizeof page)
		return -1;
	ramsum_pages(&s, 3 * RAMSUM_PAGE, page, sizeof page);
	close(fd);
	return ramsum_write(ram, ramsum_digest(&s), err, sizeof err);
}

static int teardown(void **st)
{
	(void)st;
	rm_rf(dir);
	return 0;
}

static void poke(off_t off, unsigned char v)
{
	int fd = open(ram, O_RDWR);
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, &v, 1, off), 1);
	close(fd);
}

static void good_file_passes(void **st)
{
	char why[256] = "";
	(void)st;
	assert_int_equal(ramsum_check(ram, why, sizeof why), 1);
}

static void flipped_byte_in_used_page_fails(void **st)
{
	char why[256] = "";
	(void)st;
	poke(RAMSUM_PAGE + 100, 0xee);
	assert_int_equal(ramsum_check(ram, why, sizeof why), 0);
	assert_non_null(strstr(why, "does not match its digest"));
	poke(RAMSUM_PAGE + 100, 0x01);   /* the original byte: (4096 >> 12) | 1 */
	assert_int_equal(ramsum_check(ram, why, sizeof why), 1);
}

static void byte_in_hole_fails(void **st)
{
	char why[256] = "";
	(void)st;
	poke(SIZE - 5, 0x01);
	assert_int_equal(ramsum_check(ram, why, sizeof why), 0);
	poke(SIZE - 5, 0x00);            /* zero again: equivalent to the hole */
	assert_int_equal(ramsum_check(ram, why, sizeof why), 1);
}

static void damaged_or_missing_digest_fails(void **st)
{
	char why[256] = "", side[160];
	FILE *f;
	(void)st;
	snprintf(side, sizeof side, "%s.sum", ram);
	f = fopen(side, "w");
	assert_non_null(f);
	fputs("xxh3-64 zzzz\n", f);
	fclose(f);
	assert_int_equal(ramsum_check(ram, why, sizeof why), 0);
	assert_non_null(strstr(why, "malformed"));
	ramsum_remove(ram);
	assert_int_equal(ramsum_check(ram, why, sizeof why), 0);
	assert_non_null(strstr(why, "cannot be read"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(good_file_passes),
		cmocka_unit_test(flipped_byte_in_used_page_fails),
		cmocka_unit_test(byte_in_hole_fails),
		cmocka_unit_test(damaged_or_missing_digest_fails),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
