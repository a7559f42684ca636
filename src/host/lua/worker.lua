-- worker.lua — Worker objects (vm:spawn_worker), embedded and loaded by
-- lworker.c with the VM method table and lworker.c's primitives (prim:
-- spawn, join, kill, routed, syscall_async, set_who) as its arguments.
--
-- A worker is a separate guest process (a fork of the agent's op server,
-- docs/workers.md): syscall, syscall_async, read_mem, run, run_async and
-- open_file are routed to it, so they run with the worker's own pid,
-- credentials, fds and memory. A Process or File made through a worker
-- lives in the worker's tables and sends every later op there itself
-- (qemu_ops.c remembers the route). They are also remembered here: kill
-- signals them and the worker (the agent finds the worker's children, so
-- this works while the worker is blocked in a syscall), join waits for
-- them and reaps the worker process, and close (the auto-close walker's
-- hook, kind "worker") ends them and reaps the worker (SIGKILL after a
-- grace period). join ends the worker, as the original's agent reaps it
-- there.
--
-- Handles are chosen by the host (vmm/guest_worker.c) and never reused
-- within a runner, so after a restore to a snapshot taken before this
-- worker was spawned the agent does not know the handle: every op raises
-- "worker N does not exist in this VM (...)" instead of reaching another
-- worker.
--
-- _provium_new_worker builds the bookkeeping part alone (no guest
-- process: _wid is nil and the routed ops go to the VM itself), for the
-- harness tests on the local backend.

local vm_methods, prim = ...

local JOIN_MS = 10000   -- join: SIGKILL a worker still busy after this
local CLOSE_MS = 2000   -- close: the same, shorter
local KILL_COLLECT_MS = 2000  -- kill: wait this long for the signalled processes' ends

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

-- The agent's answer for a handle it does not know, for worker wid.
local function is_unknown(msg, wid)
	return wid ~= nil and type(msg) == "string" and
		msg:find(("unknown worker %d"):format(wid), 1, true) ~= nil
end

-- Call fn(...) and re-raise its error at the caller of the Worker
-- method, without this chunk's own position in front of the message.
-- With self: an agent that does not know the worker (the guest was
-- restored to a snapshot taken before it was spawned, or rebooted) is
-- said so plainly.
-- With name: a misuse the primitive reports against an unnamed function
-- ("bad argument #3 to '?'", counting the vm) names the Worker method and
-- numbers its arguments as Lua does for a method call (self not counted,
-- as vm:open_file's own message does).
local function fwd_as(self, fn, name, ...)
	local r = table.pack(pcall(fn, ...))
	if not r[1] then
		local msg = r[2]
		if type(msg) == "string" then
			msg = msg:gsub("^%[provium worker%]:%d+: ", "")
			if name then
				msg = msg:gsub("^bad argument #(%d+) to '%?'", function(n)
					-- counted with self, as Lua numbers a method's own
					return ("bad argument #%d to '%s'"):format(tonumber(n) - 1, name)
				end)
			end
		end
		if self and is_unknown(msg, self._wid) then
			msg = ("worker %d does not exist in this VM (it was spawned after the " ..
				"snapshot that was restored, or before a reboot)"):format(self._handle)
		end
		error(msg, 3)
	end
	return table.unpack(r, 2, r.n)
end

local function fwd(fn, ...)
	return fwd_as(nil, fn, nil, ...)
end

-- fn(vm, ...) routed to the worker process (the VM itself without one);
-- name: the Worker method, for misuse messages.
local function routed(self, name, fn, ...)
	if self._wid then
		return fwd_as(self, prim.routed, name, self._vm, self._wid, fn, self._vm, ...)
	end
	return fwd_as(nil, fn, name, self._vm, ...)
end

function Worker:run(cmd, opts)
	live(self)
	return (routed(self, "run", self._vm.run, cmd, opts))  -- not a tail call: keeps level 3
end

-- The process is the worker's child (its uid, fds, cwd); the Process
-- sends its ops to the worker.
function Worker:run_async(cmd, opts)
	live(self)
	local p = routed(self, "run_async", self._vm.run_async, cmd, opts)
	self._procs[#self._procs + 1] = p
	return p
end

-- Opened by the worker (its credentials); the File's ops go there too.
function Worker:open_file(path, mode)
	live(self)
	local f = routed(self, "open_file", self._vm.open_file, path, mode)
	self._files[#self._files + 1] = f
	return f
end

function Worker:syscall(...)
	live(self)
	return (routed(self, "syscall", self._vm.syscall, ...))
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
	local p = routed(self, "syscall_async", prim.syscall_async, ...)
	prim.set_who(p, ("worker %d"):format(self._handle))
	self._pending[#self._pending + 1] = p
	return p
end

-- Bytes of the worker process's memory (nil, errno for an unmapped range).
function Worker:read_mem(addr, len)
	live(self)
	local bytes, e = routed(self, "read_mem", self._vm.read_mem, addr, len)  -- not a tail call
	return bytes, e
end

-- The worker process's guest pid (nil for a bookkeeping-only worker).
function Worker:pid() return self._pid end

-- Whether a syscall_async of this worker was not awaited: the worker may
-- still be blocked in it and could not serve a graceful close.
local function maybe_busy(self)
	for _, p in ipairs(self._pending) do
		if not prim.awaited(p) then return true end
	end
	return false
end

-- Poll procs' status until none runs, for up to ms: a status that is not
-- "running" is kept by the Process (join's wait returns it later).
local function collect(procs, ms)
	local sleep = rawget(_G, "_provium_sleep")
	local left, step = ms / 1000, 0.01
	while true do
		local running = false
		for _, p in ipairs(procs) do
			if p:status() == "running" then running = true end
		end
		if not running or left <= 0 or type(sleep) ~= "function" then return end
		sleep(step)
		left = left - step
		step = math.min(step * 2, 0.1)
	end
end

-- Signals that do not end a process by default: kill does not wait for
-- the processes' ends after them.
local NO_END = {[17] = true, [18] = true, [19] = true, [20] = true, [28] = true}

function Worker:kill(sig)
	local t = type(sig)
	if sig ~= nil and t ~= "number" and t ~= "string" then
		error(("worker:kill: signal must be nil, an integer or a signal name, got %s")
			:format(t), 2)
	end
	if not self._wid then
		for _, p in ipairs(self._procs) do
			if p:status() == "running" then fwd(p.kill, p, sig) end
		end
		return
	end
	if self._joined or self._closed then return end
	local num = sig
	if type(sig) ~= "number" then
		-- the same names proc:kill takes, via a Process-free parse
		num = ({term = 15, kill = 9, int = 2, hup = 1, quit = 3, usr1 = 10,
			usr2 = 12, stop = 19, cont = 18})[tostring(sig or "term"):lower():gsub("^sig", "")]
		if not num then
			error(("worker:kill: unknown signal name `%s`"):format(tostring(sig)), 2)
		end
	end
	if not maybe_busy(self) then
		-- An idle worker signals its processes itself and collects what
		-- they end with (up to KILL_COLLECT_MS), so join still returns
		-- their RunResults once the worker is gone. (A worker that may be
		-- blocked in a syscall cannot answer: the agent alone signals.)
		pcall(function()
			local sent = {}
			for _, p in ipairs(self._procs) do
				if p:status() == "running" then
					p:kill(num)
					sent[#sent + 1] = p
				end
			end
			if not NO_END[num] then collect(sent, KILL_COLLECT_MS) end
		end)
	end
	-- The agent signals the worker's children (all of them, also while it
	-- is blocked) and then the worker.
	fwd_as(self, prim.kill, nil, self._vm, self._wid, num)
end

-- Reap the worker process (SIGKILL after ms); {status=, signal=} or nil
-- when there is nothing to reap (no process, or the VM is not up).
local function reap(self, ms)
	if not self._wid or self._vm:state() ~= "booted" then return nil end
	local st, sig = fwd_as(self, prim.join, nil, self._vm, self._wid, ms)
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

-- An error saying the worker is gone (killed, exited, or not in this
-- guest): its processes and files went with it, nothing to report.
local function gone(self, err)
	err = tostring(err)
	return is_unknown(err, self._wid) or err:find("does not exist in this VM", 1, true)
		or err:find(("worker %d has exited"):format(self._wid or -1), 1, true)
		or err:find(("worker %d ended"):format(self._wid or -1), 1, true)
end

function Worker:close()
	if self._closed or self._joined then self._closed = true return end
	self._closed = true
	local errs = {}
	local function note(ok, err)
		if not ok and not (self._wid and gone(self, err)) then
			errs[#errs + 1] = tostring(err)
		end
	end
	if self._wid and self._vm:state() == "booted" and maybe_busy(self) then
		-- Blocked (maybe): the agent SIGKILLs its processes and the
		-- worker; the Process/File objects below then only free.
		note(pcall(prim.kill, self._vm, self._wid, 9))
	end
	for _, p in ipairs(self._procs) do
		note(pcall(function()
			if p:status() == "running" then p:kill("term") end
		end))
		note(pcall(p.close, p))   -- SIGTERM, up to 2 s, SIGKILL; or just frees
	end
	for _, f in ipairs(self._files) do pcall(f.close, f) end
	-- a worker the agent does not know (the guest was restored to a
	-- snapshot taken before it was spawned) has nothing left to reap
	note(pcall(reap, self, CLOSE_MS))
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
		_files = {}, _pending = {}, _closed = false}, WorkerMT)
	register(w, "worker")
	return w
end

return new_worker
