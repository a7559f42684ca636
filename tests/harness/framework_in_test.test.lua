-- framework_in_test.test.lua — the test framework as the reference
-- implementation's conformance tests check it from inside a test, on
-- --vmm local: truthy asserts, t.meta / t.name, wait_until, sequential
-- tests sharing file-scope VMs without auto-reset, run forms, stat, and
-- duration arguments of clock:sleep (which needs no guest).

local vm = provium:vm("shared", "default"):boot()
local order = {}

test("t:assert accepts any truthy value", function(t)
	t:assert(true)
	t:assert(1)
	t:assert("nonempty")
	t:assert_eq(1, 1)
	t:assert_eq("x", "x")
	t:assert_neq(1, 2)
	t:assert_neq("a", "b")
	t:log("informational")
	t:log("with formatting: " .. tostring(42))
end)

test("t.meta is the table given, t.name the name", {spec = "PSD-FOO §1.2", n = 42}, function(t)
	t:assert_eq(t.meta.spec, "PSD-FOO §1.2")
	t:assert_eq(t.meta.n, 42)
	t:assert_eq(t.name, "t.meta is the table given, t.name the name")
end)

test("empty meta", {}, function(t) t:assert_eq(next(t.meta), nil) end)

test("wait_until returns the predicate's value", function(t)
	t:assert_eq(wait_until(function() return 42 end), 42)
end)

test("wait_until raises on timeout and passes predicate errors on", function(t)
	local ok, err = pcall(function()
		wait_until(function() return false end, {timeout = 0.05})
	end)
	t:assert(not ok)
	t:assert_contains(tostring(err), "wait_until: condition not met within 0.05s")
	ok, err = pcall(function() wait_until(function() error("custom failure") end) end)
	t:assert(not ok)
	t:assert_contains(tostring(err), "custom failure")
end)

test("first", function(t)
	order[#order + 1] = "first"
	vm:write_file("/tmp/marker", "from-first")
end)

test("second runs after first and sees its writes (no auto-reset)", function(t)
	order[#order + 1] = "second"
	t:assert_eq(table.concat(order, ","), "first,second")
	t:assert_eq(vm:read_file("/tmp/marker"), "from-first")
end)

test("run: shell form, argv form, ok(), assert_ok() carries stderr", function(t)
	local r = vm:run("printf hello")
	t:assert(r:ok())
	t:assert_eq(r.exit_code, 0)
	t:assert_eq(r.stdout, "hello")
	r = vm:run("printf", {"%s", "hello world"})
	t:assert_eq(r.stdout, "hello world")
	t:assert_eq(vm:run("echo a b c | wc -c").stdout, "6\n")
	r = vm:run("sh -c 'echo to-stderr >&2; exit 7'")
	t:assert_contains(t:assert_raises(function() r:assert_ok() end), "to-stderr")
end)

test("stat fields", function(t)
	vm:write_file("/tmp/statme", "abcd")
	local m = vm:stat("/tmp/statme")
	t:assert_eq(m.size, 4)
	t:assert_eq(m.entry_type, "file")
end)

test("clock:sleep takes seconds or a duration string", function(t)
	local c = vm:clock()
	c:sleep("10ms")
	c:sleep("0s")
	c:sleep(0)
	c:sleep(0.001)
	t:assert_raises(function() c:sleep("5fortnights") end)
	t:assert_raises(function() c:sleep(-1) end)
end)
