-- Claim and VM lifecycle events, and auto-close of test-scope VMs.
provium:claim({memory = "1G", cpus = 2})
local keep = provium:vm("filevm", "default"):boot()

test("scoped", function(t)
	provium:vm("testvm", "default", {memory = "256M"}):boot()
end)
