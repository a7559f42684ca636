-- Each test restores the cached fixture: fresh state, no boot.
test("the fixture's setup is there", function(t)
    local vm = provium:vm_fixture("fixtures/configured")
    t:assert_eq(vm:read_file("/etc/demo/state"), "ready\n")
    t:assert_eq(vm:read_file("/etc/demo/motd"), "hello from the host\n")
    vm:write_file("/etc/demo/state", "changed\n")
end)

test("every restore starts from the snapshot", function(t)
    local vm = provium:vm_fixture("fixtures/configured")
    t:assert_eq(vm:read_file("/etc/demo/state"), "ready\n")
end)
