-- hotplug_default.test.lua — a file whose text never hotplugs (no disk
-- or bridge attach calls; do not add them, not even in comments) boots
-- its VMs without the PCIe root ports: the guest sees none; with the
-- boot opt hotplug = true it sees the four (docs/decisions.md).
local PROFILE = os.getenv("PROVIUM_VM_PROFILE") or "default"

local function root_ports(vm)
	local r = vm:run("cat /sys/bus/pci/devices/*/class"):assert_ok()
	local n = 0
	for _ in r.stdout:gmatch("0x060400") do n = n + 1 end
	return n
end

test("no root ports by default in a file that does not hotplug", function(t)
	t:assert_eq(root_ports(provium:vm("plain", PROFILE):boot()), 0)
	t:assert_eq(root_ports(provium:vm("asked", PROFILE, {hotplug = true}):boot()), 4)
end)
