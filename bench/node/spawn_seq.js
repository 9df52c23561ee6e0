// spawn_seq / spawn_heap2g: spawn /bin/true N times in sequence.
// usage: node spawn_seq.js N [HEAPBYTES]
'use strict';
const { spawn } = require('child_process');
const B = require('./common');
const n = B.arg(1, 500), heapBytes = B.arg(2);
const bench = heapBytes !== undefined ? 'spawn_heap2g' : 'spawn_seq';
const heap = heapBytes !== undefined ? B.heap(heapBytes) : null;
let i = 0;
const t0 = B.now();
function one() {
  if (i === n) {
    if (heap && heap.length === 0) throw new Error('heap');
    return B.out(bench, 'node', n / (B.now() - t0), 'spawns/s');
  }
  i++;
  spawn('/bin/true', [], { stdio: 'inherit' }).on('close', (code) => {
    if (code !== 0) throw new Error(`exit code ${code}`);
    one();
  });
}
one();
