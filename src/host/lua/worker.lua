-- worker.lua — Worker objects (vm:spawn_worker), embedded and loaded by
-- lworker.c with the VM method table as its argument.
--
-- A worker is host-side bookkeeping over the VM's ordinary ops: run,
-- run_async, open_file and syscall go to the same agent connection, and
-- the processes and files made through a worker are remembered so that
-- kill broadcasts a signal to its live processes, join waits for them, and
-- close (the auto-close walker's hook, kind "worker") SIGTERMs and joins.
-- join ends the worker, as the original's agent reaps it there.
-- There is no per-worker wire op yet; a worker is not an isolation
-- boundary.

local vm_methods = ...

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

function Worker:run(cmd, opts)
	live(self)
	return (fwd(self._vm.run, self._vm, cmd, opts))  -- not a tail call: keeps level 3
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
	return (fwd(self._vm.syscall, self._vm, ...))
end

function Worker:kill(sig)
	local t = type(sig)
	if sig ~= nil and t ~= "number" and t ~= "string" then
		error(("worker:kill: signal must be nil, an integer or a signal name, got %s")
			:format(t), 2)
	end
	for _, p in ipairs(self._procs) do
		if p:status() == "running" then fwd(p.kill, p, sig) end
	end
end

-- Wait for every process of the worker; returns their RunResults in
-- spawn order, and closes its files. A joined worker is over: every later
-- op (join included) raises "agent error: unknown worker handle"; close
-- is a no-op.
function Worker:join()
	live(self)
	self._joined = true
	local out = {}
	for i, p in ipairs(self._procs) do
		local ok, r = pcall(p.wait, p)
		out[i] = ok and r or {status = "closed", error = tostring(r)}
	end
	for _, f in ipairs(self._files) do pcall(f.close, f) end
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
	if #errs > 0 then error("worker close: " .. table.concat(errs, "; "), 2) end
end

WorkerMT.__tostring = function(w)
	return ("worker %d of vm `%s`%s"):format(w._handle, w._vm:name(),
		w._closed and " (closed)" or "")
end
WorkerMT.__close = function(w) w:close() end

-- Constructor, also reachable from C for backends without an agent check.
local function new_worker(vm, opts)
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
	next_handle = next_handle + 1
	local w = setmetatable({_vm = vm, _handle = next_handle, _procs = {}, _files = {},
		_closed = false}, WorkerMT)
	register(w, "worker")
	return w
end

return new_worker
