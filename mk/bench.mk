# Helpers for bench/run.sh (not part of `all`).
$(B)/ramsum-check: $(B)/obj/src/tools/ramsum-check.o $(B)/libprovium.a
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $^ $(ALL_LDLIBS)

bench-tools: $(B)/ramsum-check
.PHONY: bench-tools
