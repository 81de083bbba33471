// A scripted WebSocket + HTTP client for end-to-end specs of an ARI
// server's network face. Runs the steps in order and prints one line,
// "REPORT {json}", with the result of each step and every frame each
// socket received.
//
//   node ws_probe.js BASE_URL USER:PASSWORD STEPS_JSON
//
// Steps (an array):
//   {"op":"open","name":"a","path":"/ari/events?app=x"}   handshake result: status, headers, body
//   {"op":"send","name":"a","data":{...} or "text"}
//   {"op":"wait","name":"a","type":"StasisStart","count":1,"timeout":5000}
//   {"op":"http","method":"POST","path":"/ari/channels?...","body":{...}}   with Basic auth
//   {"op":"sleep","ms":200}
//   {"op":"close","name":"a"}                              waits for the close
// "path" may hold {{auth}}, replaced by USER:PASSWORD (for api_key).

'use strict';

const WebSocket = require('ws');

const [base, auth, stepsJson] = process.argv.slice(2);
const steps = JSON.parse(stepsJson);
const sockets = {};
const report = { steps: [], sockets: {} };

function out(code) {
  for (const [name, s] of Object.entries(sockets)) {
    report.sockets[name] = { messages: s.messages, closed: s.closed };
  }
  process.stdout.write('REPORT ' + JSON.stringify(report) + '\n');
  process.exit(code);
}

const guard = setTimeout(() => {
  report.error = 'the probe timed out';
  out(1);
}, 30000);

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const expand = (path) => path.replace('{{auth}}', auth);

function open(step) {
  return new Promise((resolve) => {
    const url = base.replace(/^http/, 'ws') + expand(step.path);
    const ws = new WebSocket(url, { headers: step.headers || {} });
    const s = { ws, messages: [], closed: null, waiters: [] };
    sockets[step.name] = s;
    let handshake = null;
    ws.on('upgrade', (res) => {
      handshake = { status: res.statusCode, headers: res.headers };
    });
    ws.on('open', () => resolve(handshake));
    ws.on('unexpected-response', (req, res) => {
      let body = '';
      res.on('data', (chunk) => { body += chunk; });
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body }));
    });
    ws.on('error', (err) => resolve(handshake || { error: String(err.message || err) }));
    ws.on('message', (data) => {
      let msg;
      try {
        msg = JSON.parse(data.toString());
      } catch (e) {
        msg = { unparsed: data.toString() };
      }
      s.messages.push(msg);
      s.waiters.forEach((w) => w());
    });
    ws.on('close', (code, reason) => {
      s.closed = { code, reason: reason.toString() };
      s.waiters.forEach((w) => w());
    });
  });
}

function wait(step) {
  const s = sockets[step.name];
  const count = step.count || 1;
  const seen = () => s.messages.filter((m) => m.type === step.type).length >= count;
  return new Promise((resolve) => {
    if (seen()) {
      resolve({ ok: true });
      return;
    }
    const timer = setTimeout(() => resolve({ ok: false, why: 'timeout' }), step.timeout || 5000);
    s.waiters.push(() => {
      if (seen()) {
        clearTimeout(timer);
        resolve({ ok: true });
      }
    });
  });
}

async function http(step) {
  const headers = { Authorization: 'Basic ' + Buffer.from(auth).toString('base64') };
  let body;
  if (step.body !== undefined) {
    headers['Content-Type'] = 'application/json';
    body = JSON.stringify(step.body);
  }
  const res = await fetch(base + expand(step.path), { method: step.method || 'GET', headers, body });
  return { status: res.status, headers: Object.fromEntries(res.headers), body: await res.text() };
}

function close(step) {
  const s = sockets[step.name];
  return new Promise((resolve) => {
    if (s.closed) {
      resolve(s.closed);
      return;
    }
    s.waiters.push(() => s.closed && resolve(s.closed));
    s.ws.close(1000);
  });
}

async function main() {
  for (const step of steps) {
    let result;
    if (step.op === 'open') {
      result = await open(step);
    } else if (step.op === 'send') {
      const data = typeof step.data === 'string' ? step.data : JSON.stringify(step.data);
      sockets[step.name].ws.send(data);
      result = { sent: true };
    } else if (step.op === 'wait') {
      result = await wait(step);
    } else if (step.op === 'http') {
      result = await http(step);
    } else if (step.op === 'sleep') {
      await sleep(step.ms);
      result = {};
    } else if (step.op === 'close') {
      result = await close(step);
    } else {
      throw new Error('unknown step ' + JSON.stringify(step));
    }
    report.steps.push(Object.assign({ op: step.op, name: step.name }, result));
  }
  clearTimeout(guard);
  out(0);
}

main().catch((err) => {
  report.error = String(err && err.stack ? err.stack : err);
  out(1);
});
