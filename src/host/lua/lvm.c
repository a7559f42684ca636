/* lvm.c — the Lua binding of one VM ("provium.vm") and of the handles its
 * ops return: RunResult (a plain table with methods), File ("provium.file")
 * and Process ("provium.process").
 *
 * A VM userdata owns one backend VM (vmm.h) and its state machine:
 *
 *     Created --boot--> Booted --pause--> Paused --resume--> Booted
 *                         |--reset--> Booted
 *                         |--shutdown / power_button--> Shutdown
 *     (shutdown from any state; close = shutdown + free the backend)
 *
 * The binding checks the state before every backend call and raises
 *     vm `a`: cannot run: vm is Created (boot it first)
 * so backends never see an op in the wrong state. Ops the backend cannot
 * serve raise "vm `a`: <op> is not supported by the <backend> backend...".
 *
 * Lab-side plumbing, read from globals at call time (docs/internals.md):
 * `_provium_vmm`, `_provium_run_dir`, `_provium_profiles`, `_provium_file`,
 * `_provium_file_dir`, `_provium_emit` (vm_spawned / vm_shutdown; a no-op
 * when absent) and `_provium_register_resource(obj, kind)` (lab.lua's
 * auto-close registry; every File and Process is registered there).
 *
 * Memory: nothing malloc'd is held across a call that may raise; backend
 * results are copied to Lua and freed before anything can raise. Every
 * close/__gc is idempotent and the userdata is marked closed before the
 * backend resource it will own is acquired. */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <lua.h>
#include <lauxlib.h>

#include "lua/llab.h"
#include "lua/lruntime.h"
#include "lua/lvm_priv.h"
#include "units.h"
#include "vmm/vmm.h"
#include "vmm/qemu_vm.h"
#include "lua/lsnapshot.h"
#include "snap/snapfile.h"

#define RESULT_MT "provium.runresult"

#define DEFAULT_MEMORY (512ull << 20)

static const char *const state_names[] = {"created", "booted", "paused", "shutdown", "dead"};
static const char *const state_titles[] = {"Created", "Booted", "Paused", "Shutdown", "Dead"};
static const char *const state_hints[] = {" (boot it first)", "", " (resume it first)", "", ""};


/* ---- shared helpers ------------------------------------------------ */

const struct vmm_ops *vmm_backend_by_name(const char *name)
{
	if (name && !strcmp(name, "local"))
		return &vmm_local_ops;
	if (name && !strcmp(name, "qemu"))
		return &vmm_qemu_ops;
	return NULL;
}

void vmm_exec_result_free(struct vmm_exec_result *res)
{
	free(res->out);
	free(res->err);
	res->out = res->err = NULL;
}

void vmm_dirents_free(struct vmm_dirent *ents, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(ents[i].name);
	free(ents);
}

static int64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static struct lvm *checkvm(lua_State *L, int idx)
{
	return luaL_checkudata(L, idx, VM_MT);
}

struct lvm *lvm_check(lua_State *L, int idx)
{
	return checkvm(L, idx);
}

int lvm_unsupported(lua_State *L, const struct lvm *v, const char *op)
{
	return luaL_error(L, "vm `%s`: %s is not supported by the %s backend%s",
	                  v->name, op, v->ops->name, v->ops->unsupported_hint);
}

const char *lvm_errtext(const struct lvm *v, const char *err)
{
	size_t n = v->name ? strlen(v->name) : 0, w = 0;
	if (!v->name || strncmp(err, "vm `", 4) || strncmp(err + 4, v->name, n) ||
	    strncmp(err + 4 + n, "`: ", 3))
		return err;
	err += 4 + n + 3;
	while ((err[w] >= 'a' && err[w] <= 'z') || err[w] == '_')
		w++;
	if (w && strncmp(err, "agent", w > 5 ? w : 5) && err[w] == ':' && err[w + 1] == ' ')
		err += w + 2;
	return err;
}

#define unsupported lvm_unsupported
#define need_booted lvm_need_booted
#define register_resource lvm_register_resource
#define build_req(L, v, async, r) (lua_settop(L, 3), lvm_build_req(L, v, async, 2, 3, r))
#define push_result lvm_push_result
#define parse_signal lvm_parse_signal
#define entry_names lvm_entry_names

/* Raise unless v is Booted. */
void need_booted(lua_State *L, const struct lvm *v, const char *op)
{
	if (v->state != VM_BOOTED)
		luaL_error(L, "vm `%s`: cannot %s: vm is %s%s", v->name, op,
		           state_titles[v->state], state_hints[v->state]);
}

/* Call _provium_emit(kind, payload at top) when present; pops payload. */
static void emit(lua_State *L, const char *kind)
{
	if (lua_getglobal(L, "_provium_emit") != LUA_TFUNCTION) {
		lua_pop(L, 2);
		return;
	}
	lua_insert(L, -2);       /* fn payload */
	lua_pushstring(L, kind);
	lua_insert(L, -2);       /* fn kind payload */
	lua_call(L, 2, 0);
}

/* Hand obj (at idx) to lab.lua's auto-close registry, when present. */
void register_resource(lua_State *L, int idx, const char *kind)
{
	idx = lua_absindex(L, idx);
	if (lua_getglobal(L, "_provium_register_resource") != LUA_TFUNCTION) {
		lua_pop(L, 1);
		return;
	}
	lua_pushvalue(L, idx);
	lua_pushstring(L, kind);
	lua_call(L, 2, 0);
}

static const char *global_string(lua_State *L, const char *name)
{
	const char *s;
	lua_getglobal(L, name);
	s = lua_tostring(L, -1);  /* stays alive: globals are not collected mid-call */
	lua_pop(L, 1);
	return s;
}

/* Seconds (number) or duration string at idx -> ns; raises on bad input. */
static int64_t check_duration(lua_State *L, int idx, const struct lvm *v, const char *what)
{
	if (lua_type(L, idx) == LUA_TSTRING) {
		int64_t ns;
		char e[128];
		if (parse_duration_ns(lua_tostring(L, idx), &ns, e, sizeof e) < 0)
			luaL_error(L, "vm `%s`: %s: %s", v->name, what, e);
		return ns;
	}
	if (lua_type(L, idx) == LUA_TNUMBER) {
		double d = lua_tonumber(L, idx);
		if (isnan(d) || d < 0 || d > 1e9)
			luaL_error(L, "vm `%s`: %s must be a non-negative number of seconds", v->name, what);
		return (int64_t)(d * 1e9);
	}
	luaL_error(L, "vm `%s`: %s must be a number of seconds or a duration string", v->name, what);
	return 0;
}

int64_t lvm_check_duration(lua_State *L, int idx, const char *what)
{
	if (lua_type(L, idx) == LUA_TSTRING) {
		int64_t ns;
		char e[128];
		if (parse_duration_ns(lua_tostring(L, idx), &ns, e, sizeof e) < 0)
			luaL_error(L, "%s: %s", what, e);
		return ns;
	}
	if (lua_type(L, idx) == LUA_TNUMBER) {
		double d = lua_tonumber(L, idx);
		if (isnan(d) || d < 0 || d > 1e9)
			luaL_error(L, "%s must be a finite non-negative number of seconds", what);
		return (int64_t)(d * 1e9);
	}
	luaL_error(L, "%s must be a number of seconds or a duration string, got %s", what,
	           luaL_typename(L, idx));
	return 0;
}

/* ---- RunResult ------------------------------------------------------- */

static const char *signame(int sig)
{
	static const struct { int n; const char *s; } t[] = {
		{SIGHUP, "SIGHUP"}, {SIGINT, "SIGINT"}, {SIGQUIT, "SIGQUIT"},
		{SIGILL, "SIGILL"}, {SIGTRAP, "SIGTRAP"}, {SIGABRT, "SIGABRT"},
		{SIGBUS, "SIGBUS"}, {SIGFPE, "SIGFPE"}, {SIGKILL, "SIGKILL"},
		{SIGUSR1, "SIGUSR1"}, {SIGSEGV, "SIGSEGV"}, {SIGUSR2, "SIGUSR2"},
		{SIGPIPE, "SIGPIPE"}, {SIGALRM, "SIGALRM"}, {SIGTERM, "SIGTERM"},
		{SIGCHLD, "SIGCHLD"}, {SIGCONT, "SIGCONT"}, {SIGSTOP, "SIGSTOP"},
		{SIGTSTP, "SIGTSTP"}, {SIGWINCH, "SIGWINCH"}, {SIGXCPU, "SIGXCPU"},
	};
	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
		if (t[i].n == sig)
			return t[i].s;
	return "unknown signal";
}

/* Push a RunResult table built from res (res is freed). */
void push_result(lua_State *L, struct vmm_exec_result *res, const char *cmd)
{
	static const char *const st[] = {"exited", "signalled", "timed_out"};
	lua_createtable(L, 0, 8);
	lua_pushinteger(L, res->exit_code);
	lua_setfield(L, -2, "exit_code");
	lua_pushlstring(L, res->out ? res->out : "", res->out_len);
	lua_setfield(L, -2, "stdout");
	lua_pushlstring(L, res->err ? res->err : "", res->err_len);
	lua_setfield(L, -2, "stderr");
	lua_pushstring(L, st[res->status]);
	lua_setfield(L, -2, "status");
	lua_pushboolean(L, res->status == VMM_TIMED_OUT);
	lua_setfield(L, -2, "timed_out");
	if (res->status == VMM_SIGNALLED) {
		lua_pushinteger(L, res->signal);
		lua_setfield(L, -2, "signal");
	}
	if (cmd) {
		lua_pushstring(L, cmd);
		lua_setfield(L, -2, "command");
	}
	vmm_exec_result_free(res);
	luaL_setmetatable(L, RESULT_MT);
}

static bool result_ok(lua_State *L, int idx)
{
	bool ok;
	lua_getfield(L, idx, "exit_code");
	lua_getfield(L, idx, "status");
	ok = lua_tointeger(L, -2) == 0 && lua_isstring(L, -1) &&
	     !strcmp(lua_tostring(L, -1), "exited");
	lua_pop(L, 2);
	return ok;
}

static int rr_ok(lua_State *L)
{
	luaL_checktype(L, 1, LUA_TTABLE);
	lua_pushboolean(L, result_ok(L, 1));
	return 1;
}

/* Raise "<what> failed: status ..., stdout: ..., stderr: ..." unless ok. */
static int rr_assert_ok(lua_State *L)
{
	luaL_Buffer b;
	const char *status;
	luaL_checktype(L, 1, LUA_TTABLE);
	if (result_ok(L, 1)) {
		lua_settop(L, 1);
		return 1;
	}
	luaL_where(L, 1);
	luaL_buffinit(L, &b);
	luaL_addvalue(&b);
	lua_getfield(L, 1, "command");
	if (lua_isstring(L, -1)) {
		lua_pushfstring(L, "command `%s` failed: ", lua_tostring(L, -1));
		lua_remove(L, -2);
	} else {
		lua_pop(L, 1);
		lua_pushliteral(L, "command failed: ");
	}
	luaL_addvalue(&b);
	lua_getfield(L, 1, "status");
	status = lua_tostring(L, -1);
	lua_pop(L, 1); /* string still referenced by the table */
	if (status && !strcmp(status, "signalled")) {
		lua_getfield(L, 1, "signal");
		int sig = (int)lua_tointeger(L, -1);
		lua_pop(L, 1);
		lua_pushfstring(L, "status signalled (signal %d, %s)", sig, signame(sig));
	} else if (status && !strcmp(status, "timed_out")) {
		lua_pushliteral(L, "status timed_out (killed after its timeout)");
	} else {
		lua_getfield(L, 1, "exit_code");
		lua_pushfstring(L, "status exited, exit code %d", (int)lua_tointeger(L, -1));
		lua_remove(L, -2);
	}
	luaL_addvalue(&b);
	luaL_addstring(&b, "\nstdout:\n");
	lua_getfield(L, 1, "stdout");
	luaL_addvalue(&b);
	luaL_addstring(&b, "\nstderr:\n");
	lua_getfield(L, 1, "stderr");
	luaL_addvalue(&b);
	luaL_pushresult(&b);
	return lua_error(L);
}

/* ---- boot opts ------------------------------------------------------- */

/* Copy the table at src into dst (both absolute indices). */
static void copy_fields(lua_State *L, int dst, int src)
{
	lua_pushnil(L);
	while (lua_next(L, src)) {
		lua_pushvalue(L, -2);
		lua_insert(L, -2);
		lua_settable(L, dst);
	}
}

/* Parse the boot-opts table at idx into o. The files array lives in a
 * userdata left on the stack (so it is collected, never leaked). */
static void parse_boot_opts(lua_State *L, int idx, const struct lvm *v,
                            struct vmm_boot_opts *o)
{
	static const char *const keys[] = {"memory", "cpus", "kernel_cmdline",
		"kernel_cmdline_append", "agent_timeout", "rng_seed", "initial_time",
		"files", NULL};
	idx = lua_absindex(L, idx);
	memset(o, 0, sizeof(*o));
	lua_pushnil(L);
	while (lua_next(L, idx)) {
		bool known = false;
		lua_pop(L, 1);
		for (int i = 0; keys[i]; i++)
			if (lua_type(L, -1) == LUA_TSTRING && !strcmp(lua_tostring(L, -1), keys[i]))
				known = true;
		if (!known)
			luaL_error(L, "vm `%s`: unknown boot opt `%s` (expected memory, cpus, "
			           "kernel_cmdline, kernel_cmdline_append, agent_timeout, "
			           "rng_seed, initial_time or files)",
			           v->name, luaL_tolstring(L, -1, NULL));
	}
	switch (lua_getfield(L, idx, "memory")) {
	case LUA_TNIL:
		break;
	case LUA_TSTRING: {
		char e[128];
		if (parse_size_bytes(lua_tostring(L, -1), &o->memory, e, sizeof e) < 0)
			luaL_error(L, "vm `%s`: boot opt memory: %s", v->name, e);
		break;
	}
	default:
		if (!lua_isinteger(L, -1) || lua_tointeger(L, -1) <= 0)
			luaL_error(L, "vm `%s`: boot opt memory must be a positive integer (bytes) "
			           "or a size string like \"512M\"", v->name);
		o->memory = (uint64_t)lua_tointeger(L, -1);
	}
	lua_pop(L, 1);
	if (lua_getfield(L, idx, "cpus") != LUA_TNIL) {
		if (!lua_isinteger(L, -1) || lua_tointeger(L, -1) <= 0 || lua_tointeger(L, -1) > 1024)
			luaL_error(L, "vm `%s`: boot opt cpus must be a positive integer", v->name);
		o->cpus = (int)lua_tointeger(L, -1);
	}
	lua_pop(L, 1);
	if (lua_getfield(L, idx, "kernel_cmdline") != LUA_TNIL) {
		if (lua_type(L, -1) != LUA_TSTRING)
			luaL_error(L, "vm `%s`: boot opt kernel_cmdline must be a string", v->name);
		o->kernel_cmdline = lua_tostring(L, -1); /* anchored in the opts table */
	}
	lua_pop(L, 1);
	if (lua_getfield(L, idx, "kernel_cmdline_append") != LUA_TNIL) {
		if (lua_type(L, -1) != LUA_TSTRING)
			luaL_error(L, "vm `%s`: boot opt kernel_cmdline_append must be a string", v->name);
		o->kernel_cmdline_append = lua_tostring(L, -1);
	}
	lua_pop(L, 1);
	if (lua_getfield(L, idx, "agent_timeout") != LUA_TNIL) {
		char e[256];
		if (lua_type(L, -1) == LUA_TNUMBER) {
			double sec = lua_tonumber(L, -1);
			if (!(sec > 0))
				luaL_error(L, "vm `%s`: boot opt agent_timeout must be positive", v->name);
			o->agent_timeout_ns = (int64_t)(sec * 1e9);
		} else if (lua_type(L, -1) == LUA_TSTRING) {
			if (parse_duration_ns(lua_tostring(L, -1), &o->agent_timeout_ns, e, sizeof e) < 0)
				luaL_error(L, "vm `%s`: boot opt agent_timeout: %s", v->name, e);
		} else {
			luaL_error(L, "vm `%s`: boot opt agent_timeout must be seconds or a duration string",
			           v->name);
		}
	}
	lua_pop(L, 1);
	if (lua_getfield(L, idx, "rng_seed") != LUA_TNIL) {
		if (!lua_isinteger(L, -1))
			luaL_error(L, "vm `%s`: boot opt rng_seed must be an integer", v->name);
		o->has_rng_seed = true;
		o->rng_seed = (uint64_t)lua_tointeger(L, -1);
	}
	lua_pop(L, 1);
	if (lua_getfield(L, idx, "initial_time") != LUA_TNIL) {
		if (lua_type(L, -1) != LUA_TNUMBER || isnan(lua_tonumber(L, -1)))
			luaL_error(L, "vm `%s`: boot opt initial_time must be a number "
			           "(seconds since the epoch)", v->name);
		o->has_initial_time = true;
		o->initial_time = lua_tonumber(L, -1);
	}
	lua_pop(L, 1);
	if (lua_getfield(L, idx, "files") != LUA_TNIL) {
		int fidx = lua_absindex(L, -1);
		size_t n;
		struct vmm_inject_file *files;
		if (!lua_istable(L, fidx))
			luaL_error(L, "vm `%s`: boot opt files must be an array of {path=, content=}", v->name);
		n = (size_t)luaL_len(L, fidx);
		files = lua_newuserdatauv(L, (n ? n : 1) * sizeof(*files), 0);
		lua_insert(L, fidx);   /* keep the buffer below the files table */
		fidx++;
		for (size_t i = 0; i < n; i++) {
			lua_geti(L, fidx, (lua_Integer)i + 1);
			if (!lua_istable(L, -1) || lua_getfield(L, -1, "path") != LUA_TSTRING ||
			    lua_getfield(L, -2, "content") != LUA_TSTRING)
				luaL_error(L, "vm `%s`: boot opt files[%d] must be {path=string, content=string}",
				           v->name, (int)i + 1);
			files[i].path = lua_tostring(L, -2);
			files[i].content = lua_tolstring(L, -1, &files[i].len);
			files[i].mode = -1;
			if (lua_getfield(L, -3, "mode") != LUA_TNIL) {
				if (!lua_isinteger(L, -1) || lua_tointeger(L, -1) < 0 ||
				    lua_tointeger(L, -1) > 07777)
					luaL_error(L, "vm `%s`: boot opt files[%d].mode must be an integer "
					           "permission (e.g. 0x1ed / tonumber(\"755\", 8))",
					           v->name, (int)i + 1);
				files[i].mode = (int)lua_tointeger(L, -1);
			}
			lua_pop(L, 4);
		}
		o->files = files;
		o->nfiles = n;
	}
	lua_pop(L, 1);
}

/* Fill p from the profile table at idx (borrowed strings). */
static void profile_view(lua_State *L, int idx, const char *name, struct vmm_profile *p)
{
	memset(p, 0, sizeof(*p));
	p->name = name;
#define PSTR(f) (lua_getfield(L, idx, #f), p->f = lua_tostring(L, -1), lua_pop(L, 1))
	PSTR(kernel); PSTR(initrd); PSTR(cmdline); PSTR(guest_os);
	PSTR(agent_overlay_path); PSTR(modules); PSTR(accel);
#undef PSTR
	lua_getfield(L, idx, "inject_agent");
	p->inject_agent = lua_isnil(L, -1) ? true : lua_toboolean(L, -1);
	lua_getfield(L, idx, "agent_boot_timeout_ns");
	p->agent_boot_timeout_ns = lua_tointeger(L, -1);
	lua_getfield(L, idx, "memory");
	p->memory = (uint64_t)lua_tointeger(L, -1);
	lua_getfield(L, idx, "cpus");
	p->cpus = (int)lua_tointeger(L, -1);
	lua_pop(L, 4);
}

/* Levenshtein distance, for "did you mean" (short names only). */
static size_t edit_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b), row[65];
	if (la > 64 || lb > 64)
		return (size_t)-1;
	for (size_t j = 0; j <= lb; j++)
		row[j] = j;
	for (size_t i = 1; i <= la; i++) {
		size_t diag = row[0];
		row[0] = i;
		for (size_t j = 1; j <= lb; j++) {
			size_t up = row[j], best = diag + (a[i - 1] != b[j - 1]);
			if (up + 1 < best)
				best = up + 1;
			if (row[j - 1] + 1 < best)
				best = row[j - 1] + 1;
			diag = up;
			row[j] = best;
		}
	}
	return row[lb];
}

/* Raise "unknown profile", naming the declared ones (sorted) and the
 * closest to a typo. profiles: stack index of _provium_profiles. */
static void unknown_profile(lua_State *L, int profiles, const char *vm, const char *name)
{
	const char *names[32], *best = NULL;
	size_t n = 0, bestd = 3;
	luaL_Buffer b;
	lua_pushnil(L);
	while (lua_next(L, profiles) != 0) {
		lua_pop(L, 1);
		if (lua_type(L, -1) != LUA_TSTRING || n == sizeof names / sizeof *names)
			continue;
		{
			const char *k = lua_tostring(L, -1);
			size_t i = n++, d = edit_distance(name, k);
			for (; i > 0 && strcmp(names[i - 1], k) > 0; i--)
				names[i] = names[i - 1];
			names[i] = k;
			if (d < bestd || (d == bestd && best && strcmp(k, best) < 0)) {
				bestd = d;
				best = k;
			}
		}
	}
	luaL_buffinit(L, &b);
	lua_pushfstring(L, "vm `%s`: unknown profile `%s` (declare [profiles.%s] in provium.toml)",
	                vm, name, name);
	luaL_addvalue(&b);
	if (best) {
		lua_pushfstring(L, "; did you mean `%s`?", best);
		luaL_addvalue(&b);
	}
	luaL_addstring(&b, " Known profiles:");
	for (size_t i = 0; i < n; i++) {
		lua_pushfstring(L, "%s %s", i ? "," : "", names[i]);
		luaL_addvalue(&b);
	}
	luaL_pushresult(&b);
	lua_error(L);
}

/* Push _provium_profiles[name] or raise naming the profile. The built-in
 * profile `default` is always present (guestkit.c). */
static void push_profile(lua_State *L, const struct lvm *v, const char *name)
{
	if (lua_getglobal(L, "_provium_profiles") != LUA_TTABLE) {
		lua_pop(L, 1);
		lua_newtable(L);
	}
	if (lua_getfield(L, -1, name) == LUA_TTABLE) {
		lua_remove(L, -2);
		return;
	}
	lua_pop(L, 1);
	unknown_profile(L, lua_gettop(L), v->name, name);
}

/* ---- VM: creation and lifecycle -------------------------------------- */

/* _provium_vm_new(name, profile[, opts]) -> VM userdata (Created). */
static int vm_new(lua_State *L)
{
	const char *name = luaL_checkstring(L, 1);
	const char *profile = luaL_checkstring(L, 2);
	const char *vmm = global_string(L, "_provium_vmm");
	const char *run_dir = global_string(L, "_provium_run_dir");
	struct vmm_profile pv;
	struct vmm_boot_opts bo;
	struct vmm_create_args ca;
	struct lvm *v;
	char err[LVM_ERRLEN];

	if (!lua_isnoneornil(L, 3))
		luaL_checktype(L, 3, LUA_TTABLE);
	lua_settop(L, 3);
	v = lua_newuserdatauv(L, sizeof(*v), 3);          /* 4 */
	memset(v, 0, sizeof(*v));
	v->closed = true;
	v->con_fd = -1;
	v->state = VM_DEAD;
	luaL_setmetatable(L, VM_MT);
	v->name = strdup(name);
	v->profile = strdup(profile);
	if (!v->name || !v->profile)
		return luaL_error(L, "vm `%s`: out of memory", name);
	v->ops = vmm_backend_by_name(vmm ? vmm : "local");
	if (!v->ops)
		return luaL_error(L, "vm `%s`: the `%s` VMM backend is not available in this "
		                  "build; use --vmm local", name, vmm);
	push_profile(L, v, profile);                         /* 5 */
	profile_view(L, 5, profile, &pv);
	/* Creation-time opts: validated now, kept (copied) for boot. */
	lua_newtable(L);                                     /* 6 */
	if (!lua_isnil(L, 3))
		copy_fields(L, 6, 3);
	parse_boot_opts(L, 6, v, &bo);
	lua_settop(L, 6);
	lua_pushvalue(L, 6);
	lua_setiuservalue(L, 4, 1);
	lua_newtable(L);                                     /* live streams: weak keys */
	lua_createtable(L, 0, 1);
	lua_pushliteral(L, "k");
	lua_setfield(L, -2, "__mode");
	lua_setmetatable(L, -2);
	lua_setiuservalue(L, 4, 2);
	lua_newtable(L);                                     /* open files: handle -> File */
	lua_createtable(L, 0, 1);
	lua_pushliteral(L, "v");
	lua_setfield(L, -2, "__mode");
	lua_setmetatable(L, -2);
	lua_setiuservalue(L, 4, 3);
	if (!run_dir)
		return luaL_error(L, "vm `%s`: no run directory (_provium_run_dir unset)", name);
	ca.name = name;
	ca.run_dir = run_dir;
	ca.profile = &pv;
	if (v->ops->create(&v->be, &ca, err, sizeof err) < 0)
		return luaL_error(L, "vm `%s`: create: %s", name, err);
	v->closed = false;
	v->state = VM_CREATED;
	lua_pushvalue(L, 4);
	return 1;
}

/* vm:boot([opts]) -> self */
static int vm_boot(lua_State *L)
{
	struct lvm *v = checkvm(L, 1);
	struct vmm_boot_opts bo;
	struct vmm_boot_info info = {0};
	struct vmm_profile pv;
	char err[LVM_ERRLEN];
	int rc;

	if (!lua_isnoneornil(L, 2))
		luaL_checktype(L, 2, LUA_TTABLE);
	lua_settop(L, 2);
	if (v->state != VM_CREATED)
		return luaL_error(L, "vm `%s`: cannot boot: vm is %s%s", v->name,
		                  state_titles[v->state],
		                  v->state == VM_BOOTED ? " (already booted)" : "");
	push_profile(L, v, v->profile);                      /* 3 */
	profile_view(L, 3, v->profile, &pv);
	lua_newtable(L);                                     /* 4: merged opts */
	lua_getiuservalue(L, 1, 1);
	copy_fields(L, 4, 5);
	lua_pop(L, 1);
	if (!lua_isnil(L, 2))
		copy_fields(L, 4, 2);
	parse_boot_opts(L, 4, v, &bo);
	if (!bo.memory)
		bo.memory = pv.memory ? pv.memory : DEFAULT_MEMORY;
	if (!bo.cpus)
		bo.cpus = pv.cpus ? pv.cpus : 1;
	rc = v->ops->boot ? v->ops->boot(v->be, &bo, &info, err, sizeof err) : VMM_UNSUPPORTED;
	if (rc == VMM_UNSUPPORTED)
		return unsupported(L, v, "boot");
	if (rc < 0) {
		/* The backend's "not found" hint is about the built-in kit; for a
		 * profile of the user's, point at its entry instead. */
		static const char kit_hint[] = " (run `make guest` for the default profile)";
		char *h = strstr(err, kit_hint);
		if (h && strcmp(v->profile, "default")) {
			*h = '\0';
			return luaL_error(L, "vm `%s`: boot: %s (check kernel/initrd of [profiles.%s] "
			                  "in provium.toml; relative paths are from that file)",
			                  v->name, err, v->profile);
		}
		return luaL_error(L, "vm `%s`: boot: %s", v->name, err);
	}
	v->state = VM_BOOTED;
	v->boot_ns = mono_ns();
	v->cid = info.cid;
	lua_createtable(L, 0, 5);
	lua_pushstring(L, global_string(L, "_provium_file"));
	lua_setfield(L, -2, "file");
	lua_pushstring(L, v->name);
	lua_setfield(L, -2, "vm_name");
	lua_pushstring(L, v->profile);
	lua_setfield(L, -2, "profile");
	lua_pushinteger(L, (lua_Integer)(info.memory_bytes ? info.memory_bytes : bo.memory));
	lua_setfield(L, -2, "memory_bytes");
	lua_pushinteger(L, info.cid);
	lua_setfield(L, -2, "cid");
	emit(L, "vm_spawned");
	lua_settop(L, 1);
	return 1;
}

typedef int (*lifecycle_fn)(struct vmm_vm *, char *, size_t);

/* Any state -> Shutdown through stop (the backend's shutdown, or its
 * power_button); emits vm_shutdown when the guest was up, also when stop
 * failed (the backend has stopped the guest either way), then raises
 * "vm `a`: <op>: <err>" for the failure. */
static void do_stop(lua_State *L, struct lvm *v, lifecycle_fn stop, const char *op)
{
	bool was_up = v->state == VM_BOOTED || v->state == VM_PAUSED;
	bool failed = false;
	char err[LVM_ERRLEN];
	if (v->state == VM_SHUTDOWN || !v->be) {
		v->state = VM_SHUTDOWN;
		return;
	}
	lstream_close_all(L, 1);  /* streams follow guest state: end them first */
	v->state = VM_SHUTDOWN;
	if (was_up && stop && stop(v->be, err, sizeof err) < 0) {
		lua_pushfstring(L, "vm `%s`: %s: %s", v->name, op, err);
		failed = true;
	}
	if (was_up) {
		lua_createtable(L, 0, 3);
		lua_pushstring(L, global_string(L, "_provium_file"));
		lua_setfield(L, -2, "file");
		lua_pushstring(L, v->name);
		lua_setfield(L, -2, "vm_name");
		lua_pushinteger(L, mono_ns() - v->boot_ns);
		lua_setfield(L, -2, "duration_ns");
		emit(L, "vm_shutdown");
	}
	if (failed)
		lua_error(L);
}

/* Any state -> Shutdown, gracefully (the backend's shutdown op). */
static void do_shutdown(lua_State *L, struct lvm *v)
{
	do_stop(L, v, v->ops->shutdown, "shutdown");
}

static int vm_shutdown(lua_State *L)
{
	do_shutdown(L, checkvm(L, 1));
	return 0;
}

static void lifecycle(lua_State *L, struct lvm *v, const char *op, enum vm_state need,
                      lifecycle_fn fn, enum vm_state to)
{
	char err[LVM_ERRLEN];
	int rc;
	if (v->state != need)
		luaL_error(L, "vm `%s`: cannot %s: vm is %s%s", v->name, op,
		           state_titles[v->state],
		           need == VM_PAUSED && v->state == VM_BOOTED ? " (not paused)" :
		           state_hints[v->state]);
	rc = fn ? fn(v->be, err, sizeof err) : VMM_UNSUPPORTED;
	if (rc == VMM_UNSUPPORTED)
		unsupported(L, v, op);
	if (rc < 0)
		luaL_error(L, "vm `%s`: %s: %s", v->name, op, err);
	v->state = to;
}

static int vm_pause(lua_State *L)
{
	struct lvm *v = checkvm(L, 1);
	lifecycle(L, v, "pause", VM_BOOTED, v->ops->pause, VM_PAUSED);
	return 0;
}

static int vm_resume(lua_State *L)
{
	struct lvm *v = checkvm(L, 1);
	lifecycle(L, v, "resume", VM_PAUSED, v->ops->resume, VM_BOOTED);
	return 0;
}

static int vm_reset(lua_State *L)
{
	struct lvm *v = checkvm(L, 1);
	lifecycle(L, v, "reset", VM_BOOTED, v->ops->reset, VM_BOOTED);
	return 0;
}

/* vm:power_button(): the backend's power_button op (qemu: ACPI power
 * button via QMP system_powerdown; the guest powers itself off and QEMU
 * exits), Booted -> Shutdown. */
static int vm_power_button(lua_State *L)
{
	struct lvm *v = checkvm(L, 1);
	if (v->state != VM_BOOTED)
		return luaL_error(L, "vm `%s`: cannot power_button: vm is %s%s", v->name,
		                  state_titles[v->state], state_hints[v->state]);
	if (!v->ops->power_button)
		return unsupported(L, v, "power_button");
	do_stop(L, v, v->ops->power_button, "power_button");
	return 0;
}

/* vm:_reconnect() — internal, for tests: drop the host end of the agent
 * channel and connect again (qemu_vm_reconnect); the VM stays Booted. */
static int vm_reconnect(lua_State *L)
{
	struct lvm *v = checkvm(L, 1);
	char err[LVM_ERRLEN];
	need_booted(L, v, "_reconnect");
	if (v->ops != &vmm_qemu_ops)
		return unsupported(L, v, "_reconnect");
	if (qemu_vm_reconnect(v->be, err, sizeof err) < 0)
		return luaL_error(L, "vm `%s`: _reconnect: %s", v->name, err);
	return 0;
}

static void vm_free_backend(struct lvm *v)
{
	if (v->be) {
		v->ops->destroy(v->be);
		v->be = NULL;
	}
}

/* vm:close(): shutdown (with its event) then free the backend. Idempotent. */
static int vm_close(lua_State *L)
{
	struct lvm *v = checkvm(L, 1);
	if (v->closed)
		return 0;
	v->closed = true;
	if (v->state != VM_SHUTDOWN && v->state != VM_DEAD)
		do_shutdown(L, v);
	vm_free_backend(v);
	return 0;
}

static int vm_gc(lua_State *L)
{
	struct lvm *v = checkvm(L, 1);
	v->closed = true;
	vm_free_backend(v);
	free(v->name);
	free(v->profile);
	v->name = v->profile = NULL;
	return 0;
}

static int vm_tostring(lua_State *L)
{
	struct lvm *v = checkvm(L, 1);
	lua_pushfstring(L, "vm `%s` (%s)", v->name ? v->name : "?", state_names[v->state]);
	return 1;
}

static int vm_name(lua_State *L) { lua_pushstring(L, checkvm(L, 1)->name); return 1; }
static int vm_profile(lua_State *L) { lua_pushstring(L, checkvm(L, 1)->profile); return 1; }
static int vm_state(lua_State *L) { lua_pushstring(L, state_names[checkvm(L, 1)->state]); return 1; }

static int vm_cid(lua_State *L)
{
	struct lvm *v = checkvm(L, 1);
	if (v->state == VM_BOOTED || v->state == VM_PAUSED)
		lua_pushinteger(L, v->cid);
	else
		lua_pushnil(L);
	return 1;
}

static int vm_open_file_count(lua_State *L) { lua_pushinteger(L, checkvm(L, 1)->open_files); return 1; }
static int vm_open_stream_count(lua_State *L) { lua_pushinteger(L, checkvm(L, 1)->open_streams); return 1; }
static int vm_is_quiescent(lua_State *L)
{
	struct lvm *v = checkvm(L, 1);
	lua_pushboolean(L, v->open_files == 0 && v->open_streams == 0);
	return 1;
}

/* Hypervisor resources no backend builds yet (nic, disk, attach_disk):
 * the clear "not supported by the <backend> backend" error. */
static int vm_unsupported(lua_State *L)
{
	struct lvm *v = checkvm(L, 1);
	return unsupported(L, v, lua_tostring(L, lua_upvalueindex(1)));
}

/* vm:_console_tail(max) -> string or nil (no console in this backend). */
static int vm_console_tail(lua_State *L)
{
	struct lvm *v = checkvm(L, 1);
	char *out = NULL, err[256];
	size_t len = 0;
	if (!v->be || !v->ops->console_tail ||
	    v->ops->console_tail(v->be, (size_t)luaL_optinteger(L, 2, 4096), &out, &len,
	                         err, sizeof err) < 0) {
		lua_pushnil(L);
		return 1;
	}
	lua_pushlstring(L, out, len);
	free(out);
	return 1;
}

/* ---- VM: commands ---------------------------------------------------- */

/* Is the table at idx a pure array (keys exactly 1..n)? */
static bool is_array(lua_State *L, int idx)
{
	lua_Integer n = luaL_len(L, idx), count = 0;
	lua_pushnil(L);
	while (lua_next(L, idx)) {
		lua_pop(L, 1);
		if (!lua_isinteger(L, -1) || lua_tointeger(L, -1) < 1 || lua_tointeger(L, -1) > n) {
			lua_pop(L, 1);
			return false;
		}
		count++;
	}
	return count == n;
}

/* Build an exec request from (cmd at 2, arg table-or-nil at 3). Anchors
 * every string and pointer array in a table pushed on the stack. */
void lvm_build_req(lua_State *L, struct lvm *v, bool async, int ci, int ai,
                   struct vmm_exec_req *r)
{
	const char *cmd;
	int argi = 0, opts = 0, anchor;
	size_t nargs = 0, nenv = 0;
	const char **argv, **env = NULL;
	static const char *const keys[] = {"args", "env", "env_clear", "cwd", "stdin",
		"timeout", "timeout_ms", NULL};

	memset(r, 0, sizeof(*r));
	r->timeout_ns = -1;
	ci = lua_absindex(L, ci);
	ai = lua_absindex(L, ai);
	cmd = luaL_checkstring(L, ci);
	lua_newtable(L);
	anchor = lua_gettop(L);
	if (!lua_isnoneornil(L, ai)) {
		luaL_checktype(L, ai, LUA_TTABLE);
		if (is_array(L, ai) && luaL_len(L, ai) > 0) {
			argi = ai;
		} else {
			opts = ai;
			lua_pushnil(L);
			while (lua_next(L, ai)) {
				bool known = false;
				lua_pop(L, 1);
				if (lua_isinteger(L, -1))
					luaL_error(L, "vm `%s`: run: mixed positional args and opts; "
					           "put the args in `args = {...}`", v->name);
				for (int i = 0; keys[i]; i++)
					if (lua_type(L, -1) == LUA_TSTRING && !strcmp(lua_tostring(L, -1), keys[i]))
						known = true;
				if (!known)
					luaL_error(L, "vm `%s`: run: unknown opt `%s`", v->name,
					           luaL_tolstring(L, -1, NULL));
			}
			if (lua_getfield(L, ai, "args") != LUA_TNIL) {
				if (!lua_istable(L, -1) || !is_array(L, lua_gettop(L)))
					luaL_error(L, "vm `%s`: run: args must be an array of strings", v->name);
				argi = lua_gettop(L);
			} else {
				lua_pop(L, 1);
			}
		}
	}
	if (argi)
		nargs = (size_t)luaL_len(L, argi);
	argv = lua_newuserdatauv(L, (nargs + 4) * sizeof(*argv), 0);
	lua_rawseti(L, anchor, 1);
	if (argi) {
		r->file = cmd;
		argv[0] = cmd;
		for (size_t i = 0; i < nargs; i++) {
			if (lua_geti(L, argi, (lua_Integer)i + 1) != LUA_TSTRING &&
			    !lua_isnumber(L, -1))
				luaL_error(L, "vm `%s`: run: args[%d] must be a string", v->name, (int)i + 1);
			argv[i + 1] = lua_tostring(L, -1);
			lua_rawseti(L, anchor, (lua_Integer)i + 10);
		}
		argv[nargs + 1] = NULL;
	} else {
		r->file = "/bin/sh";
		argv[0] = "sh";
		argv[1] = "-c";
		argv[2] = cmd;
		argv[3] = NULL;
	}
	r->argv = argv;
	if (!opts)
		return;
	if (lua_getfield(L, opts, "env") != LUA_TNIL) {
		int eidx = lua_gettop(L);
		luaL_checktype(L, eidx, LUA_TTABLE);
		lua_pushnil(L);
		while (lua_next(L, eidx)) {
			lua_pop(L, 1);
			nenv++;
		}
		env = lua_newuserdatauv(L, (nenv + 1) * sizeof(*env), 0);
		lua_rawseti(L, anchor, 2);
		nenv = 0;
		lua_pushnil(L);
		while (lua_next(L, eidx)) {
			if (lua_type(L, -2) != LUA_TSTRING || !lua_isstring(L, -1))
				luaL_error(L, "vm `%s`: run: env must map strings to strings", v->name);
			lua_pushfstring(L, "%s=%s", lua_tostring(L, -2), lua_tostring(L, -1));
			env[nenv++] = lua_tostring(L, -1);
			lua_rawseti(L, anchor, -(lua_Integer)nenv);
			lua_pop(L, 1);
		}
		env[nenv] = NULL;
		r->env = env;
	}
	lua_pop(L, 1);
	lua_getfield(L, opts, "env_clear");
	r->env_clear = lua_toboolean(L, -1);
	lua_pop(L, 1);
	if (lua_getfield(L, opts, "cwd") != LUA_TNIL) {
		if (lua_type(L, -1) != LUA_TSTRING)
			luaL_error(L, "vm `%s`: run: cwd must be a string", v->name);
		r->cwd = lua_tostring(L, -1);
		lua_rawseti(L, anchor, 3);
	} else {
		lua_pop(L, 1);
	}
	if (lua_getfield(L, opts, "stdin") != LUA_TNIL) {
		if (lua_type(L, -1) != LUA_TSTRING)
			luaL_error(L, "vm `%s`: run: stdin must be a string", v->name);
		r->stdin_data = lua_tolstring(L, -1, &r->stdin_len);
		lua_rawseti(L, anchor, 4);
	} else {
		lua_pop(L, 1);
	}
	lua_getfield(L, opts, "timeout");
	lua_getfield(L, opts, "timeout_ms");
	if (async && (!lua_isnil(L, -1) || !lua_isnil(L, -2)))
		luaL_error(L, "vm `%s`: run_async does not take a timeout (the process is not "
		           "auto-killed); use proc:wait(timeout) instead", v->name);
	if (!lua_isnil(L, -1)) {
		if (!lua_isinteger(L, -1) || lua_tointeger(L, -1) < 0)
			luaL_error(L, "vm `%s`: run: timeout_ms must be a non-negative integer", v->name);
		r->timeout_ns = lua_tointeger(L, -1) * 1000000;
	} else if (!lua_isnil(L, -2)) {
		r->timeout_ns = check_duration(L, lua_gettop(L) - 1, v, "run: timeout");
	}
	lua_pop(L, 2);
}

/* vm:run(cmd[, args_or_opts]) -> RunResult */
static int vm_run(lua_State *L)
{
	struct lvm *v = checkvm(L, 1);
	struct vmm_exec_req r;
	struct vmm_exec_result res;
	char err[LVM_ERRLEN];
	int64_t dl = lruntime_deadline_ns(), user;
	bool by_deadline = false;
	int rc;

	build_req(L, v, false, &r);
	need_booted(L, v, "run");
	user = r.timeout_ns;
	if (dl > 0) {
		int64_t left = dl - mono_ns();
		if (left < 0)
			left = 0;
		if (user < 0 || left < user) {
			r.timeout_ns = left;
			by_deadline = true;
		}
	}
	rc = v->ops->exec ? v->ops->exec(v->be, &r, &res, err, sizeof err) : VMM_UNSUPPORTED;
	if (rc == VMM_UNSUPPORTED)
		return unsupported(L, v, "run");
	if (rc < 0)
		return luaL_error(L, "vm `%s`: run `%s`: %s", v->name, lua_tostring(L, 2), err);
	if (by_deadline && res.status == VMM_TIMED_OUT) {
		vmm_exec_result_free(&res);
		lruntime_check_deadline_in(L, "vm:run");
		return luaL_error(L, "vm `%s`: run `%s`: the test's deadline passed", v->name,
		                  lua_tostring(L, 2));
	}
	push_result(L, &res, lua_tostring(L, 2));
	return 1;
}

/* ---- VM: file ops ---------------------------------------------------- */

#define OPCALL(v, op, ...) \
	((v)->ops->op ? (v)->ops->op((v)->be, __VA_ARGS__) : VMM_UNSUPPORTED)

static void op_fail(lua_State *L, struct lvm *v, int rc, const char *op,
                    const char *path, const char *err)
{
	if (rc == VMM_UNSUPPORTED)
		unsupported(L, v, op);
	luaL_error(L, "vm `%s`: %s `%s`: %s", v->name, op, path, err);
}

static int vm_read_file(lua_State *L)
{
	struct lvm *v = checkvm(L, 1);
	const char *path = luaL_checkstring(L, 2);
	char *data, err[LVM_ERRLEN];
	size_t len;
	int rc;
	need_booted(L, v, "read_file");
	rc = OPCALL(v, read_file, path, &data, &len, err, sizeof err);
	if (rc != 0)
		op_fail(L, v, rc, "read_file", path, err);
	lua_pushlstring(L, data, len);
	free(data);
	return 1;
}

static int vm_write_file(lua_State *L)
{
	struct lvm *v = checkvm(L, 1);
	const char *path = luaL_checkstring(L, 2);
	size_t len;
	const char *data = luaL_checklstring(L, 3, &len);
	char err[LVM_ERRLEN];
	int rc;
	need_booted(L, v, "write_file");
	rc = OPCALL(v, write_file, path, data, len, err, sizeof err);
	if (rc != 0)
		op_fail(L, v, rc, "write_file", path, err);
	return 0;
}

/* Push the absolute directory of the Lua file that called the running C
 * function: the first stack frame whose chunk came from a file ("@..."),
 * skipping C functions and the embedded preludes ("=[provium ...]"). The
 * runner and the fixture builder load the file itself as "@<display or
 * root-relative path>" (== _provium_file), which maps to
 * _provium_file_dir; require'd helpers carry the path package.path gave
 * them (absolute under the file's dir and the roots; relative to the
 * working directory for a "./?.lua" entry). Pushes nil when no frame says. */
static void push_caller_dir(lua_State *L)
{
	lua_Debug ar;
	const char *file = global_string(L, "_provium_file");
	for (int level = 1; lua_getstack(L, level, &ar); level++) {
		const char *src, *slash;
		char buf[PATH_MAX];
		if (!lua_getinfo(L, "S", &ar) || !ar.source || ar.source[0] != '@')
			continue;
		src = ar.source + 1;
		if (file && !strcmp(src, file)) {
			lua_getglobal(L, "_provium_file_dir");
			if (lua_isstring(L, -1))
				return;
			lua_pop(L, 1);
		}
		slash = strrchr(src, '/');
		if (!slash) {
			lua_pushstring(L, getcwd(buf, sizeof buf) ? buf : ".");
			return;
		}
		if (slash == src) {
			lua_pushliteral(L, "/");
			return;
		}
		lua_pushlstring(L, src, (size_t)(slash - src));
		if (src[0] != '/' && realpath(lua_tostring(L, -1), buf)) {
			lua_pop(L, 1);
			lua_pushstring(L, buf);
		}
		return;
	}
	lua_pushnil(L);
}

/* vm:push_file(host_path, guest_path[, opts]): a relative host path is
 * resolved against the directory of the Lua file making the call (the
 * test file, the fixture, or a require'd helper), as the fixture cache
 * key does (fixture/key.c). */
static int vm_push_file(lua_State *L)
{
	struct lvm *v = checkvm(L, 1);
	const char *host = luaL_checkstring(L, 2);
	const char *guest = luaL_checkstring(L, 3);
	luaL_Buffer b;
	FILE *f;
	char err[LVM_ERRLEN];
	int rc;
	need_booted(L, v, "push_file");
	if (host[0] != '/') {
		push_caller_dir(L);
		if (lua_isnil(L, -1)) {
			lua_pop(L, 1);
			lua_getglobal(L, "_provium_file_dir");
		}
		if (lua_isstring(L, -1))
			lua_pushfstring(L, "%s/%s", lua_tostring(L, -1), host);
		else
			lua_pushstring(L, host);
		lua_remove(L, -2);
	} else {
		lua_pushstring(L, host);
	}
	f = fopen(lua_tostring(L, -1), "rbe");
	if (!f)
		return luaL_error(L, "vm `%s`: push_file: open `%s`: %s", v->name,
		                  lua_tostring(L, -1), strerror(errno));
	luaL_buffinit(L, &b);
	for (;;) {
		char *p = luaL_prepbuffer(&b);
		size_t n = fread(p, 1, LUAL_BUFFERSIZE, f);
		luaL_addsize(&b, n);
		if (n < LUAL_BUFFERSIZE)
			break;
	}
	if (ferror(f)) {
		int e = errno;
		fclose(f);
		return luaL_error(L, "vm `%s`: push_file: read `%s`: %s", v->name, host, strerror(e));
	}
	fclose(f);
	luaL_pushresult(&b);
	{
		size_t len;
		const char *data = lua_tolstring(L, -1, &len);
		rc = OPCALL(v, write_file, guest, data, len, err, sizeof err);
	}
	if (rc != 0)
		op_fail(L, v, rc, "push_file", guest, err);
	return 0;
}

const char *const entry_names[] = {"file", "directory", "symlink", "fifo",
	"socket", "block_device", "char_device", "other"};

static int vm_stat(lua_State *L)
{
	struct lvm *v = checkvm(L, 1);
	const char *path = luaL_checkstring(L, 2);
	struct vmm_stat st;
	char err[LVM_ERRLEN];
	int rc;
	need_booted(L, v, "stat");
	rc = OPCALL(v, stat, path, &st, err, sizeof err);
	if (rc != 0)
		op_fail(L, v, rc, "stat", path, err);
	lua_createtable(L, 0, 5);
	lua_pushinteger(L, (lua_Integer)st.size);
	lua_setfield(L, -2, "size");
	lua_pushnumber(L, (double)st.mtime_ns / 1e9);
	lua_setfield(L, -2, "mtime");
	lua_pushinteger(L, st.mtime_ns);
	lua_setfield(L, -2, "mtime_ns");
	lua_pushinteger(L, st.perm);
	lua_setfield(L, -2, "perm");
	lua_pushstring(L, entry_names[st.type]);
	lua_setfield(L, -2, "entry_type");
	return 1;
}

/* vm:exists(path) -> bool (false only for "no such file"). */
static int vm_exists(lua_State *L)
{
	struct lvm *v = checkvm(L, 1);
	const char *path = luaL_checkstring(L, 2);
	struct vmm_stat st;
	char err[LVM_ERRLEN];
	int rc;
	need_booted(L, v, "exists");
	errno = 0;
	rc = OPCALL(v, stat, path, &st, err, sizeof err);
	if (rc == -1 && (errno == ENOENT || errno == ENOTDIR)) {
		lua_pushboolean(L, 0);
		return 1;
	}
	if (rc != 0)
		op_fail(L, v, rc, "exists", path, err);
	lua_pushboolean(L, 1);
	return 1;
}

static int vm_listdir(lua_State *L)
{
	struct lvm *v = checkvm(L, 1);
	const char *path = luaL_checkstring(L, 2);
	struct vmm_dirent *ents;
	size_t n;
	char err[LVM_ERRLEN];
	int rc;
	need_booted(L, v, "listdir");
	rc = OPCALL(v, listdir, path, &ents, &n, err, sizeof err);
	if (rc != 0)
		op_fail(L, v, rc, "listdir", path, err);
	/* Copy the names out first: nothing below may raise while ents lives,
	 * except out-of-memory, which Lua reports by unwinding anyway. */
	lua_createtable(L, (int)n, 0);
	for (size_t i = 0; i < n; i++) {
		lua_createtable(L, 0, 2);
		lua_pushstring(L, ents[i].name);
		lua_setfield(L, -2, "name");
		lua_pushstring(L, entry_names[ents[i].type]);
		lua_setfield(L, -2, "entry_type");
		lua_rawseti(L, -2, (lua_Integer)i + 1);
	}
	vmm_dirents_free(ents, n);
	return 1;
}

static int vm_mkdir(lua_State *L)
{
	struct lvm *v = checkvm(L, 1);
	const char *path = luaL_checkstring(L, 2);
	bool parents = false;
	int perm = -1, rc;
	char err[LVM_ERRLEN];
	if (!lua_isnoneornil(L, 3)) {
		luaL_checktype(L, 3, LUA_TTABLE);
		lua_getfield(L, 3, "parents");
		parents = lua_toboolean(L, -1);
		if (lua_getfield(L, 3, "perm") != LUA_TNIL) {
			if (!lua_isinteger(L, -1) || lua_tointeger(L, -1) < 0 || lua_tointeger(L, -1) > 07777)
				return luaL_error(L, "vm `%s`: mkdir: perm must be an integer in 0..4095", v->name);
			perm = (int)lua_tointeger(L, -1);
		}
	}
	need_booted(L, v, "mkdir");
	rc = OPCALL(v, mkdir, path, parents, perm, err, sizeof err);
	if (rc != 0)
		op_fail(L, v, rc, "mkdir", path, err);
	return 0;
}

static int vm_unlink(lua_State *L)
{
	struct lvm *v = checkvm(L, 1);
	const char *path = luaL_checkstring(L, 2);
	char err[LVM_ERRLEN];
	int rc;
	need_booted(L, v, "unlink");
	rc = OPCALL(v, unlink, path, err, sizeof err);
	if (rc != 0)
		op_fail(L, v, rc, "unlink", path, err);
	return 0;
}

static int vm_rename(lua_State *L)
{
	struct lvm *v = checkvm(L, 1);
	const char *from = luaL_checkstring(L, 2);
	const char *to = luaL_checkstring(L, 3);
	char err[LVM_ERRLEN];
	int rc;
	need_booted(L, v, "rename");
	rc = OPCALL(v, rename, from, to, err, sizeof err);
	if (rc != 0)
		op_fail(L, v, rc, "rename", from, err);
	return 0;
}

/* ---- File ------------------------------------------------------------ */

static struct lfile *checkfile(lua_State *L)
{
	struct lfile *f = luaL_checkudata(L, 1, FILE_MT);
	if (!f->f)
		luaL_error(L, "file is closed");
	return f;
}

static int vm_open_file(lua_State *L)
{
	struct lvm *v = checkvm(L, 1);
	const char *path = luaL_checkstring(L, 2);
	static const struct { const char *k; int bit; } bits[] = {
		{"read", VMM_O_READ}, {"write", VMM_O_WRITE}, {"create", VMM_O_CREATE},
		{"truncate", VMM_O_TRUNCATE}, {"append", VMM_O_APPEND},
		{"exclusive", VMM_O_EXCLUSIVE},
	};
	int mode = 0, perm = -1, rc;
	struct lfile *f;
	char err[LVM_ERRLEN];

	luaL_checktype(L, 3, LUA_TTABLE);
	for (size_t i = 0; i < sizeof bits / sizeof bits[0]; i++) {
		lua_getfield(L, 3, bits[i].k);
		if (lua_toboolean(L, -1))
			mode |= bits[i].bit;
		lua_pop(L, 1);
	}
	if (lua_getfield(L, 3, "perm") != LUA_TNIL) {
		if (!lua_isinteger(L, -1) || lua_tointeger(L, -1) < 0 || lua_tointeger(L, -1) > 07777)
			return luaL_error(L, "vm `%s`: open_file: perm must be an integer in 0..4095", v->name);
		perm = (int)lua_tointeger(L, -1);
	}
	lua_pop(L, 1);
	if (!(mode & (VMM_O_READ | VMM_O_WRITE | VMM_O_APPEND)))
		return luaL_error(L, "vm `%s`: open_file `%s`: the mode table needs at least one "
		                  "of read, write or append set to true (e.g. {read=true})",
		                  v->name, path);
	need_booted(L, v, "open_file");
	f = lua_newuserdatauv(L, sizeof(*f), 2);
	memset(f, 0, sizeof(*f));
	luaL_setmetatable(L, FILE_MT);
	lua_pushvalue(L, 1);
	lua_setiuservalue(L, -2, 1);
	lua_pushvalue(L, 2);
	lua_setiuservalue(L, -2, 2);
	f->ops = v->ops;
	f->vm = v;
	rc = OPCALL(v, open, path, mode, perm, &f->f, err, sizeof err);
	if (rc != 0)
		op_fail(L, v, rc, "open_file", path, err);
	v->open_files++;
	if (lua_getiuservalue(L, 1, 3) == LUA_TTABLE) {
		lua_pushvalue(L, -2);
		lua_rawseti(L, -2, (lua_Integer)f->ops->file_handle(f->f));
	}
	lua_pop(L, 1);
	register_resource(L, -1, "file");
	return 1;
}

static int file_read(lua_State *L)
{
	struct lfile *f = checkfile(L);
	lua_Integer n = luaL_checkinteger(L, 2);
	luaL_Buffer b;
	size_t got;
	char err[LVM_ERRLEN];
	luaL_argcheck(L, n >= 0, 2, "byte count must be non-negative");
	need_booted(L, f->vm, "read from a file");
	char *p = luaL_buffinitsize(L, &b, (size_t)n);
	if (f->ops->file_read(f->f, p, (size_t)n, &got, err, sizeof err) < 0)
		return luaL_error(L, "file read: %s", err);
	luaL_pushresultsize(&b, got);
	return 1;
}

static int file_read_all(lua_State *L)
{
	struct lfile *f = checkfile(L);
	luaL_Buffer b;
	char err[LVM_ERRLEN];
	need_booted(L, f->vm, "read from a file");
	luaL_buffinit(L, &b);
	for (;;) {
		size_t got;
		char *p = luaL_prepbuffsize(&b, 65536);
		if (f->ops->file_read(f->f, p, 65536, &got, err, sizeof err) < 0)
			return luaL_error(L, "file read: %s", err);
		if (got == 0)
			break;
		luaL_addsize(&b, got);
	}
	luaL_pushresult(&b);
	return 1;
}

static int file_write(lua_State *L)
{
	struct lfile *f = checkfile(L);
	size_t len, put;
	const char *data = luaL_checklstring(L, 2, &len);
	char err[LVM_ERRLEN];
	need_booted(L, f->vm, "write to a file");
	if (f->ops->file_write(f->f, data, len, &put, err, sizeof err) < 0)
		return luaL_error(L, "file write: %s", err);
	lua_pushinteger(L, (lua_Integer)put);
	return 1;
}

static int file_seek(lua_State *L)
{
	struct lfile *f = checkfile(L);
	lua_Integer off = luaL_optinteger(L, 2, 0);
	const char *w = luaL_optstring(L, 3, "set");
	enum vmm_whence wh;
	int64_t pos;
	char err[LVM_ERRLEN];
	if (!strcmp(w, "set")) wh = VMM_SEEK_SET;
	else if (!strcmp(w, "cur")) wh = VMM_SEEK_CUR;
	else if (!strcmp(w, "end")) wh = VMM_SEEK_END;
	else return luaL_error(L, "seek: whence must be set/cur/end, got `%s`", w);
	need_booted(L, f->vm, "seek a file");
	if (f->ops->file_seek(f->f, off, wh, &pos, err, sizeof err) < 0)
		return luaL_error(L, "file seek: %s", err);
	lua_pushinteger(L, pos);
	return 1;
}

static int file_tell(lua_State *L)
{
	struct lfile *f = checkfile(L);
	int64_t pos;
	char err[LVM_ERRLEN];
	need_booted(L, f->vm, "tell a file");
	if (f->ops->file_seek(f->f, 0, VMM_SEEK_CUR, &pos, err, sizeof err) < 0)
		return luaL_error(L, "file tell: %s", err);
	lua_pushinteger(L, pos);
	return 1;
}

static int file_fd(lua_State *L)
{
	struct lfile *f = luaL_checkudata(L, 1, FILE_MT);
	lua_pushinteger(L, f->f ? (lua_Integer)f->ops->file_handle(f->f) : 0);
	return 1;
}

static int file_close(lua_State *L)
{
	struct lfile *f = luaL_checkudata(L, 1, FILE_MT);
	if (f->f) {
		struct vmm_file *h = f->f;
		f->f = NULL;
		f->ops->file_close(h);
		f->vm->open_files--;
	}
	return 0;
}

/* Streams over an open file: file:tail_stream() and vm:fd_stream(). */
static void push_fd_stream(lua_State *L, int vm_idx, int file_idx, const char *kind,
                           const char *op)
{
	struct lfile *f = luaL_checkudata(L, file_idx, FILE_MT);
	struct vmm_stream_req r = {.kind = VMM_STREAM_FD};
	vm_idx = lua_absindex(L, vm_idx);
	if (!f->f)
		luaL_error(L, "file is closed");
	r.file = f->f;
	lua_getiuservalue(L, file_idx, 2);
	lstream_push_guest(L, vm_idx, &r, kind, lua_tostring(L, -1), op);
	lua_remove(L, -2);
}

static int file_tail_stream(lua_State *L)
{
	checkfile(L);
	lua_getiuservalue(L, 1, 1);
	push_fd_stream(L, -1, 1, "file_tail_stream", "file:tail_stream");
	return 1;
}

/* vm:fd_stream(file_or_handle) */
static int vm_fd_stream(lua_State *L)
{
	struct lvm *v = checkvm(L, 1);
	if (!v->ops->agent && !v->ops->stream_open)
		return unsupported(L, v, "fd_stream");
	if (lua_isinteger(L, 2)) {
		/* A handle id from file:fd(): find the live File it names. */
		lua_Integer h = lua_tointeger(L, 2);
		struct lfile *f = NULL;
		if (lua_getiuservalue(L, 1, 3) == LUA_TTABLE) {
			lua_rawgeti(L, -1, h);
			f = luaL_testudata(L, -1, FILE_MT);
		}
		if (!f || !f->f)
			return luaL_error(L, "vm `%s`: fd_stream: no open file with handle %d "
			                  "(pass the File itself, or file:fd() of a file that is "
			                  "still open)", v->name, (int)h);
		lua_replace(L, 2);
	}
	if (!luaL_testudata(L, 2, FILE_MT))
		return luaL_error(L, "vm `%s`: fd_stream: expected a File or an integer handle "
		                  "(file:fd()), got %s", v->name, luaL_typename(L, 2));
	push_fd_stream(L, 1, 2, "fd_stream", "fd_stream");
	return 1;
}

/* vm:tail_file(path[, {start = "end" | "beginning" | "start" | offset}]) */
static int vm_tail_file(lua_State *L)
{
	struct lvm *v = checkvm(L, 1);
	const char *path = luaL_checkstring(L, 2);
	struct vmm_stream_req r = {.kind = VMM_STREAM_TAIL, .start = VMM_TAIL_END};
	r.path = path;
	if (!lua_isnoneornil(L, 3)) {
		luaL_checktype(L, 3, LUA_TTABLE);
		lua_pushnil(L);
		while (lua_next(L, 3)) {
			lua_pop(L, 1);
			if (lua_type(L, -1) != LUA_TSTRING || strcmp(lua_tostring(L, -1), "start"))
				return luaL_error(L, "vm `%s`: tail_file: unknown opt `%s` (expected start)",
				                  v->name, luaL_tolstring(L, -1, NULL));
		}
		switch (lua_getfield(L, 3, "start")) {
		case LUA_TNIL:
			break;
		case LUA_TSTRING: {
			const char *st = lua_tostring(L, -1);
			if (!strcmp(st, "beginning") || !strcmp(st, "start"))
				r.start = VMM_TAIL_BEGINNING;
			else if (strcmp(st, "end"))
				return luaL_error(L, "vm `%s`: tail_file: start must be \"end\", "
				                  "\"beginning\" or a byte offset, got `%s`", v->name, st);
			break;
		}
		case LUA_TNUMBER: {
			double d = lua_tonumber(L, -1);
			if (lua_isinteger(L, -1)) {
				r.offset = lua_tointeger(L, -1);
			} else {
				if (!isfinite(d) || d > 9.2e18 || d < -9.2e18)
					return luaL_error(L, "vm `%s`: tail_file: start offset must be finite",
					                  v->name);
				r.offset = (int64_t)d;   /* truncates toward zero */
			}
			r.start = VMM_TAIL_OFFSET;
			break;
		}
		default:
			return luaL_error(L, "vm `%s`: tail_file: start must be \"end\", \"beginning\" "
			                  "or a byte offset, got %s", v->name, luaL_typename(L, -1));
		}
		lua_pop(L, 1);
	}
	lstream_push_guest(L, 1, &r, "tail_file", path, "tail_file");
	return 1;
}

static int file_tostring(lua_State *L)
{
	struct lfile *f = luaL_checkudata(L, 1, FILE_MT);
	lua_getiuservalue(L, 1, 2);
	lua_pushfstring(L, "file `%s`%s", lua_tostring(L, -1), f->f ? "" : " (closed)");
	return 1;
}

/* ---- Process --------------------------------------------------------- */

static struct lproc *checkproc(lua_State *L)
{
	return luaL_checkudata(L, 1, PROC_MT);
}

static int vm_run_async(lua_State *L)
{
	struct lvm *v = checkvm(L, 1);
	struct vmm_exec_req r;
	struct lproc *p;
	char err[LVM_ERRLEN];
	int rc;
	build_req(L, v, true, &r);
	need_booted(L, v, "run_async");
	p = lua_newuserdatauv(L, sizeof(*p), 3);
	memset(p, 0, sizeof(*p));
	luaL_setmetatable(L, PROC_MT);
	lua_pushvalue(L, 1);
	lua_setiuservalue(L, -2, 1);
	lua_pushvalue(L, 2);
	lua_setiuservalue(L, -2, 3);
	p->ops = v->ops;
	p->vm = v;
	rc = v->ops->exec_async ? v->ops->exec_async(v->be, &r, &p->p, err, sizeof err)
	                        : VMM_UNSUPPORTED;
	if (rc == VMM_UNSUPPORTED)
		return unsupported(L, v, "run_async");
	if (rc < 0)
		return luaL_error(L, "vm `%s`: run_async `%s`: %s", v->name, lua_tostring(L, 2), err);
	register_resource(L, -1, "process");
	return 1;
}

/* Store res as the consumed result (uservalue 2) and push it. */
static void proc_consume(lua_State *L, struct lproc *p, struct vmm_exec_result *res)
{
	lua_getiuservalue(L, 1, 3);
	push_result(L, res, lua_tostring(L, -1));
	lua_remove(L, -2);
	lua_pushvalue(L, -1);
	lua_setiuservalue(L, 1, 2);
	p->consumed = true;
}

/* Wait on p for up to timeout_ns (< 0 forever), bounded by the test's
 * deadline (raises when it passes, naming `op`). Returns true when the process ended
 * (result pushed). */
static bool proc_wait_for(lua_State *L, struct lproc *p, int64_t timeout_ns, const char *op)
{
	struct vmm_exec_result res;
	bool done = false;
	char err[LVM_ERRLEN];
	int64_t end = timeout_ns >= 0 ? mono_ns() + timeout_ns : -1;
	for (;;) {
		int64_t slice = end >= 0 ? end - mono_ns() : -1, dl = lruntime_deadline_ns();
		if (end >= 0 && slice < 0)
			slice = 0;
		if (dl > 0 && (slice < 0 || dl - mono_ns() < slice))
			slice = dl - mono_ns() > 0 ? dl - mono_ns() : 0;
		if (p->ops->proc_wait(p->p, slice, &done, &res, err, sizeof err) < 0)
			luaL_error(L, "process wait: %s", err);
		if (done) {
			proc_consume(L, p, &res);
			return true;
		}
		if (dl > 0 && mono_ns() >= dl)
			lruntime_check_deadline_in(L, op);
		if (end >= 0 && mono_ns() >= end)
			return false;
	}
}

static int proc_wait(lua_State *L)
{
	struct lproc *p = checkproc(L);
	int64_t timeout = -1;
	char err[LVM_ERRLEN];
	if (!lua_isnoneornil(L, 2)) {
		timeout = check_duration(L, 2, p->vm, "proc:wait timeout");
		if (timeout == 0)
			return luaL_error(L, "proc:wait: a zero timeout would kill the process at "
			                  "once; use proc:status() to poll without waiting");
	}
	if (p->consumed) {
		lua_getiuservalue(L, 1, 2);
		return 1;
	}
	if (!p->p)
		return luaL_error(L, "process is closed");
	if (proc_wait_for(L, p, timeout, "proc:wait"))
		return 1;
	/* Timed out: kill it, as the agent does, and report timed_out. */
	if (p->ops->proc_kill(p->p, SIGKILL, err, sizeof err) < 0)
		return luaL_error(L, "process kill: %s", err);
	proc_wait_for(L, p, -1, "proc:wait");
	lua_pushinteger(L, -2);
	lua_setfield(L, -2, "exit_code");
	lua_pushliteral(L, "timed_out");
	lua_setfield(L, -2, "status");
	lua_pushboolean(L, 1);
	lua_setfield(L, -2, "timed_out");
	lua_pushnil(L);
	lua_setfield(L, -2, "signal");
	return 1;
}

int parse_signal(lua_State *L, int idx)
{
	static const struct { const char *n; int s; } t[] = {
		{"term", SIGTERM}, {"kill", SIGKILL}, {"int", SIGINT}, {"hup", SIGHUP},
		{"quit", SIGQUIT}, {"stop", SIGSTOP}, {"cont", SIGCONT}, {"usr1", SIGUSR1},
		{"usr2", SIGUSR2}, {"alrm", SIGALRM}, {"pipe", SIGPIPE}, {"chld", SIGCHLD},
		{"winch", SIGWINCH},
	};
	const char *s;
	if (lua_isnoneornil(L, idx))
		return SIGTERM;
	if (lua_isinteger(L, idx)) {
		lua_Integer n = lua_tointeger(L, idx);
		if (n < 1 || n > 64)
			luaL_error(L, "unknown signal number %d", (int)n);
		return (int)n;
	}
	s = luaL_checkstring(L, idx);
	if (!strncasecmp(s, "sig", 3))
		s += 3;
	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
		if (!strcasecmp(s, t[i].n))
			return t[i].s;
	if (*s >= '0' && *s <= '9') {
		int n = atoi(s);
		if (n >= 1 && n <= 64)
			return n;
	}
	return luaL_error(L, "unknown signal name `%s`", lua_tostring(L, idx));
}

static int proc_kill(lua_State *L)
{
	struct lproc *p = checkproc(L);
	int sig = parse_signal(L, 2);
	char err[LVM_ERRLEN];
	if (p->consumed || !p->p)
		return 0;
	if (p->ops->proc_kill(p->p, sig, err, sizeof err) < 0)
		return luaL_error(L, "process kill: %s", err);
	return 0;
}

static int proc_status(lua_State *L)
{
	struct lproc *p = checkproc(L);
	if (!p->consumed && p->p && !proc_wait_for(L, p, 0, "proc:status")) {
		lua_pushliteral(L, "running");
		return 1;
	}
	if (!p->consumed) {
		lua_pushliteral(L, "closed");
		return 1;
	}
	lua_getiuservalue(L, 1, 2);
	lua_getfield(L, -1, "status");
	return 1;
}

static int proc_stdin_write(lua_State *L)
{
	struct lproc *p = checkproc(L);
	size_t len, put;
	const char *data = luaL_checklstring(L, 2, &len);
	char err[LVM_ERRLEN];
	if (!p->p || p->consumed)
		return luaL_error(L, "process has exited; its stdin is gone");
	if (p->ops->proc_stdin_write(p->p, data, len, &put, err, sizeof err) < 0)
		return luaL_error(L, "process stdin_write: %s", err);
	lua_pushinteger(L, (lua_Integer)put);
	return 1;
}

static int proc_close_stdin(lua_State *L)
{
	struct lproc *p = checkproc(L);
	char err[LVM_ERRLEN];
	if (p->p && p->ops->proc_close_stdin(p->p, err, sizeof err) < 0)
		return luaL_error(L, "process close_stdin: %s", err);
	return 0;
}

static int proc_pid(lua_State *L)
{
	struct lproc *p = checkproc(L);
	if (!p->p)
		return luaL_error(L, "process is closed");
	lua_pushinteger(L, p->ops->proc_pid(p->p));
	return 1;
}

static int proc_handle(lua_State *L)
{
	struct lproc *p = checkproc(L);
	if (!p->p)
		return luaL_error(L, "process is closed");
	lua_pushinteger(L, (lua_Integer)p->ops->proc_handle(p->p));
	return 1;
}

/* proc:stdout_stream() / proc:stderr_stream() */
static int proc_stream(lua_State *L)
{
	struct lproc *p = checkproc(L);
	bool out = lua_toboolean(L, lua_upvalueindex(1));
	struct vmm_stream_req r = {.kind = out ? VMM_STREAM_PROC_STDOUT : VMM_STREAM_PROC_STDERR};
	char detail[64];
	if (!p->p)
		return luaL_error(L, "process is closed");
	r.proc = p->p;
	snprintf(detail, sizeof detail, "handle=%llu",
	         (unsigned long long)p->ops->proc_handle(p->p));
	lua_getiuservalue(L, 1, 1);
	lstream_push_guest(L, -1, &r, out ? "proc_stdout_stream" : "proc_stderr_stream", detail,
	                   out ? "proc:stdout_stream" : "proc:stderr_stream");
	return 1;
}

/* proc:close(): SIGTERM, up to 2 s, then SIGKILL; no-op once waited. */
static int proc_close(lua_State *L)
{
	struct lproc *p = checkproc(L);
	struct vmm_exec_result res;
	bool done = false;
	char err[LVM_ERRLEN];
	if (!p->p)
		return 0;
	if (!p->consumed) {
		p->ops->proc_kill(p->p, SIGTERM, err, sizeof err);
		if (p->ops->proc_wait(p->p, 2000000000LL, &done, &res, err, sizeof err) == 0 && done)
			vmm_exec_result_free(&res);
	}
	p->ops->proc_free(p->p); /* SIGKILLs whatever is left */
	p->p = NULL;
	return 0;
}

static int proc_gc(lua_State *L)
{
	struct lproc *p = checkproc(L);
	if (p->p) {
		p->ops->proc_free(p->p);
		p->p = NULL;
	}
	return 0;
}

/* ---- snapshots (lsnapshot.c owns the userdata) ------------------------ */

/* The snapshot precondition: no live stream (tails, fd/process streams,
 * console reads). Raises the documented multi-line message, one line per
 * stream with its creation site, when there is one. */
static void refuse_live_streams(lua_State *L, int vm_idx)
{
	lua_Integer n;
	int list;
	lua_pushcfunction(L, lstream_live);
	lua_pushvalue(L, vm_idx);
	lua_call(L, 1, 1);
	list = lua_gettop(L);
	n = luaL_len(L, list);
	if (n == 0) {
		lua_pop(L, 1);
		return;
	}
	lua_pushfstring(L, "vm:snapshot() refused — file `%s` has live streams:",
	                global_string(L, "_provium_file"));
	for (lua_Integer i = 1; i <= n; i++) {
		char kind[64], detail[512], site[600];
		int top = lua_gettop(L), e = top + 1;
		lua_rawgeti(L, list, i);
		lua_getfield(L, e, "kind");
		lua_getfield(L, e, "detail");
		snprintf(kind, sizeof kind, "%s", lua_isstring(L, -2) ? lua_tostring(L, -2) : "stream");
		snprintf(detail, sizeof detail, "%s", lua_isstring(L, -1) ? lua_tostring(L, -1) : "");
		if (lua_getfield(L, e, "site") == LUA_TTABLE) {
			lua_getfield(L, -1, "file");
			lua_getfield(L, -2, "line");
			snprintf(site, sizeof site, " at %s:%lld",
			         lua_isstring(L, -2) ? lua_tostring(L, -2) : "?",
			         (long long)lua_tointeger(L, -1));
		} else {
			snprintf(site, sizeof site, " (creation site unknown)");
		}
		lua_settop(L, top);
		if (strchr(detail, '=') || !detail[0])
			lua_pushfstring(L, "\n  - %s(%s)%s", kind, detail, site);
		else
			lua_pushfstring(L, "\n  - %s(\"%s\")%s", kind, detail, site);
		lua_concat(L, 2);
	}
	lua_pushliteral(L, "\nClose the streams before snapshotting (or remove the snapshot).");
	lua_concat(L, 2);
	lua_error(L);
}

/* vm:snapshot([path]) -> Snapshot. Booted or Paused; the VM keeps its state. */
static int vm_snapshot(lua_State *L)
{
	struct lvm *v = checkvm(L, 1);
	const char *path;
	char err[1024];
	int rc;
	if (v->state != VM_BOOTED && v->state != VM_PAUSED)
		return luaL_error(L, "vm `%s`: cannot snapshot: vm is %s%s", v->name,
		                  state_titles[v->state], state_hints[v->state]);
	refuse_live_streams(L, 1);
	path = lua_isnoneornil(L, 2) ? lsnapshot_tmp_path(L, "snap", ".snap")
	                             : luaL_checkstring(L, 2);
	rc = v->ops->snapshot ? v->ops->snapshot(v->be, path, err, sizeof err) : VMM_UNSUPPORTED;
	if (rc == VMM_UNSUPPORTED)
		return unsupported(L, v, "snapshot");
	if (rc < 0)
		return luaL_error(L, "vm `%s`: snapshot: %s", v->name, err);
	lsnapshot_push(L, path, false);
	return 1;
}

/* vm:restore(snap_or_path): Created or Shutdown -> Booted. */
static int vm_restore(lua_State *L)
{
	struct lvm *v = checkvm(L, 1);
	const char *path = lsnapshot_checkpath(L, 2, false);
	char err[1024];
	int rc;
	if ((v->state != VM_CREATED && v->state != VM_SHUTDOWN) || !v->be)
		return luaL_error(L, "vm `%s`: cannot restore: vm is %s (restore needs Created or Shutdown)",
		                  v->name, v->be ? state_titles[v->state] : "closed");
	rc = v->ops->restore ? v->ops->restore(v->be, path, err, sizeof err) : VMM_UNSUPPORTED;
	if (rc == VMM_UNSUPPORTED)
		return unsupported(L, v, "restore");
	if (rc < 0)
		return luaL_error(L, "vm `%s`: restore: %s", v->name, err);
	v->state = VM_BOOTED;
	v->boot_ns = mono_ns();
	{
		/* the event reports what the snapshot's header restored */
		struct snap_header h = {0};
		char herr[256];
		bool have = snapfile_read_header(path, &h, herr, sizeof herr) == 0;
		lua_createtable(L, 0, 5);
		lua_pushstring(L, global_string(L, "_provium_file"));
		lua_setfield(L, -2, "file");
		lua_pushstring(L, v->name);
		lua_setfield(L, -2, "vm_name");
		lua_pushstring(L, have && h.profile && *h.profile ? h.profile : v->profile);
		lua_setfield(L, -2, "profile");
		lua_pushinteger(L, have ? (lua_Integer)h.memory : 0);
		lua_setfield(L, -2, "memory_bytes");
		if (have)
			snap_header_free(&h);
	}
	lua_pushinteger(L, v->cid);
	lua_setfield(L, -2, "cid");
	emit(L, "vm_spawned");
	return 0;
}

/* ---- registration ---------------------------------------------------- */

static const luaL_Reg vm_methods[] = {
	{"boot", vm_boot}, {"shutdown", vm_shutdown}, {"pause", vm_pause},
	{"resume", vm_resume}, {"reset", vm_reset}, {"power_button", vm_power_button},
	{"close", vm_close}, {"name", vm_name}, {"profile", vm_profile},
	{"state", vm_state}, {"cid", vm_cid}, {"is_quiescent", vm_is_quiescent},
	{"open_file_count", vm_open_file_count}, {"open_stream_count", vm_open_stream_count},
	{"run", vm_run}, {"run_async", vm_run_async}, {"read_file", vm_read_file},
	{"write_file", vm_write_file}, {"push_file", vm_push_file}, {"stat", vm_stat},
	{"exists", vm_exists}, {"listdir", vm_listdir}, {"mkdir", vm_mkdir},
	{"unlink", vm_unlink}, {"rename", vm_rename}, {"open_file", vm_open_file},
	{"_console_tail", vm_console_tail}, {"_reconnect", vm_reconnect},
	{"snapshot", vm_snapshot}, {"restore", vm_restore},
	{"tail_file", vm_tail_file}, {"fd_stream", vm_fd_stream},
	{"_live_streams", lstream_live},
	{NULL, NULL}
};

/* Need a guest kernel (or the agent's streams): "not supported" here. */
static const char *const vm_kernel_ops[] = {
	"attach_disk", "disk", "nic", NULL
};

static const luaL_Reg vm_meta[] = {
	{"__gc", vm_gc}, {"__close", vm_close}, {"__tostring", vm_tostring}, {NULL, NULL}
};

static const luaL_Reg file_methods[] = {
	{"read", file_read}, {"read_all", file_read_all}, {"write", file_write},
	{"seek", file_seek}, {"tell", file_tell}, {"fd", file_fd},
	{"close", file_close}, {"tail_stream", file_tail_stream}, {NULL, NULL}
};

static const luaL_Reg file_meta[] = {
	{"__gc", file_close}, {"__close", file_close}, {"__tostring", file_tostring}, {NULL, NULL}
};

static const luaL_Reg proc_methods[] = {
	{"wait", proc_wait}, {"kill", proc_kill}, {"signal", proc_kill},
	{"status", proc_status}, {"stdin_write", proc_stdin_write},
	{"close_stdin", proc_close_stdin}, {"pid", proc_pid}, {"handle", proc_handle},
	{"close", proc_close}, {NULL, NULL}
};

static const luaL_Reg proc_meta[] = {
	{"__gc", proc_gc}, {"__close", proc_close}, {NULL, NULL}
};

static const luaL_Reg result_methods[] = {
	{"ok", rr_ok}, {"assert_ok", rr_assert_ok}, {NULL, NULL}
};

static void new_class(lua_State *L, const char *name, const luaL_Reg *meta,
                      const luaL_Reg *methods)
{
	luaL_newmetatable(L, name);
	if (meta)
		luaL_setfuncs(L, meta, 0);
	lua_newtable(L);
	luaL_setfuncs(L, methods, 0);
	lua_setfield(L, -2, "__index");
}

void lvm_register(lua_State *L)
{
	new_class(L, VM_MT, vm_meta, vm_methods);
	lua_getfield(L, -1, "__index");
	for (int i = 0; vm_kernel_ops[i]; i++) {
		lua_pushstring(L, vm_kernel_ops[i]);
		lua_pushcclosure(L, vm_unsupported, 1);
		lua_setfield(L, -2, vm_kernel_ops[i]);
	}
	lconsole_register(L);
	lclock_register(L);
	lvmops_register(L);
	lworker_register(L);
	lua_pop(L, 2);
	lstream_register(L);
	new_class(L, FILE_MT, file_meta, file_methods);
	lua_pop(L, 1);
	new_class(L, PROC_MT, proc_meta, proc_methods);
	lua_getfield(L, -1, "__index");
	lua_pushboolean(L, 1);
	lua_pushcclosure(L, proc_stream, 1);
	lua_setfield(L, -2, "stdout_stream");
	lua_pushboolean(L, 0);
	lua_pushcclosure(L, proc_stream, 1);
	lua_setfield(L, -2, "stderr_stream");
	lua_pop(L, 2);
	new_class(L, RESULT_MT, NULL, result_methods);
	lua_pop(L, 1);
	lua_register(L, "_provium_vm_new", vm_new);
}
