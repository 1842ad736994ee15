/**
 * A scripted SMTP server for the SMTP_CHECK tests, run in a real server's namespace:
 *
 *   node smtp-responder.js --port N --greeting "220 ..." [--greeting "220-..." ...]
 *                          [--helo-name NAME] [--helo-reply "250 ..."]
 *
 * It writes the greeting lines, then answers `HELO NAME` with --helo-reply (default
 * `250 hello`) when NAME is --helo-name (any name if none is given) and `501 wrong HELO name`
 * otherwise, answers QUIT with `221 bye` and closes, and any other command with `500 ?`.
 * Prints `ready` once listening and `HELO <name>` for every HELO it receives.
 */
import { createServer } from 'node:net';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    port: { type: 'string' },
    greeting: { type: 'string', multiple: true, default: ['220 test.example ESMTP'] },
    'helo-name': { type: 'string' },
    'helo-reply': { type: 'string', default: '250 hello' },
  },
});
const server = createServer((s) => {
  s.setEncoding('latin1');
  s.on('error', () => s.destroy());
  s.write(values.greeting.map((l) => `${l}\r\n`).join(''));
  let buf = '';
  s.on('data', (d: string) => {
    buf += d;
    for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
      const line = buf.slice(0, nl).replace(/\r$/, '');
      buf = buf.slice(nl + 1);
      const helo = /^HELO (.*)$/i.exec(line);
      if (helo) {
        process.stdout.write(`HELO ${helo[1]}\n`);
        s.write(values['helo-name'] === undefined || helo[1] === values['helo-name'] ? `${values['helo-reply']}\r\n` : '501 wrong HELO name\r\n');
      } else if (/^QUIT$/i.test(line)) s.end('221 bye\r\n');
      else s.write('500 ?\r\n');
    }
  });
});
server.listen(Number(values.port), () => process.stdout.write('ready\n'));
