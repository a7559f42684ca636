-- tests/vm/reconnect.test.lua — vm:_reconnect() (internal, tests only):
-- 100 host reconnects of the agent channel in a row to one guest, each
-- followed by a working op; the guest's state survives them all.

test("100 reconnects, each followed by a working op", function(t)
	local vm = provium:vm("rc", "default"):boot()
	vm:write_file("/tmp/keep", "kept")
	for i = 1, 100 do
		vm:_reconnect()
		if i % 2 == 0 then
			t:assert_eq(vm:run("true").exit_code, 0, "run after reconnect " .. i)
		else
			t:assert_eq(vm:read_file("/tmp/keep"), "kept", "read_file after reconnect " .. i)
		end
	end
	t:assert_eq(vm:run("echo done").stdout, "done\n")
	t:assert_contains(t:assert_raises(function() provium:vm("cr", "default"):_reconnect() end),
		"vm is Created")
end)
