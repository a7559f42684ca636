-- Workers as separate guest processes, worker:syscall_async / :await,
-- vm:read_mem and nested syscall buffers, on the default guest
-- (docs/workers.md). x86_64 syscall numbers.
local vm = provium:vm("v", "default"):boot()

local SYS = {read = 0, write = 1, close = 3, mmap = 9, munmap = 11, pread64 = 17,
	pwrite64 = 18, writev = 20, preadv = 295, getpid = 39, getuid = 102, getppid = 110, setresuid = 117,
	futex = 202, openat = 257}
local AT_FDCWD, O_RDWR, O_CREAT, O_WRONLY, O_TRUNC = -100, 2, 0x40, 1, 0x200
local PROT_RW, MAP_SHARED, MAP_PRIVATE_ANON = 3, 1, 0x22
local FUTEX_WAIT, FUTEX_WAKE = 0, 1

local function ok(t, r, what)
	t:assert(r.ret >= 0, ("%s failed: errno %d"):format(what, r.errno))
	return r.ret
end

-- openat(AT_FDCWD, path, flags, 0644) in w (a worker or the vm)
local function open(t, w, path, flags)
	return ok(t, w:syscall(SYS.openat, {args = {AT_FDCWD, 0, flags, 420},
		bufs = {path .. "\0"}, ptrs = {1}}), "open " .. path)
end

-- Wait until process pid sits in syscall nr (/proc/<pid>/syscall).
local function blocked_in(pid, nr)
	wait_until(function()
		local s = vm:read_file(("/proc/%d/syscall"):format(pid))
		return s:match("^(%d+) ") == tostring(nr)
	end, {timeout = 20, desc = ("pid %d blocked in syscall %d"):format(pid, nr)})
end

test("each worker is its own process: getpid differs from the VM's and between workers", function(t)
	local w1, w2 = vm:spawn_worker(), vm:spawn_worker()
	local agent = vm:syscall(SYS.getpid).ret
	local p1, p2 = w1:syscall(SYS.getpid).ret, w2:syscall(SYS.getpid).ret
	t:assert(p1 ~= agent and p2 ~= agent and p1 ~= p2,
		("pids: agent %d, w1 %d, w2 %d"):format(agent, p1, p2))
	t:assert_eq(w1:pid(), p1)
	t:assert_eq(w2:pid(), p2)
	t:assert_eq(w1:syscall(SYS.getppid).ret, agent)   -- a fork of the op server
	t:assert_eq(vm:syscall(SYS.getpid).ret, agent)
	t:assert_contains(tostring(w1), ("(pid %d)"):format(p1))
	w1:close()
	w2:close()
end)

test("setresuid in a worker leaves the agent's and other workers' uid alone", function(t)
	local w1, w2 = vm:spawn_worker(), vm:spawn_worker()
	t:assert_eq(w1:syscall(SYS.setresuid, 1000, 1000, 1000).ret, 0)
	t:assert_eq(w1:syscall(SYS.getuid).ret, 1000)
	t:assert_eq(vm:syscall(SYS.getuid).ret, 0)
	t:assert_eq(w2:syscall(SYS.getuid).ret, 0)
	-- worker:run execs inside the worker: the child inherits its uid
	t:assert_eq(w1:run("id -u").stdout, "1000\n")
	t:assert_eq(w2:run("id -u").stdout, "0\n")
	t:assert_eq(vm:run("id -u").stdout, "0\n")
	-- a file created by the worker belongs to uid 1000
	local fd = open(t, w1, "/tmp/w-owned", O_WRONLY | O_CREAT | O_TRUNC)
	w1:syscall(SYS.close, fd)
	t:assert_eq(vm:run("stat -c %u /tmp/w-owned").stdout, "1000\n")
	w1:close()
	w2:close()
end)

test("syscall_async: a read on a pipe blocks in one worker until another writes", function(t)
	vm:run("rm -f /tmp/fifo-a && mkfifo /tmp/fifo-a"):assert_ok()
	local r, w = vm:spawn_worker(), vm:spawn_worker()
	local rfd = open(t, r, "/tmp/fifo-a", O_RDWR)   -- O_RDWR: the open never blocks
	local wfd = open(t, w, "/tmp/fifo-a", O_RDWR)
	local pending = r:syscall_async(SYS.read, {args = {rfd, 0, 16}, bufs = {("\0"):rep(16)},
		ptrs = {1}})
	blocked_in(r:pid(), SYS.read)
	-- the agent and the other worker still answer while r is blocked
	t:assert(vm:syscall(SYS.getpid).ret > 0)
	t:assert_contains(tostring(pending), "worker " .. r:handle())
	t:assert_eq(w:syscall(SYS.write, {args = {wfd, 0, 5}, bufs = {"hello"}, ptrs = {1}}).ret, 5)
	local res = pending:await("20s")
	t:assert_eq(res.ret, 5)
	t:assert_eq(res.result, 5)
	t:assert_eq(res.errno, 0)
	t:assert_eq(res.out_bufs[1]:sub(1, 5), "hello")
	local e = select(2, pcall(pending.await, pending))
	t:assert_contains(tostring(e), "syscall_async: handle already awaited")
	-- integer form, and an await after the call finished
	local p2 = w:syscall_async(SYS.getpid)
	t:assert_eq(p2:await().ret, w:pid())
	r:close()
	w:close()
end)

test("a pipe ring through three workers", function(t)
	vm:run("cd /tmp && rm -f ring1 ring2 ring3 && mkfifo ring1 ring2 ring3"):assert_ok()
	local ws = {vm:spawn_worker(), vm:spawn_worker(), vm:spawn_worker()}
	-- worker i reads ring i and writes ring i % 3 + 1
	local rfd, wfd = {}, {}
	for i, w in ipairs(ws) do
		rfd[i] = open(t, w, "/tmp/ring" .. i, O_RDWR)
		wfd[i] = open(t, w, "/tmp/ring" .. (i % 3 + 1), O_RDWR)
	end
	local buf = {args = {0, 0, 4}, bufs = {"\0\0\0\0"}, ptrs = {1}}
	local function read_async(i)
		buf.args[1] = rfd[i]
		return ws[i]:syscall_async(SYS.read, buf)
	end
	local p2, p3 = read_async(2), read_async(3)
	blocked_in(ws[2]:pid(), SYS.read)
	blocked_in(ws[3]:pid(), SYS.read)
	local p1 = read_async(1)
	blocked_in(ws[1]:pid(), SYS.read)
	-- worker 3 cannot run anything until its read returns: send the token
	-- into ring 2 from the VM itself (worker 1 is blocked as well)
	local fd = open(t, vm, "/tmp/ring2", O_WRONLY)
	t:assert_eq(vm:syscall(SYS.write, {args = {fd, 0, 4}, bufs = {"tok1"}, ptrs = {1}}).ret, 4)
	vm:syscall(SYS.close, fd)
	t:assert_eq(p2:await("20s").out_bufs[1], "tok1")
	-- 2 -> 3 -> 1 -> 2
	t:assert_eq(ws[2]:syscall(SYS.write, {args = {wfd[2], 0, 4}, bufs = {"tok2"}, ptrs = {1}}).ret, 4)
	t:assert_eq(p3:await("20s").out_bufs[1], "tok2")
	t:assert_eq(ws[3]:syscall(SYS.write, {args = {wfd[3], 0, 4}, bufs = {"tok3"}, ptrs = {1}}).ret, 4)
	t:assert_eq(p1:await("20s").out_bufs[1], "tok3")
	local back = read_async(2)
	t:assert_eq(ws[1]:syscall(SYS.write, {args = {wfd[1], 0, 4}, bufs = {"tok4"}, ptrs = {1}}).ret, 4)
	t:assert_eq(back:await("20s").out_bufs[1], "tok4")
	for _, w in ipairs(ws) do w:close() end
end)

test("a futex ring through three workers sharing a mapped file", function(t)
	vm:write_file("/tmp/futex-ring", ("\0"):rep(4096))
	local ws, addr, fds = {}, {}, {}
	for i = 1, 3 do
		ws[i] = vm:spawn_worker()
		fds[i] = open(t, ws[i], "/tmp/futex-ring", O_RDWR)
		addr[i] = ok(t, ws[i]:syscall(SYS.mmap, 0, 4096, PROT_RW, MAP_SHARED, fds[i], 0), "mmap")
	end
	-- word k (4 bytes at 4*(k-1)) is what worker k waits on while it is 0
	local function wait_async(i)
		return ws[i]:syscall_async(SYS.futex, addr[i] + 4 * (i - 1), FUTEX_WAIT, 0, 0, 0, 0)
	end
	-- worker i sets word k to 1 (through its own mapping) and wakes it
	local function wake(i, k)
		local word = addr[i] + 4 * (k - 1)
		-- pwrite into the shared file: every mapping sees it
		t:assert_eq(ws[i]:syscall(SYS.pwrite64, {args = {fds[i], 0, 4, 4 * (k - 1)},
			bufs = {"\1\0\0\0"}, ptrs = {1}}).ret, 4)
		return ws[i]:syscall(SYS.futex, word, FUTEX_WAKE, 1, 0, 0, 0).ret
	end
	local p1, p2 = wait_async(1), wait_async(2)
	blocked_in(ws[1]:pid(), SYS.futex)
	blocked_in(ws[2]:pid(), SYS.futex)
	t:assert_eq(wake(3, 1), 1)               -- 3 wakes 1 (one waiter woken)
	t:assert_eq(p1:await("20s").ret, 0)
	local p3 = wait_async(3)
	blocked_in(ws[3]:pid(), SYS.futex)
	t:assert_eq(wake(1, 2), 1)               -- 1 wakes 2
	t:assert_eq(p2:await("20s").ret, 0)
	t:assert_eq(wake(2, 3), 1)               -- 2 wakes 3: the ring is closed
	t:assert_eq(p3:await("20s").ret, 0)
	t:assert_eq(ws[1]:read_mem(addr[1], 12), "\1\0\0\0\1\0\0\0\1\0\0\0")
	for _, w in ipairs(ws) do w:close() end
end)

test("read_mem reads the VM agent's or the worker's own memory", function(t)
	vm:write_file("/tmp/known", "hello-mem-0123")
	local function check(w)
		local fd = open(t, w, "/tmp/known", 0)
		local a = ok(t, w:syscall(SYS.mmap, 0, 4096, PROT_RW, MAP_PRIVATE_ANON, -1, 0), "mmap")
		t:assert_eq(w:syscall(SYS.pread64, fd, a + 100, 14, 0).ret, 14)
		t:assert_eq(w:read_mem(a + 100, 14), "hello-mem-0123")
		t:assert_eq(w:read_mem(a, 4), "\0\0\0\0")
		t:assert_eq(w:read_mem(a, 0), "")
		w:syscall(SYS.munmap, a, 4096)
		w:syscall(SYS.close, fd)
		return a
	end
	check(vm)
	local w = vm:spawn_worker()
	check(w)
	-- an unmapped address is (nil, errno), not a crash of the agent
	local bytes, e = vm:read_mem(0, 8)
	t:assert_eq(bytes, nil)
	t:assert_eq(e, 5)                        -- EIO
	bytes, e = w:read_mem(0, 8)
	t:assert_eq(bytes, nil)
	t:assert_eq(e, 5)
	t:assert(vm:syscall(SYS.getpid).ret > 0)
	local err = select(2, pcall(vm.read_mem, vm, -1, 4))
	t:assert_contains(tostring(err), "read_mem: addr must be >= 0")
	err = select(2, pcall(vm.read_mem, vm, 4096, 64 << 20))
	t:assert_contains(tostring(err), "read_mem")
	w:close()
end)

-- struct iovec {void *base; size_t len;} x2, bases patched by nested
local function iov2(l1, l2)
	return string.pack("<I8I8I8I8", 0, l1, 0, l2)
end
local NESTED2 = {{parent = 1, child = 2, offset = 0}, {parent = 1, child = 3, offset = 16}}

test("nested pointers: writev and readv through an iovec array", function(t)
	for _, w in ipairs({vm, vm:spawn_worker()}) do
		local fd = open(t, w, "/tmp/iov", O_RDWR | O_CREAT | O_TRUNC)
		local r = w:syscall(SYS.writev, {args = {fd, 0, 2},
			bufs = {iov2(6, 6), "hello ", "world\n"}, ptrs = {1}, nested = NESTED2})
		t:assert_eq(r.ret, 12)
		t:assert_eq(vm:read_file("/tmp/iov"), "hello world\n")
		-- the patched iovec came back with real addresses in it
		local b1, l1, b2 = string.unpack("<I8I8I8", r.out_bufs[1])
		t:assert(b1 ~= 0 and b2 ~= 0 and b1 ~= b2 and l1 == 6)
		r = w:syscall(SYS.preadv, {args = {fd, 0, 2, 0},
			bufs = {iov2(5, 7), ("\0"):rep(5), ("\0"):rep(7)}, ptrs = {1}, nested = NESTED2})
		t:assert_eq(r.ret, 12)
		t:assert_eq(r.out_bufs[2], "hello")
		t:assert_eq(r.out_bufs[3], " world\n")
		w:syscall(SYS.close, fd)
		if w ~= vm then w:close() end
	end
	-- ptrs may leave a buffer without an argument slot: it is then
	-- reached only through the nested pointer
	local r = vm:syscall(SYS.getpid, {bufs = {"\0\0\0\0\0\0\0\0", "x"}, ptrs = {},
		nested = {{parent = 1, child = 2, offset = 0}}})
	t:assert(string.unpack("<I8", r.out_bufs[1]) ~= 0)
end)

test("worker errors: joined, dead, bad nested specs", function(t)
	local w = vm:spawn_worker()
	local pid = w:pid()
	local rs = w:join()
	t:assert_eq(rs.exit_status.status, 0)
	t:assert_eq(rs.exit_status.signal, nil)
	t:assert_eq(vm:exists("/proc/" .. pid), false)          -- reaped
	local e = select(2, pcall(w.syscall, w, SYS.getpid))
	t:assert_contains(tostring(e), "unknown worker handle " .. w:handle())
	e = select(2, pcall(w.syscall_async, w, SYS.getpid))
	t:assert_contains(tostring(e), "already joined")
	w:close()                                               -- no-op

	-- a worker killed under a pending async syscall
	local k = vm:spawn_worker()
	local kpid = k:pid()
	vm:run("rm -f /tmp/fifo-k && mkfifo /tmp/fifo-k"):assert_ok()
	local fd = open(t, k, "/tmp/fifo-k", O_RDWR)
	local p = k:syscall_async(SYS.read, {args = {fd, 0, 1}, bufs = {"\0"}, ptrs = {1}})
	blocked_in(kpid, SYS.read)
	k:kill("kill")
	e = select(2, pcall(p.await, p, "20s"))
	t:assert_contains(tostring(e), ("worker %d"):format(k:handle()))
	e = select(2, pcall(k.syscall, k, SYS.getpid))
	t:assert_contains(tostring(e), ("worker %d has exited"):format(k:handle()))
	rs = k:join()
	t:assert_eq(rs.exit_status.status, -1)
	t:assert_eq(rs.exit_status.signal, 9)
	t:assert_eq(vm:exists("/proc/" .. kpid), false)

	-- close reaps a worker blocked in a syscall (SIGKILL after the grace)
	local c = vm:spawn_worker()
	local cpid = c:pid()
	local cfd = open(t, c, "/tmp/fifo-k", O_RDWR)
	c:syscall_async(SYS.read, {args = {cfd, 0, 1}, bufs = {"\0"}, ptrs = {1}})
	blocked_in(cpid, SYS.read)
	c:close()
	t:assert_eq(vm:exists("/proc/" .. cpid), false)
	t:assert_eq(vm:syscall(SYS.getuid).ret, 0)              -- the agent is fine

	local function nested_err(spec)
		return tostring(select(2, pcall(vm.syscall, vm, SYS.getpid, spec)))
	end
	local two = {"\0\0\0\0\0\0\0\0", "x"}
	t:assert_contains(nested_err({bufs = two, nested = {{parent = 5, child = 2, offset = 0}}}),
		"syscall: nested[1].parent = 5 is not a buffer index (1..2)")
	t:assert_contains(nested_err({bufs = two, nested = {{parent = 1, child = 0, offset = 0}}}),
		"syscall: nested[1].child = 0 is not a buffer index (1..2)")
	t:assert_contains(nested_err({bufs = two, nested = {{parent = 1, child = 2, offset = 1}}}),
		"syscall: nested[1].offset = 1 is out of range: the pointer needs 8 bytes inside bufs[1] (8 bytes)")
	t:assert_contains(nested_err({bufs = two, nested = {{parent = 1, child = 2}}}),
		"syscall: nested[1].offset must be an integer, got nil")
	t:assert_contains(nested_err({bufs = two, nested = {"x"}}),
		"syscall: nested[1] must be a table {parent=, child=, offset=}, got string")
	t:assert_contains(nested_err({nested = {{parent = 1, child = 1, offset = 0}}}),
		"syscall: nested pointers need bufs")
	t:assert_contains(nested_err({bufs = two, ptrs = {0, 1, 2}}),
		"syscall: ptrs has 3 entries but there are only 2 bufs")
end)

test("a snapshot keeps the workers that were live: after a restore they answer again", function(t)
	local w = vm:spawn_worker()                          -- A: in the snapshot
	local pid = w:pid()
	t:assert_eq(w:syscall(SYS.setresuid, 1000, 1000, 1000).ret, 0)
	local snap = vm:snapshot()
	local later = vm:spawn_worker()                      -- B: after it
	local bpid = later:syscall(SYS.getpid).ret
	t:assert(bpid > 0)
	t:assert_eq(later:syscall(SYS.setresuid, 2000, 2000, 2000).ret, 0)
	vm:shutdown()
	vm:restore(snap)
	-- the guest's memory came back with the worker process in it
	t:assert_eq(w:syscall(SYS.getpid).ret, pid)
	t:assert_eq(w:syscall(SYS.getuid).ret, 1000)
	t:assert_eq(vm:syscall(SYS.getuid).ret, 0)
	-- C, spawned after the restore: the guest's own counter was rewound
	-- with the restore, but the handles are the host's, so C is not B
	local c = vm:spawn_worker()
	t:assert(c:handle() ~= later:handle(), "a new worker reused a stale handle")
	t:assert_eq(c:syscall(SYS.getuid).ret, 0)
	-- B does not exist in the restored guest: every op on it says so and
	-- none reaches C (C keeps uid 0, B's setresuid is not re-run on it)
	local gone = ("worker %d does not exist in this VM (it was spawned after the snapshot " ..
		"that was restored"):format(later:handle())
	for _, op in ipairs({
		function() return later:syscall(SYS.getuid) end,
		function() return later:syscall(SYS.setresuid, 2000, 2000, 2000) end,
		function() return later:run("id -u") end,
		function() return later:run_async("id -u") end,
		function() return later:open_file("/proc/self/status", {read = true}) end,
		function() return later:read_mem(0, 1) end,
		function() return later:kill() end,
	}) do
		local okk, e = pcall(op)
		t:assert_eq(okk, false)
		t:assert_contains(tostring(e), gone)
	end
	local okj, ej = pcall(later.join, later)
	t:assert_eq(okj, false)
	t:assert_contains(tostring(ej), gone)
	t:assert_eq(c:syscall(SYS.getuid).ret, 0)
	t:assert(c:syscall(SYS.getpid).ret ~= bpid or c:pid() == bpid)
	t:assert_eq(c:syscall(SYS.getpid).ret, c:pid())
	later:close()                            -- nothing to reap, no error
	t:assert_eq(c:join().exit_status.status, 0)
	local rs = w:join()
	t:assert_eq(rs.exit_status.status, 0)
	t:assert_eq(vm:exists("/proc/" .. pid), false)
end)
