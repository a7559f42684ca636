/* lconsole.c — the Console userdata ("provium.console") and its
 * ConsoleStream (a Stream of lstream.c over the console socket).
 *
 * The backend names two files through ops->run_path: console.sock (QEMU's
 * ttyS0 socket chardev, QEMU the server) and console.log (the chardev's
 * logfile: everything the guest ever wrote). QEMU accepts one client at a
 * time on that socket, so a VM has at most one connection (struct lvm
 * con_fd), shared by its live ConsoleStreams and console:write, closed
 * when the last ConsoleStream closes; a write with no stream open uses a
 * short-lived connection of its own.
 *
 * console:expect reads console.log, not the socket, and CONSUMES: each VM
 * keeps the offset just past the last match (con_consumed), so the same
 * text expected twice waits for its next occurrence (after vm:reset():
 * same QEMU, the log keeps growing). A boot or a restore starts a new
 * QEMU with a new, empty log: the offset belongs to the boot it was taken
 * in (con_epoch = the VM's boot_ns) and starts over at 0 on the next.
 * vm:console() always succeeds; on a backend without run_path (local)
 * every method but close raises "VMM does not expose a console socket". */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <lua.h>
#include <lauxlib.h>

#include "lua/lruntime.h"
#include "lua/lvm_priv.h"

#define CONSOLE_MT "provium.console"
#define EXPECT_DEFAULT_NS 30000000000LL

static int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static struct lvm *console_vm(lua_State *L)
{
	struct lvm *v;
	luaL_checkudata(L, 1, CONSOLE_MT);
	lua_getiuservalue(L, 1, 1);
	v = lvm_check(L, -1);
	lua_pop(L, 1);
	return v;
}

/* Copy the backend's path for leaf into buf, or raise "VMM does not expose
 * a console socket" (a backend without run_path: local). */
static void run_path(lua_State *L, struct lvm *v, const char *leaf, const char *op,
                     char *buf, size_t len)
{
	const char *p = v->be && v->ops->run_path ? v->ops->run_path(v->be, leaf) : NULL;
	if (!p && !v->ops->run_path)
		luaL_error(L, "vm `%s`: %s: VMM does not expose a console socket: %s is not "
		           "supported by the %s backend%s", v->name, op, op, v->ops->name,
		           v->ops->unsupported_hint);
	if (!p)
		luaL_error(L, "vm `%s`: %s: the vm is closed", v->name, op);
	snprintf(buf, len, "%s", p);
}

static int connect_unix(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd;
	if (strlen(path) >= sizeof sa.sun_path) {
		errno = ENAMETOOLONG;
		return -1;
	}
	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
		int e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

/* ---- ConsoleStream transport ---------------------------------------- */

struct con_ctx {
	struct lvm *v;            /* the stream's user value keeps the VM alive */
	bool eof;
};

static int con_next(void *ctx, int64_t timeout_ns, char **data, size_t *len, bool *eof,
                    char *err, size_t errlen)
{
	struct con_ctx *c = ctx;
	struct pollfd pfd = {.fd = c->v->con_fd, .events = POLLIN};
	int ms = timeout_ns < 0 ? -1 : (int)((timeout_ns + 999999) / 1000000);
	ssize_t n;
	char *buf;
	if (c->eof || c->v->con_fd < 0) {
		*eof = true;
		return 1;
	}
	n = poll(&pfd, 1, ms);
	if (n < 0 && errno == EINTR)
		return 0;
	if (n < 0) {
		snprintf(err, errlen, "poll: %s", strerror(errno));
		return -1;
	}
	if (n == 0)
		return 0;
	if (!(buf = malloc(65536))) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	n = read(c->v->con_fd, buf, 65536);
	if (n > 0) {
		*data = buf;
		*len = (size_t)n;
		return 1;
	}
	free(buf);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return 0;
	/* 0, ECONNRESET, EPIPE: QEMU closed the chardev (reset/shutdown). */
	c->eof = true;
	*eof = true;
	return 1;
}

static void con_close(void *ctx)
{
	struct con_ctx *c = ctx;
	if (--c->v->con_refs == 0 && c->v->con_fd >= 0) {
		close(c->v->con_fd);
		c->v->con_fd = -1;
	}
	free(c);
}

static const struct lstream_src con_src = {con_next, con_close};

/* console:read() -> ConsoleStream */
static int c_read(lua_State *L)
{
	struct lvm *v = console_vm(L);
	char path[512];
	struct con_ctx *c;
	lua_getiuservalue(L, 1, 1);                       /* 2: vm */
	lvm_need_booted(L, v, "console:read");
	run_path(L, v, "console.sock", "console:read", path, sizeof path);
	lstream_new(L, 2, "console", path, "console closed");
	if (v->con_fd < 0 && (v->con_fd = connect_unix(path)) < 0)
		return luaL_error(L, "vm `%s`: console:read: connect `%s`: %s", v->name, path,
		                  strerror(errno));
	if (!(c = calloc(1, sizeof(*c)))) {
		if (v->con_refs == 0) {
			close(v->con_fd);
			v->con_fd = -1;
		}
		return luaL_error(L, "vm `%s`: console:read: out of memory", v->name);
	}
	c->v = v;
	v->con_refs++;
	lstream_attach(L, -1, &con_src, c);
	return 1;
}

/* Push console.log from byte off on (whole file: off 0). */
static void push_log(lua_State *L, struct lvm *v, int64_t off, const char *op)
{
	char path[512];
	luaL_Buffer b;
	FILE *f;
	run_path(L, v, "console.log", op, path, sizeof path);
	f = fopen(path, "rb");
	if (!f) {
		if (errno == ENOENT) {   /* nothing logged yet */
			lua_pushliteral(L, "");
			return;
		}
		luaL_error(L, "vm `%s`: %s: open `%s`: %s", v->name, op, path, strerror(errno));
	}
	if (off > 0 && fseeko(f, off, SEEK_SET) < 0) {
		fclose(f);
		lua_pushliteral(L, "");
		return;
	}
	luaL_buffinit(L, &b);
	for (;;) {
		char *p = luaL_prepbuffer(&b);
		size_t n = fread(p, 1, LUAL_BUFFERSIZE, f);
		luaL_addsize(&b, n);
		if (n < LUAL_BUFFERSIZE)
			break;
	}
	fclose(f);   /* luaL_pushresult cannot fail after this in practice */
	luaL_pushresult(&b);
}

static int c_read_log(lua_State *L)
{
	struct lvm *v = console_vm(L);
	push_log(L, v, 0, "console:read_log");
	return 1;
}

/* console:expect(pattern[, timeout]) -> the matched text; consumes. */
static int c_expect(lua_State *L)
{
	struct lvm *v = console_vm(L);
	size_t plen;
	const char *pat = luaL_checklstring(L, 2, &plen);
	int64_t t = lua_isnoneornil(L, 3) ? EXPECT_DEFAULT_NS
	                                  : lvm_check_duration(L, 3, "console:expect: timeout");
	int64_t end = now_ns() + t;
	luaL_argcheck(L, plen > 0, 2, "pattern must not be empty");
	lua_settop(L, 3);
	if (v->con_epoch != v->boot_ns) {    /* a new QEMU since: a new log */
		v->con_epoch = v->boot_ns;
		v->con_consumed = 0;
	}
	for (;;) {
		size_t n;
		const char *log, *hit;
		push_log(L, v, v->con_consumed, "console:expect");
		log = lua_tolstring(L, -1, &n);
		hit = n >= plen ? memmem(log, n, pat, plen) : NULL;
		if (hit) {
			v->con_consumed += (int64_t)(hit - log) + (int64_t)plen;
			lua_pushlstring(L, hit, plen);
			return 1;
		}
		lua_pop(L, 1);
		if (now_ns() >= end)
			return luaL_error(L, "vm `%s`: console:expect timed out after %f s waiting "
			                  "for `%s`", v->name, (double)t / 1e9, pat);
		lruntime_check_deadline(L);
		{
			struct timespec ts = {0, 50000000};
			nanosleep(&ts, NULL);
		}
	}
}

/* console:write(data[, {timeout = ...}]) */
static int c_write(lua_State *L)
{
	struct lvm *v = console_vm(L);
	size_t len, done = 0;
	const char *data = luaL_checklstring(L, 2, &len);
	int64_t t = 0, end;
	char path[512];
	int fd;
	bool own = false;
	if (!lua_isnoneornil(L, 3)) {
		luaL_checktype(L, 3, LUA_TTABLE);
		if (lua_getfield(L, 3, "timeout_ms") != LUA_TNIL)
			return luaL_error(L, "opts.timeout_ms is not supported (use timeout = \"500ms\" "
			                  "or timeout = 0.5)");
		if (lua_getfield(L, 3, "timeout") != LUA_TNIL)
			t = lvm_check_duration(L, -1, "console:write: timeout");
		lua_pop(L, 2);
	}
	lvm_need_booted(L, v, "console:write");
	run_path(L, v, "console.sock", "console:write", path, sizeof path);
	fd = v->con_fd;
	if (fd < 0) {
		if ((fd = connect_unix(path)) < 0)
			return luaL_error(L, "vm `%s`: console:write: connect `%s`: %s", v->name, path,
			                  strerror(errno));
		own = true;
	}
	end = t > 0 ? now_ns() + t : -1;
	while (done < len) {
		struct pollfd pfd = {.fd = fd, .events = POLLOUT};
		int64_t left = end < 0 ? -1 : end - now_ns();
		ssize_t n;
		if (end >= 0 && left <= 0)
			break;
		if (poll(&pfd, 1, left < 0 ? -1 : (int)(left / 1000000) + 1) <= 0)
			continue;
		n = send(fd, data + done, len - done, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (n < 0) {
			int e = errno;
			if (own)
				close(fd);
			return luaL_error(L, "vm `%s`: console:write: %s", v->name, strerror(e));
		}
		done += (size_t)n;
	}
	if (own)
		close(fd);
	if (done < len)
		return luaL_error(L, "vm `%s`: console:write: timed out after %d of %d bytes",
		                  v->name, (int)done, (int)len);
	return 0;
}

static int c_close(lua_State *L)
{
	luaL_checkudata(L, 1, CONSOLE_MT);
	return 0;
}

/* vm:console() -> Console; always succeeds (the console reference): the
 * chardev is looked for by read / read_log / expect / write. */
static int vm_console(lua_State *L)
{
	lvm_check(L, 1);
	lua_newuserdatauv(L, 1, 1);
	luaL_setmetatable(L, CONSOLE_MT);
	lua_pushvalue(L, 1);
	lua_setiuservalue(L, -2, 1);
	return 1;
}

static const luaL_Reg console_methods[] = {
	{"read", c_read}, {"read_log", c_read_log}, {"expect", c_expect},
	{"write", c_write}, {"close", c_close}, {NULL, NULL}
};

void lconsole_register(lua_State *L)
{
	luaL_newmetatable(L, CONSOLE_MT);
	lua_newtable(L);
	luaL_setfuncs(L, console_methods, 0);
	lua_setfield(L, -2, "__index");
	lua_pop(L, 1);
	lua_pushcfunction(L, vm_console);
	lua_setfield(L, -2, "console");
}
