// The interop test's FreeSWITCH tooling stand-in: the real npm `modesl`
// library, driven line by line by the Go test.
//
// argv: host port password outboundPort
// stdin: one JSON command per line:
//   {"op":"api","id":N,"cmd":"..."}                 -> {"t":"api","id":N,"body":"..."}
//   {"op":"execute","id":N,"uuid":U,"app":A,"arg":X} -> {"t":"executed","id":N,"app":..,"response":..,"uuid":..}
//   {"op":"outbound","bridge":"user/1002"}           -> outbound sessions answer and bridge there
// stdout: one JSON line per event ({"t":"event",...}) and per reply above.
'use strict';
const esl = require('modesl');
const readline = require('readline');

const [host, port, password, outPort] = process.argv.slice(2);
const out = (o) => process.stdout.write(JSON.stringify(o) + '\n');

// The headers the test looks at; the count tells it how much channel data came.
const keep = ['Event-Name', 'Event-Subclass', 'Unique-ID', 'Channel-State', 'Channel-Call-State',
  'Channel-State-Number', 'Answer-State', 'Call-Direction', 'Caller-Destination-Number', 'Caller-Context',
  'Caller-ANI', 'Caller-Caller-ID-Number', 'Other-Type', 'Other-Leg-Unique-ID', 'Application',
  'Application-Data', 'Application-UUID', 'Application-Response', 'CC-Action', 'CC-Agent',
  'CC-Member-Session-UUID', 'Bridge-A-Unique-ID', 'Bridge-B-Unique-ID', 'Hangup-Cause',
  'Channel-Read-Codec-Name', 'FreeSWITCH-IPv4', 'Event-Calling-Function', 'variable_playback_last_status'];

function summary(evt) {
  const h = {};
  for (const k of keep) {
    const v = evt.getHeader(k);
    if (v !== null && v !== undefined) h[k] = v;
  }
  return h;
}

let bridgeTo = '';
const conn = new esl.Connection(host, Number(port), password, () => {
  conn.subscribe(['ALL'], () => out({ t: 'ready' }));
});
conn.on('error', (e) => out({ t: 'error', error: String(e) }));
conn.on('esl::event::**', function (evt) {
  const name = evt.getHeader('Event-Name');
  if (!name || evt.getHeader('Content-Type') === 'command/reply') return;
  out({ t: 'event', name, headers: summary(evt), count: evt.headers.length });
});

const server = new esl.Server({ port: Number(outPort), host: '127.0.0.1', myevents: true }, () => out({ t: 'listening' }));
server.on('connection::ready', (c) => {
  const info = c.getInfo();
  const uuid = info.getHeader('Unique-ID');
  out({ t: 'outbound', uuid, dest: info.getHeader('Caller-Destination-Number'), count: info.headers.length });
  c.execute('answer', '', (evt) => {
    out({ t: 'outbound-answered', uuid, app: evt.getHeader('Application') });
    c.execute('bridge', bridgeTo, (e2) => out({ t: 'outbound-bridged', uuid, response: e2.getHeader('Application-Response') }));
  });
});

readline.createInterface({ input: process.stdin }).on('line', (line) => {
  const m = JSON.parse(line);
  if (m.op === 'api') {
    conn.api(m.cmd, (res) => out({ t: 'api', id: m.id, body: res.getBody() }));
  } else if (m.op === 'execute') {
    conn.execute(m.app, m.arg, m.uuid, (evt) => out({
      t: 'executed', id: m.id, app: evt.getHeader('Application'), uuid: evt.getHeader('Unique-ID'),
      response: evt.getHeader('Application-Response'),
    }));
  } else if (m.op === 'outbound') {
    bridgeTo = m.bridge;
    out({ t: 'ok', id: m.id });
  } else if (m.op === 'quit') {
    server.close();
    conn.disconnect();
    process.exit(0);
  }
});
