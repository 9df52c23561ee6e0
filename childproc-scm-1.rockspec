rockspec_format = "3.0"
package = "childproc"
version = "scm-1"
source = {
  url = "git+file:///dev/null",
}
description = {
  summary = "Node's child_process for Lua: spawn, exec, fork, streams, a message channel and an event loop",
  detailed = [[
childproc gives Lua programs spawn, exec, execFile, fork and their Sync
forms, ChildProcess objects with events, stdio streams with pipe() and
backpressure, a message channel between a Lua parent and forked Lua
children, and the small event loop (timers, fd watchers, cp.run()) that
Lua lacks. Linux only: children start with clone(CLONE_VM|CLONE_VFORK)
and are watched through pidfds.
]],
  license = "MIT",
}
supported_platforms = { "linux" }
dependencies = { "lua >= 5.1" }
-- the Makefile embeds the lua/ layer with the interpreter it builds for
-- (build/<lua>/lua_chunks.h is generated, never committed), then compiles
-- build/<lua>/childproc.so; `luarocks --lua-version=5.1` (5.2, 5.3, 5.4)
-- builds and installs that version's module
build = {
  type = "make",
  build_variables = {
    LUA = "$(LUA)",
    LUA_CFLAGS = "-I$(LUA_INCDIR)",
  },
  install_variables = {
    LUA = "$(LUA)",
    LUA_CFLAGS = "-I$(LUA_INCDIR)",
    INST_LIBDIR = "$(LIBDIR)",
  },
}
test = { type = "busted" }
