/* snapfiles.c — the file-system side of snapshots: size, delete with RAM
 * siblings, fresh scratch paths, mkdir (see snapfiles.h).
 *
 * Owns: the per-process counter of snapfiles_tmp_path(). Everything else
 * is a walk of one directory level; the recursive removal is fsutil.h's
 * rm_rf. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "snap/snapfiles.h"
#include "fsutil.h"
#include "tempfile.h"

static unsigned g_tmp_seq;

uint64_t snapfiles_size(const char *path, bool is_dir)
{
	struct stat st;
	uint64_t total = 0;
	if (!is_dir)
		return stat(path, &st) == 0 ? (uint64_t)st.st_size : 0;
	DIR *d = opendir(path);
	struct dirent *de;
	while (d && (de = readdir(d))) {
		char *p;
		if (asprintf(&p, "%s/%s", path, de->d_name) < 0)
			continue;
		if (stat(p, &st) == 0 && S_ISREG(st.st_mode))
			total += (uint64_t)st.st_size;
		free(p);
	}
	if (d)
		closedir(d);
	return total;
}

int snapfiles_rm_ram(const char *path)
{
	char *dir = strdup(path), *slash, *base;
	DIR *d;
	struct dirent *de;
	size_t bl;
	int n = 0;
	if (!dir)
		return -1;
	slash = strrchr(dir, '/');
	base = slash ? slash + 1 : dir;
	bl = strlen(base);
	if (slash)
		*slash = 0;
	d = opendir(slash ? (*dir ? dir : "/") : ".");
	if (!d) {
		int e = errno;
		free(dir);
		errno = e;
		return -1;
	}
	while ((de = readdir(d))) {
		char *p;
		if (strncmp(de->d_name, base, bl) != 0 || strncmp(de->d_name + bl, ".ram-", 5) != 0)
			continue;
		if (asprintf(&p, "%s/%s", slash ? dir : ".", de->d_name) >= 0) {
			if (unlink(p) == 0)
				n++;
			free(p);
		}
	}
	closedir(d);
	free(dir);
	return n;
}

int snapfiles_delete(const char *path, bool is_dir)
{
	int rc = rm_rf(path), e = errno;
	if (!is_dir)
		snapfiles_rm_ram(path);
	errno = e;
	return rc;
}

char *snapfiles_tmp_path(const char *dir, const char *prefix, const char *ext)
{
	if (!dir)
		dir = temp_base();
	for (;;) {
		struct stat st;
		char *p;
		if (asprintf(&p, "%s/%s-%d-%d%s", dir, prefix, (int)getpid(), (int)g_tmp_seq++, ext) < 0) {
			errno = ENOMEM;
			return NULL;
		}
		if (lstat(p, &st) < 0)
			return p;
		free(p);
	}
}

int snapfiles_mkdir(const char *path, bool fresh)
{
	if (mkdir(path, 0755) == 0)
		return 0;
	return !fresh && errno == EEXIST ? 0 : -1;
}
