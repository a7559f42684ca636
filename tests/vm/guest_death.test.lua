-- tests/vm/guest_death.test.lua — a guest kernel that panics fails the
-- boot or the op at once, with the panic line in the message and the
-- console around it (the lines before the panic included), instead of
-- waiting for the agent timeout; with the kit's panic=-1 (QEMU exits
-- after the panic) the error still names the panic, not just QEMU's
-- exit. Four boots.
--
-- Without panic= on the cmdline (kernel_cmdline = "quiet") a panicked
-- kernel hangs with QEMU still running: only the console says it died.
-- The timeouts are set far above what a boot needs and the failures are
-- checked to come well before them (a generous bound, not a timing).

local PROFILE = "default"
local AGENT_TIMEOUT = 120
local AGENT_EXITS = {{path = "/sbin/provium-agent", mode = tonumber("755", 8),
	content = "#!/bin/sh\necho init-about-to-exit\nexit 3\n"}}
local SEP = "--- console (around the kernel panic) ---\n"

-- The console part of err (after SEP), checked to hold the panic line
-- and, before it, the line `before`.
local function console_part(t, err, panic, before)
	local at = err:find(SEP, 1, true)
	t:assert(at, "the console excerpt in the error:\n" .. err)
	local con = err:sub(at + #SEP)
	local p = con:find(panic, 1, true)
	t:assert(p, "the panic line in the excerpt:\n" .. con)
	local b = con:find(before, 1, true)
	t:assert(b and b < p, "`" .. before .. "` before the panic line:\n" .. con)
	return con
end

test("a kernel panic at boot fails the boot at once, not at the agent timeout", function(t)
	local vm = provium:vm("bootpanic", PROFILE, {
		agent_timeout = AGENT_TIMEOUT, kernel_cmdline = "quiet", files = AGENT_EXITS,
	})
	local t0 = _provium_monotonic()
	local err = t:assert_raises(function() vm:boot() end)
	local took = _provium_monotonic() - t0
	t:log(("boot failed after %.1f s"):format(took))
	t:assert_contains(err, "vm `bootpanic`: boot: the guest kernel panicked: "
		.. "Kernel panic - not syncing: Attempted to kill init! exitcode=0x00000300 "
		.. "(QEMU was still running and has been killed)")
	console_part(t, err, "] Kernel panic - not syncing: Attempted to kill init!", "init-about-to-exit")
	t:assert(took < AGENT_TIMEOUT / 2, ("failed after %.1f s, not at once"):format(took))
	t:assert_eq(vm:state(), "created")
end)

test("a kernel panic during an op fails the op at once; the VM is dead", function(t)
	local vm = provium:vm("oppanic", PROFILE, {kernel_cmdline = "quiet"}):boot()
	t:assert_eq(vm:run("echo alive").stdout, "alive\n")
	local t0 = _provium_monotonic()
	local err = t:assert_raises(function()
		vm:run("echo c > /proc/sysrq-trigger; sleep 1000", {timeout = 600})
	end)
	local took = _provium_monotonic() - t0
	t:log(("op failed after %.1f s"):format(took))
	t:assert_contains(err, "vm `oppanic`: run `echo c > /proc/sysrq-trigger; sleep 1000`: "
		.. "the guest kernel panicked: Kernel panic - not syncing: sysrq triggered crash "
		.. "(QEMU was still running and has been killed)")
	console_part(t, err, "] Kernel panic - not syncing: sysrq triggered crash", "sysrq: Trigger a crash")
	t:assert(took < 60, ("failed after %.1f s, not at once"):format(took))
	t:assert_eq(vm:state(), "dead")
	local again = t:assert_raises(function() vm:run("true") end)
	t:assert_contains(again, "the guest kernel panicked: Kernel panic - not syncing: sysrq triggered crash")
end)

test("a panic while waiting on a process ends the wait", function(t)
	local vm = provium:vm("waitpanic", PROFILE, {kernel_cmdline = "quiet"}):boot()
	local p = vm:run_async("sleep 1000")
	vm:run_async("sleep 1; echo c > /proc/sysrq-trigger")
	local t0 = _provium_monotonic()
	local err = t:assert_raises(function() p:wait() end)
	t:assert_contains(err, "the guest kernel panicked: Kernel panic - not syncing: sysrq triggered crash")
	t:assert(_provium_monotonic() - t0 < 60, "the wait ended at once")
end)

test("with panic=-1 (QEMU exits) a panic mid-test is named, with its line in the excerpt", function(t)
	local vm = provium:vm("rebootpanic", PROFILE):boot()  -- the kit's cmdline has panic=-1
	local err = t:assert_raises(function() vm:run("echo c > /proc/sysrq-trigger; sleep 1000") end)
	t:assert_contains(err, "vm `rebootpanic`: run `echo c > /proc/sysrq-trigger; sleep 1000`: "
		.. "the guest kernel panicked: Kernel panic - not syncing: sysrq triggered crash "
		.. "(QEMU exited with status 0)")
	console_part(t, err, "] Kernel panic - not syncing: sysrq triggered crash", "sysrq: Trigger a crash")
	t:assert_eq(vm:state(), "dead")
end)
