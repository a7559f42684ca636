-- lab_reference.test.lua — lab reference / labs-and-scope details on --vmm
-- local: members() grouping, shadow hints, anonymous names, batch-op
-- errors, per-test-scope claims, barrier messages and the co.wrap
-- example, root fields read from a test scope, in-place lab:restore.

local function err_of(f)
	local ok, e = pcall(f)
	assert(not ok, "expected an error")
	return tostring(e)
end

provium.timeout = "30s"
provium:vm("fv", "default")
provium:bridge("fb")
provium:lab("fl")

-- The doc's "reset with a sub-lab snapshot" pattern.
local sub = provium:lab("workspace")
local v = sub:vm("v", "default"):boot()
v:write_file("/tmp/data", "")
local snap = sub:snapshot()

test("a", function(t)
	v:write_file("/tmp/data", "1")
end)

test("b", function(t)
	sub:restore(snap)  -- explicit restore, in place
	t:assert_eq(v:read_file("/tmp/data"), "")  -- back to baseline
	t:assert_eq(v:state(), "booted")
	t:assert(rawequal(sub.v, v))
	t:assert_eq(#sub:vm_names(), 1)
end)

test("members() lists vms, then bridges, then sub-labs", function(t)
	local l = provium:lab("m")
	l:bridge("lan")
	l:lab("inner")
	l:vm("b", "default")
	l:vm("a", "default")
	local got = {}
	for _, m in ipairs(l:members()) do got[#got + 1] = m.kind .. ":" .. m.name end
	t:assert_eq(table.concat(got, ","), "vm:a,vm:b,bridge:lan,sub_lab:inner")
	t:assert_eq(table.concat(l:vm_names(), ","), "a,b")
end)

test("shadow hint names the parent's member", function(t)
	t:assert_contains(err_of(function() provium:lab("fv") end), 'use `provium:vm("fv")` to reuse it')
	t:assert_contains(err_of(function() provium:vm("fb", "default") end), 'use `provium:bridge("fb")` to reuse it')
	t:assert_contains(err_of(function() provium:vm("fl", "default") end), "use `provium.fl` to reuse it")
end)

test("anonymous sub-labs skip taken names", function(t)
	local l = provium:lab("anon")
	l:lab("__lab_0")
	t:assert_eq(l:lab():name(), "__lab_1")
	t:assert_eq(l:lab():name(), "__lab_2")
end)

test("batch op errors carry no harness position", function(t)
	local l = provium:lab("batch")
	l:vm("x", "default"):boot()
	local e = err_of(function() l:resume() end)
	t:assert_contains(e, "batch `resume` failed for 1 of 1 vm(s): vm `x`: cannot resume")
	t:assert(not e:find("provium lab", 1, true), e)
	t:assert(e:find("^lab_reference%.test%.lua:%d+: ") or e:find("/lab_reference%.test%.lua:%d+: "), e)
end)

test("a test scope makes its own claim", function(t)
	provium:claim({memory = 4e9, cpus = 1.0})
	t:assert_contains(err_of(function() provium:claim({cpus = 1}) end), "claim already taken")
end)

test("a later test scope claims again", function(t)
	provium:claim({memory = "1G"})
end)

test("barrier timeout withdraws the caller's arrival", function(t)
	t:assert_contains(t:assert_raises(function() provium:barrier("lonely", 2, 0.01) end),
		"1 of 2 arrivals")
	-- the withdrawn arrival does not count towards the next round
	t:assert_contains(t:assert_raises(function() provium:barrier("lonely", 2, 0.01) end),
		"1 of 2 arrivals")
end)

test("the co.wrap barrier example", function(t)
	local order = {}
	co.wrap(function()
		order[#order + 1] = "w1 prep"
		provium:barrier("ready", 2)
		order[#order + 1] = "w1 go"
	end)()
	co.wrap(function()
		order[#order + 1] = "w2 prep"
		provium:barrier("ready", 2)
		order[#order + 1] = "w2 go"
	end)()
	t:assert_eq(table.concat(order, ","), "w1 prep,w2 prep,w1 go,w2 go")
end)

test("root fields read the same from a test scope", function(t)
	t:assert_eq(provium.timeout, "30s")
	t:assert_eq(provium.reset_between_tests, nil)
end)
