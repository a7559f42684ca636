-- The t assertions seen from inside: every failing assertion raises its
-- documented message shape behind the position of the line that called
-- it (as error(msg, 2) would), with no quoting of compared values; user
-- error() keeps Lua's file:line too.

local HERE = "tests/harness/framework_assert.test.lua:"

-- The message of err without its position, which must be this file's.
local function bare(t, err)
	t:assert_eq(type(err), "string")
	local line, msg = err:match("^tests/harness/framework_assert%.test%.lua:(%d+): (.*)$")
	t:assert(line, "no position of this file in: " .. err)
	return msg
end

test("assert passes through a truthy value", function(t)
	t:assert_eq(t:assert(42), 42)
end)

test("assert defaults to `assertion failed`", function(t)
	local err = t:assert_raises(function() t:assert(false) end)
	t:assert_eq(bare(t, err), "assertion failed")
	err = t:assert_raises(function() t:assert(nil, "custom words") end)
	t:assert_eq(bare(t, err), "custom words")
end)

test("assert_eq names both values", function(t)
	t:assert_eq(1, 1)
	t:assert_eq("a", "a")
	local err = t:assert_raises(function() t:assert_eq(1, 2, "numbers") end)
	t:assert_eq(bare(t, err), "numbers: 1 ~= 2")
	-- no msg: just the detail, values via tostring (strings unquoted)
	err = t:assert_raises(function() t:assert_eq("x", "y") end)
	t:assert_eq(bare(t, err), "x ~= y")
	-- a string and a number that print alike still fail (they differ)
	err = t:assert_raises(function() t:assert_eq("1", 1) end)
	t:assert_eq(bare(t, err), "1 ~= 1")
	err = t:assert_raises(function() t:assert_eq(nil, false, "nil vs false") end)
	t:assert_eq(bare(t, err), "nil vs false: nil ~= false")
end)

test("assert_neq names the shared value", function(t)
	t:assert_neq(1, 2)
	local err = t:assert_raises(function() t:assert_neq("same", "same", "differ") end)
	t:assert_eq(bare(t, err), "differ: same == same")
	err = t:assert_raises(function() t:assert_neq(3, 3) end)
	t:assert_eq(bare(t, err), "3 == 3")
end)

test("assert_contains finds plain substrings", function(t)
	t:assert_contains("hello world", "o w")
	t:assert_contains("a.b", ".")        -- no pattern magic
	local err = t:assert_raises(function() t:assert_contains("abc", "%a") end)
	t:assert_eq(bare(t, err), "assert_contains failed: %a not found in: abc")
	err = t:assert_raises(function() t:assert_contains("abc", "z", "where") end)
	t:assert_eq(bare(t, err), "where: z not found in: abc")
end)

test("assert_contains refuses non-strings", function(t)
	local err = t:assert_raises(function() t:assert_contains(123, "1") end)
	t:assert_contains(bare(t, err), "haystack (argument 1) must be a string, got number")
	err = t:assert_raises(function() t:assert_contains("123", 1) end)
	t:assert_contains(bare(t, err), "needle (argument 2) must be a string, got number")
end)

test("the position is the assertion's caller, never the framework", function(t)
	local line = debug.getinfo(1, "l").currentline
	local err = t:assert_raises(function() t:assert_eq(1, 2) end)
	t:assert_eq(err, HERE .. (line + 1) .. ": 1 ~= 2")
	t:assert(not err:find("framework.lua", 1, true), err)
	-- called through pcall directly, there is no Lua caller to name
	local ok, e = pcall(t.assert_eq, t, 1, 2)
	t:assert_eq(ok, false)
	t:assert_eq(e, "1 ~= 2")
	t._failed = false -- the swallowed failure above is deliberate
end)

test("assert_raises returns the error value", function(t)
	local err = t:assert_raises(function() error({code = 7}) end)
	t:assert_eq(type(err), "table")
	t:assert_eq(err.code, 7)
	err = t:assert_raises(function() error("plain", 0) end)
	t:assert_eq(err, "plain")
end)

test("assert_raises fails when nothing raised", function(t)
	local ok, err = pcall(function() t:assert_raises(function() end, "should blow up") end)
	t:assert_eq(ok, false)
	t:assert_eq(bare(t, err), "should blow up: expected to raise")
	ok, err = pcall(function() t:assert_raises(function() end) end)
	t:assert_eq(ok, false)
	t:assert_eq(bare(t, err), "assert_raises: expected to raise")
	t._failed = false -- the swallowed failure above is deliberate
end)

test("fail defaults to `explicit failure (t:fail)`", function(t)
	local err = t:assert_raises(function() t:fail() end)
	t:assert_eq(bare(t, err), "explicit failure (t:fail)")
	err = t:assert_raises(function() t:fail("my reason") end)
	t:assert_eq(bare(t, err), "my reason")
end)

test("user error() keeps the user's file:line", function(t)
	local err = t:assert_raises(function() error("boom") end)
	t:assert(err:find("framework_assert%.test%.lua:%d+: boom$"), err)
end)
