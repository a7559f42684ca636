-- The reference pages' examples that need a guest (VM, File handle,
-- Worker, Console, Clock, Snapshot), run as written on one file-scope VM
-- booted with the VM page's boot opts (profile "peios" -> "default").
local vm = provium:vm("v", "default", {
    memory = "2G",
    cpus = 4,
    rng_seed = 0xdeadbeef,
    initial_time = 1700000000,
    files = {
        {path = "/etc/hostname", content = "v"},
    },
})
vm:boot()

test("boot opts took effect", function(t)
    t:assert_eq(vm:read_file("/etc/hostname"), "v")
    t:assert_eq(vm:run("hostname").stdout, "v\n")
    t:assert_eq(vm:run("nproc").stdout, "4\n")
    local now = vm:clock():get()
    t:assert(now >= 1700000000 and now < 1700000000 + 3600, "clock: " .. now)
    local f = vm:open_file("/etc/hostname", {read=true})
    local s = f:read(64)
    t:assert_eq(s, "v")
    f:close()
end)

test("batch result shape", function(t)
    local results = vm:batch(function(b)
        b:write_file("/tmp/a", "1")
        b:write_file("/tmp/b", "2")
        b:read_file("/tmp/a")
        b:stat("/tmp/missing")
    end)
    t:assert_eq(#results, 4)
    t:assert_eq(results[1].ok, nil)
    t:assert_eq(results[1].err, nil)
    t:assert_eq(results[2].ok, nil)
    t:assert_eq(results[3].ok, "1")
    t:assert_eq(results[4].err, "No such file or directory")
end)

test("file handle round-trip", function(t)
    local h = vm:open_file("/tmp/data", {write=true, create=true, truncate=true, perm=0x180})  -- 0o600
    local n = h:write("hello world")
    t:assert_eq(n, 11)
    h:close()

    local r = vm:open_file("/tmp/data", {read=true})
    r:seek(6, "set")
    t:assert_eq(r:read(5), "world")
    t:assert_eq(r:tell(), 11)
    r:close()
end)

test("two concurrent writers don't tear", function(t)
    local w1 = vm:spawn_worker()
    local w2 = vm:spawn_worker()

    -- Each worker writes its own block of data, in parallel.
    local p1 = w1:run_async("dd", {args = {"if=/dev/urandom", "of=/tmp/a", "bs=1M", "count=8"}})
    local p2 = w2:run_async("dd", {args = {"if=/dev/urandom", "of=/tmp/b", "bs=1M", "count=8"}})

    p1:wait("10s"):assert_ok()
    p2:wait("10s"):assert_ok()

    t:assert_eq(vm:stat("/tmp/a").size, 8 * 1024 * 1024)
    t:assert_eq(vm:stat("/tmp/b").size, 8 * 1024 * 1024)
end)

test("server emits ready (process page, with sh for the server)", function(t)
    local proc = vm:run_async("sh", {args = {"-c", "echo ready; exec sleep 100"}})
    local out  = proc:stdout_stream()
    out:expect("ready", "5s")
    proc:kill("term")
    local exit = proc:wait("2s")
    t:assert(exit.signal == 15 or exit.exit_code == 0)
end)

test("tail_stream from an open file", function(t)
    local f = vm:open_file("/var/log/messages", {read=true})
    local stream = f:tail_stream()
    vm:run("logger ready"):assert_ok()
    stream:expect("ready", "30s")
    stream:close()
end)

test("console read_log", function(t)
    local log = vm:console():read_log()
    t:assert(log:find("provium-agent", 1, true), log)
end)

test("snapshot, shutdown, restore", function(t)
    vm:write_file("/tmp/marker", "before")
    local s = vm:snapshot()
    -- the docs' "/tmp/before-mutation.snap", made unique: two runs on one
    -- machine must not share (and delete) each other's snapshot
    local base = os.tmpname()
    os.remove(base)
    local path = base .. ".snap"
    local s2 = vm:snapshot(path)
    t:assert(io.open(path, "rb"))
    vm:write_file("/tmp/marker", "after")
    vm:shutdown()
    vm:restore(s)
    t:assert_eq(vm:state(), "booted")
    t:assert_eq(vm:read_file("/tmp/marker"), "before")
    os.remove(path)
end)
