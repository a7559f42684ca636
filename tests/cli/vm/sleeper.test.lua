-- Used by t_vm_sigkill.sh: boot a VM, announce it, then wait to be killed.
local vm = provium:vm("sleeper", "default"):boot()
test("boot and wait", function(t)
	local f = assert(io.open(os.getenv("SLEEPER_MARK"), "w"))
	f:write("booted\n")
	f:close()
	vm:run("sleep 600")
end)
