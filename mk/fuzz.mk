# mk/fuzz.mk: libFuzzer targets for everything that reads bytes from
# outside, each linking only the files it needs:
#   fuzz_lua    the 'lua' codec: a payload decoded, encoded, decoded again
#               (src/lua_decode.c, src/lua_encode.c, src/buf.c)
#   fuzz_json   the 'json' codec: lines decoded, encoded, decoded again
#               (src/json.c, src/buf.c)
#   fuzz_frame  the framing decoder of both formats (src/frame.c), the
#               rings' headers and frames as a peer writes them
#               (src/ring.c), the channel's writer (src/channel.c)
#   fuzz_plan   the options -> plan step (the whole module)
# 'make fuzz' builds them in fuzz/build (ignored by git) and runs each
# for FUZZ_SECONDS from a scratch copy of its seed corpus
# (fuzz/corpus/<kind>), so the repository's corpus only grows on
# purpose. A crash stops with a non-zero status and leaves the input as
# fuzz/build/crash-<kind>-*: fix the bug, then move the input into
# fuzz/corpus/<kind>/ as a regression. The seeds of lua, json and frame
# come from fuzz/gen_corpus.lua.

FUZZ_CC ?= clang
FUZZ_SECONDS ?= 60
FUZZ_FLAGS ?=
FUZZ_CFLAGS := -g -O1 -fsanitize=fuzzer,address,undefined -DCP_SEG_MIN=4 -DCP_RING_MIN=16 \
  -fno-sanitize-recover=undefined -D_GNU_SOURCE -Isrc \
  $(shell pkg-config --cflags lua5.4)
FUZZ_LIBS := $(shell pkg-config --libs lua5.4)
FUZZ_LUA_SOURCES := src/lua_decode.c src/lua_encode.c src/buf.c
FUZZ_JSON_SOURCES := src/json.c src/buf.c
FUZZ_FRAME_SOURCES := src/frame.c src/ring.c src/channel.c src/handle.c src/object.c \
  src/lua_decode.c src/lua_encode.c src/json.c src/buf.c
FUZZ_DEPS := src/*.h fuzz/fuzz_common.h mk/fuzz.mk
FUZZ_DIR := fuzz/build
FUZZ_KINDS := lua json frame plan
FUZZ_BINS := $(FUZZ_KINDS:%=$(FUZZ_DIR)/fuzz_%)

.PHONY: fuzz fuzz-build fuzz-clean

fuzz-build: $(FUZZ_BINS)

$(FUZZ_DIR)/fuzz_lua: fuzz/fuzz_lua.c $(FUZZ_LUA_SOURCES) $(FUZZ_DEPS)
	@mkdir -p $(FUZZ_DIR)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -o $@ $< $(FUZZ_LUA_SOURCES) $(FUZZ_LIBS)

$(FUZZ_DIR)/fuzz_json: fuzz/fuzz_json.c $(FUZZ_JSON_SOURCES) $(FUZZ_DEPS)
	@mkdir -p $(FUZZ_DIR)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -o $@ $< $(FUZZ_JSON_SOURCES) $(FUZZ_LIBS)

$(FUZZ_DIR)/fuzz_frame: fuzz/fuzz_frame.c $(FUZZ_FRAME_SOURCES) $(FUZZ_DEPS)
	@mkdir -p $(FUZZ_DIR)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -o $@ $< $(FUZZ_FRAME_SOURCES) $(FUZZ_LIBS)

# the options -> plan step: the whole module (every C file, the Lua layer)
# (the layer's bytecode made by lua5.4 for it, whatever Lua was built last)
$(FUZZ_DIR)/lua_chunks.h: tools/embed.lua $(LUA_SOURCES)
	@mkdir -p $(FUZZ_DIR)
	lua5.4 tools/embed.lua $@ $(LUA_SOURCES)

$(FUZZ_DIR)/fuzz_plan: fuzz/fuzz_plan.c $(SOURCES) src/*.h $(FUZZ_DIR)/lua_chunks.h mk/fuzz.mk
	$(FUZZ_CC) $(FUZZ_CFLAGS) -I$(FUZZ_DIR) -o $@ $< $(SOURCES) $(FUZZ_LIBS)

fuzz: $(FUZZ_BINS)
	@set -e; for k in $(FUZZ_KINDS); do \
	  w=$$(mktemp -d); cp fuzz/corpus/$$k/* "$$w"/; \
	  echo "fuzz_$$k: $(FUZZ_SECONDS) s"; \
	  rc=0; $(FUZZ_DIR)/fuzz_$$k -max_total_time=$(FUZZ_SECONDS) \
	    -artifact_prefix=$(FUZZ_DIR)/crash-$$k- $(FUZZ_FLAGS) "$$w" \
	    > $(FUZZ_DIR)/fuzz_$$k.log 2>&1 || rc=$$?; \
	  rm -rf "$$w"; \
	  tail -n 2 $(FUZZ_DIR)/fuzz_$$k.log; \
	  if [ $$rc -ne 0 ]; then \
	    tail -n 40 $(FUZZ_DIR)/fuzz_$$k.log; \
	    echo "fuzz_$$k failed ($$rc): see $(FUZZ_DIR)/crash-$$k-*"; \
	    exit $$rc; \
	  fi; \
	done

fuzz-clean:
	rm -f $(FUZZ_BINS)
