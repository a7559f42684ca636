/* lconsole.c — the Console userdata ("provium.console") and its
 * ConsoleStream (a Stream of lstream.c over the console log).
 *
 * The backend names two files through ops->run_path: console.sock (QEMU's
 * ttyS0 socket chardev, QEMU the server) and console.log (the chardev's
 * logfile: everything the guest ever wrote, written as it is written,
 * connected client or not). console:write connects to the socket for the
 * write (QEMU accepts one client at a time).
 *
 * A ConsoleStream tails console.log (inotify wakeups). It starts where the
 * VM's ConsoleStreams last stopped reading (struct lvm con_read): the
 * first one of a boot replays the boot log, later ones see what came
 * since ("the boot log, login prompt, and anything the guest has written
 * since the last read"). It reaches EOF where vm:reset() found the log
 * (lconsole_reset_begin: the reference's chardev connection ends there),
 * and where the log ended when the guest died, shut down, or another
 * QEMU took over (restore): the data before that point is always
 * delivered first, then EOF (the Streams page). Nothing holds the socket, so a stream nobody reads
 * never stalls the guest's console.
 *
 * console:expect reads console.log, not the socket, and CONSUMES: each VM
 * keeps the offset just past the last match (con_consumed), so the same
 * text expected twice waits for its next occurrence (after vm:reset():
 * same QEMU, the log keeps growing). A boot or a restore starts a new
 * QEMU with a new, empty log: the offset belongs to the boot it was taken
 * in (con_epoch = the VM's boot_ns) and starts over at 0 on the next.
 * vm:console() always succeeds; on a backend without run_path (local)
 * read_log returns "" (no guest, nothing captured: the original's local
 * backend does the same) and read / expect / write raise "VMM does not
 * expose a console socket"; close works. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <linux/sockios.h>
#include <sys/inotify.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <lua.h>
#include <lauxlib.h>

#include "lua/lruntime.h"
#include "lua/lvm_priv.h"
#include "clock.h"

#define CONSOLE_MT "provium.console"
#define EXPECT_DEFAULT_NS 30000000000LL
/* console:write without a timeout: how long the guest may take to read */
#define WRITE_DRAIN_NS 10000000000LL

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
	struct con_ctx *next;     /* the VM's list (v->con_streams) */
	int fd;                   /* console.log, read-only */
	int ino;                  /* inotify on console.log (-1: poll every 10 ms) */
	int64_t off;              /* next byte of console.log to deliver */
	int64_t eof_at;           /* vm:reset() ends the stream here; -1 = not yet */
	int64_t epoch;            /* v->boot_ns at open: another QEMU means EOF */
	bool eof;
};

/* Wait up to ms for console.log to change. */
static void con_wait(struct con_ctx *c, int ms)
{
	struct pollfd pfd = {.fd = c->ino, .events = POLLIN};
	char ev[4096];
	if (c->ino < 0) {
		struct timespec ts = {0, 10000000};
		if (ms >= 0 && ms < 10)
			ts.tv_nsec = (long)ms * 1000000;
		nanosleep(&ts, NULL);
		return;
	}
	if (poll(&pfd, 1, ms) > 0)
		while (read(c->ino, ev, sizeof ev) > 0)
			;
}

static int con_next(void *ctx, int64_t timeout_ns, char **data, size_t *len, bool *eof,
                    char *err, size_t errlen)
{
	struct con_ctx *c = ctx;
	struct lvm *v = c->v;
	int64_t end = timeout_ns < 0 ? -1 : mono_now_ns() + timeout_ns;
	char *buf;
	if (!(buf = malloc(65536))) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	for (;;) {
		size_t want = 65536;
		ssize_t n;
		int64_t left;
		/* The guest is gone (shut down, or another QEMU took over):
		 * nothing more can come, but what it wrote is still delivered
		 * (the fd keeps the log even once its directory is removed),
		 * then EOF. */
		if (c->eof_at < 0 && (c->epoch != v->boot_ns || !v->be)) {
			struct stat st;
			c->eof_at = fstat(c->fd, &st) == 0 ? (int64_t)st.st_size : c->off;
		}
		if (c->eof_at >= 0 && c->off >= c->eof_at)
			c->eof = true;
		if (c->eof)
			break;
		if (c->eof_at >= 0 && (int64_t)want > c->eof_at - c->off)
			want = (size_t)(c->eof_at - c->off);
		n = pread(c->fd, buf, want, c->off);
		if (n > 0) {
			c->off += n;
			if (v->con_read_epoch == c->epoch && v->con_read < c->off)
				v->con_read = c->off;
			*data = buf;
			*len = (size_t)n;
			return 1;
		}
		if (n < 0 && errno != EINTR) {
			snprintf(err, errlen, "read console.log: %s", strerror(errno));
			free(buf);
			return -1;
		}
		/* Nothing new: a guest that died writes no more. */
		if (n == 0 && v->ops->gone && v->ops->gone(v->be))
			break;
		left = end < 0 ? -1 : end - mono_now_ns();
		if (end >= 0 && left <= 0) {
			free(buf);
			return 0;
		}
		/* in slices, so a guest that dies meanwhile is noticed */
		con_wait(c, left < 0 || left > 250000000 ? 250 : (int)((left + 999999) / 1000000));
	}
	free(buf);
	c->eof = true;
	*eof = true;
	return 1;
}

static void con_close(void *ctx)
{
	struct con_ctx *c = ctx;
	for (struct con_ctx **pp = &c->v->con_streams; *pp; pp = &(*pp)->next)
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	close(c->fd);
	if (c->ino >= 0)
		close(c->ino);
	free(c);
}

static const struct lstream_src con_src = {con_next, con_close};

void lconsole_reset_begin(struct lvm *v)
{
	for (struct con_ctx *c = v->con_streams; c; c = c->next) {
		struct stat st;
		if (c->eof_at < 0)
			c->eof_at = fstat(c->fd, &st) == 0 ? (int64_t)st.st_size : c->off;
	}
}

/* console:read() -> ConsoleStream: console.log from where the VM's last
 * ConsoleStream read stopped (the start of this boot's log for the first
 * one), then what the guest writes on. */
static int c_read(lua_State *L)
{
	struct lvm *v = console_vm(L);
	char path[512];
	struct con_ctx *c;
	int fd;
	lua_getiuservalue(L, 1, 1);                       /* 2: vm */
	lvm_need_booted(L, v, "console:read");
	run_path(L, v, "console.log", "console:read", path, sizeof path);
	lstream_new(L, 2, "console", path, "console closed");
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return luaL_error(L, "vm `%s`: console:read: open `%s`: %s", v->name, path,
		                  strerror(errno));
	if (!(c = calloc(1, sizeof(*c)))) {
		close(fd);
		return luaL_error(L, "vm `%s`: console:read: out of memory", v->name);
	}
	c->v = v;
	c->fd = fd;
	c->eof_at = -1;
	c->epoch = v->boot_ns;
	if (v->con_read_epoch != v->boot_ns) {   /* a new QEMU since: a new log */
		v->con_read_epoch = v->boot_ns;
		v->con_read = 0;
	}
	c->off = v->con_read;
	c->ino = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (c->ino >= 0 && inotify_add_watch(c->ino, path, IN_MODIFY) < 0) {
		close(c->ino);
		c->ino = -1;
	}
	c->next = v->con_streams;
	v->con_streams = c;
	lstream_attach(L, -1, &con_src, c);
	return 1;
}

/* Push console.log from byte off on (whole file: off 0). */
static void push_log(lua_State *L, struct lvm *v, int64_t off, const char *op)
{
	char path[512];
	luaL_Buffer b;
	FILE *f;
	if (!v->ops->run_path) {   /* local: no guest console, nothing logged */
		lua_pushliteral(L, "");
		return;
	}
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
	int64_t end = mono_now_ns() + t;
	luaL_argcheck(L, plen > 0, 2, "pattern must not be empty");
	lua_settop(L, 3);
	{   /* no console at all (local) raises rather than waiting for nothing */
		char path[512];
		run_path(L, v, "console.log", "console:expect", path, sizeof path);
	}
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
		if (mono_now_ns() >= end)
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
	if ((fd = connect_unix(path)) < 0)
		return luaL_error(L, "vm `%s`: console:write: connect `%s`: %s", v->name, path,
		                  strerror(errno));
	/* Send, then wait until QEMU has read every byte (SIOCOUTQ == 0): it
	 * drops what is still queued when the client goes. What QEMU sends
	 * us meanwhile (console output, also in console.log) is discarded. */
	end = mono_now_ns() + (t > 0 ? t : WRITE_DRAIN_NS);
	for (;;) {
		struct pollfd pfd = {.fd = fd, .events = POLLIN | (done < len ? POLLOUT : 0)};
		int64_t left = end - mono_now_ns(), dl = lruntime_deadline_ns();
		int queued = 0;
		char junk[4096];
		if (done == len && (ioctl(fd, SIOCOUTQ, &queued) < 0 || queued == 0))
			break;
		if ((t > 0 || done == len) && left <= 0)
			break;
		if (dl > 0 && mono_now_ns() >= dl) {
			close(fd);
			lruntime_check_deadline(L);
		}
		poll(&pfd, 1, 20);
		while (recv(fd, junk, sizeof junk, MSG_DONTWAIT) > 0)
			;
		if (done < len) {
			ssize_t n = send(fd, data + done, len - done, MSG_NOSIGNAL | MSG_DONTWAIT);
			if (n < 0 && errno != EAGAIN && errno != EINTR) {
				int e = errno;
				close(fd);
				return luaL_error(L, "vm `%s`: console:write: %s", v->name, strerror(e));
			}
			if (n > 0)
				done += (size_t)n;
		}
	}
	{
		int queued = 0;
		if (ioctl(fd, SIOCOUTQ, &queued) < 0)
			queued = 0;
		close(fd);
		if (done < len)
			return luaL_error(L, "vm `%s`: console:write: timed out after %d of %d bytes",
			                  v->name, (int)done, (int)len);
		if (queued > 0)
			return luaL_error(L, "vm `%s`: console:write: timed out: the guest did not "
			                  "read all %d bytes", v->name, (int)len);
	}
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
	return lvm_push_vm_handle(L, CONSOLE_MT);
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
