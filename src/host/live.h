/* live.h — the terminal side of human output: the colour decision and
 * the one progress line redrawn in place while files run.
 *
 * live_color(): --color=always on, never off; auto (the default) on only
 * when the stream is a terminal, NO_COLOR is unset or empty
 * (https://no-color.org) and TERM is not `dumb`.
 *
 * A struct live is enabled only when its stream is a terminal and TERM is
 * not `dumb`; otherwise every call is a no-op. live_draw() writes
 * `\r<text>\033[K` (the text cut to the terminal width, so it never wraps
 * and `\r` always returns to its start); live_erase() writes `\r\033[K`
 * once after a draw. Callers erase before printing anything else to the
 * stream (a result, a --no-capture line, the summary), so the progress
 * line never ends up in the output. */
#ifndef PROVIUM_LIVE_H
#define PROVIUM_LIVE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "cli.h"

struct live_progress {
	size_t done, running, queued;   /* files */
	size_t passed, failed;          /* tests so far */
	int64_t elapsed_ns;
	const char *slowest;            /* running file started first, or NULL */
	int64_t slowest_ns;             /* how long it has run */
};

struct live {
	FILE *out;
	bool on, drawn;
	int64_t last_ns;                /* monotonic time of the last draw */
};

bool live_color(FILE *out, enum color_mode m);
void live_init(struct live *l, FILE *out);
/* Redraw the line (at most every 100 ms unless force). */
void live_draw(struct live *l, const struct live_progress *p, bool force);
void live_erase(struct live *l);

#endif
