-- Prints what each C file includes (src/*.h) and what it links to (the
-- files defining the symbols its object needs, from nm), and fails when
-- either graph has a cycle.  Run from the repository root:
--   lua5.4 tools/cdeps.lua [cc flags...]     (the flags: the Lua headers)
-- e.g. lua5.4 tools/cdeps.lua -I/usr/include/lua5.4
local flags = table.concat({...}, ' ')
if flags == '' then flags = '-I/usr/include/lua5.4' end

local function lines(cmd)
  local p = assert(io.popen(cmd))
  local t = {}
  for l in p:lines() do t[#t + 1] = l end
  p:close()
  return t
end

local files, isfile = {}, {}
for _, f in ipairs(lines('ls src')) do
  if f:match('%.[ch]$') then files[#files + 1] = f; isfile[f] = true end
end

-- f -> the names it points at, in order; cycles found by depth first
local function cycles(graph)
  local state, found = {}, {}
  local function visit(n, path)
    state[n] = 1
    for _, m in ipairs(graph[n] or {}) do
      if state[m] == 1 then
        found[#found + 1] = table.concat(path, ' -> ') .. ' -> ' .. m
      elseif not state[m] then
        path[#path + 1] = m
        visit(m, path)
        path[#path] = nil
      end
    end
    state[n] = 2
  end
  for _, f in ipairs(files) do
    if graph[f] and not state[f] then visit(f, {f}) end
  end
  return found
end

local inc = {}
for _, f in ipairs(files) do
  local h = assert(io.open('src/' .. f)):read('*a')
  inc[f] = {}
  for name in h:gmatch('#include "([^"]+)"') do
    if isfile[name] then table.insert(inc[f], name) end
  end
end

local dir = lines('mktemp -d')[1]
local defs, uses = {}, {}
for _, f in ipairs(files) do
  if f:match('%.c$') then
    local o = dir .. '/' .. f:gsub('%.c$', '.o')
    assert(os.execute(('cc -std=c11 -D_GNU_SOURCE -fPIC -c -Isrc -Ibuild/lua5.4 %s -o %s src/%s')
      :format(flags, o, f)))
    defs[f], uses[f] = {}, {}
    for _, l in ipairs(lines('nm ' .. o)) do
      local kind, sym = l:match('^%x+ (%u) (%S+)$')
      if kind and kind:match('[TDBR]') then defs[f][sym] = true end
      sym = l:match('^%s+U (%S+)$')
      if sym then uses[f][sym] = true end
    end
  end
end
os.execute('rm -rf ' .. dir)

local link = {}
for f, u in pairs(uses) do
  link[f] = {}
  for g, d in pairs(defs) do
    if g ~= f then
      for sym in pairs(u) do
        if d[sym] then table.insert(link[f], g); break end
      end
    end
  end
  table.sort(link[f])
end

for _, f in ipairs(files) do
  if f:match('%.c$') then
    print(('%-14s includes %s; links to %s'):format(f,
      table.concat(inc[f], ' '), table.concat(link[f], ' ')))
  end
end
local bad = cycles(inc)
for _, c in ipairs(cycles(link)) do bad[#bad + 1] = c end
for _, c in ipairs(bad) do print('cycle: ' .. c) end
print(#bad == 0 and 'no include or link cycle' or #bad .. ' cycles')
os.exit(#bad == 0 and 0 or 1)
