#!/usr/bin/env node
// Raw throughput of the simulator alone: a bare npm `smpp` client keeps a window of submit_sm in
// flight, acknowledges every receipt, and prints JSON timings. Used by bench/bench_smpp.py.
//   node bench-client.js --port 2780 --count 100000 --window 50
'use strict';

const smpp = require('smpp');

const args = {port: 2775, count: 10000, window: 50, systemId: 'test', password: 'secret'};
for (let i = 2; i < process.argv.length; i += 2) {
  const name = process.argv[i].replace(/^--/, '').replace(/-(\w)/g, (_, c) => c.toUpperCase());
  args[name] = /^\d+$/.test(process.argv[i + 1]) ? Number(process.argv[i + 1]) : process.argv[i + 1];
}

const session = smpp.connect({host: '127.0.0.1', port: args.port});
let sent = 0, acked = 0, receipts = 0, start = 0, ackedAt = 0;

function pump() {
  while (sent < args.count && sent - acked < args.window) {
    const n = sent++;
    session.submit_sm({
      destination_addr: `336${String(n).padStart(7, '0')}01`,
      source_addr: 'Bench',
      source_addr_ton: 5,
      registered_delivery: 1,
      short_message: `Bench message ${n}`,
    }, (pdu) => {
      acked++;
      if (pdu.command_status !== 0) throw new Error(`submit failed: ${pdu.command_status}`);
      if (acked === args.count) ackedAt = Date.now();
      pump();
    });
  }
}

function finish() {
  const seconds = (ackedAt - start) / 1000;
  const total = (Date.now() - start) / 1000;
  console.log(JSON.stringify({
    messages: args.count,
    submit_seconds: seconds,
    submits_per_second: Math.round(args.count / seconds),
    receipts_seconds: total,
    receipts_per_second: Math.round(args.count / total),
  }));
  session.close();
  process.exit(0);
}

session.on('deliver_sm', (pdu) => {
  session.send(pdu.response());
  if (++receipts === args.count) finish();
});
session.bind_transceiver({system_id: args.systemId, password: args.password}, (pdu) => {
  if (pdu.command_status !== 0) throw new Error('bind failed');
  start = Date.now();
  pump();
});
