/* fuzz_qmp.c — QMP replies from a hostile QEMU: qmp_open_fd (greeting,
 * capabilities negotiation) and qmp_execute / qmp_wait_event on a
 * socketpair whose peer writes the fuzz bytes and shuts its writing
 * side (commands still go out into its receive buffer). Lines are read
 * until EOF, so no input can make a call wait out its timeout. */
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fuzz_common.h"
#include "vmm/qmp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n)
{
	int sv[2];
	struct qmp *q;
	json_t *ret = NULL, *ev;
	char err[512];
	size_t at = 0;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		abort();
	fuzz_nonblock(sv[1]);
	fuzz_push(sv[1], data, n, &at);  /* -max_len keeps inputs under the buffer */
	shutdown(sv[1], SHUT_WR);
	q = qmp_open_fd(sv[0], qmp_now_ns() + 2000000000LL, err, sizeof err);
	if (!q) {
		close(sv[1]);
		return 0;
	}
	if (qmp_execute(q, "query-status", NULL, 1000, &ret, err, sizeof err) == 0)
		json_decref(ret);
	ret = NULL;
	if (qmp_execute(q, "query-status", NULL, 1000, &ret, err, sizeof err) == 0)
		json_decref(ret);
	if (qmp_wait_event(q, "STOP", 0, &ev, err, sizeof err) == 0)
		json_decref(ev);
	while ((ev = qmp_pop_event(q)))
		json_decref(ev);
	qmp_close(q);
	close(sv[1]);
	return 0;
}
