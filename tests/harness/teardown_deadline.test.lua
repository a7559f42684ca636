-- tests/harness/teardown_deadline.test.lua — the teardown side of the
-- per-test deadline (_provium_call_teardown, lruntime.c) on --vmm local:
-- a proc:close whose 2 s SIGTERM grace would pass the deadline gives up
-- at the deadline, still kills the process, and marks the teardown
-- overrun naming the op; without a deadline nothing is overrun.
-- The end-to-end run (a test failing for it) is tests/cli/t_teardown_timeout.sh.

local function stubborn(vm, mark)
	local p = vm:run_async(("trap '' TERM; echo $$ >%s; exec sleep 60"):format(mark))
	wait_until(function()
		local f = io.open(mark)
		if not f then return false end
		local pid = tonumber(f:read("l"))
		f:close()
		return pid
	end, {timeout = 5, interval = 0.02, desc = "the process has set its trap"})
	local f = io.open(mark); local pid = f:read("l"); f:close()
	return p, pid
end

local function alive(vm, pid)
	return vm:run("kill -0 " .. pid .. " 2>/dev/null").exit_code == 0
end

test("a proc:close cut by the deadline frees the process and marks the overrun", function(t)
	local vm = provium:vm("v", "default"):boot()
	local mark = _provium_run_dir .. "/stubborn.pid"
	local p, pid = stubborn(vm, mark)
	t:assert(alive(vm, pid), "the process runs")
	local ok, res, overran, msg = _provium_call_teardown(0.2, _provium_monotonic_ns() + 200000000,
		function() p:close() return "closed" end)
	t:assert(ok, tostring(res))
	t:assert_eq(res, "closed")
	t:assert(overran, "the teardown overran")
	t:assert_eq(msg, "test timed out after 0.2s during teardown (in proc:close)")
	t:assert(not alive(vm, pid), "the process was killed")
	os.remove(mark)
end)

test("without a deadline the close waits out its grace; nothing overruns", function(t)
	local vm = provium:vm("v", "default"):boot()
	local mark = _provium_run_dir .. "/stubborn2.pid"
	local p, pid = stubborn(vm, mark)
	local ok, res, overran, msg = _provium_call_teardown(nil, nil, function() p:close() return 1 end)
	t:assert(ok and res == 1)
	t:assert_eq(overran, false)
	t:assert_eq(msg, nil)
	t:assert(not alive(vm, pid), "the process was killed")
end)
