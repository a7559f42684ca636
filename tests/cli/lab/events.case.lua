-- Claim and VM lifecycle events, and auto-close of test-scope VMs.
provium:claim({memory = "1G", cpus = 2})
local keep = provium:vm("filevm", "peios"):boot()

test("scoped", function(t)
	provium:vm("testvm", "peios", {memory = "256M"}):boot()
end)
