-- lab_surface.test.lua — the lab surface as the reference implementation's
-- conformance tests check it, on --vmm local: barrier return values,
-- claims (one-shot, memory_bytes), dot access, reserved names, error
-- wording (unknown vm/profile, duplicates, wrong VM state, include),
-- sorted names, idempotent batch boot, lab:snapshot(dir), string.pack
-- re-exports, per-test scope of VMs and bridges.

local P = "default"

local function err_of(f)
	local ok, e = pcall(f)
	assert(not ok, "expected an error")
	return tostring(e)
end

local shared = provium:vm("shared", P):boot()
local scratch

test("barrier: count 1 returns true at once, default timeout too", function(t)
	t:assert_eq(provium:barrier("solo", 1, 0.5), true)
	t:assert_eq(provium:barrier("solo2", 1), true)
end)

test("barrier: an unmet count raises after the timeout (the Lab page)", function(t)
	t:assert_contains(t:assert_raises(function() provium:barrier("waits", 2, 0.05) end),
		"barrier `waits` timed out after 0.05s with 1 of 2 arrivals")
end)

test("barrier: coroutine callers get true when released", function(t)
	local got = {}
	co.wrap(function() got[1] = provium:barrier("pair", 2, 5) end)()
	t:assert_eq(got[1], nil, "the first arrival waits")
	t:assert_eq(provium:barrier("pair", 2, 5), true)
	t:assert_eq(got[1], true)
end)

test("barrier: bad count and name raise", function(t)
	local e = err_of(function() provium:barrier("X", "two", 0.1) end)
	t:assert(e:find("count"), e)
	err_of(function() provium:barrier(42, 1, 0.1) end)
end)

test("claim: memory_bytes, zero and partial claims; a second one raises", function(t)
	provium:claim({memory_bytes = 1024 * 1024, cpus = 1})
	local e = err_of(function() provium:claim({memory = 1024, cpus = 1}) end)
	t:assert_contains(e, "claim already taken")
	t:assert_contains(e, "one-shot")
end)

test("claim: zero resources", function(t) provium:claim({memory = 0, cpus = 0}) end)
test("claim: cpus omitted", function(t) provium:claim({memory_bytes = 1024}) end)

test("dot access resolves vms, bridges, sub-labs and the fixture helpers", function(t)
	provium:vm("web", P):boot()
	t:assert_eq(provium.web:state(), "booted")
	provium:bridge("lan", {})
	t:assert_eq(provium.lan:name(), "lan")
	provium:lab("dc1")
	t:assert(provium.dc1 ~= nil)
	t:assert_eq(provium.no_such_vm, nil)
	t:assert_eq(type(provium.vm_fixture), "function")
	t:assert_eq(type(provium.lab_fixture), "function")
end)

test("reserved names are refused at create time, listing all four", function(t)
	local e = err_of(function() provium:vm("vm_fixture", P) end)
	for _, w in ipairs({"reserved", "vm_fixture", "lab_fixture", "pack", "unpack"}) do
		t:assert_contains(e, w)
	end
	err_of(function() provium:bridge("lab_fixture", {}) end)
	err_of(function() provium:lab("pack") end)
	err_of(function() provium:vm("unpack", P) end)
	provium:vm("ok-name", P)
	provium:bridge("ok-bridge", {})
	provium:lab("ok-lab")
end)

test("unknown vm and profile errors name them", function(t)
	local e = err_of(function() provium:vm("typo-name") end)
	t:assert_contains(e, "no vm named `typo-name`")
	e = err_of(function() provium:vm("a", "ghost-profile") end)
	t:assert_contains(e, "ghost-profile")
	t:assert_contains(e, "provium.toml")
end)

test("a duplicate vm name is `already used`", function(t)
	provium:vm("a", P)
	local e = err_of(function() provium:vm("a", P) end)
	t:assert_contains(e, "DuplicateVmName")
	t:assert_contains(e, "`a` already used")
end)

test("wrong-state errors say not booted / shutdown and what was refused", function(t)
	local vm = provium:vm("st", P)
	t:assert_eq(vm:state(), "created")
	t:assert_eq(vm:cid(), nil)
	local e = err_of(function() vm:run("true") end)
	t:assert_contains(e, "not booted")
	t:assert_contains(e, "cannot run")
	vm:boot()
	t:assert_contains(err_of(function() vm:boot() end), "already booted")
	vm:shutdown()
	e = err_of(function() vm:run("echo hi") end)
	t:assert_contains(e, "shutdown")
	t:assert_contains(e, "cannot run")
end)

test("include takes vm and bridge userdata; a bad element names userdata", function(t)
	local sub = provium:lab("inc")
	sub:include(provium:vm("iv", P))
	t:assert_eq(sub:vm("iv"):name(), "iv")
	sub:include(provium:bridge("ib", {}))
	t:assert_eq(sub:bridge("ib"):name(), "ib")
	local sub2 = provium:lab("inc2")
	local e = err_of(function() sub2:include({provium:vm("iv2", P), "not-userdata"}) end)
	t:assert_contains(e, "userdata")
end)

test("remove by name and by userdata", function(t)
	provium:vm("r1", P)
	provium:remove("r1")
	err_of(function() provium:vm("r1") end)
	local v = provium:vm("r2", P)
	provium:remove(v)
	err_of(function() provium:vm("r2") end)
end)

test("names are listed in byte order, members grouped by kind", function(t)
	local l = provium:lab("order")
	l:vm("c", P)
	l:vm("a", P)
	l:vm("b", P)
	l:bridge("z")
	l:bridge("y")
	l:lab("q")
	l:lab("p")
	t:assert_eq(table.concat(l:vm_names(), ","), "a,b,c")
	t:assert_eq(table.concat(l:bridge_names(), ","), "y,z")
	t:assert_eq(table.concat(l:sub_lab_names(), ","), "p,q")
	local got = {}
	for _, m in ipairs(l:members()) do got[#got + 1] = m.kind .. ":" .. m.name end
	t:assert_eq(table.concat(got, ","), "vm:a,vm:b,vm:c,bridge:y,bridge:z,sub_lab:p,sub_lab:q")
end)

test("lab:boot boots what is still created and skips the rest", function(t)
	local l = provium:lab("bb")
	local v1 = l:vm("dc1", P)
	local v2 = l:vm("dc2", P):boot()
	t:assert(rawequal(l:boot(), l))
	t:assert_eq(v1:state(), "booted")
	t:assert_eq(v2:state(), "booted")
	local v3 = l:vm("dc3", P)
	l:boot()   -- again, after a VM was added
	t:assert_eq(v3:state(), "booted")
	v1:pause()
	local e = err_of(function() l:pause() end)
	t:assert_contains(e, "batch `pause` failed for 1 of 3 vm(s): vm `dc1`: cannot pause")
	t:assert_eq(v2:state(), "paused", "the other VMs were still paused")
end)

test("lab:snapshot(dir) writes <dir>/lab.json and returns dir", function(t)
	local l = provium:lab("snap")
	local v = l:vm("a", P):boot()
	v:write_file("/tmp/x", "1")
	local dir = os.tmpname() .. "-snap"
	t:assert_eq(l:snapshot(dir), dir)
	local f = io.open(dir .. "/lab.json", "r")
	t:assert(f, "lab.json missing in the snapshot dir")
	f:close()
	v:write_file("/tmp/x", "2")
	l:restore(dir)
	t:assert_eq(v:read_file("/tmp/x"), "1")
end)

test("pack / unpack work with : and .", function(t)
	local bytes = provium:pack(">I4", 0x01020304)
	t:assert_eq(#bytes, 4)
	t:assert_eq(provium:unpack(">I4", bytes), 0x01020304)
	t:assert_eq(provium.pack(">I4", 0x01020304), bytes)
end)

test("a test-scope vm and bridge", function(t)
	scratch = provium:vm("scratch", P):boot()
	provium:bridge("temporary", {})
end)

test("... are gone in the next test; file-scope ones survive", function(t)
	t:assert_eq(provium:vm("shared"):state(), "booted")
	t:assert(rawequal(provium:vm("shared"), shared))
	t:assert_eq(scratch:state(), "shutdown")
	t:assert_eq(provium.scratch, nil)
	t:assert_eq(provium.temporary, nil)
	t:assert_eq(provium:vm("scratch", P):boot():state(), "booted")
	t:assert(provium:bridge("temporary", {}))
end)
