-- The reset_between_tests examples of the test-function guide and the
-- provium module reference, run as written (profile "peios" ->
-- "default"; the guide's `apk add curl` baseline is a written file).
provium.reset_between_tests = true

local vm = provium:vm("shared", "default"):boot()
vm:write_file("/usr/bin/curl", "#!/bin/sh\n")  -- snapshot baseline includes this
vm:run("chmod +x /usr/bin/curl"):assert_ok()

test("a", function(t)
    vm:run("rm /usr/bin/curl"):assert_ok()
    -- After this test, the lab is restored: curl is back.
    provium:vm("v", "default"):boot()
end)

test("b", function(t)
    vm:run("which curl"):assert_ok()  -- still present, baseline restored
    provium:vm("v", "default"):boot()  -- v was reset
end)
