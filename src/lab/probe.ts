/**
 * Runs inside a client namespace of the test bed: opens a new HTTP connection to HOST:PORT
 * again and again (one at a time, each given up after --timeout ms, the next --interval ms
 * later) until killed, and prints one JSON line per answered request:
 *   {"start": ms since the epoch when its connection was opened, "end": ms when the answer
 *    was complete, "server": the real server that answered}
 * and a line {"failed": N} every 20 failures. A takeover is measured from these lines (the
 * first answer whose connection opened after the cut).
 */
import { request } from 'node:http';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    host: { type: 'string', default: '203.0.113.10' },
    port: { type: 'string', default: '80' },
    timeout: { type: 'string', default: '250' },
    interval: { type: 'string', default: '20' },
  },
});
const timeout = Number(values.timeout);
const interval = Number(values.interval);
let failed = 0;

function once(): Promise<void> {
  const start = Date.now();
  return new Promise((resolve) => {
    const req = request({ host: values.host, port: Number(values.port), path: '/', agent: false, timeout, headers: { connection: 'close' } }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => {
        let server = '?';
        try {
          server = String((JSON.parse(body) as { server?: string }).server);
        } catch {
          /* not the lab's server */
        }
        process.stdout.write(`${JSON.stringify({ start, end: Date.now(), server })}\n`);
        resolve();
      });
      res.on('error', () => resolve());
    });
    const fail = () => {
      if (++failed % 20 === 0) process.stdout.write(`${JSON.stringify({ failed })}\n`);
      resolve();
    };
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', fail);
    req.end();
  });
}

for (;;) {
  await once();
  await new Promise((r) => setTimeout(r, interval));
}
