-- net.lua — bridges and NICs: the policy half of networking. Embedded;
-- runs after lab.lua (which creates bridges through _provium_net_bridge_new)
-- and before framework.lua.
--
-- A Bridge is a graph object (members, partitions, impairments, isolation,
-- routes, uplink) plus, once anything needs frames to move, one user-space
-- switch (lnet.c's Switch userdata, net/switch.h). Each VM userdata
-- attached to it is wired at once: its backend gets a NIC for the bridge
-- (cold-plugged at the next boot, hotplugged when running) and the switch
-- adopts the NIC's host-side socket as a port labelled with the VM's name.
-- A bare-string member, or a VM of a backend without NICs (`--vmm local`),
-- is graph state only.
--
-- Addressing: each bridge owns one /24 of 198.18.0.0/15 (198.18.0.0,
-- 198.18.1.0, ... 198.19.255.0), each member a host number (1..252) in
-- attach order; the uplink gateway is .254 and its DNS forwarder .253. MACs
-- are 52:56:<4 bytes of a hash of "vm\0bridge">, stable across runs and
-- restores. When a VM is up (boot, restore, reset) the agent configures
-- the interface with its MAC and keeps a provium-managed block of
-- "<addr> <vm>.<bridge>" lines in /etc/hosts for every bridge the VM is on;
-- membership changes rewrite the block of every booted member.
--
-- Link policy: every (ingress, egress) port pair of the switch gets one
-- link setting computed here from the graph — blocked by a symmetric or
-- directional partition or by isolation of either end; latency, drop and
-- bandwidth from the whole-bridge value combined with the directional one
-- (latencies add, losses compound, the lower rate wins). apply() pushes
-- the whole matrix after every change.
--
-- Determinism: loss and jitter come from the switch's seeded PRNG. The seed
-- is bridge opts.seed, else $PROVIUM_NET_SEED, else 1; a failing test's
-- message names the seed of every bridge that drew random numbers.
--
-- Errors point at the user's line and name the bridge (and the VM).

-- errors blame the user's line, past lab.lua's frames too (lab:bridge)
local raise = _provium_make_raise(debug.getinfo(1, "S").source, "=[provium lab]")

local Bridge = {}
local BridgeMT = {__index = Bridge}
local Nic = {}
local NicMT = {__index = Nic}

local VMB = setmetatable({}, {__mode = "k"})       -- vm -> {bridge -> true}
local HOSTS = setmetatable({}, {__mode = "k"})     -- vm -> last hosts block written
local SUBNETS = {}                                  -- subnet index -> bridge (live)
local RANDOM_USED = {}                              -- "bridge" -> seed (for failure notes)
local NSUBNETS = 512

local function is_vm(v) return _provium_is_vm(v) end
local function is_bridge(v) return type(v) == "table" and getmetatable(v) == BridgeMT end
function _provium_is_bridge(v) return is_bridge(v) end

local function fmt_num(n)
	if math.type(n) == "float" and n == math.floor(n) and math.abs(n) < 2^53 then
		return ("%d"):format(n)
	end
	return tostring(n)
end

-- Addresses -------------------------------------------------------------------

local function subnet_prefix(idx)
	return ("198.%d.%d"):format(18 + idx // 256, idx % 256)
end

local function alloc_subnet(b, want)
	if want and want >= 0 and want < NSUBNETS then
		b._subnet = want
		SUBNETS[want] = b
		return
	end
	for i = 0, NSUBNETS - 1 do
		if not SUBNETS[i] then
			b._subnet = i
			SUBNETS[i] = b
			return
		end
	end
	raise(("bridge `%s`: no free /24 left in 198.18.0.0/15 (%d bridges are live)")
		:format(b._name, NSUBNETS))
end

local function addr_of(b, name)
	return ("%s.%d"):format(subnet_prefix(b._subnet), b._host[name])
end

local function gateway_of(b) return subnet_prefix(b._subnet) .. ".254" end
local function dns_of(b) return subnet_prefix(b._subnet) .. ".253" end

local function alloc_host(b, name)
	if b._host[name] then return end
	local used = {}
	for _, n in pairs(b._host) do used[n] = true end
	for n = 1, 252 do
		if not used[n] then b._host[name] = n; return end
	end
	raise(("bridge `%s`: more than 252 members"):format(b._name))
end

-- FNV-1a, 32 bits.
local function fnv(s)
	local h = 0x811c9dc5
	for i = 1, #s do
		h = ((h ~ s:byte(i)) * 0x01000193) & 0xffffffff
	end
	return h
end

local function alloc_mac(b, name)
	if b._mac[name] then return end
	local taken = {}
	for _, m in pairs(b._mac) do taken[m] = true end
	local salt = ""
	while true do
		local h = fnv(name .. "\0" .. b._name .. salt)
		local m = ("52:56:%02x:%02x:%02x:%02x"):format(h >> 24, (h >> 16) & 255,
			(h >> 8) & 255, h & 255)
		if not taken[m] then b._mac[name] = m; return end
		salt = salt .. "+"
	end
end

-- Graph helpers ---------------------------------------------------------------

local function pair(a, b) return a .. "\0" .. b end
local function sym_key(a, b) if a < b then return pair(a, b) end return pair(b, a) end

local function is_member(b, name)
	for _, m in ipairs(b._members) do if m == name then return true end end
	return false
end

local function endpoint(b, x, op, what)
	if is_vm(x) then return x:name() end
	if type(x) == "string" and x ~= "" then return x end
	raise(("bridge `%s`: %s: %s must be a vm or a vm name, got %s")
		:format(b._name, op, what or "argument", type(x)))
end

-- The named member must be attached with a VM handle and booted (the
-- directional forms act on its NIC now).
local function need_live(b, name, op)
	local vm = b._vms[name]
	if not is_member(b, name) or not vm then
		raise(("bridge `%s`: %s: vm `%s` is not attached to this bridge; call " ..
			"bridge:attach first"):format(b._name, op, name))
	end
	if vm:state() ~= "booted" then
		raise(("bridge `%s`: %s: vm `%s` is %s, not booted; boot it (and call " ..
			"bridge:attach first) before a directional rule"):format(b._name, op, name, vm:state()))
	end
end

local function directional(b, t, op, field)
	if type(t) ~= "table" or t.from == nil or t.to == nil then
		raise(("bridge `%s`: %s: expected {from=vm, to=vm%s}"):format(b._name, op,
			field and (", " .. field .. "=...") or ""))
	end
	local a = endpoint(b, t.from, op, "from")
	local c = endpoint(b, t.to, op, "to")
	if a == c then
		raise(("bridge `%s`: %s: from and to are the same vm `%s`"):format(b._name, op, a))
	end
	return a, c
end

-- The switch -------------------------------------------------------------------

local function env_seed()
	local s = os.getenv("PROVIUM_NET_SEED")
	if s and s ~= "" then
		local n = math.tointeger(tonumber(s))
		if n then return n end
		local msg = ("provium: PROVIUM_NET_SEED=%q is not an integer; using 1"):format(s)
		local emit = rawget(_G, "_provium_emit")
		if emit then emit("_diag", {message = msg})
		else io.stderr:write(msg, "\n") end
	end
	return 1
end

local function ensure_switch(b)
	if b._sw then return b._sw end
	if b._closed then raise(("bridge `%s` is closed"):format(b._name)) end
	b._sw = _provium_netsw_new(b._name, b._seed)
	return b._sw
end

local function enabled(b, name)
	return is_member(b, name) and not b._down[name]
end

local function link_params(b, from, to)
	local blocked = b._sym[sym_key(from, to)] or b._dir[pair(from, to)] or
		b._iso[from] or b._iso[to] or false
	local w = b._whole
	local lat = w.latency + (b._dlat[pair(from, to)] or 0)
	local p1, p2 = w.drop / 100, (b._ddrop[pair(from, to)] or 0) / 100
	local drop = (1 - (1 - p1) * (1 - p2)) * 100
	local bps = w.bps
	local d = b._dbw[pair(from, to)]
	if d and (bps == 0 or d < bps) then bps = d end
	return {blocked = blocked, latency_ms = lat, drop_pct = drop, bps = bps, jitter_ms = 0}
end

-- Push the whole link matrix and every port's enabled state.
local function apply(b)
	if b._whole.drop > 0 or next(b._ddrop) then RANDOM_USED[b._name] = b._seed end
	local sw = b._sw
	if not sw then return end
	local ports = {}
	for name, port in pairs(b._ports) do
		ports[#ports + 1] = {name, port}
		sw:enable(port, enabled(b, name))
	end
	if b._uplink_port then ports[#ports + 1] = {"uplink", b._uplink_port} end
	for _, x in ipairs(ports) do
		for _, y in ipairs(ports) do
			if x[2] ~= y[2] then sw:link(x[2], y[2], link_params(b, x[1], y[1])) end
		end
	end
end

-- Guest configuration ----------------------------------------------------------

local function bridges_of(vm)
	local out = {}
	for b in pairs(VMB[vm] or {}) do
		local name = vm:name()
		if not b._closed and b._ports[name] and is_member(b, name) then out[#out + 1] = b end
	end
	table.sort(out, function(x, y) return x._name < y._name end)
	return out
end

local function hosts_block(vm)
	local lines = {}
	for _, b in ipairs(bridges_of(vm)) do
		local names = {}
		for _, m in ipairs(b._members) do
			if b._host[m] then names[#names + 1] = m end
		end
		table.sort(names)
		for _, m in ipairs(names) do
			lines[#lines + 1] = ("%s\t%s.%s"):format(addr_of(b, m), m, b._name)
		end
	end
	if #lines == 0 then return "" end
	return table.concat(lines, "\n") .. "\n"
end

local function write_hosts(vm)
	if vm:state() ~= "booted" then return end
	local block = hosts_block(vm)
	if HOSTS[vm] == block then return end
	if vm:_net_setup({hosts = block}) ~= nil then HOSTS[vm] = block end
end

-- Address vm's NIC on b (and its default route/DNS when b has an uplink).
local function configure_nic(vm, b)
	local name = vm:name()
	local req = {mac = b._mac[name], addr = addr_of(b, name), prefix = 24}
	if b._uplink_port then
		req.gateway, req.dns = gateway_of(b), dns_of(b)
	elseif b._had_uplink then
		req.gateway = ""
	end
	vm:_net_setup(req)
end

local function refresh_hosts(b)
	for _, m in ipairs(b._members) do
		local vm = b._vms[m]
		if vm and b._ports[m] then write_hosts(vm) end
	end
	-- a detached VM drops this bridge's lines too
	for m in pairs(b._detached) do
		local vm = b._vms[m]
		if vm then write_hosts(vm) end
	end
end

-- After boot / restore / reset (lvm.c): address every NIC, write hosts.
function _provium_net_vm_up(vm)
	HOSTS[vm] = nil
	for _, b in ipairs(bridges_of(vm)) do configure_nic(vm, b) end
	if VMB[vm] then write_hosts(vm) end
end

-- Wire a member with a VM handle: NIC + switch port, then address it.
local function wire(b, name)
	local vm = b._vms[name]
	if not vm then return end
	if not b._ports[name] then
		for other in pairs(VMB[vm] or {}) do
			if other ~= b and other._name == b._name and not other._closed then
				raise(("bridge `%s`: attach: vm `%s` is already on another bridge named `%s` " ..
					"(a VM's NICs are named by bridge)"):format(b._name, name, b._name))
			end
		end
		alloc_host(b, name)
		alloc_mac(b, name)
		VMB[vm] = VMB[vm] or {}
		VMB[vm][b] = true
		local port = ensure_switch(b):adopt_vm(vm, b._name, b._mac[name], name)
		if port == nil then return end   -- this backend has no NICs: graph state
		b._ports[name] = port
	end
	apply(b)
	vm:_nic_link(b._name, not b._down[name])
	if vm:state() == "booted" then configure_nic(vm, b) end
end

-- Bridge construction (lab.lua calls this) -------------------------------------

function _provium_net_bridge_new(name, opts)
	local seed = env_seed()
	if opts ~= nil then
		for k, v in pairs(opts) do
			if k == "seed" then
				if math.type(v) ~= "integer" then
					raise(("bridge `%s`: opts.seed must be an integer, got %s"):format(name, type(v)))
				end
				seed = v
			else
				raise(("bridge `%s`: unknown option `%s` (known: seed)"):format(name, tostring(k)))
			end
		end
	end
	local b = setmetatable({
		_name = name, _members = {}, _vms = {}, _detached = {}, _down = {},
		_ports = {}, _host = {}, _mac = {}, _sym = {}, _dir = {}, _iso = {},
		_whole = {latency = 0, drop = 0, bps = 0}, _dlat = {}, _ddrop = {}, _dbw = {},
		_routes = {}, _caps = setmetatable({}, {__mode = "k"}), _seed = seed,
		_closed = false,
	}, BridgeMT)
	alloc_subnet(b)
	return b
end

-- Membership --------------------------------------------------------------------

function Bridge:name() return self._name end

function Bridge:attach(x)
	local items = (type(x) == "table" and not is_bridge(x)) and x or {x}
	local plan = {}
	for i, it in ipairs(items) do
		if is_vm(it) then
			local st = it:state()
			if st == "dead" then
				raise(("bridge `%s`: attach: vm `%s` is dead (its QEMU exited); a dead VM " ..
					"cannot get a NIC"):format(self._name, it:name()))
			end
			if st == "closed" then
				raise(("bridge `%s`: attach: vm `%s` is closed"):format(self._name, it:name()))
			end
			local prev = self._vms[it:name()]
			if prev and not rawequal(prev, it) then
				raise(("bridge `%s`: attach: another vm named `%s` is already attached")
					:format(self._name, it:name()))
			end
			plan[i] = {it:name(), it}
		elseif type(it) == "string" and it ~= "" then
			plan[i] = {it, nil}
		else
			raise(("bridge `%s`: attach: item %d is a %s, not a vm or name")
				:format(self._name, i, type(it)))
		end
	end
	for _, p in ipairs(plan) do
		local name, vm = p[1], p[2]
		if not is_member(self, name) then self._members[#self._members + 1] = name end
		self._detached[name] = nil
		if vm then self._vms[name] = vm end
		alloc_host(self, name)
	end
	for _, p in ipairs(plan) do wire(self, p[1]) end
	apply(self)
	refresh_hosts(self)
end

function Bridge:detach(x)
	local name = endpoint(self, x, "detach")
	local found = false
	for i, m in ipairs(self._members) do
		if m == name then table.remove(self._members, i); found = true; break end
	end
	if not found then return end
	self._detached[name] = true
	-- directional rules involving it go with it
	for k in pairs(self._dir) do
		local a, c = k:match("^(.-)%z(.*)$")
		if a == name or c == name then self._dir[k] = nil end
	end
	local vm = self._vms[name]
	if vm and self._ports[name] then vm:_nic_link(self._name, false) end
	apply(self)           -- its port is disabled: not a member
	refresh_hosts(self)   -- everyone (it too) loses its line
end

function Bridge:members()
	local out = {}
	for i, m in ipairs(self._members) do out[i] = m end
	return out
end

-- Partitions ---------------------------------------------------------------------

function Bridge:partition(a, c)
	if type(a) == "table" and not is_vm(a) and c == nil then
		local f, t = directional(self, a, "partition")
		need_live(self, f, "partition")
		need_live(self, t, "partition")
		self._dir[pair(f, t)] = true
	else
		local x = endpoint(self, a, "partition", "first vm")
		local y = endpoint(self, c, "partition", "second vm")
		if x == y then raise(("bridge `%s`: partition: a vm cannot be partitioned from itself (`%s`)")
			:format(self._name, x)) end
		self._sym[sym_key(x, y)] = true
	end
	apply(self)
end

function Bridge:unpartition(a, c)
	if type(a) == "table" and not is_vm(a) and c == nil then
		local f, t = directional(self, a, "unpartition")
		self._dir[pair(f, t)] = nil
	else
		local x = endpoint(self, a, "unpartition", "first vm")
		local y = endpoint(self, c, "unpartition", "second vm")
		self._sym[sym_key(x, y)] = nil
	end
	apply(self)
end

function Bridge:partition_all()
	for i = 1, #self._members do
		for j = i + 1, #self._members do
			self._sym[sym_key(self._members[i], self._members[j])] = true
		end
	end
	apply(self)
end

function Bridge:restore_all()
	self._sym, self._dir = {}, {}
	apply(self)
end

function Bridge:is_partitioned(a, c)
	local x = endpoint(self, a, "is_partitioned", "first vm")
	local y = endpoint(self, c, "is_partitioned", "second vm")
	return (self._sym[sym_key(x, y)] or self._dir[pair(x, y)]) and true or false
end

-- Impairments -----------------------------------------------------------------------

local function check_number(b, op, v, what)
	if type(v) ~= "number" or v ~= v or v == math.huge or v == -math.huge then
		raise(("bridge `%s`: %s: %s must be a number, got %s"):format(b._name, op, what,
			type(v) == "number" and tostring(v) or type(v)))
	end
	return v
end

local function check_latency(b, op, v)
	check_number(b, op, v, "latency (ms)")
	if v < 0 then raise(("bridge `%s`: %s: latency must be >= 0 ms, got %s"):format(b._name, op, fmt_num(v))) end
	return v
end

local function check_pct(b, op, v)
	check_number(b, op, v, "drop rate (%)")
	if v < 0 or v > 100 then
		raise(("bridge `%s`: %s: drop rate must be between 0 and 100 (percent), got %s")
			:format(b._name, op, fmt_num(v)))
	end
	return v
end

local function check_bps(b, op, v)
	check_number(b, op, v, "bandwidth (bits/s)")
	if v <= 0 then
		raise(("bridge `%s`: %s: bandwidth must be > 0 bits/s, got %s (bridge:reset() lifts a limit)")
			:format(b._name, op, fmt_num(v)))
	end
	return v
end

local function set_directional(b, op, t, field, check, store)
	local f, to = directional(b, t, op, field)
	local v = check(b, op, t[field])
	need_live(b, f, op)
	need_live(b, to, op)
	store[pair(f, to)] = v
	apply(b)
end

function Bridge:add_latency(x)
	if type(x) == "table" then return set_directional(self, "add_latency", x, "ms", check_latency, self._dlat) end
	self._whole.latency = check_latency(self, "add_latency", x)
	apply(self)
end

function Bridge:add_directional_latency(t)
	return set_directional(self, "add_directional_latency", t, "ms", check_latency, self._dlat)
end

function Bridge:drop_rate(x)
	if type(x) == "table" then return set_directional(self, "drop_rate", x, "p", check_pct, self._ddrop) end
	self._whole.drop = check_pct(self, "drop_rate", x)
	apply(self)
end

function Bridge:directional_drop_rate(t)
	return set_directional(self, "directional_drop_rate", t, "p", check_pct, self._ddrop)
end

function Bridge:bandwidth_limit(x)
	if type(x) == "table" then return set_directional(self, "bandwidth_limit", x, "bps", check_bps, self._dbw) end
	self._whole.bps = check_bps(self, "bandwidth_limit", x)
	apply(self)
end

function Bridge:reset()
	self._whole = {latency = 0, drop = 0, bps = 0}
	self._dlat, self._ddrop, self._dbw = {}, {}, {}
	self._sym, self._dir = {}, {}
	apply(self)
end

function Bridge:latency_ms() return self._whole.latency end
function Bridge:drop_rate_pct() return self._whole.drop end
function Bridge:bandwidth_bps() return self._whole.bps end

-- Isolation ----------------------------------------------------------------------

function Bridge:isolate(x)
	self._iso[endpoint(self, x, "isolate")] = true
	apply(self)
end

function Bridge:unisolate(x)
	self._iso[endpoint(self, x, "unisolate")] = nil
	apply(self)
end

function Bridge:is_isolated(x)
	return self._iso[endpoint(self, x, "is_isolated")] == true
end

-- Routing (graph state) -------------------------------------------------------------

function Bridge:route(x)
	local items = (type(x) == "table" and not is_bridge(x)) and x or {x}
	local names = {}
	for i, it in ipairs(items) do
		if is_bridge(it) then names[i] = it._name
		elseif type(it) == "string" and it ~= "" then names[i] = it
		else raise(("bridge `%s`: route: item %d is a %s, not a bridge or bridge name")
			:format(self._name, i, type(it))) end
	end
	for _, n in ipairs(names) do
		local dup = false
		for _, r in ipairs(self._routes) do if r == n then dup = true end end
		if not dup then self._routes[#self._routes + 1] = n end
	end
	if not self._route_warned then
		self._route_warned = true
		local msg = ("bridge:route on `%s` is graph-state only: provium records the route " ..
			"but forwards no IP traffic between bridges yet, so cross-bridge traffic will " ..
			"not flow."):format(self._name)
		-- a harness message: to the dispatcher's stderr (_diag), not into
		-- the file's captured output
		local emit = rawget(_G, "_provium_emit")
		if emit then emit("_diag", {message = msg})
		else io.stderr:write(msg, "\n") end
	end
end

function Bridge:routes()
	local out = {}
	for i, r in ipairs(self._routes) do out[i] = r end
	return out
end

-- Uplink ---------------------------------------------------------------------------

local function reconfigure_members(b)
	for name in pairs(b._ports) do
		local vm = b._vms[name]
		if vm and vm:state() == "booted" and is_member(b, name) then configure_nic(vm, b) end
	end
end

function Bridge:enable_uplink()
	if self._uplink_port then return end
	local sw = ensure_switch(self)
	self._uplink_port = sw:uplink(subnet_prefix(self._subnet) .. ".0", gateway_of(self), dns_of(self))
	self._had_uplink = true
	apply(self)
	reconfigure_members(self)
end

function Bridge:disable_uplink()
	if not self._uplink_port then return end
	self._sw:remove(self._uplink_port)
	self._uplink_port = nil
	apply(self)
	reconfigure_members(self)
end

-- NICs and capture -------------------------------------------------------------------

local function new_nic(b, name, vm)
	return setmetatable({_bridge = b, _name = name, _vm = vm}, NicMT)
end

function Bridge:nic(x)
	if is_vm(x) then return new_nic(self, x:name(), x) end
	return new_nic(self, endpoint(self, x, "nic"), nil)
end

function Bridge:capture()
	local sw = ensure_switch(self)
	local s = sw:capture(nil, nil, "bridge " .. self._name)
	self._caps[s] = true
	return s
end

function Bridge:close()
	if self._closed then return end
	self._closed = true
	if SUBNETS[self._subnet] == self then SUBNETS[self._subnet] = nil end
	for s in pairs(self._caps) do pcall(s.close, s) end
	if self._sw then self._sw:close() end
end

BridgeMT.__tostring = function(b) return ("bridge `%s`"):format(b._name) end

function Nic:vm_name() return self._name end
function Nic:bridge() return self._bridge._name end

local function nic_port(n)
	local b = n._bridge
	local vm = n._vm or b._vms[n._name]
	return b._ports[n._name], vm
end

function Nic:counters()
	local port = nic_port(self)
	local b = self._bridge
	if port and b._sw and not b._closed then
		local c = b._sw:counters(port)
		return {rx_bytes = c.rx_bytes, tx_bytes = c.tx_bytes, rx_packets = c.rx_packets,
			tx_packets = c.tx_packets, errors = c.errors}
	end
	return {rx_bytes = 0, tx_bytes = 0, rx_packets = 0, tx_packets = 0, errors = 0}
end

local function set_carrier(n, up)
	local b = n._bridge
	if up then b._down[n._name] = nil else b._down[n._name] = true end
	apply(b)
	-- without a VM handle (bridge:nic("name")) it is graph state only
	if n._vm and b._ports[n._name] then n._vm:_nic_link(b._name, up) end
end

function Nic:disconnect() set_carrier(self, false) end
function Nic:reconnect() set_carrier(self, true) end

function Nic:capture()
	local port, vm = nic_port(self)
	local b = self._bridge
	if not port or not vm or vm:state() ~= "booted" or not b._sw then
		raise(("nic:capture: vm `%s` has no TAP on bridge `%s` (not booted?). Call " ..
			"lab:boot() / vm:boot() first."):format(self._name, b._name))
	end
	return b._sw:capture(port, vm, ("nic %s.%s"):format(self._name, b._name))
end

NicMT.__tostring = function(n) return ("nic `%s` on bridge `%s`"):format(n._name, n._bridge._name) end

-- vm:nic(name): by bridge name, else eth<N>/enp0s<N>/ens<N> = the Nth
-- attached bridge in name order.
function _provium_vm_nic(vm, name)
	if type(name) ~= "string" then raise("vm:nic: name must be a string (a bridge name or eth<N>)") end
	local list = {}
	for b in pairs(VMB[vm] or {}) do
		if not b._closed and is_member(b, vm:name()) then list[#list + 1] = b end
	end
	table.sort(list, function(x, y) return x._name < y._name end)
	for _, b in ipairs(list) do
		if b._name == name then return new_nic(b, vm:name(), vm) end
	end
	local n = name:match("^eth(%d+)$") or name:match("^enp0s(%d+)$") or name:match("^ens(%d+)$")
	if n and list[tonumber(n) + 1] then return new_nic(list[tonumber(n) + 1], vm:name(), vm) end
	local names = {}
	for _, b in ipairs(list) do names[#names + 1] = b._name end
	raise(("vm `%s`: nic(%q): no such NIC (attached bridges: %s)"):format(vm:name(), name,
		#names > 0 and table.concat(names, ", ") or "none"))
end

-- A live bridge capture makes a snapshot of any of its VMs refuse.
function _provium_net_before_snapshot(vm)
	for _, b in ipairs(bridges_of(vm)) do
		for s in pairs(b._caps) do
			if not s:is_closed() then
				local site = s:creation_site()
				raise(("vm `%s`: cannot snapshot: a live capture on bridge `%s`%s would be " ..
					"half-captured; close it first"):format(vm:name(), b._name,
					site and (" (created at %s:%d)"):format(site.file, site.line) or ""))
			end
		end
	end
end

function _provium_net_failure_note()
	local parts = {}
	for name, seed in pairs(RANDOM_USED) do
		parts[#parts + 1] = ("bridge `%s` seed %d"):format(name, seed)
	end
	if #parts == 0 then return nil end
	table.sort(parts)
	return ("network randomness: %s (replay with PROVIUM_NET_SEED=<seed> or " ..
		"provium:bridge(name, {seed = <seed>}))"):format(table.concat(parts, ", "))
end

-- Lab snapshots -----------------------------------------------------------------------

local function pairs_list(t)
	local out = {}
	for k, v in pairs(t) do
		local a, c = k:match("^(.-)%z(.*)$")
		out[#out + 1] = {a, c, v}
	end
	table.sort(out, function(x, y) return x[1] .. "\0" .. x[2] < y[1] .. "\0" .. y[2] end)
	return out
end

local function list_pairs(l)
	local t = {}
	for _, e in ipairs(l or {}) do t[pair(e[1], e[2])] = e[3] end
	return t
end

local function set_list(t)
	local out = {}
	for k in pairs(t) do out[#out + 1] = k end
	table.sort(out)
	return out
end

local function list_set(l)
	local t = {}
	for _, k in ipairs(l or {}) do t[k] = true end
	return t
end

-- What lab.json records of a bridge.
function Bridge:_state()
	local hosts, macs = {}, {}
	for k, v in pairs(self._host) do hosts[#hosts + 1] = {k, v} end
	for k, v in pairs(self._mac) do macs[#macs + 1] = {k, v} end
	table.sort(hosts, function(x, y) return x[1] < y[1] end)
	table.sort(macs, function(x, y) return x[1] < y[1] end)
	return {
		subnet = self._subnet, seed = self._seed, hosts = hosts, macs = macs,
		sym = pairs_list(self._sym), dir = pairs_list(self._dir), iso = set_list(self._iso),
		down = set_list(self._down), whole = self._whole,
		dlat = pairs_list(self._dlat), ddrop = pairs_list(self._ddrop), dbw = pairs_list(self._dbw),
		routes = self:routes(), uplink = self._uplink_port ~= nil,
	}
end

-- Put the graph back from lab.json (members, then state); vm_of(name)
-- gives the lab's VM of that name or nil.
function Bridge:_restore(members, st, vm_of)
	st = st or {}
	self._members, self._detached = {}, {}
	if math.type(st.subnet) == "integer" and st.subnet ~= self._subnet then
		if SUBNETS[self._subnet] == self then SUBNETS[self._subnet] = nil end
		alloc_subnet(self, st.subnet)
	end
	if math.type(st.seed) == "integer" and st.seed ~= self._seed then
		self._seed = st.seed
		if self._sw then
			-- a different seed needs a new switch: ports are re-adopted below
			self._sw:close()
			self._sw, self._ports, self._uplink_port = nil, {}, nil
		end
	end
	for _, e in ipairs(st.hosts or {}) do self._host[e[1]] = e[2] end
	for _, e in ipairs(st.macs or {}) do self._mac[e[1]] = e[2] end
	self._sym, self._dir = list_pairs(st.sym), list_pairs(st.dir)
	self._iso, self._down = list_set(st.iso), list_set(st.down)
	local w = st.whole or {}
	self._whole = {latency = w.latency or 0, drop = w.drop or 0, bps = w.bps or 0}
	self._dlat, self._ddrop, self._dbw = list_pairs(st.dlat), list_pairs(st.ddrop), list_pairs(st.dbw)
	self._routes = {}
	for i, r in ipairs(st.routes or {}) do self._routes[i] = r end
	self._route_warned = #self._routes > 0
	local items = {}
	for _, m in ipairs(members or {}) do items[#items + 1] = vm_of(m) or m end
	if #items > 0 then self:attach(items) end
	if st.uplink then self:enable_uplink() elseif self._uplink_port then self:disable_uplink() end
	apply(self)
end

-- Switch statistics for bench/ (frames, bytes, cpu_ns), or nil.
function Bridge:_stats()
	return self._sw and self._sw:stats() or nil
end

function Bridge:_seed_value() return self._seed end

-- Test hooks: a member's MAC and address on this bridge (nil when none).
function Bridge:_mac_of(name) return self._mac[name] end
function Bridge:_addr_of(name) return self._host[name] and addr_of(self, name) or nil end
