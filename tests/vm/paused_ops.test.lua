-- tests/vm/paused_ops.test.lua — guest ops on a paused VM (issue 11). The
-- VMs guide reads a file between pause() and resume(); the VM reference
-- says ops in the wrong state error cleanly, and a paused guest's agent
-- cannot answer. Decision (docs/decisions.md): the reference wins. Every
-- agent op is refused at once with the state and the remedy; host-side
-- calls (state, snapshot, resume) still work; after resume() the same
-- read succeeds. The bound on the refusal is generous: waiting on the
-- frozen agent would take its full op timeout.

test("read_file on a paused VM is refused at once, naming resume()", function(t)
	local vm = provium:vm("p", "default"):boot()
	local before = vm:read_file("/proc/loadavg")
	t:assert(#before > 0, "read_file works while booted")
	vm:pause()
	t:assert_eq(vm:state(), "paused")
	local t0 = _provium_now()
	local ok, err = pcall(vm.read_file, vm, "/proc/loadavg")
	local took = _provium_now() - t0
	t:assert(not ok, "read_file on a paused VM must fail")
	t:assert_contains(tostring(err), "cannot read_file: vm is Paused (paused: use resume() first)")
	t:assert(took < 5, ("the refusal took %.1f s"):format(took))
	for _, op in ipairs({
		{"run", function() return vm:run("true") end},
		{"write_file", function() return vm:write_file("/tmp/x", "x") end},
		{"exists", function() return vm:exists("/tmp") end},
		{"open_file", function() return vm:open_file("/proc/loadavg", {read = true}) end},
	}) do
		local ok2, e2 = pcall(op[2])
		t:assert(not ok2, op[1] .. " on a paused VM must fail")
		t:assert_contains(tostring(e2), "cannot " .. op[1] .. ": vm is Paused")
	end
	t:assert_eq(vm:state(), "paused", "a refused op leaves the VM paused")
	vm:resume()
	local after = vm:read_file("/proc/loadavg")
	t:assert(#after > 0, "read_file works again after resume()")
end)
