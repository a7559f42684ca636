-- tests/vm/robustness.test.lua — a QEMU that dies under a test, and a
-- guest that sends garbage down the agent channel. Each failure must be
-- an error naming the VM (never a hang, never a crash), later ops on
-- that VM fail fast, and the rest of the file carries on. Two boots.

-- The QEMU of VM `name` in this runner: its command line names the
-- runner's private run directory and the VM's own directory.
local function qemu_pid(name)
	-- "[q]emu": the pattern must not match the shell running pgrep
	local h = assert(io.popen("pgrep -f -- '[q]emu-system.*" .. _provium_run_dir .. "/qemu-" .. name .. "-'"))
	local out = h:read("a")
	h:close()
	local pid = out:match("(%d+)")
	return pid and tonumber(pid)
end

test("QEMU killed under a test: the op fails with the console, later ops fail fast", function(t)
	local vm = provium:vm("victim", "default"):boot()
	t:assert_eq(vm:run("echo alive").stdout, "alive\n")
	local pid = qemu_pid("victim")
	t:assert(pid, "found the victim's QEMU")
	os.execute("kill -9 " .. pid)
	local err = t:assert_raises(function() vm:run("echo dead?") end)
	t:assert_contains(err, "vm `victim`: run `echo dead?`:")
	t:assert_contains(err, "QEMU killed by signal 9")
	t:assert_contains(err, "--- console (last lines) ---")
	local t0 = _provium_now()
	local again = t:assert_raises(function() vm:read_file("/etc/hostname") end)
	t:assert_contains(again, "vm `victim`: read_file `/etc/hostname`: the VM is gone (it died; create a new VM): QEMU killed by signal 9")
	t:assert(_provium_now() - t0 < 2, "later ops fail fast")
	vm:shutdown()
	t:assert_eq(qemu_pid("victim"), nil, "nothing left to reap")
end)

test("the file carries on: garbage from the guest breaks only that VM", function(t)
	local vm = provium:vm("junk", "default"):boot()
	t:assert_eq(vm:run("echo ok").stdout, "ok\n")
	-- In the guest: stop the agent's supervisor (no restart), kill the op
	-- server, then write a frame header declaring 4 GiB into the port.
	vm:run([[
(sleep 0.5
 for p in $(pidof provium-agent); do
   pp=$(awk '{print $4}' /proc/$p/stat)
   [ "$p" != 1 ] && [ "$pp" = 1 ] && sup=$p
   [ "$p" != 1 ] && [ "$pp" != 1 ] && srv=$p
 done
 for f in /sys/class/virtio-ports/*; do
   [ "$(cat $f/name)" = org.provium.agent ] && port=/dev/${f##*/}
 done
 kill -STOP $sup; kill -KILL $srv; sleep 0.3
 printf '\377\377\377\377garbage' > $port
 sleep 1000) </dev/null >/dev/null 2>&1 &
]])
	local err = t:assert_raises(function()
		for _ = 1, 100 do vm:run("sleep 0.2", {timeout = 5}) end
	end)
	t:assert_contains(err, "vm `junk`")
	t:assert_contains(err, "frame length exceeds the maximum")
	t:assert_contains(t:assert_raises(function() vm:run("true") end), "the VM is gone")
	vm:shutdown()
	t:assert_eq(qemu_pid("junk"), nil, "QEMU reaped at shutdown")
end)
