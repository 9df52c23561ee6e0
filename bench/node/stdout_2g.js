// stdout_2g: read `head -c BYTES /dev/zero` through 'data' events.
'use strict';
const { spawn } = require('child_process');
const B = require('./common');
const bytes = B.arg(1, 2 ** 31);
let got = 0;
const t0 = B.now();
const child = spawn('head', ['-c', String(bytes), '/dev/zero'], { stdio: ['ignore', 'pipe', 'inherit'] });
child.stdout.on('data', (chunk) => { got += chunk.length; });
child.on('close', (code) => {
  if (code !== 0) throw new Error(`exit code ${code}`);
  if (got !== bytes) throw new Error(`got ${got} of ${bytes} bytes`);
  B.out('stdout_2g', 'node', bytes / 1e6 / (B.now() - t0), 'MB/s');
});
