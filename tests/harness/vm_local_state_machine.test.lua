-- The original implementation's conformance checks of the VM state machine,
-- attributes, snapshot handles and preconditions, the clock and console on
-- the local backend, and worker join (its conformance_vm_*, _snapshot*,
-- _clock, _console*, _worker files), in our own words.
local P = "default"

local function err_of(fn, ...)
	local ok, e = pcall(fn, ...)
	assert(not ok, "expected an error")
	return tostring(e)
end

test("wrong-state errors name the state and what to do", function(t)
	local vm = provium:vm("sm", P)
	t:assert_eq(vm:state(), "created")
	for _, op in ipairs({"run", "reset", "power_button", "pause", "snapshot"}) do
		local e = err_of(vm[op], vm, "true")
		t:assert_contains(e, "vm `sm`: cannot " .. op .. ": vm is Created")
		t:assert_contains(e, "not booted")
	end
	vm:boot()
	t:assert_eq(vm:state(), "booted")
	t:assert_contains(err_of(vm.boot, vm), "already booted")
	t:assert_contains(err_of(vm.resume, vm), "not paused")
	vm:shutdown()
	t:assert_eq(vm:state(), "shutdown")
	for _, op in ipairs({"boot", "run", "reset", "power_button"}) do
		local e = err_of(vm[op], vm, op == "run" and "true" or nil)
		t:assert_contains(e, "shutdown")
		t:assert_contains(e, "create a new")
	end
	vm:shutdown()   -- idempotent
	t:assert_eq(vm:state(), "shutdown")
end)

test("cid is nil before boot, a positive guest CID after; tostring names state", function(t)
	local a = provium:vm("c1", P)
	t:assert_eq(a:cid(), nil)
	t:assert_eq(a:profile(), P)
	t:assert_eq(a:name(), "c1")
	a:boot()
	local b = provium:vm("c2", P):boot()
	t:assert(math.type(a:cid()) == "integer" and a:cid() >= 3, tostring(a:cid()))
	t:assert(b:cid() >= 3 and b:cid() ~= a:cid(), "each VM its own CID")
	local s = tostring(a)
	t:assert_contains(s, "c1")
	t:assert_contains(s, "booted")
	a:shutdown()
	t:assert_eq(a:cid(), nil)
end)

test("snapshot refuses with a live stream or an open file, names the fix", function(t)
	local vm = provium:vm("sp", P):boot()
	vm:write_file("/log", "x")
	local s = vm:tail_file("/log")
	t:assert_eq(vm:open_stream_count(), 1)
	t:assert_eq(vm:is_quiescent(), false)
	for _, fn in ipairs({function() vm:snapshot() end,
			function() provium:snapshot() end}) do
		local e = err_of(fn)
		t:assert_contains(e, "live streams")
		t:assert_contains(e, 'tail_file("/log") at ')
		t:assert_contains(e, "Close the streams before snapshotting (or remove the snapshot).")
		t:assert_contains(e, "close")
	end
	s:close()
	t:assert(s:eof(), "closed stream is at EOF")
	t:assert_eq(type(s:drain()), "table")
	local f = vm:open_file("/log", {read = true})
	t:assert_eq(vm:open_file_count(), 1)
	local e = err_of(vm.snapshot, vm)
	t:assert_contains(e, "1 open file handle(s)")
	t:assert_contains(e, "close")
	f:close()
	t:assert_eq(vm:open_file_count(), 0)
	t:assert(vm:is_quiescent())
	local path = os.tmpname() .. ".snap"
	local snap = vm:snapshot(path)
	t:assert_eq(snap:path(), path)
	t:assert(snap:size() > 0)
	t:assert_contains(tostring(snap), "snapshot")
	snap:delete()
	snap:delete()   -- idempotent
	t:assert_eq(snap:size(), 0)
	local tmp = vm:snapshot()
	t:assert(#tmp:path() > 0)
	tmp:delete()
end)

test("tail start offsets: negative counts from the end, clamped", function(t)
	local vm = provium:vm("tl", P):boot()
	vm:write_file("/t", "abcdef")
	local s = vm:tail_file("/t", {start = -2})
	t:assert_eq(s:next("1s"), "ef")
	s:close()
	s = vm:tail_file("/t", {start = -100})
	t:assert_eq(s:next("1s"), "abcdef")
	s:close()
	s = vm:tail_file("/t")
	s:close()
	t:assert_eq(table.concat(s:drain()), "")   -- default start is the end
	t:assert(err_of(vm.tail_file, vm, "/t", {start = "middle"}))
end)

test("local clock: reads the host's clock, validates, refuses to move it", function(t)
	local c = provium:vm("ck", P):boot():clock()
	local now = c:get()
	t:assert(math.type(now) == "float" and now > 1.7e9, tostring(now))
	t:assert_eq(math.type(c:get_ns()), "integer")
	t:assert(c:get_ns() // 1000000000 >= math.floor(now))
	c:sleep(0.001)
	c:sleep("1ms")
	for _, fn in ipairs({function() c:set(0 / 0) end, function() c:set(math.huge) end,
			function() c:advance(0 / 0) end}) do
		t:assert_contains(err_of(fn), "finite")
	end
	t:assert_contains(err_of(c.set, c, 1700000000), "clock:set is not supported by the local backend")
end)

test("local console: read_log is empty, write refuses timeout_ms", function(t)
	local con = provium:vm("cn", P):boot():console()
	t:assert_eq(con:read_log(), "")
	t:assert_contains(err_of(con.write, con, "x", {timeout_ms = 100}),
		"opts.timeout_ms is not supported (use timeout")
	con:close()
end)

test("a joined worker is gone: join again raises an agent error", function(t)
	local vm = provium:vm("wk", P):boot()
	local w = _provium_new_worker(vm)
	t:assert(w:handle() > 0)
	t:assert(w:run("printf hi"):ok())
	t:assert(w:join() ~= nil)
	t:assert_contains(err_of(w.join, w), "agent error")
	w:close()   -- never raises
end)
