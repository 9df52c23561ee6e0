// ipc_burst: N messages of 1 MiB (a string) sent to a forked child_ack.js
// all at once, before the first ack; the clock stops at the last ack.
// usage: node ipc_burst.js N json|advanced
'use strict';
const { fork } = require('child_process');
const path = require('path');
const B = require('./common');
const n = B.arg(1, 200);
const serialization = process.argv[3] || 'json';
const msg = 'x'.repeat(2 ** 20);
let acked = 0, t0 = 0;
const child = fork(path.join(__dirname, 'child_ack.js'), [], { serialization });
child.on('message', (ack) => {
  if (ack === 'ready') { t0 = B.now(); for (let i = 0; i < n; i++) child.send(msg); return; }
  if (ack !== msg.length) throw new Error(`bad ack ${ack}`);
  if (++acked === n) {
    B.out('ipc_burst', `node-${serialization}`, n * msg.length / 1e6 / (B.now() - t0), 'MB/s');
    child.disconnect();
  }
});
child.on('close', (code) => { if (code !== 0) throw new Error(`exit code ${code}`); });
