-- tests/vm/lifecycle2.test.lua — the power button really is the ACPI
-- power button (QMP system_powerdown -> KEY_POWER -> the agent, as the
-- minimal init, powers off), vm:shutdown() stays the graceful agent path,
-- and a failing boot's error carries > 1 KiB of console around the
-- panic, not a prefix cut by a small error buffer.

local PROFILE = "default"

-- The agent, as init, logs "power button pressed (<device>)" on the
-- console when it reads KEY_POWER, before it powers off.  (Background
-- watchers reading /dev/input/event* raced the press: under load they
-- had not opened the device yet.)
local PRESSED = "power button pressed (event"

test("power_button presses the ACPI power button; the guest powers itself off", function(t)
	local vm = provium:vm("pb", PROFILE):boot()
	t:assert_contains(vm:run("ls /dev/input/ 2>/dev/null").stdout, "event",
		"the guest has an input device for the power button")
	t:assert_contains(vm:read_file("/proc/bus/input/devices"), "Power Button")
	vm:power_button()
	t:assert_eq(vm:state(), "shutdown")
	local con = vm:_console_tail(65536) or ""
	t:assert_contains(con, PRESSED, "the guest read KEY_POWER")
	t:assert(con:find(PRESSED, 1, true) < con:find("powering off", 1, true),
		"the press came before the power-off:\n" .. con)
	t:assert_contains(t:assert_raises(function() vm:power_button() end),
		"cannot power_button: vm is Shutdown")
end)

test("shutdown stays graceful: no power-button press", function(t)
	local vm = provium:vm("sd", PROFILE):boot()
	vm:shutdown()
	t:assert_eq(vm:state(), "shutdown")
	local con = vm:_console_tail(65536) or ""
	t:assert_contains(con, "powering off", "the agent powered off")
	t:assert(not con:find("power button pressed", 1, true),
		"no key press on a graceful shutdown:\n" .. con)
end)

test("a failing boot's error carries more than 1 KiB of console", function(t)
	local vm = provium:vm("bigerr", PROFILE, {
		agent_timeout = 60,
		files = {{path = "/sbin/provium-agent", content = "#!/bin/sh\necho init-exits-now\nexit 3\n",
			mode = tonumber("755", 8)}},
	})
	local err = t:assert_raises(function() vm:boot() end)
	t:assert_contains(err, "vm `bigerr`: boot: the guest kernel panicked: Kernel panic - not syncing")
	t:assert_contains(err, "(QEMU exited with status 0)")
	local sep = "--- console (around the kernel panic) ---\n"
	local at = err:find(sep, 1, true)
	t:assert(at, "console separator in the error:\n" .. err)
	local console = err:sub(at + #sep)
	t:log(("error %d bytes, console part %d bytes"):format(#err, #console))
	t:assert(#console > 1024, ("console part is %d bytes (want > 1024)"):format(#console))
	-- The panic's trace varies in length (timer-interrupt frames), and
	-- with panic=-1 nothing follows it: the excerpt is the real log's
	-- text from before the panic through the panic line, then the log's
	-- first lines after it (who panicked), and it ends with the log's
	-- last line.
	local full = vm:_console_tail(1 << 20) or ""
	local pl = console:match("[^\n]*Kernel panic %- not syncing[^\n]*\n")
	t:assert(pl, "the panic line in the excerpt:\n" .. console)
	local upto = console:sub(1, console:find(pl, 1, true) + #pl - 1)
	t:assert_contains(full, upto, "the excerpt up to the panic line is the log's")
	t:assert_contains(upto, "init-exits-now", "the line before the panic")
	local last = full:match("([^\n]*)\n*$")
	t:assert_eq(console:sub(-#last - 1), last .. "\n", "the excerpt ends with the log's last line")
end)

-- A ConsoleStream open across vm:power_button() delivers what the guest
-- wrote, through its power-down, then EOF (the Streams page: data is
-- dropped only by :close).
test("a console stream open across power_button drains to EOF", function(t)
	local vm = provium:vm("cs", PROFILE):boot()
	local s = vm:console():read()
	vm:run("echo hello-from-the-console > /dev/console"):assert_ok()
	vm:power_button()
	local all = {}
	for _ = 1, 10000 do
		local d = s:next("5s")
		if not d then break end
		all[#all + 1] = d
	end
	all = table.concat(all)
	t:assert_contains(all, "hello-from-the-console")
	t:assert_contains(all, PRESSED)
	t:assert_contains(all, "Power down")
	t:assert(s:eof(), "the stream is at EOF after the guest powered off")
	t:assert_eq(s:next("1s"), nil)
end)
