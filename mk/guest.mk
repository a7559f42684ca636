# mk/guest.mk — the guest side: the static agent and the guest kit.
#
#   make agent    build/provium-agent (static; src/agent/*.c + src/proto/*.c
#                 + libmsgpackc.a)
#   make guest    build/guest/{vmlinuz,initrd.cpio.gz,agent-overlay.cpio.gz,
#                 manifest.txt} from Debian packages (guest/build-kit.sh)
#   make guest-smoke  boot the kit under TCG and drive the agent
#                 (tests/guest/smoke.sh)
#
# Nothing here is part of `all`: the kit needs apt and a download.

AGENT_SRCS := $(wildcard src/agent/*.c) $(wildcard src/proto/*.c)
AGENT_OBJS := $(patsubst %.c,$(B)/agent-obj/%.o,$(AGENT_SRCS))
AGENT_CFLAGS := -O2 -g -std=c11 -D_GNU_SOURCE $(WARN) -Isrc \
                -DPROVIUM_VERSION='"$(VERSION)"'
MSGPACK_A ?= /usr/lib/x86_64-linux-gnu/libmsgpackc.a

$(B)/agent-obj/%.o: %.c
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $< (agent)")
	$(Q)$(CC) $(AGENT_CFLAGS) -MMD -MP -c $< -o $@

$(B)/provium-agent: $(AGENT_OBJS)
	@$(if $(Q),echo "  LD      $@ (static)")
	$(Q)$(CC) -static -o $@ $^ $(MSGPACK_A)

agent: $(B)/provium-agent

GUEST_DIR := $(B)/guest
GUEST_OUT := $(GUEST_DIR)/vmlinuz $(GUEST_DIR)/initrd.cpio.gz \
             $(GUEST_DIR)/agent-overlay.cpio.gz $(GUEST_DIR)/manifest.txt

# The script itself is incremental (stamps per step); make only decides
# whether to call it: inputs are the agent, the scripts and the module list.
$(GUEST_DIR)/.kit-stamp: $(B)/provium-agent guest/build-kit.sh guest/modules.list
	$(Q)bash guest/build-kit.sh $(B)/provium-agent $(GUEST_DIR)
	@touch $@

guest: $(GUEST_DIR)/.kit-stamp

guest-smoke: guest
	$(Q)bash tests/guest/smoke.sh

.PHONY: agent guest guest-smoke
-include $(shell find $(B)/agent-obj -name '*.d' 2>/dev/null)
