-- http_single: one luasocket process, a socket.select loop, the reply of
-- examples/http_cluster.lua (the baseline of bench/run.lua's http_*).
local socket = require 'socket'

local srv = assert(socket.bind('127.0.0.1', 0, 1024))
srv:settimeout(0)
local body = ('hello from worker %d\n'):format(tonumber(io.open('/proc/self/stat'):read('n')))
local reply = ('HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n'
  .. 'Content-Length: %d\r\n\r\n%s'):format(#body, body)
print(('listening on 127.0.0.1:%d'):format(select(2, srv:getsockname())))
print('pool 1')
io.stdout:flush()

local list, bufs = { srv }, {}
local function drop(c)
  bufs[c] = nil
  c:close()
  for i = #list, 1, -1 do if list[i] == c then table.remove(list, i) end end
end
while true do
  local ready = socket.select(list, nil)
  for _, s in ipairs(ready) do
    if s == srv then
      local c = srv:accept()
      if c then
        c:settimeout(0)
        c:setoption('tcp-nodelay', true)
        bufs[c] = ''
        list[#list + 1] = c
      end
    else
      local data, err, partial = s:receive(65536)
      local buf = bufs[s] .. (data or partial or '')
      while true do
        local e = buf:find('\r\n\r\n', 1, true)
        if not e then break end
        buf = buf:sub(e + 4)
        s:send(reply)
      end
      bufs[s] = buf
      if err == 'closed' then drop(s) end
    end
  end
end
