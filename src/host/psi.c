/* psi.c — reading Linux PSI files (see psi.h). Stateless: every call
 * reads the files again; the dispatcher decides how often to ask. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "psi.h"

double psi_some_avg10(const char *path)
{
	FILE *f = fopen(path, "re");
	char line[256];
	double v = -1;

	if (!f)
		return -1;
	while (fgets(line, sizeof line, f)) {
		if (strncmp(line, "some ", 5) != 0)
			continue;
		const char *a = strstr(line, "avg10=");
		char *end;
		if (a) {
			double x = strtod(a + 6, &end);
			if (end != a + 6 && x >= 0)
				v = x;
		}
		break;
	}
	fclose(f);
	return v;
}

/* Whether any of kinds (file names under the PSI dir) is over the
 * threshold; false when PROVIUM_NO_PSI is set. */
static bool over(const char *const *kinds, size_t n)
{
	const char *off = getenv("PROVIUM_NO_PSI");
	const char *dir = getenv("PROVIUM_PSI_DIR");
	char path[4096];

	if (off && *off && strcmp(off, "0") != 0)
		return false;
	if (!dir || !*dir)
		dir = "/proc/pressure";
	for (size_t i = 0; i < n; i++) {
		snprintf(path, sizeof path, "%s/%s", dir, kinds[i]);
		if (psi_some_avg10(path) > PSI_THRESHOLD_PCT)
			return true;
	}
	return false;
}

bool psi_pressured(void)
{
	static const char *const kinds[] = { "cpu", "memory" };
	return over(kinds, 2);
}

bool psi_memory_pressured(void)
{
	static const char *const kinds[] = { "memory" };
	return over(kinds, 1);
}

bool psi_cpu_idle(void)
{
	const char *off = getenv("PROVIUM_NO_PSI");
	const char *dir = getenv("PROVIUM_PSI_DIR");
	char path[4096];
	double v;

	if (off && *off && strcmp(off, "0") != 0)
		return false;
	snprintf(path, sizeof path, "%s/cpu", dir && *dir ? dir : "/proc/pressure");
	v = psi_some_avg10(path);
	return v >= 0 && v <= PSI_IDLE_PCT;
}
