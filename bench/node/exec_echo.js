// exec_echo: exec('echo hello') N times in sequence.
'use strict';
const { exec } = require('child_process');
const B = require('./common');
const n = B.arg(1, 1000);
let i = 0;
const t0 = B.now();
function one() {
  if (i === n) return B.out('exec_echo', 'node', n / (B.now() - t0), 'execs/s');
  i++;
  exec('echo hello', (err, stdout) => {
    if (err) throw err;
    if (stdout !== 'hello\n') throw new Error(`bad output ${stdout}`);
    one();
  });
}
one();
