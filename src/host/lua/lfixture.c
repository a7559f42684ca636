/* lfixture.c — the Lua side of fixtures (lfixture.h): the build step
 * fixture_obtain() calls back into, and the _provium_fixture global that
 * lab.lua's vm_fixture / lab_fixture call.
 *
 * A build gets a fresh Lua state in this process from lstate_new()
 * (exactly a test file's environment) with its own root lab and a private
 * scratch directory; the fixture's chunk runs as the file's top level. Its
 * VMs are closed by the same auto-close walker a test file uses, then the
 * state is closed and the scratch directory removed — only the snapshot it
 * returned survives, and fixture_obtain() installs it into the cache.
 *
 * _provium_fixture bridges the calling Lua state to fixture_obtain(): the
 * environment comes from the runner-side globals (_provium_roots,
 * _provium_vmm, _provium_run_dir, _provium_file) plus the config and
 * event fd given to lfixture_open. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lua.h>

#include "errbuf.h"
#include "fixture/build.h"
#include "fixture/cache.h"
#include "fixture/key.h"
#include "lua/lfixture.h"
#include "lua/lsnapshot.h"
#include "lua/lstate.h"
#include "vmm/qemu_spare.h"
#include "fsutil.h"

static const struct config *g_cfg;
static int g_event_fd = -1;

/* ---- a build: the fixture file in a fresh Lua state ----------------------- */

struct build_args {
	const struct fixture_env *e;
	const char *name, *file;
	enum fx_kind kind;
	bool any;            /* accept either shape; got says which */
	enum fx_kind got;
};

struct file_reader {
	FILE *f;
	char buf[8192];
};

static const char *read_chunk(lua_State *L, void *ud, size_t *size)
{
	struct file_reader *r = ud;
	(void)L;
	*size = fread(r->buf, 1, sizeof r->buf, r->f);
	return *size ? r->buf : NULL;
}

/* Load the fixture file as a chunk named "@<name>.fixture.lua" (the
 * same root-relative name as _provium_file, so errors read like a test
 * file's). Pushes the chunk, or an error message. lua_load does not
 * raise, so the FILE is always closed here. */
static int load_fixture_chunk(lua_State *L, const struct build_args *a)
{
	struct file_reader r;
	char name[4200];
	int rc;
	if (!(r.f = fopen(a->file, "rbe"))) {
		lua_pushfstring(L, "read `%s`: %s", a->file, strerror(errno));
		return LUA_ERRFILE;
	}
	snprintf(name, sizeof name, "@%s%s", a->name, FIXTURE_SUFFIX);
	rc = lua_load(L, read_chunk, &r, name, "t");
	fclose(r.f);
	return rc;
}

/* Protected, on a state from lstate_new(): give the fixture its
 * own root lab, run the chunk, check and return the path of what it
 * returned (the state is closed by the caller). */
static int build_main(lua_State *L)
{
	struct build_args *a = lua_touserdata(L, 1);
	const char *want = a->kind == FX_LAB ? LABSNAPSHOT_MT : SNAPSHOT_MT;
	int root;

	lua_getglobal(L, "_provium_new_root");
	lua_call(L, 0, 1);
	root = lua_gettop(L);
	lua_pushvalue(L, root);
	lua_setglobal(L, "provium");

	if (load_fixture_chunk(L, a) != LUA_OK)
		return lua_error(L);
	if (lua_pcall(L, 0, 1, 0) != LUA_OK) {
		/* Tear the fixture's VMs down before the error propagates. */
		lua_getglobal(L, "_provium_close_file_scope");
		lua_pushvalue(L, root);
		lua_pcall(L, 1, 0, 0);
		return lua_error(L);
	}
	a->got = a->kind;
	if (a->any && luaL_testudata(L, -1, LABSNAPSHOT_MT))
		a->got = FX_LAB;
	else if (a->any && luaL_testudata(L, -1, SNAPSHOT_MT))
		a->got = FX_VM;
	else if (a->any) {
		const char *got = luaL_typename(L, -1);
		lua_getglobal(L, "_provium_close_file_scope");
		lua_pushvalue(L, root);
		lua_pcall(L, 1, 0, 0);
		return luaL_error(L, "fixture `%s` (%s): the chunk must return a Snapshot "
		                  "(return vm:snapshot()) or a LabSnapshot (return provium:snapshot()), "
		                  "got %s", a->name, a->file, got);
	} else if (!luaL_testudata(L, -1, want)) {
		const char *got = luaL_typename(L, -1);
		lua_getglobal(L, "_provium_close_file_scope");
		lua_pushvalue(L, root);
		lua_pcall(L, 1, 0, 0);
		return luaL_error(L, "fixture `%s` (%s): the chunk must return %s, got %s",
		                  a->name, a->file,
		                  a->kind == FX_LAB ? "a LabSnapshot (return provium:snapshot())"
		                                    : "a Snapshot (return vm:snapshot())", got);
	}
	lua_getfield(L, -1, "path");
	lua_pushvalue(L, -2);
	lua_call(L, 1, 1);
	lua_getglobal(L, "_provium_close_file_scope");
	lua_pushvalue(L, root);
	lua_pcall(L, 1, 0, 0);
	return 1;
}

int lfixture_build(void *ctx, const struct fixture_env *e, const char *name, enum fx_kind kind,
                   bool any, enum fx_kind *got, char **out, char *err, size_t errlen)
{
	struct build_args a = {.e = e, .name = name, .kind = kind, .any = any, .got = kind};
	char *file = NULL, *run_dir = NULL;
	lua_State *L = NULL;
	int rc = -1;

	*out = NULL;
	if (fixture_resolve(e->roots, name, &file, err, errlen) < 0)
		return -1;
	if (asprintf(&run_dir, "%s/fixture-build-XXXXXX", e->run_dir) < 0) {
		run_dir = NULL;
		err_set(err, errlen, "out of memory");
		goto out;
	}
	if (!mkdtemp(run_dir)) {
		err_set(err, errlen, "fixture `%s`: scratch dir `%s`: %s", name, run_dir, strerror(errno));
		free(run_dir);
		run_dir = NULL;
		goto out;
	}
	a.file = file;
	{
		char rel[4096];
		struct runner_opts ro = {
			.cfg = e->cfg, .path = file, .relpath = rel, .roots = e->roots,
			.vmm = e->vmm && !strcmp(e->vmm, "local") ? VMM_LOCAL : VMM_QEMU,
			.run_dir = run_dir, .event_fd = e->event_fd,
		};
		char serr[1024];
		snprintf(rel, sizeof rel, "%s%s", name, FIXTURE_SUFFIX);
		if (!(L = lstate_new(&ro, serr, sizeof serr))) {
			err_set(err, errlen, "fixture `%s`: %s", name, serr);
			goto out;
		}
		lua_settop(L, 0);  /* the framework's table: not used by a fixture */
		/* a fixture is booted once and restored by many files, some of
		 * which hotplug: its VMs get the slots unless it says hotplug = false */
		lua_pushboolean(L, 1);
		lua_setglobal(L, "_provium_hotplug_default");
		/* ... and leaves the images it boots (keyed inputs) unchanged:
		 * its boot-time disks are copy-on-write, so snapshots carry them */
		lua_pushboolean(L, 1);
		lua_setglobal(L, "_provium_disks_cow");
	}
	lua_pushcfunction(L, build_main);
	lua_pushlightuserdata(L, &a);
	if (lua_pcall(L, 1, 1, 0) != LUA_OK) {
		const char *m = lua_tostring(L, -1);
		char *cwd = getcwd(NULL, 0);
		size_t cl = cwd ? strlen(cwd) : 0;
		/* Name the file as the user sees it (cwd-relative when under it). */
		const char *shown = cwd && !strncmp(file, cwd, cl) && file[cl] == '/' ? file + cl + 1 : file;
		err_set(err, errlen, "building fixture `%s` (%s) failed: %s", name, shown,
		        m ? m : "(error object)");
		free(cwd);
		goto out;
	}
	if (!(*out = strdup(lua_tostring(L, -1)))) {
		err_set(err, errlen, "out of memory");
		goto out;
	}
	kind = a.got;
	if (got)
		*got = kind;
	rc = 0;
out:
	if (L)
		lua_close(L);
	/* Spares wanted by the build's own restores (a lab fixture restoring
	 * one snapshot into several VMs) serve nothing after it; they live
	 * in run_dir, removed below. */
	qspare_drop_all();
	qemu_reap_killed(true);   /* the QEMUs restores killed without waiting */
	/* The snapshot may live inside run_dir: keep it by moving it out. */
	if (rc == 0 && run_dir && !strncmp(*out, run_dir, strlen(run_dir))) {
		char *keep;
		if (asprintf(&keep, "%s/fixture-%s-%d%s", e->run_dir,
		             kind == FX_LAB ? "lab" : "vm", (int)getpid(),
		             kind == FX_LAB ? ".lab" : ".snap") >= 0) {
			rm_rf(keep);
			if (rename(*out, keep) == 0) {
				free(*out);
				*out = keep;
			} else {
				free(keep);
			}
		}
	}
	if (run_dir)
		rm_rf(run_dir);
	free(run_dir);
	free(file);
	return rc;
}

/* ---- _provium_fixture: the calling state to fixture_obtain() ------------- */

struct restore_call {
	lua_State *L;
	int fn;                     /* stack index of restore_fn */
	int result;                 /* stack index of the result, 0 until restored */
};

static int restore_cb(void *arg, const char *entry, char *err, size_t errlen)
{
	struct restore_call *rc = arg;
	lua_State *L = rc->L;
	lua_pushvalue(L, rc->fn);
	lua_pushstring(L, entry);
	if (lua_pcall(L, 1, 1, 0) == LUA_OK) {
		rc->result = lua_gettop(L);
		return 0;
	}
	if (lua_istable(L, -1) && lua_getfield(L, -1, "user_error") == LUA_TSTRING) {
		snprintf(err, errlen, "%s", lua_tostring(L, -1));
		lua_pop(L, 2);
		return FIXTURE_USER_ERROR;
	}
	if (lua_istable(L, -1))
		lua_pop(L, 1);
	snprintf(err, errlen, "%s", luaL_tolstring(L, -1, NULL));
	lua_pop(L, 2);
	return -1;
}

/* A NULL-terminated copy of the _provium_roots array, anchored in a
 * userdata pushed on the stack. */
static const char *const *roots_from_global(lua_State *L)
{
	size_t n;
	const char **v;
	if (lua_getglobal(L, "_provium_roots") != LUA_TTABLE) {
		lua_pop(L, 1);
		lua_newtable(L);
	}
	n = (size_t)luaL_len(L, -1);
	v = lua_newuserdatauv(L, (n + 1) * sizeof(*v), 1);
	lua_insert(L, -2);
	lua_setiuservalue(L, -2, 1);      /* keep the table (and its strings) alive */
	lua_getiuservalue(L, -1, 1);
	for (size_t i = 0; i < n; i++) {
		lua_geti(L, -1, (lua_Integer)i + 1);
		v[i] = lua_tostring(L, -1);   /* anchored by the table */
		lua_pop(L, 1);
	}
	lua_pop(L, 1);
	v[n] = NULL;
	return v;
}

static const char *gstr(lua_State *L, const char *name)
{
	const char *s;
	lua_getglobal(L, name);
	s = lua_tostring(L, -1);
	lua_pop(L, 1);   /* globals stay anchored by _G */
	return s;
}

/* _provium_fixture(kind, name, restore_fn) */
static int l_fixture(lua_State *L)
{
	static const char *const kinds[] = {"vm", "lab", NULL};
	int kind = luaL_checkoption(L, 1, NULL, kinds);
	const char *name = luaL_checkstring(L, 2);
	struct restore_call rc = {.L = L, .fn = 3};
	struct fixture_env e = {0};
	char *ident;
	char err[2048];
	int r;
	luaL_checktype(L, 3, LUA_TFUNCTION);
	lua_settop(L, 3);
	e.cfg = g_cfg;
	e.event_fd = g_event_fd;
	e.roots = roots_from_global(L);                  /* 4 */
	e.vmm = gstr(L, "_provium_vmm");
	if (!e.vmm)
		e.vmm = "local";
	e.run_dir = gstr(L, "_provium_run_dir");
	e.build = lfixture_build;
	e.holder = gstr(L, "_provium_file");
	if (!e.run_dir)
		return luaL_error(L, "fixture `%s`: no run directory", name);
	ident = fixture_identity(e.vmm);
	if (!ident)
		return luaL_error(L, "out of memory");
	lua_pushstring(L, ident);                        /* 5 */
	free(ident);
	e.identity = lua_tostring(L, 5);
	r = fixture_obtain(&e, name, kind ? FX_LAB : FX_VM, FX_GET, restore_cb, &rc,
	                   NULL, NULL, err, sizeof err);
	if (r != 0)
		return luaL_error(L, "%s", err);
	lua_pushvalue(L, rc.result);
	return 1;
}

void lfixture_open(lua_State *L, const struct config *cfg, int event_fd)
{
	g_cfg = cfg;
	g_event_fd = event_fd;
	lua_register(L, "_provium_fixture", l_fixture);
}
