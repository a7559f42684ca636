-- A test-scope declaration of a file-scope name fails the test.
provium:vm("shared", "peios")

test("shadow", function(t)
	provium:vm("shared", "peios")
end)

test("reuse is fine", function(t)
	provium:vm("shared")
end)
