/* lineedit.c — the REPL's line input: libedit (its readline interface)
 * on a terminal, getline() otherwise; the history file (contract in
 * lineedit.h).
 *
 * Owns: the getline() buffer, the history file's path, and libedit's
 * global state (readline() is a process-wide singleton).
 *
 * The history file is our own plain format, one entry per line (entries
 * are single input lines: they hold no newline), so it is appended to
 * with O_APPEND as lines come (two REPLs at once both keep their lines)
 * instead of libedit's escaped format and its whole-file rewrites. It is
 * created 0600: a REPL line may hold a secret. */
#include "lineedit.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <editline/readline.h>

#include "errbuf.h"
#include "fsutil.h"

static bool g_editing;
static char g_path[4096];       /* "" when the history is off */
static char *g_last;            /* the newest entry (repeats are skipped) */
static char *g_buf;             /* getline() */
static size_t g_cap;

int le_history_path(char *buf, size_t len)
{
	const char *state = getenv("XDG_STATE_HOME"), *home = getenv("HOME");
	int n;
	if (state && *state == '/')
		n = snprintf(buf, len, "%s/provium/repl_history", state);
	else if (home && *home)
		n = snprintf(buf, len, "%s/.local/state/provium/repl_history", home);
	else
		return -1;
	return n < 0 || (size_t)n >= len ? -1 : 0;
}

/* mkdir -p of path's directory, 0700 for what it creates. */
static int make_parent(const char *path)
{
	char dir[sizeof g_path];
	snprintf(dir, sizeof dir, "%s", path);
	char *slash = strrchr(dir, '/');
	if (!slash || slash == dir)
		return 0;
	*slash = 0;
	return mkdir_p(dir, 0700, NULL);
}

static void remember(const char *line)
{
	free(g_last);
	g_last = strdup(line);
	add_history(line);
}

/* Load the file's entries; rewrite it (temp file + rename) when it holds
 * more than LE_HISTORY_MAX. */
static int load(char *err, size_t errlen)
{
	FILE *f = fopen(g_path, "r");
	char **ents = NULL;
	size_t n = 0, cap = 0, first;
	ssize_t len;
	int rc = 0;
	if (!f) {
		if (errno == ENOENT)
			return 0;
		err_set(err, errlen, "%s: %s", g_path, strerror(errno));
		return -1;
	}
	while ((len = getline(&g_buf, &g_cap, f)) >= 0) {
		if (len > 0 && g_buf[len - 1] == '\n')
			g_buf[--len] = 0;
		if (!len)
			continue;
		if (n == cap) {
			char **ne = realloc(ents, (cap = cap ? cap * 2 : 256) * sizeof *ents);
			if (!ne)
				break;
			ents = ne;
		}
		if (!(ents[n] = strdup(g_buf)))
			break;
		n++;
	}
	fclose(f);
	first = n > LE_HISTORY_MAX ? n - LE_HISTORY_MAX : 0;
	for (size_t i = first; i < n; i++)
		remember(ents[i]);
	if (first) {
		char tmp[sizeof g_path + 8];
		snprintf(tmp, sizeof tmp, "%s.tmp", g_path);
		int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		FILE *o = fd >= 0 ? fdopen(fd, "w") : NULL;
		if (!o) {
			if (fd >= 0)
				close(fd);
			err_set(err, errlen, "%s: %s", tmp, strerror(errno));
			rc = -1;
		} else {
			for (size_t i = first; i < n; i++)
				fprintf(o, "%s\n", ents[i]);
			if (fclose(o) != 0 || rename(tmp, g_path) < 0) {
				err_set(err, errlen, "%s: %s", g_path, strerror(errno));
				unlink(tmp);
				rc = -1;
			}
		}
	}
	for (size_t i = 0; i < n; i++)
		free(ents[i]);
	free(ents);
	return rc;
}

int le_open(char *err, size_t errlen)
{
	g_editing = isatty(STDIN_FILENO);
	g_path[0] = 0;
	if (!g_editing)
		return 0;
	rl_readline_name = "provium";
	using_history();
	stifle_history(LE_HISTORY_MAX);
	rl_bind_key('\t', rl_insert);   /* Tab is text, not file-name completion */
	if (le_history_path(g_path, sizeof g_path) < 0) {
		g_path[0] = 0;
		err_set(err, errlen, "no history: neither XDG_STATE_HOME nor HOME is set");
		return -1;
	}
	if (make_parent(g_path) < 0) {
		err_set(err, errlen, "no history: cannot create the directory of %s: %s", g_path,
		        strerror(errno));
		g_path[0] = 0;
		return -1;
	}
	if (load(err, errlen) < 0)
		return -1;
	return 0;
}

bool le_editing(void)
{
	return g_editing;
}

char *le_read(const char *prompt, bool *interrupted)
{
	*interrupted = false;
	errno = 0;
	if (g_editing) {
		char *line = readline(prompt);
		if (!line && errno == EINTR)
			*interrupted = true;
		return line;
	}
	ssize_t n = getline(&g_buf, &g_cap, stdin);
	if (n < 0) {
		if (errno == EINTR) {
			*interrupted = true;
			clearerr(stdin);
		}
		return NULL;
	}
	if (n > 0 && g_buf[n - 1] == '\n')
		g_buf[--n] = 0;
	return strdup(g_buf);
}

void le_add(const char *line)
{
	const char *s = line;
	if (!g_editing)
		return;
	while (*s == ' ' || *s == '\t')
		s++;
	if (!*s || (g_last && !strcmp(g_last, line)))
		return;
	remember(line);
	if (g_path[0]) {
		int fd = open(g_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
		if (fd >= 0) {
			size_t len = strlen(line);
			char *rec = malloc(len + 1);
			if (rec) {
				memcpy(rec, line, len);
				rec[len] = '\n';
				if (write(fd, rec, len + 1) < 0) {
					/* the history is best effort */
				}
				free(rec);
			}
			close(fd);
		}
	}
}

void le_close(void)
{
	free(g_last);
	g_last = NULL;
	free(g_buf);
	g_buf = NULL;
	g_cap = 0;
	if (g_editing)
		clear_history();
}
