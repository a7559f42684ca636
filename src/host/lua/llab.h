/* llab.h — the lab side's C half: VM, File, Process and RunResult
 * bindings (lvm.c) plus small helpers lab.lua needs.
 *
 * Calling sequence (runner.c): after luaL_openlibs and the runner-side
 * globals, call luaopen_provium_lab(L), then run the embedded lab.lua
 * (symbol embedded_lab_lua), then framework.lua. luaopen_provium_lab only
 * registers metatables and globals; it runs no Lua code.
 *
 * Globals installed (see docs/internals.md section 3):
 *     _provium_vm_new(name, profile[, opts]) -> VM userdata ("provium.vm")
 *     _provium_parse_size(v) -> integer bytes, or nil, message
 *     _provium_is_vm(v) -> bool */
#ifndef PROVIUM_LLAB_H
#define PROVIUM_LLAB_H

#include <lua.h>

/* Register the lab-side C functions as globals. Returns 0 (pushes nothing). */
int luaopen_provium_lab(lua_State *L);

/* lvm.c: the VM/File/Process/RunResult metatables and _provium_vm_new. */
void lvm_register(lua_State *L);

extern const char embedded_lab_lua[], embedded_lab_lua_end[];

#endif
