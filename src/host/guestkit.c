/* guestkit.c — where the embedded default guest lives, and the built-in
 * profile `default` that points at it.
 *
 * `make guest` builds the kit into build/guest/ (vmlinuz, initrd.cpio.gz,
 * agent-overlay.cpio.gz); `make install` copies it to
 * <prefix>/share/provium/guest/. The kit directory is looked up, first hit
 * wins:
 *   1. $PROVIUM_KIT_DIR
 *   2. <dir of the provium binary>/../share/provium/guest
 *   3. <dir of the provium binary>/guest          (the build tree: build/guest)
 * If none exists the build-tree path is still used, so that a boot fails
 * with a "missing kernel" error naming a path the user can `make guest`.
 *
 * The profile `default` is added after provium.toml is loaded, unless the
 * file defines its own `default`. Nothing here prints. */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int is_dir(const char *p)
{
	struct stat st;
	return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

/* Directory of the running binary; malloc'd or NULL. */
static char *exe_dir(void)
{
	char buf[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
	char *slash;
	if (n <= 0)
		return NULL;
	buf[n] = 0;
	slash = strrchr(buf, '/');
	if (!slash)
		return NULL;
	*slash = 0;
	return strdup(buf[0] ? buf : "/");
}

char *guest_kit_dir(void)
{
	const char *env = getenv("PROVIUM_KIT_DIR");
	char *dir, *p = NULL;
	if (env && *env)
		return strdup(env);
	dir = exe_dir();
	if (!dir)
		return strdup("build/guest");
	if (asprintf(&p, "%s/../share/provium/guest", dir) >= 0 && is_dir(p)) {
		free(dir);
		return p;
	}
	free(p);
	p = NULL;
	if (asprintf(&p, "%s/guest", dir) < 0)
		p = NULL;
	free(dir);
	return p;
}

static int add_default(struct config *cfg, const char *kit)
{
	struct profile *np, *pr;
	size_t i, at;
	np = realloc(cfg->profiles, (cfg->nprofiles + 1) * sizeof *np);
	if (!np)
		return -1;
	cfg->profiles = np;
	/* keep the array sorted by name */
	for (at = 0; at < cfg->nprofiles; at++)
		if (strcmp(cfg->profiles[at].name, "default") > 0)
			break;
	for (i = cfg->nprofiles; i > at; i--)
		cfg->profiles[i] = cfg->profiles[i - 1];
	pr = &cfg->profiles[at];
	memset(pr, 0, sizeof *pr);
	cfg->nprofiles++;
	pr->builtin = true;
	pr->inject_agent = true;
	pr->accel = ACCEL_AUTO;
	pr->agent_boot_timeout_ns = INT64_C(30) * 1000000000;
	pr->memory = UINT64_C(256) << 20;
	pr->cpus = 1;
	pr->name = strdup("default");
	pr->guest_os = strdup("peios");
	pr->cmdline = strdup("panic=-1 quiet");
	if (asprintf(&pr->kernel, "%s/vmlinuz", kit) < 0)
		pr->kernel = NULL;
	if (asprintf(&pr->initrd, "%s/initrd.cpio.gz", kit) < 0)
		pr->initrd = NULL;
	if (asprintf(&pr->agent_overlay_path, "%s/agent-overlay.cpio.gz", kit) < 0)
		pr->agent_overlay_path = NULL;
	if (!pr->name || !pr->guest_os || !pr->cmdline || !pr->kernel || !pr->initrd ||
	    !pr->agent_overlay_path)
		return -1;
	return 0;
}

int config_add_builtin_default(struct config *cfg)
{
	char *kit;
	int rc;
	if (config_profile(cfg, "default"))
		return 0;
	kit = guest_kit_dir();
	if (!kit) {
		errno = ENOMEM;
		return -1;
	}
	rc = add_default(cfg, kit);
	free(kit);
	if (rc < 0)
		errno = ENOMEM;
	return rc;
}
