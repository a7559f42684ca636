-- The test framework on its own: assertions, metadata, skips, json.
test("assertions carry their values", function(t)
    local err = t:assert_raises(function() t:assert_eq(1, 2, "numbers") end)
    t:assert_contains(tostring(err), "numbers: 1 ~= 2")
end)

test("json round-trip", {tags = {"json"}}, function(t)
    local v = json.decode(json.encode({a = 1, list = {1, 2, 3}}))
    t:assert_eq(v.a, 1)
    t:assert_eq(#v.list, 3)
end)

test("slow tests are skipped unless --include-slow", {slow = true}, function(t)
    t:log("only runs with --include-slow")
end)
