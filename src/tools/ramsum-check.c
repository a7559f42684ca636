/* ramsum-check — bench helper: the cost of the integrity check a fixture
 * restore runs on an expanded RAM file (src/host/vmm/qemu_ramsum.c).
 * Usage: ramsum-check RAMFILE [ROUNDS]; prints
 *   ramsum_check_ms <median of ROUNDS, warm page cache>
 *   ramsum_check_data_bytes <bytes in the file's data regions>
 * and exits 1 if the file does not pass its check. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "vmm/qemu_ramsum.h"
#include "clock.h"

static double now_ms(void)
{
	return (double)mono_now_ns() / 1e6;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	int rounds = argc > 2 ? atoi(argv[2]) : 5, fd;
	double *t;
	char why[256];
	off_t pos = 0, data, hole, bytes = 0;

	if (argc < 2 || rounds < 1 || !(t = calloc((size_t)rounds, sizeof *t))) {
		fprintf(stderr, "usage: ramsum-check RAMFILE [ROUNDS]\n");
		return 2;
	}
	for (int i = 0; i < rounds; i++) {
		double s = now_ms();
		if (ramsum_check(argv[1], why, sizeof why) != 1) {
			fprintf(stderr, "ramsum-check: %s: %s\n", argv[1], why);
			return 1;
		}
		t[i] = now_ms() - s;
	}
	qsort(t, (size_t)rounds, sizeof *t, cmp);
	if ((fd = open(argv[1], O_RDONLY)) >= 0) {
		while ((data = lseek(fd, pos, SEEK_DATA)) >= 0) {
			hole = lseek(fd, data, SEEK_HOLE);
			bytes += hole - data;
			pos = hole;
		}
		close(fd);
	}
	printf("ramsum_check_ms %.3f\nramsum_check_data_bytes %lld\n", t[rounds / 2], (long long)bytes);
	free(t);
	return 0;
}
