// Drives one call through an ARI server with npm's ari-client, the way its
// README does: connect (loads /ari/api-docs), start the events WebSocket,
// originate a channel into the app, answer it, play a sound, hang up.
// Prints one JSON object on stdout with what happened; exit 0 when the call
// went through, 1 with {"error": ...} otherwise.
//
//   node ari_client_call.js URL USER PASSWORD [APP] [ENDPOINT] [MEDIA]

'use strict';

const ari = require('ari-client');

const [url, user, password, app = 'ari-client-test', endpoint = 'Local/1000@wait',
  media = 'sound:hello-world'] = process.argv.slice(2);

const report = { events: [], resources: [], steps: [] };

function finish(code, error) {
  if (error) {
    report.error = String(error && error.stack ? error.stack : error);
  }
  process.stdout.write('REPORT ' + JSON.stringify(report) + '\n');
  process.exit(code);
}

const guard = setTimeout(() => finish(1, 'timed out; steps so far: ' + report.steps.join(', ')), 20000);

function once(emitter, type) {
  return new Promise((resolve) => emitter.once(type, (event, instance) => resolve({ event, instance })));
}

async function main() {
  const client = await ari.connect(url, user, password);
  report.steps.push('connected');
  report.resources = Object.keys(client._swagger.apis).sort();
  report.channel_operations = Object.keys(client._swagger.apis.channels.operations).sort();
  report.event_models = Object.keys(client._swagger.apis.events.models).length;

  client.on('*', (event, instances) => {
    report.events.push({
      type: event.type,
      channel: event.channel && event.channel.id,
      // ari-client turns typed properties (Channel, Playback, ...) into
      // resource objects with operations: record which kind it made.
      instance: instances && instances.constructor && instances.constructor.name,
    });
  });

  const before = await client.channels.list();
  report.channels_before = before.length;

  await client.start(app);
  report.steps.push('started');

  const channel = client.Channel();
  const entered = once(channel, 'StasisStart');
  const created = await channel.originate({ endpoint, app, appArgs: 'one,two' });
  report.steps.push('originated');
  report.originated = { id: created.id, state: created.state, generated_id: channel.id };

  const { event: start, instance: started } = await entered;
  report.steps.push('stasis-start');
  report.stasis_start = { args: start.args, state: start.channel.state, has_answer: typeof started.answer };

  await started.answer();
  report.steps.push('answered');

  const playback = client.Playback();
  const finished = once(playback, 'PlaybackFinished');
  const queued = await started.play({ media }, playback);
  report.steps.push('playing');
  report.playback = { id: queued.id, state: queued.state, media_uri: queued.media_uri, generated_id: playback.id };
  const { event: done } = await finished;
  report.steps.push('played');
  report.playback_finished = done.playback.state;

  const info = await client.asterisk.getInfo();
  report.asterisk_version = info.system && info.system.version;

  const ended = once(started, 'StasisEnd');
  await started.hangup();
  report.steps.push('hung-up');
  await ended;
  report.steps.push('stasis-end');

  try {
    await client.channels.get({ channelId: created.id });
    report.after_hangup = 'still there';
  } catch (err) {
    report.after_hangup = String(err.message || err);
  }

  client.stop();
  clearTimeout(guard);
  finish(0);
}

// swagger-client throws from a callback when it cannot load the api-docs.
process.on('uncaughtException', (err) => finish(1, err));
main().catch((err) => finish(1, err));
