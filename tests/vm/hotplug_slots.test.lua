-- hotplug_slots.test.lua — the boot opt `hotplug` (docs/decisions.md): a
-- VM booted with hotplug = false has no PCIe root ports, so attaching a
-- disk or a bridge while it runs fails with a clear error, and its
-- snapshot restores into a QEMU without them (still no hotplug, working
-- guest); hotplug = true (and this file's default: it mentions
-- attach_disk) gives the ports, attach works, also after a restore.
local PROFILE = os.getenv("PROVIUM_VM_PROFILE") or "default"

local function img()
	local p = os.tmpname()
	local f = assert(io.open(p, "wb")); f:write(string.rep("\0", 1 << 20)); f:close()
	return p
end

-- PCI bridges (class 0x060400) the guest sees: the hotplug root ports
local function root_ports(vm)
	local r = vm:run("cat /sys/bus/pci/devices/*/class"):assert_ok()
	local n = 0
	for c in r.stdout:gmatch("0x060400") do n = n + 1 end
	return n
end

test("hotplug = false: no root ports, attach fails clearly, restore keeps it so", function(t)
	local vm = provium:vm("np", PROFILE, {hotplug = false}):boot()
	t:assert_eq(root_ports(vm), 0)
	local ok, e = pcall(function() vm:attach_disk({id = "d", image = img()}) end)
	t:assert(not ok, "attach_disk into a VM without slots must fail")
	t:assert(tostring(e):find("booted without hotplug slots", 1, true), tostring(e))
	t:assert(tostring(e):find("hotplug = true", 1, true), tostring(e))
	local lan = provium:bridge("lan")
	ok, e = pcall(function() lan:attach(vm) end)
	t:assert(not ok, "a bridge attached to a running VM without slots must fail")
	t:assert(tostring(e):find("booted without hotplug slots", 1, true), tostring(e))
	vm:write_file("/etc/mark", "np")
	local snap = vm:snapshot()
	local r = provium:vm("np2", PROFILE)
	r:restore(snap)
	t:assert_eq(r:read_file("/etc/mark"), "np")
	t:assert_eq(root_ports(r), 0)
	ok, e = pcall(function() r:attach_disk({id = "d", image = img()}) end)
	t:assert(not ok and tostring(e):find("booted without hotplug slots", 1, true), tostring(e))
	snap:delete()
end)

test("hotplug = true and the file default: root ports, attach works, also after restore", function(t)
	local vm = provium:vm("hp", PROFILE, {hotplug = true}):boot()
	t:assert_eq(root_ports(vm), 4)
	local d = vm:attach_disk({id = "d1", image = img()})
	vm:run("test -b " .. d:guest_device()):assert_ok()
	d:detach()
	local snap = vm:snapshot()
	local r = provium:vm("hp2", PROFILE)
	r:restore(snap)
	t:assert_eq(root_ports(r), 4)
	local d2 = r:attach_disk({id = "d2", image = img()})
	r:run("test -b " .. d2:guest_device()):assert_ok()
	d2:detach()
	snap:delete()
	local def = provium:vm("def", PROFILE):boot()
	t:assert_eq(root_ports(def), 4)
end)

test("hotplug must be a boolean", function(t)
	local ok, e = pcall(function() provium:vm("bad", PROFILE, {hotplug = "yes"}):boot() end)
	t:assert(not ok and tostring(e):find("boot opt hotplug must be a boolean", 1, true), tostring(e))
end)
