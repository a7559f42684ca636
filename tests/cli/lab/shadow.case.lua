-- A test-scope declaration of a file-scope name fails the test.
provium:vm("shared", "default")

test("shadow", function(t)
	provium:vm("shared", "default")
end)

test("reuse is fine", function(t)
	provium:vm("shared")
end)
