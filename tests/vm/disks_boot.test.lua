-- disks_boot.test.lua — boot-time disks (vm:boot{disks = {...}}) on a real
-- guest: cold-plugged and visible at boot (serial = id), guest writes that
-- were flushed reach the image, disk:power_cut() loses exactly the writes
-- the guest did not flush, guest-side faults, and the snapshot refusal of
-- a write-back disk (copy-on-write ones are snapshotted:
-- tests/cli/t_vm_fixture_bootdisks.sh).
local PROFILE = os.getenv("PROVIUM_VM_PROFILE") or "default"

local function tmpimg(marker)
	local p = os.tmpname()
	local f = assert(io.open(p, "wb"))
	f:write((marker or "") .. string.rep("\0", 1024 * 1024 - #(marker or "")))
	f:close()
	return p
end

local function host_bytes(img, sector, n)
	local f = assert(io.open(img, "rb"))
	f:seek("set", sector * 512)
	local s = f:read(n)
	f:close()
	return s
end

-- one 4 KiB page, O_DIRECT (it reaches the disk, no page cache); with
-- fsync=true the guest then flushes the disk's write cache
local function guest_write(vm, dev, page, text, fsync)
	return vm:run(("printf '%%s' '%s' | dd of=%s bs=4096 seek=%d count=1 conv=sync%s oflag=direct 2>&1")
		:format(text, dev, page, fsync and ",fsync" or ""))
end
local function guest_read(vm, dev, page)
	return vm:run(("dd if=%s bs=4096 skip=%d count=1 iflag=direct 2>/dev/null"):format(dev, page))
end

test("a boot-time disk is a guest block device from the start", function(t)
	local img = tmpimg("BOOT-DISK-MARK")
	local vm = provium:vm("bd1", PROFILE):boot({disks = {{id = "data", image = img}}})
	local d = vm:disk("data")
	local dev = d:guest_device()
	t:assert(dev and dev:match("^/dev/vd%a$"), "guest device: " .. tostring(dev))
	t:assert_eq(vm:read_file("/sys/block/" .. dev:sub(6) .. "/serial"):gsub("%s+$", ""), "data")
	t:assert_eq(guest_read(vm, dev, 0).stdout:sub(1, 14), "BOOT-DISK-MARK")
	-- flushed guest writes are in the image
	guest_write(vm, dev, 3, "flushed-by-guest", true):assert_ok()
	t:assert_eq(host_bytes(img, 3 * 8, 16), "flushed-by-guest")
	t:assert_eq(d:read_sectors(3 * 8, 1):sub(1, 16), "flushed-by-guest")
	t:assert_contains(t:assert_raises(function() d:detach() end), "boot-time disk")
	vm:shutdown()
	os.remove(img)
end)

test("power_cut loses the writes the guest did not flush, keeps the flushed ones", function(t)
	local img = tmpimg()
	local vm = provium:vm("bd2", PROFILE):boot({disks = {{id = "wal", image = img}}})
	local d = vm:disk("wal")
	local dev = d:guest_device()
	guest_write(vm, dev, 0, "SYNCED-RECORD", true):assert_ok()
	guest_write(vm, dev, 1, "UNSYNCED-RECORD", false):assert_ok()
	-- the unflushed write reached the disk (the guest reads it back
	-- without its page cache) but not the image
	t:assert_eq(guest_read(vm, dev, 1).stdout:sub(1, 15), "UNSYNCED-RECORD")
	t:assert_eq(host_bytes(img, 8, 15), string.rep("\0", 15))
	d:power_cut()
	t:assert_eq(vm:state(), "shutdown")
	t:assert_eq(host_bytes(img, 0, 13), "SYNCED-RECORD")
	t:assert_eq(host_bytes(img, 8, 15), string.rep("\0", 15))
	-- boot again on the same image: the synced record is there, the other not
	local vm2 = provium:vm("bd2b", PROFILE):boot({disks = {{id = "wal", image = img}}})
	local dev2 = vm2:disk("wal"):guest_device()
	t:assert_eq(guest_read(vm2, dev2, 0).stdout:sub(1, 13), "SYNCED-RECORD")
	t:assert_eq(guest_read(vm2, dev2, 1).stdout:sub(1, 15), string.rep("\0", 15))
	vm2:shutdown()
	os.remove(img)
end)

test("writes held at an ordinary shutdown are written through", function(t)
	local img = tmpimg()
	local vm = provium:vm("bd3", PROFILE):boot({disks = {{id = "d", image = img}}})
	local dev = vm:disk("d"):guest_device()
	guest_write(vm, dev, 2, "HELD-THEN-KEPT", false):assert_ok()
	t:assert_eq(host_bytes(img, 16, 14), string.rep("\0", 14))
	vm:shutdown()
	t:assert_eq(host_bytes(img, 16, 14), "HELD-THEN-KEPT")
	os.remove(img)
end)

-- vm:close() (the scope walker's hook) kills a VM without disks or NICs
-- at once; one with a disk still gets the guest's poweroff, so a write
-- the guest only had in its page cache reaches the image.
test("close of a VM with a write-back disk still flushes the guest's page cache", function(t)
	local img = tmpimg()
	local vm = provium:vm("bd5", PROFILE):boot({disks = {{id = "d", image = img}}})
	local dev = vm:disk("d"):guest_device()
	vm:run(("printf PAGE-CACHED | dd of=%s bs=4096 seek=3 count=1 conv=sync 2>&1"):format(dev)):assert_ok()
	vm:close()
	t:assert_eq(vm:state(), "shutdown")
	t:assert_eq(host_bytes(img, 24, 11), "PAGE-CACHED")
	os.remove(img)
	local plain = provium:vm("bd6", PROFILE):boot()
	plain:close()
	t:assert_eq(plain:state(), "shutdown")
end)

test("faults on a boot-time disk hit the guest's I/O", function(t)
	local img = tmpimg("FAULTS")
	local vm = provium:vm("bd4", PROFILE):boot({disks = {{id = "f", image = img}}})
	local d = vm:disk("f")
	local dev = d:guest_device()
	d:fault_inject("eio_read")
	t:assert(not guest_read(vm, dev, 0):ok(), "read under eio_read succeeded")
	d:clear_faults()
	t:assert_eq(guest_read(vm, dev, 0).stdout:sub(1, 6), "FAULTS")
	d:fault_inject("eio_write")
	t:assert(not guest_write(vm, dev, 5, "nope", true):ok(), "write under eio_write succeeded")
	d:clear_faults()
	vm:shutdown()
	os.remove(img)
end)

test("a VM with a write-back boot-time disk refuses a snapshot", function(t)
	local img = tmpimg()
	local vm = provium:vm("bd5", PROFILE):boot({disks = {{id = "s", image = img}}})
	t:assert_contains(t:assert_raises(function() vm:snapshot() end),
		"boot-time disk `s` writes through to its image, which a snapshot does not carry")
	vm:shutdown()
	os.remove(img)
end)

test("power_cut needs a boot-time disk of a running VM", function(t)
	local img = tmpimg()
	local vm = provium:vm("bd6", PROFILE):boot()
	local d = vm:attach_disk({id = "hot", image = img})
	t:assert_contains(t:assert_raises(function() d:power_cut() end), "hotplugged (vm:attach_disk)")
	d:detach()
	vm:shutdown()
	os.remove(img)
end)
