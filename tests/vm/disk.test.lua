-- disk.test.lua — vm:attach_disk on a real guest: the image hotplugged as
-- virtio-blk (serial = id), both views of its bytes (guest I/O and the
-- host-side read_sectors / write_sectors), faults the guest's I/O feels,
-- detach, disks attached before boot, and the snapshot refusal.
local PROFILE = os.getenv("PROVIUM_VM_PROFILE") or "default"

local function image(path, bytes)
	local f = assert(io.open(path, "wb"))
	f:write(bytes)
	f:close()
	return path
end

local function tmpimg(name, marker)
	local p = os.tmpname()
	return image(p, (marker or "") .. string.rep("\0", 1024 * 1024 - #(marker or "")))
end

-- the image's bytes read on the host, around the Disk (whose host-side
-- reads honour its faults)
local function host_bytes(img, sector, n)
	local f = assert(io.open(img, "rb"))
	f:seek("set", sector * 512)
	local s = f:read(n)
	f:close()
	return s
end

local vm = provium:vm("dsk", PROFILE):boot()

-- dd of one 512-byte sector, bypassing the guest's page cache
local function guest_read(dev, sector)
	return vm:run(("dd if=%s bs=512 skip=%d count=1 iflag=direct 2>/dev/null"):format(dev, sector))
end
-- one whole 4 KiB page at page index `page` (= sector page * 8), direct:
-- a partial-page write would make the guest read the page first
local function guest_write(dev, page, text)
	return vm:run(("printf '%%s' '%s' | dd of=%s bs=4096 seek=%d count=1 conv=sync oflag=direct 2>&1")
		:format(text, dev, page))
end

test("an attached image is a guest block device with the id as serial", function(t)
	local img = tmpimg("a", "SECTOR-ZERO-MARK")
	local d = vm:attach_disk({id = "vda", size = 1024 * 1024, image = img})
	local dev = d:guest_device()
	t:assert(dev and dev:match("^/dev/vd%a$"), "guest device: " .. tostring(dev))
	t:assert_eq(vm:read_file("/sys/block/" .. dev:sub(6) .. "/serial"):gsub("%s+$", ""), "vda")
	t:assert_eq(vm:read_file("/sys/block/" .. dev:sub(6) .. "/size"):gsub("%s+$", ""), "2048")
	-- host -> guest
	local r = guest_read(dev, 0)
	r:assert_ok()
	t:assert_eq(r.stdout:sub(1, 16), "SECTOR-ZERO-MARK")
	d:write_sectors(7, "written-by-host")
	t:assert_eq(guest_read(dev, 7).stdout:sub(1, 15), "written-by-host")
	-- guest -> host
	guest_write(dev, 9, "written-by-guest"):assert_ok()
	t:assert_eq(d:read_sectors(9 * 8, 1):sub(1, 16), "written-by-guest")
	t:assert_eq(vm:disk("vda"), d)
	d:detach()
	os.remove(img)
end)

test("faults reach the guest: EIO on reads or writes, slow, cleared", function(t)
	local img = tmpimg("f", "FAULTS")
	local d = vm:attach_disk({id = "faulty", image = img})
	local dev = d:guest_device()
	d:fault_inject("eio_read")
	local r = guest_read(dev, 0)
	t:assert(not r:ok(), "a guest read under eio_read must fail")
	local w = guest_write(dev, 3, "still-writable")
	w:assert_ok()
	t:assert_eq(host_bytes(img, 3 * 8, 14), "still-writable", "writes pass under eio_read")
	d:fault_inject("eio_write")
	local w2 = guest_write(dev, 4, "must-fail")
	t:assert(not w2:ok(), "a guest write under eio_write must fail: " .. w2.stdout)
	t:assert_contains(w2.stdout, "Input/output error")
	d:clear_faults()
	t:assert_eq(guest_read(dev, 0).stdout:sub(1, 6), "FAULTS", "reads recover after clear_faults")
	guest_write(dev, 4, "now-it-works"):assert_ok()
	t:assert_eq(d:read_sectors(4 * 8, 1):sub(1, 12), "now-it-works")
	-- slow: the I/O still completes (its pace is bench material, not a test)
	d:fault_inject("slow")
	guest_write(dev, 5, "slow-write"):assert_ok()
	t:assert_eq(guest_read(dev, 5 * 8).stdout:sub(1, 10), "slow-write")
	d:fault_inject("eio_read")
	t:assert(not guest_read(dev, 5 * 8):ok(), "slow + eio_read is still EIO in the guest")
	t:assert_eq(table.concat(d:active_faults(), ","), "eio_read,slow")
	d:clear_faults()
	t:assert_eq(guest_read(dev, 5 * 8).stdout:sub(1, 10), "slow-write")
	d:detach()
	os.remove(img)
end)

test("detach unplugs the device; its slot and id can be used again", function(t)
	local img = tmpimg("d", "DETACH")
	for round = 1, 2 do
		local d = vm:attach_disk({id = "again", image = img})
		local dev = d:guest_device()
		t:assert(vm:stat("/sys/block/" .. dev:sub(6)), "present in round " .. round)
		d:detach()
		t:assert_eq(d:is_detached(), true)
		t:assert_eq(d:guest_device(), nil)
		t:assert(not pcall(vm.stat, vm, "/sys/block/" .. dev:sub(6)),
			"gone from the guest after detach, round " .. round)
	end
	os.remove(img)
end)

test("snapshot refuses while a disk is plugged, works after detach", function(t)
	local img = tmpimg("s", "SNAP")
	local d = vm:attach_disk({id = "snapdisk", image = img})
	t:assert_contains(t:assert_raises(function() vm:snapshot() end),
		"disk `snapdisk` is attached: detach it first")
	d:detach()
	local snap = vm:snapshot()
	t:assert(snap:size() > 0)
	snap:delete()
	os.remove(img)
end)

test("a disk attached before boot is plugged at boot and survives reset", function(t)
	local img = tmpimg("b", "EARLY-BIRD")
	local v2 = provium:vm("early", PROFILE)
	local d = v2:attach_disk({id = "early", image = img})
	t:assert_eq(d:guest_device(), nil, "no guest yet")
	v2:boot()
	local dev = d:guest_device()
	t:assert(dev, "plugged at boot")
	t:assert_eq(v2:run(("dd if=%s bs=512 count=1 2>/dev/null"):format(dev)).stdout:sub(1, 10),
		"EARLY-BIRD")
	v2:reset()
	local found = v2:run("cat /sys/block/vd*/serial")
	t:assert_contains(found.stdout, "early", "still there after a warm reboot")
	v2:shutdown()
	t:assert_eq(d:guest_device(), nil, "unplugged with the guest")
	os.remove(img)
end)
