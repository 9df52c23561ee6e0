-- The spec helper's own mechanisms: expect(fn, n).

describe('expect(fn, n)', function()
  it('passes a callback that ran n times', function()
    local once, thrice, never = expect(), expect(nil, 3), expect(nil, 0)
    once(); thrice(); thrice(); thrice()
    assert.is_function(never)
    assert.is_true(expect_check())
  end)

  it('fails a callback that ran 0 or 2 times, saying where and how many', function()
    local line = debug.getinfo(1, 'l').currentline
    expect(function() end)
    local twice = expect(function() end)
    twice(); twice()
    local ok, err = pcall(expect_check)
    assert.is_false(ok)
    assert.equal(('spec/helper_spec.lua:%d: the callback of this expect ran 0 times, expected 1; '
      .. 'spec/helper_spec.lua:%d: the callback of this expect ran 2 times, expected 1')
      :format(line + 1, line + 2), err)
    assert.is_true(expect_check())   -- (checked: forgotten)
  end)

  it('fails a callback that must never run and ran', function()
    expect(nil, 0)()
    local ok, err = pcall(expect_check)
    assert.is_false(ok)
    assert.matches('ran 1 time, expected 0', err, 1, true)
  end)

  it('refuses a count that is not one', function()
    for _, n in ipairs({ -1, 1.5, 'x' }) do
      local ok, err = pcall(expect, nil, n)
      assert.is_false(ok)
      assert.matches('expect: n must be a count', err, 1, true)
    end
  end)

  -- busted itself: each test of a file is failed by its expects, when
  -- it ends, with the message (spec/fixtures/expect_cases.lua)
  it('fails the test whose callback ran a different number of times', function()
    local out = shell(('cd %s && CHILDPROC_LUA=%s busted --lua=%s -o TAP spec/fixtures/expect_cases.lua')
      :format(shq(ROOT), LUA, LUA))
    local results = {}
    for status, name in out:gmatch('\n?(%a* ?ok) %d+ %- ([^\n]*)') do
      results[#results + 1] = status .. ' ' .. name
    end
    assert.same({
      'ok expect once, called once',
      'not ok expect once, never called',
      'not ok expect once, called twice',
      'ok expect three times, called three times, returns what fn returns',
      'not ok expect never, called once',
      'not ok expect keeps its own finally',
      'not ok expect fails on its own assertion first',
      'ok # SKIP expect a pending test is left pending',
      'ok expect made in before_each called twice',
      'not ok expect made in before_each called once',
    }, results)
    local function message(name)
      return out:match('not ok %d+ %- expect ' .. name:gsub('%p', '%%%0') .. '\n[^\n]*\n# Failure message: ([^\n]*)')
    end
    assert.equal('spec/fixtures/expect_cases.lua:10: the callback of this expect ran 0 times, expected 1',
      message('once, never called'))
    assert.equal('spec/fixtures/expect_cases.lua:14: the callback of this expect ran 2 times, expected 1',
      message('once, called twice'))
    assert.equal('spec/fixtures/expect_cases.lua:24: the callback of this expect ran 1 time, expected 0',
      message('never, called once'))
    assert.truthy(out:find('# the own finally ran\n', 1, true), out)
    assert.equal('spec/fixtures/expect_cases.lua:29: the callback of this expect ran 0 times, expected 1',
      message('keeps its own finally'))
    assert.matches('Expected objects to be equal', message('fails on its own assertion first'), 1, true)
    assert.equal('spec/fixtures/expect_cases.lua:41: the callback of this expect ran 1 time, expected 2',
      message('made in before_each called once'))
  end)
end)
