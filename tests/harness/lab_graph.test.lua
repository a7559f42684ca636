-- The lab graph on --vmm local: membership, lookup, dot sugar, sub-labs,
-- per-test scope and its shadow detection, include/remove, listings.

local PROFILE = "default"  -- the only profile without a provium.toml

local shared = provium:vm("shared", PROFILE)
local lan = provium:bridge("lan")

-- Deterministic text of a value (tables: arrays then sorted keys).
local function show(v)
	if type(v) ~= "table" then return type(v) == "string" and ("%q"):format(v) or tostring(v) end
	local parts, keys = {}, {}
	for i = 1, #v do parts[#parts + 1] = show(v[i]) end
	for k in pairs(v) do
		if not (math.type(k) == "integer" and k >= 1 and k <= #v) then keys[#keys + 1] = k end
	end
	table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
	for _, k in ipairs(keys) do parts[#parts + 1] = tostring(k) .. "=" .. show(v[k]) end
	return "{" .. table.concat(parts, ",") .. "}"
end

local function errmsg(fn, ...)
	local ok, err = pcall(fn, ...)
	assert(not ok, "expected an error")
	return tostring(err)
end

test("root lab is named provium", function(t)
	t:assert_eq(provium:name(), "provium")
end)

test("lookup walks from the test scope to the file root", function(t)
	t:assert(rawequal(provium:vm("shared"), shared))
	t:assert(rawequal(provium.shared, shared))
	t:assert(rawequal(provium.lan, lan))
	t:assert_eq(provium.nothing_here, nil)
end)

test("lookup of an unknown vm errors naming it", function(t)
	local e = errmsg(provium.vm, provium, "ghost")
	t:assert(e:find("no vm named `ghost` in this lab", 1, true), e)
end)

test("a test-scope vm is local to the test", function(t)
	local v = provium:vm("local1", PROFILE)
	t:assert_eq(v:name(), "local1")
	t:assert_eq(v:profile(), PROFILE)
	t:assert_eq(v:state(), "created")
	t:assert(rawequal(provium.local1, v))
	t:assert_eq(provium:vm_names()[1], "local1")
end)

test("the same name in a later test is a fresh vm", function(t)
	local v = provium:vm("local1", PROFILE)
	t:assert_eq(v:state(), "created")
end)

test("shadowing a file-scope name errors with the documented text", function(t)
	local e = errmsg(provium.vm, provium, "shared", PROFILE)
	t:assert(e:find("name already declared at parent scope (lab `provium`). Pick a different name, " ..
		"or use `provium:vm(\"shared\")` to reuse it.", 1, true), e)
end)

test("duplicate names in one lab error", function(t)
	provium:vm("d", PROFILE)
	local e = errmsg(provium.vm, provium, "d", PROFILE)
	t:assert(e:find("DuplicateVmName", 1, true) and e:find("`d`", 1, true), e)
	local sub = provium:lab("dups")
	local b = sub:bridge("x")
	t:assert(rawequal(sub:bridge("x"), b), "bridge() is lookup-or-create")
	local other = provium:lab("other")
	local b2 = other:bridge("x")
	local e2 = errmsg(sub.include, sub, b2)
	t:assert(e2:find("DuplicateBridgeName", 1, true), e2)
end)

test("reserved names are rejected", function(t)
	for _, n in ipairs({"pack", "unpack", "vm_fixture", "lab_fixture"}) do
		local e = errmsg(provium.vm, provium, n, PROFILE)
		t:assert(e:find("reserved", 1, true), e)
		local e2 = errmsg(provium.bridge, provium, n)
		t:assert(e2:find("reserved", 1, true), e2)
	end
end)

test("unknown profile errors naming it", function(t)
	-- With no provium.toml the local backend takes any name; with profiles
	-- declared, an unknown one is an error.
	local saved = _provium_profiles
	if next(saved or {}) == nil then _provium_profiles = {only = {name = "only"}} end
	local ok, e = pcall(provium.vm, provium, "p", "no-such-profile")
	_provium_profiles = saved
	t:assert(not ok)
	t:assert(tostring(e):find("unknown profile `no-such-profile`", 1, true), tostring(e))
end)

test("sub-labs: names, anonymous names, no parent fallthrough", function(t)
	local dc1 = provium:lab("dc1")
	dc1:vm("a", PROFILE)
	dc1:vm("b", PROFILE)
	dc1:bridge("lan"):attach({dc1.a, dc1.b})
	t:assert_eq(dc1:name(), "dc1")
	t:assert_eq(show(dc1.lan:members()), show({"a", "b"}))
	t:assert_eq(dc1.shared, nil, "federation sub-labs do not see the root")
	t:assert(rawequal(provium.dc1, dc1))
	local a1, a2 = provium:lab(), provium:lab()
	t:assert(a1:name():match("^__lab_%d+$"), a1:name())
	t:assert(a1:name() ~= a2:name())
	t:assert_eq(show(dc1:vm_names()), show({"a", "b"}))
	t:assert_eq(show(dc1:bridge_names()), show({"lan"}))
	t:assert_eq(show(dc1:members()), show({{kind = "vm", name = "a"},
		{kind = "vm", name = "b"}, {kind = "bridge", name = "lan"}}))
end)

test("include and remove move graph membership only", function(t)
	local v = provium:vm("mover", PROFILE)
	local sub = provium:lab("sub")
	sub:include(v)
	t:assert(rawequal(sub.mover, v))
	provium:remove(v)
	t:assert_eq(show(provium:vm_names()), show({}))
	t:assert_eq(show(sub:vm_names()), show({"mover"}))
	sub:remove("mover")
	t:assert_eq(show(sub:vm_names()), show({}))
	t:assert_eq(v:state(), "created", "remove does not shut down")
	t:assert_eq(show(provium:sub_lab_names()), show({"sub"}))
end)

test("include validates the whole list before recording any", function(t)
	local sub = provium:lab("s2")
	local a = provium:vm("ia", PROFILE)
	local e = errmsg(sub.include, sub, {a, 42})
	t:assert(e:find("item 2", 1, true), e)
	t:assert_eq(show(sub:vm_names()), show({}))
end)

test("include from a test scope refuses parent-scope names", function(t)
	local other = provium:lab("o")
	local v = other:vm("shared", PROFILE)
	local e = errmsg(provium.include, provium, v)
	t:assert(e:find("already declared at parent scope", 1, true), e)
end)

test("pack and unpack are string.pack pass-throughs, both call forms", function(t)
	local s = provium:pack(">I4 s2", 7, "hi")
	t:assert_eq(s, string.pack(">I4 s2", 7, "hi"))
	local n, str = provium:unpack(">I4 s2", s)
	t:assert_eq(n, 7)
	t:assert_eq(str, "hi")
	t:assert_eq(provium.pack("<I2", 258), "\2\1")
end)

test("a missing fixture names itself (method and function forms)", function(t)
	local e = errmsg(provium.vm_fixture, provium, "base")
	t:assert(e:find("fixture `base` not found in any test root", 1, true), e)
	local e2 = errmsg(provium.lab_fixture, "x")
	t:assert(e2:find("fixture `x` not found in any test root", 1, true), e2)
end)

test("depends_on_file is a no-op that checks its argument", function(t)
	provium:depends_on_file("../x.in")
	local e = errmsg(provium.depends_on_file, provium, 42)
	t:assert(e:find("string", 1, true), e)
end)

test("bridges record membership and say networking comes later", function(t)
	local b = provium:bridge("br")
	b:attach("x")
	b:attach({shared, "y"})
	t:assert_eq(show(b:members()), show({"x", "shared", "y"}))
	b:detach("x")
	t:assert_eq(show(b:members()), show({"shared", "y"}))
	b:partition("a", "b")
	t:assert(b:is_partitioned("b", "a"), "a symmetric partition is graph state")
	local e2 = errmsg(b.attach, b, {shared, 3})
	t:assert(e2:find("item 2", 1, true), e2)
	t:assert_eq(show(b:members()), show({"shared", "y"}), "attach is atomic")
end)

test("file-scope bridge found from a test scope", function(t)
	t:assert(rawequal(provium:bridge("lan"), lan))
end)
