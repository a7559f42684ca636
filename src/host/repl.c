/* repl.c — `provium repl [PROFILE] [--name NAME] [--fixture PATH]`: one VM
 * and an interactive Lua prompt against it.
 *
 * The Lua state is a test file's (lstate_new(): the same globals,
 * modules and preludes), with a root lab in the global `provium` and the
 * VM in the global `vm`: cold-booted from PROFILE under NAME (default
 * `repl`), or restored through provium:vm_fixture(PATH) (the fixture's
 * snapshot names the VM and its profile; PROFILE, when given, must exist).
 *
 * The loop reads stdin line by line (lineedit.h: libedit line editing and
 * a history file on a terminal, plain lines otherwise, so it is
 * scriptable):
 *     `.exit` or EOF           leave: close the root lab (the VM shuts down)
 *     a line                   tried as `return <line>` first, then as a
 *                              statement; an incomplete chunk reads more
 *                              lines ("'<eof>'" syntax errors, as lua.c)
 *     results                  printed to stdout, tab-separated; tables
 *                              without __tostring as JSON when they encode
 *     errors                   printed to stderr; the loop goes on
 * Prompts ("> ", ">> ") are written only when stdin is a terminal. SIGINT
 * interrupts the running line (a Lua hook raises "interrupted"; an op
 * waiting on the guest gives up through interrupt.h, the guest side is
 * abandoned) or drops the line being typed; it never ends the session,
 * and never reaches QEMU (its own process group, qemu_launch.c).
 * SIGTERM/SIGHUP interrupt too, then leave the loop and shut the VM down.
 *
 * Exit status: 0 after `.exit`/EOF, 1 when the VM could not be booted or
 * restored, 2 for usage and config errors, 128+N after signal N (SIGTERM,
 * SIGHUP). Messages: `provium: ...` on
 * stderr. Events go to /dev/null. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lua.h>

#include "cli.h"
#include "config.h"
#include "fixture/cache.h"
#include "interrupt.h"
#include "lineedit.h"
#include "preflight.h"
#include "repl.h"
#include "lua/lstate.h"
#include "runner.h"
#include "tempfile.h"
#include "vmm/qemu_spare.h"

struct repl_args {
	const char *profile, *name, *fixture, *config;
	enum vmm_kind vmm;
	bool no_preflight;
};

static volatile sig_atomic_t g_interrupted, g_terminate;

static void on_sigint(int sig)
{
	(void)sig;
	g_interrupted = 1;
	intr_request();              /* a backend wait in progress gives up */
}

/* SIGTERM/SIGHUP: interrupt what runs, leave the loop, close the VM.
 * Installed SA_RESETHAND: a second one takes the default action (and
 * QEMU dies with us by PDEATHSIG). */
static void on_sigterm(int sig)
{
	g_terminate = sig;
	g_interrupted = 1;
	intr_request();
}

/* Count hook armed while a line runs: raise once SIGINT has arrived. */
static void interrupt_hook(lua_State *L, lua_Debug *ar)
{
	(void)ar;
	if (g_interrupted) {
		g_interrupted = 0;
		luaL_error(L, "interrupted");
	}
}

static int usage(const char *msg)
{
	fprintf(stderr, "provium: repl: %s\n", msg);
	fprintf(stderr, "usage: provium repl <PROFILE> [--name NAME] [--fixture PATH] "
	        "[--vmm qemu|local] [--config PATH] [--no-preflight]\n");
	return 2;
}

/* The value of flag `--x V` or `--x=V` at rest[*i], advancing *i; NULL
 * when rest[*i] is not that flag. *missing set when V is absent. */
static const char *flag_value(const struct cli_opts *o, size_t *i, const char *flag, bool *missing)
{
	const char *w = o->rest[*i];
	size_t n = strlen(flag);
	if (strncmp(w, flag, n))
		return NULL;
	if (w[n] == '=')
		return w + n + 1;
	if (w[n])
		return NULL;
	if (*i + 1 >= o->nrest) {
		*missing = true;
		return NULL;
	}
	return o->rest[++*i];
}

/* 0, or the exit status of a usage error (printed). */
static int parse_args(const struct cli_opts *o, struct repl_args *a)
{
	memset(a, 0, sizeof *a);
	a->name = "repl";
	a->vmm = o->vmm;
	a->config = o->config_path;
	a->no_preflight = o->no_preflight;
	for (size_t i = 0; i < o->nrest; i++) {
		const char *w = o->rest[i], *v;
		bool missing = false;
		if ((v = flag_value(o, &i, "--name", &missing)))
			a->name = v;
		else if ((v = flag_value(o, &i, "--fixture", &missing)))
			a->fixture = v;
		else if ((v = flag_value(o, &i, "--config", &missing)))
			a->config = v;
		else if ((v = flag_value(o, &i, "--vmm", &missing))) {
			if (!strcmp(v, "local"))
				a->vmm = VMM_LOCAL;
			else if (!strcmp(v, "qemu"))
				a->vmm = VMM_QEMU;
			else
				return usage("--vmm must be `qemu` or `local`");
		} else if (missing) {
			char m[256];
			snprintf(m, sizeof m, "%s needs a value", w);
			return usage(m);
		} else if (!strcmp(w, "--no-preflight")) {
			a->no_preflight = true;
		} else if (w[0] == '-') {
			char m[256];
			snprintf(m, sizeof m, "unknown flag `%s`", w);
			return usage(m);
		} else if (!a->profile) {
			a->profile = w;
		} else {
			return usage("too many arguments (one PROFILE at most)");
		}
	}
	if (!a->profile && !a->fixture)
		return usage("missing PROFILE (optional only with --fixture)");
	if (!*a->name)
		return usage("--name must not be empty");
	return 0;
}

/* The first profile by sorted name, preferring ones from provium.toml
 * over the built-in `default`. */
static const char *first_profile(const struct config *cfg)
{
	const char *best = NULL;
	bool best_builtin = true;
	for (size_t i = 0; i < cfg->nprofiles; i++) {
		const struct profile *p = &cfg->profiles[i];
		if (!best || (best_builtin && !p->builtin) ||
		    (best_builtin == p->builtin && strcmp(p->name, best) < 0)) {
			best = p->name;
			best_builtin = p->builtin;
		}
	}
	return best;
}

static bool has_profile(const struct config *cfg, const char *name)
{
	for (size_t i = 0; i < cfg->nprofiles; i++)
		if (!strcmp(cfg->profiles[i].name, name))
			return true;
	return false;
}

/* Protected: provium = root lab; vm = the VM (booted or restored). */
static int make_vm(lua_State *L)
{
	const struct repl_args *a = lua_touserdata(L, 1);
	lua_getglobal(L, "_provium_new_root");
	lua_call(L, 0, 1);
	lua_pushvalue(L, -1);
	lua_setglobal(L, "provium");
	if (a->fixture) {
		lua_getfield(L, -1, "vm_fixture");
		lua_pushvalue(L, -2);
		lua_pushstring(L, a->fixture);
		lua_call(L, 2, 1);
	} else {
		lua_getfield(L, -1, "vm");
		lua_pushvalue(L, -2);
		lua_pushstring(L, a->name);
		lua_pushstring(L, a->profile);
		lua_call(L, 3, 1);
		lua_getfield(L, -1, "boot");
		lua_insert(L, -2);
		lua_call(L, 1, 1);
	}
	lua_setglobal(L, "vm");
	return 0;
}

/* Protected: print the values at 2..top to stdout, tab-separated. A
 * table without __tostring prints as JSON when json.encode takes it. */
static int print_values(lua_State *L)
{
	int n = lua_gettop(L);
	for (int i = 1; i <= n; i++) {
		size_t len;
		const char *s = NULL;
		if (lua_type(L, i) == LUA_TTABLE && !luaL_getmetafield(L, i, "__tostring")) {
			lua_getglobal(L, "json");
			if (lua_istable(L, -1) && lua_getfield(L, -1, "encode") == LUA_TFUNCTION) {
				lua_pushvalue(L, i);
				if (lua_pcall(L, 1, 1, 0) == LUA_OK && lua_type(L, -1) == LUA_TSTRING)
					s = lua_tolstring(L, -1, &len);
			}
		} else if (lua_type(L, i) == LUA_TTABLE) {
			lua_pop(L, 1);   /* the __tostring metafield */
		}
		if (!s)
			s = luaL_tolstring(L, i, &len);
		if (i > 1)
			fputc('\t', stdout);
		fwrite(s, 1, len, stdout);
	}
	if (n > 0)
		fputc('\n', stdout);
	return 0;
}

/* Is the status/message at the top a syntax error that more input could
 * complete (lua.c's test)? */
static bool incomplete(lua_State *L, int status)
{
	static const char eof[] = "<eof>";
	size_t len;
	const char *msg;
	if (status != LUA_ERRSYNTAX)
		return false;
	msg = lua_tolstring(L, -1, &len);
	return msg && len >= sizeof eof - 1 && !strcmp(msg + len - (sizeof eof - 1), eof);
}

/* Compile src as "return <src>", else as statements. Pushes the function
 * (LUA_OK) or the error message. */
static int compile(lua_State *L, const char *src, size_t len)
{
	int status;
	lua_pushfstring(L, "return %s", src);
	status = luaL_loadbufferx(L, lua_tostring(L, -1), lua_rawlen(L, -1), "=stdin", "t");
	lua_remove(L, -2);
	if (status == LUA_OK)
		return LUA_OK;
	lua_pop(L, 1);
	return luaL_loadbufferx(L, src, len, "=stdin", "t");
}

/* Run the compiled function at the top; print results or the error. */
static void run_line(lua_State *L)
{
	int base = lua_gettop(L) - 1, status;
	g_interrupted = 0;
	intr_clear();
	lua_sethook(L, interrupt_hook, LUA_MASKCOUNT, 1000);
	status = lua_pcall(L, 0, LUA_MULTRET, 0);
	lua_sethook(L, NULL, 0, 0);
	if (status != LUA_OK) {
		const char *msg = lua_tostring(L, -1);
		fprintf(stderr, "error: %s\n", msg ? msg : luaL_typename(L, -1));
		if ((intr_pending() || g_interrupted) && !g_terminate)
			fprintf(stderr, "interrupted (Ctrl-C): the VM is still up\n");
	} else if (lua_gettop(L) > base) {
		lua_pushcfunction(L, print_values);
		lua_insert(L, base + 1);
		if (lua_pcall(L, lua_gettop(L) - base - 1, 0, 0) != LUA_OK)
			fprintf(stderr, "error: printing the result: %s\n", lua_tostring(L, -1));
	}
	lua_settop(L, base);
	fflush(stdout);
	fflush(stderr);
}

/* The read-eval-print loop; returns at `.exit`, EOF or SIGTERM/SIGHUP. */
static void loop(lua_State *L)
{
	bool tty = isatty(STDIN_FILENO), editing = le_editing();
	char *line = NULL;
	char *chunk = NULL;          /* the lines of an unfinished chunk; nothing */
	size_t chunk_len = 0;        /* below raises while it is held */

	while (!g_terminate) {
		size_t n;
		bool interrupted;
		const char *prompt = chunk ? ">> " : "> ";
		if (tty && !editing) {
			fputs(prompt, stdout);
			fflush(stdout);
		}
		free(line);
		line = le_read(tty ? prompt : "", &interrupted);
		if (!line) {
			if (interrupted && !g_terminate) {
				/* Ctrl-C at the prompt: drop what was typed */
				g_interrupted = 0;
				intr_clear();
				free(chunk);
				chunk = NULL;
				chunk_len = 0;
				fputc('\n', stdout);
				continue;
			}
			break;
		}
		n = strlen(line);
		le_add(line);
		{
			const char *s = line;
			while (*s == ' ' || *s == '\t')
				s++;
			if (!strncmp(s, ".exit", 5) && !s[5 + strspn(s + 5, " \t\r")]) {
				free(chunk);    /* an unfinished chunk is dropped */
				chunk = NULL;
				break;
			}
			if (!*s && !chunk)
				continue;
		}
		if (!chunk) {
			chunk = strdup(line);
			chunk_len = n;
		} else {
			char *nc = realloc(chunk, chunk_len + n + 2);
			if (nc) {
				chunk = nc;
				chunk[chunk_len++] = '\n';
				memcpy(chunk + chunk_len, line, n + 1);
				chunk_len += n;
			}
		}
		if (!chunk) {
			fprintf(stderr, "error: out of memory\n");
			continue;
		}
		{
			int status = compile(L, chunk, chunk_len);
			if (status != LUA_OK && incomplete(L, status)) {
				lua_pop(L, 1);
				continue;   /* read more lines */
			}
			free(chunk);
			chunk = NULL;
			chunk_len = 0;
			if (status != LUA_OK) {
				fprintf(stderr, "error: %s\n", lua_tostring(L, -1));
				lua_pop(L, 1);
				fflush(stderr);
				continue;
			}
			run_line(L);
		}
	}
	if (chunk) {
		/* EOF inside an unfinished chunk: report it as Lua would. */
		if (compile(L, chunk, chunk_len) != LUA_OK)
			fprintf(stderr, "error: %s\n", lua_tostring(L, -1));
		lua_settop(L, 0);
		free(chunk);
	}
	free(line);
}

/* Close the root lab (the VM shuts down); print what failed. */
static void close_all(lua_State *L)
{
	lua_settop(L, 0);
	lua_getglobal(L, "_provium_close_file_scope");
	lua_getglobal(L, "provium");
	if (lua_pcall(L, 1, 1, 0) != LUA_OK) {
		fprintf(stderr, "provium: repl: closing: %s\n", lua_tostring(L, -1));
		return;
	}
	if (lua_istable(L, -1)) {
		lua_Integer n = luaL_len(L, -1);
		for (lua_Integer i = 1; i <= n; i++) {
			lua_geti(L, -1, i);
			fprintf(stderr, "provium: repl: closing: %s\n", lua_tostring(L, -1));
			lua_pop(L, 1);
		}
	}
}

int cmd_repl(const struct cli_opts *o)
{
	struct repl_args a;
	struct config cfg;
	struct runner_opts ro;
	struct sigaction sa;
	char err[4096], *run_dir = NULL, *cwd = NULL;
	const char *cwd_roots[2] = {NULL, NULL};
	lua_State *L = NULL;
	int rc, dev_null = -1;

	if ((rc = parse_args(o, &a)) != 0)
		return rc;
	memset(&cfg, 0, sizeof cfg);
	if (config_open(&cfg, a.config, err, sizeof err) < 0) {
		fprintf(stderr, "provium: %s\n", err);
		config_free(&cfg);
		return 2;
	}
	rc = 2;
	if (config_add_builtin_default(&cfg) < 0) {
		fprintf(stderr, "provium: out of memory\n");
		goto out;
	}
	if (o->accel >= 0)
		for (size_t i = 0; i < cfg.nprofiles; i++)
			cfg.profiles[i].accel = (enum accel_kind)o->accel;
	if (!a.profile)
		a.profile = first_profile(&cfg);
	if (!a.profile || !has_profile(&cfg, a.profile)) {
		fprintf(stderr, "provium: repl: unknown profile `%s` (declare [profiles.%s] in "
		        "provium.toml)\n", a.profile ? a.profile : "", a.profile ? a.profile : "NAME");
		goto out;
	}
	if (a.vmm == VMM_QEMU && !a.no_preflight && preflight_qemu(&cfg, err, sizeof err) < 0) {
		fprintf(stderr, "provium: %s\n", err);
		goto out;
	}
	cwd = getcwd(NULL, 0);
	run_dir = cwd ? make_temp_dir("provium-repl") : NULL;
	dev_null = open("/dev/null", O_WRONLY | O_CLOEXEC);
	if (!cwd || !run_dir || dev_null < 0) {
		fprintf(stderr, "provium: repl: cannot set up a scratch directory: %s\n", strerror(errno));
		goto out;
	}
	cwd_roots[0] = cwd;
	memset(&ro, 0, sizeof ro);
	ro.cfg = &cfg;
	ro.path = "repl";            /* not a file: _provium_file_dir is set below */
	ro.relpath = "repl";
	ro.roots = cfg.nroots ? (const char *const *)cfg.roots : cwd_roots;
	ro.vmm = a.vmm;
	ro.run_dir = run_dir;
	ro.event_fd = dev_null;
	L = lstate_new(&ro, err, sizeof err);
	if (!L) {
		fprintf(stderr, "provium: repl: %s\n", err);
		goto out;
	}
	lua_settop(L, 0);
	lua_pushstring(L, cwd);      /* relative host paths (push_file) resolve here */
	lua_setglobal(L, "_provium_file_dir");

	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_sigint;   /* no SA_RESTART: a read at the prompt returns EINTR */
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sa.sa_handler = on_sigterm;
	sa.sa_flags = SA_RESETHAND;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);

	lua_pushcfunction(L, make_vm);
	lua_pushlightuserdata(L, &a);
	if (lua_pcall(L, 1, 0, 0) != LUA_OK) {
		fprintf(stderr, "provium: repl: %s\n", lua_tostring(L, -1));
		close_all(L);
		rc = 1;
		goto out;
	}
	lua_getglobal(L, "vm");
	lua_getfield(L, -1, "name");
	lua_insert(L, -2);
	if (lua_pcall(L, 1, 1, 0) == LUA_OK) {
		if (a.fixture)
			fprintf(stderr, "provium repl: restored fixture `%s` as vm `%s`", a.fixture,
			        lua_tostring(L, -1));
		else
			fprintf(stderr, "provium repl: vm `%s` (profile `%s`) is up", lua_tostring(L, -1),
			        a.profile);
		fprintf(stderr, " on the %s backend; `vm`, `provium` and `json` are bound; "
		        "`.exit` or EOF quits\n", a.vmm == VMM_LOCAL ? "local" : "qemu");
	}
	lua_settop(L, 0);
	if (le_open(err, sizeof err) < 0)
		fprintf(stderr, "provium: repl: %s\n", err);
	intr_arm(true);
	loop(L);
	intr_arm(false);             /* the shutdown below runs to its end */
	le_close();
	close_all(L);
	rc = 0;
	if (g_terminate) {
		fprintf(stderr, "provium: repl: %s: the VM was shut down\n", strsignal(g_terminate));
		rc = 128 + g_terminate;
	}
out:
	if (L)
		lua_close(L);
	qspare_drop_all();   /* before their directories go with run_dir */
	qemu_reap_killed(true);   /* the QEMUs restores killed without waiting */
	if (run_dir) {
		temp_remove(run_dir);
		free(run_dir);
	}
	if (dev_null >= 0)
		close(dev_null);
	free(cwd);
	config_free(&cfg);
	return rc;
}
