/* test_qcow2new.c — the empty qcow2 overlay (src/host/vmm/qcow2new.c):
 * header fields as QEMU reads them (magic, version 3, 64 KiB clusters,
 * size, L1 size and place, refcount table and block, 16-bit refcounts,
 * no backing file name), every cluster of the file counted once, and the
 * refusals (bad sizes, an existing file). QEMU opening it and a guest
 * writing through it: tests/cli/t_vm_fixture_bootdisks.sh. */
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
#include "vmm/qcow2new.h"

static char dir[64], path[128];

static int setup(void **st)
{
	(void)st;
	strcpy(dir, "/tmp/provium-qcow2-XXXXXX");
	if (!mkdtemp(dir))
		return -1;
	snprintf(path, sizeof path, "%s/o.qcow2", dir);
	return 0;
}

static int teardown(void **st)
{
	(void)st;
	unlink(path);
	rmdir(dir);
	return 0;
}

static uint64_t be(const unsigned char *p, int n)
{
	uint64_t v = 0;
	for (int i = 0; i < n; i++)
		v = v << 8 | p[i];
	return v;
}

static void check_image(uint64_t size, uint64_t l1_size, uint64_t clusters)
{
	char err[256], *b;
	size_t len;
	unlink(path);
	assert_int_equal(qcow2_create(path, size, err, sizeof err), 0);
	assert_int_equal(read_file(path, 64u << 20, &b, &len), 0);
	const unsigned char *u = (const unsigned char *)b;
	assert_int_equal(len, clusters * 65536);
	assert_memory_equal(u, "QFI\xfb", 4);
	assert_int_equal(be(u + 4, 4), 3);
	assert_int_equal(be(u + 8, 8), 0);            /* no backing file name */
	assert_int_equal(be(u + 16, 4), 0);
	assert_int_equal(be(u + 20, 4), 16);          /* 64 KiB clusters */
	assert_int_equal(be(u + 24, 8), size);
	assert_int_equal(be(u + 32, 4), 0);           /* no encryption */
	assert_int_equal(be(u + 36, 4), l1_size);
	assert_int_equal(be(u + 40, 8), 3 * 65536);   /* L1 table */
	assert_int_equal(be(u + 48, 8), 65536);       /* refcount table */
	assert_int_equal(be(u + 56, 4), 1);
	assert_int_equal(be(u + 60, 4), 0);           /* no snapshots */
	assert_int_equal(be(u + 72, 8), 0);           /* no incompatible features */
	assert_int_equal(be(u + 96, 4), 4);           /* 16-bit refcounts */
	assert_int_equal(be(u + 100, 4), 104);
	assert_int_equal(be(u + 104, 8), 0);          /* end of header extensions */
	assert_int_equal(be(u + 65536, 8), 2 * 65536);
	assert_int_equal(be(u + 65536 + 8, 8), 0);
	for (uint64_t c = 0; c < clusters + 4; c++)
		assert_int_equal(be(u + 2 * 65536 + 2 * c, 2), c < clusters ? 1 : 0);
	for (uint64_t o = 3 * 65536; o < len; o++)     /* nothing allocated */
		assert_int_equal(u[o], 0);
	free(b);
}

static void header_and_tables(void **st)
{
	(void)st;
	check_image(4u << 20, 1, 4);                  /* one L1 entry: 512 MiB */
	check_image(UINT64_C(1) << 30, 2, 4);
	check_image((UINT64_C(4) << 40) + 512, 8193, 5);   /* L1 past one cluster */
}

static void refusals(void **st)
{
	char err[256];
	(void)st;
	unlink(path);
	assert_int_equal(qcow2_create(path, 0, err, sizeof err), -1);
	assert_non_null(strstr(err, "unusable disk size 0"));
	assert_int_equal(qcow2_create(path, 1000, err, sizeof err), -1);
	assert_int_equal(qcow2_create(path, QCOW2NEW_MAX_SIZE + 512, err, sizeof err), -1);
	assert_int_equal(access(path, F_OK), -1);
	assert_int_equal(qcow2_create(path, 1u << 20, err, sizeof err), 0);
	assert_int_equal(qcow2_create(path, 1u << 20, err, sizeof err), -1);   /* O_EXCL */
	assert_non_null(strstr(err, "File exists"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(header_and_tables),
		cmocka_unit_test(refusals),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
