-- tests/vm/reset_between.test.lua — reset_between_tests on a real guest:
-- each test starts from the state at the end of the top-level chunk.
provium.reset_between_tests = true
local vm = provium:vm_fixture("fixtures/base")
vm:write_file("/tmp/chunk", "from the chunk")

test("first test changes the guest", function(t)
	t:assert_eq(vm:read_file("/tmp/chunk"), "from the chunk")
	vm:write_file("/tmp/chunk", "changed")
	vm:write_file("/tmp/extra", "x")
end)

test("second test sees the baseline again", function(t)
	t:assert_eq(vm:read_file("/tmp/chunk"), "from the chunk")
	t:assert(not vm:exists("/tmp/extra"), "/tmp/extra survived the reset")
end)
