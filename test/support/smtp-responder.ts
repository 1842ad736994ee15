/**
 * A scripted SMTP server for the SMTP_CHECK tests, run in a real server's namespace:
 *
 *   node smtp-responder.js --port N --script FILE
 *
 * FILE (JSON, read afresh for every connection, so a test changes the behaviour by replacing
 * it, without the port ever closing): { "greeting": ["220-...", "220 ..."], "heloName": NAME?,
 * "heloReply": "250 ..." }. It writes the greeting lines, then answers `HELO NAME` with
 * heloReply when NAME is heloName (any name if none is given) and `501 wrong HELO name`
 * otherwise, answers QUIT with `221 bye` and closes, and any other command with `500 ?`.
 * Prints `ready` once listening and `HELO <name>` for every HELO it receives.
 */
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { parseArgs } from 'node:util';

export interface SmtpScript {
  greeting: string[];
  heloName?: string;
  heloReply: string;
}

const { values } = parseArgs({ options: { port: { type: 'string' }, script: { type: 'string' } } });
const server = createServer((s) => {
  const script = JSON.parse(readFileSync(values.script!, 'utf8')) as SmtpScript;
  s.setEncoding('latin1');
  s.on('error', () => s.destroy());
  s.write(script.greeting.map((l) => `${l}\r\n`).join(''));
  let buf = '';
  s.on('data', (d: string) => {
    buf += d;
    for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
      const line = buf.slice(0, nl).replace(/\r$/, '');
      buf = buf.slice(nl + 1);
      const helo = /^HELO (.*)$/i.exec(line);
      if (helo) {
        process.stdout.write(`HELO ${helo[1]}\n`);
        s.write(script.heloName === undefined || helo[1] === script.heloName ? `${script.heloReply}\r\n` : '501 wrong HELO name\r\n');
      } else if (/^QUIT$/i.test(line)) s.end('221 bye\r\n');
      else s.write('500 ?\r\n');
    }
  });
});
server.listen(Number(values.port), () => process.stdout.write('ready\n'));
