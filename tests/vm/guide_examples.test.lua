-- Conformance, second pass, on a real guest (one boot): the guide pages'
-- examples run as written on the default profile (syslogd feeds
-- /var/log/messages, `logger` reaches it, printenv exists, the hostname
-- comes from /etc/hostname), a live console stream is named as such by
-- vm:snapshot(), a waited-for Process still serves its streams and
-- close_stdin, proc:kill names a bad argument's type, syscall results
-- always have out_bufs, a refused pre-epoch clock:set says why, and a guest that
-- dies under its VM makes vm:state() say "dead" (last: it ends the VM).
local vm = provium:vm("v", "default", {files = {{path = "/etc/hostname", content = "v"}}}):boot()

test("tail_file + logger, as in the files and streams guides", function(t)
	local stream = vm:tail_file("/var/log/messages")
	vm:run("logger 'hello'"):assert_ok()
	local line = stream:read_until("\n", "5s")
	t:assert(line:find("hello"), line)
	t:assert(line:find(" v ", 1, true), "hostname from /etc/hostname: " .. line)
	vm:run("logger 'event 1'"):assert_ok()
	vm:run("logger 'event 2'"):assert_ok()
	stream:expect("event 1", "5s")
	stream:expect("event 2", "5s")
	stream:close()
	local h = vm:open_file("/var/log/messages", {read = true})
	h:seek(0, "end")
	local s2 = h:tail_stream()
	vm:run("logger ready"):assert_ok()
	s2:expect("ready", "5s")
	s2:close()
	h:close()
end)

test("printenv, as in the running-commands guide", function(t)
	local r = vm:run("printenv FOO", {env = {FOO = "bar"}})
	r:assert_ok()
	t:assert_eq(r.stdout, "bar\n")
	t:assert_eq(vm:run("printenv NO_SUCH_VAR_X").exit_code, 1)
	t:assert(vm:run("printenv", {env = {K = "v"}}).stdout:find("K=v\n", 1, true))
	-- root's home, not the HOME=/ the kernel hands init
	t:assert_eq(vm:run("printenv HOME").stdout, "/root\n")
end)

test("a live console stream blocks vm:snapshot() by name and site", function(t)
	local stream = vm:console():read()
	local line = debug.getinfo(1, "l").currentline - 1
	local e = t:assert_raises(function() vm:snapshot() end)
	t:assert_contains(e, "provium: vm:snapshot() refused — file `tests/vm/guide_examples.test.lua` " ..
		"has live streams:")
	t:assert_contains(e, "live console stream")
	t:assert_contains(e, "guide_examples.test.lua:" .. line)
	stream:close()
	t:assert(vm:is_quiescent())
end)

test("a waited-for Process: streams replay its output, close_stdin is a no-op", function(t)
	local p = vm:run_async("echo out1; echo err1 >&2; echo out2")
	local r = p:wait("10s")
	t:assert_eq(r.stdout, "out1\nout2\n")
	p:close_stdin()                          -- no error: stdin is gone already
	local out = p:stdout_stream()
	t:assert_eq(out:read_until("out2\n", "2s"), "out1\nout2\n")
	t:assert_eq(out:next("100ms"), nil)
	t:assert(out:eof())
	local err = p:stderr_stream()
	t:assert_eq(table.concat(err:drain("1s")), "err1\n")
	t:assert_eq(vm:open_stream_count(), 2)
	out:close()
	err:close()
	t:assert_eq(p:status(), "exited")
	t:assert_contains(t:assert_raises(function() p:wait() end), "already waited")
end)

test("proc:kill with a table names the type", function(t)
	local p = vm:run_async("sleep 30")
	local e = t:assert_raises(function() p:kill({}) end)
	t:assert_contains(e, "signal must be nil, an integer or a signal name, got table")
	p:kill("kill")
	t:assert_eq(p:wait("10s").signal, 9)
end)

test("syscall results always carry out_bufs; a pre-epoch clock says why it fails", function(t)
	local r = vm:syscall(39)                 -- getpid
	t:assert(r.ret > 0)
	t:assert_eq(r.result, r.ret)
	t:assert_eq(r.errno, 0)
	t:assert_eq(type(r.out_bufs), "table")
	t:assert_eq(#r.out_bufs, 0)
	local b = vm:batch(function(bb) bb:syscall(39) end)
	t:assert_eq(type(b[1].ok.out_bufs), "table")
	local e = t:assert_raises(function() vm:clock():set(-100) end)
	t:assert_contains(e, "before the epoch")
end)

-- Last: it kills the file's VM.
test("a guest that powers itself off leaves its VM dead", function(t)
	t:assert_eq(vm:state(), "booted")
	vm:run_async("sleep 0.3; poweroff -f")
	wait_until(function() return vm:state() == "dead" end,
		{timeout = "20s", desc = "vm:state() == dead"})
	t:assert_contains(t:assert_raises(function() vm:run("true") end), "the VM is gone")
	vm:shutdown()
	t:assert_eq(vm:state(), "shutdown")
end)
