-- vm:push_file resolves a relative host path against the directory of the
-- Lua file that calls it (as the fixture cache key does), not the cwd:
-- the test file's own directory, or a require'd helper's.
local helper = require("push_helper.pusher")

test("a relative path in the test file resolves beside the test file", function(t)
	local vm = provium:vm("pf1", "default"):boot()
	vm:push_file("push_data.txt", "/from-test")
	t:assert_eq(vm:read_file("/from-test"), "test-dir data\n")
	vm:push_file("push_helper/push_data.txt", "/sub")
	t:assert_eq(vm:read_file("/sub"), "helper-dir data\n")
end)

test("a relative path in a require'd helper resolves beside the helper", function(t)
	local vm = provium:vm("pf2", "default"):boot()
	helper.push(vm, "/from-helper")
	t:assert_eq(vm:read_file("/from-helper"), "helper-dir data\n")
	helper.push_parent(vm, "/parent")
	t:assert_eq(vm:read_file("/parent"), "test-dir data\n")
end)

test("through pcall (a C frame) the Lua caller still decides", function(t)
	local vm = provium:vm("pf3", "default"):boot()
	local ok, err = pcall(vm.push_file, vm, "push_data.txt", "/via-pcall")
	t:assert(ok, tostring(err))
	t:assert_eq(vm:read_file("/via-pcall"), "test-dir data\n")
	local err2 = t:assert_raises(function() vm:push_file("no-such-file.bin", "/x") end)
	t:assert_contains(err2, "tests/harness/no-such-file.bin")
end)
