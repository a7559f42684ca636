-- console:expect CONSUMES (the Console reference page): on one guest, the
-- offset past each match survives vm:reset() (same QEMU, the log keeps
-- growing), so a line every boot prints matches its NEW occurrence after
-- the reset and a one-time marker never matches twice; after a restore
-- (a new QEMU, a new log) expect starts at the new log's beginning.
local vm = provium:vm("v", "default"):boot()

-- printed once by every boot of the agent (see the failure-output tail)
local BOOT_LINE = "op server on port"

local function count(hay, needle)
	local n, i = 0, 1
	while true do
		local s, e = hay:find(needle, i, true)
		if not s then return n end
		n, i = n + 1, e + 1
	end
end

local function times_out(t, con, text)
	local ok, e = pcall(con.expect, con, text, "1s")
	t:assert(not ok, "expect `" .. text .. "` matched again")
	e = tostring(e)
	t:assert(e:find("timed out", 1, true) and e:find(text, 1, true), e)
end

test("expect consumes across vm:reset()", function(t)
	local con = vm:console()
	t:assert_eq(con:expect(BOOT_LINE, "30s"), BOOT_LINE)
	vm:run("echo ONE-TIME-MARK > /dev/console"):assert_ok()
	t:assert_eq(con:expect("ONE-TIME-MARK", "20s"), "ONE-TIME-MARK")
	times_out(t, con, "ONE-TIME-MARK")          -- consumed
	times_out(t, con, BOOT_LINE)                -- this boot's line is consumed
	t:assert_eq(count(con:read_log(), BOOT_LINE), 1)

	vm:reset()
	t:assert_eq(vm:state(), "booted")
	-- the match is the second boot's line: the first one was consumed
	t:assert_eq(con:expect(BOOT_LINE, "60s"), BOOT_LINE)
	local log = con:read_log()
	t:assert_eq(count(log, BOOT_LINE), 2)
	t:assert_eq(count(log, "ONE-TIME-MARK"), 1)
	-- nothing printed the marker again
	times_out(t, con, "ONE-TIME-MARK")
	times_out(t, con, BOOT_LINE)
	-- and the offset still tracks new output
	vm:run("echo AFTER-RESET-MARK > /dev/console"):assert_ok()
	t:assert_eq(con:expect("AFTER-RESET-MARK", "20s"), "AFTER-RESET-MARK")
end)

test("expect starts over on the new log after a restore", function(t)
	local con = vm:console()
	local snap = vm:snapshot()
	-- grow this log well past what the restored guest will print
	vm:run("for i in $(seq 40); do echo filler-line-$i-xxxxxxxxxxxxxxxx; done > /dev/console")
		:assert_ok()
	t:assert(con:expect("filler-line-40-", "20s"))
	vm:shutdown()
	vm:restore(snap)
	vm:run("echo RESTORED-MARK > /dev/console"):assert_ok()
	t:assert_eq(con:expect("RESTORED-MARK", "20s"), "RESTORED-MARK")
	t:assert(not con:read_log():find("filler-line", 1, true), "the old log survived")
	times_out(t, con, "RESTORED-MARK")
end)
