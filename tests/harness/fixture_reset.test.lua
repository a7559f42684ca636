-- reset_between_tests: a baseline after the chunk, restored after each test.
provium.reset_between_tests = true
local vm = provium:vm("base", "default"):boot()
vm:write_file("/state", "clean")

test("first test dirties the vm", function(t)
	t:assert_eq(vm:read_file("/state"), "clean")
	vm:write_file("/state", "dirty")
	provium:vm("extra", "default"):boot()
end)
test("second test sees the baseline again", function(t)
	t:assert_eq(vm:read_file("/state"), "clean")
	t:assert_eq(vm:state(), "booted")
	t:assert_eq(provium.extra, nil)
end)
