// Forked by ipc_bulk.js: says 'ready', then answers each message with its length.
process.on('message', (msg) => process.send(msg.length));
process.send('ready');
