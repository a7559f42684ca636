-- tests/vm/boot_files_restore.test.lua — boot-opt `files` survive a
-- snapshot/restore: the restored QEMU boots the same initrd (profile +
-- agent + the boot files, carried in the snapshot's "boot_files"
-- section), so vm:reset() after a restore still has them, also for a
-- snapshot of a restored VM. A file written at run time is gone after the
-- reset (the reset really rebooted from the initrd).

local PROFILE = "default"

test("boot files are still there after restore + reset", function(t)
	local a = provium:vm("a", PROFILE, {
		files = {
			{path = "/etc/provium-test/boot.sh", content = "#!/bin/sh\necho from-boot\n", mode = tonumber("755", 8)},
		},
	}):boot()
	t:assert_eq(a:run("/etc/provium-test/boot.sh").stdout, "from-boot\n")
	a:write_file("/etc/provium-test/runtime", "later")
	local s = a:snapshot()
	a:close()

	local b = provium:vm("b", PROFILE)
	b:restore(s)
	t:assert_eq(b:read_file("/etc/provium-test/runtime"), "later")
	b:reset()
	t:assert(not b:exists("/etc/provium-test/runtime"), "the reset did not reboot from the initrd")
	t:assert_eq(b:run("/etc/provium-test/boot.sh").stdout, "from-boot\n")
	t:assert_eq(b:stat("/etc/provium-test/boot.sh").perm, tonumber("755", 8))

	-- a snapshot of the restored (and reset) VM carries them on
	local s2 = b:snapshot()
	b:close()
	local c = provium:vm("c", PROFILE)
	c:restore(s2)
	c:reset()
	t:assert_eq(c:run("/etc/provium-test/boot.sh").stdout, "from-boot\n")
	s:delete()
	s2:delete()
end)
