-- The t assertions seen from inside: every failing assertion raises its
-- documented message shape behind the position of the line that called
-- it (as error(msg, 2) would), strings quoted and escaped, tables
-- compared by value with the differing keys listed; user error() keeps
-- Lua's file:line too.

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
	-- no msg: just the detail; strings are quoted
	err = t:assert_raises(function() t:assert_eq("x", "y") end)
	t:assert_eq(bare(t, err), '"x" ~= "y"')
	-- a string and a number that print alike differ, and the message shows it
	err = t:assert_raises(function() t:assert_eq("1", 1) end)
	t:assert_eq(bare(t, err), '"1" ~= 1')
	err = t:assert_raises(function() t:assert_eq(nil, false, "nil vs false") end)
	t:assert_eq(bare(t, err), "nil vs false: nil ~= false")
	-- floats that print alike are shown in full
	err = t:assert_raises(function() t:assert_eq(0.1 + 0.2, 0.3) end)
	t:assert_eq(bare(t, err), "0.30000000000000004 ~= 0.29999999999999999")
end)

test("assert_eq escapes strings: control characters, quotes, newlines", function(t)
	local err = t:assert_raises(function() t:assert_eq('a\tb "q" \\ \27[0m', "x") end)
	t:assert_eq(bare(t, err), [["a\tb \"q\" \\ \027[0m" ~= "x"]])
	-- one-line strings: the message says it all, nothing is added
	t:assert(not err:find("\n", 1, true), err)
end)

test("assert_eq on multi-line strings points at the first differing line", function(t)
	local err = t:assert_raises(function()
		t:assert_eq("one\ntwo\nthree\n", "one\ntwo\nthr3e\n", "output")
	end)
	t:assert_eq(bare(t, err), table.concat({
		[[output: "one\ntwo\nthree\n" ~= "one\ntwo\nthr3e\n"]],
		[[  first difference at line 3, column 4:]],
		[[    left:  "three\n"]],
		[[    right: "thr3e\n"]]}, "\n"))
	-- a missing trailing newline and a missing line are visible
	err = t:assert_raises(function() t:assert_eq("a\nb\n", "a\nb") end)
	t:assert_contains(err, [[first difference at line 2, column 2:]])
	t:assert_contains(err, [[left:  "b\n"]])
	t:assert_contains(err, [[right: "b"]])
	err = t:assert_raises(function() t:assert_eq("a\n", "a\nb\n") end)
	t:assert_contains(err, "first difference at line 2, column 1 (1 vs 2 lines):")
	t:assert_contains(err, "left:  (no such line)")
end)

test("assert_eq on long strings cuts them and shows where they differ", function(t)
	local a, b = string.rep("x", 3000) .. "a", string.rep("x", 3000) .. "b"
	local err = t:assert_raises(function() t:assert_eq(a, b) end)
	t:assert(#err < 1200, "a short message, not both strings: " .. #err .. " bytes")
	t:assert_contains(err, '"...(2801 more bytes) ~= "')
	t:assert_contains(err, "first difference at line 1, column 3001:")
	t:assert_contains(err, 'left:  ..."' .. string.rep("x", 40) .. 'a"')
end)

test("assert_eq compares tables by value", function(t)
	t:assert_eq({}, {})
	t:assert_eq({1, 2, {x = "y", [3] = false}}, {1, 2, {x = "y", [3] = false}})
	local k = {}
	t:assert_eq({[k] = 1}, {[k] = 1}) -- table keys match by identity
	local err = t:assert_raises(function() t:assert_eq({[{}] = 1}, {[{}] = 1}) end)
	t:assert_contains(err, "~=")
	-- cycles: the same shape on both sides is equal, and nothing loops
	local a, b = {v = 1}, {v = 1}
	a.self, b.self = a, b
	t:assert_eq(a, b)
	local c = {v = 2}
	c.self = c
	err = t:assert_raises(function() t:assert_eq(a, c) end)
	t:assert_eq(bare(t, err), "{self = <cycle>, v = 1} ~= {self = <cycle>, v = 2}\n  v: 1 ~= 2")
	-- a metatable's __eq decides alone
	local mt = {__eq = function() return true end}
	t:assert_eq(setmetatable({1}, mt), setmetatable({2}, mt))
	-- a table never equals a non-table
	err = t:assert_raises(function() t:assert_eq({1, 2, 3}, "123") end)
	t:assert_eq(bare(t, err), '{1, 2, 3} ~= "123"')
end)

test("assert_eq on tables lists the differing key paths with both values", function(t)
	local err = t:assert_raises(function()
		t:assert_eq({name = "a", list = {1, 2, 3}, deep = {x = {y = 1}}, ["two words"] = 1, gone = true},
			{name = "b", list = {1, 2}, deep = {x = {y = "1"}}, ["two words"] = 1, extra = {}}, "config")
	end)
	t:assert_eq(bare(t, err), table.concat({
		'config: {deep = {x = {y = 1}}, gone = true, list = {1, 2, 3}, name = "a", ["two words"] = 1}'
			.. ' ~= {deep = {x = {y = "1"}}, extra = {}, list = {1, 2}, name = "b", ["two words"] = 1}',
		'  deep.x.y: 1 ~= "1"',
		'  extra: nil ~= {}',
		'  gone: true ~= nil',
		'  list[3]: 3 ~= nil',
		'  name: "a" ~= "b"'}, "\n"))
	-- many differences: the first ten, then a count
	local x, y = {}, {}
	for i = 1, 30 do x[i], y[i] = i, -i end
	err = t:assert_raises(function() t:assert_eq(x, y) end)
	t:assert_contains(err, "\n  [10]: 10 ~= -10\n  ... and 20 more differences")
	t:assert(not err:find("[11]", 1, true), err)
end)

test("assert_neq names the shared value", function(t)
	t:assert_neq(1, 2)
	t:assert_neq({1}, {2})
	local err = t:assert_raises(function() t:assert_neq("same", "same", "differ") end)
	t:assert_eq(bare(t, err), 'differ: "same" == "same"')
	err = t:assert_raises(function() t:assert_neq(3, 3) end)
	t:assert_eq(bare(t, err), "3 == 3")
	-- by value, like assert_eq
	err = t:assert_raises(function() t:assert_neq({1, {2}}, {1, {2}}) end)
	t:assert_eq(bare(t, err), "{1, {2}} == {1, {2}}")
end)

test("assert_contains finds plain substrings", function(t)
	t:assert_contains("hello world", "o w")
	t:assert_contains("a.b", ".")        -- no pattern magic
	local err = t:assert_raises(function() t:assert_contains("abc", "%a") end)
	t:assert_eq(bare(t, err), 'assert_contains failed: "%a" not found in: "abc"')
	err = t:assert_raises(function() t:assert_contains("abc", "z", "where") end)
	t:assert_eq(bare(t, err), 'where: "z" not found in: "abc"')
	-- a multi-line haystack is a block, one quoted line per line
	err = t:assert_raises(function() t:assert_contains("one\n\ttwo\nthree", "four") end)
	t:assert_eq(bare(t, err), table.concat({
		'assert_contains failed: "four" not found in:',
		[[    "one\n"]],
		[[    "\ttwo\n"]],
		[[    "three"]]}, "\n"))
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
