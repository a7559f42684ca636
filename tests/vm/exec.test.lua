-- tests/vm/exec.test.lua — vm:run on a real guest: shell and argv forms,
-- env, env_clear, cwd, stdin, exit codes, signals, timeouts, big output.
-- One file-scope VM for every test.

local vm = provium:vm("x", "default"):boot()

test("shell form and argv form", function(t)
	local r = vm:run("echo hi; echo err >&2; exit 3")
	t:assert_eq(r.exit_code, 3)
	t:assert_eq(r.status, "exited")
	t:assert_eq(r.stdout, "hi\n")
	t:assert_eq(r.stderr, "err\n")
	t:assert_eq(r:ok(), false)
	local a = vm:run("echo", {"a b", "$HOME"})
	t:assert_eq(a.stdout, "a b $HOME\n", "argv form uses no shell")
	t:assert(a:ok())
	t:assert_eq(vm:run("printf", {args = {"%s-%s", "x", "y"}}).stdout, "x-y")
end)

test("env, env_clear, cwd, stdin", function(t)
	t:assert_eq(vm:run("echo $FOO", {env = {FOO = "bar"}}).stdout, "bar\n")
	t:assert_contains(vm:run("env").stdout, "PATH=", "default env has PATH")
	t:assert_eq(vm:run("env", {args = {}, env = {ONLY = "1"}, env_clear = true}).stdout, "ONLY=1\n")
	t:assert_eq(vm:run("pwd", {cwd = "/tmp"}).stdout, "/tmp\n")
	t:assert_eq(vm:run("cat", {stdin = "from host\n"}).stdout, "from host\n")
	local bin = ""
	for i = 0, 255 do bin = bin .. string.char(i) end
	t:assert_eq(vm:run("cat", {stdin = bin}).stdout, bin, "binary stdin/stdout round trip")
end)

test("signals and timeouts", function(t)
	local s = vm:run("kill -TERM $$")
	t:assert_eq(s.status, "signalled")
	t:assert_eq(s.exit_code, -1)
	t:assert_eq(s.signal, 15)
	local to = vm:run("sleep 30", {timeout = "300ms"})
	t:assert_eq(to.status, "timed_out")
	t:assert_eq(to.timed_out, true)
	t:assert_eq(to.exit_code, -2)
	local ms = vm:run("sleep 30; echo never", {timeout_ms = 200})
	t:assert_eq(ms.exit_code, -2)
	local err = t:assert_raises(function() vm:run("exit 7"):assert_ok() end)
	t:assert_contains(err, "command `exit 7` failed: status exited, exit code 7")
end)

-- One rule for a zero timeout (docs/decisions.md, "Agent wire codec"): it
-- has expired already, so the command is killed at once (1 ms on the
-- wire, where 0 means "none"), in vm:run and in a batch's b:run alike.
test("timeout 0 expires at once in run and in a batch", function(t)
	local r = vm:run("sleep", {args = {"30"}, timeout = 0})
	t:assert_eq(r.status, "timed_out")
	local res = vm:batch(function(b)
		b:run("sleep", {args = {"30"}, timeout = 0})
		b:run("sleep", {args = {"30"}, timeout_ms = 0})
	end)
	t:assert_eq(res[1].ok.status, "timed_out")
	t:assert_eq(res[2].ok.timed_out, true)
end)

test("missing program and big output", function(t)
	local err = t:assert_raises(function() vm:run("/no/such/binary", {"x"}) end)
	t:assert_contains(err, "vm `x`: run `/no/such/binary`:")
	t:assert_contains(err, "No such file or directory")
	local r = vm:run("head -c 3000000 /dev/zero; echo done >&2")
	t:assert_eq(#r.stdout, 3000000)
	t:assert_eq(r.stderr, "done\n")
	t:assert_eq(vm:run("sh", {"-c", "exit 0"}).exit_code, 0)
end)
