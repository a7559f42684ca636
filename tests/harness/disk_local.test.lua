-- disk_local.test.lua — the Disk userdata's host-side contract (the Disk
-- reference page): sector I/O on the backing image, fault modes and their
-- messages, detach, lookups. The local backend has no guest, so disks are
-- host-side only here; tests/vm/disk.test.lua covers the guest side.

local function image(bytes)
	local path = os.tmpname()
	local f = assert(io.open(path, "wb"))
	f:write(bytes or string.rep("\0", 512 * 64))
	f:close()
	return path
end

local vm = provium:vm("d", "default")
vm:boot()

test("attach_disk defaults: id attached-<vm>, size 4 GiB, no image", function(t)
	local d = vm:attach_disk()
	t:assert_eq(d:id(), "attached-d")
	t:assert_eq(d:size(), 4 * 1024 * 1024 * 1024)
	t:assert_eq(d:is_detached(), false)
	t:assert_eq(#d:active_faults(), 0)
	t:assert_eq(vm:disk("attached-d"), d)
	t:assert_contains(t:assert_raises(function() d:read_sectors(0, 1) end),
		"disk:read_sectors: no backing image — disk:with_image required")
	t:assert_contains(t:assert_raises(function() d:write_sectors(0, "x") end),
		"disk:write_sectors: no backing image — disk:with_image required")
	d:detach()
end)

test("sectors are 512 bytes; write then read back through the image", function(t)
	local img = image()
	local d = vm:attach_disk({id = "vda", size = 512 * 64, image = img})
	t:assert_eq(#d:read_sectors(0, 1), 512)
	t:assert_eq(#d:read_sectors(100 // 4, 4), 4 * 512)
	d:write_sectors(50 // 2, "hello, sector 25")
	local s = d:read_sectors(25, 1)
	t:assert_eq(s:sub(1, 16), "hello, sector 25")
	t:assert_eq(s:sub(17), string.rep("\0", 512 - 16))
	-- the bytes are really in the host file, at 25 * 512
	local f = assert(io.open(img, "rb"))
	f:seek("set", 25 * 512)
	t:assert_eq(f:read(16), "hello, sector 25")
	f:close()
	t:assert_eq(d:guest_device(), nil, "no guest device on the local backend")
	d:detach()
	os.remove(img)
end)

test("size() is the live size of the image, not the modeled one", function(t)
	local img = image(string.rep("\0", 4096))
	local d = vm:attach_disk({id = "sz", size = 1, image = img})
	t:assert_eq(d:size(), 4096)
	local f = assert(io.open(img, "ab"))
	f:write(string.rep("x", 512))
	f:close()
	t:assert_eq(d:size(), 4608)
	d:detach()
	os.remove(img)
end)

test("fault modes: eio_read, eio_write, slow; compose; clear", function(t)
	local img = image()
	local d = vm:attach_disk({id = "flt", image = img})
	d:fault_inject("eio_read")
	local ok, err = pcall(function() return d:read_sectors(0, 1) end)
	t:assert(not ok)
	t:assert_contains(tostring(err), "disk:read_sectors: EIO (fault_inject)")
	d:write_sectors(0, "writes still work")
	d:fault_inject("eio_write")
	t:assert_contains(t:assert_raises(function() d:write_sectors(0, "x") end),
		"disk:write_sectors: EIO (fault_inject)")
	d:fault_inject("slow")
	d:fault_inject("slow")  -- idempotent
	t:assert_eq(table.concat(d:active_faults(), ","), "eio_read,eio_write,slow")
	-- slow + eio_read is still EIO
	t:assert_contains(t:assert_raises(function() d:read_sectors(0, 1) end), "EIO")
	d:clear_faults()
	t:assert_eq(#d:active_faults(), 0)
	t:assert_eq(d:read_sectors(0, 1):sub(1, 17), "writes still work")
	d:fault_inject("slow")
	d:write_sectors(1, "slow but fine")
	t:assert_eq(d:read_sectors(1, 1):sub(1, 13), "slow but fine")
	t:assert_contains(t:assert_raises(function() d:fault_inject("bogus") end),
		"disk:fault_inject: unknown mode `bogus` (valid: eio_read, eio_write, slow)")
	d:detach()
	os.remove(img)
end)

test("detach: ops error, is_detached, idempotent; the id can be reused", function(t)
	local img = image()
	local d = vm:attach_disk({id = "det", image = img})
	d:detach()
	d:detach()
	t:assert_eq(d:is_detached(), true)
	t:assert_contains(t:assert_raises(function() d:read_sectors(0, 1) end),
		"disk:read_sectors: disk is detached")
	t:assert_contains(t:assert_raises(function() d:write_sectors(0, "x") end),
		"disk:write_sectors: disk is detached")
	local again = vm:attach_disk({id = "det", image = img})
	t:assert_eq(again:is_detached(), false)
	t:assert_eq(vm:disk("det"), again)
	again:detach()
	os.remove(img)
end)

test("errors: duplicate id, unknown disk, bad options, missing image", function(t)
	local a = vm:attach_disk({id = "dup"})
	t:assert_contains(t:assert_raises(function() vm:attach_disk({id = "dup"}) end),
		"vm `d`: attach_disk: disk `dup` is already attached")
	t:assert_contains(t:assert_raises(function() vm:disk("nope") end), "vm `d`: no disk `nope`")
	t:assert_contains(t:assert_raises(function() vm:attach_disk({idd = "x"}) end),
		"unknown option `idd` (valid: id, size, image)")
	t:assert_contains(t:assert_raises(function() vm:attach_disk({id = "s", size = -1}) end),
		"size must be a positive integer")
	t:assert_contains(t:assert_raises(function()
		vm:attach_disk({id = "m", image = "/nonexistent/provium.img"})
	end), "image `/nonexistent/provium.img`: No such file or directory")
	t:assert_contains(t:assert_raises(function() vm:attach_disk({id = "dir", image = "/tmp"}) end),
		"is not a regular file or block device")
	local img = image()
	local d = vm:attach_disk({id = "rng", image = img})
	t:assert_contains(t:assert_raises(function() d:read_sectors(64, 1) end),
		"past the end of the image")
	t:assert_contains(t:assert_raises(function() d:read_sectors(-1, 1) end),
		"offset must be a non-negative integer")
	d:detach()
	a:detach()
	os.remove(img)
end)
