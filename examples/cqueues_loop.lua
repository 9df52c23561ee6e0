-- Not from the article: childproc inside a cqueues controller.  The
-- article's spawn examples assume Node's own event loop; a Lua program
-- that already runs cqueues keeps it, waits on cp.loop like on any
-- pollable object, and lets childproc work with cp.run('nowait').
local cp = require 'childproc'
local cqueues = require 'cqueues'
io.stdout:setvbuf('line')

local cq = cqueues.new()

-- childproc's side: two children and a timer
for i = 1, 2 do
  local child = cp.spawn('sh', { '-c', ('sleep 0.%d; echo child %d done'):format(i, i) },
                         { stdio = { 'ignore', 'pipe', 'inherit' } })
  child.stdout:on('data', function(d) io.write('childproc: ', d) end)
  child:on('close', function(code) print(('childproc: child %d closed (code %d)'):format(i, code)) end)
end
cp.setTimeout(function() print('childproc: timer fired') end, 150)

-- cqueues' side: a coroutine of its own
cq:wrap(function()
  for i = 1, 3 do
    cqueues.sleep(0.1)
    print('cqueues: tick ' .. i)
  end
end)

-- the bridge: wait on cp.loop (its fd and its timeout), then run what is ready
cq:wrap(function()
  while cp.run('nowait') do
    cqueues.poll(cp.loop)
  end
  print('childproc: nothing left to do')
end)

assert(cq:loop())
