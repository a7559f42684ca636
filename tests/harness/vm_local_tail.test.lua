-- vm_local_tail.test.lua — vm:tail_file on the local backend: tails of the
-- VM's scratch files, with the guest agent's start semantics, and the
-- snapshot precondition they make.
local vm = provium:vm("tl", "default"):boot()

test("a tail from the end sees only what is appended", function(t)
	vm:write_file("/log", "old\n")
	local s = vm:tail_file("/log")
	local f = vm:open_file("/log", {write = true, append = true})
	f:write("new line\n")
	f:close()
	t:assert_eq(s:read_until("\n", "5s"), "new line\n")
	s:close()
end)

test("start = beginning / offset / negative offset", function(t)
	vm:write_file("/l2", "0123456789")
	local a = vm:tail_file("/l2", {start = "beginning"})
	t:assert_eq(a:read_until("9", "5s"), "0123456789")
	a:close()
	local b = vm:tail_file("/l2", {start = 4})
	t:assert_eq(b:read_until("9", "5s"), "456789")
	b:close()
	local c = vm:tail_file("/l2", {start = -3})
	t:assert_eq(c:read_until("9", "5s"), "789")
	c:close()
end)

test("a tail of a missing file errors with the path", function(t)
	t:assert_contains(t:assert_raises(function() vm:tail_file("/nope") end), "/nope")
end)

test("an open tail blocks a snapshot, naming where it was made", function(t)
	vm:write_file("/l3", "")
	local s = vm:tail_file("/l3")
	local err = t:assert_raises(function() vm:snapshot() end)
	t:assert_contains(err, "live streams")
	t:assert_contains(err, "vm_local_tail.test.lua:35")
	s:close()
	vm:snapshot():delete()
end)

test("fd streams still need a guest", function(t)
	vm:write_file("/l4", "x")
	local f = vm:open_file("/l4", {read = true})
	t:assert_contains(t:assert_raises(function() vm:fd_stream(f) end),
		"fd_stream is not supported by the local backend")
	f:close()
end)
