/* discover.h — finding *.test.lua / *.fixture.lua files under roots.
 *
 * discover() walks each root (a directory, or a single file named
 * explicitly) depth-first, keeps files ending in `suffix`, skips hidden
 * directories, and returns them sorted by display path (deterministic).
 * A root that was given as a file is kept whatever its name.
 *   path     openable path (as given, joined)
 *   display  path relative to the project directory (discover_set_base;
 *            default the cwd), `./` and duplicate slashes removed; as
 *            given only when the file lies outside it
 *   relroot  path relative to the root it was found under
 *   abs      canonical absolute path (realpath), used for --rerun-failed
 *   mtime    st_mtim, for --since and --watch */
#ifndef PROVIUM_DISCOVER_H
#define PROVIUM_DISCOVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

struct found_file {
	char *path, *display, *relroot, *abs;
	char **tests; size_t ntests;  /* path::NAME selection (testsel.c); 0 = every test */
	struct timespec mtime;
	off_t size;
};

struct file_list {
	struct found_file *v;
	size_t n, cap;
};

/* 0, or -1 with err (a root that does not exist or cannot be read). */
int discover(const char *const *roots, size_t nroots, const char *suffix,
	     struct file_list *out, char *err, size_t errlen);
/* The same; with skip_missing a root that does not exist is skipped (the
 * config's roots: a listed directory may not exist on every checkout). */
int discover_roots(const char *const *roots, size_t nroots, const char *suffix, bool skip_missing,
		   struct file_list *out, char *err, size_t errlen);

/* Drop entries for which keep() returns 0 (order kept). */
void file_list_filter(struct file_list *l, int (*keep)(const struct found_file *, void *), void *arg);

void file_list_free(struct file_list *l);

/* Make display paths relative to dir (absolute; the project directory)
 * instead of the cwd. NULL restores the cwd. 0, or -1 (out of memory). */
int discover_set_base(const char *dir);

/* Path relative to the display base (see above) when `p` (relative to the
 * cwd, or absolute) lies under it, else the cleaned path. malloc'd. */
char *display_path(const char *p);

#endif
