---@meta
-- Provium harness API, for the Lua language server (lua-language-server).
--
-- `provium lsp-setup` writes this file to <dir>/.provium-meta/types.lua and
-- points <dir>/.luarc.json at it. It is never run: it only declares what a
-- test file sees (`test`, `todo`, `wait_until`, `json`, `provium`) and the
-- userdata those hand out, so the editor stops flagging the globals as
-- undefined and can complete their methods. Tables returned by the API are
-- typed as classes below; values whose shape the agent decides are `any`.
--
-- Running lsp-setup again replaces this file. Edit it freely in between.

-- ===========================================================================
-- Shared value types
-- ===========================================================================

---Seconds as a number, or a string with a unit: "500ms", "30s", "5m", "2h".
---@alias Duration number|string

---Bytes as an integer, or a string with a K/M/G suffix: "512M", "2G".
---@alias Size integer|string

---A signal number, or a name such as "term", "kill", "int", "hup", "usr1"
---(a "sig" prefix is accepted; case does not matter).
---@alias Signal integer|string

---@alias VMState "created"|"booted"|"paused"|"shutdown"|"dead"

---@alias EntryType "file"|"directory"|"symlink"|"fifo"|"socket"|"block_device"|"char_device"|"other"

---@alias RunStatus "exited"|"signalled"|"timed_out"

---@alias FaultMode "eio_read"|"eio_write"|"slow"

---@alias SeekWhence "set"|"cur"|"end"

-- ===========================================================================
-- Test framework: test, todo, wait_until and the `t` context
-- ===========================================================================

---Per-test metadata: the optional second argument of `test`. Every key is
---passed through to the test events; these are the ones provium reads.
---@class TestMeta
---@field slow? boolean|integer Skipped unless `--include-slow` is given.
---@field skip? boolean|integer|string `true`: "skipped (meta.skip)"; a string: "skipped: <reason>".
---@field tags? string|string[] Matched by `--tag` / `--no-tag`.
---@field timeout? Duration Per-test deadline; wins over `provium.timeout`.
---@field spec? string Spec section the test exercises (passed through to consumers).
---@field [string] any Any other key (e.g. `subsystems`), matched by `--tag-meta`.

---The test context passed to every test body.
---@class TestContext
---@field name string The test's name.
---@field meta TestMeta The test's metadata (`{}` when none was given).
local TestContext = {}

---Fail the test unless `cond` is truthy. `msg` defaults to "assertion failed".
---@param cond any
---@param msg? string
function TestContext:assert(cond, msg) end

---Fail the test unless `a == b`; tables compare by value (deep). The
---message reads `<msg>: <a> ~= <b>` (strings quoted), then the differing
---key paths of two tables or the first differing line of two strings.
---@param a any
---@param b any
---@param msg? string
function TestContext:assert_eq(a, b, msg) end

---Fail the test if `a == b` (tables by value, as in assert_eq).
---@param a any
---@param b any
---@param msg? string
function TestContext:assert_neq(a, b, msg) end

---Fail unless `needle` is a plain substring of `haystack` (both strings).
---@param haystack string
---@param needle string
---@param msg? string
function TestContext:assert_contains(haystack, needle, msg) end

---Run `fn` and fail if it returns without raising. Returns the error value.
---@param fn fun(): any
---@param msg? string
---@return any err
function TestContext:assert_raises(fn, msg) end

---Mark the test failed and raise. `msg` defaults to "explicit failure (t:fail)".
---@param msg? string
function TestContext:fail(msg) end

---Mark the test skipped with `reason` and stop it.
---@param reason? string
function TestContext:skip(reason) end

---Append `msg` (through `tostring`) to the test's log.
---@param msg any
function TestContext:log(msg) end

---Register a test. Tests run in declaration order; names are unique per file.
---  test("name", function(t) ... end)
---  test("name", {tags = {"smoke"}, timeout = "30s"}, function(t) ... end)
---@overload fun(name: string, fn: fun(t: TestContext))
---@param name string
---@param meta TestMeta
---@param fn fun(t: TestContext)
function test(name, meta, fn) end

---Skip every test of the file with `reason` (default "todo"). Call it at
---file scope.
---@param reason? string
function todo(reason) end

---@class WaitUntilOpts
---@field timeout? Duration Total wait (default 10 s).
---@field interval? Duration Pause between calls (default 0.1 s).
---@field desc? string Names the condition in the timeout error (default "condition").

---Call `predicate` until it returns a truthy value and return that value;
---raise `wait_until: <desc> not met within <timeout>s` when time runs out.
---@generic T
---@param predicate fun(): T
---@param opts? WaitUntilOpts
---@return T
function wait_until(predicate, opts) end

-- ===========================================================================
-- json
-- ===========================================================================

---JSON encoding and decoding, host-side.
---@class json
json = {}

---Serialise a Lua value. Tables with keys 1..N become arrays (gaps are
---`null`); other tables become objects. Cycles, functions and userdata raise.
---@param value any
---@return string
function json.encode(value) end

---Parse a JSON string. `null` decodes to nil (object keys holding null are
---dropped). Integers keep full 64-bit precision.
---@param s string
---@return any
function json.decode(s) end

-- ===========================================================================
-- Lab and the `provium` global
-- ===========================================================================

---@class LabMember
---@field kind "vm"|"bridge"|"sub_lab"
---@field name string

---@class ClaimAmount
---@field memory? Size Memory budget.
---@field cpus? integer vCPU budget.

---A set of VMs, bridges and sub-labs. `provium` is the root lab;
---`lab.<name>` looks up a VM, bridge or sub-lab by name (nil on a miss).
---@class Lab
---@field [string] any
local Lab = {}

---Create a VM (`lab:vm(name, profile, opts?)`) or look one up (`lab:vm(name)`,
---which raises if it was never declared).
---@param name string
---@param profile? string
---@param opts? BootOpts Creation-time boot opts.
---@return VM
function Lab:vm(name, profile, opts) end

---Create a bridge, or return the existing one of that name.
---@param name string
---@param opts? {seed?: integer} seed: the loss/jitter PRNG seed (default $PROVIUM_NET_SEED, else 1).
---@return Bridge
function Lab:bridge(name, opts) end

---Create a sub-lab (named `__lab_<n>` when `name` is omitted).
---@param name? string
---@return Lab
function Lab:lab(name) end

---Declare a host file as a fixture-cache dependency (a string literal,
---relative to this file). A no-op at run time.
---@param host_path string
function Lab:depends_on_file(host_path) end

---Add existing resources (VM, bridge or sub-lab) to this lab.
---@param resource_or_list VM|Bridge|Lab|(VM|Bridge|Lab)[]
function Lab:include(resource_or_list) end

---Remove a resource from this lab (by name or handle); it keeps running.
---@param name_or_resource string|VM|Bridge|Lab
function Lab:remove(name_or_resource) end

---Every direct member of the lab.
---@return LabMember[]
function Lab:members() end

---@return string[]
function Lab:vm_names() end

---@return string[]
function Lab:bridge_names() end

---@return string[]
function Lab:sub_lab_names() end

---Boot every VM of the lab (not of its sub-labs). Returns the lab.
---@return Lab
function Lab:boot() end

---Shut down every VM of the lab.
function Lab:shutdown() end

---Pause every VM of the lab.
function Lab:pause() end

---Resume every VM of the lab.
function Lab:resume() end

---Reserve pool resources for the whole file (at most one claim per file).
---@param amount ClaimAmount
function Lab:claim(amount) end

---Block until `count` callers reached the barrier `name`; raise on timeout
---(default 60 s).
---@param name string
---@param count integer
---@param timeout? number Seconds.
function Lab:barrier(name, count, timeout) end

---Snapshot the whole lab. Without `dir`: a LabSnapshot in a fresh temp dir;
---with `dir`: written there, and the dir path is returned.
---@param dir? string
---@return LabSnapshot|string
function Lab:snapshot(dir) end

---Restore the lab from a LabSnapshot or a snapshot directory.
---@param dir_or_snapshot string|LabSnapshot
function Lab:restore(dir_or_snapshot) end

---Build (or restore from the cache) the single-VM fixture at `path`
---(test-root relative, without `.fixture.lua`). The VM comes back booted.
---@param path string
---@return VM
function Lab:vm_fixture(path) end

---Build (or restore from the cache) the lab fixture at `path` into a fresh
---sub-lab.
---@param path string
---@return Lab
function Lab:lab_fixture(path) end

---`string.pack`.
---@param fmt string
---@param ... any
---@return string
function Lab:pack(fmt, ...) end

---`string.unpack`: the values, then the position after them.
---@param fmt string
---@param s string
---@param pos? integer
---@return any ...
function Lab:unpack(fmt, s, pos) end

---The lab's name; the root lab is "provium".
---@return string
function Lab:name() end

---The root lab, plus the file-scope settings. `provium.vm_fixture(path)` and
---`provium.lab_fixture(path)` also work as plain functions.
---@class Provium: Lab
---@field timeout? Duration File-default per-test timeout (`meta.timeout` wins).
---@field reset_between_tests? boolean Restore the root lab to its post-chunk baseline after every test.

---The root lab of the file.
---@type Provium
provium = nil

-- ===========================================================================
-- VM
-- ===========================================================================

---@class BootFile
---@field path string
---@field content string

---Boot options, at creation (`lab:vm(name, profile, opts)`) or per boot.
---@class BootOpts
---@field memory? Size Guest memory.
---@field cpus? integer vCPU count.
---@field kernel_cmdline? string Replaces the profile's cmdline.
---@field rng_seed? integer Seeds the guest's virtio-rng.
---@field initial_time? number Guest wall clock at boot, seconds since the epoch.
---@field files? BootFile[] Files injected into the guest before init runs.
---@field disks? BootDisk[] Boot-time disks, cold-plugged (docs/disks.md).
---@field hotplug? boolean PCIe root ports for attaching disks/bridges while it runs (default: fixture builds and files that attach).

---@class BootDisk
---@field id string 1-20 characters; the virtio-blk serial.
---@field image string Raw image path.

---Options of `vm:run` / `vm:run_async` (the table form).
---@class RunOpts
---@field args? string[] Positional arguments (direct exec, no shell).
---@field env? table<string, string> Environment variables.
---@field env_clear? boolean The command sees only `env`.
---@field cwd? string Working directory in the guest.
---@field stdin? string Bytes piped to stdin.
---@field timeout_ms? integer Hard timeout in milliseconds (not for run_async).
---@field timeout? Duration Hard timeout (not for run_async).

---@class PushFileOpts
---@field auto_dep? boolean `false`: do not fold the host file into the fixture key.

---@class MkdirOpts
---@field parents? boolean Create missing parents (`mkdir -p`).
---@field perm? integer Mode of the new directory.

---Mode table of `open_file`: at least one of read, write, append.
---@class OpenMode
---@field read? boolean
---@field write? boolean
---@field create? boolean
---@field truncate? boolean
---@field append? boolean
---@field exclusive? boolean With `create`: fail if the file exists (O_EXCL).
---@field perm? integer Mode of a newly created file.

---@class TailOpts
---@field start? "end"|"beginning"|"start"|number Where to start: "end" (default), byte 0, or an offset (negative: from EOF).

---@class StatResult
---@field size integer Bytes.
---@field mtime number Seconds since the epoch.
---@field mtime_ns integer Nanoseconds since the epoch.
---@field perm integer POSIX mode bits (<= 0o7777).
---@field entry_type EntryType

---@class DirEntry
---@field name string
---@field entry_type EntryType

---Table form of `vm:syscall(nr, {...})`.
---@class SyscallArgs
---@field args? integer[] Integer arguments.
---@field bufs? string[] Buffers whose addresses are passed.
---@field ptrs? integer[] For each buffer, the (0-based) argument slot it fills (-1 or absent: none).
---@field nested? NestedPtr[] Pointers written into buffers before the call.

---`bufs[child]`'s address is written into `bufs[parent]` at byte `offset` (1-based indexes).
---@class NestedPtr
---@field parent integer
---@field child integer
---@field offset integer

---@class SyscallResult
---@field ret integer Return value.
---@field result integer Same as `ret`.
---@field errno integer Errno when the call failed, else 0.
---@field out_bufs string[] The buffers after the call.

---@class IoctlOpts
---@field bufs? string[]
---@field ptr_offsets? integer[]

---@class IoctlResult
---@field ret integer
---@field result integer
---@field out_data? string `data` after the call.
---@field out_bufs string[]

---@class AttachDiskOpts
---@field id? string Disk id (default "attached-<vm name>").
---@field size? integer Modelled size in bytes (default 4 GiB).
---@field image? string Backing image file (needed for sector I/O).

---@class SpawnWorkerOpts
---@field thread? boolean Must be false (`true` is not supported).

---@class BatchResult
---@field ok? any The op's value when it succeeded.
---@field err? string The error when it failed.

---One guest. From `lab:vm(...)`, `lab.<name>` or `lab:vm_fixture(...)`.
---@class VM
local VM = {}

---Boot the guest (Created -> Booted); `opts` merge into the creation-time
---opts. Returns the VM, so calls chain.
---@param opts? BootOpts
---@return VM
function VM:boot(opts) end

---Pause the vCPUs (Booted -> Paused).
function VM:pause() end

---Resume a paused guest (Paused -> Booted).
function VM:resume() end

---Tear the guest down (any state -> Shutdown).
function VM:shutdown() end

---Warm reboot; the VM stays Booted.
function VM:reset() end

---ACPI power button: graceful shutdown (-> Shutdown).
function VM:power_button() end

---Scope-end hook: shuts the VM down unless it already is. Idempotent.
function VM:close() end

---Snapshot the VM to `path` (a temp file without it).
---@param path? string
---@return Snapshot
function VM:snapshot(path) end

---Restore from a Snapshot or a snapshot file (VM Created or Shutdown).
---@param snap_or_path Snapshot|string
function VM:restore(snap_or_path) end

---Run a command and wait for it.
---  vm:run("echo hi")                        -- through /bin/sh -c
---  vm:run("echo", {"hi"})                   -- direct exec
---  vm:run("echo", {args = {"hi"}, env = {K = "v"}, timeout = "5s"})
---@param cmd string
---@param args_or_opts? string[]|RunOpts
---@return RunResult
function VM:run(cmd, args_or_opts) end

---Start a command and return at once; `timeout` opts are refused (use
---`proc:wait(timeout)`).
---@param cmd string
---@param args_or_opts? string[]|RunOpts
---@return Process
function VM:run_async(cmd, args_or_opts) end

---The file's contents.
---@param path string
---@return string
function VM:read_file(path) end

---Replace (or create) the file with `data`.
---@param path string
---@param data string
function VM:write_file(path, data) end

---Copy a host file into the guest (relative `host_path`: from this file's
---directory). Inside a fixture the host file joins the cache key.
---@param host_path string
---@param guest_path string
---@param opts? PushFileOpts
function VM:push_file(host_path, guest_path, opts) end

---@param path string
---@return StatResult
function VM:stat(path) end

---Whether `path` exists in the guest. (Extension: not in the reference.)
---@param path string
---@return boolean
function VM:exists(path) end

---@param path string
---@return DirEntry[]
function VM:listdir(path) end

---@param path string
---@param opts? MkdirOpts
function VM:mkdir(path, opts) end

---Remove a file or an empty directory.
---@param path string
function VM:unlink(path) end

---Atomic rename inside the guest.
---@param from string
---@param to string
function VM:rename(from, to) end

---Open a guest file.
---@param path string
---@param mode OpenMode
---@return File
function VM:open_file(path, mode) end

---Stream what is appended to a guest file.
---@param path string
---@param opts? TailOpts
---@return Tail
function VM:tail_file(path, opts) end

---Stream an open file handle (a File or its `fd()`).
---@param fd_or_file integer|File
---@return Tail
function VM:fd_stream(fd_or_file) end

---syscall(2): `vm:syscall(nr, a1, ..., a6)` (integers) or
---`vm:syscall(nr, {args = {...}, bufs = {...}, ptrs = {...}})`.
---@param nr integer
---@param ... integer|SyscallArgs
---@return SyscallResult
function VM:syscall(nr, ...) end

---Bytes of the agent's memory at `addr`, or nil, errno (EIO: unmapped).
---@param addr integer
---@param len integer
---@return string?, integer?
function VM:read_mem(addr, len) end

---ioctl(2) on a guest fd; `data` is passed by pointer and read back.
---@param fd integer
---@param cmd integer
---@param data? string
---@param opts? IoctlOpts
---@return IoctlResult
function VM:ioctl(fd, cmd, data, opts) end

---The NIC on the named bridge, or by guest name ("eth0", "ens3", ...).
---@param name string
---@return Nic
function VM:nic(name) end

---An attached disk by id (raises if there is none).
---@param id string
---@return Disk
function VM:disk(id) end

---Attach a new disk.
---@param opts? AttachDiskOpts
---@return Disk
function VM:attach_disk(opts) end

---@return Console
function VM:console() end

---@return Clock
function VM:clock() end

---A second agent connection to the guest, for concurrent ops.
---@param opts? SpawnWorkerOpts
---@return Worker
function VM:spawn_worker(opts) end

---Queue ops on `b` inside `fn` and send them in one round trip. One result
---per op; a failing op does not stop the rest.
---@param fn fun(b: Batch)
---@return BatchResult[]
function VM:batch(fn) end

---The name given to `lab:vm`.
---@return string
function VM:name() end

---@return string
function VM:profile() end

---@return VMState
function VM:state() end

---The vsock CID; nil before boot.
---@return integer|nil
function VM:cid() end

---True when no op is in flight and no file or stream is open.
---@return boolean
function VM:is_quiescent() end

---@return integer
function VM:open_file_count() end

---@return integer
function VM:open_stream_count() end

---The op collector handed to `vm:batch(fn)`. Each call queues one op.
---@class Batch
local Batch = {}

---@param cmd string
---@param args_or_opts? string[]|RunOpts
function Batch:run(cmd, args_or_opts) end

---@param path string
function Batch:read_file(path) end

---@param path string
---@param data string
function Batch:write_file(path, data) end

---@param path string
function Batch:stat(path) end

---@param path string
function Batch:listdir(path) end

---@param path string
---@param opts? MkdirOpts
function Batch:mkdir(path, opts) end

---@param path string
function Batch:unlink(path) end

---@param from string
---@param to string
function Batch:rename(from, to) end

---Integer-argument form only.
---@param nr integer
---@param ... integer
function Batch:syscall(nr, ...) end

---What `vm:run`, `worker:run` and `proc:wait` return.
---@class RunResult
---@field exit_code integer Exit code; -1 when signalled, -2 when timed out.
---@field stdout string
---@field stderr string
---@field status RunStatus
---@field timed_out boolean
---@field signal integer|nil Signal number when `status` is "signalled".
local RunResult = {}

---`exit_code == 0`.
---@return boolean
function RunResult:ok() end

---Raise unless ok; the message carries status, stdout and stderr. Returns
---the result.
---@return RunResult
function RunResult:assert_ok() end

-- ===========================================================================
-- Process and Worker
-- ===========================================================================

---A guest process started by `vm:run_async` / `worker:run_async`.
---@class Process
local Process = {}

---Wait for exit (forever without `timeout`; `0` is refused).
---@param timeout? Duration
---@return RunResult
function Process:wait(timeout) end

---Send a signal (default SIGTERM).
---@param sig? Signal
function Process:kill(sig) end

---Same as `kill(sig)`.
---@param sig Signal
function Process:signal(sig) end

---The guest PID.
---@return integer
function Process:pid() end

---The agent's handle id.
---@return integer
function Process:handle() end

---Non-blocking poll: "running" while it runs, else its RunResult status.
---@return string
function Process:status() end

---Write to the process's stdin; returns the byte count.
---@param data string
---@return integer
function Process:stdin_write(data) end

function Process:close_stdin() end

---@return Tail
function Process:stdout_stream() end

---@return Tail
function Process:stderr_stream() end

---Scope-end hook: SIGTERM and reap unless already waited. Idempotent.
function Process:close() end

---A separate guest process from `vm:spawn_worker()` (docs/workers.md).
---@class Worker
local Worker = {}

---A syscall in flight from `worker:syscall_async`.
---@class PendingSyscall
local PendingSyscall = {}

---The syscall's result (once; a second await raises).
---@param timeout? number|string
---@return SyscallResult
function PendingSyscall:await(timeout) end

---Same as `vm:run`, run inside the worker process.
---@param cmd string
---@param args_or_opts? string[]|RunOpts
---@return RunResult
function Worker:run(cmd, args_or_opts) end

---Same as `vm:run_async`, run as the worker's child (its uid, fds, cwd);
---the Process sends every later op to the worker.
---@param cmd string
---@param args_or_opts? string[]|RunOpts
---@return Process
function Worker:run_async(cmd, args_or_opts) end

---Same as `vm:open_file`, opened by the worker with its credentials; the
---File sends every later op to the worker.
---@param path string
---@param mode OpenMode
---@return File
function Worker:open_file(path, mode) end

---Same as `vm:syscall`, run in the worker process.
---@param nr integer
---@param ... integer|SyscallArgs
---@return SyscallResult
function Worker:syscall(nr, ...) end

---Send the syscall to the worker and return at once.
---@param nr integer
---@param ... integer|SyscallArgs
---@return PendingSyscall
function Worker:syscall_async(nr, ...) end

---Bytes of the worker's memory, or nil, errno.
---@param addr integer
---@param len integer
---@return string?, integer?
function Worker:read_mem(addr, len) end

---The worker process's guest pid.
---@return integer?
function Worker:pid() end

---Signal every process the worker started and the worker (default SIGTERM).
---@param sig? Signal
function Worker:kill(sig) end

---Wait for every process the worker started, then reap the worker
---(`exit_status = {status, signal}`).
---@param timeout? number
---@return any
function Worker:join(timeout) end

---@return integer
function Worker:handle() end

---Scope-end hook: SIGTERM the worker's processes, then join.
function Worker:close() end

-- ===========================================================================
-- File
-- ===========================================================================

---An open guest file from `vm:open_file` / `worker:open_file`.
---@class File
local File = {}

---Up to `n` bytes; "" at EOF.
---@param n integer
---@return string
function File:read(n) end

---Everything from the cursor to EOF.
---@return string
function File:read_all() end

---Write at the cursor; returns the bytes written.
---@param data string
---@return integer
function File:write(data) end

---Move the cursor; returns the new absolute offset.
---@param offset integer
---@param whence? SeekWhence Default "set".
---@return integer
function File:seek(offset, whence) end

---@return integer
function File:tell() end

---Idempotent; later ops raise "file is closed".
function File:close() end

---The handle id (0 after close).
---@return integer
function File:fd() end

---A Tail from the current cursor.
---@return Tail
function File:tail_stream() end

-- ===========================================================================
-- Streams: Tail, Capture, ConsoleStream
-- ===========================================================================

---@class CreationSite
---@field file string
---@field line integer

---What every stream offers.
---@class Stream
local Stream = {}

---The next chunk, or nil at EOF / timeout (default 10 s).
---@param timeout? Duration
---@return string|nil
function Stream:next(timeout) end

---Read until `pattern` (plain text) appears; returns everything up to and
---including it. Raises on timeout (default 10 s) or EOF.
---@param pattern string
---@param timeout? Duration
---@return string
function Stream:read_until(pattern, timeout) end

---Like `read_until`, discarding the bytes.
---@param pattern string
---@param timeout? Duration
function Stream:expect(pattern, timeout) end

---Every chunk available now (waiting up to `timeout`, default 0.5 s).
---@param timeout? Duration
---@return string[]
function Stream:drain(timeout) end

---Idempotent.
function Stream:close() end

---True at EOF with nothing pending.
---@return boolean
function Stream:eof() end

---The test-file line that opened the stream.
---@return CreationSite|nil
function Stream:creation_site() end

---From `vm:tail_file`, `vm:fd_stream`, `file:tail_stream`,
---`proc:stdout_stream` and `proc:stderr_stream`.
---@class Tail: Stream

---pcap bytes from `bridge:capture` / `nic:capture`.
---@class Capture: Stream

---Console bytes from `console:read()`.
---@class ConsoleStream: Stream

-- ===========================================================================
-- Console, Clock, Snapshot
-- ===========================================================================

---@class ConsoleWriteOpts
---@field timeout? Duration Bound the write (0: none).

---The guest's serial console, from `vm:console()`.
---@class Console
local Console = {}

---A stream of console output.
---@return ConsoleStream
function Console:read() end

---The whole console log so far.
---@return string
function Console:read_log() end

---Wait for `pattern` in the log (default 30 s); returns the match.
---@param pattern string
---@param timeout? Duration
---@return string
function Console:expect(pattern, timeout) end

---@param data string
---@param opts? ConsoleWriteOpts
function Console:write(data, opts) end

---No-op.
function Console:close() end

---The guest's wall clock, from `vm:clock()`.
---@class Clock
local Clock = {}

---Seconds since the epoch.
---@return number
function Clock:get() end

---Nanoseconds since the epoch.
---@return integer
function Clock:get_ns() end

---@param seconds number
function Clock:set(seconds) end

---@param ns integer
function Clock:set_ns(ns) end

---Sleep `duration` (not negative).
---@param duration Duration
function Clock:sleep(duration) end

---Jump the clock by `duration` (may be negative) without waiting.
---@param duration Duration
function Clock:advance(duration) end

---A VM snapshot file, from `vm:snapshot()`.
---@class Snapshot
local Snapshot = {}

---@return string
function Snapshot:path() end

---Bytes (0 once deleted).
---@return integer
function Snapshot:size() end

---Idempotent.
function Snapshot:delete() end

---A lab snapshot directory, from `lab:snapshot()`.
---@class LabSnapshot
local LabSnapshot = {}

---@return string
function LabSnapshot:path() end

---Bytes of the files directly in the directory.
---@return integer
function LabSnapshot:size() end

---Delete the directory. Idempotent.
function LabSnapshot:delete() end

-- ===========================================================================
-- Disk
-- ===========================================================================

---A disk from `vm:attach_disk` / `vm:disk`. Offsets and counts are 512-byte
---sectors.
---@class Disk
local Disk = {}

---Bytes: the image's current size, else the modelled size.
---@return integer
function Disk:size() end

---@param offset integer First sector.
---@param n integer Sector count.
---@return string
function Disk:read_sectors(offset, n) end

---@param offset integer First sector.
---@param data string
function Disk:write_sectors(offset, data) end

---@param mode FaultMode
function Disk:fault_inject(mode) end

function Disk:clear_faults() end

---@return FaultMode[]
function Disk:active_faults() end

function Disk:detach() end

---@return boolean
function Disk:is_detached() end

---@return string
function Disk:id() end

---The guest's device node ("/dev/vdb"), or nil while the guest does not
---see the disk. (Extension: not in the reference.)
---@return string|nil
function Disk:guest_device() end

---The VM loses power: it stops dead and its boot-time disks lose every
---write the guest has not flushed. (Extension: docs/disks.md.)
function Disk:power_cut() end

-- ===========================================================================
-- Bridge and Nic
-- ===========================================================================

---@class Direction
---@field from VM|string
---@field to VM|string

---@class DirectionalLatency: Direction
---@field ms number

---@class DirectionalDrop: Direction
---@field p number Percent.

---@class DirectionalBandwidth: Direction
---@field bps integer Bits per second.

---@class NicCounters
---@field rx_bytes integer Bytes the guest received.
---@field tx_bytes integer Bytes the guest sent.
---@field rx_packets integer
---@field tx_packets integer
---@field errors integer

---A virtual network from `lab:bridge(name)`.
---@class Bridge
local Bridge = {}

---@param vm_or_list VM|string|(VM|string)[]
function Bridge:attach(vm_or_list) end

---@param vm VM|string
function Bridge:detach(vm) end

---Names of the attached VMs.
---@return string[]
function Bridge:members() end

---Drop A<->B traffic (`partition(a, b)`) or only A->B (`partition({from=, to=})`).
---@param a VM|string|Direction
---@param b? VM|string
function Bridge:partition(a, b) end

---@param a VM|string|Direction
---@param b? VM|string
function Bridge:unpartition(a, b) end

function Bridge:partition_all() end

function Bridge:restore_all() end

---@param a VM|string
---@param b VM|string
---@return boolean
function Bridge:is_partitioned(a, b) end

---@param ms_or_table number|DirectionalLatency
function Bridge:add_latency(ms_or_table) end

---@param pct_or_table number|DirectionalDrop
function Bridge:drop_rate(pct_or_table) end

---@param bps_or_table integer|DirectionalBandwidth
function Bridge:bandwidth_limit(bps_or_table) end

---@param spec DirectionalLatency
function Bridge:add_directional_latency(spec) end

---@param spec DirectionalDrop
function Bridge:directional_drop_rate(spec) end

---Remove every impairment and partition.
function Bridge:reset() end

---@return number
function Bridge:latency_ms() end

---@return number
function Bridge:drop_rate_pct() end

---@return integer
function Bridge:bandwidth_bps() end

---@param vm VM|string
function Bridge:isolate(vm) end

---@param vm VM|string
function Bridge:unisolate(vm) end

---@param vm VM|string
---@return boolean
function Bridge:is_isolated(vm) end

---@param other Bridge|string|(Bridge|string)[]
function Bridge:route(other) end

---@return string[]
function Bridge:routes() end

function Bridge:enable_uplink() end

function Bridge:disable_uplink() end

---@param vm VM|string
---@return Nic
function Bridge:nic(vm) end

---@return Capture
function Bridge:capture() end

---Scope-end hook. Idempotent.
function Bridge:close() end

---@return string
function Bridge:name() end

---One VM's attachment to one bridge.
---@class Nic
local Nic = {}

---@return NicCounters
function Nic:counters() end

---@return Capture
function Nic:capture() end

---Link down.
function Nic:disconnect() end

---Link up.
function Nic:reconnect() end

---@return string
function Nic:vm_name() end

---The bridge's name.
---@return string
function Nic:bridge() end

-- ===========================================================================
-- Other globals
-- ===========================================================================

---The coroutine library, as the reference's barrier examples use it.
---(Extension.)
co = coroutine

---Sleep on the host (seconds). Internal; used by wait_until.
---@param seconds number
function _provium_sleep(seconds) end

---Host wall-clock time in seconds. Internal.
---@return number
function _provium_now() end
