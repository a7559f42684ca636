-- The reference pages' guest-less examples, run as written (profile
-- "peios" -> "default"): the provium module (lab surface, pack/unpack,
-- file-scope keys), json, the test framework and meta tags.
provium.timeout = "30s"

test("provium module surface", function(t)
    local lab = provium:lab("subset")            -- create a sub-lab
    t:assert(lab)
    provium:claim({memory="4G", cpus=2})         -- test-scope claim
    local a = provium:vm("a", "default")
    local b = provium:vm("b", "default")
    provium:boot()                               -- batch-boot every VM in the lab
    t:assert_eq(provium.a:state(), "booted")
    t:assert_eq(provium:vm("b"):state(), "booted")
    if provium.dc1 then provium.dc1:boot() end   -- absent names index to nil
    t:assert_eq(provium.dc1, nil)
    provium:shutdown()                           -- batch-shutdown every VM in the lab
    t:assert_eq(a:state(), "shutdown")
    t:assert_eq(provium.timeout, "30s")
end)

test("pack / unpack", function(t)
    local id, seq, payload = 7, 9, "hi"
    local frame = provium:pack(">I4 I4 s2", id, seq, payload)
    t:assert_eq(frame, string.pack(">I4 I4 s2", id, seq, payload))
    local id2, seq2, payload2 = provium:unpack(">I4 I4 s2", frame)
    t:assert_eq(id2, 7); t:assert_eq(seq2, 9); t:assert_eq(payload2, "hi")
    t:assert_eq(provium.pack(">I4", 1), "\0\0\0\1")
end)

test("unknown file-scope key raises", function(t)
    local err = t:assert_raises(function() provium.bogus = 1 end)
    t:assert_contains(tostring(err), "docs_examples_reference.test.lua:")
    t:assert_contains(tostring(err), "cannot set `provium.bogus`: not a recognised file-scope " ..
        "config key. Known keys: reset_between_tests, timeout")
    t:assert_eq(rawget(provium, "bogus"), nil)
    provium.timeout = "30s"                      -- known keys still assign
end)

test("json", function(t)
    t:assert_eq(json.encode({a = 1, b = "x"}), '{"a":1,"b":"x"}')
    t:assert_eq(json.encode({10, 20, 30}), '[10,20,30]')
    t:assert_eq(json.encode(true), 'true')
    t:assert_eq(json.encode(nil), 'null')
    t:assert_eq(json.encode({a = 1, b = nil}), '{"a":1}')
    t:assert_eq(json.encode({[1]=1, [3]=3}), '[1,null,3]')
    local v = json.decode('{"x": 42}')
    t:assert_eq(v.x, 42)
    v = json.decode('{"a": {"b": ["c", "d"]}}')
    t:assert_eq(v.a.b[2], "d")
end)

test("wait_until", function(t)
    local n = 0
    local v = wait_until(function() n = n + 1; if n >= 3 then return "done" end end,
        {timeout = "5s", interval = 0.01, desc = "counter"})
    t:assert_eq(v, "done")
    local err = t:assert_raises(function()
        wait_until(function() return false end, {timeout = 0.05, interval = 0.01, desc = "never"})
    end)
    t:assert_contains(tostring(err), "wait_until: never not met within")
    err = t:assert_raises(function() wait_until(function() return false end, {timeout = 0.05}) end)
    t:assert_contains(tostring(err), "wait_until: condition not met within")
    err = t:assert_raises(function() wait_until(function() return true end, {timeout = "bogus"}) end)
    t:assert_contains(tostring(err), "bogus")
    err = t:assert_raises(function() wait_until(function() error("boom") end) end)
    t:assert_contains(tostring(err), "boom")
end)

test("t fields and assertion messages", {tags = {"smoke"}, spec = "PSD-X §1"}, function(t)
    t:assert_eq(t.name, "t fields and assertion messages")
    t:assert_eq(t.meta.spec, "PSD-X §1")
    local err = t:assert_raises(function() t:assert(false) end)
    t:assert_contains(tostring(err), "assertion failed")
    err = t:assert_raises(function() t:assert_eq(1, 2, "msg") end)
    t:assert_contains(tostring(err), "msg: 1 ~= 2")
    err = t:assert_raises(function() t:assert_neq(1, 1, "same") end)
    t:assert_contains(tostring(err), "same")
    err = t:assert_raises(function() t:assert_raises(function() end, "quiet") end)
    t:assert_contains(tostring(err), "quiet: expected to raise")
    err = t:assert_raises(function() t:fail() end)
    t:assert_contains(tostring(err), "explicit failure (t:fail)")
    err = t:assert_raises(function() t:assert_contains("abc", 1) end)
    t:log("logged")
end)

test("ipv6 only", {tags = "ipv6"}, function(t) end)
test("quick", {timeout = 0.5}, function(t) end)
test("big batch import", {slow = true}, function(t) error("slow tests are skipped") end)
test("not implemented yet", {skip = true}, function(t) error("never runs") end)
test("waiting on RFC", {skip = "see issue #42"}, function(t) error("never runs") end)
test("skip = 0 runs", {skip = 0}, function(t) end)
test("federation handshake (multi-DC)", {
    tags = {"federation", "slow", "multi-dc"},
    timeout = "5m",
    spec = "PSD-FEDERATION §3.1",
}, function(t)
    local function have_two_dcs() return false end
    if not have_two_dcs() then
        t:skip("requires two DCs")
    end
    error("not reached")
end)
