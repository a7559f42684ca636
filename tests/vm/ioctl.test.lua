-- vm:ioctl against the VM reference page, on a real guest: a plain ioctl
-- whose answer comes back in data (FIONREAD on a regular file), an ioctl
-- whose struct points at a second buffer (SIOCGIFCONF: struct ifconf
-- {int ifc_len; char *ifc_buf} — opts.bufs + opts.ptr_offsets), the
-- pointers landing where ptr_offsets says, and clear errors for bad
-- offsets. x86_64 constants and layouts.
local vm = provium:vm("v", "default"):boot()

local FIONREAD = 0x541B
local SIOCGIFCONF = 0x8912
local IFREQ = 40                      -- sizeof(struct ifreq) on x86_64

local function err_of(f, ...)
	local ok, e = pcall(f, ...)
	assert(not ok, "expected an error")
	return tostring(e)
end

test("plain data ioctl: FIONREAD on a regular file", function(t)
	vm:write_file("/tmp/ioctl-file", "abcdef")
	local f = vm:open_file("/tmp/ioctl-file", {read = true})
	local r = vm:ioctl(f:fd(), FIONREAD, "\0\0\0\0")
	t:assert_eq(r.ret, 0)
	t:assert_eq(r.result, 0)
	t:assert_eq(r.errno, 0)
	t:assert_eq(string.unpack("<i4", r.out_data), 6)
	t:assert_eq(#r.out_bufs, 0)
	t:assert_eq(f:read(2), "ab")
	-- the File itself is accepted as the descriptor
	r = vm:ioctl(f, FIONREAD, "\0\0\0\0")
	t:assert_eq(string.unpack("<i4", r.out_data), 4)
	f:close()
	-- a bad descriptor is a result, not an error
	r = vm:ioctl(-1, FIONREAD, "\0\0\0\0")
	t:assert_eq(r.ret, -1)
	t:assert_eq(r.errno, 9)          -- EBADF
end)

test("nested pointer: SIOCGIFCONF fills the buffer ifc_buf points at", function(t)
	-- socket(AF_INET, SOCK_DGRAM, 0) runs in the agent's op server, so
	-- the descriptor stays valid for the following calls.
	local s = vm:syscall(41, 2, 2, 0)
	t:assert(s.ret >= 3, "socket: ret " .. s.ret .. " errno " .. s.errno)
	local fd = s.ret

	-- ifc_buf = NULL (no buffer): the kernel only reports the size needed
	local q = vm:ioctl(fd, SIOCGIFCONF, string.pack("<i4i4I8", 0, 0, 0))
	t:assert_eq(q.ret, 0)
	local need = string.unpack("<i4", q.out_data)
	t:assert(need >= IFREQ and need % IFREQ == 0, "size query said " .. need)

	-- ifc_buf = the address of bufs[1], written at offset 8 of data
	local cap = 8 * IFREQ
	local r = vm:ioctl(fd, SIOCGIFCONF, string.pack("<i4i4I8", cap, 0, 0),
	                   {bufs = {string.rep("\0", cap)}, ptr_offsets = {8}})
	t:assert_eq(r.ret, 0, "errno " .. tostring(r.errno))
	t:assert_eq(r.errno, 0)
	local len, _, ptr = string.unpack("<i4i4I8", r.out_data)
	t:assert_eq(len, need)
	t:assert(ptr ~= 0, "ifc_buf was not patched")
	t:assert_eq(#r.out_bufs, 1)
	local buf = r.out_bufs[1]
	t:assert_eq(#buf, cap)
	local found = false
	for off = 0, len - IFREQ, IFREQ do
		local name = buf:sub(off + 1, off + 16):match("^[^%z]*")
		if name == "lo" then
			local family = string.unpack("<I2", buf, off + 17)
			t:assert_eq(family, 2)                      -- AF_INET
			t:assert_eq(buf:sub(off + 21, off + 24), "\127\0\0\1")
			found = true
		end
	end
	t:assert(found, "no lo entry in " .. len .. " bytes")
	t:assert_eq(vm:syscall(3, fd).ret, 0)           -- close
end)

test("several buffers: each address lands at its offset, in order", function(t)
	-- EBADF before the kernel reads anything: only the patching is observed
	local r = vm:ioctl(-1, FIONREAD, string.rep("\0", 24),
	                   {bufs = {"A", "BB"}, ptr_offsets = {16, 0}})
	t:assert_eq(r.errno, 9)
	local p2, mid, p1 = string.unpack("<I8I8I8", r.out_data)
	t:assert(p1 ~= 0 and p2 ~= 0 and p1 ~= p2, ("pointers %x %x"):format(p1, p2))
	t:assert_eq(mid, 0)
	t:assert_eq(r.out_bufs[1], "A")
	t:assert_eq(r.out_bufs[2], "BB")
end)

test("bad ptr_offsets are refused with a clear error", function(t)
	local data = string.rep("\0", 16)
	local e = err_of(vm.ioctl, vm, -1, FIONREAD, data, {bufs = {"x"}, ptr_offsets = {9}})
	t:assert(e:find("ptr_offsets[1] = 9 is out of range", 1, true), e)
	t:assert(e:find("16 bytes", 1, true), e)
	e = err_of(vm.ioctl, vm, -1, FIONREAD, data, {bufs = {"x"}, ptr_offsets = {-1}})
	t:assert(e:find("ptr_offsets[1] = -1 is out of range", 1, true), e)
	e = err_of(vm.ioctl, vm, -1, FIONREAD, data, {bufs = {"x", "y"}, ptr_offsets = {0}})
	t:assert(e:find("one offset", 1, true), e)
	e = err_of(vm.ioctl, vm, -1, FIONREAD, data, {bufs = {"x"}, ptr_offsets = {"8"}})
	t:assert(e:find("ptr_offsets[1] must be an integer", 1, true), e)
	e = err_of(vm.ioctl, vm, -1, FIONREAD, nil, {bufs = {"x"}, ptr_offsets = {0}})
	t:assert(e:find("needs data", 1, true), e)
	-- the guest is unharmed
	t:assert_eq(vm:run("echo ok").stdout, "ok\n")
end)
