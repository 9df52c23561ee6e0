// fork_first_msg: fork child_first.js N times in sequence; time from fork()
// to the child's first message, mean in ms.
'use strict';
const { fork } = require('child_process');
const path = require('path');
const B = require('./common');
const n = B.arg(1, 100);
const script = path.join(__dirname, 'child_first.js');
let i = 0, total = 0;
function one() {
  if (i === n) return B.out('fork_first_msg', 'node', total / n * 1000, 'ms');
  i++;
  const t0 = B.now();
  const child = fork(script);
  child.once('message', (msg) => {
    total += B.now() - t0;
    if (msg !== 'ready') throw new Error(`bad message ${msg}`);
    // no disconnect(): the child exits by itself (a disconnect() here loses
    // the 'close' event in Node v20)
  });
  child.on('close', (code) => {
    if (code !== 0) throw new Error(`exit code ${code}`);
    one();
  });
}
one();
