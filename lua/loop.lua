-- The scheduler: a ready queue, timers, fd handlers and the keep-alive
-- count, around a C loop object's epoll wait.  Every event reaches user
-- code from here, through dispatch(), never from inside the call that
-- caused it.
--
-- Loops are objects: M.newloop(core.loop_new()) makes one, its state in
-- the locals of that call and its functions closures over them (upvalues:
-- the hot paths, a message round trip or a spawn, call them many times).
-- M.default is the one cp.run, the timers, cp.watch and cp.loop use, and
-- M.ref, M.setev, M.defer... are its functions; the *Sync functions run
-- their child on a private one (lua/sync.lua).  An object made on a loop
-- keeps it (s.loop: children, their streams and timers) and calls it.
local core, M = ...

local now = core.now
local xpcall, traceback, error, type, select = M.xpcall, debug.traceback, error, type, select
local getmetatable, pcall = getmetatable, pcall
local max = math.max
local heap_push, heap_pop = M.heap_push, M.heap_pop
local EPERM = core.errno.EPERM

-- An object of class mt can stand for its fd's handler: fn(events, obj)
-- is called.  Children's pidfds and streams need no closure per fd so.
-- (One table for every loop: a class's handler is the same on each.)
local classfn = {}
function M.fdclass(mt, fn) classfn[mt] = fn end

local function handler(e)
  if type(e) == 'string' then return traceback(e, 2) end
  return e
end

-- The queue's markers of n arguments (see defer), shared by all loops
local NARGS, nargs_of = {}, {}   -- n -> marker, marker -> n

-- cl: a C loop object (core.loop_new()), closed by the loop's close().
-- Returns the loop: a table of its functions (ref unref alive setev forget
-- fdhandler defer defer_batch timer_start timer_stop timer_ref timeout
-- fail dispatch protect run run_until run_alone pollfd close), rings and
-- (set by lua/watch.lua) onpending.
function M.newloop(cl)
  local lp = {}
  local C = getmetatable(cl).__index
  local cwatch, cmodify, cunwatch, cwait = C.watch, C.modify, C.unwatch, C.wait

  -- {====================================================== keep-alive

  local alive = 0          -- referenced handles (children, streams, timers...)
  function lp.ref() alive = alive + 1 end
  function lp.unref() alive = alive - 1 end
  function lp.alive() return alive end

  -- }======================================================


  -- {====================================================== fd handlers

  -- An fd's handler: objs[fd], an object of a class with a handler
  -- (classfn: children's and streams' fds), else handlers[fd], a function.
  -- What a ready fd calls, set while it is watched: fns[fd](events, objs[fd]).
  -- masks[fd]: the events registered (> 0), 0 while not watched, -1 - the
  -- newest batch when forgotten (see forget); nil: never given a handler.
  local handlers, fns, objs, masks = {}, {}, {}, {}
  -- the decoders of channels with rings (lua/ipc.lua), which the wait arms:
  -- a ring written to while we did not sleep rang no doorbell
  local rings = {}
  lp.rings = rings
  local always = {}        -- fd -> true: files epoll refuses (always ready)
  local nalways, batch, dropped = 0, 0, {}  -- (dropped: see forget)

  local forget
  -- Watch fd for events ev (1 = read, 2 = write, 0 = nothing; 8: edge-
  -- triggered) with fn (a function, or an object whose class has a
  -- handler: M.fdclass).
  -- Regular files cannot be polled (EPERM): they count as always ready.
  local function setev(fd, ev, fn)
    local cur = masks[fd]
    if fn and cur and cur > 0 and (objs[fd] or handlers[fd]) ~= fn then
      -- a new owner: the old one may have closed fd without forget() (a
      -- user's socket closed under cp.watch), and epoll then dropped it
      forget(fd)
      cur = masks[fd]
    end
    if cur and cur < 0 then  -- forgotten
      if ev == 0 and not fn then return true end
      -- the events of that batch (and older ones') are the old file's
      dropped[fd] = -1 - cur
      masks[fd] = 0
    end
    if fn then
      if type(fn) ~= 'function' and classfn[getmetatable(fn)] then
        objs[fd], handlers[fd] = fn, nil
      else
        handlers[fd], objs[fd] = fn, nil
      end
      -- forget() then writes a slot that exists: it allocates nothing
      -- (on_exit relies on it) and so cannot raise out of memory
      if not cur then masks[fd] = 0 end
    end
    if cur and cur <= 0 then cur = nil end  -- not watched
    if cur == ev then return true end
    if ev == 0 then
      fns[fd] = nil
    elseif not cur then  -- watched from now on: what its events call
      local o = objs[fd]
      fns[fd] = o and classfn[getmetatable(o)] or handlers[fd]
    end
    if always[fd] then
      if ev == 0 then always[fd] = nil; nalways = nalways - 1; masks[fd] = 0
      else masks[fd] = ev end
      return true
    end
    local ok, err
    if ev == 0 then
      if cur then cunwatch(cl, fd) end
      if masks[fd] then masks[fd] = 0 end
      return true
    elseif cur then
      ok, err = cmodify(cl, fd, ev)
    else
      ok, err = cwatch(cl, fd, ev)
      if not ok and err == EPERM then  -- a regular file
        always[fd] = true
        nalways = nalways + 1
        ok = true
      end
    end
    if not ok then
      if not cur then fns[fd] = nil end
      return nil, err
    end
    masks[fd] = ev
    return true
  end
  lp.setev = setev

  -- Events come from epoll in batches; one handler may close an fd whose
  -- number the next spawn reuses while later events of the same batch
  -- still name it.  The batch that was newest when fd was forgotten is
  -- kept in masks[fd], and in dropped[fd] once fd has a new handler: that
  -- batch's events for fd (and older ones') are stale.

  -- Forget fd entirely (call before closing it).
  function forget(fd)
    setev(fd, 0)
    handlers[fd], objs[fd] = nil, nil
    if masks[fd] then masks[fd] = -1 - batch end  -- (a slot that exists)
  end
  lp.forget = forget

  -- fd -> its handler and registered events (nil when nobody watches it)
  function lp.fdhandler(fd)
    local m = masks[fd]
    return objs[fd] or handlers[fd], m and m > 0 and m or nil
  end

  -- }======================================================


  -- {====================================================== ready queue

  -- The queue holds its entries in consecutive slots, no table each: fn
  -- and its one argument, or fn, NARGS[n] (a private marker) and n
  -- arguments.  Run in order, each once.
  local queue, qhead, qtail = {}, 1, 0

  local function defer(fn, ...)
    local t, n = qtail, select('#', ...)
    queue[t + 1] = fn
    if n == 1 then
      queue[t + 2] = ...
      qtail = t + 2
      return
    end
    local mark = NARGS[n]
    if not mark then
      mark = {}
      NARGS[n], nargs_of[mark] = mark, n
    end
    queue[t + 2] = mark
    for i = 1, n do queue[t + 2 + i] = (select(i, ...)) end
    qtail = t + 2 + n
  end
  lp.defer = defer

  -- Defer fn(list), list gathering the x of this call and of the calls
  -- right after it (nothing queued in between: the order stays the same).
  -- A burst of spawns so queues one entry, not one per child.
  local btail, blist = 0, nil  -- where the last batch sits, its list
  function lp.defer_batch(fn, x)
    if blist and qtail == btail and queue[qtail] == blist and queue[qtail - 1] == fn then
      blist[#blist + 1] = x
      return
    end
    blist = { x }
    defer(fn, blist)
    btail = qtail
  end

  local function qempty() return qhead > qtail end

  -- }======================================================


  -- {====================================================== timers

  -- A binary heap (lua/heap.lua) of entries { due, seq, timer state },
  -- heap[1..nheap].  A cancelled or rescheduled timer leaves its old entry
  -- behind; `gen` tells them apart.
  local heap, nheap, seq = {}, 0, 0

  -- Schedule timer state t (fields: ms, fn, args, repeat) from now.
  local function timer_start(t)
    seq = seq + 1
    local due = now() + t.ms
    -- in the heap first: a raise (out of memory) leaves t as it was
    nheap = heap_push(heap, nheap, { due, seq, t })
    t.gen, t.due = seq, due
    if not t.active then
      t.active = true
      if t.refed then alive = alive + 1 end
    end
  end
  lp.timer_start = timer_start

  local function timer_stop(t)
    if t.active then
      t.active = false
      t.gen = nil
      if t.refed then alive = alive - 1 end
    end
  end
  lp.timer_stop = timer_stop

  function lp.timer_ref(t, on)
    if t.refed == on then return end
    t.refed = on
    if t.active then alive = alive + (on and 1 or -1) end
  end

  -- drop stale entries from the top of the heap
  local function heap_top()
    while nheap > 0 do
      local e = heap[1]
      if e[3].gen == e[2] then return e end
      nheap = heap_pop(heap, nheap)
    end
    return nil
  end

  -- Seconds until the next live timer, 0 if work is ready, nil if none.
  -- A host loop asks before it sleeps: the channels' rings are armed here
  -- (their peers ring the doorbells, which the pollfd sees), and one that
  -- already holds data is work ready.
  function lp.timeout()
    if not qempty() or nalways > 0 or (rings[1] and core.arm(rings)) then
      return 0
    end
    local e = heap_top()
    if not e then return nil end
    local d = e[1] - now()
    return d > 0 and d / 1000 or 0
  end

  -- }======================================================


  -- {====================================================== dispatch

  local failure      -- error raised by a callback, re-raised by run()
  local ncalls = 0   -- callbacks run so far: a turn that ran one must not block

  -- Keep err (the first one) for run() to raise once the turn is over.
  local function fail(err)
    failure = failure or { err }
  end
  lp.fail = fail

  -- Call fn(...) protected; remember the first error and report it.
  local function dispatch(fn, ...)
    ncalls = ncalls + 1
    local ok, err = xpcall(fn, handler, ...)
    if not ok then fail(err); return false end
    return true
  end
  lp.dispatch = dispatch

  -- The same for a listener: its error must not stop the caller (an event
  -- source half-way through a state change) from finishing.
  function lp.protect(fn, ...)
    ncalls = ncalls + 1
    local ok, err = xpcall(fn, handler, ...)
    if not ok then fail(err) end
  end

  -- dispatch(fn, ...) once slots i..i+n-1 (where ... came from) are
  -- cleared: fn may run the queue itself, which may reuse them
  local function dispatch_cleared(fn, i, n, ...)
    for j = i, i + n - 1 do queue[j] = nil end
    return dispatch(fn, ...)
  end

  -- (a callback that runs the loop itself may empty the queue, which then
  -- starts again at slot 1: qgen tells this one's `last` is stale then)
  local qgen = 0
  local function run_queue()
    local last, gen = qtail, qgen  -- entries added meanwhile wait a turn
    while qhead <= last and qgen == gen do
      local h = qhead
      local fn, a = queue[h], queue[h + 1]
      queue[h], queue[h + 1] = nil, nil
      local n = nargs_of[a]
      local ok
      if a == blist then blist = nil end  -- its batch is closed
      if not n then
        qhead = h + 2
        ok = dispatch(fn, a)
      else
        qhead = h + 2 + n
        ok = dispatch_cleared(fn, h + 2, n, M.unpack(queue, h + 2, h + 1 + n))
      end
      if not ok then return false end
    end
    if qhead > qtail then qhead, qtail, qgen = 1, 0, qgen + 1 end
    return true
  end

  local function run_timers()
    local t0 = now()
    while true do
      local e = heap_top()
      if not e or e[1] > t0 then return true end
      nheap = heap_pop(heap, nheap)
      local t = e[3]
      if t.rep then
        t.active = false   -- restart keeps the ref count right
        if t.refed then alive = alive - 1 end
        t.ms = t.rep
        timer_start(t)
      else
        timer_stop(t)
      end
      if not dispatch(t.fn, M.unpack(t.args, 1, t.args.n)) then return false end
    end
  end

  local evbuf = {}
  local handling = false   -- a batch of fd events is being handled

  -- Regular files (always ready): their handlers, each turn
  local function run_always()
    for fd in pairs(always) do
      local f = fns[fd]
      if f and not dispatch(f, masks[fd], objs[fd]) then return false end
    end
    return true
  end

  -- One turn of the loop.  block: wait for I/O or the next timer ('ref',
  -- 'all': only while something referenced is left after the queue has run;
  -- true and 'ref': only if the turn ran no callback).
  -- (The checks of qhead and nheap spare an idle part its call: a message
  -- round trip is a few turns of this.)
  local function step(block)
    local before = ncalls
    if qhead <= qtail and not run_queue() then return end
    if nheap > 0 and not run_timers() then return end
    local ms = 0
    -- 'all' (cp.run()) may block after running callbacks (it turns again
    -- anyway): an exec is then one epoll_wait fewer; not with an error to
    -- raise, which must not wait for the next event
    if block and qhead > qtail and not failure and nalways == 0
        and (ncalls == before or block == 'all')
        and (block == true or alive > 0) then
      ms = -1
      if nheap > 0 then
        local e = heap_top()
        if e then ms = max(0, e[1] - now()) end
      end
      -- before waiting for ever: watchers whose fd was closed under them
      -- (epoll forgot it silently) let go, so they cannot hold us here
      if ms < 0 and lp.onpending then
        lp.onpending()
        if block ~= true and alive <= 0 then ms = 0 end
      end
    end
    -- the fds: each ready one's handler, protected (a message's round trip
    -- is a turn of this: kept short).  A handler that runs the loop itself
    -- (child:wait(), cp.run) gets a buffer of its own for that loop's
    -- events: the batch being handled here must not change under it.
    local buf = evbuf
    if handling then buf = {} end
    batch = batch + 1
    local b = batch
    local n = cwait(cl, ms, buf, rings)
    if n > 0 then
      local outer = handling
      handling = true
      for i = 1, 2 * n, 2 do
        local fd = buf[i]
        local f, d = fns[fd], dropped[fd]
        if f and not (d and d >= b) then
          ncalls = ncalls + 1
          local ok, e = xpcall(f, handler, buf[i + 1], objs[fd])
          if not ok then
            handling = outer
            return fail(e)
          end
        end
      end
      handling = outer
    end
    if nalways > 0 and not run_always() then return end
    if nheap > 0 and not run_timers() then return end
    if qhead <= qtail then run_queue() end
  end

  local function raise_failure()
    if failure then
      local err = failure[1]
      failure = nil
      error(err, 0)
    end
  end

  -- check: first let go of watchers whose fd was closed under them
  -- (lp.onpending, lua/watch.lua: a syscall per watcher, so not every turn)
  local function pending(check)
    if check and lp.onpending and alive > 0 then lp.onpending() end
    return alive > 0 or not qempty()
  end

  -- cp.run([mode]) -> true if referenced work remains
  function lp.run(mode)
    mode = mode or 'default'
    if mode == 'default' then
      while alive > 0 or qhead <= qtail do
        step('all')
        if failure then raise_failure() end
      end
    elseif mode == 'once' then
      if pending() then step('ref') end
      raise_failure()
    elseif mode == 'nowait' then
      step(false)
      raise_failure()
    elseif type(mode) ~= 'string' then
      M.typeerror('run', 1, mode, 'string')
    else
      M.argerror('run', 1, ("invalid option '%s'"):format(mode))
    end
    return pending(true)
  end

  -- Run the loop until done() is true, whatever the keep-alive count says
  -- (child:wait(), synchronous helpers).  Raises callback errors as run().
  local function run_until(done)
    while not done() do
      step(true)
      raise_failure()
    end
  end
  lp.run_until = run_until

  -- A private loop's run until done(): the listeners' errors are its own
  -- meanwhile (lua/emitter.lua calls M.protect and M.fail), and are the
  -- default loop's again after, even when it raises.
  function lp.run_alone(done)
    local protect, mfail = M.protect, M.fail
    M.protect, M.fail = lp.protect, fail
    local ok, e = pcall(run_until, done)
    M.protect, M.fail = protect, mfail
    if not ok then error(e, 0) end
  end

  -- the epoll fd: readable when a watched fd is ready (cp.loop's pollfd)
  function lp.pollfd() return cl:pollfd() end

  -- Close the loop's epoll fd: what it watched is its owners' to close
  function lp.close() cl:close() end

  -- }======================================================

  return lp
end

-- {====================================================== the default loop

local default = M.newloop(assert(core.loop_new()))
M.default = default
M.ref, M.unref, M.alive, M.rings = default.ref, default.unref, default.alive, default.rings
M.setev, M.forget, M.fdhandler = default.setev, default.forget, default.fdhandler
M.defer, M.defer_batch = default.defer, default.defer_batch
M.timer_start, M.timer_stop, M.timer_ref = default.timer_start, default.timer_stop, default.timer_ref
M.timeout, M.fail, M.dispatch, M.protect = default.timeout, default.fail, default.dispatch, default.protect
M.run, M.run_until = default.run, default.run_until

-- }======================================================
