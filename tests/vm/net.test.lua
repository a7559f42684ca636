-- net.test.lua — bridges and NICs on real guests (the Bridge, NIC and
-- Capture reference pages). Every test restores the two-VM lab fixture
-- fixtures/pair (`a` and `b` on bridge `lan`, built once and cached), so a
-- test costs two restores, not two boots. Lower bounds on delays are
-- correctness checks (an impairment that does nothing fails them); no test
-- asserts a speed.

local function ping(vm, host, extra)
	return vm:run(("ping -c 1 -W 2 %s %s"):format(extra or "", host))
end

local function reach(vm, host)
	wait_until(function() return ping(vm, host):ok() end,
		{timeout = "20s", desc = vm:name() .. " reaches " .. host})
end

-- Round-trip times (ms) of n pings.
local function rtts(vm, host, n)
	local r = vm:run(("ping -c %d -W 3 %s"):format(n, host))
	local out = {}
	for ms in r.stdout:gmatch("time=([%d%.]+) ms") do out[#out + 1] = tonumber(ms) end
	return out, r
end

local function min(t)
	local m = math.huge
	for _, v in ipairs(t) do if v < m then m = v end end
	return m
end

local function addr(vm, ifname)
	return vm:run(("ip -4 -o addr show dev %s"):format(ifname)).stdout:match("inet ([%d%.]+)/")
end

local function ifname_of(vm, mac)
	return vm:run(("for i in /sys/class/net/*; do [ \"$(cat $i/address)\" = %s ] && basename $i; done")
		:format(mac)).stdout:gsub("%s+$", "")
end

test("a lab fixture's VMs ping each other by name after restore", function(t)
	local lab = provium:lab_fixture("fixtures/pair")
	reach(lab.a, "b.lan")
	reach(lab.b, "a.lan")
	local hosts = lab.a:read_file("/etc/hosts")
	t:assert_contains(hosts, "a.lan")
	t:assert_contains(hosts, "b.lan")
	t:assert_contains(hosts, "# provium: begin")
end)

test("attach after boot hotplugs a NIC; two bridges map to eth0/eth1 by name", function(t)
	local lab = provium:lab_fixture("fixtures/pair")
	local mgmt = provium:bridge("mgmt")
	mgmt:attach({lab.a, lab.b})          -- both booted: hotplug
	reach(lab.a, "b.mgmt")
	-- bridges in name order: lan (eth0), mgmt (eth1)
	t:assert_eq(lab.a:nic("eth0"):bridge(), "lan")
	t:assert_eq(lab.a:nic("eth1"):bridge(), "mgmt")
	t:assert_eq(lab.a:nic("mgmt"):vm_name(), "a")
	reach(lab.b, "a.lan")
	-- hotplugged NICs come back in their root ports after a snapshot round
	-- trip (the migration stream needs them there)
	local snap = lab:snapshot()
	lab:restore(snap)
	reach(lab.a, "b.mgmt")
	reach(lab.a, "b.lan")
	-- disks share the hotplug ports with them
	local img = os.tmpname()
	local f = io.open(img, "wb"); f:write(string.rep("\0", 1 << 20)); f:close()
	local d = lab.a:attach_disk({id = "d1", image = img})
	t:assert(d:guest_device():match("^/dev/vd"), d:guest_device())
	d:detach()
	os.remove(img)
	reach(lab.a, "b.mgmt")
end)

test("attach before boot cold-plugs the NIC", function(t)
	local lan = provium:bridge("cold")
	local c = provium:vm("c", "default")
	local lab = provium:lab_fixture("fixtures/pair")
	lan:attach({c, lab.a})
	c:boot()
	reach(c, "a.cold")
	reach(lab.a, "c.cold")
	-- the guest sees the NIC with provium's MAC and the bridge's address
	t:assert(c:run("ls /sys/class/net").stdout:find("eth0", 1, true))
end)

test("symmetric and directional partitions", function(t)
	local lab = provium:lab_fixture("fixtures/pair")
	local lan, a, b = lab.lan, lab.a, lab.b
	reach(a, "b.lan")
	lan:partition(a, b)
	t:assert(not ping(a, "b.lan"):ok(), "a reaches b across a partition")
	t:assert(lan:is_partitioned(b, a))
	lan:unpartition(a, b)
	reach(a, "b.lan")

	-- a -> b only. Both neighbour entries are fresh (each side just
	-- reached the other), so ARP, whose replies a -> b would lose, does
	-- not decide the outcome within the next seconds.
	reach(b, "a.lan")
	reach(a, "b.lan")
	lan:partition({from = a, to = b})
	t:assert(lan:is_partitioned(a, b))
	t:assert(not lan:is_partitioned(b, a), "directional: b -> a is not partitioned")
	-- b's echo requests reach a (a's NIC receives them) but a's replies
	-- never reach b: everything b receives comes from a
	local ra0, rb0 = a:nic("lan"):counters().rx_packets, b:nic("lan"):counters().rx_packets
	t:assert(not ping(b, "a.lan", "-c 3 -i 0.2"):ok(), "b got a reply across a -> b")
	local ra1, rb1 = a:nic("lan"):counters().rx_packets, b:nic("lan"):counters().rx_packets
	t:assert(ra1 - ra0 >= 3, ("a received %d frames from b, want >= 3"):format(ra1 - ra0))
	t:assert_eq(rb1 - rb0, 0, "frames from a reached b across a -> b")
	lan:unpartition({from = a, to = b})
	reach(a, "b.lan")
end)

test("partition_all / restore_all / isolate / unisolate", function(t)
	local lab = provium:lab_fixture("fixtures/pair")
	local lan, a, b = lab.lan, lab.a, lab.b
	reach(a, "b.lan")
	lan:partition_all()
	t:assert(lan:is_partitioned(a, b) and lan:is_partitioned(b, a))
	t:assert(not ping(a, "b.lan"):ok())
	lan:restore_all()
	t:assert(not lan:is_partitioned(a, b))
	reach(a, "b.lan")
	lan:isolate(a)
	t:assert(lan:is_isolated(a))
	t:assert(not ping(a, "b.lan"):ok(), "an isolated VM reached another")
	t:assert(not ping(b, "a.lan"):ok(), "another VM reached an isolated one")
	lan:unisolate(a)
	reach(a, "b.lan")
end)

test("latency: whole-bridge adds both ways, directional one way only", function(t)
	local lab = provium:lab_fixture("fixtures/pair")
	local lan, a, b = lab.lan, lab.a, lab.b
	reach(a, "b.lan")
	lan:add_latency(50)
	t:assert_eq(lan:latency_ms(), 50)
	local r = rtts(a, "b.lan", 3)
	t:assert(#r >= 1, "no reply with 50 ms latency")
	t:assert(min(r) >= 95, ("RTT %.1f ms with 50 ms each way"):format(min(r)))
	lan:reset()
	t:assert_eq(lan:latency_ms(), 0)
	lan:add_latency({from = a, to = b, ms = 200})
	r = rtts(a, "b.lan", 3)
	t:assert(#r >= 1 and min(r) >= 195, "directional 200 ms missing from the RTT")
	t:assert(min(r) < 395, ("RTT %.1f ms: the 200 ms applied both ways"):format(min(r)))
	lan:reset()
end)

test("drop_rate with a fixed seed loses the same packets twice", function(t)
	local function lost_pattern()
		local lab = provium:lab_fixture("fixtures/pair")
		reach(lab.a, "b.lan")
		lab.lan:drop_rate(40)
		local r = lab.a:run("ping -c 20 -i 0.2 -W 1 b.lan")
		local got = {}
		for seq in r.stdout:gmatch("seq=(%d+)") do got[#got + 1] = seq end
		lab.lan:reset()
		return table.concat(got, ",")
	end
	local p1 = lost_pattern()
	local p2 = lost_pattern()
	local n = select(2, p1:gsub("%d+", ""))
	t:assert(n > 0 and n < 20, ("40%% loss answered %d of 20"):format(n))
	t:assert_eq(p2, p1, "the loss pattern differs between two runs with one seed")
end)

test("bandwidth_limit(1e6) makes 1 MiB take at least 8 s", function(t)
	local lab = provium:lab_fixture("fixtures/pair")
	local lan, a, b = lab.lan, lab.a, lab.b
	reach(a, "b.lan")
	lan:bandwidth_limit(1000000)
	t:assert_eq(lan:bandwidth_bps(), 1000000)
	local srv = b:run_async("nc -l -p 9002 > /tmp/sink")
	wait_until(function() return b:run("netstat -lnt | grep -q :9002"):ok() end, {timeout = "10s"})
	-- timed until b has received everything (its nc ends at a's FIN)
	local t0 = _provium_now()
	a:run("dd if=/dev/zero bs=1024 count=1024 2>/dev/null | nc -w 2 b.lan 9002",
		{timeout = "60s"}):assert_ok()
	srv:wait("60s")
	local ms = (_provium_now() - t0) * 1000
	t:assert_eq(b:run("wc -c < /tmp/sink").stdout:match("%d+"), "1048576", "bytes lost")
	t:assert(ms and ms >= 8000, ("1 MiB at 1 Mbit/s took %s ms"):format(tostring(ms)))
	lan:reset()
end)

test("counters are the guest's view; disconnect drops the carrier", function(t)
	local lab = provium:lab_fixture("fixtures/pair")
	local lan, a = lab.lan, lab.a
	reach(a, "b.lan")
	local nic = a:nic("lan")
	local before = nic:counters()
	a:run("ping -c 5 -i 0.2 b.lan"):assert_ok()
	local after = nic:counters()
	t:assert(after.tx_packets - before.tx_packets >= 5, "tx_packets did not count the pings")
	t:assert(after.rx_packets - before.rx_packets >= 5, "rx_packets did not count the replies")
	t:assert(after.rx_bytes > before.rx_bytes and after.tx_bytes > before.tx_bytes)
	-- the same frames, counted by the switch and by the guest's kernel
	local ifn = ifname_of(a, lan:_mac_of("a"))
	local function guest()
		return tonumber(a:read_file(("/sys/class/net/%s/statistics/tx_packets"):format(ifn))),
			tonumber(a:read_file(("/sys/class/net/%s/statistics/rx_packets"):format(ifn)))
	end
	local gtx0, grx0 = guest()
	local c0 = nic:counters()
	a:run("ping -c 10 -i 0.1 b.lan"):assert_ok()
	local gtx1, grx1 = guest()
	local c1 = nic:counters()
	local dg, ds = gtx1 - gtx0, c1.tx_packets - c0.tx_packets
	t:assert(math.abs(ds - dg) <= 2, ("switch saw %d frames from a, a sent %d"):format(ds, dg))
	-- the switch also hands a multicast frames (IPv6 neighbour discovery)
	-- that QEMU's virtio-net filter keeps from the guest: >=, not ==
	dg, ds = grx1 - grx0, c1.rx_packets - c0.rx_packets
	t:assert(dg >= 10 and ds >= dg, ("switch gave a %d frames, a got %d"):format(ds, dg))
	t:assert_eq(c1.errors, 0)

	nic:disconnect()
	t:assert_eq(a:read_file(("/sys/class/net/%s/carrier"):format(ifn)), "0\n")
	t:assert(not ping(a, "b.lan"):ok(), "a pinged b with its link down")
	nic:reconnect()
	wait_until(function() return a:read_file(("/sys/class/net/%s/carrier"):format(ifn)) == "1\n" end,
		{timeout = "10s"})
	reach(a, "b.lan")
end)

test("capture: pcap of the bridge and of one NIC", function(t)
	local lab = provium:lab_fixture("fixtures/pair")
	local lan, a = lab.lan, lab.a
	reach(a, "b.lan")
	local cap = lan:capture()
	a:run("ping -c 3 -i 0.2 b.lan"):assert_ok()
	local pcap = table.concat(cap:drain("1s"))
	t:assert(#pcap > 24, "empty capture")
	t:assert_eq(pcap:sub(1, 4), "\xd4\xc3\xb2\xa1", "pcap magic")
	t:assert_eq(string.unpack("<I4", pcap, 21), 1, "linktype Ethernet")
	-- an ICMP echo in an IPv4 frame: ethertype 0800, protocol 1, type 8
	t:assert(pcap:find("\x08\x00\x45", 1, true), "no IPv4 frame")
	local e = select(2, pcall(a.snapshot, a))
	t:assert(tostring(e):find("live capture on bridge `lan`", 1, true), tostring(e))
	if os.execute("command -v tcpdump >/dev/null 2>&1") then
		local path = os.tmpname()
		local f = io.open(path, "wb"); f:write(pcap); f:close()
		local p = io.popen(("tcpdump -nn -r %s 2>&1"):format(path))
		local out = p:read("a"); p:close()
		os.remove(path)
		t:assert(out:find("ICMP echo request", 1, true), out)
	end
	cap:close()
	local ok, err = pcall(cap.read_until, cap, "x")
	t:assert(not ok and tostring(err):find("capture closed", 1, true), tostring(err))

	local nc = a:nic("lan"):capture()
	a:run("ping -c 1 b.lan"):assert_ok()
	local p2 = table.concat(nc:drain("1s"))
	t:assert(#p2 > 24 and p2:find("\x08\x00\x45", 1, true), "the NIC capture saw no IPv4")
	nc:close()
	a:snapshot()   -- fine again once every capture is closed
end)

test("enable_uplink: a guest fetches from a TCP server on the host's loopback", function(t)
	local lab = provium:lab_fixture("fixtures/pair")
	local dir = os.tmpname()
	os.remove(dir)
	os.execute("mkdir -p " .. dir)
	local f = io.open(dir .. "/hello.txt", "w"); f:write("from the host\n"); f:close()
	-- a one-shot HTTP server on 127.0.0.1, ephemeral port, printed first
	local srv = io.popen(("cd %s && exec timeout 60 python3 -c 'import http.server,sys\n" ..
		"s=http.server.HTTPServer((\"127.0.0.1\",0),http.server.SimpleHTTPRequestHandler)\n" ..
		"print(s.server_address[1+0],flush=True); s.handle_request()' 2>/dev/null"):format(dir))
	local port = srv:read("l")
	t:assert(port and tonumber(port), "the host server did not start")
	lab.lan:enable_uplink()
	local gw = lab.a:run("ip route"):assert_ok().stdout:match("default via ([%d%.]+)")
	t:assert(gw, "no default route after enable_uplink")
	-- (busybox 1.35's static wget crashes with -T: no timeout option here)
	local r = lab.a:run(("wget -q -O - http://%s:%s/hello.txt"):format(gw, port), {timeout = "30s"})
	r:assert_ok()
	t:assert_eq(r.stdout, "from the host\n")
	srv:close()
	lab.lan:disable_uplink()
	t:assert(not lab.a:run("ip route").stdout:find("default", 1, true), "default route kept")
	os.execute("rm -rf " .. dir)
end)

test("lab snapshot/restore keeps partitions and impairments", function(t)
	local lab = provium:lab_fixture("fixtures/pair")
	reach(lab.a, "b.lan")
	lab.lan:partition(lab.a, lab.b)
	lab.lan:add_latency(30)
	local snap = lab:snapshot()
	lab:restore(snap)
	t:assert(lab.lan:is_partitioned(lab.a, lab.b), "the partition did not survive")
	t:assert_eq(lab.lan:latency_ms(), 30)
	t:assert(not ping(lab.a, "b.lan"):ok(), "partition not in force after restore")
	lab.lan:reset()
	reach(lab.a, "b.lan")
end)

test("bad input names the bridge and the VM", function(t)
	local lab = provium:lab_fixture("fixtures/pair")
	local lan = lab.lan
	local function err(f, ...) return tostring(select(2, pcall(f, ...))) end
	t:assert_contains(err(lan.partition, lan, {from = lab.a, to = "ghost"}),
		"bridge `lan`: partition: vm `ghost` is not attached to this bridge; call bridge:attach first")
	t:assert_contains(err(lan.add_latency, lan, -1), "bridge `lan`: add_latency: latency must be >= 0 ms")
	t:assert_contains(err(lan.drop_rate, lan, 150), "bridge `lan`: drop_rate: drop rate must be between 0 and 100")
	t:assert_contains(err(lan.bandwidth_limit, lan, 0), "bridge `lan`: bandwidth_limit: bandwidth must be > 0")
	-- a dead VM (its guest powered off under it) gets no NIC
	local d = provium:vm_fixture("fixtures/base")
	pcall(d.run, d, "echo o > /proc/sysrq-trigger", {timeout = "5s"})
	wait_until(function() return d:state() == "dead" end, {timeout = "20s"})
	t:assert_contains(err(provium:bridge("late").attach, provium.late, d),
		"bridge `late`: attach: vm `fx` is dead")
end)

test("a lab fixture carries partitions, impairments and the seed", function(t)
	local lab = provium:lab_fixture("fixtures/impaired")
	local lan = lab.lan
	t:assert(lan:is_partitioned(lab.a, lab.b))
	t:assert(not lan:is_partitioned(lab.b, lab.a))
	t:assert_eq(lan:latency_ms(), 40)
	t:assert_eq(lan:_seed_value(), 7)
	t:assert(not ping(lab.a, "b.lan"):ok(), "the restored partition is not in force")
	lan:reset()
	reach(lab.a, "b.lan")
	local r = rtts(lab.a, "b.lan", 1)
	t:assert(#r == 1 and r[1] < 80 * 10, "reset kept latency")
end)

test("two labs with the same bridge and VM names never share frames", function(t)
	local one = provium:lab_fixture("fixtures/pair")
	local two = provium:lab_fixture("fixtures/impaired")
	two.lan:reset()
	reach(one.a, "b.lan")
	reach(two.a, "b.lan")
	-- same names, same addresses, same MACs: separate switches
	t:assert_eq(one.lan:_addr_of("b"), two.lan:_addr_of("b"))
	local cap = one.lan:capture()
	two.a:run("ping -c 3 -i 0.2 b.lan"):assert_ok()
	local pcap = table.concat(cap:drain("1s"))
	cap:close()
	t:assert(not pcap:find("\x08\x00\x45", 1, true), "lab two's pings crossed into lab one's bridge")
	one.lan:partition(one.a, one.b)
	reach(two.a, "b.lan")
end)

test("nic:capture before boot says so", function(t)
	local lan = provium:bridge("pre")
	local v = provium:vm("pv", "default")
	lan:attach(v)
	local ok, e = pcall(function() return v:nic("pre"):capture() end)
	t:assert(not ok)
	t:assert_contains(tostring(e), "nic:capture: vm `pv` has no TAP on bridge `pre` (not booted?). " ..
		"Call lab:boot() / vm:boot() first.")
end)
