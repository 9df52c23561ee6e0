// stdin_1g: write BYTES into `cat > /dev/null` in 64 KiB chunks, waiting
// for 'drain' whenever write() returns false.
'use strict';
const { spawn } = require('child_process');
const B = require('./common');
const bytes = B.arg(1, 2 ** 30);
const chunk = Buffer.alloc(65536, 120);
let sent = 0;
const t0 = B.now();
const child = spawn('cat', [], { stdio: ['pipe', 'ignore', 'inherit'] });
function pump() {
  while (sent < bytes) {
    const piece = bytes - sent >= chunk.length ? chunk : chunk.subarray(0, bytes - sent);
    sent += piece.length;
    if (!child.stdin.write(piece)) { child.stdin.once('drain', pump); return; }
  }
  child.stdin.end();
}
child.on('close', (code) => {
  if (code !== 0) throw new Error(`exit code ${code}`);
  B.out('stdin_1g', 'node', bytes / 1e6 / (B.now() - t0), 'MB/s');
});
pump();
