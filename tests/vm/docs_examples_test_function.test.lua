-- The "Writing tests with test() and t" guide's examples, run as written
-- (profile "peios" -> "default"). The anatomy tests each boot their own
-- test-scope VM "v"; the rest share the file-scope VM "shared".
provium.timeout = "10s"        -- file-default per-test timeout

test("baseline I/O round-trips", function(t)
    local vm = provium:vm("v", "default"):boot()
    vm:write_file("/tmp/data", "hello")
    t:assert_eq(vm:read_file("/tmp/data"), "hello")
end)

test("permission bits stick on create", {tags = {"perms"}}, function(t)
    local vm = provium:vm("v", "default"):boot()
    local h = vm:open_file("/tmp/secret", {write=true, create=true, perm=0x180})  -- 0o600
    h:close()
    t:assert_eq(vm:stat("/tmp/secret").perm, 0x180)
end)

local vm = provium:vm("shared", "default"):boot()

test("write to a closed handle raises", function(t)
    local h = vm:open_file("/tmp/x", {write=true, create=true})
    h:close()
    local err = t:assert_raises(function() h:write("oops") end)
    t:assert_contains(tostring(err), "closed")
end)

test("retries until success", function(t)
    vm:write_file("/tmp/flaky-command", "#!/bin/sh\nexit 0\n")
    vm:run("chmod +x /tmp/flaky-command"):assert_ok()
    for i = 1, 5 do
        local r = vm:run("/tmp/flaky-command")
        t:log("attempt " .. i .. " -> exit " .. r.exit_code)
        if r:ok() then return end
    end
    t:fail("flaky-command failed 5 times")
end)

test("wait_until returns the predicate's value", function(t)
    vm:run("sleep 30 >/dev/null 2>&1 &"):assert_ok()
    local pid = wait_until(function()
        local r = vm:run("pidof sleep")
        if r:ok() then return r.stdout:match("%d+") end
    end, {timeout = "30s", interval = "200ms", desc = "sleep running"})
    t:assert(pid)
end)

test("…", {timeout = "5m"}, function(t) t:assert(true) end)
