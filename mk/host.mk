# mk/host.mk: C helpers of the fault specs (spec/host/), built by
# 'make host', which 'make test' runs.
#   $(BUILD)/reaper.so  a module (for the Lua being built) that reaps
#                children behind childproc's back (stolen_spec)
#   spec/host/build/childproc.so, enomem_host
#                the module and a Lua 5.4 host built with ASan+UBSan; the
#                host fails the n-th allocation of its lua_State
#                (enomem_spec; 'make enomem' tries every failure point, up
#                to ENOMEM_MAX_RUNS of them per scenario).  Always 5.4,
#                with its own copy of the layer's bytecode.

HOST_DIR := spec/host/build
HOST_SAN := -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
HOST_LUA_CFLAGS := $(shell pkg-config --cflags lua5.4 2>/dev/null || echo -I/usr/include/lua5.4)
HOST_LUA_LIBS := $(shell pkg-config --libs lua5.4 2>/dev/null || echo -llua5.4)
ENOMEM_MAX_RUNS ?= 400

.PHONY: host enomem

host: $(BUILD)/reaper.so $(HOST_DIR)/childproc.so $(HOST_DIR)/enomem_host

$(BUILD)/reaper.so: spec/host/reaper.c mk/host.mk
	@mkdir -p $(BUILD)
	$(CC) -std=c11 -D_GNU_SOURCE -fPIC -O1 -g -Wall -Wextra -Werror $(LUA_CFLAGS) -shared -o $@ $<

$(HOST_DIR)/lua_chunks.h: tools/embed.lua $(LUA_SOURCES)
	@mkdir -p $(HOST_DIR)
	lua5.4 tools/embed.lua $@ $(LUA_SOURCES)

$(HOST_DIR)/childproc.so: $(SOURCES) src/*.h $(HOST_DIR)/lua_chunks.h mk/host.mk
	$(CC) -std=c11 -D_GNU_SOURCE -fPIC -fvisibility=hidden $(HOST_SAN) -Wall -Wextra -Werror \
	  -I$(HOST_DIR) -Isrc $(HOST_LUA_CFLAGS) $(SOURCES) -shared -o $@

$(HOST_DIR)/enomem_host: spec/host/enomem_host.c mk/host.mk
	@mkdir -p $(HOST_DIR)
	$(CC) -std=c11 -D_GNU_SOURCE $(HOST_SAN) -Wall -Wextra -Werror $(HOST_LUA_CFLAGS) -o $@ $< $(HOST_LUA_LIBS) -ldl

enomem: host
	$(MAKE) --no-print-directory all LUA=lua5.4
	cd $(CURDIR) && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	  ENOMEM_PRELOAD="$$($(CC) -print-file-name=libasan.so) $$($(CC) -print-file-name=libubsan.so)" \
	  ENOMEM_CPATH='$(HOST_DIR)/?.so' LUA_CPATH='./?.so;;' ENOMEM_MAX_RUNS=$(ENOMEM_MAX_RUNS) \
	  $(HOST_DIR)/enomem_host
