-- rng_seed: a seeded virtio-rng device, so /dev/hwrng reads are
-- reproducible for a seed and differ across seeds.

local function hwrng(vm)
    local r = vm:run("dd if=/dev/hwrng bs=32 count=1 2>/dev/null | od -An -tx1 | tr -d ' \\n'",
                     {timeout = "20s"})
    r:assert_ok()
    return r.stdout
end

test("the same seed gives the same bytes, another seed others", function(t)
    local a = provium:vm("a", "default", {rng_seed = 42}):boot()
    local first = hwrng(a)
    t:assert_eq(#first, 64, "32 bytes as hex")
    a:shutdown()
    local a2 = provium:vm("a2", "default", {rng_seed = 42}):boot()
    t:assert_eq(hwrng(a2), first, "another VM booted with seed 42")
    -- a snapshot of a seeded VM restores with its rng device
    local snap = a2:snapshot()
    local a3 = provium:vm("a3", "default")
    a3:restore(snap)
    t:assert_eq(#hwrng(a3), 64, "hwrng readable after restore")
    snap:delete()
    local b = provium:vm("b", "default", {rng_seed = 43}):boot()
    t:assert_neq(hwrng(b), first, "seed 43")
end)

test("a VM without rng_seed has no seeded device", function(t)
    local c = provium:vm("c", "default"):boot()
    t:assert(not c:run("test -e /dev/hwrng && dd if=/dev/hwrng bs=1 count=1 2>/dev/null | wc -c | grep -q 1"):ok(),
             "no hwrng data without rng_seed")
end)
