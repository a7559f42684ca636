-- wait_until: returns the predicate's value, times out with the
-- documented message, rejects bad timeouts naming the input, propagates
-- predicate errors.

test("returns the first truthy value", function(t)
	local n = 0
	local v = wait_until(function()
		n = n + 1
		if n >= 3 then return "ready" end
	end, {timeout = 5, interval = 0.001})
	t:assert_eq(v, "ready")
	t:assert_eq(n, 3)
end)

test("times out with the description", function(t)
	local err = t:assert_raises(function()
		wait_until(function() return false end, {timeout = "50ms", interval = "10ms", desc = "the flag"})
	end)
	t:assert_contains(err, "wait_until: the flag not met within 0.05s")
	t:assert_contains(err, "framework_wait_until.test.lua:")
end)

test("default description is `condition`", function(t)
	local err = t:assert_raises(function()
		wait_until(function() return nil end, {timeout = 0.02, interval = 0.01})
	end)
	t:assert_contains(err, "wait_until: condition not met within 0.02s")
end)

test("a bad timeout string names the input", function(t)
	local err = t:assert_raises(function()
		wait_until(function() return true end, {timeout = "soon"})
	end)
	t:assert_contains(err, 'bad timeout string "soon"')
	err = t:assert_raises(function()
		wait_until(function() return true end, {timeout = {}})
	end)
	t:assert_contains(err, "bad timeout")
end)

test("predicate errors propagate with their location", function(t)
	local calls = 0
	local err = t:assert_raises(function()
		wait_until(function() calls = calls + 1; error("pred broke") end, {timeout = 5})
	end)
	t:assert_contains(err, "framework_wait_until.test.lua:")
	t:assert_contains(err, "pred broke")
	t:assert_eq(calls, 1, "no retry after a raise")
end)

test("argument checks", function(t)
	local err = t:assert_raises(function() wait_until("nope") end)
	t:assert_contains(err, "predicate must be a function, got string")
	err = t:assert_raises(function() wait_until(function() end, 5) end)
	t:assert_contains(err, "opts must be a table, got number")
end)
