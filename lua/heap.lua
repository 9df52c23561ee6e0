-- The binary heap of a loop's timers (lua/loop.lua): entries { due, seq,
-- timer } in h[1..n], the least (due, seq) first.  The loop keeps h and n
-- (n a local of its own: its turn checks it); these take them and return
-- the new n.
local core, M = ...

local floor = math.floor

local function less(a, b)
  return a[1] < b[1] or (a[1] == b[1] and a[2] < b[2])
end

-- add entry -> n + 1
function M.heap_push(heap, n, entry)
  local i = n + 1
  heap[i] = entry  -- may raise (out of memory): the caller's n is still right then
  while i > 1 do
    local p = floor(i / 2)
    if less(heap[i], heap[p]) then
      heap[i], heap[p] = heap[p], heap[i]
      i = p
    else break end
  end
  return n + 1
end

-- drop the first entry (heap[1]) -> n - 1
function M.heap_pop(heap, n)
  heap[1] = heap[n]
  heap[n] = nil
  n = n - 1
  local i = 1
  while true do
    local l, r, m = 2 * i, 2 * i + 1, i
    if l <= n and less(heap[l], heap[m]) then m = l end
    if r <= n and less(heap[r], heap[m]) then m = r end
    if m == i then break end
    heap[i], heap[m] = heap[m], heap[i]
    i = m
  end
  return n
end
