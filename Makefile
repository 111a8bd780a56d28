# stasis build. Plain make: the tree is small, the rules are explicit, and nothing beyond
# gcc, protoc-c and pkg-config is needed (see docs/ARCHITECTURE.md, "Build").
CC      ?= gcc
BUILD   ?= build
SAN     ?=
CFLAGS_BASE := -std=gnu11 -O2 -g -D_GNU_SOURCE -Wall -Wextra -Werror \
	-Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wformat=2 -Wformat-security \
	-Wundef -Wpointer-arith -Wcast-align -Wwrite-strings -Wvla -Wnull-dereference \
	-Wimplicit-fallthrough -Wno-missing-field-initializers -Werror=return-type \
	-fno-strict-aliasing -fstack-protector-strong
comma := ,
SAN_FLAGS := -fsanitize=address$(comma)undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
ifeq ($(SAN),1)
CFLAGS_BASE += $(SAN_FLAGS)
LDFLAGS += -fsanitize=address$(comma)undefined
endif
INCS    := -Isrc -I$(BUILD)/gen
# One section per function and object: the helper's link keeps only what it reaches.
# -fPIC: the same objects make the static library (the programs, the tests) and
# libstasis.so (the public API, include/stasis.h)
CFLAGS  := $(CFLAGS_BASE) $(INCS) -ffunction-sections -fdata-sections -fPIC $(EXTRA_CFLAGS)
LIBS    := -lprotobuf-c -lxxhash -lzstd -lnftables -lpthread

PROTO   := src/image/stasis.proto
GEN_C   := $(BUILD)/gen/image/stasis.pb-c.c
GEN_H   := $(BUILD)/gen/image/stasis.pb-c.h
# the RPC schema of `stasis swrk` (src/rpc/)
RPC_PROTO := src/rpc/rpc.proto
RPC_GEN_C := $(BUILD)/gen/rpc/rpc.pb-c.c
RPC_GEN_H := $(BUILD)/gen/rpc/rpc.pb-c.h

LIB_SRCS := $(filter-out src/cli/main.c src/helper/main.c,$(shell find src -name '*.c' | sort))
LIB_OBJS := $(patsubst src/%.c,$(BUILD)/obj/%.o,$(LIB_SRCS)) $(BUILD)/obj/gen/stasis.pb-c.o \
	$(BUILD)/obj/gen/rpc.pb-c.o
MAIN_OBJ := $(BUILD)/obj/cli/main.o
# The privileged helper is a program of its own, linked with its server and the little
# that needs (log, util, the pure /proc parsers), never with libstasis.a: no checkpoint
# code runs privileged. Its link fails if a helper object starts using anything else.
# (--gc-sections drops the functions it does not reach, e.g. the other /proc parsers.)
HELPER_OBJS := $(patsubst %,$(BUILD)/obj/%.o,helper/main helper/helper helper/ops \
	helper/policy helper/proto core/log core/util proc/parse)

UNIT_SRCS := $(sort $(wildcard tests/unit/test_*.c))
UNIT_BINS := $(patsubst tests/unit/%.c,$(BUILD)/tests/unit/%,$(UNIT_SRCS))
CKPT_SRCS := $(sort $(wildcard tests/ckpt/*.c))
CKPT_BINS := $(patsubst tests/ckpt/%.c,$(BUILD)/tests/ckpt/%,$(filter-out tests/ckpt/lib.c,$(CKPT_SRCS)))

.PHONY: all clean test test-asan tests unit ckpt soak install
all: $(BUILD)/stasis $(BUILD)/stasis-helper $(BUILD)/libstasis.so.1 \
	$(BUILD)/stasis.1 tests

PREFIX  ?= /usr/local
DESTDIR ?=
VERSION := $(shell sed -n 's/^\#define STASIS_VERSION "\(.*\)"/\1/p' src/core/version.h)
# `make install` also puts a `criu` link to stasis in PREFIX/bin (what runtimes run by
# that name); CRIU_LINK=0 leaves it out.
CRIU_LINK ?= 1

$(GEN_C) $(GEN_H): $(PROTO)
	@mkdir -p $(BUILD)/gen/image
	protoc-c --c_out=$(BUILD)/gen -Isrc src/image/stasis.proto

$(RPC_GEN_C) $(RPC_GEN_H): $(RPC_PROTO)
	@mkdir -p $(BUILD)/gen/rpc
	protoc-c --c_out=$(BUILD)/gen -Isrc src/rpc/rpc.proto

$(BUILD)/obj/gen/stasis.pb-c.o: $(GEN_C)
	@mkdir -p $(dir $@)
	$(CC) $(filter-out -Wmissing-prototypes -Wcast-align,$(CFLAGS)) -c $< -o $@

$(BUILD)/obj/gen/rpc.pb-c.o: $(RPC_GEN_C)
	@mkdir -p $(dir $@)
	$(CC) $(filter-out -Wmissing-prototypes -Wcast-align,$(CFLAGS)) -c $< -o $@

$(BUILD)/obj/%.o: src/%.c $(GEN_H) $(RPC_GEN_H) Makefile
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/libstasis.a: $(LIB_OBJS)
	rm -f $@ && ar rcs $@ $^

$(BUILD)/stasis: $(MAIN_OBJ) $(BUILD)/libstasis.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS)

# the shared library: every object, only the stasis_* API exported (versioned)
# (not the command line's files: the library is the drivers under them)
SO_OBJS := $(filter-out $(BUILD)/obj/cli/%,$(LIB_OBJS))
$(BUILD)/libstasis.so.1: $(SO_OBJS) src/lib/libstasis.map
	$(CC) $(LDFLAGS) -shared -Wl,-soname,libstasis.so.1 -Wl,--no-undefined \
		-Wl,--version-script=src/lib/libstasis.map -o $@ $(SO_OBJS) $(LIBS)

# the man page, made from every command's --help (one source for both)
$(BUILD)/stasis.1: $(BUILD)/stasis scripts/mkman.sh
	scripts/mkman.sh $(BUILD)/stasis > $@.tmp && mv $@.tmp $@

install: $(BUILD)/stasis $(BUILD)/stasis-helper $(BUILD)/libstasis.so.1 \
		$(BUILD)/stasis.1
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib/pkgconfig \
		$(DESTDIR)$(PREFIX)/include $(DESTDIR)$(PREFIX)/share/man/man1
	install -m 755 $(BUILD)/stasis $(BUILD)/stasis-helper $(DESTDIR)$(PREFIX)/bin/
	install -m 644 $(BUILD)/libstasis.so.1 $(DESTDIR)$(PREFIX)/lib/
	ln -sf libstasis.so.1 $(DESTDIR)$(PREFIX)/lib/libstasis.so
	install -m 644 include/stasis.h $(DESTDIR)$(PREFIX)/include/
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@VERSION@|$(VERSION)|' src/lib/stasis.pc.in \
		> $(DESTDIR)$(PREFIX)/lib/pkgconfig/stasis.pc
	install -m 644 $(BUILD)/stasis.1 $(DESTDIR)$(PREFIX)/share/man/man1/
	install -d $(DESTDIR)$(PREFIX)/share/bash-completion/completions
	install -m 644 scripts/stasis.bash-completion \
		$(DESTDIR)$(PREFIX)/share/bash-completion/completions/stasis
	if [ "$(CRIU_LINK)" = 1 ]; then ln -sf stasis $(DESTDIR)$(PREFIX)/bin/criu; fi

$(BUILD)/stasis-helper: $(HELPER_OBJS)
	$(CC) $(LDFLAGS) -Wl,--gc-sections -o $@ $^

tests: $(UNIT_BINS) $(CKPT_BINS) $(BUILD)/tests/tools/imgedit $(BUILD)/tests/tools/uns_launch \
	$(BUILD)/tests/tools/nft_pause.so $(BUILD)/tests/tools/memhog $(BUILD)/tests/tools/seccomp_exec \
	$(BUILD)/tests/tools/vfork_wait $(BUILD)/tests/tools/uring_refused $(BUILD)/demo/counter \
	$(BUILD)/tests/soak/workload

# the soak test (not in ./test.sh): tests/soak.py, its workload built like a checkpoint test
$(BUILD)/tests/soak/workload: tests/soak/workload.c tests/ckpt/lib.c $(wildcard tests/ckpt/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CKPT_CFLAGS) -Itests/ckpt -o $@ $< tests/ckpt/lib.c -lrt -lpthread

soak: $(BUILD)/stasis $(BUILD)/tests/soak/workload
	python3 tests/soak.py --build $(BUILD) $(SOAK_ARGS)

# test tools (not tests): e.g. the image editor of the escalation checks
# the LD_PRELOAD shim of the network lock checks (no sanitizer: it is preloaded)
$(BUILD)/tests/tools/nft_pause.so: tests/tools/nft_pause.c
	@mkdir -p $(dir $@)
	$(CC) $(filter-out $(SAN_FLAGS),$(CFLAGS_BASE)) -shared -fPIC -o $@ $< -ldl

# the memory workload of the incremental-dump checks: static, it runs alone in a
# container's root; no sanitizer (it is the checkpointed side)
$(BUILD)/tests/tools/memhog: tests/tools/memhog.c
	@mkdir -p $(dir $@)
	$(CC) $(filter-out $(SAN_FLAGS),$(CFLAGS_BASE)) -static -o $@ $<

$(BUILD)/tests/tools/%: tests/tools/%.c $(BUILD)/libstasis.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< $(BUILD)/libstasis.a $(LDFLAGS) $(LIBS)

$(BUILD)/tests/unit/%: tests/unit/%.c $(BUILD)/libstasis.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Itests/unit -o $@ $< $(BUILD)/libstasis.a $(LDFLAGS) $(LIBS)

# Checkpoint test programs are the *restored* side: they are built without sanitizers
# (an ASan runtime inside the checkpointed program would only test ASan).
CKPT_CFLAGS := $(filter-out $(SAN_FLAGS),$(CFLAGS_BASE)) -O1 -mavx2
$(BUILD)/tests/ckpt/%: tests/ckpt/%.c tests/ckpt/lib.c $(wildcard tests/ckpt/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CKPT_CFLAGS) -Itests/ckpt -o $@ $< tests/ckpt/lib.c -lrt

# The demo's sample counter (demo/run.sh builds it too): also the counter the runner's
# unshare checks checkpoint. The checkpointed side: no sanitizers.
$(BUILD)/demo/counter: demo/counter.c
	@mkdir -p $(dir $@)
	$(CC) $(CKPT_CFLAGS) -o $@ $<

test: all
	python3 tests/run.py --build $(BUILD)

test-asan:
	$(MAKE) BUILD=build-asan SAN=1 all
	python3 tests/run.py --build build-asan

clean:
	rm -rf build build-asan

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
