-- bridge_unsupported.test.lua — bridges are graph objects only (host
-- networking waits for its own issue): every documented Bridge method
-- that needs the host network exists and raises a clear error, instead of
-- "attempt to call a nil value".
test("every documented networking method of a bridge says it is not there yet", function(t)
	local b = provium:bridge("lan")
	for _, op in ipairs({"partition", "unpartition", "partition_all", "restore_all",
			"is_partitioned", "add_latency", "drop_rate", "bandwidth_limit",
			"add_directional_latency", "directional_drop_rate", "reset", "latency_ms",
			"drop_rate_pct", "bandwidth_bps", "isolate", "unisolate", "is_isolated",
			"route", "routes", "enable_uplink", "disable_uplink", "nic", "capture"}) do
		t:assert(type(b[op]) == "function", "bridge:" .. op .. " exists")
		local ok, err = pcall(b[op], b)
		t:assert(not ok, op .. " must raise")
		t:assert_contains(tostring(err), ("bridge `lan`: %s is not available yet"):format(op))
	end
end)

test("the graph part works: attach, members, detach", function(t)
	local b = provium:bridge("net")
	local a = provium:vm("a", "default")
	b:attach({a, "b"})
	t:assert_eq(table.concat(b:members(), ","), "a,b")
	b:detach(a)
	t:assert_eq(table.concat(b:members(), ","), "b")
end)
