-- A helper module in a subdirectory: its relative push_file paths resolve
-- against this directory (vm_local_push_file.test.lua).
local M = {}
function M.push(vm, dest)
	vm:push_file("push_data.txt", dest)
end
function M.push_parent(vm, dest)
	vm:push_file("../push_data.txt", dest)
end
return M
