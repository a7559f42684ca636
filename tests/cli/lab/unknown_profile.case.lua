-- Without a provium.toml the only profile is the built-in `default`:
-- any other name fails the test at the declaring line.
test("undeclared profile", function(t)
	provium:vm("a", "peios")
end)

test("default is built in", function(t)
	provium:vm("b", "default"):boot()
end)
