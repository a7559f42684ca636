-- bridge_graph.test.lua — the Bridge and Nic API as graph state, on the
-- local backend (no NICs there: nothing is wired, everything is
-- recorded): arguments, errors, getters, partitions, isolation, routes,
-- NIC lookup. Frames on real guests are tests/vm/net*.test.lua.

local function errmsg(f, ...)
	local ok, e = pcall(f, ...)
	if ok then return "(no error)" end
	return tostring(e)
end

local function show(t) return table.concat(t, ",") end

test("attach, members, detach; bare strings and lists", function(t)
	local b = provium:bridge("net")
	local a = provium:vm("a", "default")
	b:attach({a, "b"})
	t:assert_eq(show(b:members()), "a,b")
	b:detach(a)
	t:assert_eq(show(b:members()), "b")
	b:attach(a)
	t:assert_eq(show(b:members()), "b,a")
	local e = errmsg(b.attach, b, {a, 42})
	t:assert(e:find("bridge `net`: attach: item 2 is a number, not a vm or name", 1, true), e)
end)

test("symmetric and directional partitions", function(t)
	local b = provium:bridge("lan")
	b:attach({"a", "b", "c"})
	b:partition("a", "b")
	t:assert(b:is_partitioned("a", "b"))
	t:assert(b:is_partitioned("b", "a"))
	t:assert(not b:is_partitioned("a", "c"))
	b:unpartition("b", "a")
	t:assert(not b:is_partitioned("a", "b"))
	-- directional needs attached, booted endpoints with VM handles
	local e = errmsg(b.partition, b, {from = "a", to = "b"})
	t:assert(e:find("bridge `lan`: partition: vm `a` is not attached to this bridge; " ..
		"call bridge:attach first", 1, true), e)
	local v = provium:vm("v", "default")
	b:attach(v)
	e = errmsg(b.partition, b, {from = v, to = "zz"})
	t:assert(e:find("is created, not booted", 1, true) or e:find("call bridge:attach first", 1, true), e)
	-- the lenient directional unpartition
	b:unpartition({from = "a", to = "nobody"})
	b:partition_all()
	t:assert(b:is_partitioned("a", "c") and b:is_partitioned("c", "v"))
	b:restore_all()
	t:assert(not b:is_partitioned("a", "c"))
	e = errmsg(b.partition, b, "a", "a")
	t:assert(e:find("cannot be partitioned from itself", 1, true), e)
end)

test("impairments: values, getters, validation, reset", function(t)
	local b = provium:bridge("wan")
	t:assert_eq(b:latency_ms(), 0)
	b:add_latency(50)
	b:drop_rate(10)
	b:bandwidth_limit(1000000)
	t:assert_eq(b:latency_ms(), 50)
	t:assert_eq(b:drop_rate_pct(), 10)
	t:assert_eq(b:bandwidth_bps(), 1000000)
	local cases = {
		{b.add_latency, -5, "bridge `wan`: add_latency: latency must be >= 0 ms, got -5"},
		{b.drop_rate, 101, "bridge `wan`: drop_rate: drop rate must be between 0 and 100 (percent), got 101"},
		{b.drop_rate, -1, "drop rate must be between 0 and 100"},
		{b.bandwidth_limit, 0, "bridge `wan`: bandwidth_limit: bandwidth must be > 0 bits/s, got 0"},
		{b.add_latency, "x", "bridge `wan`: add_latency: latency (ms) must be a number, got string"},
	}
	for _, c in ipairs(cases) do
		local e = errmsg(c[1], b, c[2])
		t:assert(e:find(c[3], 1, true), e)
	end
	t:assert_eq(b:latency_ms(), 50, "a rejected value changes nothing")
	local e = errmsg(b.add_latency, b, {from = "a", to = "b", ms = 5})
	t:assert(e:find("call bridge:attach first", 1, true), e)
	e = errmsg(b.add_directional_latency, b, {from = "a"})
	t:assert(e:find("expected {from=vm, to=vm, ms=...}", 1, true), e)
	b:reset()
	t:assert_eq(b:latency_ms(), 0)
	t:assert_eq(b:drop_rate_pct(), 0)
	t:assert_eq(b:bandwidth_bps(), 0)
end)

test("isolation, routes, accessors", function(t)
	local b = provium:bridge("iso")
	local o = provium:bridge("other")
	b:isolate("a")
	t:assert(b:is_isolated("a"))
	t:assert(not b:is_isolated("b"))
	b:unisolate("a")
	t:assert(not b:is_isolated("a"))
	b:route(o)
	b:route({"third", o})
	t:assert_eq(show(b:routes()), "other,third")
	t:assert_eq(b:name(), "iso")
	t:assert_eq(tostring(b), "bridge `iso`")
end)

test("NICs from either side; eth<N> is the Nth bridge by name", function(t)
	local z = provium:bridge("zeta")
	local m = provium:bridge("mgmt")
	local v = provium:vm("n", "default")
	z:attach(v)
	m:attach(v)
	t:assert_eq(v:nic("mgmt"):bridge(), "mgmt")
	t:assert_eq(v:nic("eth0"):bridge(), "mgmt")
	t:assert_eq(v:nic("eth1"):bridge(), "zeta")
	t:assert_eq(v:nic("ens1"):bridge(), "zeta")
	t:assert_eq(z:nic(v):vm_name(), "n")
	t:assert_eq(z:nic("bare"):vm_name(), "bare")
	local e = errmsg(v.nic, v, "eth5")
	t:assert(e:find("vm `n`: nic(\"eth5\"): no such NIC (attached bridges: mgmt, zeta)", 1, true), e)
	-- a graph-only NIC: zero counters, link flaps are recorded
	local c = z:nic(v):counters()
	t:assert_eq(c.rx_bytes + c.tx_bytes + c.rx_packets + c.tx_packets + c.errors, 0)
	z:nic("bare"):disconnect()
	z:nic("bare"):reconnect()
	e = errmsg(z:nic(v).capture, z:nic(v))
	t:assert(e:find("nic:capture: vm `n` has no TAP on bridge `zeta` (not booted?). " ..
		"Call lab:boot() / vm:boot() first.", 1, true), e)
end)

test("bridge options: seed only", function(t)
	local e = errmsg(provium.bridge, provium, "o1", {colour = "red"})
	t:assert(e:find("bridge `o1`: unknown option `colour` (known: seed)", 1, true), e)
	e = errmsg(provium.bridge, provium, "o2", {seed = 1.5})
	t:assert(e:find("bridge `o2`: opts.seed must be an integer", 1, true), e)
	local b = provium:bridge("o3", {seed = 42})
	t:assert_eq(b:_seed_value(), 42)
end)

test("sub-labs keep their own bridges", function(t)
	local l1, l2 = provium:lab("dc1"), provium:lab("dc2")
	local b1, b2 = l1:bridge("lan"), l2:bridge("lan")
	t:assert(b1 ~= b2)
	b1:attach("x")
	t:assert_eq(#b2:members(), 0)
end)
