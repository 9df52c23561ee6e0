#!/usr/bin/env bash
# Runs every example of examples/ in the article's order, from the repo root,
# each bounded by `timeout 30`. This is what `make demo` runs.
# Exits non-zero if any example fails (non-zero status or timeout).
set -u

cd "$(dirname "$0")/.." || exit 1
root=$PWD
lua=${LUA:-lua5.4}

if [ ! -f "$root/childproc.so" ]; then
  echo "run_all.sh: $root/childproc.so is missing (run make first)" >&2
  exit 1
fi

# Find ./childproc.so first; LUA_PATH stays as it is. Lua 5.4 prefers
# LUA_CPATH_5_4 over LUA_CPATH, so set that one too when the user has it.
export LUA_CPATH="$root/?.so;${LUA_CPATH:-;}"
if [ -n "${LUA_CPATH_5_4+set}" ]; then
  export LUA_CPATH_5_4="$root/?.so;$LUA_CPATH_5_4"
fi

failed=()

# run INPUT SCRIPT [ARGS...]: INPUT is fed to the example's stdin
# ('' means /dev/null, so no example waits on a terminal).
run() {
  local input=$1 script=$2 status
  shift 2
  echo "== $script =="
  if [ -n "$input" ]; then
    printf '%s\n' "$input" | timeout -k 5 30 "$lua" "$script" "$@"
  else
    timeout -k 5 30 "$lua" "$script" "$@" </dev/null
  fi
  status=$?
  if [ "$status" -ne 0 ]; then
    if [ "$status" -eq 124 ] || [ "$status" -eq 137 ]; then
      echo "!! $script timed out (status $status)"
    else
      echo "!! $script failed (status $status)"
    fi
    failed+=("$script")
  fi
}

run '' examples/spawn_pwd.lua
run '' examples/spawn_stdio_handlers.lua
run '' examples/spawn_find.lua
run '' examples/spawn_find_error.lua
run 'hello world from stdin' examples/stdin_wc.lua
run '' examples/find_wc_pipe.lua
run '' examples/exec_find_wc.lua
run '' examples/shell_inherit.lua
run '' examples/shell_cwd.lua
run '' examples/shell_env.lua
run '' examples/detached.lua 2
run '' examples/execfile.lua
run '' examples/sync.lua
run '' examples/parent.lua 3
# the compute server and its pool: --demo runs server and client, then ends
run '' examples/compute_server.lua --demo
run '' examples/compute_pool.lua --demo
# a pre-fork HTTP server sharing one socket, then round robin
run '' examples/http_cluster.lua --demo
run '' examples/http_cluster.lua --demo --mode rr
# childproc inside other event loops
run '' examples/cqueues_loop.lua
run '' examples/select_loop.lua
# an interactive shell on a pseudo-terminal
run '' examples/pty.lua
# ... and inside Neovim, with the LuaJIT build (make LUA=luajit)
if command -v nvim >/dev/null && [ -f build/luajit/childproc.so ]; then
  LUA_CPATH='build/luajit/?.so;;' timeout 30 nvim --headless -u NONE \
    -c 'luafile examples/neovim.lua' -c 'qa!' || failed+=(examples/neovim.lua)
fi

echo
if [ ${#failed[@]} -gt 0 ]; then
  echo "run_all.sh: ${#failed[@]} example(s) failed: ${failed[*]}"
  exit 1
fi
echo "run_all.sh: all examples ran"
