-- VM reference, vm:run(cmd_or_args, opts?): the command may also be an
-- argv array (direct exec, no shell), alone or with an opts table; args
-- given twice are an error. Also through run_async and b:run.
local vm = provium:vm("r", "default"):boot()

test("vm:run with an argv array", function(t)
	local r = vm:run({"echo", "a b", "$HOME"})
	r:assert_ok()
	t:assert_eq(r.stdout, "a b $HOME\n")
	r = vm:run({"sh", "-c", "echo $K"}, {env = {K = "v"}})
	t:assert_eq(r.stdout, "v\n")
	t:assert_eq(vm:run({"true"}).exit_code, 0)
	t:assert_contains(t:assert_raises(function() vm:run({"echo"}, {"x"}) end), "args given twice")
	t:assert_contains(t:assert_raises(function() vm:run({"echo"}, {args = {"x"}}) end),
		"args given twice")
	t:assert_contains(t:assert_raises(function() vm:run({}) end), "needs the command first")
	local p = vm:run_async({"sh", "-c", "echo async"})
	t:assert_eq(p:wait("10s").stdout, "async\n")
	local res = vm:batch(function(b) b:run({"echo", "batched"}) end)
	t:assert_eq(res[1].ok.stdout, "batched\n")
end)
