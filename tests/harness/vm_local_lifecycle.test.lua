-- The VM state machine and the local backend's "not supported" errors.

local PROFILE = "default"  -- the only profile without a provium.toml

local function errmsg(fn, ...)
	local ok, err = pcall(fn, ...)
	assert(not ok, "expected an error")
	return tostring(err)
end

test("created -> booted -> paused -> booted -> shutdown", function(t)
	local v = provium:vm("a", PROFILE)
	t:assert_eq(v:state(), "created")
	t:assert_eq(v:cid(), nil)
	t:assert(rawequal(v:boot(), v), "boot returns self")
	t:assert_eq(v:state(), "booted")
	t:assert(math.type(v:cid()) == "integer" and v:cid() >= 3, "a guest CID: " .. tostring(v:cid()))
	v:pause()
	t:assert_eq(v:state(), "paused")
	v:resume()
	v:reset()
	t:assert_eq(v:state(), "booted")
	v:shutdown()
	t:assert_eq(v:state(), "shutdown")
	v:shutdown()   -- idempotent
	t:assert_eq(v:state(), "shutdown")
end)

test("wrong-state errors name the state", function(t)
	local v = provium:vm("a", PROFILE)
	local e = errmsg(v.run, v, "true")
	t:assert_eq(e:match("vm `a`.*"), "vm `a`: cannot run: vm is Created (not booted: boot it first)")
	t:assert(errmsg(v.reset, v):find("cannot reset: vm is Created", 1, true))
	t:assert(errmsg(v.pause, v):find("cannot pause: vm is Created", 1, true))
	v:boot()
	t:assert(errmsg(v.boot, v):find("cannot boot: vm is Booted", 1, true))
	t:assert(errmsg(v.resume, v):find("cannot resume: vm is Booted", 1, true))
	v:pause()
	t:assert(errmsg(v.read_file, v, "/x"):find("vm is Paused (paused: use resume() first)", 1, true))
	v:resume()
	v:power_button()
	t:assert_eq(v:state(), "shutdown")
	t:assert(errmsg(v.run, v, "true"):find("cannot run: vm is Shutdown", 1, true))
	t:assert(errmsg(v.boot, v):find("cannot boot: vm is Shutdown", 1, true))
end)

test("boot opts: validated at creation, merged at boot", function(t)
	local e = errmsg(provium.vm, provium, "bad", PROFILE, {memroy = "1G"})
	t:assert(e:find("unknown boot opt `memroy`", 1, true), e)
	local e2 = errmsg(provium.vm, provium, "bad2", PROFILE, {memory = "lots"})
	t:assert(e2:find("memory", 1, true), e2)
	-- an integer is bytes: 512 is a mistake named at creation, not a
	-- guest that fails inside QEMU
	local e3 = errmsg(provium.vm, provium, "bad3", PROFILE, {memory = 512})
	t:assert(e3:find('vm `bad3`: boot opt memory: 512 is 512 bytes (a size without a unit is bytes), '
		.. 'less than the 16M a guest needs; write "512M" for 512 MiB', 1, true), e3)
	local e4 = errmsg(provium.vm, provium, "bad4", PROFILE, {memory = "1M"})
	t:assert(e4:find("boot opt memory: `1M` is 1048576 bytes, less than the 16M a guest needs", 1, true), e4)
	provium:vm("ok", PROFILE, {memory = 16 * 1024 * 1024})  -- 16 MiB in bytes is fine
	local v = provium:vm("f", PROFILE, {
		memory = "256M", cpus = 2, rng_seed = 42, initial_time = 1700000000,
		files = {{path = "/etc/hostname", content = "f\n"}},
	})
	v:boot({files = {{path = "/etc/motd", content = "hi"}}})
	t:assert_eq(v:read_file("/etc/motd"), "hi")
	t:assert_eq(v:exists("/etc/hostname"), false, "per-boot files replace creation-time files")
end)

test("vm_spawned and vm_shutdown carry the documented fields", function(t)
	local seen = {}
	local real = _provium_emit
	_provium_emit = function(kind, p) seen[#seen + 1] = {kind, p}; return real(kind, p) end
	local ok, err = pcall(function()
		local v = provium:vm("ev", PROFILE, {memory = "128M"}):boot()
		v:shutdown()
	end)
	_provium_emit = real
	t:assert(ok, tostring(err))
	t:assert_eq(seen[1][1], "vm_spawned")
	local p = seen[1][2]
	t:assert_eq(p.vm_name, "ev")
	t:assert_eq(p.profile, PROFILE)
	t:assert_eq(p.memory_bytes, 128 * 1024 * 1024)
	t:assert(math.type(p.cid) == "integer" and p.cid >= 3, tostring(p.cid))
	t:assert_eq(p.file, _provium_file)
	t:assert_eq(seen[2][1], "vm_shutdown")
	t:assert_eq(seen[2][2].vm_name, "ev")
	t:assert_eq(math.type(seen[2][2].duration_ns), "integer")
end)

test("ops needing a guest kernel say so", function(t)
	local v = provium:vm("k", PROFILE):boot()
	-- vm:console() itself succeeds (the console reference); its methods
	-- say the local backend has no console socket
	t:assert(errmsg(function() v:console():read() end):find(
		"vm `k`: console:read: VMM does not expose a console socket", 1, true))
	t:assert(errmsg(v.nic, v, "x"):find("vm `k`: nic(\"x\"): no such NIC (attached bridges: none)", 1, true))
	for _, op in ipairs({"syscall", "ioctl", "spawn_worker"}) do
		local e = errmsg(v[op], v, "x")
		t:assert(e:find(("vm `k`: %s is not supported by the local backend " ..
			"(it runs no guest kernel); use --vmm qemu"):format(op), 1, true), e)
	end
end)

test("accessors", function(t)
	local v = provium:vm("acc", PROFILE):boot()
	t:assert_eq(v:name(), "acc")
	t:assert_eq(v:profile(), PROFILE)
	t:assert_eq(v:is_quiescent(), true)
	t:assert_eq(v:open_file_count(), 0)
	t:assert_eq(v:open_stream_count(), 0)
	t:assert(tostring(v):find("acc", 1, true))
end)
