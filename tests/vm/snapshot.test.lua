-- tests/vm/snapshot.test.lua — vm:snapshot()/vm:restore() and lab
-- snapshots on real guests (qemu backend, TCG). One cold boot; every
-- other VM comes from a restore, which is what keeps this file fast.
--
-- What "RNG reseeded" means here: two VMs restored from the same snapshot
-- read different bytes from /dev/urandom (each restore runs in a new QEMU
-- whose vmgenid device carries a new generation id; the guest kernel
-- reseeds on it). Without that they would replay one CRNG state.

local PROFILE = "default"

local function sh(cmd)
	local p = io.popen(cmd)
	local out = p:read("a")
	p:close()
	return out
end

local function mem_kb(vm)
	return tonumber(vm:read_file("/proc/meminfo"):match("MemTotal:%s+(%d+) kB"))
end

local function copy_file(from, to, n, garble_at)
	local i = assert(io.open(from, "rb"))
	local data = i:read("a")
	i:close()
	if n then data = data:sub(1, n) end
	if garble_at then
		data = data:sub(1, garble_at - 1) .. string.rep("\255", 64) .. data:sub(garble_at + 64)
	end
	local o = assert(io.open(to, "wb"))
	o:write(data)
	o:close()
end

test("snapshot and restore on real guests", function(t)
	local a = provium:vm("a", PROFILE, {memory = "384M"}):boot()
	a:write_file("/tmp/before", "written before")

	-- preconditions: a live stream refuses, naming where it was opened
	local tail = a:tail_file("/tmp/before")
	local proc = a:run_async("sleep 30")
	local out = proc:stdout_stream()
	local msg = t:assert_raises(function() a:snapshot() end)
	t:assert_contains(msg, "vm:snapshot() refused")
	t:assert_contains(msg, "has live streams:")
	t:assert_contains(msg, 'tail_file("/tmp/before") at ')
	t:assert_contains(msg, "snapshot.test.lua:")
	t:assert_contains(msg, "proc_stdout_stream(")
	t:assert_contains(msg, "Close the streams before snapshotting")
	tail:close()
	out:close()
	proc:kill()

	local s = a:snapshot()
	t:assert(s:size() > 0, "snapshot file is empty")
	-- the VM keeps running after the snapshot
	t:assert_eq(a:state(), "booted")
	t:assert_eq(a:run("echo alive").stdout, "alive\n")
	a:write_file("/tmp/after", "written after")

	-- restore from Shutdown: the snapshot's state, not the later one
	a:shutdown()
	a:restore(s)
	t:assert_eq(a:state(), "booted")
	t:assert_eq(a:read_file("/tmp/before"), "written before")
	t:assert(not a:exists("/tmp/after"), "/tmp/after survived the restore")
	-- the wall clock is the host's, not the snapshot's
	local gnow = tonumber(a:run("date +%s").stdout)
	t:assert(math.abs(gnow - os.time()) <= 30, ("guest clock %d vs host %d"):format(gnow, os.time()))

	-- restore into a Created VM created with less memory: the header wins
	local b = provium:vm("b", PROFILE, {memory = "256M"})
	b:restore(s)
	t:assert(mem_kb(b) > 300 * 1024, "MemTotal " .. tostring(mem_kb(b)) .. " kB: not the snapshot's 384M")
	t:assert_eq(b:read_file("/tmp/before"), "written before")
	t:assert_eq(b:run("nproc").stdout, "1\n")

	-- RNG reseeded: the two restores draw different random bytes
	local ra = a:run("head -c 16 /dev/urandom | od -An -tx1").stdout
	local rb = b:run("head -c 16 /dev/urandom | od -An -tx1").stdout
	t:assert(ra ~= rb, "two restores of one snapshot read the same urandom bytes: " .. ra)

	-- restored VMs map the expanded RAM privately: writes never reach it
	local ram = sh("ls " .. s:path() .. ".ram-* 2>/dev/null"):match("[^\n]+")
	t:assert(ram, "no expanded RAM file next to the snapshot")
	local before = sh("stat -c '%Y %s' " .. ram)
	b:run("dd if=/dev/zero of=/tmp/fill bs=1M count=32 2>/dev/null; sync"):assert_ok()
	a:run("dd if=/dev/zero of=/tmp/fill bs=1M count=32 2>/dev/null; sync"):assert_ok()
	t:assert_eq(sh("stat -c '%Y %s' " .. ram), before)

	-- a restored VM (RAM not in a shared file) snapshots with its RAM in
	-- the migration stream; that snapshot restores too
	b:write_file("/tmp/second", "from b")
	local s2 = b:snapshot()
	local c = provium:vm("c", PROFILE)
	c:restore(s2)
	t:assert_eq(c:read_file("/tmp/second"), "from b")
	t:assert(c:exists("/tmp/fill"), "/tmp/fill (written before s2) is missing")

	-- a Paused VM snapshots and stays paused
	c:pause()
	local s3 = c:snapshot()
	t:assert_eq(c:state(), "paused")
	c:resume()
	t:assert_eq(c:run("echo ok").stdout, "ok\n")
	s3:delete()

	-- truncated and garbled files: a clear error, the VM stays restorable
	local d = provium:vm("d", PROFILE)
	local trunc = _provium_run_dir .. "/trunc.snap"
	copy_file(s2:path(), trunc, s2:size() // 2)
	t:assert_contains(t:assert_raises(function() d:restore(trunc) end), "trunc.snap")
	local garbled = _provium_run_dir .. "/garbled.snap"
	copy_file(s2:path(), garbled, nil, s2:size() // 2)
	local gmsg = t:assert_raises(function() d:restore(garbled) end)
	t:assert_contains(gmsg, "garbled.snap")
	t:assert_eq(d:state(), "created")
	d:restore(s2)
	t:assert_eq(d:read_file("/tmp/second"), "from b")
	t:assert_contains(t:assert_raises(function() d:restore(s2) end), "restore needs Created or Shutdown")
	-- deleting a snapshot also removes the RAM files expanded from it
	s:delete()
	t:assert_eq(sh("ls " .. s:path() .. ".ram-* 2>/dev/null"), "")
end)

test("lab snapshot of two VMs and restore into a sub-lab", function(t)
	local base = provium:vm("base", PROFILE):boot()
	base:write_file("/tmp/who", "base")
	local s = base:snapshot()
	base:close()

	local x = provium:vm("x", PROFILE)
	x:restore(s)
	x:write_file("/tmp/who", "x")
	local y = provium:vm("y", PROFILE)
	y:restore(s)
	y:write_file("/tmp/who", "y")
	local lan = provium:bridge("lan")
	lan:attach({x, y})

	local ls = provium:snapshot()
	local dir = ls:path()
	local idx = json.decode(assert(io.open(dir .. "/lab.json")):read("a"))
	local snaps = 0
	for _, e in ipairs(idx.vms) do
		if e.name == "x" or e.name == "y" then
			t:assert(e.snap and io.open(dir .. "/" .. e.snap), "no .snap for " .. e.name)
			snaps = snaps + 1
		end
	end
	t:assert_eq(snaps, 2)
	-- the VMs keep running
	t:assert_eq(x:read_file("/tmp/who"), "x")

	local sub = provium:lab("copy")
	sub:restore(ls)
	t:assert_eq(sub.x:read_file("/tmp/who"), "x")
	t:assert_eq(sub.y:read_file("/tmp/who"), "y")
	t:assert_eq(sub.lan:members()[1], "x")
	-- a live stream on any VM refuses the lab snapshot
	local tl = sub.y:tail_file("/tmp/who")
	t:assert_contains(t:assert_raises(function() sub:snapshot() end), "has live streams")
	tl:close()
end)
