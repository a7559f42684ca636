/* ldisk.c — the Disk userdata ("provium.disk"): vm:attach_disk(opts),
 * vm:disk(id), and the disk's methods (size, read_sectors, write_sectors,
 * fault_inject, clear_faults, active_faults, detach, is_detached, id,
 * guest_device).
 *
 * Two views of one backing image:
 *   - host side: read_sectors / write_sectors go straight to the image
 *     file (512-byte sectors), honouring the disk's faults exactly as the
 *     reference says (eio_* short-circuit; slow sleeps 50 ms, and the EIO
 *     check is repeated after the sleep and after the I/O);
 *   - guest side: with a backend that has disk_attach (qemu), a disk with
 *     an image is hotplugged into the running guest as virtio-blk (serial
 *     = id) — at once when the VM is Booted, else at its next boot or
 *     restore — and its faults are applied to the guest's I/O too.
 * Without an image a disk is host-side bookkeeping only.
 *
 * Each VM's disks live in a registry table ("provium.disks": weak-keyed,
 * VM userdata -> {id -> Disk}); a Disk keeps its VM alive (user value 1).
 * Whether a disk is plugged is remembered with the VM's boot_ns of the
 * boot that plugged it: a shutdown or a new boot makes it unplugged. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "config.h"
#include "lua/lvm_priv.h"

#define DISK_MT "provium.disk"
#define DISKS_KEY "provium.disks"
#define SECTOR 512
#define SLOW_FAULT_MS 50
#define DEFAULT_DISK_SIZE (INT64_C(4) << 30)

struct ldisk {
	struct lvm *vm;           /* kept alive by user value 1 */
	char *id;
	char *image;              /* absolute; NULL = no backing image */
	int64_t size;             /* modeled size (attach_disk's `size`) */
	unsigned faults;          /* VMM_DISK_* */
	bool detached;
	bool boot;                /* a boot-time disk (cold-plugged, docs/disks.md) */
	bool root;                /* ... the profile's root image */
	bool cow;                 /* ... copy-on-write: the image never changes */
	bool plugged;             /* into the guest of boot plug_ns */
	int64_t plug_ns;
	char dev[64];             /* guest path while plugged */
};

static const struct {
	const char *name;
	unsigned bit;
} fault_modes[] = {
	{"eio_read", VMM_DISK_EIO_READ},
	{"eio_write", VMM_DISK_EIO_WRITE},
	{"slow", VMM_DISK_SLOW},
};
#define NMODES (sizeof fault_modes / sizeof fault_modes[0])

static struct ldisk *checkdisk(lua_State *L, int idx)
{
	return luaL_checkudata(L, idx, DISK_MT);
}

static bool is_plugged(const struct ldisk *d)
{
	const struct lvm *v = d->vm;
	return d->plugged && !v->closed && v->be && d->plug_ns == v->boot_ns &&
	       (v->state == VM_BOOTED || v->state == VM_PAUSED);
}

/* Push the {id -> Disk} table of the VM at vm_idx, creating it. */
static void push_disks(lua_State *L, int vm_idx)
{
	vm_idx = lua_absindex(L, vm_idx);
	if (lua_getfield(L, LUA_REGISTRYINDEX, DISKS_KEY) != LUA_TTABLE) {
		lua_pop(L, 1);
		lua_newtable(L);
		lua_createtable(L, 0, 1);
		lua_pushliteral(L, "k");
		lua_setfield(L, -2, "__mode");
		lua_setmetatable(L, -2);
		lua_pushvalue(L, -1);
		lua_setfield(L, LUA_REGISTRYINDEX, DISKS_KEY);
	}
	lua_pushvalue(L, vm_idx);
	if (lua_rawget(L, -2) != LUA_TTABLE) {
		lua_pop(L, 1);
		lua_newtable(L);
		lua_pushvalue(L, vm_idx);
		lua_pushvalue(L, -2);
		lua_rawset(L, -4);
	}
	lua_remove(L, -2);
}

/* Plug d into its VM's running guest when it can be. Raises on failure
 * with "vm `a`: <what>: <err>". */
static void plug(lua_State *L, struct ldisk *d, const char *what)
{
	struct lvm *v = d->vm;
	char err[LVM_ERRLEN];
	if (!d->image || d->detached || !v->ops->disk_attach || is_plugged(d) ||
	    v->state != VM_BOOTED)
		return;
	if (v->ops->disk_attach(v->be, d->id, d->image, d->dev, sizeof d->dev,
	                        err, sizeof err) < 0)
		luaL_error(L, "vm `%s`: %s: disk `%s`: %s", v->name, what, d->id,
		           lvm_errtext(v, err));
	d->plugged = true;
	d->plug_ns = v->boot_ns;
	if (d->faults && v->ops->disk_faults &&
	    v->ops->disk_faults(v->be, d->id, d->faults, err, sizeof err) < 0)
		luaL_error(L, "vm `%s`: %s: disk `%s`: faults: %s", v->name, what, d->id,
		           lvm_errtext(v, err));
}

/* ---- vm:attach_disk / vm:disk ---------------------------------------- */

static const char *const attach_keys[] = {"id", "size", "image", NULL};

/* vm:attach_disk([{id=, size=, image=}]) -> Disk */
static int vm_attach_disk(lua_State *L)
{
	struct lvm *v = lvm_check(L, 1);
	struct ldisk *d;
	char idbuf[300];
	const char *image = NULL;  /* absolute path, anchored on the stack */
	const char *id;
	int64_t size = DEFAULT_DISK_SIZE;

	if (!lua_isnoneornil(L, 2))
		luaL_checktype(L, 2, LUA_TTABLE);
	lua_settop(L, 2);
	if (v->closed || !v->be)
		return luaL_error(L, "vm `%s`: cannot attach_disk: vm is closed", v->name);
	if (v->state == VM_PAUSED)
		return lvm_state_error(L, v, "attach_disk");
	if (lua_istable(L, 2)) {
		lua_pushnil(L);
		while (lua_next(L, 2)) {
			bool known = false;
			lua_pop(L, 1);
			for (int i = 0; attach_keys[i] && lua_type(L, -1) == LUA_TSTRING; i++)
				known |= !strcmp(lua_tostring(L, -1), attach_keys[i]);
			if (!known)
				return luaL_error(L, "vm `%s`: attach_disk: unknown option `%s` "
				                  "(valid: id, size, image)", v->name,
				                  luaL_tolstring(L, -1, NULL));
		}
	}
	snprintf(idbuf, sizeof idbuf, "attached-%s", v->name);
	id = idbuf;
	if (lua_istable(L, 2)) {
		if (lua_getfield(L, 2, "id") != LUA_TNIL) {
			if (lua_type(L, -1) != LUA_TSTRING || !lua_rawlen(L, -1))
				return luaL_error(L, "vm `%s`: attach_disk: id must be a non-empty string",
				                  v->name);
			id = lua_tostring(L, -1);   /* anchored at slot 3 */
		}
		if (lua_getfield(L, 2, "size") != LUA_TNIL) {
			if (!lua_isinteger(L, -1) || lua_tointeger(L, -1) <= 0)
				return luaL_error(L, "vm `%s`: attach_disk: size must be a positive "
				                  "integer (bytes)", v->name);
			size = lua_tointeger(L, -1);
		}
		lua_pop(L, 1);
		if (lua_getfield(L, 2, "image") != LUA_TNIL) {
			const char *p;
			struct stat st;
			if (lua_type(L, -1) != LUA_TSTRING)
				return luaL_error(L, "vm `%s`: attach_disk: image must be a path string",
				                  v->name);
			p = lua_tostring(L, -1);
			if (stat(p, &st) < 0)
				return luaL_error(L, "vm `%s`: attach_disk: image `%s`: %s", v->name, p,
				                  strerror(errno));
			if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode))
				return luaL_error(L, "vm `%s`: attach_disk: image `%s` is not a regular "
				                  "file or block device", v->name, p);
			char *rp = realpath(p, NULL);
			if (!rp)
				return luaL_error(L, "vm `%s`: attach_disk: image `%s`: %s", v->name, p,
				                  strerror(errno));
			lua_pushstring(L, rp);   /* a Lua string: nothing leaks if we raise */
			free(rp);
			lua_replace(L, -2);
			image = lua_tostring(L, -1);
		} else {
			lua_pop(L, 1);
		}
	}
	push_disks(L, 1);                                  /* disks table */
	if (lua_getfield(L, -1, id) == LUA_TUSERDATA && !checkdisk(L, -1)->detached) {
		return luaL_error(L, "vm `%s`: attach_disk: disk `%s` is already attached",
		                  v->name, id);
	}
	lua_pop(L, 1);
	d = lua_newuserdatauv(L, sizeof *d, 1);
	memset(d, 0, sizeof *d);
	luaL_setmetatable(L, DISK_MT);
	d->vm = v;
	d->size = size;
	if (!(d->id = strdup(id)) || (image && !(d->image = strdup(image))))
		return luaL_error(L, "vm `%s`: attach_disk: out of memory", v->name);
	lua_pushvalue(L, 1);
	lua_setiuservalue(L, -2, 1);
	plug(L, d, "attach_disk");
	lua_pushvalue(L, -1);
	lua_setfield(L, -3, id);
	return 1;
}

/* ---- boot-time disks ---------------------------------------------------- */

/* Validate one {id=, image=} of the boot opt `disks` (table at -1); push
 * the image's absolute path. */
static void boot_disk_entry(lua_State *L, const struct lvm *v, int i)
{
	struct stat st;
	const char *id, *p;
	char *rp;
	int t = lua_gettop(L);
	if (!lua_istable(L, t))
		luaL_error(L, "vm `%s`: boot opt disks[%d] must be {id=string, image=path}", v->name, i);
	lua_pushnil(L);
	while (lua_next(L, t)) {
		const char *k = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : NULL;
		lua_pop(L, 1);
		if (!k || (strcmp(k, "id") && strcmp(k, "image")))
			luaL_error(L, "vm `%s`: boot opt disks[%d]: unknown key `%s` (valid: id, image)",
			           v->name, i, luaL_tolstring(L, -1, NULL));
	}
	if (lua_getfield(L, t, "id") != LUA_TSTRING || !config_disk_id_ok(lua_tostring(L, -1)))
		luaL_error(L, "vm `%s`: boot opt disks[%d].id must be 1-20 characters of "
		           "A-Z a-z 0-9 . _ -", v->name, i);
	id = lua_tostring(L, -1);
	if (!strcmp(id, "root"))
		luaL_error(L, "vm `%s`: boot opt disks[%d]: id `root` is reserved for the "
		           "profile's root image", v->name, i);
	if (lua_getfield(L, t, "image") != LUA_TSTRING)
		luaL_error(L, "vm `%s`: boot opt disks[%d].image must be a path string", v->name, i);
	p = lua_tostring(L, -1);
	if (stat(p, &st) < 0)
		luaL_error(L, "vm `%s`: boot opt disks[%d]: image `%s`: %s", v->name, i, p,
		           strerror(errno));
	if (!S_ISREG(st.st_mode))
		luaL_error(L, "vm `%s`: boot opt disks[%d]: image `%s` is not a regular file",
		           v->name, i, p);
	if (!(rp = realpath(p, NULL)))
		luaL_error(L, "vm `%s`: boot opt disks[%d]: image `%s`: %s", v->name, i, p,
		           strerror(errno));
	lua_pushstring(L, rp);
	free(rp);
	lua_remove(L, -2);          /* t, id, abs image */
}

void ldisk_boot_opts(lua_State *L, const struct lvm *v, int opts_idx, int profile_idx,
                     struct vmm_boot_opts *o)
{
	struct vmm_boot_disk *dk;
	size_t n = 0, nprof;
	int anchor;
	opts_idx = lua_absindex(L, opts_idx);
	profile_idx = lua_absindex(L, profile_idx);
	dk = lua_newuserdatauv(L, (VMM_BOOT_DISKS + 1) * sizeof *dk, 0);
	memset(dk, 0, (VMM_BOOT_DISKS + 1) * sizeof *dk);
	lua_newtable(L);            /* anchors the strings dk points at */
	anchor = lua_gettop(L);
#define KEEP(idx) (lua_pushvalue(L, idx), lua_rawseti(L, anchor, (lua_Integer)lua_rawlen(L, anchor) + 1))
	if (lua_getfield(L, profile_idx, "root") == LUA_TSTRING) {
		KEEP(-1);
		dk[n++] = (struct vmm_boot_disk){.id = "root", .image = lua_tostring(L, -1), .root = true};
	}
	lua_pop(L, 1);
	if (lua_getfield(L, profile_idx, "disks") == LUA_TTABLE) {
		int t = lua_gettop(L);
		for (lua_Integer i = 1; lua_geti(L, t, i) == LUA_TTABLE; i++) {
			lua_getfield(L, -1, "id");
			lua_getfield(L, -2, "image");
			KEEP(-2);
			KEEP(-1);
			if (n < VMM_BOOT_DISKS)
				dk[n] = (struct vmm_boot_disk){.id = lua_tostring(L, -2),
				                               .image = lua_tostring(L, -1)};
			n++;
			lua_pop(L, 3);
		}
		lua_pop(L, 1);
	}
	lua_pop(L, 1);
	nprof = n < VMM_BOOT_DISKS ? n : VMM_BOOT_DISKS;
	if (lua_getfield(L, opts_idx, "disks") != LUA_TNIL) {
		int t = lua_gettop(L);
		lua_Integer len;
		if (!lua_istable(L, t))
			luaL_error(L, "vm `%s`: boot opt disks must be an array of {id=, image=}", v->name);
		len = luaL_len(L, t);
		for (lua_Integer i = 1; i <= len; i++) {
			size_t j;
			lua_geti(L, t, i);
			boot_disk_entry(L, v, (int)i);     /* tbl, id, image */
			KEEP(-2);
			KEEP(-1);
			for (lua_Integer k = 1; k < i; k++) {
				lua_geti(L, t, k);
				lua_getfield(L, -1, "id");
				if (!strcmp(lua_tostring(L, -1), lua_tostring(L, -4)))
					luaL_error(L, "vm `%s`: boot opt disks: id `%s` is listed twice",
					           v->name, lua_tostring(L, -1));
				lua_pop(L, 2);
			}
			for (j = 0; j < nprof; j++)
				if (!strcmp(dk[j].id, lua_tostring(L, -2)))
					break;
			if (j < nprof && !dk[j].root) {
				/* same id as one of the profile's: this one replaces it */
				dk[j].image = lua_tostring(L, -1);
			} else {
				if (n < VMM_BOOT_DISKS)
					dk[n] = (struct vmm_boot_disk){.id = lua_tostring(L, -2),
					                               .image = lua_tostring(L, -1)};
				n++;
			}
			lua_pop(L, 3);
		}
	}
	lua_pop(L, 1);
#undef KEEP
	if (n > VMM_BOOT_DISKS)
		luaL_error(L, "vm `%s`: %d boot-time disks (the profile's and boot opt disks); "
		           "at most %d", v->name, (int)n, VMM_BOOT_DISKS);
	/* a fixture build's VMs must leave their images (keyed inputs) as
	 * they were, and their snapshots carry the disks: copy-on-write */
	lua_getglobal(L, "_provium_disks_cow");
	for (size_t i = 0; i < n; i++)
		dk[i].cow = dk[i].root || lua_toboolean(L, -1);
	lua_pop(L, 1);
	o->disks = n ? dk : NULL;
	o->ndisks = n;
}

static int restore_register_call(lua_State *L);

void ldisk_boot_register(lua_State *L, int vm_idx, const struct vmm_boot_opts *o)
{
	struct lvm *v = lvm_check(L, vm_idx);
	vm_idx = lua_absindex(L, vm_idx);
	push_disks(L, vm_idx);
	for (size_t i = 0; i < o->ndisks; i++) {
		struct ldisk *d;
		struct stat st;
		if (lua_getfield(L, -1, o->disks[i].id) == LUA_TUSERDATA) {
			d = checkdisk(L, -1);
			if (!d->boot && !d->detached)
				luaL_error(L, "vm `%s`: boot: disk `%s` is both attached (vm:attach_disk) "
				           "and a boot-time disk; give one of them another id", v->name,
				           d->id);
		}
		lua_pop(L, 1);
		d = lua_newuserdatauv(L, sizeof *d, 1);
		memset(d, 0, sizeof *d);
		luaL_setmetatable(L, DISK_MT);
		d->vm = v;
		d->size = stat(o->disks[i].image, &st) == 0 ? (int64_t)st.st_size : 0;
		if (!(d->id = strdup(o->disks[i].id)) || !(d->image = strdup(o->disks[i].image)))
			luaL_error(L, "vm `%s`: boot: out of memory", v->name);
		d->boot = true;
		d->root = o->disks[i].root;
		d->cow = o->disks[i].cow || d->root;
		d->plugged = true;
		d->plug_ns = v->boot_ns;
		snprintf(d->dev, sizeof d->dev, "%s", o->disks[i].dev);
		lua_pushvalue(L, vm_idx);
		lua_setiuservalue(L, -2, 1);
		lua_setfield(L, -2, o->disks[i].id);
	}
	lua_pop(L, 1);
}

static int restore_register_call(lua_State *L)
{
	ldisk_boot_register(L, 1, lua_touserdata(L, 2));
	return 0;
}

void ldisk_restore_register(lua_State *L, int vm_idx, const char *disks)
{
	struct vmm_boot_opts o;
	struct vmm_boot_disk dk[VMM_BOOT_DISKS];
	json_t *a = disks ? json_loads(disks, 0, NULL) : NULL, *e;
	size_t i;
	memset(&o, 0, sizeof o);
	memset(dk, 0, sizeof dk);
	/* the backend checked the list before restoring from it */
	json_array_foreach(a, i, e) {
		if (i >= VMM_BOOT_DISKS)
			break;
		dk[i].id = json_string_value(json_object_get(e, "id"));
		dk[i].image = json_string_value(json_object_get(e, "image"));
		dk[i].root = json_is_true(json_object_get(e, "root"));
		dk[i].cow = true;
		snprintf(dk[i].dev, sizeof dk[i].dev, "%s",
		         json_string_value(json_object_get(e, "dev")) ?
		         json_string_value(json_object_get(e, "dev")) : "");
		if (!dk[i].id || !dk[i].image)
			break;
		o.ndisks = i + 1;
	}
	o.disks = dk;
	if (o.ndisks) {
		/* a Lua error must not leak the JSON: strings are copied first */
		lua_pushcfunction(L, restore_register_call);
		lua_pushvalue(L, vm_idx);
		lua_pushlightuserdata(L, &o);
		if (lua_pcall(L, 2, 0, 0) != LUA_OK) {
			json_decref(a);
			lua_error(L);
		}
	}
	json_decref(a);
}

/* disk:power_cut(): the VM loses power; what the guest wrote to this
 * VM's boot-time disks without flushing is lost. */
static int disk_power_cut(lua_State *L)
{
	struct ldisk *d = checkdisk(L, 1);
	if (!d->boot || d->cow)
		return luaL_error(L, "disk:power_cut: disk `%s` is %s; power_cut needs a boot-time "
		                  "disk (vm:boot{disks = ...} or the profile's `disks`) of a plain "
		                  "boot", d->id,
		                  d->root ? "the root image (its writes are thrown away anyway)"
		                  : d->boot ? "copy-on-write (a VM booted in a fixture build or "
		                              "restored from a snapshot: its writes never reach the image)"
		                          : "hotplugged (vm:attach_disk)");
	if (!is_plugged(d))
		return luaL_error(L, "disk:power_cut: vm `%s` is not running with disk `%s`",
		                  d->vm->name, d->id);
	lvm_power_cut(L, d->vm);
	return 0;
}

/* vm:disk(id) -> Disk */
static int vm_disk(lua_State *L)
{
	struct lvm *v = lvm_check(L, 1);
	const char *id = luaL_checkstring(L, 2);
	push_disks(L, 1);
	if (lua_getfield(L, -1, id) == LUA_TUSERDATA)
		return 1;
	/* name what there is: "vda, vdb" (sorted) */
	lua_pop(L, 1);
	{
		int tbl = lua_gettop(L), n = 0;
		lua_newtable(L);
		lua_pushnil(L);
		while (lua_next(L, tbl)) {
			lua_pop(L, 1);
			lua_pushvalue(L, -1);
			lua_rawseti(L, tbl + 1, ++n);
		}
		lua_getglobal(L, "table");
		lua_getfield(L, -1, "sort");
		lua_pushvalue(L, tbl + 1);
		lua_call(L, 1, 0);
		lua_getfield(L, -1, "concat");
		lua_pushvalue(L, tbl + 1);
		lua_pushliteral(L, ", ");
		lua_call(L, 2, 1);
		return luaL_error(L, "vm `%s`: no disk `%s`%s%s%s", v->name, id,
		                  n ? " (attached: " : " (none attached)", n ? lua_tostring(L, -1) : "",
		                  n ? ")" : "");
	}
}

/* Re-plug the disks of the VM at vm_idx after a boot or restore. */
void ldisk_plug_all(lua_State *L, int vm_idx, const char *what)
{
	int top = lua_gettop(L);
	vm_idx = lua_absindex(L, vm_idx);
	push_disks(L, vm_idx);
	lua_pushnil(L);
	while (lua_next(L, -2)) {
		if (lua_type(L, -1) == LUA_TUSERDATA && !checkdisk(L, -1)->boot)
			plug(L, checkdisk(L, -1), what);
		lua_pop(L, 1);
	}
	lua_settop(L, top);
}

/* ---- Disk methods ---------------------------------------------------- */

static void sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* The common preamble of read_sectors / write_sectors: detached, image,
 * the fault checks before and after the slow sleep. */
static void io_checks(lua_State *L, struct ldisk *d, const char *op, unsigned eio)
{
	if (d->detached)
		luaL_error(L, "disk:%s: disk is detached", op);
	if (!d->image)
		luaL_error(L, "disk:%s: no backing image \xe2\x80\x94 disk:with_image required", op);
	if (d->faults & eio)
		luaL_error(L, "disk:%s: EIO (fault_inject)", op);
	if (d->faults & VMM_DISK_SLOW) {
		sleep_ms(SLOW_FAULT_MS);
		if (d->faults & eio)
			luaL_error(L, "disk:%s: EIO (fault_inject)", op);
	}
}

static int64_t check_sector_arg(lua_State *L, int idx, const char *op, const char *what)
{
	lua_Integer n;
	if (!lua_isinteger(L, idx) || (n = lua_tointeger(L, idx)) < 0)
		return luaL_error(L, "disk:%s: %s must be a non-negative integer", op, what);
	if (n > INT64_MAX / SECTOR)
		return luaL_error(L, "disk:%s: %s is too large", op, what);
	return n;
}

/* disk:read_sectors(offset, n) -> string of n * 512 bytes */
static int disk_read_sectors(lua_State *L)
{
	struct ldisk *d = checkdisk(L, 1);
	int64_t off = check_sector_arg(L, 2, "read_sectors", "offset");
	int64_t n = check_sector_arg(L, 3, "read_sectors", "count");
	luaL_Buffer b;
	size_t want, got = 0;
	int fd;
	io_checks(L, d, "read_sectors", VMM_DISK_EIO_READ);
	if (n > (INT64_C(1) << 30) / SECTOR)
		return luaL_error(L, "disk:read_sectors: %I sectors is more than 1 GiB in one call",
		                  (lua_Integer)n);
	want = (size_t)n * SECTOR;
	if ((fd = open(d->image, O_RDONLY | O_CLOEXEC)) < 0)
		return luaL_error(L, "disk:read_sectors: %s: %s", d->image, strerror(errno));
	char *p = luaL_buffinitsize(L, &b, want ? want : 1);
	while (got < want) {
		ssize_t r = pread(fd, p + got, want - got, (off_t)(off * SECTOR) + (off_t)got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			int e = errno;
			struct stat st;
			if (r == 0 && fstat(fd, &st) == 0) {
				close(fd);
				return luaL_error(L, "disk:read_sectors: sectors %I..%I are past the end "
				                  "of the image (%I bytes)", (lua_Integer)off,
				                  (lua_Integer)(off + n - 1), (lua_Integer)st.st_size);
			}
			close(fd);
			return luaL_error(L, "disk:read_sectors: %s: %s", d->image, strerror(e));
		}
		got += (size_t)r;
	}
	close(fd);
	if (d->faults & VMM_DISK_EIO_READ)
		return luaL_error(L, "disk:read_sectors: EIO (fault_inject)");
	luaL_pushresultsize(&b, got);
	return 1;
}

/* disk:write_sectors(offset, data) */
static int disk_write_sectors(lua_State *L)
{
	struct ldisk *d = checkdisk(L, 1);
	int64_t off = check_sector_arg(L, 2, "write_sectors", "offset");
	size_t len, put = 0;
	const char *data = luaL_checklstring(L, 3, &len);
	int fd;
	io_checks(L, d, "write_sectors", VMM_DISK_EIO_WRITE);
	if ((fd = open(d->image, O_WRONLY | O_CLOEXEC)) < 0)
		return luaL_error(L, "disk:write_sectors: %s: %s", d->image, strerror(errno));
	while (put < len) {
		ssize_t r = pwrite(fd, data + put, len - put, (off_t)(off * SECTOR) + (off_t)put);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			int e = r < 0 ? errno : EIO;
			close(fd);
			return luaL_error(L, "disk:write_sectors: %s: %s", d->image, strerror(e));
		}
		put += (size_t)r;
	}
	if (close(fd) < 0)
		return luaL_error(L, "disk:write_sectors: %s: %s", d->image, strerror(errno));
	if (d->faults & VMM_DISK_EIO_WRITE)
		return luaL_error(L, "disk:write_sectors: EIO (fault_inject)");
	return 0;
}

/* Apply faults to the guest too when the disk is plugged. */
static void set_faults(lua_State *L, struct ldisk *d, unsigned faults, const char *op)
{
	struct lvm *v = d->vm;
	char err[LVM_ERRLEN];
	if (is_plugged(d) && v->ops->disk_faults &&
	    v->ops->disk_faults(v->be, d->id, faults, err, sizeof err) < 0)
		luaL_error(L, "disk:%s: vm `%s`: disk `%s`: %s", op, v->name, d->id,
		           lvm_errtext(v, err));
	d->faults = faults;
}

static int disk_fault_inject(lua_State *L)
{
	struct ldisk *d = checkdisk(L, 1);
	const char *mode = luaL_checkstring(L, 2);
	for (size_t i = 0; i < NMODES; i++)
		if (!strcmp(mode, fault_modes[i].name)) {
			set_faults(L, d, d->faults | fault_modes[i].bit, "fault_inject");
			return 0;
		}
	return luaL_error(L, "disk:fault_inject: unknown mode `%s` (valid: eio_read, eio_write, slow)",
	                  mode);
}

static int disk_clear_faults(lua_State *L)
{
	set_faults(L, checkdisk(L, 1), 0, "clear_faults");
	return 0;
}

static int disk_active_faults(lua_State *L)
{
	struct ldisk *d = checkdisk(L, 1);
	int n = 0;
	lua_newtable(L);
	for (size_t i = 0; i < NMODES; i++)
		if (d->faults & fault_modes[i].bit) {
			lua_pushstring(L, fault_modes[i].name);
			lua_rawseti(L, -2, ++n);
		}
	return 1;
}

/* disk:detach(): marks the disk detached and unplugs it from the guest.
 * A disk that was never plugged (no image, local backend, VM not running)
 * is just marked — the reference's silent "Device not found". */
static int disk_detach(lua_State *L)
{
	struct ldisk *d = checkdisk(L, 1);
	struct lvm *v = d->vm;
	char err[LVM_ERRLEN];
	if (d->detached)
		return 0;
	if (d->boot && is_plugged(d))
		return luaL_error(L, "disk:detach: disk `%s` is a boot-time disk of vm `%s`: it stays "
		                  "until the VM stops", d->id, v->name);
	if (is_plugged(d) && v->state == VM_PAUSED)
		return luaL_error(L, "disk:detach: vm `%s` is Paused (paused: use resume() first: "
		                  "the guest must let go of disk `%s`)", v->name, d->id);
	d->detached = true;
	if (!is_plugged(d) || !v->ops->disk_detach)
		return 0;
	d->plugged = false;
	d->dev[0] = '\0';
	if (v->ops->disk_detach(v->be, d->id, err, sizeof err) < 0)
		return luaL_error(L, "disk:detach: vm `%s`: disk `%s`: %s", v->name, d->id,
		                  lvm_errtext(v, err));
	return 0;
}

static int disk_is_detached(lua_State *L)
{
	lua_pushboolean(L, checkdisk(L, 1)->detached);
	return 1;
}

static int disk_id(lua_State *L)
{
	lua_pushstring(L, checkdisk(L, 1)->id);
	return 1;
}

/* disk:size(): the image's live size, or the modeled size without one. */
static int disk_size(lua_State *L)
{
	struct ldisk *d = checkdisk(L, 1);
	struct stat st;
	if (!d->image) {
		lua_pushinteger(L, d->size);
		return 1;
	}
	if (stat(d->image, &st) < 0)
		return luaL_error(L, "disk:size: %s: %s", d->image, strerror(errno));
	lua_pushinteger(L, (lua_Integer)st.st_size);
	return 1;
}

/* disk:guest_device() -> "/dev/vdb" while plugged into the guest, else nil
 * (a provium extension: the reference has no way to name the device). */
static int disk_guest_device(lua_State *L)
{
	struct ldisk *d = checkdisk(L, 1);
	if (is_plugged(d) && d->dev[0])
		lua_pushstring(L, d->dev);
	else
		lua_pushnil(L);
	return 1;
}

static int disk_gc(lua_State *L)
{
	struct ldisk *d = checkdisk(L, 1);
	free(d->id);
	free(d->image);
	d->id = d->image = NULL;
	return 0;
}

static int disk_tostring(lua_State *L)
{
	struct ldisk *d = checkdisk(L, 1);
	lua_pushfstring(L, "disk `%s` (vm `%s`%s)", d->id ? d->id : "?",
	                d->vm && d->vm->name ? d->vm->name : "?",
	                d->detached ? ", detached" : "");
	return 1;
}

static const luaL_Reg disk_methods[] = {
	{"size", disk_size}, {"read_sectors", disk_read_sectors},
	{"write_sectors", disk_write_sectors}, {"fault_inject", disk_fault_inject},
	{"clear_faults", disk_clear_faults}, {"active_faults", disk_active_faults},
	{"detach", disk_detach}, {"is_detached", disk_is_detached}, {"id", disk_id},
	{"guest_device", disk_guest_device}, {"power_cut", disk_power_cut},
	{NULL, NULL}
};

static const luaL_Reg disk_meta[] = {
	{"__gc", disk_gc}, {"__tostring", disk_tostring}, {NULL, NULL}
};

/* Add attach_disk / disk to the VM method table at the top of the stack
 * and create the Disk class. */
void ldisk_register(lua_State *L)
{
	lua_pushcfunction(L, vm_attach_disk);
	lua_setfield(L, -2, "attach_disk");
	lua_pushcfunction(L, vm_disk);
	lua_setfield(L, -2, "disk");
	lvm_new_class(L, DISK_MT, disk_meta, disk_methods);
	lua_pop(L, 1);
}
