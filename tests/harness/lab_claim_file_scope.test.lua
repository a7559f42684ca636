-- lab_claim_file_scope.test.lua — a file-level claim also blocks claims from test
-- scopes (one claim per file at a time).
provium:claim({memory = "512M", cpus = 1})

test("a test-scope claim after the file's claim is taken", function(t)
	local err = t:assert_raises(function() provium:claim({cpus = 1}) end)
	t:assert_contains(tostring(err), "claim already taken")
end)
