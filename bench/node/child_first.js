// Forked by fork_first_msg.js: one message at start, then the script ends.
process.send('ready');
