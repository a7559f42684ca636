-- framework.lua — the test framework every *.test.lua file runs under.
--
-- Owns: test() registration, todo(), wait_until(), the per-test `t` context
-- (assertions, skip, fail, log, the sticky failure flag), per-test
-- selection (path::NAME, -k/--test, meta.skip, slow, --tag / --no-tag /
-- --tag-meta / --no-tag-meta) and the run loop that turns each test into events.
--
-- Calling sequence (runner.c): lab.lua runs first and defines the lab-side
-- hooks (_provium_new_root, _provium_open_test_scope, ...; see
-- docs/internals.md); this chunk then defines the user-facing globals and
-- RETURNS a table {run_file = fn}. The runner calls run_file(chunk, load_err)
-- once: it creates the root lab (global `provium`), runs the file's chunk,
-- then every registered test in declaration order:
--
--   filtered / meta.skip / todo  -> test_skipped only
--   otherwise                    -> test_started, open scope, body under
--                                   the per-test deadline, close scope
--                                   (under the same deadline),
--                                   [_test_log], one of test_passed /
--                                   test_failed / test_skipped
--
-- and finally closes the file scope. Errors in the chunk become one
-- _chunk_error frame. A failing assertion raises its documented message
-- shape with the caller's position in front (`x.test.lua:12: 1 ~= 2`, as
-- error(msg, 2) would), like errors raised by user code.

local emit = _provium_emit
local mono_ns = _provium_monotonic_ns
local mono = _provium_monotonic
local sleep = _provium_sleep
local parse_duration = _provium_parse_duration
local call_with_deadline = _provium_call_with_deadline
local call_teardown = _provium_call_teardown
local getinfo = debug.getinfo
local FILE = _provium_file or "?"

---------------------------------------------------------------------------
-- helpers

-- Human form of a value (compare.lua): strings quoted with control
-- characters escaped, tables as compact constructors.
local show = _provium_repr
local quote = _provium_quote
local show_pair = _provium_repr_pair
local deep_equal = _provium_deep_equal
local explain_diff = _provium_explain_diff

-- "2s", "0.5s"
local function secs(s)
	if s == math.floor(s) and s < 1e15 then return string.format("%ds", math.floor(s)) end
	return string.format("%gs", s)
end

local function errstr(e)
	if type(e) == "string" then return e end
	if e == nil then return "error with no message (nil)" end
	local ok, s = pcall(tostring, e)
	return ok and s or "error object of type " .. type(e)
end

-- A Lua "flag": true or a non-zero number.
local function flag(v)
	return v == true or (type(v) == "number" and v ~= 0)
end

-- Deep copy of meta safe for msgpack: functions/userdata/threads become
-- their tostring, cycles become "<cycle>", non-string non-integer keys go.
local function sanitize(v, seen)
	local ty = type(v)
	if ty == "table" then
		if seen[v] then return "<cycle>" end
		seen[v] = true
		local out = {}
		for k, x in pairs(v) do
			if type(k) == "string" or math.type(k) == "integer" then
				out[k] = sanitize(x, seen)
			end
		end
		seen[v] = nil
		return out
	elseif ty == "function" or ty == "userdata" or ty == "thread" then
		return tostring(v)
	end
	return v
end

---------------------------------------------------------------------------
-- registration

local tests = {}       -- declaration order: {name, meta, event_meta, fn}
local by_name = {}
local todo_reason = nil
local running = false  -- a test body is executing

function test(name, meta, fn)
	if fn == nil and type(meta) == "function" then meta, fn = nil, meta end
	if type(name) ~= "string" then
		error("test: name must be a string, got " .. type(name), 2)
	end
	if name == "" then error("test: name must not be empty", 2) end
	if meta ~= nil and type(meta) ~= "table" then
		error(string.format("test `%s`: meta must be a table, got %s", name, type(meta)), 2)
	end
	if type(fn) ~= "function" then
		error(string.format("test `%s`: body must be a function, got %s", name, type(fn)), 2)
	end
	if running then
		error(string.format("test: cannot register `%s` from inside a running test", name), 2)
	end
	if by_name[name] then
		error(string.format("test: duplicate name `%s` in this file", name), 2)
	end
	meta = meta or {}
	local tc = {name = name, meta = meta, event_meta = sanitize(meta, {}), fn = fn}
	by_name[name] = tc
	tests[#tests + 1] = tc
end

-- `co`: the reference's examples drive barriers with co.wrap(...)()
-- without defining it; it is the coroutine library.
co = coroutine

function todo(reason)
	if running then error("todo: must be called at file scope, not inside a test", 2) end
	if reason ~= nil and type(reason) ~= "string" then
		error("todo: reason must be a string, got " .. type(reason), 2)
	end
	todo_reason = reason or "todo"
end

---------------------------------------------------------------------------
-- wait_until

local function duration_opt(fname, opts, key, default)
	local v = opts[key]
	if v == nil then return default end
	local s, err = parse_duration(v)
	if not s then
		if type(v) == "string" then
			error(string.format("wait_until: bad %s string %s: %s", key, show(v), err), 3)
		end
		error(string.format("wait_until: bad %s %s: %s", key, show(v), err), 3)
	end
	return s
end

function wait_until(pred, opts)
	if type(pred) ~= "function" then
		error("wait_until: predicate must be a function, got " .. type(pred), 2)
	end
	if opts ~= nil and type(opts) ~= "table" then
		error("wait_until: opts must be a table, got " .. type(opts), 2)
	end
	opts = opts or {}
	local timeout = duration_opt("wait_until", opts, "timeout", 10)
	local interval = duration_opt("wait_until", opts, "interval", 0.1)
	local desc = opts.desc ~= nil and tostring(opts.desc) or "condition"
	local deadline = mono() + timeout
	while true do
		local v = pred()
		if v then return v end
		local now = mono()
		if now >= deadline then
			error(string.format("wait_until: %s not met within %s", desc, secs(timeout)), 2)
		end
		sleep(math.min(interval, deadline - now))
	end
end

---------------------------------------------------------------------------
-- the t context

local SKIP = {}  -- metatable of the t:skip sentinel
SKIP.__tostring = function(s) return "skipped: " .. s.reason end

local T = {}
T.__index = T

-- Record a failure on t (sticky) and raise msg at the position of whoever
-- called the assertion method (error level 3: raise <- T:method <- caller),
-- as the reference implementation's error(msg, 2) does. The sticky copy,
-- reported when a pcall swallowed the raise, is the bare message.
local function raise(t, msg)
	t._failed = true
	if t._fail_msg == nil then t._fail_msg = msg end
	error(msg, 3)
end

local function label(msg)
	if msg == nil then return "assertion failed" end
	return tostring(msg)
end

-- "<msg>: <detail>", or just the detail when no msg was given.
local function prefixed(msg, detail)
	if msg == nil then return detail end
	return tostring(msg) .. ": " .. detail
end

function T:assert(cond, msg)
	if not cond then raise(self, label(msg)) end
	return cond
end

-- "<a> ~= <b>" (or ==) with both values shown by compare.lua, then,
-- indented, what differs: the key paths of two tables, the first
-- differing line of multi-line strings.
local function compared(a, op, b)
	local lines = op == "~=" and explain_diff(a, b)
	-- with the first differing line shown below, long strings are cut short
	local ra, rb = show_pair(a, b, lines and 200 or nil)
	local s = ra .. " " .. op .. " " .. rb
	if lines then s = s .. "\n  " .. table.concat(lines, "\n  ") end
	return s
end

-- Tables are equal by value (deep_equal), everything else by ==.
function T:assert_eq(a, b, msg)
	if not deep_equal(a, b) then raise(self, prefixed(msg, compared(a, "~=", b))) end
end

function T:assert_neq(a, b, msg)
	if deep_equal(a, b) then raise(self, prefixed(msg, compared(a, "==", b))) end
end

-- Non-string arguments raise at once, with the reference's "slice 2
-- limit" pointer (only string containment is supported). A miss reads
-- "<msg or `assert_contains failed`>: <needle> not found in: <haystack>",
-- as in the reference implementation, both quoted; a multi-line haystack
-- follows as an indented block, one quoted line per line.
local CONTAINS_LIMIT = " (slice 2 limit: both arguments must be strings; use tostring)"
local HAYSTACK_MAX = 4096

local function haystack_block(h)
	if not h:find("\n", 1, true) then return " " .. quote(h, HAYSTACK_MAX) end
	local more = #h > HAYSTACK_MAX and #h - HAYSTACK_MAX or 0
	if more > 0 then h = h:sub(1, HAYSTACK_MAX) end
	local out = {}
	for l in h:gmatch("[^\n]*\n?") do
		if l ~= "" then out[#out + 1] = "    " .. quote(l, HAYSTACK_MAX) end
	end
	if more > 0 then out[#out + 1] = string.format("    ...(%d more bytes)", more) end
	return "\n" .. table.concat(out, "\n")
end

function T:assert_contains(haystack, needle, msg)
	if type(haystack) ~= "string" then
		raise(self, "assert_contains: haystack (argument 1) must be a string, got " ..
			type(haystack) .. CONTAINS_LIMIT)
	end
	if type(needle) ~= "string" then
		raise(self, "assert_contains: needle (argument 2) must be a string, got " ..
			type(needle) .. CONTAINS_LIMIT)
	end
	if not string.find(haystack, needle, 1, true) then
		raise(self, prefixed(msg or "assert_contains failed",
			show(needle) .. " not found in:" .. haystack_block(haystack)))
	end
end

function T:assert_raises(fn, msg)
	if type(fn) ~= "function" then
		raise(self, "assert_raises: argument 1 must be a function, got " .. type(fn))
	end
	local failed, fail_msg = self._failed, self._fail_msg
	local ok, err = pcall(fn)
	if ok then raise(self, prefixed(msg or "assert_raises", "expected to raise")) end
	self._failed, self._fail_msg = failed, fail_msg
	return err
end

function T:fail(msg)
	raise(self, msg == nil and "explicit failure (t:fail)" or tostring(msg))
end

function T:skip(reason)
	reason = reason == nil and "skipped (t:skip)" or tostring(reason)
	if self._skip_reason == nil then self._skip_reason = reason end
	error(setmetatable({reason = reason}, SKIP), 0)
end

function T:log(msg)
	self._log[#self._log + 1] = tostring(msg)
end

local function new_t(tc)
	return setmetatable({name = tc.name, meta = tc.meta, _failed = false, _log = {}}, T)
end

---------------------------------------------------------------------------
-- selection

local filter = {names = {}, only = {}, include_slow = false, tags = {}, no_tags = {}, tag_meta = {},
	no_tag_meta = {}}

local function tag_list(meta)
	local tg = meta.tags
	if type(tg) == "string" then return {tg} end
	local out = {}
	if type(tg) == "table" then
		for _, x in ipairs(tg) do
			if type(x) == "string" then out[#out + 1] = x end
		end
	end
	return out
end

local function has(list, x)
	for _, y in ipairs(list) do
		if y == x then return true end
	end
	return false
end

-- meta[KEY] "contains" VALUE: equal string/boolean scalar, or an element
-- of an array of such. Integers and maps never match.
local function meta_contains(v, want)
	local ty = type(v)
	if ty == "string" or ty == "boolean" then return tostring(v) == want end
	if ty == "table" then
		for _, x in ipairs(v) do
			if (type(x) == "string" or type(x) == "boolean") and tostring(x) == want then
				return true
			end
		end
	end
	return false
end

local function sorted_keys(m)
	local ks = {}
	for k in pairs(m) do ks[#ks + 1] = k end
	table.sort(ks)
	return ks
end

-- Selection by name comes first: path::NAME (exact) and -k/--test
-- (substring, OR'd) pick tests the way paths pick files, so a test they
-- leave out is "filtered" even when it would skip itself.
local function name_selection(name)
	if #filter.only > 0 and not has(filter.only, name) then
		return "filtered: not named by path::NAME"
	end
	if #filter.names > 0 then
		for _, part in ipairs(filter.names) do
			if name:find(part, 1, true) then return nil end
		end
		return "filtered: name did not match -k/--test"
	end
	return nil
end

-- The skip reason for a test that must not run, or nil. Order is the
-- documented filter precedence.
local function selection(meta, name)
	local byname = name_selection(name)
	if byname then return byname end
	if todo_reason then return todo_reason end
	local sk = meta.skip
	if type(sk) == "string" then return "skipped: " .. sk end
	if flag(sk) then return "skipped (meta.skip)" end
	if flag(meta.slow) and not filter.include_slow then
		return "filtered: slow tests skipped (pass --include-slow)"
	end
	local tags = tag_list(meta)
	for _, no in ipairs(filter.no_tags) do
		if has(tags, no) then return "filtered: tag `" .. no .. "` excluded by --no-tag" end
	end
	if #filter.tags > 0 then
		local hit = false
		for _, want in ipairs(filter.tags) do
			if has(tags, want) then hit = true break end
		end
		if not hit then return "filtered: did not match --tag" end
	end
	for _, k in ipairs(sorted_keys(filter.no_tag_meta)) do
		for _, v in ipairs(filter.no_tag_meta[k]) do
			if meta_contains(meta[k], v) then
				return string.format("filtered: meta matched --no-tag-meta %s=%s", k, v)
			end
		end
	end
	for _, k in ipairs(sorted_keys(filter.tag_meta)) do
		local hit = false
		for _, v in ipairs(filter.tag_meta[k]) do
			if meta_contains(meta[k], v) then hit = true break end
		end
		if not hit then
			return string.format("filtered: did not match --tag-meta %s=%s", k,
				table.concat(filter.tag_meta[k], ","))
		end
	end
	return nil
end

---------------------------------------------------------------------------
-- the run loop

local root

local function root_field(k)
	if type(root) == "table" then return rawget(root, k) end
	local ok, v = pcall(function() return root[k] end)
	return ok and v or nil
end

-- Seconds of the test's deadline (nil = none), or nil, message.
local function test_timeout(meta)
	local v, src = meta.timeout, "meta.timeout"
	if v == nil then v, src = root_field("timeout"), "provium.timeout" end
	if v == nil then return nil end
	local s, err = parse_duration(v)
	if not s then return nil, string.format("bad %s %s: %s", src, show(v), err) end
	if s == 0 then return nil end
	return s
end

local function excerpt()
	local ok, s = pcall(_provium_console_excerpt)
	if ok and type(s) == "string" then return s end
	return ""
end

local function run_test(tc)
	local base = {path = FILE, name = tc.name, meta = tc.event_meta}
	local function payload(extra)
		local p = {}
		for k, v in pairs(base) do p[k] = v end
		for k, v in pairs(extra) do p[k] = v end
		return p
	end

	local why = selection(tc.meta, tc.name)
	if why then
		emit("test_skipped", payload({reason = why}))
		return
	end

	local t = new_t(tc)
	local start = mono_ns()
	emit("test_started", base)

	local status, message
	local timeout, terr = test_timeout(tc.meta)
	local until_ns  -- the test's deadline, which its scope's teardown shares
	local opened, scope = pcall(_provium_open_test_scope, root)
	if not opened then
		status, message = "failed", "opening the test scope: " .. errstr(scope)
		scope = nil
	elseif terr then
		status, message = "failed", terr
	else
		provium = scope
		running = true
		if timeout then until_ns = mono_ns() + math.floor(timeout * 1e9) end
		local ok, err, timed_out, tmsg = call_with_deadline(timeout, tc.fn, t)
		running = false
		provium = root
		if timed_out then
			pcall(_provium_teardown_all)
			-- the body used the deadline up: the scope's teardown gets
			-- one more of the same length
			until_ns = mono_ns() + math.floor(timeout * 1e9)
			status, message = "failed", tmsg
		elseif not ok and getmetatable(err) == SKIP then
			if t._failed then
				status, message = "failed", t._fail_msg
			else
				status, message = "skipped", err.reason
			end
		elseif not ok then
			status, message = "failed", errstr(err)
		elseif t._failed then
			status, message = "failed", t._fail_msg
		elseif t._skip_reason then
			status, message = "skipped", t._skip_reason
		else
			status = "passed"
		end
	end
	if scope ~= nil then
		-- the teardown runs under the test's deadline: waits it cuts give
		-- up and free hard; an overrun fails a test that had passed
		local ok, errs, overran, omsg = call_teardown(timeout, until_ns,
			_provium_close_test_scope, scope)
		if not ok then errs = {errstr(errs)} end
		if type(errs) == "table" then
			for _, e in ipairs(errs) do t._log[#t._log + 1] = "auto-close: " .. errstr(e) end
		end
		if overran then
			if status == "failed" then
				t._log[#t._log + 1] = omsg
			else
				status, message = "failed", omsg
			end
		end
	end
	if root_field("reset_between_tests") and _provium_baseline_restore then
		local ok, e = pcall(_provium_baseline_restore, root)
		if not ok and status ~= "failed" then
			status, message = "failed", "reset_between_tests: restoring the baseline: " .. errstr(e)
		end
	end
	local duration = mono_ns() - start
	if status == "failed" and _provium_net_failure_note then
		local ok, note = pcall(_provium_net_failure_note)
		if ok and note then message = tostring(message) .. "\n" .. note end
	end

	if #t._log > 0 then emit("_test_log", {name = tc.name, log = t._log}) end
	if status == "passed" then
		emit("test_passed", payload({duration_ns = duration}))
	elseif status == "skipped" then
		emit("test_skipped", payload({reason = message}))
	else
		emit("test_failed", payload({duration_ns = duration, reason = message,
			console_excerpt = excerpt()}))
	end
end

local function close_file()
	pcall(_provium_close_file_scope, root)
end

-- run_file(chunk, load_err): the whole life of one test file.
local function run_file(chunk, load_err)
	if type(_provium_filter) == "table" then
		for k, v in pairs(_provium_filter) do filter[k] = v end
	end
	root = _provium_new_root()
	provium = root
	if not chunk then
		emit("_chunk_error", {message = errstr(load_err)})
		close_file()
		return
	end
	local ok, err = pcall(chunk)
	provium = root
	if ok and root_field("reset_between_tests") then
		ok, err = pcall(_provium_check_no_streams, root)
		if ok and _provium_baseline_take then ok, err = pcall(_provium_baseline_take, root) end
	end
	if not ok then
		emit("_chunk_error", {message = errstr(err)})
		close_file()
		return
	end
	-- path::NAME naming a test the file does not define: a usage error
	-- of this file, said before anything runs
	for _, want in ipairs(filter.only) do
		if not by_name[want] then
			local have = {}
			for _, tc in ipairs(tests) do have[#have + 1] = show(tc.name) end
			emit("_chunk_error", {message = string.format(
				"no test named %s in %s (path::NAME takes an exact name; defined: %s)",
				show(want), FILE, #have > 0 and table.concat(have, ", ") or "none")})
			close_file()
			return
		end
	end
	for _, tc in ipairs(tests) do run_test(tc) end
	close_file()
end

return {run_file = run_file}
