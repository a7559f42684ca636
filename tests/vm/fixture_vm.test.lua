-- tests/vm/fixture_vm.test.lua — vm_fixture / lab_fixture on real guests:
-- a fixture and a two-VM lab fixture (`a`
-- and `b`, on one bridge). The stacked fixture is in
-- fixture_stacked.test.lua (one vm_fixture per VM name and file).

test("vm_fixture restores a booted guest", function(t)
	local vm = provium:vm_fixture("fixtures/base")
	t:assert_eq(vm:state(), "booted")
	t:assert_eq(vm:read_file("/etc/fixture-base"), "base\n")
	vm:write_file("/tmp/mine", "x")
	t:assert_eq(vm:run("cat /tmp/mine").stdout, "x")
end)

test("lab_fixture brings two VMs", function(t)
	local lab = provium:lab_fixture("fixtures/pair")
	t:assert_eq(lab.a:read_file("/etc/role"), "first\n")
	t:assert_eq(lab.b:read_file("/etc/role"), "second\n")
	t:assert_eq(#lab.lan:members(), 2)
	local r1 = lab.a:run("head -c 8 /dev/urandom | od -An -tx1").stdout
	local r2 = lab.b:run("head -c 8 /dev/urandom | od -An -tx1").stdout
	t:assert(r1 ~= r2, "the two restored VMs share an RNG state")
end)
