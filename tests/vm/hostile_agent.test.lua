-- tests/vm/hostile_agent.test.lua — a guest agent that sends garbage
-- (issue 10 item 3). The agent's `_fault_frame` test hook
-- (src/agent/ops_fault.c) answers with hostile bytes instead of a reply:
-- an oversized length, a truncated msgpack body, an array32 declaring
-- 2^32-1 elements, a StreamEnd flood over more channels than the host
-- keeps. Each time the host rejects the frame, the op fails with an error
-- naming the VM and the cause, that VM is dead (later ops fail fast with
-- the same cause), and the file's other VM keeps working.
-- tests/cli/t_vm_hostile_frames.sh runs this file beside others.

local healthy = provium:vm("healthy", "default"):boot()

local CASES = {
	{"oversized", "frame length exceeds the maximum of 33554432 bytes"},
	{"truncated", "frame is not valid msgpack"},
	{"array32", "frame is not valid msgpack"},
	{"streamend", "more than 8192 stream channels open at once"},
}

for _, case in ipairs(CASES) do
	local mode, cause = case[1], case[2]
	test(("a `%s` frame ends only the VM that sent it"):format(mode), function(t)
		local bad = provium:vm("bad", "default"):boot()
		t:assert_eq(bad:run("echo up").stdout, "up\n")
		local err = tostring(t:assert_raises(function() bad:_fault_frame(mode) end))
		t:assert_contains(err, "vm `bad`")
		t:assert_contains(err, cause)
		t:assert_eq(bad:state(), "dead", "the VM that sent garbage is dead")
		local again = tostring(t:assert_raises(function() bad:read_file("/etc/hostname") end))
		t:assert_contains(again, cause, "a later op names the cause")
		t:assert_eq(healthy:run("echo still-here").stdout, "still-here\n")
	end)
end

test("an unknown fault mode is an ordinary op error; the VM lives", function(t)
	local err = tostring(t:assert_raises(function() healthy:_fault_frame("nope") end))
	t:assert_contains(err, "unknown mode")
	t:assert_eq(healthy:state(), "booted")
	t:assert_eq(healthy:run("echo fine").stdout, "fine\n")
end)
