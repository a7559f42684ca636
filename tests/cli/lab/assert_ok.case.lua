-- RunResult:assert_ok fails the test with status, stdout and stderr.
test("assert_ok", function(t)
	local vm = provium:vm("a", "default"):boot()
	vm:run("echo to-stdout; echo to-stderr >&2; exit 4"):assert_ok()
end)

test("wrong state", function(t)
	provium:vm("b", "default"):run("true")
end)
