// The benchmark's flows written with npm's ari-client, for `make bench`
// (tests/bench/calls.lua runs it against `luari sim-server`, next to
// `luari run tests/bench/flows`). The first Stasis argument picks the flow,
// as it does for luari:
//
//   play: answer, play sound:hello-world to the end, hang up
//   park: answer, wait for a key (DTMF), hang up
//
// Events reach the calls through one client-wide handler per event type and
// a Map by id, not through ari-client's per-instance listeners
// (`playback.once(...)`): those are kept in one array per event type that
// every event of that type scans, which makes each event cost O(calls in
// progress). This is the cheapest way to write the flows with ari-client.
//
//   node bench_client.js URL USER PASSWORD [APP]
//
// Prints "READY" once the events WebSocket is up. On SIGTERM it prints
// "REPORT {json}" (calls started, ended, errors) and exits.

'use strict';

const ari = require('ari-client');

const [url, user, password, app = 'luari'] = process.argv.slice(2);
const MEDIA = 'sound:hello-world';

const report = { started: 0, finished: 0, gone: 0, errors: 0, first_errors: [] };
const playbacks = new Map(); // playback id -> resolve
const parked = new Map();    // channel id -> resolve

function failed(what, err) {
  report.errors += 1;
  if (report.first_errors.length < 10) {
    report.first_errors.push(what + ': ' + String(err && err.message ? err.message : err));
  }
}

function done() {
  process.stdout.write('REPORT ' + JSON.stringify(report) + '\n');
  process.exit(0);
}

async function play(client, channel) {
  await channel.answer();
  const playback = client.Playback();
  const finished = new Promise((resolve) => playbacks.set(playback.id, resolve));
  await channel.play({ media: MEDIA }, playback);
  await finished;
  await channel.hangup();
  return true;
}

async function park(channel) {
  const pressed = new Promise((resolve) => parked.set(channel.id, resolve));
  await channel.answer();
  if (await pressed === 'gone') {
    return false;
  }
  await channel.hangup();
  return true;
}

async function main() {
  const client = await ari.connect(url, user, password);

  client.on('StasisStart', (event, channel) => {
    report.started += 1;
    const flow = event.args && event.args[0];
    const run = flow === 'park' ? park(channel) : play(client, channel);
    run.then((completed) => {
      report.finished += completed ? 1 : 0;
      report.gone += completed ? 0 : 1;
    }, (err) => failed(flow + ' ' + channel.id, err));
  });

  client.on('PlaybackFinished', (event) => {
    const resolve = playbacks.get(event.playback.id);
    if (resolve) {
      playbacks.delete(event.playback.id);
      resolve(event.playback.state);
    }
  });

  client.on('ChannelDtmfReceived', (event) => {
    const resolve = parked.get(event.channel.id);
    if (resolve) {
      parked.delete(event.channel.id);
      resolve(event.digit);
    }
  });

  // The caller went away first: let its flow end.
  client.on('StasisEnd', (event) => {
    const resolve = parked.get(event.channel.id);
    if (resolve) {
      parked.delete(event.channel.id);
      resolve('gone');
    }
  });

  await client.start(app);
  process.stdout.write('READY\n');
}

process.on('SIGTERM', done);
process.on('SIGINT', done);
process.on('uncaughtException', (err) => failed('uncaught', err));
main().catch((err) => {
  failed('connect', err);
  done();
});
