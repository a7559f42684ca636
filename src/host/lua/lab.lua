-- lab.lua — the lab graph: labs, per-test scopes, bridges, claims,
-- barriers, and the auto-close walker. Embedded; runs after
-- luaopen_provium_lab (llab.c) and before framework.lua.
--
-- Shapes:
--   * the file root: name `provium`, no parent. The runner stores it as
--     the global `provium`.
--   * a per-test scope (_provium_open_test_scope): its parent chain is the
--     file root, so lookups (`lab:vm(name)`, `lab.name`) fall through to
--     the root; declaring a name the root already has is an error (no
--     silent shadowing).
--   * a sub-lab (`lab:lab(name)`): federation, no parent chain.
-- A lab is a Lua table whose state lives in the private table S[lab], so
-- user-visible fields (`provium.timeout`, `provium.reset_between_tests`)
-- are plain rawset fields and never collide with graph state.
--
-- Dot sugar (`lab.name`): the reserved keys pack/unpack/vm_fixture/
-- lab_fixture, then the Lab methods, then VM -> bridge -> sub-lab (walking
-- the parent chain), then (from a per-test scope) plain fields of the
-- file root such as `provium.timeout`, else nil. Methods win over member
-- names, so a VM named `boot` is reached with lab:vm("boot").
--
-- Auto-close: every lab keeps a registry of the resources created in it
-- (VMs, bridges, sub-labs; Files and Processes from C through
-- _provium_register_resource, which files them under the lab currently in
-- the global `provium`). The walker closes them by priority — streams,
-- processes, files, workers, then VMs/bridges/sub-labs — and within a
-- priority in registration order. It never raises; it returns the errors.
--
-- Errors raised here point at the user's line (the first stack frame
-- outside this file).

local S = setmetatable({}, {__mode = "k"})   -- lab -> private state
local Lab = {}                                -- methods
local LabMT = {}

local RESERVED = {pack = true, unpack = true, vm_fixture = true, lab_fixture = true}
local PRIORITY = {stream = 1, process = 2, file = 3, worker = 4, vm = 5, bridge = 5, lab = 5}

local THIS = debug.getinfo(1, "S").source

-- A raise(msg) that blames the first Lua caller outside the given chunks
-- (the embedded preludes), i.e. the user's line. net.lua uses it too.
function _provium_make_raise(...)
	local skip = {}
	for _, src in ipairs({...}) do skip[src] = true end
	return function(msg)
		local level = 2
		while true do
			local info = debug.getinfo(level, "S")
			if not info then return error(msg, 0) end
			if not skip[info.source] and info.what ~= "C" then
				return error(msg, level)
			end
			level = level + 1
		end
	end
end

local raise = _provium_make_raise(THIS)

local function emit(kind, payload)
	local f = rawget(_G, "_provium_emit")
	if type(f) == "function" then f(kind, payload) end
end

local function is_lab(v) return type(v) == "table" and S[v] ~= nil end
-- Bridges are net.lua's (loaded after this file).
local function is_bridge(v) return _provium_is_bridge(v) end
local function is_vm(v) return _provium_is_vm(v) end

local function check_name(name, what)
	if type(name) ~= "string" or name == "" then
		raise(("%s name must be a non-empty string, got %s"):format(what, type(name)))
	end
	if RESERVED[name] then
		raise(("%s name `%s` is reserved (pack, unpack, vm_fixture and lab_fixture " ..
			"cannot name a vm, bridge or lab)"):format(what, name))
	end
end

local function new_lab(name, parent, root)
	local lab = setmetatable({}, LabMT)
	S[lab] = {
		name = name, parent = parent, root = root or lab,
		vms = {}, bridges = {}, labs = {}, order = {},
		res = {}, seq = 0, anon = 0, barriers = {},
	}
	if not root then
		local st = S[lab]
		st.all = setmetatable({}, {__mode = "k"})   -- every VM of the file
		st.claim = nil
	end
	return lab
end

-- Registry -------------------------------------------------------------

local function register(lab, obj, kind)
	local st = S[lab]
	st.seq = st.seq + 1
	st.res[#st.res + 1] = {obj = obj, kind = kind, prio = PRIORITY[kind] or 5,
		seq = st.seq, site = nil}
	if kind == "vm" then S[st.root].all[obj] = true end
end

-- Called from C (lvm.c) for every File / Process: file it under the lab
-- the test body sees as `provium` (the test scope), else the root.
function _provium_register_resource(obj, kind)
	local cur = rawget(_G, "provium")
	if not is_lab(cur) then return end
	register(cur, obj, kind)
end

local function close_registry(lab, errs)
	local st = S[lab]
	local list = st.res
	st.res = {}
	table.sort(list, function(a, b)
		if a.prio ~= b.prio then return a.prio < b.prio end
		return a.seq < b.seq
	end)
	for _, r in ipairs(list) do
		local ok, err = pcall(function()
			if r.kind == "lab" then
				close_registry(r.obj, errs)
			else
				r.obj:close()
			end
		end)
		if not ok then errs[#errs + 1] = ("%s: %s"):format(r.kind, tostring(err)) end
	end
	return errs
end

-- Membership -------------------------------------------------------------

local KINDS = {vm = "vms", bridge = "bridges", sub_lab = "labs"}

-- The first parent-scope lab holding name (any kind), or nil.
local function parent_holding(lab, name)
	local p = S[lab].parent
	while p do
		local ps = S[p]
		if ps.vms[name] or ps.bridges[name] or ps.labs[name] then return p end
		p = ps.parent
	end
end

local function add_member(lab, kind, name, obj)
	local st = S[lab]
	local tbl = st[KINDS[kind]]
	check_name(name, kind == "sub_lab" and "lab" or kind)
	if tbl[name] then
		local tag = kind == "vm" and "DuplicateVmName" or kind == "bridge" and
			"DuplicateBridgeName" or "DuplicateLabName"
		raise(("%s: %s name `%s` already used in this lab (`%s`)"):format(tag,
			kind == "sub_lab" and "lab" or kind, name, st.name))
	end
	local p = parent_holding(lab, name)
	if p then
		-- The hint names the parent's member, whatever kind is being declared.
		local ps = S[p]
		local how = ps.vms[name] and ("provium:vm(%q)"):format(name)
			or ps.bridges[name] and ("provium:bridge(%q)"):format(name)
			or ("provium.%s"):format(name)
		raise(("name already declared at parent scope (lab `%s`). Pick a different " ..
			"name, or use `%s` to reuse it."):format(S[p].name, how))
	end
	tbl[name] = obj
	st.order[#st.order + 1] = {kind = kind, name = name, obj = obj}
end

local function remove_member(lab, kind, name)
	local st = S[lab]
	st[KINDS[kind]][name] = nil
	for i, m in ipairs(st.order) do
		if m.kind == kind and m.name == name then
			table.remove(st.order, i)
			break
		end
	end
end

-- Look name up in lab then (for a test scope) its parents.
local function lookup(lab, kind, name)
	local l = lab
	while l do
		local v = S[l][KINDS[kind]][name]
		if v ~= nil then return v end
		l = S[l].parent
	end
end

-- The names of lab's members of one kind, in byte order.
local function names(lab, kind)
	local out = {}
	for _, m in ipairs(S[lab].order) do
		if m.kind == kind then out[#out + 1] = m.name end
	end
	table.sort(out)
	return out
end

-- Lab methods --------------------------------------------------------------

function Lab:name() return S[self].name end

function Lab:vm(name, profile, opts)
	if not is_lab(self) then raise("lab:vm: call it with `:` (provium:vm(...))") end
	if profile == nil then
		if type(name) ~= "string" then raise("lab:vm: name must be a string") end
		local v = lookup(self, "vm", name)
		if not v then
			raise(("no vm named `%s` in this lab (`%s`); create it with lab:vm(%q, \"<profile>\")")
				:format(name, S[self].name, name))
		end
		return v
	end
	check_name(name, "vm")
	if type(profile) ~= "string" then raise(("vm `%s`: profile must be a string"):format(name)) end
	if opts ~= nil and type(opts) ~= "table" then
		raise(("vm `%s`: boot opts must be a table"):format(name))
	end
	-- Validate the graph before creating anything.
	local st = S[self]
	if st.vms[name] then add_member(self, "vm", name, nil) end
	if parent_holding(self, name) then add_member(self, "vm", name, nil) end
	local ok, v = pcall(_provium_vm_new, name, profile, opts)
	if not ok then raise(tostring(v)) end
	add_member(self, "vm", name, v)
	register(self, v, "vm")
	return v
end

function Lab:bridge(name, opts)
	if type(name) ~= "string" then raise("lab:bridge: name must be a string") end
	if opts ~= nil and type(opts) ~= "table" then raise("lab:bridge: opts must be a table") end
	local b = lookup(self, "bridge", name)
	if b then return b end
	check_name(name, "bridge")
	if S[self].bridges[name] or parent_holding(self, name) then
		add_member(self, "bridge", name, nil)   -- raises the precise error
	end
	b = _provium_net_bridge_new(name, opts)
	add_member(self, "bridge", name, b)
	register(self, b, "bridge")
	return b
end

function Lab:lab(name)
	local st = S[self]
	if name == nil then
		-- __lab_0, __lab_1, ...: the next one no lab in reach already has.
		repeat
			name = "__lab_" .. st.anon
			st.anon = st.anon + 1
		until not (st.vms[name] or st.bridges[name] or st.labs[name] or
			parent_holding(self, name))
	end
	check_name(name, "lab")
	local sub = new_lab(name, nil, st.root)
	add_member(self, "sub_lab", name, sub)
	register(self, sub, "lab")
	return sub
end

function Lab:include(x)
	local items = x
	if not (type(x) == "table" and not is_lab(x) and not is_bridge(x)) then items = {x} end
	local plan, seen = {}, {}
	for i, it in ipairs(items) do
		local kind, name
		if is_vm(it) then kind, name = "vm", it:name()
		elseif is_bridge(it) then kind, name = "bridge", it:name()
		elseif is_lab(it) then kind, name = "sub_lab", S[it].name
		else
			raise(("lab:include: item %d is a %s, not a vm, bridge or lab userdata")
				:format(i, type(it)))
		end
		local key = kind .. "\0" .. name
		if seen[key] then
			raise(("lab:include: `%s` appears twice in the list"):format(name))
		end
		seen[key] = true
		plan[#plan + 1] = {kind, name, it}
	end
	-- Validate every item before recording any.
	local st = S[self]
	for _, p in ipairs(plan) do
		check_name(p[2], p[1] == "sub_lab" and "lab" or p[1])
		if st[KINDS[p[1]]][p[2]] or parent_holding(self, p[2]) then
			add_member(self, p[1], p[2], p[3])   -- raises the precise error
		end
	end
	for _, p in ipairs(plan) do add_member(self, p[1], p[2], p[3]) end
end

function Lab:remove(x)
	local st = S[self]
	if type(x) == "string" then
		for _, kind in ipairs({"vm", "bridge", "sub_lab"}) do
			if st[KINDS[kind]][x] ~= nil then return remove_member(self, kind, x) end
		end
		raise(("lab:remove: no vm, bridge or lab named `%s` in lab `%s`"):format(x, st.name))
	end
	for _, m in ipairs(st.order) do
		if rawequal(m.obj, x) then return remove_member(self, m.kind, m.name) end
	end
	raise(("lab:remove: %s is not a member of lab `%s`"):format(tostring(x), st.name))
end

-- Grouped by kind in the lookup order (vms, bridges, sub-labs), each kind
-- in byte order of the names: the union of vm_names / bridge_names /
-- sub_lab_names.
function Lab:members()
	local out = {}
	for _, kind in ipairs({"vm", "bridge", "sub_lab"}) do
		for _, n in ipairs(names(self, kind)) do out[#out + 1] = {kind = kind, name = n} end
	end
	return out
end

function Lab:vm_names() return names(self, "vm") end
function Lab:bridge_names() return names(self, "bridge") end
function Lab:sub_lab_names() return names(self, "sub_lab") end

-- Batch lifecycle: direct VM children, declaration order. Every VM is
-- tried; the failures are reported together as
--   batch `pause` failed for 1 of 2 vm(s): vm `a`: cannot pause: ...
-- boot only boots the VMs still Created (a lab booted earlier, with VMs
-- added since, boots just the new ones).
local function each_vm(lab, action, fn)
	local fails, n = {}, 0
	for _, m in ipairs(S[lab].order) do
		if m.kind == "vm" then
			n = n + 1
			local ok, err = pcall(fn, m.obj)
			if not ok then
				-- The VM method's error carries this file's position: drop it.
				fails[#fails + 1] = (tostring(err):gsub("^%[provium lab%]:%d+: ", ""))
			end
		end
	end
	if #fails > 0 then
		raise(("batch `%s` failed for %d of %d vm(s): %s"):format(action, #fails, n,
			table.concat(fails, "; ")))
	end
end

function Lab:boot()
	each_vm(self, "boot", function(v) if v:state() == "created" then v:boot() end end)
	return self
end
function Lab:shutdown() each_vm(self, "shutdown", function(v) v:shutdown() end) end
function Lab:pause() each_vm(self, "pause", function(v) v:pause() end) end
function Lab:resume() each_vm(self, "resume", function(v) v:resume() end) end

-- Claims: one per file, whatever lab it is called on. A per-test scope
-- holds its own (isolated from the other tests' scopes, released when the
-- scope closes), which a file-level claim still blocks: at most one claim
-- of the file is held at any time.
function Lab:claim(amount)
	if type(amount) ~= "table" then raise("lab:claim: expected a table {memory=..., cpus=...}") end
	for k in pairs(amount) do
		if k ~= "memory" and k ~= "memory_bytes" and k ~= "cpus" then
			raise(("lab:claim: unknown field `%s` (expected memory, cpus)"):format(tostring(k)))
		end
	end
	if amount.memory ~= nil and amount.memory_bytes ~= nil then
		raise("lab:claim: give memory or memory_bytes, not both")
	end
	local mem, cpus = 0, amount.cpus or 0
	if math.type(cpus) == "float" then cpus = math.tointeger(cpus) or cpus end
	-- memory_bytes (the events' field name) is accepted as a synonym.
	local memory = amount.memory
	if memory == nil then memory = amount.memory_bytes end
	if memory ~= nil then
		local v, err = _provium_parse_size(memory)
		if not v then raise("lab:claim: memory: " .. err) end
		mem = v
	end
	if math.type(cpus) ~= "integer" or cpus < 0 then
		raise("lab:claim: cpus must be a non-negative integer")
	end
	local st = S[self]
	local rs = S[st.root]
	local holder = st.parent and st or rs
	if rs.claim or holder.claim or rs.scope_claim then
		raise("claim already taken (lab:claim is one-shot per file)")
	end
	-- The dispatcher checks a claim it found by scanning the file (a
	-- literal top-level call); any other (through a helper function or a
	-- module) is checked here against the same pool, with its message.
	local check = rawget(_G, "_provium_pool_check")
	if check then
		local too_big = check(mem, cpus)
		if too_big then raise(too_big) end
	end
	holder.claim = {memory_bytes = mem, cpus = cpus}
	if holder ~= rs then rs.scope_claim = true end
	emit("claim_acquired", {path = rawget(_G, "_provium_file") or "?",
		amount = {memory_bytes = mem, cpus = cpus}})
end

-- Barriers: host-side, keyed by name per lab. Returns true once count
-- callers have arrived; raises when the timeout passes first (the Lab
-- page: "raises on timeout"; the caller's arrival is then withdrawn). A
-- caller inside a coroutine that must wait yields; the count-th arrival
-- resumes every waiter (their errors, if any, re-raise in the releasing
-- caller). A caller that cannot yield (the main test body) can only be
-- the last arrival: nothing else runs while it waits, so it sleeps out
-- the timeout and raises.
function Lab:barrier(name, count, timeout)
	if type(name) ~= "string" then raise("lab:barrier: name must be a string") end
	if math.type(count) ~= "integer" or count < 1 then
		raise("lab:barrier: count must be a positive integer")
	end
	local secs = 60
	if timeout ~= nil then
		if type(timeout) ~= "number" or timeout ~= timeout or timeout < 0 then
			raise("lab:barrier: timeout must be a non-negative number of seconds or nil")
		end
		secs = timeout
	end
	local now = rawget(_G, "_provium_now") or os.time
	local st = S[self]
	local b = st.barriers[name]
	if not b or b.count ~= count then
		b = {count = count, arrived = 0, waiters = {}, released = false}
		st.barriers[name] = b
	end
	b.arrived = b.arrived + 1
	if b.arrived >= count then
		b.released = true
		st.barriers[name] = nil
		local first_err
		for _, co in ipairs(b.waiters) do
			if coroutine.status(co) == "suspended" then
				local ok, err = coroutine.resume(co)
				if not ok and not first_err then first_err = err end
			end
		end
		if first_err then error(first_err, 0) end
		return true
	end
	local deadline = now() + secs
	-- Computed before this caller's arrival is withdrawn.
	local function timed_out()
		return ("barrier `%s` timed out after %gs with %d of %d arrivals"):format(
			name, secs, b.arrived, count)
	end
	if coroutine.isyieldable() then
		local co = coroutine.running()
		b.waiters[#b.waiters + 1] = co
		while not b.released do
			if now() >= deadline then
				local msg = timed_out()
				b.arrived = b.arrived - 1
				raise(msg)
			end
			coroutine.yield()
		end
		return true
	end
	local sleep = rawget(_G, "_provium_sleep")
	while not b.released and now() < deadline do
		if sleep then sleep(math.min(0.05, math.max(0, deadline - now()))) else break end
	end
	if not b.released then
		local msg = timed_out()
		b.arrived = b.arrived - 1
		raise(msg .. " (the caller is not inside a coroutine, so nothing " ..
			"else can arrive while it waits; call barrier from co.wrap'd functions)")
	end
	return true
end

function Lab:depends_on_file(path)
	if type(path) ~= "string" then
		raise("lab:depends_on_file: path must be a string literal")
	end
	-- No-op at runtime: the fixture cache-key scanner reads the call site.
end

local function lab_pack(a, ...)
	if is_lab(a) then return string.pack(...) end
	return string.pack(a, ...)
end
local function lab_unpack(a, ...)
	if is_lab(a) then return string.unpack(...) end
	return string.unpack(a, ...)
end
Lab.pack, Lab.unpack = lab_pack, lab_unpack

-- Snapshots and fixtures --------------------------------------------------
-- lab:snapshot writes <dir>/lab.json plus one .snap per snapshotable VM
-- (Booted/Paused; others are recorded by profile and come back Created)
-- and a lab-<i>/ subdirectory per sub-lab. Paths in lab.json are relative
-- to it. lab:restore puts the lab back to it by name (restore_lab).

local function lab_snapshot_to(lab, dir)
	local st = S[lab]
	local idx = {format = 1, name = st.name, vms = {}, bridges = {}, labs = {}}
	for _, m in ipairs(st.order) do
		if m.kind == "vm" then
			local v = m.obj
			local e = {name = m.name, profile = v:profile(), state = v:state()}
			if e.state == "booted" or e.state == "paused" then
				e.snap = ("vm-%d.snap"):format(#idx.vms + 1)
				v:snapshot(dir .. "/" .. e.snap)
			end
			idx.vms[#idx.vms + 1] = e
		elseif m.kind == "bridge" then
			idx.bridges[#idx.bridges + 1] = {name = m.name, members = m.obj:members(),
				state = m.obj:_state()}
		elseif m.kind == "sub_lab" then
			local sub = ("lab-%d"):format(#idx.labs + 1)
			_provium_mkdir(dir .. "/" .. sub)
			lab_snapshot_to(m.obj, dir .. "/" .. sub)
			idx.labs[#idx.labs + 1] = {name = m.name, dir = sub}
		end
	end
	local f, err = io.open(dir .. "/lab.json", "wb")
	if not f then raise("lab:snapshot: " .. tostring(err)) end
	f:write(json.encode(idx))
	f:close()
end

function Lab:snapshot(dir)
	if not is_lab(self) then raise("lab:snapshot: call it with `:` (provium:snapshot())") end
	if dir ~= nil then
		if type(dir) ~= "string" then raise("lab:snapshot: dir must be a string") end
		_provium_mkdir(dir)
		lab_snapshot_to(self, dir)
		return dir
	end
	local d = _provium_tmp_path("labsnap", "", true)
	lab_snapshot_to(self, d)
	return _provium_snapshot_new(d, true)
end

local function read_index(dir)
	local f, err = io.open(dir .. "/lab.json", "rb")
	if not f then error(("lab snapshot `%s`: %s"):format(dir, tostring(err)), 0) end
	local txt = f:read("a")
	f:close()
	local ok, idx = pcall(json.decode, txt)
	if not ok or type(idx) ~= "table" or type(idx.vms) ~= "table" then
		error(("lab snapshot `%s`: corrupt lab.json"):format(dir), 0)
	end
	return idx
end

-- The first name of idx that a parent scope holds (restoring it here
-- would shadow it), or nil.
local function restore_conflict(lab, idx)
	for _, group in ipairs({idx.vms or {}, idx.bridges or {}, idx.labs or {}}) do
		for _, e in ipairs(group) do
			local p = parent_holding(lab, e.name)
			if p then
				return ("lab:restore: `%s` is already declared at parent scope (lab `%s`); " ..
					"restore into a lab that does not shadow it"):format(e.name, S[p].name)
			end
		end
	end
end

-- Restore in place: a VM the lab already has under the snapshot's name is
-- shut down and restored (its handle stays valid), a missing one is
-- created; bridges get their recorded membership back; sub-labs recurse.
-- Members the snapshot does not name are left alone.
local function restore_lab(lab, dir, idx)
	idx = idx or read_index(dir)
	local c = restore_conflict(lab, idx)
	if c then error(c, 0) end  -- Lab:restore adds the caller's position once
	local st = S[lab]
	for _, e in ipairs(idx.vms) do
		local v = st.vms[e.name]
		if v then
			if e.snap then
				local state = v:state()
				-- restored over: no guest poweroff first (vm:_halt)
				if state ~= "created" and state ~= "shutdown" then v:_halt() end
			end
		else
			v = lab:vm(e.name, e.profile)
		end
		if e.snap then v:restore(dir .. "/" .. e.snap) end
	end
	for _, b in ipairs(idx.bridges or {}) do
		local br = st.bridges[b.name] or lab:bridge(b.name)
		br:_restore(b.members, b.state, function(n) return st.vms[n] end)
	end
	for _, l in ipairs(idx.labs or {}) do
		restore_lab(st.labs[l.name] or lab:lab(l.name), dir .. "/" .. l.dir)
	end
end

function Lab:restore(x)
	if not is_lab(self) then raise("lab:restore: call it with `:` (provium:restore(snap))") end
	local dir = _provium_snapshot_path(x, true)
	local ok, err = pcall(restore_lab, self, dir)
	if not ok then raise(tostring(err)) end
end

-- Forget a member created by a failed fixture restore.
local function drop_member(lab, kind, name, obj)
	pcall(function()
		if kind == "sub_lab" then close_registry(obj, {}) else obj:close() end
	end)
	remove_member(lab, kind, name)
	local st = S[lab]
	for i, r in ipairs(st.res) do
		if rawequal(r.obj, obj) then table.remove(st.res, i); break end
	end
	if kind == "vm" then S[st.root].all[obj] = nil end
end

-- The file root of whatever lab (or the current `provium`) is calling.
local function file_root(self)
	local lab = is_lab(self) and self or rawget(_G, "provium")
	if not is_lab(lab) then raise("fixtures need a lab") end
	return S[lab].root
end

local function fixture_args(self, path, what)
	if type(self) == "string" and path == nil then path, self = self, nil end
	if type(path) ~= "string" or path == "" then
		raise(("%s: path must be a non-empty string (the fixture's root-relative path " ..
			"without .fixture.lua)"):format(what))
	end
	return self, path
end

-- What each fixture materialised in the file root: key "vm\0<path>" or
-- "lab\0<path>" -> {kind, name, obj}. A repeat vm_fixture/lab_fixture
-- call for the same fixture (the usual pattern: one call at the top of
-- every test) replaces what the earlier call made, when that is still the
-- root's member under the same name: the old VM / sub-lab is closed and
-- forgotten, and a fresh one is restored under the name. A name held by
-- anything else still raises the Duplicate*Name error.
local function fixture_forget_previous(root, key)
	local st = S[root]
	st.fixtures = st.fixtures or {}
	local prev = st.fixtures[key]
	st.fixtures[key] = nil
	if not prev then return end
	local tbl = st[KINDS[prev.kind]]
	if rawequal(tbl[prev.name], prev.obj) then
		-- replaced: its guest is halted, not powered off (vm:_halt)
		if prev.kind == "vm" then pcall(prev.obj._halt, prev.obj) end
		if prev.kind == "sub_lab" then
			for _, v in pairs(S[prev.obj].vms) do pcall(v._halt, v) end
		end
		drop_member(root, prev.kind, prev.name, prev.obj)
	end
end

local function fixture_remember(root, key, kind, name, obj)
	S[root].fixtures[key] = {kind = kind, name = name, obj = obj}
end

function Lab.vm_fixture(self, path)
	self, path = fixture_args(self, path, "vm_fixture")
	local root = file_root(self)
	fixture_forget_previous(root, "vm\0" .. path)
	local ok, v = pcall(_provium_fixture, "vm", path, function(entry)
		local info = _provium_snap_info(entry)
		if S[root].vms[info.vm_name] then
			error({user_error = ("vm_fixture(%q): DuplicateVmName: vm name `%s` already used in this lab (`%s`)")
				:format(path, info.vm_name, S[root].name)})
		end
		local okc, vm = pcall(Lab.vm, root, info.vm_name, info.profile)
		if not okc then error({user_error = ("vm_fixture(%q): %s"):format(path, tostring(vm))}) end
		local okr, err = pcall(vm.restore, vm, entry)
		if not okr then
			drop_member(root, "vm", info.vm_name, vm)
			error(err, 0)
		end
		return vm
	end)
	if not ok then raise(tostring(v)) end
	fixture_remember(root, "vm\0" .. path, "vm", v:name(), v)
	return v
end

function Lab.lab_fixture(self, path)
	self, path = fixture_args(self, path, "lab_fixture")
	local root = file_root(self)
	local name = (path:match("([^/]+)$") or path):gsub("[^%w_]", "_")
	fixture_forget_previous(root, "lab\0" .. path)
	local ok, sub = pcall(_provium_fixture, "lab", path, function(entry)
		local idx = read_index(entry)
		if S[root].labs[name] then
			error({user_error = ("lab_fixture(%q): DuplicateLabName: lab name `%s` already used in this lab (`%s`)")
				:format(path, name, S[root].name)})
		end
		local s = Lab.lab(root, name)
		local okr, err = pcall(restore_lab, s, entry, idx)
		if not okr then
			drop_member(root, "sub_lab", name, s)
			error(err, 0)
		end
		return s
	end)
	if not ok then raise(tostring(sub)) end
	fixture_remember(root, "lab\0" .. path, "sub_lab", name, sub)
	return sub
end

-- reset_between_tests: a baseline of the root lab after the chunk, and
-- the root's VMs and sub-labs put back to it after every test (VM handles
-- stay valid: each VM is shut down and restored in place; VMs added to the
-- root since are closed).
function _provium_baseline_take(root)
	local st = S[root]
	local d = _provium_tmp_path("baseline", "", true)
	lab_snapshot_to(root, d)
	st.baseline = {dir = d, idx = read_index(d)}
end

function _provium_baseline_restore(root)
	local st = S[root]
	local b = st.baseline
	if not b then return end
	local keep = {}
	for _, e in ipairs(b.idx.vms) do
		keep[e.name] = true
		local v = st.vms[e.name]
		if v and e.snap then
			v:_halt()  -- restored over: no guest poweroff first
			v:restore(b.dir .. "/" .. e.snap)
		end
	end
	for _, m in ipairs({table.unpack(st.order)}) do
		if m.kind == "vm" and not keep[m.name] then drop_member(root, "vm", m.name, m.obj) end
	end
	for _, e in ipairs(b.idx.bridges or {}) do
		local br = st.bridges[e.name]
		if br then br:_restore(e.members, e.state, function(n) return st.vms[n] end) end
	end
	-- The baseline covers the root's sub-labs too (snapshots go downward).
	for _, l in ipairs(b.idx.labs or {}) do
		local sl = st.labs[l.name]
		if sl then restore_lab(sl, b.dir .. "/" .. l.dir) end
	end
end

LabMT.__index = function(lab, key)
	local m = Lab[key]
	if m ~= nil then return m end
	if type(key) ~= "string" then return nil end
	local v = lookup(lab, "vm", key) or lookup(lab, "bridge", key) or lookup(lab, "sub_lab", key)
	if v ~= nil then return v end
	-- Plain fields set on the file root (provium.timeout, ...) read the
	-- same from a per-test scope.
	local p = S[lab].parent
	while p do
		v = rawget(p, key)
		if v ~= nil then return v end
		p = S[p].parent
	end
	return nil
end
-- Assignments: only the documented file-scope keys (the provium module
-- reference); anything else is a typo the author should hear about, as
-- in the reference implementation.
local FILE_KEYS = {reset_between_tests = true, timeout = true}
LabMT.__newindex = function(lab, key, value)
	if not FILE_KEYS[key] then
		raise(("cannot set `provium.%s`: not a recognised file-scope config key. " ..
			"Known keys: reset_between_tests, timeout"):format(tostring(key)))
	end
	rawset(lab, key, value)
end
LabMT.__tostring = function(lab) return ("lab `%s`"):format(S[lab].name) end

-- Runner hooks (docs/internals.md section 3) -------------------------------

function _provium_new_root()
	return new_lab("provium", nil, nil)
end

function _provium_open_test_scope(root)
	local scope = new_lab("provium", root, S[root].root)
	S[scope].anon = S[root].anon
	return scope
end

-- Release a lab's claim (if it holds one) with its claim_released event;
-- an emit failure is appended to errs.
local function release_claim(st, errs)
	if not st.claim then return end
	local amount = st.claim
	st.claim = nil
	local ok, err = pcall(emit, "claim_released",
		{path = rawget(_G, "_provium_file") or "?", amount = amount})
	if not ok then errs[#errs + 1] = "claim: " .. tostring(err) end
end

function _provium_close_test_scope(scope)
	if not is_lab(scope) then return {} end
	local errs = close_registry(scope, {})
	local ss = S[scope]
	if ss.claim then S[ss.root].scope_claim = nil end
	release_claim(ss, errs)
	return errs
end

function _provium_close_file_scope(root)
	if not is_lab(root) then return {} end
	local errs = close_registry(root, {})
	release_claim(S[root], errs)
	return errs
end

local function all_vms()
	local root = rawget(_G, "provium")
	if not is_lab(root) then return {} end
	local out = {}
	for v in pairs(S[S[root].root].all) do out[#out + 1] = v end
	table.sort(out, function(a, b) return a:name() < b:name() end)
	return out
end

function _provium_console_excerpt()
	local parts = {}
	for _, v in ipairs(all_vms()) do
		local ok, s = pcall(v._console_tail, v, 4096)
		if ok and type(s) == "string" and s ~= "" then
			parts[#parts + 1] = ("--- %s console ---\n%s"):format(v:name(), s)
		end
	end
	return table.concat(parts, "\n")
end

function _provium_teardown_all()
	for _, v in ipairs(all_vms()) do pcall(v.close, v) end
end

function _provium_check_no_streams(root)
	if not is_lab(root) then return end
	for _, r in ipairs(S[root].res) do
		-- Streams (lstream.c) say whether they are closed and where they
		-- were created.
		local ok, closed = pcall(function() return r.obj:is_closed() end)
		if r.kind == "stream" and not (ok and closed) then
			local site = r.site
			local ok2, cs = pcall(function() return r.obj:creation_site() end)
			if ok2 and type(cs) == "table" then site = ("%s:%d"):format(cs.file, cs.line) end
			local ok3, what = pcall(function() return ("%s(%s)"):format(r.obj:kind(), r.obj:detail()) end)
			error(("reset_between_tests would auto-snapshot a live stream (%s created at %s); " ..
				"close it before the file's top-level chunk ends"):format(
				ok3 and what or tostring(r.obj), site or "?"), 0)
		end
	end
end
