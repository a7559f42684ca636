/* tempfile.c — the registry of live temp files and directories (see
 * tempfile.h). A singly linked list of {path, is_dir, owner pid}; the
 * atexit handler is installed with the first entry and removes the
 * entries whose owner is the exiting process. */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fsutil.h"
#include "tempfile.h"

struct temp {
	char *path;
	int is_dir;
	pid_t owner;
	struct temp *next;
};

static struct temp *temps;
static bool handler_set;

static void remove_all(void)
{
	pid_t me = getpid();
	for (struct temp *t = temps; t; t = t->next)
		if (t->owner == me) {
			if (t->is_dir)
				rm_rf(t->path);
			else
				unlink(t->path);
		}
}

const char *temp_base(void)
{
	const char *b = getenv("TMPDIR");
	return b && *b ? b : "/tmp";
}

int temp_register(const char *path, int is_dir)
{
	struct temp *t = malloc(sizeof *t);
	if (!t || !(t->path = strdup(path))) {
		free(t);
		errno = ENOMEM;
		return -1;
	}
	if (!handler_set) {
		if (atexit(remove_all) != 0) {
			free(t->path);
			free(t);
			errno = ENOMEM;
			return -1;
		}
		handler_set = true;
	}
	t->is_dir = is_dir;
	t->owner = getpid();
	t->next = temps;
	temps = t;
	return 0;
}

void temp_forget(const char *path)
{
	for (struct temp **pp = &temps; *pp; pp = &(*pp)->next)
		if (!strcmp((*pp)->path, path)) {
			struct temp *t = *pp;
			*pp = t->next;
			free(t->path);
			free(t);
			return;
		}
}

int temp_remove(const char *path)
{
	int rc = 0, e = 0, is_dir = -1;
	for (struct temp *t = temps; t; t = t->next)
		if (!strcmp(t->path, path)) {
			is_dir = t->is_dir;
			break;
		}
	if (is_dir == 0)
		rc = unlink(path) < 0 && errno != ENOENT ? -1 : 0;
	else
		rc = rm_rf(path);   /* unregistered: whatever it is */
	e = errno;
	temp_forget(path);
	errno = e;
	return rc;
}

char *make_temp_dir(const char *prefix)
{
	char *p;
	if (asprintf(&p, "%s/%s-XXXXXX", temp_base(), prefix) < 0) {
		errno = ENOMEM;
		return NULL;
	}
	if (!mkdtemp(p)) {
		int e = errno;
		free(p);
		errno = e;
		return NULL;
	}
	if (temp_register(p, 1) < 0) {
		rmdir(p);
		free(p);
		errno = ENOMEM;
		return NULL;
	}
	return p;
}

char *make_temp_file(const char *prefix, int *fd)
{
	char *p;
	if (asprintf(&p, "%s/%s-XXXXXX", temp_base(), prefix) < 0) {
		errno = ENOMEM;
		return NULL;
	}
	if ((*fd = mkostemp(p, O_CLOEXEC)) < 0) {
		int e = errno;
		free(p);
		errno = e;
		return NULL;
	}
	if (temp_register(p, 0) < 0) {
		close(*fd);
		*fd = -1;
		unlink(p);
		free(p);
		errno = ENOMEM;
		return NULL;
	}
	return p;
}
