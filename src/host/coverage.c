/* coverage.c — the `--coverage` post-run hook (see coverage.h).
 *
 * Owns: finding provium-coverage on $PATH, the temp event file and its
 * marker, the PROVIUM_COVERAGE_* environment, running the tool and turning
 * its exit status into ours. The only state outside struct coverage is the
 * pair of paths the atexit hook needs (and the pid that owns them, so a
 * forked runner calling exit() never deletes the dispatcher's file). */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "coverage.h"
#include "fsutil.h"
#include "tempfile.h"

#define TOOL "provium-coverage"

static char *exit_tmp, *exit_marker;
static pid_t exit_owner;

/* Does the marker exist and name tmp? Only then is tmp ours to delete. */
static bool marker_proves(const char *marker, const char *tmp)
{
	char buf[4096];
	FILE *f = fopen(marker, "re");
	size_t n;

	if (!f)
		return false;
	n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = '\0';
	if (n && buf[n - 1] == '\n')
		buf[n - 1] = '\0';
	return strcmp(buf, tmp) == 0;
}

static void remove_owned(const char *tmp, const char *marker)
{
	if (!tmp || !marker || getenv("PROVIUM_COVERAGE_USER_FILE"))
		return;
	if (marker_proves(marker, tmp)) {
		unlink(tmp);
		unlink(marker);
	}
}

static void at_exit(void)
{
	if (exit_owner == getpid())
		remove_owned(exit_tmp, exit_marker);
}

int coverage_prepare(struct coverage *c, const char *save_events, char *err, size_t errlen)
{
	const char *base = temp_base();
	FILE *f;
	int fd;

	memset(c, 0, sizeof *c);
	c->tool = path_lookup(TOOL);
	if (!c->tool) {
		snprintf(err, errlen, "--coverage: `%s` not found on PATH (install it or drop --coverage)",
			 TOOL);
		return -1;
	}
	if (save_events) {
		c->events_path = strdup(save_events);
		unsetenv("PROVIUM_COVERAGE_MARKER");
		if (!c->events_path || setenv("PROVIUM_COVERAGE_USER_FILE", save_events, 1) < 0 ||
		    setenv("PROVIUM_COVERAGE_TMP", save_events, 1) < 0)
			goto oom;
		return 0;
	}
	unsetenv("PROVIUM_COVERAGE_USER_FILE");
	if (asprintf(&c->events_path, "%s/provium-coverage-%ld.msgpack", base, (long)getpid()) < 0) {
		c->events_path = NULL;
		goto oom;
	}
	if (asprintf(&c->marker, "%s.marker", c->events_path) < 0) {
		c->marker = NULL;
		goto oom;
	}
	fd = open(c->marker, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || !(f = fdopen(fd, "w"))) {
		snprintf(err, errlen, "--coverage: creating `%s`: %s", c->marker, strerror(errno));
		if (fd >= 0)
			close(fd);
		goto fail;
	}
	fprintf(f, "%s\n", c->events_path);
	if (fclose(f) != 0) {
		snprintf(err, errlen, "--coverage: writing `%s`: %s", c->marker, strerror(errno));
		unlink(c->marker);
		goto fail;
	}
	if (setenv("PROVIUM_COVERAGE_TMP", c->events_path, 1) < 0 ||
	    setenv("PROVIUM_COVERAGE_MARKER", c->marker, 1) < 0) {
		unlink(c->marker);
		goto oom;
	}
	if (!exit_owner) {
		exit_tmp = strdup(c->events_path);
		exit_marker = strdup(c->marker);
		exit_owner = getpid();
		atexit(at_exit);
	}
	return 0;
oom:
	snprintf(err, errlen, "out of memory");
fail:
	coverage_cleanup(c);
	return -1;
}

int coverage_run(const struct coverage *c, bool stdout_to_stderr, char *err, size_t errlen)
{
	char tool[] = TOOL, from[] = "--from";
	char *const argv[] = { tool, from, c->events_path, NULL };
	int status;
	pid_t pid;

	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		snprintf(err, errlen, "--coverage: fork: %s", strerror(errno));
		return -1;
	}
	if (pid == 0) {
		signal(SIGPIPE, SIG_DFL);
		if (stdout_to_stderr)
			dup2(2, 1);
		execv(c->tool, argv);
		fprintf(stderr, "provium: --coverage: exec `%s`: %s\n", c->tool, strerror(errno));
		_exit(127);
	}
	while (waitpid(pid, &status, 0) < 0) {
		if (errno != EINTR) {
			snprintf(err, errlen, "--coverage: waitpid: %s", strerror(errno));
			return -1;
		}
	}
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return 0;
	if (WIFEXITED(status))
		snprintf(err, errlen, "--coverage: `%s --from %s` exited with status %d", TOOL,
			 c->events_path, WEXITSTATUS(status));
	else
		snprintf(err, errlen, "--coverage: `%s --from %s` killed by signal %d", TOOL,
			 c->events_path, WTERMSIG(status));
	return 1;
}

void coverage_cleanup(struct coverage *c)
{
	remove_owned(c->events_path, c->marker);
	if (c->events_path) {
		unsetenv("PROVIUM_COVERAGE_TMP");
		unsetenv("PROVIUM_COVERAGE_MARKER");
	}
	free(c->tool);
	free(c->events_path);
	free(c->marker);
	memset(c, 0, sizeof *c);
}
