-- Console reference: vm:console() always succeeds; the chardev is looked
-- for at the first read / write / expect, and a backend without one (the
-- local backend) says "console:read: VMM does not expose a console socket";
-- its read_log is "" (nothing was captured).
local vm = provium:vm("c", "default"):boot()

test("vm:console() succeeds; its methods say there is no console socket", function(t)
	local con = vm:console()
	t:assert(con ~= nil)
	local e = t:assert_raises(function() con:read() end)
	t:assert_contains(e, "vm `c`: console:read: VMM does not expose a console socket")
	t:assert_contains(e, "use --vmm qemu")
	-- read_log reads the captured log: without a guest nothing was captured
	-- (the original's local backend also returns "")
	t:assert_eq(con:read_log(), "")
	t:assert_contains(t:assert_raises(function() con:write("x") end),
		"console:write: VMM does not expose a console socket")
	t:assert_contains(t:assert_raises(function() con:expect("x", "10ms") end),
		"console:expect: VMM does not expose a console socket")
	con:close()
	con:close()
	t:assert_eq(vm:open_stream_count(), 0)
end)
