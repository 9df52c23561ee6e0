// Shared helpers of the Node peers.
'use strict';
exports.now = () => Number(process.hrtime.bigint()) / 1e9;
exports.out = (bench, peer, value, unit) =>
  process.stdout.write(`bench=${bench} peer=${peer} value=${+value.toPrecision(6)} unit=${unit}\n`);
exports.arg = (i, dflt) => (process.argv[i + 1] !== undefined ? Number(process.argv[i + 1]) : dflt);
// allocate and touch `bytes` (default 2 GiB) outside the V8 heap
exports.heap = (bytes = 2 ** 31) => {
  const chunks = [];
  const size = 256 * 2 ** 20;
  for (let left = bytes; left > 0; left -= size)
    chunks.push(Buffer.allocUnsafe(Math.min(size, left)).fill(1));
  return chunks;
};
exports.rssKiB = () => {
  const m = require('fs').readFileSync('/proc/self/status', 'utf8').match(/VmRSS:\s*(\d+)/);
  return Number(m[1]);
};
