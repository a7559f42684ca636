provium.timeout = "300ms"
test("busy loop", {timeout = 0.3}, function(t) while true do end end)
test("swallowing busy loop", function(t)
	while true do pcall(function() while true do end end) end
end)
test("sleeps past the deadline", {timeout = "200ms"}, function(t) _provium_sleep(30) end)
test("swallows and returns", {timeout = 0.2}, function(t)
	pcall(function() while true do end end)
end)
test("after the timeouts", function(t) t:assert(true) end)
