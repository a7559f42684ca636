#!/usr/bin/env bash
# bridge:route is graph state only: the first call per bridge prints one
# warning on stderr naming the bridge, later calls stay quiet, routes()
# lists what was recorded. And a failing test whose bridge drew random
# numbers (drop_rate) names the bridge's seed in its message.
. "$(dirname "$0")/cli/lib.sh"
W=$T/w
mkdir -p "$W/tests"
cat >"$W/tests/route.test.lua" <<'LUA'
test("route", function(t)
	local a, b, c = provium:bridge("a"), provium:bridge("b"), provium:bridge("c")
	a:route(b)
	a:route({b, c})
	a:route("d")
	c:route(a)
	t:assert_eq(table.concat(a:routes(), ","), "b,c,d")
end)
LUA
cat >"$W/tests/seed.test.lua" <<'LUA'
test("seeded", function(t)
	local lan = provium:bridge("lan", {seed = 99})
	lan:attach({"x", "y"})
	lan:drop_rate(5)
	t:assert(false, "boom")
end)
LUA
cd "$W" || exit 1
run "$P" --vmm local --no-preflight tests/route.test.lua
expect_rc 0 "route run"
n=$(grep -c "graph-state only" <<<"$err")
[ "$n" -eq 2 ] || fail "want one warning per routed bridge (2), got $n: $out"
expect_in "$err" 'bridge:route on `a` is graph-state only' "names the bridge"
expect_in "$err" 'bridge:route on `c` is graph-state only' "second bridge warns too"
ok "route warns once per bridge"

run "$P" --vmm local --no-preflight tests/seed.test.lua
expect_rc 1 "seed run"
expect_in "$out" 'network randomness: bridge `lan` seed 99' "failure names the seed"
ok "seed in failure output"
