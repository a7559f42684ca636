/* lruntime.h — the C primitives the runner installs into a test file's Lua
 * state: event emission, clocks, sleep, duration parsing, the per-test
 * deadline (an instruction-count hook) and a process-exiting os.exit.
 *
 * Calling sequence (lua/lstate.c):
 *     L = luaL_newstate(); luaL_openlibs(L);
 *     lruntime_open(L, event_fd);      // sets the _provium_* globals below
 *     ... framework.lua runs each test body through _provium_call_with_deadline
 *
 * Lua globals installed:
 *     _provium_emit(kind, payload)      one event frame; payload is a table
 *                                       packed as a map (an empty `meta`
 *                                       field packs as an empty map)
 *     _provium_now()                    wall clock, float seconds
 *     _provium_monotonic()              monotonic clock, float seconds
 *     _provium_monotonic_ns()           monotonic clock, integer ns
 *     _provium_sleep(sec)               sleep; cut short (and raises) when a
 *                                       test deadline passes meanwhile
 *     _provium_parse_duration(v)        number (seconds) or duration string
 *                                       -> float seconds, or nil, message
 *     _provium_call_with_deadline(sec|nil, fn, ...)
 *                                       -> ok, err, timed_out: pcall(fn, ...)
 *                                       under a deadline that stops even a
 *                                       busy Lua loop
 *     _provium_call_teardown(sec, until_ns|nil, fn, ...)
 *                                       -> ok, result, overran, message:
 *                                       pcall(fn, ...) (a scope's teardown)
 *                                       with until_ns as the deadline of
 *                                       every blocking wait: a wait it cuts
 *                                       short gives up (the close then frees
 *                                       hard) instead of raising, and marks
 *                                       the teardown overrun
 *     os.exit                           flushes stdio and _exit()s (a forked
 *                                       runner must not run its parent's
 *                                       atexit handlers)
 *
 * One Lua state per runner process: the deadline is process-wide. */
#ifndef PROVIUM_LRUNTIME_H
#define PROVIUM_LRUNTIME_H

#include <stdint.h>
#include <lua.h>

/* Install the globals above. event_fd is the runner's event pipe. */
void lruntime_open(lua_State *L, int event_fd);

/* Monotonic deadline (CLOCK_MONOTONIC ns) of the running test, or 0 when
 * no deadline is armed. Blocking bindings may bound their waits with it. */
int64_t lruntime_deadline_ns(void);

/* Raise the timeout error if the armed deadline has passed; else return.
 * For blocking C bindings to call after a bounded wait. Under
 * _provium_call_teardown it never raises: a passed deadline only marks
 * the teardown overrun (naming op), and the caller carries on freeing. */
void lruntime_check_deadline(lua_State *L);

/* The same, naming the blocking op the deadline cut short ("vm:run"): the
 * message then reads "test timed out after 2s (at FILE:LINE, in vm:run)".
 * op is a static string. */
void lruntime_check_deadline_in(lua_State *L, const char *op);

/* Emit a frame {kind, payload={key=value}} (payload {} when key is NULL)
 * from C. 0 or -1/errno. */
int lruntime_emit_str(int fd, const char *kind, const char *key, const char *value);

#endif
