-- A first provium test file: one VM booted at file scope and shared by
-- the tests below (each test could also boot its own).
local vm = provium:vm("smoke", "kit"):boot()

test("the guest runs Linux", function(t)
    local r = vm:run("uname -s")
    r:assert_ok()
    t:assert_eq(r.stdout, "Linux\n")
end)

test("files round-trip", function(t)
    vm:write_file("/tmp/greeting", "world")
    t:assert_eq(vm:read_file("/tmp/greeting"), "world")
end)

test("commands see stdin and env", function(t)
    local r = vm:run("read x; echo \"$x-$SUFFIX\"", {stdin = "hi\n", env = {SUFFIX = "there"}})
    t:assert_eq(r.stdout, "hi-there\n")
end)
