-- Internal VM hooks on --vmm local: vm:_reconnect() exists only for the
-- qemu backend; power_button goes through the backend's op to Shutdown.
test("_reconnect is not supported by the local backend", function(t)
	local vm = provium:vm("ri", "default"):boot()
	t:assert_contains(t:assert_raises(function() vm:_reconnect() end),
		"vm `ri`: _reconnect is not supported by the local backend")
end)
test("power_button ends in Shutdown", function(t)
	local vm = provium:vm("pbl", "default"):boot()
	vm:power_button()
	t:assert_eq(vm:state(), "shutdown")
	t:assert_contains(t:assert_raises(function() vm:power_button() end),
		"cannot power_button: vm is Shutdown")
end)
