test("first", function(t) end)
test("exits", function(t) os.exit(3) end)
test("never reached", function(t) end)
