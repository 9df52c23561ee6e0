-- EMFILE: under a low RLIMIT_NOFILE (a child interpreter started under
-- `ulimit -n 64`), spawn, exec, fork (both serializations), spawn and
-- exec with a pty, and cp.watch
-- fail cleanly with every number of free fds below what they need: an
-- 'error' event / callback error with code EMFILE, no fd left open, no
-- child half made; they succeed once enough fds are free, and a child
-- started before keeps being served all along (spec/fixtures/emfile.lua).
describe('EMFILE', function()
  local out, status, err

  setup(function()
    out, status, err = luaproc(readfile('spec/fixtures/emfile.lua'),
      { pre = 'ulimit -n 64;', args = { ROOT .. '/spec/fixtures', 'pty' }, timeout = 60 })
  end)

  it('runs to the end', function()
    assert.equal(0, status, err)
    assert.matches('\ndone\n$', out)
  end)

  it('leaves no fd open and no child behind, and the loop serves the others', function()
    for line in out:gmatch('[^\n]+') do
      assert.is_nil(line:match('^leak.*') or line:match('^child.*')
        or line:match('^keeper.*') or line:match('.*raise.*'), line)
    end
  end)

  for _, op in ipairs({ 'spawn', 'spawn_ignore', 'exec', 'fork', 'fork_json', 'pty', 'exec_pty' }) do
    it(op .. ' reports EMFILE until enough fds are free, then works', function()
      local fails, okat = 0, nil
      for free, res in out:gmatch('\n' .. op .. '\t(%d+)\t([^\n]*)') do
        if res:find('^ok') then okat = tonumber(free)
        else
          assert.equal('EMFILE', res, op .. ' with ' .. free .. ' free fds')
          assert.is_nil(okat, 'a failure after a success')
          fails = fails + 1
        end
      end
      assert.is_true(fails >= 1, op .. ' never met the limit')
      assert.is_not_nil(okat, op .. ' never worked again')
    end)
  end

  it('cp.watch needs no fd of its own', function()
    assert.matches('\nwatch\t0\tok\n', out)
  end)
end)
