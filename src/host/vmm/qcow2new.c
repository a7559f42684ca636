/* qcow2new.c — an empty qcow2 (version 3) image, written directly
 * (qcow2new.h). Layout, 64 KiB clusters, all integers big-endian:
 *   cluster 0      header (104 bytes; the rest zero = end of extensions)
 *   cluster 1      refcount table: one entry -> cluster 2
 *   cluster 2      refcount block: 16-bit refcounts, 1 for clusters 0..3+
 *   cluster 3...   L1 table, all zero (nothing allocated yet)
 * QEMU's qcow2 driver grows every table itself as the guest writes. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "errbuf.h"
#include "fsutil.h"
#include "vmm/qcow2new.h"

#define CLUSTER_BITS 16
#define CLUSTER (UINT64_C(1) << CLUSTER_BITS)
#define HEADER_LEN 104u

static void put32(unsigned char *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (unsigned char)(v >> (24 - 8 * i));
}

static void put64(unsigned char *p, uint64_t v)
{
	put32(p, (uint32_t)(v >> 32));
	put32(p + 4, (uint32_t)v);
}

int qcow2_create(const char *path, uint64_t size, char *err, size_t errlen)
{
	/* one L1 entry maps one L2 table: CLUSTER / 8 clusters of data */
	uint64_t per_l1 = CLUSTER * (CLUSTER / 8);
	uint64_t l1_size, l1_clusters, total;
	unsigned char *buf;
	int fd, rc = -1;

	if (size == 0 || size % 512 || size > QCOW2NEW_MAX_SIZE) {
		err_set(err, errlen, "overlay `%s`: unusable disk size %llu", path,
		        (unsigned long long)size);
		return -1;
	}
	l1_size = (size + per_l1 - 1) / per_l1;
	l1_clusters = (l1_size * 8 + CLUSTER - 1) / CLUSTER;
	total = 3 + l1_clusters;
	if (!(buf = calloc(total, CLUSTER))) {
		err_set(err, errlen, "out of memory");
		return -1;
	}
	memcpy(buf, "QFI\xfb", 4);
	put32(buf + 4, 3);                       /* version */
	/* 8 backing_file_offset, 16 backing_file_size: none */
	put32(buf + 20, CLUSTER_BITS);
	put64(buf + 24, size);
	/* 32 crypt_method: none */
	put32(buf + 36, (uint32_t)l1_size);
	put64(buf + 40, 3 * CLUSTER);            /* l1_table_offset */
	put64(buf + 48, 1 * CLUSTER);            /* refcount_table_offset */
	put32(buf + 56, 1);                      /* refcount_table_clusters */
	/* 60 nb_snapshots, 64 snapshots_offset, 72/80/88 feature bits: 0 */
	put32(buf + 96, 4);                      /* refcount_order: 16-bit */
	put32(buf + 100, HEADER_LEN);
	put64(buf + CLUSTER, 2 * CLUSTER);       /* refcount table[0] */
	for (uint64_t c = 0; c < total; c++) {   /* refcount block */
		unsigned char *p = buf + 2 * CLUSTER + 2 * c;
		p[0] = 0;
		p[1] = 1;
	}
	if ((fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600)) < 0) {
		err_set(err, errlen, "overlay `%s`: %s", path, strerror(errno));
		free(buf);
		return -1;
	}
	if (write_all(fd, buf, (size_t)(total * CLUSTER)) < 0 || fsync(fd) < 0)
		err_set(err, errlen, "overlay `%s`: %s", path, strerror(errno));
	else
		rc = 0;
	if (close(fd) < 0 && rc == 0) {
		err_set(err, errlen, "overlay `%s`: %s", path, strerror(errno));
		rc = -1;
	}
	if (rc < 0)
		unlink(path);
	free(buf);
	return rc;
}
