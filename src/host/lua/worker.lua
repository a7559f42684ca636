-- worker.lua — Worker objects (vm:spawn_worker), embedded and loaded by
-- lworker.c with the VM method table and lworker.c's primitives (prim:
-- spawn, join, kill, routed, syscall_async, set_who) as its arguments.
--
-- A worker is a separate guest process (a fork of the agent's op server,
-- docs/workers.md): syscall, syscall_async, read_mem and run are routed
-- to it, so they run with the worker's own pid, credentials, fds and
-- memory. run_async and open_file stay with the agent (their handles live
-- in the agent's tables, where the Process and File objects reach them);
-- the processes and files made through a worker are remembered so that
-- kill signals them (and the worker process), join waits for them and
-- reaps the worker process, and close (the auto-close walker's hook, kind
-- "worker") SIGTERMs them and reaps the worker (SIGKILL after a grace
-- period). join ends the worker, as the original's agent reaps it there.
--
-- _provium_new_worker builds the bookkeeping part alone (no guest
-- process: _wid is nil and the routed ops go to the VM itself), for the
-- harness tests on the local backend.

local vm_methods, prim = ...

local JOIN_MS = 10000   -- join: SIGKILL a worker still busy after this
local CLOSE_MS = 2000   -- close: the same, shorter

local Worker = {}
local WorkerMT = {__index = Worker, __name = "provium.worker"}
local next_handle = 0

local function register(obj, kind)
	local f = rawget(_G, "_provium_register_resource")
	if type(f) == "function" then f(obj, kind) end
end

local function live(self)
	if self._joined then
		-- as the original's agent answers a joined (reaped) worker
		error(("worker %d: agent error: unknown worker handle %d (already joined)")
			:format(self._handle, self._handle), 3)
	end
	if self._closed then
		error(("worker %d is closed"):format(self._handle), 3)
	end
end

-- Call fn(...) and re-raise its error at the caller of the Worker
-- method, without this chunk's own position in front of the message.
local function fwd(fn, ...)
	local r = table.pack(pcall(fn, ...))
	if not r[1] then
		local msg = r[2]
		if type(msg) == "string" then
			msg = msg:gsub("^%[provium worker%]:%d+: ", "")
		end
		error(msg, 3)
	end
	return table.unpack(r, 2, r.n)
end

-- fn(vm, ...) routed to the worker process (the VM itself without one).
local function routed(self, fn, ...)
	if self._wid then
		return fwd(prim.routed, self._vm, self._wid, fn, self._vm, ...)
	end
	return fwd(fn, self._vm, ...)
end

function Worker:run(cmd, opts)
	live(self)
	return (routed(self, self._vm.run, cmd, opts))  -- not a tail call: keeps level 3
end

function Worker:run_async(cmd, opts)
	live(self)
	local p = fwd(self._vm.run_async, self._vm, cmd, opts)
	self._procs[#self._procs + 1] = p
	return p
end

function Worker:open_file(path, mode)
	live(self)
	local f = fwd(self._vm.open_file, self._vm, path, mode)
	self._files[#self._files + 1] = f
	return f
end

function Worker:syscall(...)
	live(self)
	return (routed(self, self._vm.syscall, ...))
end

-- Send the syscall to the worker process and return at once; the
-- returned PendingSyscall's :await([timeout]) gives what syscall would
-- have. The worker runs its requests in order: a later op on the same
-- worker waits behind a syscall that blocks.
function Worker:syscall_async(...)
	live(self)
	if not self._wid then
		error(("worker %d: syscall_async needs a worker process (vm:spawn_worker on a " ..
			"backend with a guest agent)"):format(self._handle), 2)
	end
	local p = routed(self, prim.syscall_async, ...)
	prim.set_who(p, ("worker %d"):format(self._handle))
	return p
end

-- Bytes of the worker process's memory (nil, errno for an unmapped range).
function Worker:read_mem(addr, len)
	live(self)
	local bytes, e = routed(self, self._vm.read_mem, addr, len)  -- not a tail call
	return bytes, e
end

-- The worker process's guest pid (nil for a bookkeeping-only worker).
function Worker:pid() return self._pid end

function Worker:kill(sig)
	local t = type(sig)
	if sig ~= nil and t ~= "number" and t ~= "string" then
		error(("worker:kill: signal must be nil, an integer or a signal name, got %s")
			:format(t), 2)
	end
	for _, p in ipairs(self._procs) do
		if p:status() == "running" then fwd(p.kill, p, sig) end
	end
	if self._wid and not self._joined and not self._closed then
		local num = sig
		if type(sig) ~= "number" then
			-- the same names proc:kill takes, via a Process-free parse
			num = ({term = 15, kill = 9, int = 2, hup = 1, quit = 3, usr1 = 10,
				usr2 = 12, stop = 19, cont = 18})[tostring(sig or "term"):lower():gsub("^sig", "")]
			if not num then
				error(("worker:kill: unknown signal name `%s`"):format(tostring(sig)), 2)
			end
		end
		fwd(prim.kill, self._vm, self._wid, num)
	end
end

-- Reap the worker process (SIGKILL after ms); {status=, signal=} or nil
-- when there is nothing to reap (no process, or the VM is not up).
local function reap(self, ms)
	if not self._wid or self._vm:state() ~= "booted" then return nil end
	local ok, st, sig = pcall(prim.join, self._vm, self._wid, ms)
	if not ok then error(st, 0) end   -- the message names the worker already
	return {status = st, signal = sig}
end

-- Wait for every process of the worker; returns their RunResults in
-- spawn order, closes its files and reaps the worker process (exit_status:
-- {status=, signal=} of the worker process itself, status -1 when a
-- signal ended it). A joined worker is over: every later op (join
-- included) raises "agent error: unknown worker handle"; close is a no-op.
function Worker:join(timeout)
	live(self)
	self._joined = true
	local out = {}
	for i, p in ipairs(self._procs) do
		local ok, r = pcall(p.wait, p)
		out[i] = ok and r or {status = "closed", error = tostring(r)}
	end
	for _, f in ipairs(self._files) do pcall(f.close, f) end
	local ms = JOIN_MS
	if timeout ~= nil then
		if type(timeout) ~= "number" or timeout < 0 then
			error("worker:join: timeout must be a number of seconds >= 0", 2)
		end
		ms = math.floor(timeout * 1000)
	end
	out.exit_status = reap(self, ms)
	return out
end

function Worker:handle() return self._handle end

function Worker:close()
	if self._closed or self._joined then self._closed = true return end
	self._closed = true
	local errs = {}
	for _, p in ipairs(self._procs) do
		local ok, err = pcall(function()
			if p:status() == "running" then p:kill("term") end
			p:close()
		end)
		if not ok then errs[#errs + 1] = tostring(err) end
	end
	for _, f in ipairs(self._files) do pcall(f.close, f) end
	local ok, err = pcall(reap, self, CLOSE_MS)
	-- a worker the agent does not know (the guest was restored to a
	-- snapshot taken before it was spawned) has nothing left to reap
	if not ok and not tostring(err):find("unknown worker", 1, true) then
		errs[#errs + 1] = tostring(err)
	end
	if #errs > 0 then error("worker close: " .. table.concat(errs, "; "), 2) end
end

WorkerMT.__tostring = function(w)
	return ("worker %d of vm `%s`%s%s"):format(w._handle, w._vm:name(),
		w._pid and (" (pid %d)"):format(w._pid) or "", w._closed and " (closed)" or "")
end
WorkerMT.__close = function(w) w:close() end

-- Constructor: with process = true a guest worker process is spawned
-- (vm:spawn_worker); false builds the bookkeeping part only.
local function new_worker(vm, opts, process)
	if opts ~= nil then
		if type(opts) ~= "table" then
			error("spawn_worker: opts must be a table", 3)
		end
		for k, v in pairs(opts) do
			if k == "thread" then
				if v then
					error("spawn_worker: {thread = true} is not supported yet (threaded " ..
						"workers are future work; use {thread = false} or no opts)", 3)
				end
			else
				error(("spawn_worker: unknown opt `%s` (expected thread)"):format(tostring(k)), 3)
			end
		end
	end
	if vm:state() ~= "booted" then
		local hints = {created = " (not booted: boot it first)",
			paused = " (paused: use resume() first)",
			shutdown = " (shutdown is final: create a new VM)",
			dead = " (the VM died: create a new VM)"}
		local st = vm:state()
		error(("vm `%s`: cannot spawn_worker: vm is %s%s"):format(vm:name(),
			st:gsub("^%l", string.upper), hints[st] or ""), 3)
	end
	local handle, wid, pid
	if process then
		wid, pid = fwd(prim.spawn, vm)
		handle = wid
	else
		next_handle = next_handle + 1
		handle = next_handle
	end
	local w = setmetatable({_vm = vm, _handle = handle, _wid = wid, _pid = pid, _procs = {},
		_files = {}, _closed = false}, WorkerMT)
	register(w, "worker")
	return w
end

return new_worker
