-- framework_assert_contains_limit.test.lua — test-framework reference details.

test("assert_contains on a non-string raises with the slice 2 limit pointer", function(t)
	local err = t:assert_raises(function() t:assert_contains(42, "4") end)
	t:assert_contains(tostring(err), "slice 2 limit")
	err = t:assert_raises(function() t:assert_contains("42", 4) end)
	t:assert_contains(tostring(err), "slice 2 limit")
end)
