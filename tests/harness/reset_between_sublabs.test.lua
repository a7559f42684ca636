-- reset_between_sublabs.test.lua — reset_between_tests restores the root lab's
-- sub-labs too (the baseline snapshot covers them).
provium.reset_between_tests = true

local dc = provium:lab("dc1")
local a = dc:vm("a", "default"):boot()
a:write_file("/state", "clean")

test("dirty a sub-lab vm", function(t)
	a:write_file("/state", "dirty")
end)

test("the sub-lab vm is back to the baseline", function(t)
	t:assert_eq(a:read_file("/state"), "clean")
	t:assert_eq(a:state(), "booted")
end)
