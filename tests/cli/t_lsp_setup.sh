#!/usr/bin/env bash
# `provium lsp-setup [DIR] [--force]` (reference: 500-reference/1600-cli.md):
# the files it writes, what it prints, its exit codes, and stubs that cover
# every class and method of the 500-reference pages, parse as Lua and name
# only types they declare.
. "$(dirname "$0")/cli/lib.sh"
command -v luac5.4 >/dev/null && command -v lua5.4 >/dev/null ||
	fail "lua5.4 / luac5.4 missing (tools/setup-deps.sh installs package lua5.4)"
mkdir -p "$T/p"
TY=$T/p/.provium-meta/types.lua

# -- fresh directory: both files, the reference's messages, exit 0 ---------
run "$P" lsp-setup "$T/p"
expect_rc 0 "lsp-setup"
[ "$out" = "  wrote $T/p/.provium-meta/types.lua
  wrote $T/p/.luarc.json

  Reload your editor's Lua server. \`test\`, \`provium\`, \`wait_until\`, and \`json\` should now be recognised." ] ||
	fail "lsp-setup output: $out"
[ -z "$err" ] || fail "lsp-setup wrote to stderr: $err"
[ -f "$TY" ] || fail "types.lua not written"
python3 - "$T/p/.luarc.json" <<'PY' || fail ".luarc.json content"
import json, sys
c = json.load(open(sys.argv[1]))
assert c["runtime.version"] == "Lua 5.4", c
assert c["workspace.library"] == [".provium-meta"], c
assert c["workspace.checkThirdParty"] is False, c
assert set(c["diagnostics.globals"]) >= {"test", "todo", "wait_until", "provium", "json"}, c
PY
ok "lsp-setup writes .provium-meta/types.lua and .luarc.json"

# -- the stub file: valid Lua, loadable, ---@meta ---------------------------
head -n 1 "$TY" | grep -qx -- '---@meta' || fail "types.lua does not start with ---@meta"
luac5.4 -p "$TY" || fail "types.lua does not parse"
lua5.4 - "$TY" <<'LUA' || fail "types.lua does not load in lua5.4"
dofile(arg[1])
for _, g in ipairs({"test", "todo", "wait_until", "_provium_sleep"}) do
	assert(type(_G[g]) == "function", g .. " is not declared as a function")
end
assert(type(json.encode) == "function" and type(json.decode) == "function", "json")
LUA
ok "types.lua is valid Lua"

# -- every documented class and method ------------------------------------
ty=$(cat "$TY")
for c in TestContext TestMeta Lab Provium VM RunResult Batch Process Worker File \
	Stream Tail Capture ConsoleStream Console Clock Snapshot LabSnapshot Disk Bridge Nic \
	BootOpts RunOpts OpenMode StatResult DirEntry SyscallResult IoctlResult NicCounters json; do
	grep -qE -- "^---@class $c(:|\$)" "$TY" || fail "no ---@class $c"
done
# test framework, json, Lab (provium), VM, batch, RunResult, Process,
# Worker, File, streams, Console, Clock, Snapshot/LabSnapshot, Disk,
# Bridge, Nic: one line per reference page.
while read -r cls methods; do
	for m in $methods; do
		case $cls in
		json) expect_in "$ty" "function json.$m(" "json.$m" ;;
		*) expect_in "$ty" "function $cls:$m(" "$cls:$m" ;;
		esac
	done
done <<'API'
TestContext assert assert_eq assert_neq assert_contains assert_raises fail skip log
json encode decode
Lab vm bridge lab depends_on_file include remove members vm_names bridge_names sub_lab_names boot shutdown pause resume claim barrier snapshot restore vm_fixture lab_fixture pack unpack name
VM boot pause resume shutdown reset power_button close snapshot restore run run_async read_file write_file push_file stat listdir mkdir unlink rename open_file tail_file fd_stream syscall ioctl nic disk attach_disk console clock spawn_worker batch name profile state cid is_quiescent open_file_count open_stream_count
Batch run read_file write_file stat listdir mkdir unlink rename syscall
RunResult ok assert_ok
Process wait kill signal pid handle status stdin_write close_stdin stdout_stream stderr_stream close
Worker run run_async open_file syscall kill join handle close
File read read_all write seek tell close fd tail_stream
Stream next read_until expect drain close eof creation_site
Console read read_log expect write close
Clock get get_ns set set_ns sleep advance
Snapshot path size delete
LabSnapshot path size delete
Disk size read_sectors write_sectors fault_inject clear_faults active_faults detach is_detached id guest_device
Bridge attach detach members partition unpartition partition_all restore_all is_partitioned add_latency drop_rate bandwidth_limit add_directional_latency directional_drop_rate reset latency_ms drop_rate_pct bandwidth_bps isolate unisolate is_isolated route routes enable_uplink disable_uplink nic capture close name
Nic counters capture disconnect reconnect vm_name bridge
API
for g in "function test(name, meta, fn)" "function todo(reason)" "function wait_until(predicate, opts)" \
	"---@type Provium" "provium = nil" "json = {}"; do
	expect_in "$ty" "$g" "global: $g"
done
# documented fields and typed returns
for f in "---@field exit_code integer" "---@field stdout string" "---@field stderr string" \
	"---@field status RunStatus" "---@field timed_out boolean" "---@field signal integer|nil" \
	"---@field name string" "---@field meta TestMeta" \
	"---@field timeout? Duration" "---@field reset_between_tests? boolean" \
	"---@field slow? " "---@field skip? " "---@field tags? string|string[]" "---@field spec? string" \
	"---@field entry_type EntryType" "---@field mtime_ns integer" "---@field out_bufs string[]" \
	"---@alias VMState \"created\"|\"booted\"|\"paused\"|\"shutdown\"|\"dead\""; do
	expect_in "$ty" "$f" "field: $f"
done
# methods the API does not have
for bad in "function VM:spawn(" "function VM:kill(" "assert_ne(" ; do
	expect_not_in "$ty" "$bad" "undocumented $bad"
done
ok "stubs cover every documented class and method"

# -- every type an annotation names is declared (or a Lua builtin) ----------
python3 - "$TY" <<'PY' || fail "stub annotations name undeclared types"
import re, sys
src = open(sys.argv[1]).read()
declared = set(re.findall(r"^---@(?:class|alias) ([A-Za-z_][\w.]*)", src, re.M))
builtin = {"any", "nil", "boolean", "string", "number", "integer", "table", "function",
           "fun", "userdata", "thread", "T", "self"}
bad = set()
for line in src.splitlines():
    m = re.match(r"---@(param|return|field|type|overload|generic)\s+(.*)", line)
    if not m:
        continue
    kind, rest = m.groups()
    if kind == "generic":
        continue
    if kind == "param":
        rest = rest.split(None, 1)[1] if " " in rest else ""
    elif kind == "field":
        rest = re.sub(r"^(\[string\]|[\w]+\??)\s+", "", rest)
    typ = rest if kind == "overload" else rest.split(" ", 1)[0]
    typ = re.sub(r'"[^"]*"', "", typ)           # string literal types
    for name in re.findall(r"[A-Za-z_][\w.]*", typ):
        if name in builtin or name in declared:
            continue
        if re.search(r"[{(,]\s*" + name + r"\??\s*:", typ):
            continue                              # a parameter / key name
        bad.add((name, line))
for name, line in sorted(bad):
    print("undeclared type", name, "in:", line)
sys.exit(1 if bad else 0)
PY
ok "every annotated type is declared"

# -- existing .luarc.json: kept, snippet printed, exit 0; types.lua still refreshed
echo '{"mine": true}' >"$T/p/.luarc.json"
echo 'garbage' >"$TY"
run "$P" lsp-setup "$T/p"
expect_rc 0 "lsp-setup over an existing .luarc.json"
expect_in "$out" "  wrote $TY" "types.lua still written"
expect_in "$out" "  $T/p/.luarc.json already exists; not overwriting (pass --force to replace)." "refusal"
expect_in "$out" "  to enable provium types, merge this into the existing config:" "merge pointer"
expect_in "$out" '    "workspace.library": [".provium-meta"],' "indented snippet"
grep -q mine "$T/p/.luarc.json" || fail ".luarc.json replaced without --force"
head -n 1 "$TY" | grep -qx -- '---@meta' || fail "types.lua not refreshed"
run "$P" lsp-setup "$T/p" --force
expect_rc 0 "lsp-setup --force"
expect_in "$out" "  wrote $T/p/.luarc.json" "--force writes .luarc.json"
grep -q mine "$T/p/.luarc.json" && fail "--force did not replace .luarc.json"
ok "existing .luarc.json kept unless --force"

# -- DIR defaults to the current directory; no config or preflight needed ---
mkdir -p "$T/cwd"
echo 'this is [not toml' >"$T/cwd/provium.toml"
(cd "$T/cwd" && "$P" lsp-setup >"$T/.out" 2>"$T/.err"); rc=$?; out=$(cat "$T/.out"); err=$(cat "$T/.err")
expect_rc 0 "lsp-setup in the current directory (broken provium.toml ignored)"
expect_in "$out" "  wrote ./.provium-meta/types.lua" "default DIR is ."
[ -f "$T/cwd/.luarc.json" ] || fail ".luarc.json not written in the cwd"
# a trailing slash does not double up in the printed paths
mkdir -p "$T/s"
run "$P" lsp-setup "$T/s/"
expect_rc 0 "lsp-setup DIR/"
expect_in "$out" "  wrote $T/s/.provium-meta/types.lua" "path with a trailing slash"
ok "DIR defaults to ."

# -- not a directory: exit 2 -------------------------------------------------
run "$P" lsp-setup "$T/missing"
expect_rc 2 "lsp-setup on a missing dir"
expect_in "$err" "provium: \`$T/missing\` is not a directory" "missing dir message"
touch "$T/file"
run "$P" lsp-setup "$T/file"
expect_rc 2 "lsp-setup on a regular file"
expect_in "$err" "is not a directory" "regular file message"
ok "lsp-setup on a non-directory exits 2"
