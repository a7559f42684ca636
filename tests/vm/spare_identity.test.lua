-- tests/vm/spare_identity.test.lua — warm spares (qemu_spare.h) serve only
-- the snapshot they were primed from. A spare is primed (stream loaded,
-- guest run to Hello) right after a restore, for the next restore of the
-- same snapshot; a restore of ANOTHER snapshot with the very same QEMU
-- command line (same profile, memory, devices; snapshots of restored VMs
-- carry their RAM in the stream, so no RAM file tells them apart) must
-- not take it, and a restore of the first snapshot gets its own state.

test("a spare primed for one snapshot never serves another", function(t)
	local a = provium:vm("a", "default"):boot()
	a:write_file("/etc/which", "one")
	local s1 = a:snapshot()
	a:close()

	local b = provium:vm("b", "default")
	b:restore(s1)   -- wants a spare for s1
	t:assert_eq(b:read_file("/etc/which"), "one")
	b:write_file("/etc/which", "two")
	local s2 = b:snapshot()                            -- same command line as s1's
	b:close()

	local c = provium:vm("c", "default")
	c:restore(s2)
	t:assert_eq(c:read_file("/etc/which"), "two", "s2's restore got s2's guest")
	c:close()

	local d = provium:vm("d", "default")
	d:restore(s1)
	t:assert_eq(d:read_file("/etc/which"), "one", "s1's restore got s1's guest")
	d:close()

	local e = provium:vm("e", "default")
	e:restore(s2)
	t:assert_eq(e:read_file("/etc/which"), "two")
	-- a spare's guest ran one `sh -c true` before it was paused: the guest
	-- works as a restored one does
	t:assert_eq(e:run("echo ok"):assert_ok().stdout, "ok\n")
end)
