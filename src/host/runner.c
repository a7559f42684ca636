/* runner.c — one test file inside its own forked process (see runner.h).
 *
 * Owns the file's Lua state from creation to lua_close. The sequence:
 *
 *   1. own process group, die with the dispatcher (PR_SET_PDEATHSIG);
 *   2. a new Lua state from lstate_new() (lua/lstate.c: libraries,
 *      modules, the runner-side globals of docs/internals.md, the
 *      embedded preludes, framework.lua's {run_file = fn} on the stack);
 *   3. the file's chunk is loaded (chunk name "@<display path>", so errors
 *      read `tests/x.test.lua:3: ...`) and handed to run_file, which runs
 *      it and every test and emits the per-test events and _chunk_error;
 *   4. lua_close (finalizers of anything still open), the warm spare
 *      QEMUs killed (qemu_spare.h), then _file_done.
 *
 * Error contract: a failing test or chunk is a normal outcome (exit 0). A
 * failure of the machinery itself (no memory, a prelude that does not
 * load, the event pipe gone) is reported as a _chunk_error when possible
 * and returns 1. A Lua os.exit() leaves the process at once (lruntime.c):
 * no _file_done, so the dispatcher reports the file as crashed. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lua.h>

#include "runner.h"
#include "lua/lruntime.h"
#include "lua/lstate.h"
#include "fsutil.h"
#include "vmm/qemu_spare.h"

/* Load the test file as a chunk, or push nil + message (which becomes the
 * file's chunk error). Pushes two values. */
static void load_file_chunk(lua_State *L, const struct runner_opts *o)
{
	const char *disp = o->relpath ? o->relpath : o->path;
	char *src = NULL;
	size_t len;

	if (read_file(o->path, SIZE_MAX, &src, &len) < 0) {
		lua_pushnil(L);
		lua_pushfstring(L, "read `%s`: %s", disp, strerror(errno));
		return;
	}
	/* A "#!" first line is not Lua; comment it out, keeping line numbers. */
	if (len >= 2 && src[0] == '#' && src[1] == '!')
		src[0] = src[1] = '-';
	lua_pushfstring(L, "@%s", disp);
	if (luaL_loadbufferx(L, src, len, lua_tostring(L, -1), "t") != LUA_OK) {
		lua_remove(L, -2);
		lua_pushnil(L);
		lua_insert(L, -2);
	} else {
		lua_remove(L, -2);
		lua_pushnil(L);
	}
	free(src);
}

int runner_main(const struct runner_opts *o)
{
	lua_State *L;
	int rc = 1;
	char err[1024];

	setpgid(0, 0);
	prctl(PR_SET_PDEATHSIG, SIGKILL);

	L = lstate_new(o, err, sizeof err);
	if (!L) {
		char buf[1100];

		snprintf(buf, sizeof buf, "internal error: %s", err);
		lruntime_emit_str(o->event_fd, "_chunk_error", "message", buf);
		lruntime_emit_str(o->event_fd, "_file_done", NULL, NULL);
		return 1;
	}
	if (!lua_istable(L, -1) || lua_getfield(L, -1, "run_file") != LUA_TFUNCTION) {
		lua_pushliteral(L, "framework.lua did not return {run_file = ...}");
		goto internal;
	}
	load_file_chunk(L, o);                   /* run_file, chunk|nil, err|nil */
	if (lua_pcall(L, 2, 0, 0) != LUA_OK)
		goto internal;
	lua_close(L);
	L = NULL;
	qspare_drop_all();   /* no warm spare QEMU outlives its file */
	qemu_reap_killed(true);   /* the QEMUs restores killed without waiting */
	fflush(NULL);
	if (lruntime_emit_str(o->event_fd, "_file_done", NULL, NULL) < 0)
		return 1;
	return 0;

internal:
	{
		const char *msg = lua_tostring(L, -1);
		char buf[1024];

		snprintf(buf, sizeof buf, "internal error: %s", msg ? msg : "(no message)");
		lruntime_emit_str(o->event_fd, "_chunk_error", "message", buf);
		lruntime_emit_str(o->event_fd, "_file_done", NULL, NULL);
	}
	lua_close(L);
	qspare_drop_all();
	qemu_reap_killed(true);   /* the QEMUs restores killed without waiting */
	fflush(NULL);
	return rc;
}
