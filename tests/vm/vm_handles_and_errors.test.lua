-- Conformance of the VM-facing API against the reference pages, on a real
-- guest: file handles are guest fds (syscall/ioctl take file:fd()), the
-- console is reachable as /dev/hvc0, a ConsoleStream's bare next() waits
-- 50 ms whatever an earlier next(timeout) asked, agent errors carry one
-- "vm `v`:" prefix, and worker errors name the caller, not worker.lua.
local vm = provium:vm("v", "default"):boot()

local function err_of(f, ...)
	local ok, e = pcall(f, ...)
	assert(not ok, "expected an error")
	return tostring(e)
end

test("file:fd() is a guest fd usable in vm:syscall", function(t)
	vm:write_file("/tmp/fdfile", "abcdef")
	local f = vm:open_file("/tmp/fdfile", {read = true})
	local fd = f:fd()
	t:assert(fd >= 3, "fd " .. tostring(fd))
	-- read(fd, buf, 3) through the raw syscall reads the handle's bytes
	local r = vm:syscall(0, {args = {fd, 0, 3}, bufs = {"\0\0\0"}, ptrs = {1}})
	t:assert_eq(r.ret, 3)
	t:assert_eq(r.out_bufs[1], "abc")
	-- and shares the handle's cursor
	t:assert_eq(f:read(10), "def")
	-- lseek(fd, 0, SEEK_CUR) agrees with tell()
	t:assert_eq(vm:syscall(8, fd, 0, 1).ret, f:tell())
	f:close()
	t:assert_eq(f:fd(), 0)
end)

test("console: /dev/hvc0 reaches the console; bare next() is 50 ms", function(t)
	local con = vm:console()
	local s = con:read()
	vm:run("echo HVC0-MARK > /dev/hvc0"):assert_ok()
	s:expect("HVC0-MARK", "10s")
	t:assert(con:read_log():find("HVC0-MARK", 1, true))
	s:drain("300ms")                   -- the line's end and any echo
	-- a per-call timeout applies to that call only
	t:assert_eq(s:next("200ms"), nil)
	local t0 = _provium_monotonic()
	t:assert_eq(s:next(), nil)
	local dt = _provium_monotonic() - t0
	t:assert(dt < 5, "bare next() waited " .. dt .. " s")
	s:close()
end)

test("agent errors are not prefixed twice", function(t)
	local e = err_of(vm.tail_file, vm, "/tmp/no-such-file")
	t:assert(e:find("No such file", 1, true), e)
	local _, n = e:gsub("vm `v`", "")
	t:assert_eq(n, 1, e)
	e = err_of(function() vm:clock():set(-100) end)   -- the kernel refuses pre-epoch
	_, n = e:gsub("vm `v`", "")
	t:assert_eq(n, 1, e)
end)

test("worker errors come from the caller's line", function(t)
	local w = vm:spawn_worker()
	local e = err_of(w.run_async, w, "sleep 1", {timeout = "1s"})
	t:assert(not e:find("provium worker", 1, true), e)
	t:assert(e:find("proc:wait", 1, true), e)
	local ok, e2 = pcall(function() w:run("x", {bogus = 1}) end)
	t:assert(not ok and tostring(e2):find("vm_handles_and_errors.test.lua", 1, true), e2)
	t:assert(not tostring(e2):find("provium worker", 1, true), e2)
	w:close()
end)
