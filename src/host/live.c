/* live.c — colour decision and the in-place progress line (see live.h). */
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "live.h"
#include "errbuf.h"
#include "units.h"

static bool is_terminal(FILE *out)
{
	const char *term = getenv("TERM");
	return out && isatty(fileno(out)) && !(term && !strcmp(term, "dumb"));
}

bool live_color(FILE *out, enum color_mode m)
{
	const char *nc = getenv("NO_COLOR");
	if (m != COLOR_AUTO)
		return m == COLOR_ALWAYS;
	return is_terminal(out) && !(nc && *nc);
}

void live_init(struct live *l, FILE *out)
{
	memset(l, 0, sizeof *l);
	l->out = out;
	l->on = is_terminal(out);
}

static size_t columns(FILE *out)
{
	struct winsize ws;
	if (ioctl(fileno(out), TIOCGWINSZ, &ws) == 0 && ws.ws_col >= 20)
		return ws.ws_col;
	return 80;
}

void live_draw(struct live *l, const struct live_progress *p, bool force)
{
	char line[768], el[32], sl[32];
	int64_t now = mono_now_ns();
	size_t n, width;

	if (!l->on || (!force && l->drawn && now - l->last_ns < 100000000))
		return;
	format_seconds(p->elapsed_ns, el, sizeof el);
	n = (size_t)snprintf(line, sizeof line, "[%zu/%zu] %zu running, %zu queued; %zu passed, %zu failed; %s",
			     p->done, p->done + p->running + p->queued, p->running, p->queued,
			     p->passed, p->failed, el);
	/* one column short of the width: a full last column wraps on some
	 * terminals */
	width = columns(l->out) - 1;
	if (p->slowest && n < width) {
		/* `; slowest <path> <secs>`, the path cut from the left
		 * (`...<end of path>`) to fit: its file name is what tells */
		size_t plen = strlen(p->slowest), room;
		const char *path = p->slowest;
		format_seconds(p->slowest_ns, sl, sizeof sl);
		room = width - n;
		size_t fixed = strlen("; slowest  ") + strlen(sl);
		if (room > fixed + 8) {
			size_t avail = room - fixed;
			bool cut = plen > avail;
			if (cut) {
				path += plen - (avail - 3);
				while (((unsigned char)*path & 0xc0) == 0x80)
					path++; /* never start inside a UTF-8 sequence */
			}
			n += (size_t)snprintf(line + n, sizeof line - n, "; slowest %s%s %s",
					      cut ? "..." : "", path, sl);
		}
	}
	if (n >= sizeof line)
		n = sizeof line - 1;
	if (n > width) {
		n = width;
		while (n > 0 && ((unsigned char)line[n] & 0xc0) == 0x80)
			n--;
	}
	fprintf(l->out, "\r%.*s\033[K", (int)n, line);
	fflush(l->out);
	l->drawn = true;
	l->last_ns = now;
}

void live_erase(struct live *l)
{
	if (!l->on || !l->drawn)
		return;
	fputs("\r\033[K", l->out);
	fflush(l->out);
	l->drawn = false;
}
