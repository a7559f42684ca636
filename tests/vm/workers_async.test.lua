-- worker:run_async and worker:open_file run IN the worker (docs/workers.md):
-- the process is the worker's child with its credentials, the file is
-- opened with its credentials, and every later op on the Process / File
-- (and their streams) goes to that worker. What happens to them when the
-- worker is killed, joined, closed or blocked in a syscall.
-- x86_64 syscall numbers.
local vm = provium:vm("v", "default"):boot()

local SYS = {read = 0, nanosleep = 35, getpid = 39, getuid = 102, setresuid = 117, openat = 257}
local AT_FDCWD, O_RDWR = -100, 2

-- A worker running as uid/gid 1000 (setresgid first: the uid change
-- drops the right to change gids).
local function user_worker(t)
	local w = vm:spawn_worker()
	t:assert_eq(w:syscall(119, 1000, 1000, 1000).ret, 0)   -- setresgid
	t:assert_eq(w:syscall(SYS.setresuid, 1000, 1000, 1000).ret, 0)
	return w
end

-- The parent pid of guest process pid, from /proc.
local function ppid_of(pid)
	local st = vm:read_file(("/proc/%d/stat"):format(pid))
	return tonumber(st:match("%) %S+ (%d+)"))
end

-- The process may vanish between the look at /proc/<pid> and the read
-- of its stat: a failed read means gone too.
local function gone(pid)
	wait_until(function()
		if not vm:exists("/proc/" .. pid) then return true end
		local ok, st = pcall(vm.read_file, vm, ("/proc/%d/stat"):format(pid))
		if not ok then return not vm:exists("/proc/" .. pid) end
		local pp = st:match("%) %S+ (%d+)")
		return st:match("%) (%S+)") == "Z" and pp == "1"  -- an orphan's zombie
	end, {timeout = 20, desc = ("pid %d gone"):format(pid)})
end

test("run_async runs in the worker: its uid, its child; wait, stdin and streams go there", function(t)
	local w = user_worker(t)
	local r = w:run_async("id -u"):wait("20s")
	r:assert_ok()
	t:assert_eq(r.stdout, "1000\n")
	t:assert_eq(vm:run_async("id -u"):wait("20s").stdout, "0\n")   -- the agent's: root

	-- the worker's child, running as 1000, seen from the agent's side
	local p = w:run_async("cat")
	t:assert_eq(ppid_of(p:pid()), w:pid())
	t:assert_contains(vm:read_file(("/proc/%d/status"):format(p:pid())), "Uid:\t1000\t1000\t1000")
	t:assert_eq(p:status(), "running")
	local out = p:stdout_stream()
	t:assert_eq(p:stdin_write("ping\n"), 5)
	t:assert_eq(out:read_until("\n", "20s"), "ping\n")
	p:close_stdin()
	local res = p:wait("20s")
	t:assert_eq(res.exit_code, 0)
	t:assert_eq(res.stdout, "ping\n")
	out:close()

	-- kill routed to the worker; the agent's process handle table is not
	-- involved (a worker's process handle may equal an agent one)
	local s = w:run_async("sleep 300")
	local a = vm:run_async("sleep 300")
	s:kill("kill")
	t:assert_eq(s:wait("20s").signal, 9)
	t:assert_eq(a:status(), "running")
	a:kill("kill")
	a:wait("20s")
	t:assert_eq(w:join().exit_status.status, 0)
end)

test("open_file runs in the worker: its credentials decide, its fd table holds the file", function(t)
	vm:write_file("/tmp/secret", "root only\n")
	vm:run("chmod 600 /tmp/secret"):assert_ok()
	vm:write_file("/tmp/public", "for all\n")
	vm:run("chmod 644 /tmp/public"):assert_ok()
	local w = user_worker(t)

	local ok, err = pcall(w.open_file, w, "/tmp/secret", {read = true})
	t:assert_eq(ok, false)
	t:assert_contains(tostring(err), "Permission denied")
	local rf = vm:open_file("/tmp/secret", {read = true})   -- the agent (root) can
	t:assert_eq(rf:read(100), "root only\n")
	rf:close()

	local f = w:open_file("/tmp/public", {read = true})
	t:assert_eq(f:read(4), "for ")
	t:assert_eq(f:seek(0), 0)
	-- the handle is the worker's fd: a read through the worker sees it
	local rd = w:syscall(SYS.read, {args = {f:fd(), 0, 3}, bufs = {"\0\0\0"}, ptrs = {1}})
	t:assert_eq(rd.ret, 3)
	t:assert_eq(rd.out_bufs[1], "for")
	t:assert_eq(f:read(100), " all\n")
	f:close()

	-- a file the worker creates is owned by its uid
	local c = w:open_file("/tmp/made-by-1000", {write = true, create = true, truncate = true})
	t:assert_eq(c:write("x"), 1)
	c:close()
	t:assert_eq(vm:run("stat -c %u /tmp/made-by-1000").stdout, "1000\n")

	-- the file's stream is served by the worker as well
	vm:write_file("/tmp/tailme", "line1\n")
	vm:run("chmod 644 /tmp/tailme"):assert_ok()
	local tf = w:open_file("/tmp/tailme", {read = true})
	local st = tf:tail_stream()
	t:assert_eq(st:read_until("\n", "20s"), "line1\n")
	st:close()
	tf:close()
	w:close()
end)

test("join: RunResults of the worker's processes in order; its files closed", function(t)
	local w = user_worker(t)
	local p1 = w:run_async("echo one; id -u")
	local p2 = w:run_async("sh", {args = {"-c", "echo two; exit 3"}})
	local f = w:open_file("/tmp/public", {read = true})
	local rs = w:join()
	t:assert_eq(#rs, 2)
	t:assert_eq(rs[1].stdout, "one\n1000\n")
	t:assert_eq(rs[2].stdout, "two\n")
	t:assert_eq(rs[2].exit_code, 3)
	t:assert_eq(rs.exit_status.status, 0)
	t:assert_eq(f:fd(), 0)                     -- closed by join
	t:assert_eq(p1:status(), "exited")         -- the consumed result stays
	-- join consumed every process (their results stay with them)
	local okw, ew = pcall(p2.wait, p2)
	t:assert_eq(okw, false)
	t:assert_contains(tostring(ew), "already waited")
end)

test("kill: the worker's processes and the worker, even while it is blocked in a syscall", function(t)
	vm:run("rm -f /tmp/fifo-a; mkfifo /tmp/fifo-a"):assert_ok()
	local w = vm:spawn_worker()
	local p = w:run_async("sleep 300")
	local out = p:stdout_stream()
	local fd = w:syscall(SYS.openat, {args = {AT_FDCWD, 0, O_RDWR, 0}, bufs = {"/tmp/fifo-a\0"},
		ptrs = {1}}).ret
	t:assert(fd >= 0)
	-- the worker blocks in read(); the kill does not have to wait for it
	local pend = w:syscall_async(SYS.read, {args = {fd, 0, 1}, bufs = {"\0"}, ptrs = {1}})
	wait_until(function()
		return vm:read_file(("/proc/%d/syscall"):format(w:pid())):match("^(%d+) ") == "0"
	end, {timeout = 20, desc = "worker blocked in read"})
	local ppid = p:pid()
	w:kill("kill")
	gone(ppid)
	gone(w:pid())
	-- what was in flight, and every later op, fails naming the worker
	local oka, ea = pcall(pend.await, pend, "20s")
	t:assert_eq(oka, false)
	t:assert_contains(tostring(ea), ("worker %d ended before answering"):format(w:handle()))
	-- its process's stream ends (the agent ends the worker's open streams)
	local okr, er = pcall(out.read_until, out, "never", "20s")
	t:assert_eq(okr, false)
	t:assert_contains(tostring(er), "stream EOF before `never` appeared")
	local okw, ew = pcall(p.wait, p, "5s")
	t:assert_eq(okw, false)
	t:assert_contains(tostring(ew), ("worker %d has exited"):format(w:handle()))
	out:close()
	local rs = w:join()
	t:assert_eq(rs.exit_status.signal, 9)
	t:assert_eq(rs[1].status, "closed")          -- its wait could not be answered
	t:assert_eq(vm:syscall(SYS.getuid).ret, 0)   -- the agent is fine
end)

test("a worker blocked in a syscall answers its processes' ops after the syscall returns", function(t)
	local w = vm:spawn_worker()
	local p = w:run_async("echo done")
	-- nanosleep({1, 0}): the worker serves nothing else for a second
	local pend = w:syscall_async(SYS.nanosleep, {args = {0, 0},
		bufs = {string.pack("<i8i8", 1, 0)}, ptrs = {0}})
	local r = p:wait("30s")                      -- queued behind the sleep
	t:assert_eq(r.stdout, "done\n")
	t:assert_eq(pend:await("30s").ret, 0)
	w:close()
end)

test("close of a worker that may be blocked SIGKILLs its processes and the worker", function(t)
	vm:run("rm -f /tmp/fifo-b; mkfifo /tmp/fifo-b"):assert_ok()
	local w = vm:spawn_worker()
	local p = w:run_async("sleep 300")
	local fd = w:syscall(SYS.openat, {args = {AT_FDCWD, 0, O_RDWR, 0}, bufs = {"/tmp/fifo-b\0"},
		ptrs = {1}}).ret
	w:syscall_async(SYS.read, {args = {fd, 0, 1}, bufs = {"\0"}, ptrs = {1}})
	local ppid, wpid = p:pid(), w:pid()
	w:close()
	gone(ppid)
	t:assert_eq(vm:exists("/proc/" .. wpid), false)
	t:assert_eq(p:status(), "closed")
	-- an idle worker's close ends its processes gracefully, through it
	local w2 = vm:spawn_worker()
	local q = w2:run_async("sleep 300")
	local qpid = q:pid()
	w2:close()
	gone(qpid)
end)

test("kill on an idle worker: join still returns what its processes ended with", function(t)
	local w = user_worker(t)
	local p1 = w:run_async("sleep 300")
	local p2 = w:run_async("echo early")
	t:assert_eq(p2:wait("20s").stdout, "early\n")
	w:kill("term")
	local rs = w:join()
	t:assert_eq(#rs, 2)
	t:assert_eq(rs[1].signal, 15)              -- collected before the worker died
	t:assert_eq(rs[2].status, "closed")        -- waited for already, above
	t:assert_eq(rs.exit_status.signal, 15)
	t:assert_eq(rs.exit_status.status, -1)
	t:assert_eq(p1:status(), "signalled")
end)

test("misuse through a worker names the Worker method and numbers its arguments as a method's", function(t)
	local w = vm:spawn_worker()
	local e = t:assert_raises(function() local f = w:open_file("/etc/hostname", 5); return f end)
	t:assert_contains(e, "bad argument #2 to 'open_file'")
	t:assert(not e:find("'?'", 1, true), e)
	-- the same words as the VM's own method
	local ve = t:assert_raises(function() local f = vm:open_file("/etc/hostname", 5); return f end)
	t:assert_contains(ve, "bad argument #2 to 'open_file'")
	local e2 = t:assert_raises(function() local b = w:read_mem("x", 4); return b end)
	t:assert_contains(e2, "read_mem: argument 1 must be an integer")
	w:close()
end)
