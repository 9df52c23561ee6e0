// spawn_par32: /bin/true N times, 32 in flight.
'use strict';
const { spawn } = require('child_process');
const B = require('./common');
const n = B.arg(1, 1000);
let started = 0, closed = 0;
const t0 = B.now();
function one() {
  started++;
  spawn('/bin/true', [], { stdio: 'inherit' }).on('close', (code) => {
    if (code !== 0) throw new Error(`exit code ${code}`);
    closed++;
    if (started < n) one();
    else if (closed === n) B.out('spawn_par32', 'node', n / (B.now() - t0), 'spawns/s');
  });
}
for (let k = 0; k < Math.min(32, n); k++) one();
