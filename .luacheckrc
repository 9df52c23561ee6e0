-- luacheck (Debian lua-check) over the Lua of the tree: `make lint`, run
-- by `make test` before busted; any warning fails it.

-- Every chunk runs on Lua 5.1, 5.2, 5.3, 5.4 and LuaJIT: 'min' is what
-- all five have, so a library name only some have (table.move, utf8,
-- string.pack, math.ult...) is a warning.  The names below exist on some
-- of them only; the tree uses them behind a test or with a fallback
-- (`table.unpack or unpack`, `if math.type then`, `rawget(_G, 'jit')`,
-- `math.tointeger and math.tointeger(v) or v`), as lua/compat.lua does.
stds.compat = {
  read_globals = {
    'unpack', 'setfenv', 'getfenv', 'loadstring', 'jit',
    table = { fields = { 'pack', 'unpack' } },
    math = { fields = { 'type', 'tointeger', 'maxinteger', 'mininteger',
                      'frexp' } },  -- (frexp: 5.1/5.2's string.pack stand-in)
  },
}
std = 'min+compat'

-- The globals spec/helper.lua defines (busted loads it before every spec
-- file; its head lists them).  A name added there and not here warns
-- twice: where helper.lua sets it and where a spec reads it.
local HELPER = {
  'LUA', 'INTEGERS', 'mtype', 'NEGZ', 'ROOT', 'SOPATH', 'CPATH', 'MYPID',
  'thread_io', 'readfile', 'writefile', 'shq', 'procstat', 'alive',
  'procstatus', 'rss_kib', 'children', 'fds', 'fds_desc', 'fd_of',
  'run_until', 'poll_until', 'run_all', 'childenv', 'wait_close',
  'recorder', 'collect', 'no_children', 'only_if', 'leakcheck', 'tmpname',
  'shell', 'luaproc', 'badargs', 'expect', 'expect_check', 'internal', 'core', 'exited', 'docs_text',
}
-- ... and the library functions it adds where a Lua lacks them
-- (table.pack/unpack, string.pack/unpack for the formats the specs use)
-- or replaces (5.1's pcall by the module's yieldable one)
local HELPER_LIB = {
  table = { fields = { 'pack', 'unpack' } },
  string = { fields = { 'pack', 'unpack' } },
}
stds.helper = { read_globals = HELPER }
stds.helper_lib = { read_globals = HELPER_LIB }

-- lua/*.lua: each file is a chunk the module runs as chunk(core, M) (the
-- C table, the layer's namespace: tools/embed.lua, lua_childproc.c).
-- Every chunk opens with `local core, M = ...`; the few that call no C
-- keep the line as it is in the others.
files['lua/'] = { ignore = { '211/core' } }

-- the specs: busted's globals and the helper's; no line limit (a test's
-- name is a sentence, and an expected message is matched whole)
files['spec/'] = { std = '+busted+helper+helper_lib', max_line_length = false }
local defined = { 'pcall' }
for i, name in ipairs(HELPER) do defined[i + 1] = name end
for k, v in pairs(HELPER_LIB) do defined[k] = v end
-- (it also swaps 5.1's pcall for the module's yieldable one: see there)
files['spec/helper.lua'] = { std = 'min+compat+busted', globals = defined }
-- fixtures are the scripts of children (forked, spawned): plain Lua,
-- neither busted's nor the helper's names
files['spec/fixtures/'] = { std = 'min+compat' }
-- (but this one is a busted file, run by spec/helper_spec.lua)
files['spec/fixtures/expect_cases.lua'] = { std = 'min+compat+busted+helper' }
-- it hides the channel's variables from the module while it loads (a
-- peer that writes raw frames on a channel the module does not take)
files['spec/fixtures/handle_raw.lua'] = { ignore = { '122/os' } }

-- examples: plain scripts, except the one Neovim runs (`vim`)
files['examples/neovim.lua'] = { read_globals = { 'vim' } }

-- bench/: run by lua5.4 (make bench) and 5.4 only (`//`, utf8); long
-- lines are its tables' rows, read whole
files['bench/'] = { std = 'lua54', max_line_length = false }

-- an if-chain whose first case is "handled: nothing more to do" keeps it
-- as an empty branch with a comment (lua/ipc.lua's launcher messages,
-- bench/run.lua's filtered peers): clearer than negating the test
ignore = { '542' }
