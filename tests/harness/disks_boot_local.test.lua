-- disks_boot_local.test.lua — boot-time disks on --vmm local: the boot opt
-- `disks` is validated at creation and at boot, each disk becomes a Disk
-- (host-side view of its image), and power_cut is refused without a guest.
local function tmpimg(marker)
	local p = os.tmpname()
	local f = assert(io.open(p, "wb"))
	f:write((marker or "") .. string.rep("\0", 4096 - #(marker or "")))
	f:close()
	return p
end

test("boot-time disks are Disks after boot", function(t)
	local img = tmpimg("HOST-VIEW")
	local vm = provium:vm("l1", "default"):boot({disks = {{id = "data", image = img}}})
	local d = vm:disk("data")
	t:assert_eq(d:id(), "data")
	t:assert_eq(d:size(), 4096)
	t:assert_eq(d:read_sectors(0, 1):sub(1, 9), "HOST-VIEW")
	t:assert_contains(t:assert_raises(function() d:power_cut() end),
		"power_cut is not supported by the local backend")
	t:assert_contains(t:assert_raises(function() vm:attach_disk({id = "data", image = img}) end),
		"disk `data` is already attached")
	vm:shutdown()
	os.remove(img)
end)

test("bad boot opt disks are named", function(t)
	local img = tmpimg()
	local function err(opts)
		return t:assert_raises(function() provium:vm("bad", "default", opts) end)
	end
	t:assert_contains(err({disks = "x"}), "boot opt disks must be an array of {id=, image=}")
	t:assert_contains(err({disks = {{image = img}}}), "boot opt disks[1].id must be 1-20 characters")
	t:assert_contains(err({disks = {{id = string.rep("a", 21), image = img}}}), "disks[1].id must be 1-20")
	t:assert_contains(err({disks = {{id = "root", image = img}}}), "id `root` is reserved")
	t:assert_contains(err({disks = {{id = "a", image = "/no/such.img"}}}),
		"boot opt disks[1]: image `/no/such.img`: No such file or directory")
	t:assert_contains(err({disks = {{id = "a", image = img, ro = true}}}), "unknown key `ro`")
	t:assert_contains(err({disks = {{id = "a", image = img}, {id = "a", image = img}}}),
		"id `a` is listed twice")
	local many = {}
	for i = 1, 9 do many[i] = {id = "d" .. i, image = img} end
	t:assert_contains(err({disks = many}), "9 boot-time disks")
	os.remove(img)
end)
