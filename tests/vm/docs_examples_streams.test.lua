-- The "Streams and tails" guide's examples, run as written on one
-- file-scope VM (profile "peios" -> "default"; the bridge / NIC capture
-- examples are left out: networking is not available yet).
local vm = provium:vm("v", "default"):boot()

test("next pulls one frame", function(t)
    local stream = vm:tail_file("/var/log/messages")
    vm:run("logger 'event'"):assert_ok()
    local frame = stream:next("5s")
    t:assert(frame and frame:find("event\n", 1, true), frame)
    stream:close()
end)

test("read_until keeps pending bytes, expect discards, drain returns them", function(t)
    vm:write_file("/tmp/s", "")
    local stream = vm:tail_file("/tmp/s")
    vm:run("printf 'one\\ntwo\\nready rest' >> /tmp/s"):assert_ok()
    local line = stream:read_until("\n", "5s")
    t:assert_eq(line, "one\n")
    t:assert_eq(stream:read_until("\n", "5s"), "two\n")
    stream:expect("ready", "30s")
    local chunks = stream:drain("2s")
    t:assert_eq(type(chunks), "table")
    local body = table.concat(chunks)
    t:assert_eq(body, " rest")
    t:assert_eq(#stream:drain(), 0)
    local err = t:assert_raises(function() stream:read_until("never", "200ms") end)
    t:assert_contains(tostring(err), "never")
    err = t:assert_raises(function() stream:expect("absent", "200ms") end)
    t:assert_contains(tostring(err), "absent")
    stream:close()
end)

test("close", function(t)
    local stream = vm:tail_file("/var/log/messages")
    stream:close()
    t:assert_eq(stream:next(), nil)    -- returns nil (closed stream is semantically EOF)
    local err = t:assert_raises(function() stream:expect("x") end)
    t:assert_contains(tostring(err), "stream closed")
    stream:close()
    t:assert_eq(stream:eof(), true)
end)

test("eof loop over a process stream", function(t)
    local proc = vm:run_async("printf 'a\\nb\\n'")
    local stream = proc:stdout_stream()
    local got = {}
    while not stream:eof() do
        local chunk = stream:next("100ms")
        if chunk then got[#got + 1] = chunk end
    end
    t:assert_eq(table.concat(got), "a\nb\n")
    proc:wait("5s"):assert_ok()
end)

test("creation_site", function(t)
    local stream, here = vm:tail_file("/var/log/messages"), debug.getinfo(1, "l").currentline
    local site = stream:creation_site()
    t:assert_eq(site.file, "tests/vm/docs_examples_streams.test.lua")
    t:assert_eq(site.line, here)
    stream:close()
end)

test("idiomatic next loop", function(t)
    vm:write_file("/tmp/loop", "xyz")
    local stream = vm:tail_file("/tmp/loop", {start = "beginning"})
    local got = ""
    while true do
        local frame = stream:next("100ms")
        if not frame then break end       -- EOF or timeout
        got = got .. frame
    end
    t:assert_eq(got, "xyz")
    stream:close()
end)

test("process streams: wait for readiness", function(t)
    local proc = vm:run_async("echo 'listening on :8080'; echo ready; sleep 100")
    local out  = proc:stdout_stream()
    out:expect("listening on :8080", "10s")
    out:expect("ready", "10s")
    local errs = proc:stderr_stream()
    errs:close()
    proc:kill()
end)

test("file streams", function(t)
    local h = vm:open_file("/var/log/messages", {read=true})
    h:seek(0, "end")  -- start at current EOF
    local stream = h:tail_stream()
    vm:run("logger 'trigger landed'"):assert_ok()
    stream:expect("trigger landed", "5s")
    stream:close()
    h = vm:open_file("/dev/console", {read=true})
    stream = vm:fd_stream(h)
    stream:close()
end)

test("snapshot refuses live streams, naming them", function(t)
    local s1, l1 = vm:tail_file("/var/log/messages"), debug.getinfo(1, "l").currentline
    local proc = vm:run_async("sleep 100")
    local s2, l2 = proc:stdout_stream(), debug.getinfo(1, "l").currentline
    local err = t:assert_raises(function() vm:snapshot() end)
    err = tostring(err)
    t:assert_contains(err, "vm:snapshot() refused")
    t:assert_contains(err, "has live streams:")
    t:assert_contains(err, 'tail_file("/var/log/messages") at ' .. "tests/vm/docs_examples_streams.test.lua:" .. l1)
    t:assert_contains(err, "proc_stdout_stream(handle=" .. proc:handle() .. ") at tests/vm/docs_examples_streams.test.lua:" .. l2)
    t:assert_contains(err, "Close the streams before snapshotting")
    s1:close()
    s2:close()
    proc:kill()
    proc:wait("5s")
end)

test("drive an interactive prompt over the console", function(t)
    local console = vm:console()
    local stream  = console:read()
    stream:expect("login:", "30s")
    console:write("root\n")
    stream:expect("Password:", "5s")
    console:write("toor\n")
    stream:expect("# ", "10s")
    stream:close()
end)
