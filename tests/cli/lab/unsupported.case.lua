-- Ops needing a guest kernel fail the test with a pointer to --vmm qemu.
test("console", function(t)
	provium:vm("a", "default"):boot():console()
end)
