-- Two claims in one file: the chunk errors, the file fails.
provium:claim({memory = "512M", cpus = 1})
provium:claim({cpus = 1})

test("never runs", function(t) end)
