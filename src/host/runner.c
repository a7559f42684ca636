/* runner.c — one test file inside its own forked process (see runner.h).
 *
 * Owns the file's Lua state from creation to lua_close. The sequence:
 *
 *   1. own process group, die with the dispatcher (PR_SET_PDEATHSIG);
 *   2. new Lua state, standard libraries, the runtime primitives
 *      (lruntime.c), the json module, the lab C module;
 *   3. the runner-side globals of docs/internals.md (_provium_file,
 *      _provium_file_dir, _provium_run_dir, _provium_vmm,
 *      _provium_profiles) plus _provium_filter (the per-test selection
 *      flags) and _provium_roots; package.path so `require("a.b")`
 *      resolves beside the file and under every root;
 *   4. the embedded preludes: lab.lua (when present), net.lua,
 *      compare.lua (how assertions show and compare values), then
 *      framework.lua, which returns {run_file = fn};
 *   5. the file's chunk is loaded (chunk name "@<display path>", so errors
 *      read `tests/x.test.lua:3: ...`) and handed to run_file, which runs
 *      it and every test and emits the per-test events and _chunk_error;
 *   6. lua_close (finalizers of anything still open), the warm spare
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
#include <lualib.h>

#include "events.h"
#include "runner.h"
#include "lua/lruntime.h"

#include "lua/ljson.h"
#include "lua/llab.h"
#include "lua/lsnapshot.h"
#include "vmm/qemu_spare.h"

extern const char embedded_framework_lua[], embedded_framework_lua_end[];
extern const char embedded_compare_lua[], embedded_compare_lua_end[];
extern const char embedded_net_lua[], embedded_net_lua_end[];

/* Read a whole file into a malloc'd buffer. 0 or -1/errno. */
static int read_file(const char *path, char **out, size_t *outlen)
{
	FILE *f = fopen(path, "rbe");
	char *buf = NULL;
	size_t len = 0, cap = 0;
	int saved;

	if (!f)
		return -1;
	for (;;) {
		size_t n;

		if (len == cap) {
			char *nb;

			cap = cap ? cap * 2 : 8192;
			nb = realloc(buf, cap);
			if (!nb)
				goto fail;
			buf = nb;
		}
		n = fread(buf + len, 1, cap - len, f);
		len += n;
		if (n == 0) {
			if (ferror(f)) {
				errno = EIO;
				goto fail;
			}
			break;
		}
	}
	fclose(f);
	*out = buf;
	*outlen = len;
	return 0;
fail:
	saved = errno;
	free(buf);
	fclose(f);
	errno = saved;
	return -1;
}

static void set_str(lua_State *L, const char *k, const char *v)
{
	if (v) {
		lua_pushstring(L, v);
		lua_setfield(L, -2, k);
	}
}

/* Push an array of C strings. */
static void push_strv(lua_State *L, char *const *v, size_t n)
{
	lua_createtable(L, (int)n, 0);
	for (size_t i = 0; i < n; i++) {
		lua_pushstring(L, v[i]);
		lua_rawseti(L, -2, (lua_Integer)i + 1);
	}
}

/* Push {key = {value, ...}} grouping KEY=VALUE pairs by key, in order. */
static void push_kv_groups(lua_State *L, const struct kv *kv, size_t n)
{
	lua_newtable(L);
	for (size_t i = 0; i < n; i++) {
		if (lua_getfield(L, -1, kv[i].key) != LUA_TTABLE) {
			lua_pop(L, 1);
			lua_newtable(L);
			lua_pushvalue(L, -1);
			lua_setfield(L, -3, kv[i].key);
		}
		lua_pushstring(L, kv[i].value);
		lua_rawseti(L, -2, (lua_Integer)luaL_len(L, -2) + 1);
		lua_pop(L, 1);
	}
}

static void push_filter(lua_State *L, const struct test_filter *f, char *const *only, size_t nonly)
{
	lua_newtable(L);
	push_strv(L, f ? f->names : NULL, f ? f->nnames : 0);
	lua_setfield(L, -2, "names");
	push_strv(L, only, nonly);
	lua_setfield(L, -2, "only");
	lua_pushboolean(L, f && f->include_slow);
	lua_setfield(L, -2, "include_slow");
	push_strv(L, f ? f->tags : NULL, f ? f->ntags : 0);
	lua_setfield(L, -2, "tags");
	push_strv(L, f ? f->no_tags : NULL, f ? f->nno_tags : 0);
	lua_setfield(L, -2, "no_tags");
	push_kv_groups(L, f ? f->tag_meta : NULL, f ? f->ntag_meta : 0);
	lua_setfield(L, -2, "tag_meta");
	push_kv_groups(L, f ? f->no_tag_meta : NULL, f ? f->nno_tag_meta : 0);
	lua_setfield(L, -2, "no_tag_meta");
}

static const char *accel_name(enum accel_kind a)
{
	switch (a) {
	case ACCEL_KVM: return "kvm";
	case ACCEL_TCG: return "tcg";
	default: return "auto";
	}
}

/* _provium_profiles: name -> table with the fields of struct profile. */
static void push_profiles(lua_State *L, const struct config *cfg)
{
	lua_newtable(L);
	if (!cfg)
		return;
	for (size_t i = 0; i < cfg->nprofiles; i++) {
		const struct profile *p = &cfg->profiles[i];

		lua_newtable(L);
		set_str(L, "name", p->name);
		set_str(L, "kernel", p->kernel);
		set_str(L, "initrd", p->initrd);
		set_str(L, "cmdline", p->cmdline);
		set_str(L, "cmdline_file", p->cmdline_file);
		set_str(L, "guest_os", p->guest_os);
		lua_pushboolean(L, p->inject_agent);
		lua_setfield(L, -2, "inject_agent");
		set_str(L, "agent_overlay_path", p->agent_overlay_path);
		lua_pushinteger(L, p->agent_boot_timeout_ns);
		lua_setfield(L, -2, "agent_boot_timeout_ns");
		set_str(L, "accel", accel_name(p->accel));
		lua_pushinteger(L, (lua_Integer)p->memory);
		lua_setfield(L, -2, "memory");
		lua_pushinteger(L, p->cpus);
		lua_setfield(L, -2, "cpus");
		set_str(L, "modules", p->modules);
		lua_pushboolean(L, p->builtin);
		lua_setfield(L, -2, "builtin");
		lua_setfield(L, -2, p->name);
	}
}

/* Absolute directory of path (malloc'd), or NULL/errno. */
static char *abs_dir(const char *path)
{
	char *real = realpath(path, NULL);
	char *slash;

	if (!real)
		return NULL;
	slash = strrchr(real, '/');
	if (slash == real)
		slash[1] = '\0';
	else if (slash)
		*slash = '\0';
	return real;
}

/* package.path = "<dir>/?.lua;<dir>/?/init.lua;" for the file's dir and
 * every root, then whatever the library default was. */
static void set_package_path(lua_State *L, const char *file_dir, const char *const *roots)
{
	luaL_Buffer b;

	lua_getglobal(L, "package");
	luaL_buffinit(L, &b);
	if (file_dir) {
		luaL_addstring(&b, file_dir);
		luaL_addstring(&b, "/?.lua;");
		luaL_addstring(&b, file_dir);
		luaL_addstring(&b, "/?/init.lua;");
	}
	for (size_t i = 0; roots && roots[i]; i++) {
		luaL_addstring(&b, roots[i]);
		luaL_addstring(&b, "/?.lua;");
		luaL_addstring(&b, roots[i]);
		luaL_addstring(&b, "/?/init.lua;");
	}
	lua_getfield(L, -2, "path");
	luaL_addvalue(&b);
	luaL_pushresult(&b);
	lua_setfield(L, -2, "path");
	lua_pop(L, 1);
}

/* Does the file's text hotplug (attach_disk, or :attach( of a bridge to
 * a running VM)? Then its VMs get hotplug slots unless a boot opt says
 * otherwise (lvm.c, boot opt `hotplug`; docs/decisions.md). An unreadable
 * file says yes: the slots only cost time. */
static bool file_hotplugs(const char *path)
{
	FILE *f = path ? fopen(path, "re") : NULL;
	char *buf;
	size_t n;
	bool yes = true;
	if (!f)
		return true;
	if ((buf = malloc(1u << 22))) {
		n = fread(buf, 1, (1u << 22) - 1, f);
		buf[n] = 0;
		yes = n == (1u << 22) - 1 || memmem(buf, n, "attach_disk", 11) ||
		      memmem(buf, n, ":attach(", 8) || memmem(buf, n, ".attach(", 8);
		free(buf);
	}
	fclose(f);
	return yes;
}

/* Everything before the preludes: globals and modules. Runs protected. */
static int setup(lua_State *L)
{
	const struct runner_opts *o = lua_touserdata(L, 1);
	char *dir;

	luaL_openlibs(L);
	lruntime_open(L, o->event_fd);
	event_set_diag_fd(o->event_fd);

	lua_pushglobaltable(L);
	set_str(L, "_provium_file", o->relpath ? o->relpath : o->path);
	set_str(L, "_provium_run_dir", o->run_dir);
	set_str(L, "_provium_vmm", o->vmm == VMM_LOCAL ? "local" : "qemu");
	lua_pushboolean(L, file_hotplugs(o->path));
	lua_setfield(L, -2, "_provium_hotplug_default");
	push_profiles(L, o->cfg);
	lua_setfield(L, -2, "_provium_profiles");
	push_filter(L, o->filter, o->only, o->nonly);
	lua_setfield(L, -2, "_provium_filter");
	lua_newtable(L);
	for (size_t i = 0; o->roots && o->roots[i]; i++) {
		lua_pushstring(L, o->roots[i]);
		lua_rawseti(L, -2, (lua_Integer)i + 1);
	}
	lua_setfield(L, -2, "_provium_roots");
	dir = abs_dir(o->path);
	if (dir) {
		lua_pushstring(L, dir);
		lua_setfield(L, -2, "_provium_file_dir");
	}
	lua_pop(L, 1);
	set_package_path(L, dir, o->roots);
	free(dir);

	luaL_requiref(L, "json", luaopen_provium_json, 1);
	lua_pop(L, 1);
	lua_pushcfunction(L, luaopen_provium_lab);
	lua_call(L, 0, 0);
	lsnapshot_open(L, o->cfg, o->event_fd);
	return 0;
}

/* Run one embedded prelude; leaves its first result on the stack. */
static int run_prelude(lua_State *L, const char *start, const char *end, const char *name)
{
	if (luaL_loadbufferx(L, start, (size_t)(end - start), name, "t") != LUA_OK)
		return -1;
	return lua_pcall(L, 0, 1, 0) == LUA_OK ? 0 : -1;
}

/* Load the test file as a chunk, or push nil + message (which becomes the
 * file's chunk error). Pushes two values. */
static void load_file_chunk(lua_State *L, const struct runner_opts *o)
{
	const char *disp = o->relpath ? o->relpath : o->path;
	char *src = NULL;
	size_t len;

	if (read_file(o->path, &src, &len) < 0) {
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

lua_State *runner_new_state(const struct runner_opts *o, char *err, size_t errlen)
{
	lua_State *L = luaL_newstate();

	if (!L) {
		snprintf(err, errlen, "cannot create a Lua state (out of memory)");
		return NULL;
	}
	lua_pushcfunction(L, setup);
	lua_pushlightuserdata(L, (void *)(uintptr_t)o);
	if (lua_pcall(L, 1, 0, 0) != LUA_OK)
		goto fail;
	if (run_prelude(L, embedded_lab_lua, embedded_lab_lua_end, "=[provium lab]") < 0)
		goto fail;
	lua_pop(L, 1);
	if (run_prelude(L, embedded_net_lua, embedded_net_lua_end, "=[provium net]") < 0)
		goto fail;
	lua_pop(L, 1);
	if (run_prelude(L, embedded_compare_lua, embedded_compare_lua_end, "=[provium compare]") < 0)
		goto fail;
	lua_pop(L, 1);
	if (run_prelude(L, embedded_framework_lua, embedded_framework_lua_end,
			"=[provium framework]") < 0)
		goto fail;
	return L;
fail:
	snprintf(err, errlen, "%s", lua_tostring(L, -1) ? lua_tostring(L, -1) : "(no message)");
	lua_close(L);
	return NULL;
}

int runner_main(const struct runner_opts *o)
{
	lua_State *L;
	int rc = 1;
	char err[1024];

	setpgid(0, 0);
	prctl(PR_SET_PDEATHSIG, SIGKILL);

	L = runner_new_state(o, err, sizeof err);
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
	fflush(NULL);
	return rc;
}
