#!/usr/bin/env node
// A fake SMPP 3.4 carrier (SMSC) built on npm's `smpp` package in server mode.
//
// It authenticates binds, answers submit_sm, sends delivery receipts (deliver_sm, esm_class 0x04)
// after a delay with an outcome chosen by the destination number, and can send MO messages, drop
// the connection, throttle and answer out of order. A small HTTP control port drives those
// behaviours and reports what was received, so tests can check that every message arrived once.
//
// Outcomes by the end of the destination number (like the Python simulator backend):
//   ...99 -> submit refused with ESME_RINVDSTADR (permanent)
//   ...98 -> receipt stat:UNDELIV err:001
//   ...97 -> receipt stat:EXPIRED
//   ...96 -> receipt stat:REJECTD
//   ...95 -> submit refused with ESME_RSYSERR (retryable)
//   anything else -> receipt stat:DELIVRD err:000
'use strict';

const http = require('http');
const smpp = require('smpp');

function parseArgs(argv) {
  const config = {
    port: 2775,
    controlPort: 0,
    systemId: 'test',
    password: 'secret',
    receiptDelayMs: 50,
    receiptIdFormat: 'hex', // 'decimal': the text's id:... is the decimal form of the hex submit id
    receiptTlv: true, // send receipted_message_id / message_state TLVs as well as the text
    throttlePerSecond: 0, // > 0: more submits than this within one second get ESME_RTHROTTLED
    dropAfter: 0, // > 0: destroy the connection right after answering that many submits (once)
    outOfOrder: false, // answer submits in small reversed groups
    quiet: false,
  };
  for (let i = 2; i < argv.length; i++) {
    const arg = argv[i];
    const value = () => argv[++i];
    switch (arg) {
      case '--port': config.port = Number(value()); break;
      case '--control-port': config.controlPort = Number(value()); break;
      case '--system-id': config.systemId = value(); break;
      case '--password': config.password = value(); break;
      case '--receipt-delay-ms': config.receiptDelayMs = Number(value()); break;
      case '--receipt-id-format': config.receiptIdFormat = value(); break;
      case '--no-receipt-tlv': config.receiptTlv = false; break;
      case '--throttle-per-second': config.throttlePerSecond = Number(value()); break;
      case '--drop-after': config.dropAfter = Number(value()); break;
      case '--out-of-order': config.outOfOrder = true; break;
      case '--quiet': config.quiet = true; break;
      default: throw new Error(`unknown argument ${arg}`);
    }
  }
  return config;
}

const config = parseArgs(process.argv);
const log = (...args) => { if (!config.quiet) console.log(new Date().toISOString(), ...args); };

const stats = {
  binds: 0,
  bindFailures: 0,
  submits: 0, // submit_sm PDUs received
  accepted: 0, // submit_sm answered ESME_ROK
  throttled: 0,
  rejected: 0,
  receiptsSent: 0,
  drops: 0,
  enquireLinks: 0,
  unbinds: 0,
  messages: {}, // destination -> list of complete texts (parts reassembled by UDH reference)
};
const partial = new Map(); // `${dest}/${ref}` -> {total, parts: []}
const sessions = new Set();
let nextId = 0x1000;
let dropArmed = config.dropAfter > 0;
let windowStart = Date.now();
let windowCount = 0;

function ymdhm(date) {
  const p = (n) => String(n).padStart(2, '0');
  return `${p(date.getUTCFullYear() % 100)}${p(date.getUTCMonth() + 1)}${p(date.getUTCDate())}` +
    `${p(date.getUTCHours())}${p(date.getUTCMinutes())}`;
}

function outcomeFor(dest) {
  if (dest.endsWith('99')) return {status: smpp.ESME_RINVDSTADR};
  if (dest.endsWith('95')) return {status: smpp.ESME_RSYSERR};
  if (dest.endsWith('98')) return {stat: 'UNDELIV', err: '001', state: 5};
  if (dest.endsWith('97')) return {stat: 'EXPIRED', err: '000', state: 3};
  if (dest.endsWith('96')) return {stat: 'REJECTD', err: '000', state: 8};
  return {stat: 'DELIVRD', err: '000', state: 2};
}

function record(pdu) {
  const dest = String(pdu.destination_addr);
  const sm = pdu.short_message || {};
  const text = typeof sm === 'string' ? sm : (sm.message || '');
  const udh = (sm.udh || []).find((h) => h[0] === 0x00 || h[0] === 0x08);
  if (!udh) {
    (stats.messages[dest] = stats.messages[dest] || []).push(text);
    return;
  }
  const ref = udh[0] === 0x00 ? udh[2] : udh.readUInt16BE(2);
  const total = udh[0] === 0x00 ? udh[3] : udh[4];
  const seq = udh[0] === 0x00 ? udh[4] : udh[5];
  const key = `${dest}/${ref}`;
  const entry = partial.get(key) || {total, parts: new Array(total).fill(null)};
  entry.parts[seq - 1] = text;
  partial.set(key, entry);
  if (entry.parts.every((part) => part !== null)) {
    partial.delete(key);
    (stats.messages[dest] = stats.messages[dest] || []).push(entry.parts.join(''));
  }
}

function sendReceipt(session, pdu, messageId, outcome) {
  setTimeout(() => {
    if (session.closed) return;
    const now = new Date();
    const textId = config.receiptIdFormat === 'decimal' ? String(parseInt(messageId, 16)) : messageId;
    const text = `id:${textId} sub:001 dlvrd:${outcome.stat === 'DELIVRD' ? '001' : '000'} ` +
      `submit date:${ymdhm(now)} done date:${ymdhm(now)} stat:${outcome.stat} err:${outcome.err} text:`;
    const fields = {
      source_addr_ton: pdu.dest_addr_ton,
      source_addr_npi: pdu.dest_addr_npi,
      source_addr: pdu.destination_addr,
      dest_addr_ton: pdu.source_addr_ton,
      dest_addr_npi: pdu.source_addr_npi,
      destination_addr: pdu.source_addr,
      esm_class: 0x04,
      data_coding: 0,
      short_message: Buffer.from(text, 'ascii'),
    };
    if (config.receiptTlv) {
      fields.receipted_message_id = messageId;
      fields.message_state = outcome.state;
    }
    session.deliver_sm(fields);
    stats.receiptsSent++;
  }, config.receiptDelayMs);
}

function handleSession(session) {
  let bound = false;
  const pendingResponses = [];
  sessions.add(session);
  session.on('close', () => { session.closed = true; sessions.delete(session); });
  session.on('error', (error) => log('session error', error.message));

  const flushResponses = () => {
    pendingResponses.splice(0).reverse().forEach((send) => send());
  };

  session.on('bind_transceiver', (pdu) => {
    if (pdu.system_id !== config.systemId || pdu.password !== config.password) {
      stats.bindFailures++;
      log('bind refused for', pdu.system_id);
      session.send(pdu.response({command_status: smpp.ESME_RINVPASWD}));
      return;
    }
    bound = true;
    stats.binds++;
    log('bound', pdu.system_id, pdu.system_type);
    session.send(pdu.response({system_id: 'SIMSMSC'}));
  });

  session.on('enquire_link', (pdu) => { stats.enquireLinks++; session.send(pdu.response()); });
  session.on('unbind', (pdu) => {
    stats.unbinds++;
    session.send(pdu.response());
    session.close();
  });

  session.on('submit_sm', (pdu) => {
    if (session.closed || session.dropped) return;
    stats.submits++;
    if (!bound) {
      session.send(pdu.response({command_status: smpp.ESME_RINVBNDSTS}));
      return;
    }
    const now = Date.now();
    if (now - windowStart >= 1000) { windowStart = now; windowCount = 0; }
    if (config.throttlePerSecond > 0 && ++windowCount > config.throttlePerSecond) {
      stats.throttled++;
      session.send(pdu.response({command_status: smpp.ESME_RTHROTTLED}));
      return;
    }
    const dest = String(pdu.destination_addr);
    const outcome = outcomeFor(dest);
    if (outcome.status) {
      stats.rejected++;
      session.send(pdu.response({command_status: outcome.status}));
      return;
    }
    stats.accepted++;
    record(pdu);
    const messageId = (nextId++).toString(16).toUpperCase().padStart(10, '0');
    const answer = () => {
      session.send(pdu.response({message_id: messageId}));
      if (pdu.registered_delivery & 0x01) sendReceipt(session, pdu, messageId, outcome);
    };
    if (config.outOfOrder) {
      pendingResponses.push(answer);
      if (pendingResponses.length >= 5) flushResponses();
      else setTimeout(flushResponses, 20);
    } else {
      answer();
    }
    if (dropArmed && stats.accepted >= config.dropAfter) {
      dropArmed = false;
      stats.drops++;
      flushResponses();
      // Anything this session reads after the drop is ignored, as a dead link would lose it. The
      // answers already written still reach the client (FIN, then a hard close).
      session.dropped = true;
      log('dropping the connection after', stats.accepted, 'accepted submits');
      session.close();
      setTimeout(() => session.destroy(), 500);
    }
  });
}

function sendMo(body) {
  const session = [...sessions].find((s) => !s.closed);
  if (!session) return false;
  const coding = Number(body.data_coding || 0);
  const message = coding === 8 ? Buffer.from(body.text, 'utf16le').swap16()
    : coding === 3 ? Buffer.from(body.text, 'latin1') : Buffer.from(body.text, 'ascii');
  session.deliver_sm({
    source_addr_ton: 1,
    source_addr_npi: 1,
    source_addr: String(body.from).replace(/^\+/, ''),
    dest_addr_ton: body.to && /^\+?\d+$/.test(body.to) ? 1 : 5,
    dest_addr_npi: 1,
    destination_addr: String(body.to || '').replace(/^\+/, ''),
    esm_class: 0,
    data_coding: coding,
    short_message: message,
  });
  return true;
}

function control(req, res) {
  let raw = '';
  req.on('data', (chunk) => { raw += chunk; });
  req.on('end', () => {
    const body = raw ? JSON.parse(raw) : {};
    const reply = (code, data) => {
      res.writeHead(code, {'Content-Type': 'application/json'});
      res.end(JSON.stringify(data));
    };
    const url = new URL(req.url, 'http://localhost');
    if (req.method === 'GET' && url.pathname === '/stats') {
      const data = {...stats, sessions: sessions.size};
      if (!url.searchParams.get('messages')) delete data.messages;
      return reply(200, data);
    }
    if (req.method === 'POST' && url.pathname === '/mo') return reply(sendMo(body) ? 200 : 409, {});
    if (req.method === 'POST' && url.pathname === '/drop') {
      sessions.forEach((s) => { stats.drops++; s.destroy(); });
      return reply(200, {});
    }
    if (req.method === 'POST' && url.pathname === '/config') {
      Object.assign(config, body);
      dropArmed = config.dropAfter > stats.accepted;
      return reply(200, config);
    }
    return reply(404, {});
  });
}

const server = smpp.createServer(handleSession);
server.listen(config.port, '127.0.0.1', () => log(`SMPP simulator on 127.0.0.1:${config.port}`));
if (config.controlPort) {
  http.createServer(control).listen(config.controlPort, '127.0.0.1',
    () => log(`control on http://127.0.0.1:${config.controlPort}`));
}
const stop = () => { sessions.forEach((s) => s.destroy()); process.exit(0); };
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
