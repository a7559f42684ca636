-- The t assertions seen from inside: every failing assertion raises
-- exactly its documented message shape, with no file:line prefix and no
-- quoting of compared values; user error() keeps Lua's file:line.

local HERE = "framework_assert.test.lua:"

test("assert passes through a truthy value", function(t)
	t:assert_eq(t:assert(42), 42)
end)

test("assert defaults to `assertion failed`", function(t)
	local err = t:assert_raises(function() t:assert(false) end)
	t:assert_eq(err, "assertion failed")
	t:assert(not err:find(HERE, 1, true), err)
	err = t:assert_raises(function() t:assert(nil, "custom words") end)
	t:assert_eq(err, "custom words")
end)

test("assert_eq names both values", function(t)
	t:assert_eq(1, 1)
	t:assert_eq("a", "a")
	local err = t:assert_raises(function() t:assert_eq(1, 2, "numbers") end)
	t:assert_eq(err, "numbers: 1 ~= 2")
	-- no msg: just the detail, values via tostring (strings unquoted)
	err = t:assert_raises(function() t:assert_eq("x", "y") end)
	t:assert_eq(err, "x ~= y")
	-- a string and a number that print alike still fail (they differ)
	err = t:assert_raises(function() t:assert_eq("1", 1) end)
	t:assert_eq(err, "1 ~= 1")
	err = t:assert_raises(function() t:assert_eq(nil, false, "nil vs false") end)
	t:assert_eq(err, "nil vs false: nil ~= false")
end)

test("assert_neq names the shared value", function(t)
	t:assert_neq(1, 2)
	local err = t:assert_raises(function() t:assert_neq("same", "same", "differ") end)
	t:assert_eq(err, "differ: same == same")
	err = t:assert_raises(function() t:assert_neq(3, 3) end)
	t:assert_eq(err, "3 == 3")
end)

test("assert_contains finds plain substrings", function(t)
	t:assert_contains("hello world", "o w")
	t:assert_contains("a.b", ".")        -- no pattern magic
	local err = t:assert_raises(function() t:assert_contains("abc", "%a") end)
	t:assert_eq(err, '"abc" does not contain "%a"')
	err = t:assert_raises(function() t:assert_contains("abc", "z", "where") end)
	t:assert_eq(err, 'where: "abc" does not contain "z"')
end)

test("assert_contains refuses non-strings", function(t)
	local err = t:assert_raises(function() t:assert_contains(123, "1") end)
	t:assert_contains(err, "haystack (argument 1) must be a string, got number")
	err = t:assert_raises(function() t:assert_contains("123", 1) end)
	t:assert_contains(err, "needle (argument 2) must be a string, got number")
end)

test("assertion messages carry no position, neither the user's nor the framework's", function(t)
	local err = t:assert_raises(function() t:assert_eq(1, 2) end)
	t:assert_eq(err, "1 ~= 2")
	t:assert(not err:find(HERE, 1, true), err)
	t:assert(not err:find("framework", 1, true), err)
	t:assert(not err:find("%.lua:%d+:"), err)
end)

test("assert_raises returns the error value", function(t)
	local err = t:assert_raises(function() error({code = 7}) end)
	t:assert_eq(type(err), "table")
	t:assert_eq(err.code, 7)
	err = t:assert_raises(function() error("plain", 0) end)
	t:assert_eq(err, "plain")
end)

test("assert_raises fails when nothing raised", function(t)
	local ok, err = pcall(t.assert_raises, t, function() end, "should blow up")
	t:assert_eq(ok, false)
	t:assert_eq(err, "should blow up: expected to raise")
	ok, err = pcall(t.assert_raises, t, function() end)
	t:assert_eq(ok, false)
	t:assert_eq(err, "assert_raises: expected to raise")
	t._failed = false -- the swallowed failure above is deliberate
end)

test("fail defaults to `explicit failure (t:fail)`", function(t)
	local err = t:assert_raises(function() t:fail() end)
	t:assert_eq(err, "explicit failure (t:fail)")
	err = t:assert_raises(function() t:fail("my reason") end)
	t:assert_eq(err, "my reason")
end)

test("user error() keeps the user's file:line", function(t)
	local err = t:assert_raises(function() error("boom") end)
	t:assert(err:find("framework_assert%.test%.lua:%d+: boom$"), err)
end)
