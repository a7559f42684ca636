/* sinks.h — where public event frames go: --save-events, --events-stdout,
 * --events-socket.
 *
 * Calling sequence:
 *     sinks_open(&s, save_path, append, socket_path, to_stdout, err, n);
 *     sinks_begin_run(&s);            // per run: truncates the save file unless append
 * The save file is opened O_APPEND: with append, frames of earlier runs
 * (earlier invocations) are kept, as in the reference; without (--watch,
 * the --coverage scratch file) every run starts it empty.
 *     sinks_emit(&s, body, len);      // one msgpack frame body, any number
 *     sinks_close(&s);                // also unlinks the socket path
 * The socket listens with a backlog and accepts pending clients before
 * every emit; a client whose write fails is dropped. The save file and
 * stdout are written with frame_write(); an error there is reported once
 * on the next sinks_error() call and the sink is disabled. */
#ifndef PROVIUM_SINKS_H
#define PROVIUM_SINKS_H

#include <stdbool.h>
#include <stddef.h>

struct sinks {
	int save_fd;           /* -1 when unused */
	char *save_path;
	bool truncate_runs;    /* sinks_begin_run() empties the save file */
	int stdout_fd;         /* 1 or -1 */
	int listen_fd;         /* -1 when unused */
	char *socket_path;
	int *clients; size_t nclients;
	char err[256];         /* first write error, "" if none */
};

int sinks_open(struct sinks *s, const char *save_path, bool append, const char *socket_path,
	       bool to_stdout, char *err, size_t errlen);
/* Start a run: empty the save file unless it was opened to append.
 * 0 or -1 (err in s->err). */
int sinks_begin_run(struct sinks *s);
void sinks_emit(struct sinks *s, const void *body, size_t len);
/* Accept waiting socket clients (also called by sinks_emit). */
void sinks_accept(struct sinks *s);
bool sinks_active(const struct sinks *s);
/* In a forked child: close every sink fd without touching the files. */
void sinks_close_in_child(struct sinks *s);
void sinks_close(struct sinks *s);

#endif
