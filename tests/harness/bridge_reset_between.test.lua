-- bridge_reset_between.test.lua — reset_between_tests puts a bridge's
-- graph back to the baseline taken after the file's chunk: members,
-- partitions, impairments, isolation.
provium.reset_between_tests = true
local lan = provium:bridge("lan")
lan:attach({"a", "b"})
lan:add_latency(10)

test("change everything", function(t)
	lan:partition("a", "b")
	lan:isolate("a")
	lan:add_latency(99)
	lan:drop_rate(5)
	lan:attach("c")
	t:assert(lan:is_partitioned("a", "b"))
end)

test("the baseline is back", function(t)
	t:assert(not lan:is_partitioned("a", "b"))
	t:assert(not lan:is_isolated("a"))
	t:assert_eq(lan:latency_ms(), 10)
	t:assert_eq(lan:drop_rate_pct(), 0)
	t:assert_eq(table.concat(lan:members(), ","), "a,b")
end)
