-- tests/vm/lifecycle2.test.lua — the power button really is the ACPI
-- power button (QMP system_powerdown -> KEY_POWER -> the agent, as the
-- minimal init, powers off), vm:shutdown() stays the graceful agent path,
-- and a failing boot's error carries the whole console tail (> 1 KiB),
-- not a prefix cut by a small error buffer.

local PROFILE = "default"

-- Start watchers that print a line on the console when any input device
-- delivers an event: only a power-button press makes one here.
local function watch_power_key(vm)
	vm:run([[for d in /dev/input/event*; do
		[ -e "$d" ] || continue
		( trap "" TERM; head -c 1 "$d" >/dev/null 2>&1 && echo "key-event-on-$d" >/dev/console ) \
			</dev/null >/dev/null 2>&1 &
	done]]):assert_ok()
	return vm:run("ls /dev/input/ 2>/dev/null").stdout
end

test("power_button presses the ACPI power button; the guest powers itself off", function(t)
	local vm = provium:vm("pb", PROFILE):boot()
	local devs = watch_power_key(vm)
	t:assert_contains(devs, "event", "the guest has an input device for the power button")
	t:assert_contains(vm:read_file("/proc/bus/input/devices"), "Power Button")
	vm:power_button()
	t:assert_eq(vm:state(), "shutdown")
	local con = vm:_console_tail(65536) or ""
	t:assert_contains(con, "key-event-on-/dev/input/event", "the guest saw a key event")
	t:assert_contains(t:assert_raises(function() vm:power_button() end),
		"cannot power_button: vm is Shutdown")
end)

test("shutdown stays graceful: no power-button press", function(t)
	local vm = provium:vm("sd", PROFILE):boot()
	watch_power_key(vm)
	vm:shutdown()
	t:assert_eq(vm:state(), "shutdown")
	local con = vm:_console_tail(65536) or ""
	t:assert(not con:find("key-event-on-", 1, true), "no key event on a graceful shutdown:\n" .. con)
end)

test("a failing boot's error carries more than 1 KiB of console", function(t)
	local vm = provium:vm("bigerr", PROFILE, {
		agent_timeout = 60,
		files = {{path = "/sbin/provium-agent", content = "#!/bin/sh\necho init-exits-now\nexit 3\n",
			mode = tonumber("755", 8)}},
	})
	local err = t:assert_raises(function() vm:boot() end)
	t:assert_contains(err, "vm `bigerr`: boot: QEMU exited with status")
	local sep = "--- console (last lines) ---\n"
	local at = err:find(sep, 1, true)
	t:assert(at, "console separator in the error:\n" .. err)
	local console = err:sub(at + #sep)
	t:log(("error %d bytes, console part %d bytes"):format(#err, #console))
	t:assert(#console > 1024, ("console part is %d bytes (want > 1024)"):format(#console))
	-- The panic's trace varies in length (interrupt frames), so its head
	-- may fall out of the tail, and with panic=-1 QEMU can exit before
	-- the closing "---[ end Kernel panic ..." line is out: the tail holds
	-- the panic's head, its end marker, or the end of its stack dump.
	t:assert(console:find("Kernel panic - not syncing", 1, true) or
		console:find("</TASK>", 1, true),
		"the tail ends with the panic:\n" .. console:sub(-600))
end)
