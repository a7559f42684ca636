todo("waiting on the spec")
test("a", function(t) error("must not run") end)
test("b", {tags = {"x"}}, function(t) error("must not run") end)
