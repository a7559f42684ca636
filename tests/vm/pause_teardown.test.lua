-- tests/vm/pause_teardown.test.lua — a test that ends with its VM paused
-- while a process and a file are still open: the scope's teardown frees
-- them without waiting on the paused guest's agent (it cannot answer;
-- each agent op would wait its full timeout), so the next test starts at
-- once. The bound below is generous: the hang it guards against was
-- minutes long.

local ended_at

test("ends paused with a process and a file open", function(t)
	local vm = provium:vm("p", "default"):boot()
	local proc = vm:run_async("sleep 1000")
	local f = vm:open_file("/tmp/held", {write = true, create = true})
	t:assert(proc:pid() > 0)
	vm:pause()
	t:assert_eq(vm:state(), "paused")
	ended_at = _provium_now()
end)

test("the next test starts without waiting on the paused guest", function(t)
	t:assert(ended_at, "the first test ran")
	local waited = _provium_now() - ended_at
	t:assert(waited < 20, ("teardown of the paused VM took %.1f s"):format(waited))
end)
