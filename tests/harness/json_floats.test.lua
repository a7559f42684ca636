-- json_floats.test.lua — json.encode writes floats the way serde_json does.

test("float layout", function(t)
	local cases = {
		{1.5, "1.5"}, {3.0, "3.0"}, {-0.0, "-0.0"}, {0.1, "0.1"},
		{1e15, "1000000000000000.0"}, {1e16, "1e16"}, {1.5e16, "1.5e16"},
		{1e-5, "0.00001"}, {1e-6, "1e-6"}, {1.5e-7, "1.5e-7"},
		{5e-324, "5e-324"}, {1e300, "1e300"}, {-2.5e-10, "-2.5e-10"},
		{1.7976931348623157e308, "1.7976931348623157e308"}, {1 / 3, "0.3333333333333333"},
	}
	for _, c in ipairs(cases) do
		local s = json.encode(c[1])
		t:assert_eq(s, c[2])
		t:assert_eq(json.decode(s), c[1])
		t:assert_eq(math.type(json.decode(s)), "float")
	end
end)
