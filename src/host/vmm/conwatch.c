/* conwatch.c — the guest's console log read incrementally and matched
 * for the kernel's panic banner; the excerpt around the panic for errors.
 * See conwatch.h for the contract. */
#include "vmm/conwatch.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define PANIC_BANNER "Kernel panic - not syncing"
#define PANIC_END "---[ end Kernel panic"

void conwatch_reset(struct conwatch *w)
{
	memset(w, 0, sizeof *w);
}

static const char *find_in(const char *s, size_t len, const char *needle)
{
	size_t nl = strlen(needle);
	if (len < nl)
		return NULL;
	for (size_t i = 0; i + nl <= len; i++)
		if (s[i] == needle[0] && memcmp(s + i, needle, nl) == 0)
			return s + i;
	return NULL;
}

/* The banner may follow a printk timestamp, a log level or output that
 * the serial line interleaved with it, so it is looked for anywhere. */
bool conwatch_is_panic_line(const char *line, size_t len)
{
	return find_in(line, len, PANIC_BANNER) != NULL;
}

/* One complete line (w->line, w->len) that ends at log offset end. */
static void line_done(struct conwatch *w, off_t end)
{
	const char *at;
	if (w->len && w->line[w->len - 1] == '\r')
		w->len--;
	if (!conwatch_is_panic_line(w->line, w->len))
		return;
	if (find_in(w->line, w->len, PANIC_END))
		w->ended = true;
	if (w->dead)
		return;
	w->dead = true;
	w->panic_off = w->line_off;
	w->panic_end = end;
	at = find_in(w->line, w->len, "Kernel panic");
	snprintf(w->panic, sizeof w->panic, "%.*s", (int)(w->len - (size_t)(at - w->line)), at);
}

bool conwatch_feed(struct conwatch *w, const char *buf, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		char c = buf[i];
		w->off++;
		if (c == '\n') {
			line_done(w, w->off);
			w->len = 0;
			w->line_off = w->off;
		} else if (w->len < sizeof w->line - 1) {
			w->line[w->len++] = c;
		}
	}
	return w->dead;
}

bool conwatch_poll(struct conwatch *w, const char *path)
{
	char buf[16384];
	struct stat st;
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return w->dead;
	if (fstat(fd, &st) == 0 && st.st_size < w->off)
		conwatch_reset(w);
	while ((n = pread(fd, buf, sizeof buf, w->off)) > 0)
		conwatch_feed(w, buf, (size_t)n);
	close(fd);
	return w->dead;
}

/* Bytes [from, to) of the file, NUL-terminated; malloc'd. */
static char *read_range(int fd, off_t from, off_t to, size_t *outlen)
{
	size_t want = to > from ? (size_t)(to - from) : 0, len = 0;
	char *b = malloc(want + 1);
	ssize_t n;
	if (!b)
		return NULL;
	while (len < want && (n = pread(fd, b + len, want - len, from + (off_t)len)) > 0)
		len += (size_t)n;
	b[len] = 0;
	*outlen = len;
	return b;
}

static size_t count_lines(const char *s, size_t len)
{
	size_t n = 0;
	for (size_t i = 0; i < len; i++)
		if (s[i] == '\n')
			n++;
	if (len && s[len - 1] != '\n')
		n++;
	return n;
}

char *conwatch_excerpt(const struct conwatch *w, const char *path, size_t max)
{
	char *before = NULL, *after = NULL, *out = NULL;
	size_t blen = 0, alen = 0, room_before, olen = 0;
	struct stat st;
	off_t from;
	int fd;

	if (!w->dead || max < 64)
		return NULL;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	if (fstat(fd, &st) < 0 || st.st_size < w->panic_end)
		goto out;
	/* before: whole lines ending with the panic line */
	room_before = max * 3 / 4;
	from = w->panic_end - (off_t)room_before > 0 ? w->panic_end - (off_t)room_before : 0;
	if (!(before = read_range(fd, from, w->panic_end, &blen)))
		goto out;
	if (from > 0) {
		char *nl = memchr(before, '\n', blen);
		/* the panic line itself is kept even when it alone is too long */
		if (nl && (off_t)(nl + 1 - before) <= w->panic_off - from) {
			blen -= (size_t)(nl + 1 - before);
			memmove(before, nl + 1, blen + 1);
		}
	}
	if (!(after = read_range(fd, w->panic_end, st.st_size, &alen)))
		goto out;
	if (!(out = malloc(max + 1)))
		goto out;
	if (blen > max)
		blen = max;
	memcpy(out, before, blen);
	olen = blen;
	if (alen && olen + alen <= max) {
		memcpy(out + olen, after, alen);
		olen += alen;
	} else if (alen) {
		/* too long: the first lines that fit (who panicked: "CPU: 0
		 * PID: 1 Comm: ..."), "[... N lines ...]", the log's last line */
		const char *end = after + alen, *last, *head = after;
		char mark[64];
		size_t ml, ll;
		while (end > after && end[-1] == '\n')
			end--;
		last = end;
		while (last > after && last[-1] != '\n')
			last--;
		ll = (size_t)(end - last) + 1;
		for (;;) {
			const char *nl = memchr(head, '\n', (size_t)(last - head));
			if (!nl || olen + (size_t)(nl + 1 - after) + sizeof mark + ll > max)
				break;
			head = nl + 1;
		}
		memcpy(out + olen, after, (size_t)(head - after));
		olen += (size_t)(head - after);
		ml = (size_t)snprintf(mark, sizeof mark, "[... %zu lines ...]\n",
				      count_lines(head, (size_t)(last - head)));
		if (last == head)
			ml = 0;
		if (olen + ml <= max) {
			memcpy(out + olen, mark, ml);
			olen += ml;
			if (olen + ll <= max) {
				memcpy(out + olen, last, ll - 1);
				olen += ll - 1;
				out[olen++] = '\n';
			}
		}
	}
	{
		size_t j = 0;
		for (size_t i = 0; i < olen; i++)
			if (out[i] != '\r')
				out[j++] = out[i];
		out[j] = 0;
	}
out:
	free(before);
	free(after);
	close(fd);
	return out;
}
