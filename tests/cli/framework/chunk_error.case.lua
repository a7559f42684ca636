test("never runs", function(t) end)
local cfg = nil
print(cfg.missing)
