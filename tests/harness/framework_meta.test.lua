-- test() registration, t.name / t.meta, declarative skip, timeouts that
-- do not fire.

local first_err
do
	test("registered once", function(t) end)
	local ok, err = pcall(test, "registered once", function() end)
	first_err = (not ok) and err or "no error"
end

test("duplicate names raise at registration", function(t)
	t:assert_contains(first_err, "test: duplicate name `registered once` in this file")
end)

test("t.name and t.meta", {tags = {"a", "b"}, spec = "S §1", custom = {x = 1}}, function(t)
	t:assert_eq(t.name, "t.name and t.meta")
	t:assert_eq(t.meta.spec, "S §1")
	t:assert_eq(t.meta.tags[2], "b")
	t:assert_eq(t.meta.custom.x, 1)
end)

test("meta defaults to an empty table", function(t)
	t:assert_eq(type(t.meta), "table")
	t:assert_eq(next(t.meta), nil)
end)

test("argument validation", function(t)
	local e = t:assert_raises(function() test(42, function() end) end)
	t:assert_contains(e, "test: name must be a string, got number")
	e = t:assert_raises(function() test("x", "meta", function() end) end)
	t:assert_contains(e, "meta must be a table, got string")
	e = t:assert_raises(function() test("x", {}) end)
	t:assert_contains(e, "body must be a function, got nil")
	e = t:assert_raises(function() test("x", function() end) end)
	t:assert_contains(e, "from inside a running test")
	e = t:assert_raises(function() todo("later") end)
	t:assert_contains(e, "todo: must be called at file scope")
end)

test("declarative skip never runs the body", {skip = true}, function(t)
	error("must not run")
end)

test("skip with a reason", {skip = "see issue #42"}, function(t)
	error("must not run")
end)

test("t:skip ends the test as skipped", function(t)
	t:skip("runtime condition")
	error("must not run")
end)

test("a generous timeout does not fire", {timeout = "30s"}, function(t)
	local n = 0
	for i = 1, 100000 do n = n + i end
	t:assert_eq(n, 5000050000)
end)

test("the test body sees a per-test scope as provium", function(t)
	t:assert(provium ~= nil)
	t:assert_eq(provium:pack(">I2", 258), "\1\2")
end)

test("t:log accepts any value", function(t)
	t:log("text")
	t:log(42)
	t:log(nil)
	t:assert_eq(#t._log, 3)
	t:assert_eq(t._log[2], "42")
	t:assert_eq(t._log[3], "nil")
end)
