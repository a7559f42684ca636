-- Networking on a cached two-VM lab: ping by name, a partition and its
-- heal, latency that a round trip feels, a packet capture.
test("the lab's guests reach each other by name", function(t)
    local lab = provium:lab_fixture("fixtures/cluster")
    lab.a:run("ping -c 1 -W 2 b.lan"):assert_ok()
    lab.b:run("ping -c 1 -W 2 a.lan"):assert_ok()
end)

test("a partition cuts them apart and heals", function(t)
    local lab = provium:lab_fixture("fixtures/cluster")
    lab.lan:partition(lab.a, lab.b)
    t:assert(not lab.a:run("ping -c 1 -W 1 b.lan"):ok())
    lab.lan:unpartition(lab.a, lab.b)
    wait_until(function() return lab.a:run("ping -c 1 -W 1 b.lan"):ok() end,
        {timeout = "10s", desc = "post-heal connectivity"})
end)

test("100 ms of latency each way shows in the round trip", function(t)
    local lab = provium:lab_fixture("fixtures/cluster")
    lab.lan:add_latency(100)
    local out = lab.a:run("ping -c 1 -W 3 b.lan"):assert_ok().stdout
    t:assert(tonumber(out:match("time=([%d%.]+) ms")) >= 195, out)
end)

test("a capture holds the pings as pcap", function(t)
    local lab = provium:lab_fixture("fixtures/cluster")
    local cap = lab.lan:capture()
    lab.a:run("ping -c 2 b.lan"):assert_ok()
    local pcap = table.concat(cap:drain("1s"))
    cap:close()
    t:assert_eq(pcap:sub(1, 4), "\xd4\xc3\xb2\xa1")
end)
