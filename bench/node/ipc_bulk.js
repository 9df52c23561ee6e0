// ipc_bulk: N messages of 1 MiB (a string) to a forked child_ack.js, one at
// a time (the next when the last is acknowledged).
// usage: node ipc_bulk.js N json|advanced
'use strict';
const { fork } = require('child_process');
const path = require('path');
const B = require('./common');
const n = B.arg(1, 1024);
const serialization = process.argv[3] || 'json';
const msg = 'x'.repeat(2 ** 20);
let i = 0, t0 = 0;
const child = fork(path.join(__dirname, 'child_ack.js'), [], { serialization });
child.on('message', (ack) => {
  if (ack === 'ready') { t0 = B.now(); child.send(msg); return; }
  if (ack !== msg.length) throw new Error(`bad ack ${ack}`);
  i++;
  if (i < n) child.send(msg);
  else {
    B.out('ipc_bulk', `node-${serialization}`, n * msg.length / 1e6 / (B.now() - t0), 'MB/s');
    child.disconnect();
  }
});
child.on('close', (code) => { if (code !== 0) throw new Error(`exit code ${code}`); });
