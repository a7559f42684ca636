-- Ops needing a guest kernel fail the test with a pointer to --vmm qemu.
test("clock", function(t)
	provium:vm("a", "default"):boot():clock():set(0)
end)
