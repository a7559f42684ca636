/* test_nbdmed.c — the write-back NBD server behind boot-time disks
 * (src/host/vmm/nbdmed.c), driven by a minimal NBD client over its unix
 * socket: reads see unflushed writes, FLUSH makes them durable in the
 * image, a drop (the power cut) loses only the unflushed ones, a commit
 * and SIGTERM write them through, faults answer EIO, partial-sector
 * writes keep the bytes around them. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "vmm/nbdmed.h"

static char dir[PATH_MAX], img[PATH_MAX + 16], sock[PATH_MAX + 16];

static int setup(void **state)
{
	int fd;
	(void)state;
	snprintf(dir, sizeof dir, "/tmp/provium-nbdmed-XXXXXX");
	if (!mkdtemp(dir))
		return -1;
	snprintf(img, sizeof img, "%s/img", dir);
	snprintf(sock, sizeof sock, "%s/s", dir);
	fd = open(img, O_RDWR | O_CREAT | O_TRUNC, 0644);
	if (fd < 0 || ftruncate(fd, 64 * 1024) < 0)
		return -1;
	close(fd);
	return 0;
}

static int teardown(void **state)
{
	char cmd[PATH_MAX + 16];
	(void)state;
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static void rd(int fd, void *p, size_t n)
{
	char *c = p;
	while (n) {
		ssize_t r = read(fd, c, n);
		assert_true(r > 0);
		c += r;
		n -= (size_t)r;
	}
}

static void wr(int fd, const void *p, size_t n)
{
	assert_int_equal(write(fd, p, n), (ssize_t)n);
}

static void p32(unsigned char *b, uint32_t v) { b[0] = v >> 24; b[1] = v >> 16; b[2] = v >> 8; b[3] = v; }
static void p64(unsigned char *b, uint64_t v) { p32(b, v >> 32); p32(b + 4, (uint32_t)v); }
static uint32_t g32(const unsigned char *b) { return (uint32_t)b[0] << 24 | b[1] << 16 | b[2] << 8 | b[3]; }

/* Connect and negotiate with NBD_OPT_GO; returns the socket. */
static int client(void)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	unsigned char b[64];
	int c = socket(AF_UNIX, SOCK_STREAM, 0);
	strcpy(sa.sun_path, sock);
	assert_int_equal(connect(c, (struct sockaddr *)&sa, sizeof sa), 0);
	rd(c, b, 18);
	assert_memory_equal(b, "NBDMAGIC", 8);
	p32(b, 2);                              /* NO_ZEROES */
	wr(c, b, 4);
	memcpy(b, "IHAVEOPT", 8);
	p32(b + 8, 7);                          /* GO */
	p32(b + 12, 6);
	p32(b + 16, 0);                         /* empty name */
	b[20] = b[21] = 0;                      /* no info requests */
	wr(c, b, 22);
	rd(c, b, 20);                           /* NBD_REP_INFO */
	assert_int_equal(g32(b + 12), 3);
	rd(c, b, g32(b + 16));
	assert_int_equal(g32(b + 2) , 0);       /* size high word */
	rd(c, b, 20);                           /* ACK */
	assert_int_equal(g32(b + 12), 1);
	return c;
}

/* One request; returns the error, reads a READ's data into out. */
static uint32_t req(int c, uint16_t type, uint64_t off, const void *data, uint32_t len, void *out)
{
	unsigned char q[28] = {0}, r[16];
	p32(q, 0x25609513);
	q[6] = 0;
	q[7] = (unsigned char)type;
	p64(q + 8, 42);
	p64(q + 16, off);
	p32(q + 24, len);
	wr(c, q, 28);
	if (type == 1)
		wr(c, data, len);
	rd(c, r, 16);
	assert_int_equal(g32(r), 0x67446698);
	if (type == 0 && g32(r + 4) == 0)
		rd(c, out, len);
	return g32(r + 4);
}

static void img_bytes(uint64_t off, char *buf, size_t n)
{
	int fd = open(img, O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(pread(fd, buf, n, (off_t)off), (ssize_t)n);
	close(fd);
}

static void test_flush_and_power_cut(void **state)
{
	struct nbdmed m;
	char err[256], buf[512], zero[512] = {0};
	int c;
	(void)state;
	assert_int_equal(nbdmed_start(img, sock, &m, err, sizeof err), 0);
	c = client();
	memset(buf, 'A', sizeof buf);
	assert_int_equal(req(c, 1, 0, buf, 512, NULL), 0);
	assert_int_equal(req(c, 3, 0, NULL, 0, NULL), 0);          /* FLUSH */
	img_bytes(0, buf, 512);
	assert_int_equal(buf[0], 'A');
	memset(buf, 'B', sizeof buf);
	assert_int_equal(req(c, 1, 1024, buf, 512, NULL), 0);      /* not flushed */
	memset(buf, 0, sizeof buf);
	assert_int_equal(req(c, 0, 1024, NULL, 512, buf), 0);
	assert_int_equal(buf[0], 'B');                              /* read back */
	img_bytes(1024, buf, 512);
	assert_memory_equal(buf, zero, 512);                        /* not in the image */
	close(c);
	assert_int_equal(nbdmed_stop(&m, NBDMED_DROP, err, sizeof err), 0);
	img_bytes(1024, buf, 512);
	assert_memory_equal(buf, zero, 512);                        /* lost */
	img_bytes(0, buf, 512);
	assert_int_equal(buf[0], 'A');                              /* kept */
}

static void test_commit_and_sigterm(void **state)
{
	struct nbdmed m;
	char err[256], buf[512];
	int c, st;
	(void)state;
	assert_int_equal(nbdmed_start(img, sock, &m, err, sizeof err), 0);
	c = client();
	memset(buf, 'C', sizeof buf);
	assert_int_equal(req(c, 1, 2048, buf, 512, NULL), 0);
	close(c);
	assert_int_equal(nbdmed_stop(&m, NBDMED_COMMIT, err, sizeof err), 0);
	img_bytes(2048, buf, 512);
	assert_int_equal(buf[0], 'C');

	assert_int_equal(nbdmed_start(img, sock, &m, err, sizeof err), 0);
	c = client();
	memset(buf, 'T', sizeof buf);
	assert_int_equal(req(c, 1, 4096, buf, 512, NULL), 0);
	kill(m.pid, SIGTERM);
	assert_int_equal(waitpid(m.pid, &st, 0), m.pid);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	close(c);
	close(m.ctl);
	img_bytes(4096, buf, 512);
	assert_int_equal(buf[0], 'T');
}

static void test_partial_sector_and_faults(void **state)
{
	struct nbdmed m;
	char err[256], buf[512];
	int c;
	(void)state;
	memset(buf, 'x', sizeof buf);
	{
		int fd = open(img, O_WRONLY);
		assert_int_equal(pwrite(fd, buf, 512, 512), 512);
		close(fd);
	}
	assert_int_equal(nbdmed_start(img, sock, &m, err, sizeof err), 0);
	c = client();
	assert_int_equal(req(c, 1, 512 + 100, "hello", 5, NULL), 0);
	assert_int_equal(req(c, 0, 512, NULL, 512, buf), 0);
	assert_memory_equal(buf + 100, "hello", 5);
	assert_int_equal(buf[99], 'x');
	assert_int_equal(buf[105], 'x');
	assert_int_equal(nbdmed_faults(&m, NBDMED_EIO_READ, err, sizeof err), 0);
	assert_int_equal(req(c, 0, 0, NULL, 512, buf), 5);
	assert_int_equal(req(c, 1, 0, buf, 512, NULL), 0);
	assert_int_equal(nbdmed_faults(&m, NBDMED_EIO_WRITE, err, sizeof err), 0);
	assert_int_equal(req(c, 1, 0, buf, 512, NULL), 5);
	assert_int_equal(req(c, 0, 0, NULL, 512, buf), 0);
	assert_int_equal(nbdmed_faults(&m, 0, err, sizeof err), 0);
	assert_int_equal(req(c, 0, 64 * 1024, NULL, 512, buf), 22);   /* past the end */
	close(c);
	assert_int_equal(nbdmed_stop(&m, NBDMED_COMMIT, err, sizeof err), 0);
	img_bytes(512, buf, 512);
	assert_memory_equal(buf + 100, "hello", 5);
	assert_int_equal(buf[105], 'x');
}

static void test_bad_image(void **state)
{
	struct nbdmed m;
	char err[256], odd[PATH_MAX + 16];
	int fd;
	(void)state;
	assert_int_equal(nbdmed_start("/no/such/img", sock, &m, err, sizeof err), -1);
	assert_non_null(strstr(err, "No such file or directory"));
	snprintf(odd, sizeof odd, "%s/odd", dir);
	fd = open(odd, O_WRONLY | O_CREAT, 0644);
	assert_int_equal(write(fd, "abc", 3), 3);
	close(fd);
	assert_int_equal(nbdmed_start(odd, sock, &m, err, sizeof err), -1);
	assert_non_null(strstr(err, "multiple of 512"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_flush_and_power_cut, setup, teardown),
		cmocka_unit_test_setup_teardown(test_commit_and_sigterm, setup, teardown),
		cmocka_unit_test_setup_teardown(test_partial_sector_and_faults, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_image, setup, teardown),
	};
	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
