/* errbuf.h — the error-message convention of the host code.
 *
 * Functions that can fail take (char *err, size_t errlen), return 0 or -1,
 * and on failure leave a human message in err. err_set() writes one,
 * preserving errno (so a caller can still look at the OS error) and doing
 * nothing when err is NULL or errlen is 0. */
#ifndef PROVIUM_ERRBUF_H
#define PROVIUM_ERRBUF_H

#include <stddef.h>
#include <stdint.h>

/* mono_now_ns() lives in clock.h; included here for the callers that
 * take it together with err_set(). */
#include "clock.h"

void err_set(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#endif
