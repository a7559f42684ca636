test("foo", function(t) end)
test("foo", function(t) end)
