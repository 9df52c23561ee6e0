-- LUAROCKS_CONFIG for building with LuaJIT (luarocks has no --lua-version for it):
-- LUAROCKS_CONFIG=mk/luarocks-luajit.lua luarocks --lua-version=5.1 make childproc-scm-1.rockspec
lua_interpreter = "luajit"
variables = { LUA_DIR = "/usr", LUA_BINDIR = "/usr/bin", LUA_INCDIR = "/usr/include/luajit-2.1", LUA = "/usr/bin/luajit" }
