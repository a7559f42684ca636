-- A first provium test file: one VM, commands and files.
local vm = provium:vm("smoke", "default"):boot()

test("runs a command", function(t)
    local r = vm:run("echo hello")
    r:assert_ok()
    t:assert_eq(r.stdout, "hello\n")
end)

test("files round-trip", function(t)
    vm:write_file("/tmp/greeting", "world")
    t:assert_eq(vm:read_file("/tmp/greeting"), "world")
end)
