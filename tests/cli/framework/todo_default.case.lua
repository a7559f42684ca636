todo()
test("a", function(t) error("must not run") end)
