-- The sticky failure flag: an assertion swallowed by pcall still marks the
-- test failed; assert_raises restores the flag after an expected raise.

local function helper_that_asserts(t)
	t:assert_eq("left", "right", "helper check")
end

test("a swallowed assertion sets t._failed", function(t)
	t:assert_eq(t._failed, false)
	local ok = pcall(helper_that_asserts, t)
	t:assert_eq(ok, false)
	t:assert_eq(t._failed, true, "sticky flag after pcall")
	t._failed = false -- deliberate: let this test pass
end)

test("assert_raises around a nested helper leaves the flag clear", function(t)
	local err = t:assert_raises(function() helper_that_asserts(t) end)
	-- raised at the helper's line (the assertion's caller)
	t:assert_eq(err, 'tests/harness/framework_sticky.test.lua:5: helper check: "left" ~= "right"')
	t:assert_eq(t._failed, false)
end)

test("assert_raises keeps an earlier failure", function(t)
	pcall(t.fail, t, "earlier")
	t:assert_raises(function() error("x") end)
	t:assert_eq(t._failed, true, "earlier failure survives assert_raises")
	t._failed = false
end)

test("each test gets a fresh t", function(t)
	t:assert_eq(t._failed, false)
	t:assert_eq(#t._log, 0)
end)
