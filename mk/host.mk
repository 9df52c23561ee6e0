# mk/host.mk: C helpers of the fault specs (spec/host/), built into
# spec/host/build/ (ignored by git) by 'make host', which 'make test' runs.
#   reaper.so    a module that reaps children behind childproc's back
#                (stolen_spec)

HOST_DIR := spec/host/build

.PHONY: host

host: $(HOST_DIR)/reaper.so

$(HOST_DIR)/reaper.so: spec/host/reaper.c mk/host.mk
	@mkdir -p $(HOST_DIR)
	$(CC) -std=c11 -D_GNU_SOURCE -fPIC -O1 -g -Wall -Wextra -Werror $(LUA_CFLAGS) -shared -o $@ $<

#   childproc.so, enomem_host
#                the module and a Lua host built with ASan+UBSan; the host
#                fails the n-th allocation of its lua_State (enomem_spec;
#                'make enomem' tries every failure point, up to
#                ENOMEM_MAX_RUNS of them per scenario)
HOST_SAN := -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
HOST_LUA_LIBS := $(shell pkg-config --libs $(PKG_LUA) 2>/dev/null || echo -llua5.4)
ENOMEM_MAX_RUNS ?= 400

host: $(HOST_DIR)/childproc.so $(HOST_DIR)/enomem_host

$(HOST_DIR)/childproc.so: $(SOURCES) src/*.h src/lua_chunks.h mk/host.mk
	@mkdir -p $(HOST_DIR)
	$(CC) -std=c11 -D_GNU_SOURCE -fPIC -fvisibility=hidden $(HOST_SAN) -Wall -Wextra -Werror -Isrc $(LUA_CFLAGS) $(SOURCES) -shared -o $@

$(HOST_DIR)/enomem_host: spec/host/enomem_host.c mk/host.mk
	@mkdir -p $(HOST_DIR)
	$(CC) -std=c11 -D_GNU_SOURCE $(HOST_SAN) -Wall -Wextra -Werror $(LUA_CFLAGS) -o $@ $< $(HOST_LUA_LIBS) -ldl

.PHONY: enomem
enomem: all host
	cd $(CURDIR) && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	  ENOMEM_PRELOAD="$$($(CC) -print-file-name=libasan.so) $$($(CC) -print-file-name=libubsan.so)" \
	  ENOMEM_CPATH='$(HOST_DIR)/?.so' LUA_CPATH='./?.so;;' ENOMEM_MAX_RUNS=$(ENOMEM_MAX_RUNS) \
	  $(HOST_DIR)/enomem_host
