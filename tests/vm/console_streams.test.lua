-- Console reference and streams guide on a real guest (one boot, one
-- reset): the "drive a getty login" example runs as written on the
-- default profile, console:write delivers every byte of a long line, a
-- ConsoleStream starts where the VM's last one stopped reading (the first
-- one replays the boot log), and a stream open across vm:reset() reaches
-- EOF (the reference's chardev connection ends there).
local vm = provium:vm("v", "default"):boot()

test("login as root via console", function(t)
	local console = vm:console()
	local stream  = console:read()
	stream:expect("login:", "30s")
	console:write("root\n")
	stream:expect("Password:", "5s")
	console:write("toor\n")
	stream:expect("# ", "5s")
	-- a line longer than the UART's FIFO arrives whole
	local word = ("0123456789"):rep(12)
	console:write("echo " .. word .. "-$((6*7))\n")
	stream:expect(word .. "-42", "10s")
	console:write("exit\n")
	stream:close()
end)

test("a ConsoleStream starts where the last one stopped reading", function(t)
	-- the first stream of this boot (previous test) replayed the boot log
	-- from its start; this one begins past what that one read
	local con = vm:console()
	vm:run("echo FIRST-MARK > /dev/console"):assert_ok()
	local s1 = con:read()
	s1:expect("FIRST-MARK", "10s")
	s1:close()
	vm:run("echo SECOND-MARK > /dev/console"):assert_ok()
	local s2 = con:read()
	local got = s2:read_until("SECOND-MARK", "10s")
	t:assert(not got:find("FIRST-MARK", 1, true), got)
	t:assert(not got:find("op server on port", 1, true), "boot log replayed again: " .. got)
	s2:close()
end)

test("a ConsoleStream open across vm:reset() ends in EOF", function(t)
	local s = vm:console():read()
	s:drain("200ms")
	vm:run("echo BEFORE-RESET > /dev/console"):assert_ok()
	vm:reset()
	s:expect("BEFORE-RESET", "10s")        -- what came before the reset is there
	s:drain("500ms")
	t:assert_eq(s:next("1s"), nil)
	t:assert(s:eof())
	t:assert_contains(t:assert_raises(function() s:expect("x", "1s") end), "stream EOF")
	s:close()
	-- a new stream follows the new boot
	local s2 = vm:console():read()
	vm:run("echo AFTER-RESET > /dev/console"):assert_ok()
	s2:expect("AFTER-RESET", "10s")
	s2:close()
end)
