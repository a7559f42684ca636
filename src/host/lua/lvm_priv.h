/* lvm_priv.h — what the VM binding (lvm.c) shares with the bindings of the
 * objects a VM hands out: commands and processes (lrun.c), files (lfile.c),
 * streams (lstream.c), console (lconsole.c), clock (lclock.c),
 * syscall/ioctl/batch (lvmops.c) and workers (lworker.c).
 * Private to src/host/lua; nothing outside the binding includes it.
 *
 * A VM userdata ("provium.vm") has two user values: 1 = its creation-time
 * boot opts, 2 = a weak-keyed set of its live streams (stream userdata ->
 * true), which vm:_live_streams(), vm:open_stream_count() and the shutdown
 * path (which closes them first) walk. */
#ifndef PROVIUM_LVM_PRIV_H
#define PROVIUM_LVM_PRIV_H

#include <stdbool.h>
#include <stdint.h>
#include <lua.h>
#include <lauxlib.h>

#include "vmm/vmm.h"

#define VM_MT "provium.vm"
#define FILE_MT "provium.file"
#define PROC_MT "provium.process"

/* Size of the buffers backend errors are written into: large enough for a
 * backend message plus the ~2 KiB console tail the qemu backend appends
 * when a guest died (qemu.c err_with_console). */
#define LVM_ERRLEN 8192

enum vm_state { VM_CREATED = 0, VM_BOOTED, VM_PAUSED, VM_SHUTDOWN, VM_DEAD };

struct lvm {
	const struct vmm_ops *ops;
	struct vmm_vm *be;        /* NULL until created and after close */
	char *name, *profile;
	enum vm_state state;
	int64_t boot_ns;          /* monotonic */
	uint32_t cid;
	int open_files;
	int open_streams;
	bool closed;
	/* console (lconsole.c) */
	int64_t con_read;         /* console.log offset the ConsoleStreams read up to */
	int64_t con_read_epoch;   /* boot_ns of the log con_read counts in */
	struct con_ctx *con_streams; /* live ConsoleStream transports */
	int64_t con_consumed;     /* console:expect's offset into console.log */
	int64_t con_epoch;        /* boot_ns of the log con_consumed counts in */
};

struct lfile {
	const struct vmm_ops *ops;
	struct vmm_file *f;       /* NULL when closed */
	struct lvm *vm;           /* kept alive by uservalue 1 */
};

struct lproc {
	const struct vmm_ops *ops;
	struct vmm_proc *p;       /* NULL when closed */
	struct lvm *vm;           /* uservalue 1; uservalue 2 = RunResult once consumed */
	bool consumed;
	bool waited;              /* proc:wait returned once: a second wait raises */
};

/* lvm.c */
struct lvm *lvm_check(lua_State *L, int idx);
/* Raise "vm `a`: cannot <op>: vm is <State>..." unless Booted. */
void lvm_need_booted(lua_State *L, const struct lvm *v, const char *op);
/* Raise "vm `a`: cannot <op>: vm is <State> (<what to do next>)". */
int lvm_state_error(lua_State *L, const struct lvm *v, const char *op);
/* Raise "vm `a`: <op> is not supported by the <backend> backend<hint>". */
int lvm_unsupported(lua_State *L, const struct lvm *v, const char *op);
/* err without the agent client's own "vm `<name>`: <wire op>: " prefix
 * (the binding adds "vm `<name>`: <method>: " itself). */
const char *lvm_errtext(const struct lvm *v, const char *err);
/* Hand obj at idx to lab.lua's auto-close registry (kind "stream", ...). */
void lvm_register_resource(lua_State *L, int idx, const char *kind);
/* Seconds (number) or "5s"-style string at idx -> ns (>= 0); raises with what. */
int64_t lvm_check_duration(lua_State *L, int idx, const char *what);
/* The string value of global `name`, or NULL (borrowed: globals stay alive). */
const char *lvm_global_string(lua_State *L, const char *name);
/* vm:<x>() for a stateless per-VM handle (Clock, Console): push a new
 * userdata of metatable mt whose user value 1 is the VM at index 1. */
int lvm_push_vm_handle(lua_State *L, const char *mt);
/* Push a new metatable `name` with meta set and __index = a table of methods. */
void lvm_new_class(lua_State *L, const char *name, const luaL_Reg *meta,
                   const luaL_Reg *methods);

/* ldisk.c */
/* Add attach_disk / disk to the VM method table at the top of the stack. */
void ldisk_register(lua_State *L);
/* After a boot or restore: plug the VM's disks into the guest (raises
 * "vm `a`: <what>: disk `d`: <err>"). */
void ldisk_plug_all(lua_State *L, int vm_idx, const char *what);
/* Boot-time disks: the profile's root and disks (profile table at
 * profile_idx) merged with the boot opt `disks` (opts table at opts_idx;
 * an entry with a profile disk's id replaces it) into o->disks. Raises on
 * a bad opt. Leaves its buffers on the stack. */
void ldisk_boot_opts(lua_State *L, const struct lvm *v, int opts_idx, int profile_idx,
                     struct vmm_boot_opts *o);
/* After a boot: a Disk for each boot-time disk of o (vm:disk(id)). */
void ldisk_boot_register(lua_State *L, int vm_idx, const struct vmm_boot_opts *o);
/* After a restore: the Disk objects of the snapshot's boot-time disks
 * (header `disks` text, NULL = none), copy-on-write and plugged. */
void ldisk_restore_register(lua_State *L, int vm_idx, const char *disks);
/* lvm.c: the VM loses power (disk:power_cut): Booted/Paused -> Shutdown. */
void lvm_power_cut(lua_State *L, struct lvm *v);

/* lrun.c */
/* Signal number from nil (SIGTERM) / integer / friendly name at idx. */
int lvm_parse_signal(lua_State *L, int idx);
/* Build an exec request from the command at cmd_idx and the args-or-opts
 * table (or nil) at arg_idx; anchors strings in a table it pushes. */
void lvm_build_req(lua_State *L, struct lvm *v, bool async, int cmd_idx, int arg_idx,
                   struct vmm_exec_req *r);
/* Push a RunResult table built from res (frees res). */
void lvm_push_result(lua_State *L, struct vmm_exec_result *res, const char *cmd);
/* Add run / run_async to the VM method table at the top of the stack and
 * register the Process and RunResult metatables. */
void lrun_register(lua_State *L);

/* lfile.c */
/* Entry type names, indexed by enum vmm_entry_type ("file", "directory"...). */
extern const char *const lvm_entry_names[];
/* Add the file ops to the VM method table at the top of the stack and
 * register the File metatable. */
void lfile_register(lua_State *L);

/* lstream.c */
struct lstream_src {
	/* 1 = chunk (*data malloc'd) or *eof; 0 = timeout; -1 = error (err). */
	int (*next)(void *ctx, int64_t timeout_ns, char **data, size_t *len, bool *eof,
	            char *err, size_t errlen);
	void (*close)(void *ctx);
};
/* Push a new, not yet attached stream of the VM at vm_idx (0: a stream of
 * no VM, e.g. a bridge-wide capture). kind names it
 * ("tail_file", "console"...), detail says what it follows, closed_msg is
 * what read_until/expect raise after close ("stream closed"). Records the
 * creation site. */
void lstream_new(lua_State *L, int vm_idx, const char *kind, const char *detail,
                 const char *closed_msg);
/* Attach the transport to the stream at idx and register it (VM live set
 * and the auto-close walker, kind "stream"). */
void lstream_attach(lua_State *L, int idx, const struct lstream_src *src, void *ctx);
/* Close every live stream of the VM at vm_idx (before shutdown); with
 * keep_console, ConsoleStreams stay open to drain the log to EOF. */
void lstream_close_all(lua_State *L, int vm_idx, bool keep_console);
/* vm:_live_streams() -> array of {kind=, detail=, site={file=,line=}|nil} */
int lstream_live(lua_State *L);
/* Guest-agent/back-end streams: open one and push the Stream. */
void lstream_push_guest(lua_State *L, int vm_idx, const struct vmm_stream_req *r,
                        const char *kind, const char *detail, const char *op);
void lstream_register(lua_State *L);

/* lconsole.c, lclock.c, lvmops.c, lworker.c: metatables + VM methods
 * (the VM method table is at the top of the stack). */
void lconsole_register(lua_State *L);
/* vm:reset() is about to run: live ConsoleStreams end at the log's
 * current end (lconsole.c). */
void lconsole_reset_begin(struct lvm *v);
void lclock_register(lua_State *L);
void lvmops_register(lua_State *L);
/* syscall_async(vm, nr, ...) -> PendingSyscall (lworker.c's primitive). */
int lvmops_syscall_async(lua_State *L);
/* Set the owner named in a PendingSyscall's messages. */
void lvmops_pending_set_who(lua_State *L, int idx, const char *who);
/* Whether the PendingSyscall at idx was awaited. */
bool lvmops_pending_done(lua_State *L, int idx);
void lworker_register(lua_State *L);

/* lnet.c: the Switch userdata and the VM's NIC methods (VM methods table
 * at the top of the stack); lnet_hook calls the Lua global hook(vm) when
 * net.lua defines it (after boot/restore, before a snapshot). */
void lnet_register(lua_State *L);
void lnet_hook(lua_State *L, int vm_idx, const char *hook);

#endif
