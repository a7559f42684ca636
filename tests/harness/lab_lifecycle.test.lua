-- Lab batch lifecycle, claims, barriers and the auto-close walker on
-- --vmm local.

local PROFILE = "default"  -- the only profile without a provium.toml

provium:claim({memory = "1G", cpus = 2})

local function errmsg(fn, ...)
	local ok, err = pcall(fn, ...)
	assert(not ok, "expected an error")
	return tostring(err)
end

local file_vm = provium:vm("filevm", PROFILE)
local leaked_file   -- opened in one test, checked in the next

test("a second claim errors", function(t)
	local e = errmsg(provium.claim, provium, {cpus = 1})
	t:assert(e:find("claim already taken", 1, true), e)
end)

test("batch boot returns self and boots direct vm children only", function(t)
	local sub = provium:lab("batch")
	local a = sub:vm("a", PROFILE)
	local b = sub:vm("b", PROFILE)
	local inner = sub:lab("inner")
	local c = inner:vm("c", PROFILE)
	t:assert(rawequal(sub:boot(), sub))
	t:assert_eq(a:state(), "booted")
	t:assert_eq(b:state(), "booted")
	t:assert_eq(c:state(), "created", "batch ops do not recurse")
	sub:pause()
	t:assert_eq(a:state(), "paused")
	local e = errmsg(sub.pause, sub)
	t:assert(e:find("vm is Paused", 1, true), e)
	sub:resume()
	t:assert_eq(b:state(), "booted")
	sub:shutdown()
	t:assert_eq(a:state(), "shutdown")
	t:assert_eq(b:state(), "shutdown")
end)

test("test-scope vms are closed at test end", function(t)
	local v = provium:vm("scoped", PROFILE):boot()
	leaked_file = v:open_file("/tmp/f", {write = true, create = true})
	_G.__scoped_vm = v
end)

test("... so the previous test's vm and file are closed now", function(t)
	t:assert_eq(_G.__scoped_vm:state(), "shutdown")
	local e = errmsg(leaked_file.write, leaked_file, "x")
	t:assert(e:find("file is closed", 1, true), e)
	t:assert_eq(leaked_file:fd(), 0)
	t:assert_eq(file_vm:state(), "created", "file-scope vm untouched")
end)

test("close methods are idempotent", function(t)
	local v = provium:vm("idem", PROFILE):boot()
	local f = v:open_file("/tmp/g", {write = true, create = true})
	f:close()
	f:close()
	v:close()
	v:close()
	t:assert_eq(v:state(), "shutdown")
end)

test("walker closes files before vms and collects errors", function(t)
	local scope = _provium_open_test_scope(provium)
	local saved = provium
	provium = scope
	local v = scope:vm("w", PROFILE):boot()
	local f = v:open_file("/tmp/w", {write = true, create = true})
	provium = saved
	t:assert_eq(v:open_file_count(), 1)
	local errs = _provium_close_test_scope(scope)
	t:assert_eq(#errs, 0)
	t:assert_eq(v:state(), "shutdown")
	t:assert_eq(f:fd(), 0)
	t:assert_eq(v:open_file_count(), 0)
end)

test("walker order: streams, processes, files, workers, vms; then registration order", function(t)
	local scope = _provium_open_test_scope(provium)
	local saved, closed = provium, {}
	local function fake(name, fail)
		return {close = function()
			closed[#closed + 1] = name
			if fail then error(name .. " broke") end
		end}
	end
	provium = scope
	_provium_register_resource(fake("vm1"), "vm")
	_provium_register_resource(fake("file1", true), "file")
	_provium_register_resource(fake("stream1"), "stream")
	_provium_register_resource(fake("worker1"), "worker")
	_provium_register_resource(fake("proc1"), "process")
	_provium_register_resource(fake("file2"), "file")
	_provium_register_resource(fake("stream2"), "stream")
	provium = saved
	local errs = _provium_close_test_scope(scope)
	t:assert_eq(table.concat(closed, ","),
		"stream1,stream2,proc1,file1,file2,worker1,vm1")
	t:assert_eq(#errs, 1)
	t:assert(tostring(errs[1]):find("file1 broke", 1, true), tostring(errs[1]))
	t:assert_eq(#_provium_close_test_scope(scope), 0, "a second walk has nothing left")
end)

test("barrier: coroutine callers wait for the count-th arrival", function(t)
	local order = {}
	local co1 = coroutine.wrap(function()
		order[#order + 1] = "w1 arrive"
		provium:barrier("ready", 3)
		order[#order + 1] = "w1 go"
	end)
	local co2 = coroutine.wrap(function()
		order[#order + 1] = "w2 arrive"
		provium:barrier("ready", 3)
		order[#order + 1] = "w2 go"
	end)
	co1()
	co2()
	t:assert_eq(table.concat(order, ","), "w1 arrive,w2 arrive")
	provium:barrier("ready", 3)   -- third arrival: releases both
	t:assert_eq(table.concat(order, ","), "w1 arrive,w2 arrive,w1 go,w2 go")
	provium:barrier("once", 1)    -- count 1 never waits
end)

test("barrier: a caller that cannot yield raises on timeout", function(t)
	t:assert_contains(t:assert_raises(function() provium:barrier("lonely", 2, 0.05) end),
		"the caller is not inside a coroutine")
	t:assert_eq(provium:barrier("solo", 1), true)
end)

test("barrier validates its arguments", function(t)
	t:assert(errmsg(provium.barrier, provium, "x", 0):find("count", 1, true))
	t:assert(errmsg(provium.barrier, provium, "x", 2, "soon"):find("timeout", 1, true))
end)

test("timeout and reset_between_tests are plain fields", function(t)
	t:assert_eq(rawget(_G.__root, "timeout"), "30s")
	t:assert_eq(rawget(_G.__root, "reset_between_tests"), false)
end)

provium.timeout = "30s"
provium.reset_between_tests = false
_G.__root = provium
