// Forked by ipc_rtt.js: says 'ready', then sends every message back.
process.on('message', (msg) => process.send(msg));
process.send('ready');
