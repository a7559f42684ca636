-- tests/vm/fixture_stacked.test.lua — a fixture whose build restores
-- another fixture (fixtures/stacked uses fixtures/base).

test("a fixture stacked on a fixture", function(t)
	local vm = provium:vm_fixture("fixtures/stacked")
	t:assert_eq(vm:read_file("/etc/fixture-base"), "base\n")
	t:assert_eq(vm:read_file("/etc/fixture-stacked"), "stacked\n")
	local gnow = tonumber(vm:run("date +%s").stdout)
	t:assert(math.abs(gnow - os.time()) <= 30, "guest clock not the host's after a restore")
end)
