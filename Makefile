# childproc: build, test, demo.  `make help` lists the targets.

# LUA = lua5.1 | lua5.2 | lua5.3 | lua5.4 | luajit (or a path to one: luarocks
# passes /usr/bin/lua5.1): that version's module is build/$(LUA)/childproc.so;
# ./childproc.so links to the lua5.4 one
LUA        ?= lua5.4
LUA_NAME   := $(notdir $(LUA))
PKG_LUA    ?= $(LUA_NAME)
LUA_CFLAGS ?= $(shell pkg-config --cflags $(PKG_LUA) 2>/dev/null || echo -I/usr/include/$(PKG_LUA))
LUA_V      := $(if $(filter luajit%,$(LUA_NAME)),5.1,$(patsubst lua%,%,$(LUA_NAME)))
BUILD      := build/$(LUA_NAME)
MODULE     := $(BUILD)/childproc.so
CC         ?= cc
OPT        ?= -O2 -g
CFLAGS     += -std=c11 -D_GNU_SOURCE -fPIC -fvisibility=hidden $(OPT) \
              -Wall -Wextra -Werror -Wshadow -Wmissing-prototypes -Wstrict-prototypes \
              -I$(BUILD) -Isrc $(LUA_CFLAGS)
LDFLAGS    += -shared

# the C sources
SOURCES = lua_childproc.c src/loop.c src/fd.c src/spawn.c src/object.c \
          src/sys.c src/error.c src/buf.c src/lua_encode.c src/lua_decode.c src/json.c \
          src/ring.c src/frame.c src/channel.c src/pty.c src/handle.c
# the Lua layer, in load order (init.lua last: it returns the module)
LUA_SOURCES = lua/compat.lua lua/util.lua lua/args.lua lua/emitter.lua lua/heap.lua lua/loop.lua lua/writeq.lua lua/stream.lua \
          lua/timer.lua lua/plan.lua lua/stdio.lua lua/child.lua lua/pty.lua lua/process.lua \
          lua/exec.lua lua/sync.lua lua/task.lua lua/ipc.lua lua/ipc_stdio.lua lua/ipc_process.lua lua/main.lua lua/duplex.lua lua/handle.lua \
          lua/fork.lua lua/launcher.lua lua/watch.lua \
          lua/init.lua

BUSTED     ?= busted --lua=$(LUA)
# the specs' Lua (spec/helper.lua)
export CHILDPROC_LUA := $(LUA_NAME)
DEBS        = lua5.4 liblua5.4-dev lua5.1 liblua5.1-0-dev lua5.2 liblua5.2-dev lua5.3 liblua5.3-dev \
              luajit libluajit-5.1-dev lua-posix neovim lua-busted lua-check luarocks lua-socket lua-cqueues pkg-config \
              openssh-server openssh-client wrk strace

.PHONY: all lint test demo sanitize valgrind bench soak fuzz install clean deps help cdeps

all: $(MODULE) $(if $(filter lua5.4,$(LUA_NAME)),childproc.so)

$(BUILD)/lua_chunks.h: tools/embed.lua $(LUA_SOURCES)
	@mkdir -p $(BUILD)
	$(LUA) tools/embed.lua $@ $(LUA_SOURCES)

$(MODULE): $(SOURCES) src/*.h $(BUILD)/lua_chunks.h Makefile
	$(CC) $(CFLAGS) $(SOURCES) -o $@ $(LDFLAGS)

childproc.so: $(MODULE)
	ln -sf $(MODULE) $@

# install missing Debian packages when root, else say what to install
deps:
	@missing=""; for p in $(DEBS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing:$$missing"; apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else echo "missing packages; run: sudo apt-get install -y$$missing"; exit 1; fi; \
	fi

# busted's TAP output gives the closing `N passed, N failed` line (specs
# skipped for a feature this Lua lacks are counted apart)
TAP = .test-$(LUA_NAME).tap
test: deps all host lint
	@# the other Luas' builds the mixed-version specs fork, made current
	@for d in build/*/childproc.so; do l=$${d#build/}; l=$${l%/childproc.so}; \
	  [ -e "$$d" ] && [ "$$l" != "$(LUA_NAME)" ] && $(MAKE) --no-print-directory -s LUA=$$l all; true; done
	@echo "== $(LUA_NAME)"
	@$(BUSTED) -o TAP $(SPECS) > $(TAP) 2>&1; status=$$?; cat $(TAP); \
	  pass=$$(grep '^ok ' $(TAP) | grep -vc '# SKIP'); fail=$$(grep -c '^not ok ' $(TAP)); \
	  echo "$$(grep -c '^ok .*# SKIP' $(TAP)) skipped on $(LUA_NAME) (a feature it lacks)"; \
	  echo "$$pass passed, $$fail failed"; \
	  [ $$status -eq 0 ] && [ $$fail -eq 0 ] && [ $$pass -gt 0 ]

# luacheck with .luacheckrc (std, busted's and the spec helper's globals):
# any warning fails it, and with it `make test`
LINT = lua/*.lua spec examples bench/*.lua
lint: deps
	@luacheck --no-cache --codes -q $(LINT)

demo: deps all
	bash examples/run_all.sh

# the sanitized build never outlives the target, even when a spec fails;
# the #timing specs are left to the plain builds (the instrumented one is
# several times slower: a latency bound there measures ASan)
sanitize: deps
	$(MAKE) clean
	$(MAKE) all OPT="-O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined" \
	  LDFLAGS="-shared -fsanitize=address,undefined"
	$(MAKE) --no-print-directory host
	@status=0; \
	ASAN_OPTIONS=detect_leaks=0:abort_on_error=1:quarantine_size_mb=16:verify_asan_link_order=0 CHILDPROC_SANITIZE=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  LD_PRELOAD="$$($(CC) -print-file-name=libasan.so) $$($(CC) -print-file-name=libubsan.so)" \
	  $(MAKE) --no-print-directory test SPECS="--exclude-tags=timing" || status=$$?; \
	$(MAKE) --no-print-directory clean; exit $$status

valgrind: deps all
	@command -v valgrind >/dev/null || { echo "install valgrind: apt-get install -y valgrind"; exit 1; }
	CHILDPROC_VALGRIND=1 $(MAKE) --no-print-directory test SPECS="--exclude-tags=timing" BUSTED="valgrind -q --error-exitcode=99 --leak-check=full --show-leak-kinds=definite --errors-for-leak-kinds=definite --trace-children=no $(LUA) /usr/bin/busted"

# both configurations in one run: unpinned (the headline), then pinned to CPU 0
bench: deps all
	$(LUA) bench/run.lua

# long runs (not part of test): sizes from SOAK_* (bench/soak.lua), figures
# to bench/SOAK.md; fails when fds, Lua memory or RSS grow
soak: deps all
	@{ echo "# make soak ($$(date -u '+%Y-%m-%d %H:%M UTC'), $$(git rev-parse --short HEAD 2>/dev/null))"; echo; \
	  echo "Sizes: SOAK_SPAWNS=$${SOAK_SPAWNS-100000} SOAK_EXECS=$${SOAK_EXECS-10000} SOAK_FORKS=$${SOAK_FORKS-10000} SOAK_MESSAGES=$${SOAK_MESSAGES-1000000} SOAK_ALIVE=$${SOAK_ALIVE-1000}."; \
	  echo "Samples after a full collection, every tenth of a phase."; echo; } > bench/SOAK.md.new
	LUA_CPATH='./?.so;;' $(LUA) bench/soak.lua --markdown >> bench/SOAK.md.new; \
	  status=$$?; mv bench/SOAK.md.new bench/SOAK.md; exit $$status

# what each src/*.c includes and links to; fails on a cycle in either
cdeps:
	lua5.4 tools/cdeps.lua $(LUA_CFLAGS)

-include mk/fuzz.mk
-include mk/host.mk

# luarocks (build.type = "make") passes INST_LIBDIR; by hand: luarocks make --local
INST_LIBDIR ?= $(HOME)/.luarocks/lib/lua/$(LUA_V)
install: $(MODULE)
	install -d $(INST_LIBDIR)
	install -m 0755 $(MODULE) $(INST_LIBDIR)/childproc.so

clean:
	rm -rf childproc.so .test*.tap src/lua_chunks.h $(BUILD)

help:
	@echo "targets: all lint test demo sanitize valgrind bench soak fuzz enomem host cdeps install clean"
