-- a324b58: an integral float beyond the integers (2^70, 1e300) passed
-- the integer checks (math.floor(x) == x holds for it): fuzz_plan found
-- fork's maxMessageSize = 2^70 reaching core.decoder, which raised in
-- the module's words at a line of its own.  luaL_checkinteger refuses it.
local cp = require 'childproc'

describe('regress', function()
  only_if(INTEGERS, 'integers past 2^53 are floats here: no limit to pass')(
    'refuses an integral float past the integers, as luaL_checkinteger does', function()
    local line = debug.getinfo(1, 'l').currentline + 1
    local ok, err = pcall(function() cp.fork('x.lua', {}, { maxMessageSize = 2 ^ 70 }) end)
    assert.is_false(ok)
    assert.equal('spec/regress/huge_integer_spec.lua:' .. line
      .. ": bad argument #3 to 'fork' (option 'maxMessageSize':"
      .. ' number has no integer representation)', err)
    ok, err = pcall(function() cp.spawn('true', { timeout = 1e300 }) end)
    assert.is_false(ok)
    assert.truthy(err:find("option 'timeout': number has no integer representation", 1, true), err)
  end)
end)
