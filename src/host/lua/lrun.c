/* lrun.c — commands in the guest: vm:run and vm:run_async, the RunResult
 * table they hand back (a plain table with the "provium.runresult"
 * metatable: ok(), assert_ok()) and the Process userdata
 * ("provium.process") run_async returns.
 *
 * vm:run builds an exec request (lvm_build_req, shared with vm:batch in
 * lvmops.c), bounds its timeout by the test's deadline and blocks until
 * the command ends. A Process is created closed-safe: the userdata exists
 * (and holds the VM in uservalue 1, the command in uservalue 3) before the
 * backend process is started. proc:wait / proc:status consume the result
 * once; it is then kept in uservalue 2 (proc:status reports it, a first
 * proc:wait after a status returns it). proc:wait is one-shot: a second
 * one raises. proc:close sends
 * SIGTERM, waits up to 2 s, then frees (SIGKILLs) what is left; __gc only
 * frees. Every Process is handed to lab.lua's auto-close registry.
 *
 * Memory: a backend vmm_exec_result is copied into a Lua table and freed
 * (lvm_push_result) before anything can raise. */
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <lua.h>
#include <lauxlib.h>

#include "errbuf.h"
#include "lua/lruntime.h"
#include "lua/lvm_priv.h"
#include "units.h"
#include "vmm/vmm.h"

#define RESULT_MT "provium.runresult"

#define build_req(L, v, async, r) (lua_settop(L, 3), lvm_build_req(L, v, async, 2, 3, r))

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
void lvm_push_result(lua_State *L, struct vmm_exec_result *res, const char *cmd)
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

/* Raise "<file:line>: command `<cmd>` failed: status ...\nstdout:\n...
 * \nstderr:\n..." unless ok; the position is the caller's. */
static int rr_assert_ok(lua_State *L)
{
	luaL_Buffer b;
	const char *status;
	luaL_checktype(L, 1, LUA_TTABLE);
	if (result_ok(L, 1)) {
		lua_settop(L, 1);
		return 1;
	}
	/* "file:line: " of the caller, as every t:assert* has. The buffer
	 * comes first: in Lua 5.4 luaL_buffinit pushes a placeholder, so a
	 * value pushed before it is not the top luaL_addvalue takes. */
	luaL_buffinit(L, &b);
	luaL_where(L, 1);
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

/* vm:run({"echo", "hi"}[, opts]) (the reference's `cmd_or_args`): turn
 * the argv array at ci into the command at ci and its args in the opts
 * at ai (a new table: the caller's is not changed). */
static void argv_first(lua_State *L, struct lvm *v, int ci, int ai)
{
	lua_Integer n = luaL_len(L, ci);
	if (n < 1 || !is_array(L, ci))
		luaL_error(L, "vm `%s`: run: an argv array needs the command first "
		           "({\"echo\", \"hi\"})", v->name);
	lua_createtable(L, (int)n - 1, 0);                     /* args */
	for (lua_Integer i = 2; i <= n; i++) {
		lua_geti(L, ci, i);
		lua_rawseti(L, -2, i - 1);
	}
	lua_newtable(L);                                       /* opts */
	if (!lua_isnoneornil(L, ai)) {
		luaL_checktype(L, ai, LUA_TTABLE);
		if (luaL_len(L, ai) > 0 || lua_getfield(L, ai, "args") != LUA_TNIL)
			luaL_error(L, "vm `%s`: run: args given twice (in the argv array and in "
			           "the second argument)", v->name);
		lua_pop(L, 1);
		lua_pushnil(L);
		while (lua_next(L, ai)) {
			lua_pushvalue(L, -2);
			lua_insert(L, -2);
			lua_settable(L, -4);
		}
	}
	lua_insert(L, -2);
	lua_setfield(L, -2, "args");
	lua_replace(L, ai);
	lua_geti(L, ci, 1);
	lua_replace(L, ci);
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
	if (lua_istable(L, ci))
		argv_first(L, v, ci, ai);
	if (lua_type(L, ci) != LUA_TSTRING)
		luaL_error(L, "vm `%s`: %s: the command must be a string (or an argv array), got %s",
		           v->name, async ? "run_async" : "run", luaL_typename(L, ci));
	cmd = lua_tostring(L, ci);
	lua_newtable(L);
	anchor = lua_gettop(L);
	if (!lua_isnoneornil(L, ai)) {
		if (!lua_istable(L, ai))
			luaL_error(L, "vm `%s`: %s: the second argument must be a table (args or "
			           "opts), got %s", v->name, async ? "run_async" : "run",
			           luaL_typename(L, ai));
		/* A pure array, the empty {} included, is direct exec with those
		 * args; any opts key makes it the opts form. */
		if (is_array(L, ai)) {
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
	struct lvm *v = lvm_check(L, 1);
	struct vmm_exec_req r;
	struct vmm_exec_result res;
	char err[LVM_ERRLEN];
	int64_t dl = lruntime_deadline_ns(), user;
	bool by_deadline = false;
	int rc;

	build_req(L, v, false, &r);
	lvm_need_booted(L, v, "run");
	user = r.timeout_ns;
	if (dl > 0) {
		int64_t left = dl - mono_now_ns();
		if (left < 0)
			left = 0;
		if (user < 0 || left < user) {
			r.timeout_ns = left;
			by_deadline = true;
		}
	}
	rc = v->ops->exec ? v->ops->exec(v->be, &r, &res, err, sizeof err) : VMM_UNSUPPORTED;
	if (rc == VMM_UNSUPPORTED)
		return lvm_unsupported(L, v, "run");
	if (rc < 0)
		return luaL_error(L, "vm `%s`: run `%s`: %s", v->name, lua_tostring(L, 2), err);
	if (by_deadline && res.status == VMM_TIMED_OUT) {
		vmm_exec_result_free(&res);
		lruntime_check_deadline_in(L, "vm:run");
		return luaL_error(L, "vm `%s`: run `%s`: the test's deadline passed", v->name,
		                  lua_tostring(L, 2));
	}
	lvm_push_result(L, &res, lua_tostring(L, 2));
	return 1;
}

/* ---- Process --------------------------------------------------------- */

static struct lproc *checkproc(lua_State *L)
{
	return luaL_checkudata(L, 1, PROC_MT);
}

static int vm_run_async(lua_State *L)
{
	struct lvm *v = lvm_check(L, 1);
	struct vmm_exec_req r;
	struct lproc *p;
	char err[LVM_ERRLEN];
	int rc;
	build_req(L, v, true, &r);
	lvm_need_booted(L, v, "run_async");
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
		return lvm_unsupported(L, v, "run_async");
	if (rc < 0)
		return luaL_error(L, "vm `%s`: run_async `%s`: %s", v->name, lua_tostring(L, 2), err);
	lvm_register_resource(L, -1, "process");
	return 1;
}

/* Store res as the consumed result (uservalue 2) and push it. */
static void proc_consume(lua_State *L, struct lproc *p, struct vmm_exec_result *res)
{
	lua_getiuservalue(L, 1, 3);
	lvm_push_result(L, res, lua_tostring(L, -1));
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
	int64_t end = timeout_ns >= 0 ? mono_now_ns() + timeout_ns : -1;
	for (;;) {
		int64_t slice = end >= 0 ? end - mono_now_ns() : -1, dl = lruntime_deadline_ns();
		if (end >= 0 && slice < 0)
			slice = 0;
		if (dl > 0 && (slice < 0 || dl - mono_now_ns() < slice))
			slice = dl - mono_now_ns() > 0 ? dl - mono_now_ns() : 0;
		if (p->ops->proc_wait(p->p, slice, &done, &res, err, sizeof err) < 0)
			luaL_error(L, "process wait: %s", err);
		if (done) {
			proc_consume(L, p, &res);
			return true;
		}
		if (dl > 0 && mono_now_ns() >= dl)
			lruntime_check_deadline_in(L, op);
		if (end >= 0 && mono_now_ns() >= end)
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
	if (p->waited)
		return luaL_error(L, "proc:wait: this process was already waited for (wait is "
		                  "one-shot); keep the RunResult the first proc:wait returned");
	if (p->consumed) {
		p->waited = true;
		lua_getiuservalue(L, 1, 2);
		return 1;
	}
	if (!p->p)
		return luaL_error(L, "process is closed");
	if (proc_wait_for(L, p, timeout, "proc:wait")) {
		p->waited = true;
		return 1;
	}
	/* Timed out: kill it, as the agent does, and report timed_out. */
	if (p->ops->proc_kill(p->p, SIGKILL, err, sizeof err) < 0)
		return luaL_error(L, "process kill: %s", err);
	proc_wait_for(L, p, -1, "proc:wait");
	p->waited = true;
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

int lvm_parse_signal(lua_State *L, int idx)
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
	if (lua_type(L, idx) != LUA_TSTRING)
		return luaL_error(L, "signal must be nil, an integer or a signal name, got %s",
		                  lua_type(L, idx) == LUA_TNUMBER ? "a non-integer number"
		                                                  : luaL_typename(L, idx));
	s = lua_tostring(L, idx);
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
	int sig = lvm_parse_signal(L, 2);
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
	if (p->p && !p->consumed && p->ops->proc_close_stdin(p->p, err, sizeof err) < 0)
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

/* The stream of a consumed process: its RunResult's bytes, then EOF. */
struct done_ctx {
	char *data;               /* NULL once handed out */
	size_t len;
};

static int done_next(void *ctx, int64_t timeout_ns, char **data, size_t *len, bool *eof,
                     char *err, size_t errlen)
{
	struct done_ctx *c = ctx;
	(void)timeout_ns, (void)err, (void)errlen;
	if (c->data && c->len) {
		*data = c->data;
		*len = c->len;
		c->data = NULL;
		return 1;
	}
	*eof = true;
	return 1;
}

static void done_close(void *ctx)
{
	struct done_ctx *c = ctx;
	free(c->data);
	free(c);
}

static const struct lstream_src done_src = {done_next, done_close};

/* proc:stdout_stream() / proc:stderr_stream(). After proc:wait the agent's
 * slot is gone: the stream replays the consumed RunResult's bytes. */
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
	if (p->consumed) {
		struct done_ctx *c;
		size_t len;
		const char *bytes;
		lstream_new(L, -1, out ? "proc_stdout_stream" : "proc_stderr_stream", detail,
		            "stream closed");
		lua_getiuservalue(L, 1, 2);
		lua_getfield(L, -1, out ? "stdout" : "stderr");
		bytes = lua_tolstring(L, -1, &len);
		if (!(c = calloc(1, sizeof(*c))) || (len && !(c->data = malloc(len)))) {
			free(c);
			return luaL_error(L, "out of memory");
		}
		if (len)
			memcpy(c->data, bytes, len);
		c->len = len;
		lua_pop(L, 2);
		lstream_attach(L, -1, &done_src, c);
		return 1;
	}
	lstream_push_guest(L, -1, &r, out ? "proc_stdout_stream" : "proc_stderr_stream", detail,
	                   out ? "proc:stdout_stream" : "proc:stderr_stream");
	return 1;
}

/* proc:close(): SIGTERM, up to 2 s, then SIGKILL; no-op once waited. The
 * 2 s end at the test's deadline (a teardown running late frees at once). */
static int proc_close(lua_State *L)
{
	struct lproc *p = checkproc(L);
	struct vmm_exec_result res;
	bool done = false, cut = false;
	char err[LVM_ERRLEN];
	int64_t wait = 2000000000LL, dl = lruntime_deadline_ns();
	if (!p->p)
		return 0;
	if (dl != 0 && dl - mono_now_ns() < wait) {
		wait = dl - mono_now_ns();
		cut = true;
	}
	/* A paused guest cannot answer a kill or a wait: only the host side
	 * is freed (the Process page's 2 s bound holds). */
	if (p->consumed || p->vm->state == VM_PAUSED) {
		cut = false;
	} else if (wait > 0) {
		p->ops->proc_kill(p->p, SIGTERM, err, sizeof err);
		if (p->ops->proc_wait(p->p, wait, &done, &res, err, sizeof err) == 0 && done)
			vmm_exec_result_free(&res);
	}
	p->ops->proc_free(p->p); /* SIGKILLs whatever is left */
	p->p = NULL;
	if (cut && !done)
		lruntime_check_deadline_in(L, "proc:close");
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

/* ---- registration ---------------------------------------------------- */

static const luaL_Reg run_vm_methods[] = {
	{"run", vm_run}, {"run_async", vm_run_async}, {NULL, NULL}
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

void lrun_register(lua_State *L)
{
	luaL_setfuncs(L, run_vm_methods, 0);
	lvm_new_class(L, PROC_MT, proc_meta, proc_methods);
	lua_getfield(L, -1, "__index");
	lua_pushboolean(L, 1);
	lua_pushcclosure(L, proc_stream, 1);
	lua_setfield(L, -2, "stdout_stream");
	lua_pushboolean(L, 0);
	lua_pushcclosure(L, proc_stream, 1);
	lua_setfield(L, -2, "stderr_stream");
	lua_pop(L, 2);
	lvm_new_class(L, RESULT_MT, NULL, result_methods);
	lua_pop(L, 1);
}
