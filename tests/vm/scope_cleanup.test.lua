-- scope_cleanup.test.lua — scope rules as the reference implementation's
-- conformance tests check them, on a real guest (one boot): a stream or
-- worker left open by a test is closed when the test ends, a file-scope
-- stream lives on across tests, a lab snapshot refuses while a stream is
-- live, and clock:sleep takes seconds or duration strings.
local vm = provium:vm("a", "default"):boot()
vm:write_file("/tmp/file-scope.log", "")
local file_stream = vm:tail_file("/tmp/file-scope.log")
local leaked_stream, leaked_worker

test("a test leaks a stream and a worker", function(t)
	vm:write_file("/tmp/leak.log", "")
	leaked_stream = vm:tail_file("/tmp/leak.log")
	leaked_worker = vm:spawn_worker()
	t:assert(leaked_worker:run("true"):ok())
end)

test("... both are closed by the time the next test runs", function(t)
	t:assert_eq(provium:vm("a"):state(), "booted")
	t:assert(leaked_stream:eof(), "test-scope stream must be closed")
	t:assert(not pcall(function() leaked_worker:run("true") end), "test-scope worker must be closed")
	t:assert_eq(vm:open_stream_count(), 1, "only the file-scope stream is live")
end)

test("the file-scope stream still delivers", function(t)
	t:assert(not file_stream:eof())
	vm:run("echo appended >> /tmp/file-scope.log"):assert_ok()
	t:assert_eq(file_stream:read_until("\n", "10s"), "appended\n")
end)

test("a lab snapshot refuses while a stream is live", function(t)
	-- provium here is the test's scope (snapshots go downward only): put
	-- the file's VM in a lab of this test and snapshot that
	local l = provium:lab("snap")
	l:include(vm)
	local ok, err = pcall(function() l:snapshot(os.tmpname() .. "-snap") end)
	t:assert(not ok, "snapshot should refuse with an open stream")
	t:assert_contains(tostring(err), "stream")
	ok, err = pcall(function() vm:snapshot() end)
	t:assert(not ok)
	t:assert_contains(tostring(err), "live streams")
end)

test("clock:sleep durations", function(t)
	local c = vm:clock()
	c:sleep("10ms")
	c:sleep("0s")
	c:sleep(0)
	c:sleep(0.001)
	t:assert(not pcall(function() c:sleep("5fortnights") end), "unknown suffix must raise")
end)
