/* lsp.c — writes the Lua language-server stubs (see lsp.h).
 *
 * The stub text is src/host/lua/lsp_types.lua, embedded by the Makefile as
 * embedded_lsp_types_lua; it declares the whole documented Lua API.
 * Output follows the reference implementation: a "  wrote <path>" line per
 * file, then a reload hint; an existing .luarc.json is left alone and the
 * snippet to merge is printed instead. Both files are installed atomically
 * (temp file + rename) so an editor never reads a half-written file. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lsp.h"
#include "atomicfile.h"

extern const char embedded_lsp_types_lua[], embedded_lsp_types_lua_end[];

static const char luarc_json[] =
"{\n"
"  \"runtime.version\": \"Lua 5.4\",\n"
"  \"workspace.library\": [\".provium-meta\"],\n"
"  \"workspace.checkThirdParty\": false,\n"
"  \"diagnostics.disable\": [\"lowercase-global\"],\n"
"  \"diagnostics.globals\": [\"test\", \"todo\", \"wait_until\", \"provium\", \"json\"]\n"
"}\n";

static int install(const char *path, const char *text, size_t len, char *err, size_t errlen)
{
	if (write_file_atomic(path, text, len, 0644) < 0) {
		snprintf(err, errlen, "writing `%s`: %s", path, strerror(errno));
		return -1;
	}
	return 0;
}

/* The snippet to merge by hand, indented under the notice. */
static void print_snippet(FILE *out)
{
	const char *p = luarc_json;
	while (*p) {
		const char *nl = strchr(p, '\n');
		size_t n = nl ? (size_t)(nl - p) : strlen(p);
		fprintf(out, "    %.*s\n", (int)n, p);
		p += n + (nl != NULL);
	}
}

int lsp_setup(const char *dir, bool force, FILE *out, char *err, size_t errlen)
{
	struct stat st;
	char *meta = NULL, *types = NULL, *luarc = NULL;
	const char *sep = dir[0] && dir[strlen(dir) - 1] == '/' ? "" : "/";
	int rc = LSP_ERROR;

	if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode)) {
		snprintf(err, errlen, "`%s` is not a directory", dir);
		return LSP_ERROR;
	}
	if (asprintf(&meta, "%s%s.provium-meta", dir, sep) < 0 ||
	    asprintf(&types, "%s/types.lua", meta) < 0 ||
	    asprintf(&luarc, "%s%s.luarc.json", dir, sep) < 0) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	if (mkdir(meta, 0755) < 0 && errno != EEXIST) {
		snprintf(err, errlen, "mkdir `%s`: %s", meta, strerror(errno));
		goto out;
	}
	if (install(types, embedded_lsp_types_lua,
	            (size_t)(embedded_lsp_types_lua_end - embedded_lsp_types_lua), err, errlen) < 0)
		goto out;
	fprintf(out, "  wrote %s\n", types);
	if (!force && access(luarc, F_OK) == 0) {
		fprintf(out, "  %s already exists; not overwriting (pass --force to replace).\n"
			"  to enable provium types, merge this into the existing config:\n\n", luarc);
		print_snippet(out);
		rc = LSP_KEPT;
		goto out;
	}
	if (install(luarc, luarc_json, strlen(luarc_json), err, errlen) < 0)
		goto out;
	fprintf(out, "  wrote %s\n\n"
		"  Reload your editor's Lua server. `test`, `provium`, `wait_until`, "
		"and `json` should now be recognised.\n", luarc);
	rc = LSP_OK;
out:
	free(meta);
	free(types);
	free(luarc);
	return rc;
}
