// children_1000: N `cat`s blocked on stdin pipes; RSS growth per child once
// all have spawned, then end every stdin and wait for every 'close'.
'use strict';
const { spawn } = require('child_process');
const B = require('./common');
const n = B.arg(1, 1000);
const kids = [];
let spawned = 0, closed = 0, rss1 = 0;
const rss0 = B.rssKiB();
const t0 = B.now();
for (let k = 0; k < n; k++) {
  const child = spawn('cat', [], { stdio: ['pipe', 'ignore', 'ignore'] });
  kids.push(child);
  child.on('spawn', () => {
    if (++spawned === n) {
      rss1 = B.rssKiB();
      for (const c of kids) c.stdin.end();
    }
  });
  child.on('close', (code) => {
    if (code !== 0) throw new Error(`exit code ${code}`);
    if (++closed === n) {
      B.out('children_1000_rss', 'node', (rss1 - rss0) / n, 'KiB/child');
      B.out('children_1000_wall', 'node', (B.now() - t0) * 1000, 'ms');
    }
  });
}
