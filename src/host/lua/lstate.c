/* lstate.c — a new Lua state set up exactly as a test file's (lstate.h):
 * the standard libraries, the runtime primitives (lruntime.c), the json
 * module, the lab C module, the snapshot and fixture globals; the
 * runner-side globals of docs/internals.md (with a pool, _provium_pool_check,
 * which lab:claim calls for a claim made at run time); package.path; then the
 * embedded preludes lab.lua, net.lua, compare.lua and framework.lua.
 * Shared by the forked runner (runner.c), fixture builds (lfixture.c)
 * and `provium repl` (repl.c). */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include "events.h"
#include "fsutil.h"
#include "lua/lfixture.h"
#include "lua/ljson.h"
#include "lua/llab.h"
#include "lua/lruntime.h"
#include "lua/lsnapshot.h"
#include "lua/lstate.h"

extern const char embedded_framework_lua[], embedded_framework_lua_end[];
extern const char embedded_compare_lua[], embedded_compare_lua_end[];
extern const char embedded_net_lua[], embedded_net_lua_end[];

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
		set_str(L, "root", p->root);
		if (p->ndisks) {
			lua_createtable(L, (int)p->ndisks, 0);
			for (size_t j = 0; j < p->ndisks; j++) {
				lua_createtable(L, 0, 2);
				set_str(L, "id", p->disks[j].id);
				set_str(L, "image", p->disks[j].image);
				lua_rawseti(L, -2, (lua_Integer)j + 1);
			}
			lua_setfield(L, -2, "disks");
		}
		set_str(L, "build", p->build);
		set_str(L, "build_out", p->build_out);
		/* a build runs in the directory of the file that declares it */
		if (p->build) {
			char *src = p->source ? strdup(p->source) : NULL, *sl;
			if (src && (sl = strrchr(src, '/')))
				*sl = 0;
			set_str(L, "build_dir", src ? src : cfg->dir);
			free(src);
		}
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
 * file (or none, the REPL) says yes: the slots only cost time. */
static bool file_hotplugs(const char *path)
{
	char *buf;
	size_t n;
	bool yes;
	if (!path || read_file(path, 4u << 20, &buf, &n) < 0)
		return true;   /* unreadable or over 4 MiB: the slots only cost time */
	yes = memmem(buf, n, "attach_disk", 11) || memmem(buf, n, ":attach(", 8) ||
	      memmem(buf, n, ".attach(", 8);
	free(buf);
	return yes;
}

/* _provium_pool_check(memory_bytes, cpus) -> nil | message: the
 * dispatcher's "exceeds pool total" check of a declared claim, for a claim
 * made at run time (the reservation it would have had, against the total;
 * upvalues: the pool's total memory and CPUs, whether the backend is local). */
static int l_pool_check(lua_State *L)
{
	lua_Integer mem = luaL_checkinteger(L, 1), cpus = luaL_checkinteger(L, 2);
	struct pool p = { .total = {
		(uint64_t)lua_tointeger(L, lua_upvalueindex(1)),
		(uint32_t)lua_tointeger(L, lua_upvalueindex(2)) } };
	struct amount a = pool_reservation(lua_toboolean(L, lua_upvalueindex(3)), true,
					   mem < 0 ? 0 : (uint64_t)mem, true, cpus);
	char m[512];

	if (!pool_exceeds_message(&p, a, m, sizeof m))
		return 0;
	lua_pushstring(L, m);
	return 1;
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
	if (o->pool) {
		lua_pushinteger(L, (lua_Integer)o->pool->total.mem);
		lua_pushinteger(L, (lua_Integer)o->pool->total.cpus);
		lua_pushboolean(L, o->vmm == VMM_LOCAL);
		lua_pushcclosure(L, l_pool_check, 3);
		lua_setfield(L, -2, "_provium_pool_check");
	}
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
	lsnapshot_open(L);
	lfixture_open(L, o->cfg, o->event_fd);
	return 0;
}

/* Run one embedded prelude; leaves its first result on the stack. */
static int run_prelude(lua_State *L, const char *start, const char *end, const char *name)
{
	if (luaL_loadbufferx(L, start, (size_t)(end - start), name, "t") != LUA_OK)
		return -1;
	return lua_pcall(L, 0, 1, 0) == LUA_OK ? 0 : -1;
}

lua_State *lstate_new(const struct runner_opts *o, char *err, size_t errlen)
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
