/* lsnapshot.c — the Snapshot and LabSnapshot userdata, and the C entry
 * points lab.lua uses for snapshots (list in lsnapshot.h): Lua bindings
 * only. The file-system work behind them (sizes, deletion with RAM
 * siblings, scratch paths, mkdir) is snap/snapfiles.c's; headers are read
 * by snap/snapfile.c.
 *
 * A Snapshot is only a path: no backend state, nothing to close; __gc
 * never deletes (a fixture build hands its snapshot to the cache after its
 * Lua state is gone). The fixture entry point, _provium_fixture, is
 * lfixture.c's. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>

#include "lua/lsnapshot.h"
#include "snap/snapfile.h"
#include "snap/snapfiles.h"
#include "fsutil.h"

struct lsnap {
	char *path;
	bool lab;
};

static struct lsnap *checksnap(lua_State *L)
{
	struct lsnap *s = luaL_testudata(L, 1, SNAPSHOT_MT);
	if (!s)
		s = luaL_checkudata(L, 1, LABSNAPSHOT_MT);
	return s;
}

void lsnapshot_push(lua_State *L, const char *path, bool lab)
{
	struct lsnap *s = lua_newuserdatauv(L, sizeof(*s), 0);
	s->path = NULL;
	s->lab = lab;
	luaL_setmetatable(L, lab ? LABSNAPSHOT_MT : SNAPSHOT_MT);
	if (!(s->path = strdup(path)))
		luaL_error(L, "snapshot: out of memory");
}

const char *lsnapshot_checkpath(lua_State *L, int idx, bool lab)
{
	struct lsnap *s = luaL_testudata(L, idx, lab ? LABSNAPSHOT_MT : SNAPSHOT_MT);
	if (s)
		return s->path;
	if (lua_type(L, idx) == LUA_TSTRING)
		return lua_tostring(L, idx);
	luaL_argerror(L, idx, lab ? "expected a LabSnapshot or a directory path"
	                          : "expected a Snapshot or a path");
	return NULL;
}

static int snap_path(lua_State *L)
{
	lua_pushstring(L, checksnap(L)->path);
	return 1;
}

/* Snapshot: the file's size; LabSnapshot: files directly under the dir. */
static int snap_size(lua_State *L)
{
	struct lsnap *s = checksnap(L);
	lua_pushinteger(L, (lua_Integer)snapfiles_size(s->path, s->lab));
	return 1;
}

static int snap_delete(lua_State *L)
{
	struct lsnap *s = checksnap(L);
	snapfiles_delete(s->path, s->lab);
	return 0;
}

static int snap_gc(lua_State *L)
{
	struct lsnap *s = checksnap(L);
	free(s->path);
	s->path = NULL;
	return 0;
}

static int snap_tostring(lua_State *L)
{
	struct lsnap *s = checksnap(L);
	lua_pushfstring(L, "%s `%s`", s->lab ? "lab snapshot" : "snapshot", s->path ? s->path : "?");
	return 1;
}

static const luaL_Reg snap_methods[] = {
	{"path", snap_path}, {"size", snap_size}, {"delete", snap_delete}, {NULL, NULL}
};

static const luaL_Reg snap_meta[] = {
	{"__gc", snap_gc}, {"__tostring", snap_tostring}, {NULL, NULL}
};

/* ---- globals ------------------------------------------------------------ */

static int l_snapshot_new(lua_State *L)
{
	lsnapshot_push(L, luaL_checkstring(L, 1), lua_toboolean(L, 2));
	return 1;
}

static int l_snapshot_path(lua_State *L)
{
	lua_pushstring(L, lsnapshot_checkpath(L, 1, lua_toboolean(L, 2)));
	return 1;
}

static int l_snap_info(lua_State *L)
{
	const char *path = luaL_checkstring(L, 1);
	struct snap_header h;
	char err[512];
	if (snapfile_read_header(path, &h, err, sizeof err) < 0)
		return luaL_error(L, "%s", err);
	lua_createtable(L, 0, 6);
	lua_pushstring(L, h.vm_name);
	lua_setfield(L, -2, "vm_name");
	lua_pushstring(L, h.profile);
	lua_setfield(L, -2, "profile");
	lua_pushstring(L, h.backend);
	lua_setfield(L, -2, "backend");
	lua_pushstring(L, h.qemu_version);
	lua_setfield(L, -2, "qemu_version");
	lua_pushinteger(L, (lua_Integer)h.memory);
	lua_setfield(L, -2, "memory");
	lua_pushinteger(L, h.cpus);
	lua_setfield(L, -2, "cpus");
	snap_header_free(&h);
	return 1;
}

const char *lsnapshot_tmp_path(lua_State *L, const char *prefix, const char *ext)
{
	char *p;
	lua_getglobal(L, "_provium_run_dir");
	p = snapfiles_tmp_path(lua_tostring(L, -1), prefix, ext);
	lua_pop(L, 1);
	if (!p)
		luaL_error(L, "snapshot: out of memory");
	lua_pushstring(L, p);
	free(p);
	return lua_tostring(L, -1);
}

/* _provium_tmp_path(prefix, ext, make_dir) */
static int l_tmp_path(lua_State *L)
{
	const char *prefix = luaL_checkstring(L, 1);
	const char *ext = luaL_optstring(L, 2, "");
	const char *p = lsnapshot_tmp_path(L, prefix, ext);
	if (lua_toboolean(L, 3) && snapfiles_mkdir(p, true) < 0)
		return luaL_error(L, "mkdir `%s`: %s", p, strerror(errno));
	return 1;
}

static int l_mkdir(lua_State *L)
{
	const char *p = luaL_checkstring(L, 1);
	if (snapfiles_mkdir(p, false) < 0)
		return luaL_error(L, "mkdir `%s`: %s", p, strerror(errno));
	return 0;
}

static int l_rm_rf(lua_State *L)
{
	rm_rf(luaL_checkstring(L, 1));
	return 0;
}

static const luaL_Reg globals[] = {
	{"_provium_snapshot_new", l_snapshot_new},
	{"_provium_snapshot_path", l_snapshot_path},
	{"_provium_snap_info", l_snap_info},
	{"_provium_tmp_path", l_tmp_path},
	{"_provium_rm_rf", l_rm_rf},
	{"_provium_mkdir", l_mkdir},
	{NULL, NULL}
};

void lsnapshot_open(lua_State *L)
{
	for (int i = 0; i < 2; i++) {
		luaL_newmetatable(L, i ? LABSNAPSHOT_MT : SNAPSHOT_MT);
		luaL_setfuncs(L, snap_meta, 0);
		lua_newtable(L);
		luaL_setfuncs(L, snap_methods, 0);
		lua_setfield(L, -2, "__index");
		lua_pop(L, 1);
	}
	lua_pushglobaltable(L);
	luaL_setfuncs(L, globals, 0);
	lua_pop(L, 1);
}
