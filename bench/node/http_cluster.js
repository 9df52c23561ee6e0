// http_cluster: Node's cluster module serving the reply of
// examples/http_cluster.lua; mode 'shared' (SCHED_NONE: the workers
// accept on the shared socket) or 'rr' (SCHED_RR: the primary accepts).
//   node bench/node/http_cluster.js shared|rr WORKERS
const cluster = require('cluster');
const http = require('http');
const mode = process.argv[2] || 'shared';
const n = +process.argv[3] || require('os').cpus().length;
cluster.schedulingPolicy = mode === 'rr' ? cluster.SCHED_RR : cluster.SCHED_NONE;
if (cluster.isPrimary) {
  let ready = 0;
  for (let i = 0; i < n; i++) {
    cluster.fork().on('listening', (addr) => {
      if (++ready === n) {
        console.log(`listening on 127.0.0.1:${addr.port}`);
        console.log(`pool ${n}`);
      }
    });
  }
} else {
  const body = `hello from worker ${process.pid}\n`;
  http.createServer((req, res) => {
    res.writeHead(200, { 'Content-Type': 'text/plain', 'Content-Length': body.length });
    res.end(body);
  }).listen(0, '127.0.0.1');
}
