-- Per-test scope: a VM declared inside a test belongs to that test and is
-- shut down when it ends.
test("a throwaway VM from the built-in default profile", function(t)
    local v = provium:vm("scratch", "default"):boot()
    t:assert_eq(v:state(), "booted")
    t:assert(v:run("cat /proc/cmdline").stdout:find("console=ttyS0", 1, true),
             "provium always appends console=ttyS0")
end)
