// ipc_rtt: N small-message round trips with a forked child_echo.js; the
// clock starts when the child says 'ready'.
'use strict';
const { fork } = require('child_process');
const path = require('path');
const B = require('./common');
const n = B.arg(1, 20000);
let i = 0, t0 = 0;
const child = fork(path.join(__dirname, 'child_echo.js'));
child.on('message', (msg) => {
  if (msg === 'ready') { t0 = B.now(); child.send({ n: 0 }); return; }
  if (msg.n !== i) throw new Error('out of order');
  i++;
  if (i < n) child.send({ n: i });
  else { B.out('ipc_rtt', 'node', n / (B.now() - t0), 'rt/s'); child.disconnect(); }
});
child.on('close', (code) => { if (code !== 0) throw new Error(`exit code ${code}`); });
