# mk/fuzz.mk — libFuzzer harnesses (tests/fuzz/fuzz_*.c).
#
#   make fuzz     build/fuzz/fuzz_<target> for every tests/fuzz/fuzz_*.c,
#                 clang -fsanitize=fuzzer,address,undefined
#   bash tests/fuzz/run.sh            smoke run of each (part of make check)
#   build/fuzz/fuzz_toml -max_total_time=600 tests/fuzz/corpus/toml
#
# The host and agent sources are compiled again with clang, with
# -DPROVIUM_FUZZ (the fuzzing entry points of dispatch.c and the agent's
# server.c), into build/fuzz/ only: never mixed with the gcc objects of
# build/obj.

FUZZ_CC    ?= clang
FUZZ_B     := $(B)/fuzz
FUZZ_SAN   := -fsanitize=address,undefined -fno-sanitize-recover=undefined \
              -fno-omit-frame-pointer
FUZZ_CFLAGS := -O1 -g $(FUZZ_SAN) -fsanitize=fuzzer-no-link -DPROVIUM_FUZZ \
              -std=c11 -D_GNU_SOURCE -Wall -Wextra -Wno-unused-parameter -Wno-sometimes-uninitialized -Isrc -Isrc/host \
              $(shell pkg-config --cflags $(PKGS) 2>/dev/null) \
              -DPROVIUM_VERSION='"$(VERSION)"'
FUZZ_LDFLAGS := $(FUZZ_SAN) -fsanitize=fuzzer

FUZZ_SRCS  := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BINS  := $(patsubst tests/fuzz/%.c,$(FUZZ_B)/%,$(FUZZ_SRCS))
FUZZ_HOST_OBJS := $(patsubst %.c,$(FUZZ_B)/obj/%.o,$(HOST_LIB_SRCS)) \
                  $(patsubst src/host/lua/%.lua,$(FUZZ_B)/gen/%_lua.o,$(LUA_EMBED))
FUZZ_AGENT_SRCS := $(filter-out src/agent/main.c,$(wildcard src/agent/*.c)) $(wildcard src/proto/*.c)
FUZZ_AGENT_OBJS := $(patsubst %.c,$(FUZZ_B)/agent-obj/%.o,$(FUZZ_AGENT_SRCS))

$(FUZZ_B)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $< (fuzz)")
	$(Q)$(FUZZ_CC) $(FUZZ_CFLAGS) -MMD -MP -c $< -o $@
$(FUZZ_B)/agent-obj/%.o: %.c
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $< (fuzz agent)")
	$(Q)$(FUZZ_CC) $(FUZZ_CFLAGS) -MMD -MP -c $< -o $@

$(FUZZ_B)/gen/%_lua.o: $(B)/gen/%_lua.S src/host/lua/%.lua
	@mkdir -p $(dir $@)
	$(Q)$(FUZZ_CC) -c $< -o $@

$(FUZZ_B)/libprovium.a: $(FUZZ_HOST_OBJS)
	$(Q)rm -f $@ && ar rcs $@ $^
$(FUZZ_B)/libagent.a: $(FUZZ_AGENT_OBJS)
	$(Q)rm -f $@ && ar rcs $@ $^

# The agent's server is a different program: its harness links the agent
# objects, every other harness the host library.
$(FUZZ_B)/fuzz_agent_server: $(FUZZ_B)/obj/tests/fuzz/fuzz_agent_server.o $(FUZZ_B)/libagent.a
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(FUZZ_CC) $(FUZZ_LDFLAGS) -o $@ $^ -lmsgpackc
$(FUZZ_B)/fuzz_%: $(FUZZ_B)/obj/tests/fuzz/fuzz_%.o $(FUZZ_B)/libprovium.a
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(FUZZ_CC) $(FUZZ_LDFLAGS) -o $@ $^ $(ALL_LDLIBS)

fuzz: $(FUZZ_BINS)

.PHONY: fuzz
-include $(shell find $(FUZZ_B) -name '*.d' 2>/dev/null)
