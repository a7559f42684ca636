/* lvm.c — the Lua binding of one VM ("provium.vm"): its creation from a
 * profile and boot opts, its state machine and lifecycle, snapshot /
 * restore, and the registration of its metatable. The VM's other methods
 * live with the objects they hand out: run / run_async, RunResult and
 * Process in lrun.c; file ops and File in lfile.c; streams, console,
 * clock, syscall/batch and workers in the files lvm_priv.h lists.
 *
 * A VM userdata owns one backend VM (vmm.h) and its state machine:
 *
 *     Created --boot--> Booted --pause--> Paused --resume--> Booted
 *                         |--reset--> Booted
 *                         |--shutdown / power_button--> Shutdown
 *     (shutdown from any state; close = shutdown + free the backend)
 *
 * The binding checks the state before every backend call and raises
 *     vm `a`: cannot run: vm is Created (not booted: boot it first)
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
#include "profbuild.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <lua.h>
#include <lauxlib.h>

#include "errbuf.h"
#include "lua/llab.h"
#include "lua/lvm_priv.h"
#include "units.h"
#include "vmm/vmm.h"
#include "vmm/qemu_vm.h"
#include "lua/lsnapshot.h"
#include "snap/snapfile.h"

#define DEFAULT_MEMORY (512ull << 20)

static const char *const state_names[] = {"created", "booted", "paused", "shutdown", "dead"};
static const char *const state_titles[] = {"Created", "Booted", "Paused", "Shutdown", "Dead"};
/* After "vm is <Title>": the wording names what to do next (the original's
 * phrases: "not booted", "already booted", "paused; use resume()",
 * "shutdown; create a new one", "died; create a new one"). */
static const char *const state_hints[] = {
	" (not booted: boot it first)", "", " (paused: use resume() first)",
	" (shutdown is final: create a new VM)", " (the VM died: create a new VM)",
};


/* ---- shared helpers ------------------------------------------------ */

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

/* Raise unless v is Booted. */
void need_booted(lua_State *L, const struct lvm *v, const char *op)
{
	if (v->state != VM_BOOTED)
		lvm_state_error(L, v, op);
}

/* The state to report: a Booted or Paused VM whose guest died under it
 * (QEMU exited) is "dead"; vm:shutdown()/close() still end it. */
static enum vm_state shown_state(const struct lvm *v)
{
	if ((v->state == VM_BOOTED || v->state == VM_PAUSED) && v->be && v->ops->gone &&
	    v->ops->gone(v->be))
		return VM_DEAD;
	return v->state;
}

/* Raise "vm `a`: cannot <op>: vm is <State> (<what to do>)"; a VM whose
 * guest died under it is Dead. */
int lvm_state_error(lua_State *L, const struct lvm *v, const char *op)
{
	enum vm_state st = shown_state(v);
	const char *hint = state_hints[st];
	if (st == VM_BOOTED)
		hint = !strcmp(op, "boot") ? " (already booted)" :
		       !strcmp(op, "resume") ? " (not paused)" : "";
	return luaL_error(L, "vm `%s`: cannot %s: vm is %s%s", v->name, op,
	                  state_titles[st], hint);
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

const char *lvm_global_string(lua_State *L, const char *name)
{
	const char *s;
	lua_getglobal(L, name);
	s = lua_tostring(L, -1);  /* stays alive: globals are not collected mid-call */
	lua_pop(L, 1);
	return s;
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
		"files", "disks", "hotplug", NULL};
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
			           "rng_seed, initial_time, files, disks or hotplug)",
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
	if (o->memory) {
		/* integers are bytes (the reference's `int (bytes)`): 512 is a
		 * mistake to name here, not a guest that dies inside QEMU */
		char e[256];
		if (check_guest_memory(o->memory, lua_tostring(L, -1), e, sizeof e) < 0)
			luaL_error(L, "vm `%s`: boot opt memory: %s", v->name, e);
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
	/* hotplug slots: the opt, else the file's default (runner.c: true
	 * when the file mentions attach_disk or :attach(, and in fixture
	 * builds; nil, e.g. the REPL: true) */
	if (lua_getfield(L, idx, "hotplug") != LUA_TNIL) {
		if (!lua_isboolean(L, -1))
			luaL_error(L, "vm `%s`: boot opt hotplug must be a boolean", v->name);
		o->no_hotplug = !lua_toboolean(L, -1);
	} else {
		lua_getglobal(L, "_provium_hotplug_default");
		o->no_hotplug = lua_isboolean(L, -1) && !lua_toboolean(L, -1);
		lua_pop(L, 1);
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
	const char *vmm = lvm_global_string(L, "_provium_vmm");
	const char *run_dir = lvm_global_string(L, "_provium_run_dir");
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
	/* the profile's build hook, before anything uses its outputs */
	if (lua_getfield(L, 5, "build") == LUA_TSTRING) {
		lua_getfield(L, 5, "build_out");
		lua_getfield(L, 5, "build_dir");
		if (profbuild_ensure(lua_tostring(L, -3), lua_tostring(L, -2), lua_tostring(L, -1),
		                     err, sizeof err) < 0)
			return luaL_error(L, "vm `%s`: profile `%s`: %s", name, profile, err);
		lua_pop(L, 2);
	}
	lua_pop(L, 1);
	/* Creation-time opts: validated now, kept (copied) for boot. */
	lua_newtable(L);                                     /* 6 */
	if (!lua_isnil(L, 3))
		copy_fields(L, 6, 3);
	parse_boot_opts(L, 6, v, &bo);
	ldisk_boot_opts(L, v, 6, 5, &bo);
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

/* A backend without vsock (every one here: the agent rides virtio-serial)
 * reports CID 0; the VM still gets a CID of its own to report, as vsock
 * would hand out: guest CIDs start at 3, one per boot or restore, unique
 * within this runner. Nothing connects to it. */
static uint32_t nominal_cid(void)
{
	static uint32_t next = 3;
	return next++;
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
		return lvm_state_error(L, v, "boot");
	push_profile(L, v, v->profile);                      /* 3 */
	profile_view(L, 3, v->profile, &pv);
	lua_newtable(L);                                     /* 4: merged opts */
	lua_getiuservalue(L, 1, 1);
	copy_fields(L, 4, 5);
	lua_pop(L, 1);
	if (!lua_isnil(L, 2))
		copy_fields(L, 4, 2);
	parse_boot_opts(L, 4, v, &bo);
	ldisk_boot_opts(L, v, 4, 3, &bo);
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
	v->boot_ns = mono_now_ns();
	v->cid = info.cid ? info.cid : nominal_cid();
	lua_createtable(L, 0, 5);
	lua_pushstring(L, lvm_global_string(L, "_provium_file"));
	lua_setfield(L, -2, "file");
	lua_pushstring(L, v->name);
	lua_setfield(L, -2, "vm_name");
	lua_pushstring(L, v->profile);
	lua_setfield(L, -2, "profile");
	lua_pushinteger(L, (lua_Integer)(info.memory_bytes ? info.memory_bytes : bo.memory));
	lua_setfield(L, -2, "memory_bytes");
	lua_pushinteger(L, v->cid);
	lua_setfield(L, -2, "cid");
	emit(L, "vm_spawned");
	ldisk_boot_register(L, 1, &bo);
	lua_settop(L, 1);
	ldisk_plug_all(L, 1, "boot");
	lnet_hook(L, 1, "_provium_net_vm_up");
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
	lstream_close_all(L, 1, true);  /* streams follow guest state: end them first */
	v->state = VM_SHUTDOWN;
	if (was_up && stop && stop(v->be, err, sizeof err) < 0) {
		lua_pushfstring(L, "vm `%s`: %s: %s", v->name, op, err);
		failed = true;
	}
	if (was_up) {
		lua_createtable(L, 0, 3);
		lua_pushstring(L, lvm_global_string(L, "_provium_file"));
		lua_setfield(L, -2, "file");
		lua_pushstring(L, v->name);
		lua_setfield(L, -2, "vm_name");
		lua_pushinteger(L, mono_now_ns() - v->boot_ns);
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

void lvm_power_cut(lua_State *L, struct lvm *v)
{
	if (v->state != VM_BOOTED && v->state != VM_PAUSED)
		lvm_state_error(L, v, "power_cut");
	if (!v->ops->power_cut)
		unsupported(L, v, "power_cut");
	do_stop(L, v, v->ops->power_cut, "power_cut");
}

static int vm_shutdown(lua_State *L)
{
	do_shutdown(L, checkvm(L, 1));
	return 0;
}

/* vm:_halt() (lab.lua, not documented): a shutdown without the guest's
 * own poweroff, for a guest about to be restored over or dropped. */
static int vm_halt(lua_State *L)
{
	struct lvm *v = checkvm(L, 1);
	do_stop(L, v, v->ops->halt ? v->ops->halt : v->ops->shutdown, "shutdown");
	return 0;
}

static void lifecycle(lua_State *L, struct lvm *v, const char *op, enum vm_state need,
                      lifecycle_fn fn, enum vm_state to)
{
	char err[LVM_ERRLEN];
	int rc;
	if (v->state != need)
		lvm_state_error(L, v, op);
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
	lua_settop(L, 1);
	lnet_hook(L, 1, "_provium_net_vm_up");  /* NICs attached while it was paused */
	return 0;
}

static int vm_reset(lua_State *L)
{
	struct lvm *v = checkvm(L, 1);
	if (v->state == VM_BOOTED)
		lconsole_reset_begin(v);
	lifecycle(L, v, "reset", VM_BOOTED, v->ops->reset, VM_BOOTED);
	lua_settop(L, 1);
	lnet_hook(L, 1, "_provium_net_vm_up");  /* the rebooted guest lost its addresses */
	return 0;
}

/* vm:power_button(): the backend's power_button op (qemu: ACPI power
 * button via QMP system_powerdown; the guest powers itself off and QEMU
 * exits), Booted -> Shutdown. */
static int vm_power_button(lua_State *L)
{
	struct lvm *v = checkvm(L, 1);
	if (v->state != VM_BOOTED)
		return lvm_state_error(L, v, "power_button");
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

/* vm:_fault_frame(mode) — internal, for tests: the guest agent answers
 * with hostile bytes (qemu_vm_fault_frame); raises with the host's
 * rejection, after which the VM is dead. */
static int vm_fault_frame(lua_State *L)
{
	struct lvm *v = checkvm(L, 1);
	const char *mode = luaL_checkstring(L, 2);
	char err[LVM_ERRLEN];
	need_booted(L, v, "_fault_frame");
	if (v->ops != &vmm_qemu_ops)
		return unsupported(L, v, "_fault_frame");
	if (qemu_vm_fault_frame(v->be, mode, err, sizeof err) < 0)
		return luaL_error(L, "vm `%s`: _fault_frame: %s", v->name, err);
	return luaL_error(L, "vm `%s`: _fault_frame: the agent answered `%s` normally", v->name, mode);
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
		do_stop(L, v, v->ops->discard ? v->ops->discard : v->ops->shutdown, "shutdown");
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
static int vm_state(lua_State *L) { lua_pushstring(L, state_names[shown_state(checkvm(L, 1))]); return 1; }

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
	lua_pushfstring(L, "provium: vm:snapshot() refused — file `%s` has live streams:",
	                lvm_global_string(L, "_provium_file"));
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
		if (!strcmp(kind, "console"))   /* the console reference's wording */
			lua_pushfstring(L, "\n  - live console stream (console:read())%s", site);
		else if (strchr(detail, '=') || !detail[0])
			lua_pushfstring(L, "\n  - %s(%s)%s", kind, detail, site);
		else
			lua_pushfstring(L, "\n  - %s(\"%s\")%s", kind, detail, site);
		lua_concat(L, 2);
	}
	/* the streams page's closing line, then how to close one */
	lua_pushliteral(L, "\nClose the streams before snapshotting (or remove the snapshot)."
	                   "\n(stream:close() ends each one.)");
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
		return lvm_state_error(L, v, "snapshot");
	lnet_hook(L, 1, "_provium_net_before_snapshot");
	refuse_live_streams(L, 1);
	if (v->open_files)   /* the precondition is quiescence: no open files either */
		return luaL_error(L, "vm `%s`: cannot snapshot: %d open file handle(s) "
		                  "(close them before snapshotting: file:close())",
		                  v->name, v->open_files);
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
	if (v->ops->restore_images) {
		/* the VM's own profile decides the images of its root and disks */
		struct vmm_boot_opts bo;
		memset(&bo, 0, sizeof bo);
		lua_settop(L, 2);
		push_profile(L, v, v->profile);                      /* 3 */
		lua_newtable(L);                                     /* 4: no boot opts */
		ldisk_boot_opts(L, v, 4, 3, &bo);
		if (v->ops->restore_images(v->be, bo.disks, bo.ndisks, err, sizeof err) < 0)
			return luaL_error(L, "vm `%s`: restore: %s", v->name, err);
		lua_settop(L, 2);
	}
	rc = v->ops->restore ? v->ops->restore(v->be, path, err, sizeof err) : VMM_UNSUPPORTED;
	if (rc == VMM_UNSUPPORTED)
		return unsupported(L, v, "restore");
	if (rc < 0)
		return luaL_error(L, "vm `%s`: restore: %s", v->name, err);
	v->state = VM_BOOTED;
	v->boot_ns = mono_now_ns();
	v->cid = nominal_cid();
	{
		/* the event reports what the snapshot's header restored */
		struct snap_header h = {0};
		char herr[256];
		bool have = snapfile_read_header(path, &h, herr, sizeof herr) == 0;
		lua_createtable(L, 0, 5);
		lua_pushstring(L, lvm_global_string(L, "_provium_file"));
		lua_setfield(L, -2, "file");
		lua_pushstring(L, v->name);
		lua_setfield(L, -2, "vm_name");
		lua_pushstring(L, have && h.profile && *h.profile ? h.profile : v->profile);
		lua_setfield(L, -2, "profile");
		lua_pushinteger(L, have ? (lua_Integer)h.memory : 0);
		lua_setfield(L, -2, "memory_bytes");
		lua_pushinteger(L, v->cid);
		lua_setfield(L, -2, "cid");
		emit(L, "vm_spawned");
		/* the snapshot's boot-time disks come back as Disks (each on a new
		 * copy-on-write overlay of the captured one) */
		lua_settop(L, 2);
		if (have && h.disks)
			lua_pushstring(L, h.disks);              /* 3 */
		if (have)
			snap_header_free(&h);
		if (lua_gettop(L) == 3)
			ldisk_restore_register(L, 1, lua_tostring(L, 3));
	}
	ldisk_plug_all(L, 1, "restore");
	lua_settop(L, 1);
	lnet_hook(L, 1, "_provium_net_vm_up");
	return 0;
}

/* ---- registration ---------------------------------------------------- */

static const luaL_Reg vm_methods[] = {
	{"boot", vm_boot}, {"shutdown", vm_shutdown}, {"_halt", vm_halt}, {"pause", vm_pause},
	{"resume", vm_resume}, {"reset", vm_reset}, {"power_button", vm_power_button},
	{"close", vm_close}, {"name", vm_name}, {"profile", vm_profile},
	{"state", vm_state}, {"cid", vm_cid}, {"is_quiescent", vm_is_quiescent},
	{"open_file_count", vm_open_file_count}, {"open_stream_count", vm_open_stream_count},
	{"_console_tail", vm_console_tail}, {"_reconnect", vm_reconnect},
	{"_fault_frame", vm_fault_frame},
	{"snapshot", vm_snapshot}, {"restore", vm_restore},
	{"_live_streams", lstream_live},
	{NULL, NULL}
};

static const luaL_Reg vm_meta[] = {
	{"__gc", vm_gc}, {"__close", vm_close}, {"__tostring", vm_tostring}, {NULL, NULL}
};

int lvm_push_vm_handle(lua_State *L, const char *mt)
{
	lvm_check(L, 1);
	lua_newuserdatauv(L, 1, 1);
	luaL_setmetatable(L, mt);
	lua_pushvalue(L, 1);
	lua_setiuservalue(L, -2, 1);
	return 1;
}

void lvm_new_class(lua_State *L, const char *name, const luaL_Reg *meta,
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
	lvm_new_class(L, VM_MT, vm_meta, vm_methods);
	lua_getfield(L, -1, "__index");
	lrun_register(L);
	lfile_register(L);
	ldisk_register(L);
	lnet_register(L);
	lconsole_register(L);
	lclock_register(L);
	lvmops_register(L);
	lworker_register(L);
	lua_pop(L, 2);
	lstream_register(L);
	lua_register(L, "_provium_vm_new", vm_new);
}
