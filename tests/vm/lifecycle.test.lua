-- tests/vm/lifecycle.test.lua — the qemu backend's VM lifecycle on real
-- guests (TCG): boot opts seen from inside the guest, pause/resume, warm
-- reset, power button, state errors, and boots that cannot reach the
-- agent. Three boots in all (the failing boots stop early).

local PROFILE = "default"

test("boot opts reach the guest; pause, resume, reset, power button", function(t)
	local epoch = 1700000000
	local vm = provium:vm("a", PROFILE, {
		memory = "320M", cpus = 2,
		kernel_cmdline_append = "provium.test_marker=lifecycle",
		initial_time = epoch,
		files = {
			{path = "/etc/provium-test/hello.sh", content = "#!/bin/sh\necho injected\n", mode = tonumber("755", 8)},
			{path = "/etc/provium-test/plain", content = "plain\n"},
		},
	})
	local t0 = _provium_now()
	vm:boot()
	local t1 = _provium_now()
	vm:run("true")
	t:log(string.format("boot %.2f s, first op %.3f s", t1 - t0, _provium_now() - t1))

	local kb = tonumber(vm:read_file("/proc/meminfo"):match("MemTotal:%s+(%d+) kB"))
	t:assert(kb and kb > 200 * 1024 and kb <= 320 * 1024, "MemTotal " .. tostring(kb) .. " kB for 320M")
	t:assert_eq(vm:run("nproc").stdout, "2\n")
	t:assert_contains(vm:read_file("/proc/cmdline"), "provium.test_marker=lifecycle")
	t:assert_contains(vm:read_file("/proc/cmdline"), "console=ttyS0")
	t:assert_eq(vm:run("/etc/provium-test/hello.sh").stdout, "injected\n")
	t:assert_eq(vm:stat("/etc/provium-test/hello.sh").perm, tonumber("755", 8))
	t:assert_eq(vm:stat("/etc/provium-test/plain").perm, tonumber("644", 8))
	local now = tonumber(vm:run("date +%s").stdout)
	t:assert(now >= epoch and now < epoch + 600, "guest clock " .. tostring(now) .. " near " .. epoch)

	vm:pause()
	t:assert_eq(vm:state(), "paused")
	t:assert_contains(t:assert_raises(function() vm:run("true") end), "vm is Paused")
	vm:resume()
	t:assert_eq(vm:run("echo back").stdout, "back\n")

	vm:write_file("/tmp/before-reset", "1")
	vm:reset()
	t:assert_eq(vm:state(), "booted")
	t:assert_eq(vm:exists("/tmp/before-reset"), false, "/tmp is fresh after a warm reboot")
	t:assert_eq(vm:run("echo after").stdout, "after\n")
	local up = tonumber(vm:read_file("/proc/uptime"):match("^(%S+)"))
	t:assert(up < 120, "uptime restarted: " .. tostring(up))

	vm:power_button()
	t:assert_eq(vm:state(), "shutdown")
	t:assert_contains(t:assert_raises(function() vm:run("true") end), "vm is Shutdown")
	t:assert_contains(vm:_console_tail(65536) or "", "provium-agent")
end)

test("state errors name the state", function(t)
	local vm = provium:vm("c", PROFILE)
	t:assert_contains(t:assert_raises(function() vm:run("true") end),
		"vm `c`: cannot run: vm is Created (not booted: boot it first)")
	t:assert_contains(t:assert_raises(function() vm:reset() end), "cannot reset: vm is Created")
	t:assert_contains(t:assert_raises(function() vm:pause() end), "cannot pause: vm is Created")
	t:assert_contains(t:assert_raises(function() vm:resume() end), "cannot resume: vm is Created")
	vm:shutdown()
	t:assert_contains(t:assert_raises(function() vm:boot() end), "cannot boot: vm is Shutdown")
end)

test("a guest whose init is not the agent: the panic and QEMU's exit, error has the console", function(t)
	-- A boot file replaces the injected agent with a script that exits:
	-- PID 1 dies, the kernel panics (panic=-1 -> reboot -> QEMU's
	-- -no-reboot exit) before any handshake. The error names the panic.
	local vm = provium:vm("noagent", PROFILE, {
		agent_timeout = 60,
		files = {{path = "/sbin/provium-agent", content = "#!/bin/sh\necho init-exits-now\nexit 3\n",
			mode = tonumber("755", 8)}},
	})
	local err = t:assert_raises(function() vm:boot() end)
	t:assert_contains(err, "vm `noagent`: boot: the guest kernel panicked: Kernel panic - not syncing: "
		.. "Attempted to kill init!")
	t:assert_contains(err, "(QEMU exited with status 0)")
	t:assert_contains(err, "--- console (around the kernel panic) ---")
	t:assert(err:match("%[%s*%d+%.%d+%]"), "kernel log lines in the error: " .. err)
	t:assert_eq(vm:state(), "created")
end)

test("an agent that never answers: the boot times out with the console", function(t)
	local vm = provium:vm("hang", PROFILE, {
		agent_timeout = 8,  -- margin: under load the kernel needs seconds to reach init
		files = {{path = "/sbin/provium-agent", content = "#!/bin/sh\necho hanging-init-here\nexec sleep 100000\n",
			mode = tonumber("755", 8)}},
	})
	local err = t:assert_raises(function() vm:boot() end)
	t:assert_contains(err, "vm `hang`: boot: the agent did not answer within 8.0 s")
	t:assert_contains(err, "hanging-init-here")
end)
