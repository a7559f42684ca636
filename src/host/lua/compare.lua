-- compare.lua — how failing assertions show and compare values.
--
-- Owns: the one-line rendering of a value (strings quoted with control
-- characters escaped, tables as compact constructors, cycles as <cycle>),
-- deep equality of tables (by value, cycle safe) and the compact
-- explanation of a difference (the differing key paths of two tables
-- with both values; the first differing line of two multi-line strings).
--
-- Calling sequence (runner.c): this chunk runs before framework.lua and
-- defines the globals _provium_repr, _provium_deep_equal and
-- _provium_explain_diff, which framework.lua captures as locals. Nothing
-- here raises on any input: a __tostring that raises, a __pairs, a
-- __index or an __eq that lies never reach the rendering (raw access
-- only; __eq is honoured by ==, and a table whose metatable has __eq is
-- compared by it alone).
--
-- Equality: a == b, or two tables with the same raw keys whose values
-- are deep-equal. Keys are matched by rawget, so table keys match by
-- identity. Two tables reached again as the same pair are taken as equal
-- (the cycle is the same on both sides).

local STR_MAX = 1024   -- bytes of a string shown inline
local LINE_MAX = 160   -- bytes of a line shown by the string diff
local DIFF_MAX = 10    -- differing paths listed for two tables
local DIFF_COUNT_MAX = 1000  -- differing paths counted at most
local TABLE_BUDGET = 240  -- characters of a table shown inline

local function escape(s)
	return (s:gsub('[%c"\\\127]', function(c)
		if c == "\n" then return "\\n" end
		if c == "\t" then return "\\t" end
		if c == "\r" then return "\\r" end
		if c == '"' or c == "\\" then return "\\" .. c end
		return string.format("\\%03d", c:byte())
	end))
end

-- "quoted", cut after max bytes with the count of what was left out.
local function quote(s, max)
	max = max or STR_MAX
	if #s > max then
		return '"' .. escape(s:sub(1, max)) .. string.format('"...(%d more bytes)', #s - max)
	end
	return '"' .. escape(s) .. '"'
end

local function is_ident(k)
	return type(k) == "string" and k:match("^[%a_][%w_]*$") ~= nil
end

-- The display order of keys that are not array indices: numbers, then
-- strings, then the rest (by tostring).
local RANK = {number = 1, string = 2}
local function key_before(x, y)
	local rx, ry = RANK[type(x)] or 3, RANK[type(y)] or 3
	if rx ~= ry then return rx < ry end
	if rx <= 2 then return x < y end
	return tostring(x) < tostring(y)
end

-- Keys of t in display order: n (1..n are the array part), then the
-- other keys sorted by key_before.
local function keys_of(t)
	local n = 0
	while rawget(t, n + 1) ~= nil do n = n + 1 end
	local rest = {}
	for k in next, t do
		if not (math.type(k) == "integer" and k >= 1 and k <= n) then rest[#rest + 1] = k end
	end
	table.sort(rest, key_before)
	return n, rest
end

local repr

-- A table as a compact constructor, within budget characters.
local function table_repr(t, seen, budget)
	if seen[t] then return "<cycle>" end
	seen[t] = true
	local parts, used = {}, 2
	local n, rest = keys_of(t)
	local function add(s)
		if used + #s > budget then return false end
		parts[#parts + 1] = s
		used = used + #s + 2
		return true
	end
	local full = true
	for i = 1, n do
		if not add(repr(rawget(t, i), seen, budget - used)) then full = false break end
	end
	if full then
		for _, k in ipairs(rest) do
			local ks = is_ident(k) and k or "[" .. repr(k, seen, 40) .. "]"
			if not add(ks .. " = " .. repr(rawget(t, k), seen, budget - used)) then
				full = false
				break
			end
		end
	end
	seen[t] = nil
	if not full then parts[#parts + 1] = "..." end
	return "{" .. table.concat(parts, ", ") .. "}"
end

-- One-line human form of v: strings quoted, tables as constructors.
function repr(v, seen, budget)
	local ty = type(v)
	if ty == "string" then return quote(v) end
	if ty == "table" then
		local mt = getmetatable(v)
		if type(mt) == "table" and rawget(mt, "__tostring") then
			local ok, s = pcall(tostring, v)
			if ok and type(s) == "string" then return s end
		end
		return table_repr(v, seen or {}, budget or TABLE_BUDGET)
	end
	return tostring(v)
end

-- Does a comparison by == alone decide for a and b (a metatable __eq)?
local function has_eq(v)
	local mt = getmetatable(v)
	return type(mt) == "table" and rawget(mt, "__eq") ~= nil
end

local function deep_equal(a, b, seen)
	if rawequal(a, b) then return true end
	if type(a) ~= "table" or type(b) ~= "table" then return a == b end
	if has_eq(a) or has_eq(b) then return a == b end
	seen = seen or {}
	local pairs_of_a = seen[a]
	if pairs_of_a and pairs_of_a[b] then return true end
	if not pairs_of_a then
		pairs_of_a = {}
		seen[a] = pairs_of_a
	end
	pairs_of_a[b] = true
	for k, va in next, a do
		local vb = rawget(b, k)
		if vb == nil or not deep_equal(va, vb, seen) then return false end
	end
	for k in next, b do
		if rawget(a, k) == nil then return false end
	end
	return true
end

local function path_join(path, k)
	if is_ident(k) then return path == "" and k or path .. "." .. k end
	return path .. "[" .. repr(k, nil, 40) .. "]"
end

-- Append "<path>: <a> ~= <b>" for every differing leaf of a and b.
local function table_diff(a, b, path, out, seen)
	local pairs_of_a = seen[a]
	if pairs_of_a and pairs_of_a[b] then return end
	seen[a] = pairs_of_a or {}
	seen[a][b] = true
	local keys, have = {}, {}
	for _, t in ipairs({a, b}) do
		local n, rest = keys_of(t)
		for i = 1, n do
			if not have[i] then have[i] = true keys[#keys + 1] = i end
		end
		for _, k in ipairs(rest) do
			if not have[k] then have[k] = true keys[#keys + 1] = k end
		end
	end
	local n = 0
	while rawget(a, n + 1) ~= nil or rawget(b, n + 1) ~= nil do n = n + 1 end
	table.sort(keys, function(x, y)
		local xi = math.type(x) == "integer" and x >= 1 and x <= n
		local yi = math.type(y) == "integer" and y >= 1 and y <= n
		if xi ~= yi then return xi end
		if xi then return x < y end
		return key_before(x, y)
	end)
	for _, k in ipairs(keys) do
		if #out >= DIFF_COUNT_MAX then return end
		local va, vb = rawget(a, k), rawget(b, k)
		if not deep_equal(va, vb) then
			local p = path_join(path, k)
			if type(va) == "table" and type(vb) == "table" and not has_eq(va) and not has_eq(vb) then
				table_diff(va, vb, p, out, seen)
			else
				out[#out + 1] = p .. ": " .. repr(va, nil, 80) .. " ~= " .. repr(vb, nil, 80)
			end
		end
	end
end

-- Lines of s, each with its "\n".
local function lines_of(s)
	local out = {}
	for l in s:gmatch("[^\n]*\n?") do
		if l ~= "" then out[#out + 1] = l end
	end
	return out
end

-- line (quoted) shown around byte col, at most LINE_MAX bytes.
local function line_window(line, col)
	if line == nil then return "(no such line)" end
	local from = 1
	if col > LINE_MAX - 40 then from = col - 40 end
	local piece = line:sub(from, from + LINE_MAX - 1)
	local s = quote(piece, LINE_MAX)
	if from > 1 then s = "..." .. s end
	if from + LINE_MAX - 1 < #line then s = s .. "..." end
	return s
end

-- Where two different strings first differ, as lines to add under the
-- one-line message, or nil when the message already shows it all.
local function string_diff(a, b)
	if not (a:find("\n", 1, true) or b:find("\n", 1, true) or #a > STR_MAX or #b > STR_MAX) then
		return nil
	end
	local la, lb = lines_of(a), lines_of(b)
	local i = 1
	while la[i] ~= nil and la[i] == lb[i] do i = i + 1 end
	local x, y = la[i], lb[i]
	local col = 1
	if x and y then
		while col <= #x and x:byte(col) == y:byte(col) do col = col + 1 end
	end
	return {
		string.format("first difference at line %d, column %d%s:", i, col,
			#la == #lb and "" or string.format(" (%d vs %d lines)", #la, #lb)),
		"  left:  " .. line_window(x, col),
		"  right: " .. line_window(y, col),
	}
end

-- Lines explaining how a and b (known unequal) differ, or nil.
local function explain_diff(a, b)
	if type(a) == "string" and type(b) == "string" then return string_diff(a, b) end
	if type(a) == "table" and type(b) == "table" and not has_eq(a) and not has_eq(b) then
		local out = {}
		table_diff(a, b, "", out, {})
		if #out > DIFF_MAX then
			local more = #out - DIFF_MAX
			for i = #out, DIFF_MAX + 1, -1 do out[i] = nil end
			out[DIFF_MAX + 1] = string.format("... and %d%s more differences", more,
				more + DIFF_MAX >= DIFF_COUNT_MAX and " or" or "")
		end
		if #out > 0 then return out end
	end
	return nil
end

-- Two values for "<a> ~= <b>": numbers that print alike get full
-- precision; strings are cut after max bytes (default STR_MAX).
function _provium_repr_pair(a, b, max)
	local function one(v)
		if type(v) == "string" then return quote(v, max) end
		return repr(v)
	end
	local ra, rb = one(a), one(b)
	if ra == rb and type(a) == "number" and type(b) == "number" then
		ra, rb = string.format("%.17g", a), string.format("%.17g", b)
	end
	return ra, rb
end

_provium_repr = function(v) return repr(v) end
_provium_quote = quote
_provium_deep_equal = function(a, b) return deep_equal(a, b) end
_provium_explain_diff = explain_diff
