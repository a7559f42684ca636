# provium — one GNU Makefile for the host binary, tools, unit tests and checks.
#
#   make            build/provium and build/toml-decode
#   make check      every test; ends with "N passed, N failed, N skipped"
#   make demo       install what is missing, build, run examples/
#   make install PREFIX=/usr/local   (binary, guest kit, man page, completions)
#   make asan       build/asan/: provium and unit tests with ASan+UBSan
#   make fuzz       build/fuzz/: libFuzzer harnesses (mk/fuzz.mk, tests/fuzz/)
#   make test-tools build/test-tools/: C helpers the cli tests drive
#
# CFLAGS, LDFLAGS, LDLIBS and CC may be given on the command line
# (`make CFLAGS=-O0`, `make CC=clang`): both build warning-free.
#
# Objects live under build/. Quiet "CC x.o" lines; V=1 shows full commands.

PREFIX  ?= /usr/local
CC      ?= cc
VERSION := $(shell git describe --always --dirty 2>/dev/null || echo unknown)

WARN    := -Wall -Wextra -Wshadow -Wmissing-prototypes -Wstrict-prototypes \
           -Wwrite-strings -Wpointer-arith -Wcast-qual -Wformat=2 \
           -Wundef -Wvla -Wno-unused-parameter
PKGS    := lua5.4 msgpack jansson libzstd libcrypto libedit libcurl
# git-style: CFLAGS / LDFLAGS / LDLIBS are the user's (`make CFLAGS=-O0`,
# `make CC=clang`); what the build needs is added in ALL_* so a value given
# on the command line never drops the include paths or the warnings.
CFLAGS  ?= -O2 -g
BASIC_CFLAGS := -std=c11 -D_GNU_SOURCE $(WARN) -Isrc -Isrc/host \
           $(shell pkg-config --cflags $(PKGS) 2>/dev/null) \
           -DPROVIUM_VERSION='"$(VERSION)"'
ALL_CFLAGS = $(BASIC_CFLAGS) $(CFLAGS)
ALL_LDFLAGS = $(LDFLAGS)
# libslirp (the bridge uplink) is linked directly: its .pc file pulls in
# glib-2.0 for nothing, the header needs none.
LIBS    := $(shell pkg-config --libs $(PKGS) 2>/dev/null || echo -llua5.4 -lmsgpackc -ljansson -lzstd -lcrypto -ledit -lcurl) \
           -lslirp -lxxhash -lpthread -lm
ALL_LDLIBS = $(LIBS) $(LDLIBS)

ifeq ($(V),1)
Q :=
else
Q := @
endif

B := build

HOST_SRCS := $(wildcard src/host/*.c src/host/*/*.c src/proto/*.c)
HOST_MAIN := src/host/main.c
HOST_LIB_SRCS := $(filter-out $(HOST_MAIN),$(HOST_SRCS))
LUA_EMBED := $(wildcard src/host/lua/*.lua)

HOST_LIB_OBJS := $(patsubst %.c,$(B)/obj/%.o,$(HOST_LIB_SRCS)) \
                 $(patsubst src/host/lua/%.lua,$(B)/gen/%_lua.o,$(LUA_EMBED))
UNIT_SRCS := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(patsubst tests/unit/%.c,$(B)/tests/%,$(UNIT_SRCS))

all: $(B)/provium $(B)/toml-decode

$(B)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(ALL_CFLAGS) -MMD -MP -c $< -o $@

# Lua preludes are embedded with .incbin: symbols embedded_<name>_lua[_end].
$(B)/gen/%_lua.S: src/host/lua/%.lua
	@mkdir -p $(dir $@)
	@printf '\t.section .rodata\n\t.global embedded_%s_lua\n\t.global embedded_%s_lua_end\nembedded_%s_lua:\n\t.incbin "%s"\nembedded_%s_lua_end:\n\t.byte 0\n\t.section .note.GNU-stack,"",@progbits\n' \
	  $* $* $* $< $* > $@
$(B)/gen/%_lua.o: $(B)/gen/%_lua.S src/host/lua/%.lua
	@$(if $(Q),echo "  EMBED   $*.lua")
	$(Q)$(CC) -c $< -o $@

$(B)/libprovium.a: $(HOST_LIB_OBJS)
	$(Q)rm -f $@ && ar rcs $@ $^

$(B)/provium: $(B)/obj/$(HOST_MAIN:.c=.o) $(B)/libprovium.a
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $^ $(ALL_LDLIBS)

$(B)/toml-decode: $(B)/obj/src/tools/toml-decode.o $(B)/libprovium.a
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $^ $(ALL_LDLIBS)

$(B)/tests/%: $(B)/obj/tests/unit/%.o $(B)/libprovium.a
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $^ $(ALL_LDLIBS) -lcmocka

unit: $(UNIT_BINS)

# Helper programs the cli tests drive (t_vm_reconnect.sh, t_qmp_live.sh),
# built with the project's flags and warnings like everything else.
TEST_TOOLS := $(B)/test-tools/qemu-drive $(B)/test-tools/qmp-probe
$(B)/test-tools/qemu-drive: $(B)/obj/tests/cli/vm/qemu-drive.o $(B)/libprovium.a
$(B)/test-tools/qmp-probe: $(B)/obj/tests/tools/qmp-probe.o $(B)/libprovium.a
$(TEST_TOOLS):
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $^ $(ALL_LDLIBS)

test-tools: $(TEST_TOOLS)

-include mk/*.mk

# The guest kit is built first so every suite that boots guests runs.
check: all unit test-tools
	@$(MAKE) --no-print-directory guest
	@bash tests/run-all.sh

# A sanitizer build of the host side (not the static agent) in its own
# tree, sharing the guest kit. Runners check themselves for leaks before
# they exit (dispatch.c). Use it as e.g.
#   ASAN_OPTIONS=log_path=/tmp/asan PROVIUM_BIN=$PWD/build/asan/provium bash tests/cli/run.sh
SAN_FLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer
asan:
	@CFLAGS='-O1 -g $(SAN_FLAGS)' LDFLAGS='$(SAN_FLAGS)' \
	  $(MAKE) --no-print-directory B=$(B)/asan all unit test-tools
	@ln -sfn ../guest $(B)/asan/guest

# The demo: install what is missing, build provium and the guest kit, run
# the example suite on real guests (TCG).
demo:
	@bash tools/setup-deps.sh
	@$(MAKE) --no-print-directory all guest
	@cd examples && ../$(B)/provium -v

# Installs the binary and, when built (`make guest`), the guest kit where
# the built-in `default` profile and the overlay lookup find it.
# The man page and the shell completions (tests/cli/t_man_completion.sh
# checks them against --help).
install-docs:
	install -d $(DESTDIR)$(PREFIX)/share/man/man1 \
	  $(DESTDIR)$(PREFIX)/share/bash-completion/completions \
	  $(DESTDIR)$(PREFIX)/share/zsh/vendor-completions
	install -m 644 docs/provium.1 $(DESTDIR)$(PREFIX)/share/man/man1/provium.1
	install -m 644 completions/provium.bash $(DESTDIR)$(PREFIX)/share/bash-completion/completions/provium
	install -m 644 completions/_provium $(DESTDIR)$(PREFIX)/share/zsh/vendor-completions/_provium

install: all install-docs
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/provium/guest
	install -m 755 $(B)/provium $(DESTDIR)$(PREFIX)/bin/provium
	for f in vmlinuz initrd.cpio.gz agent-overlay.cpio.gz manifest.txt; do \
	  if [ -f $(B)/guest/$$f ]; then install -m 644 $(B)/guest/$$f $(DESTDIR)$(PREFIX)/share/provium/guest/$$f; fi; \
	done
	if [ -f $(B)/guest/agent-overlay.cpio.gz ]; then \
	  install -m 644 $(B)/guest/agent-overlay.cpio.gz $(DESTDIR)$(PREFIX)/share/provium/agent-overlay.cpio.gz; fi

clean:
	rm -rf $(B)

.PHONY: all unit test-tools check asan demo install install-docs clean
-include $(shell find $(B)/obj -name '*.d' 2>/dev/null)

# Keep intermediate objects (no "rm build/obj/..." noise after a build).
.SECONDARY:
