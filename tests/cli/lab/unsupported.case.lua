-- Ops needing a guest kernel fail the test with a pointer to --vmm qemu.
test("syscall", function(t)
	provium:vm("a", "default"):boot():syscall(39)
end)
