/**
 * SMTP_CHECK (keepalived check_smtp.c smtp_engine_thread): connect to connect_ip:connect_port,
 * read the greeting and expect 220, send `HELO <helo_name>`, expect 250, send `QUIT` and read
 * one more line (its code is not checked, as keepalived does not); then close. Any other code,
 * a closed connection or connect_timeout passing at any step (the whole dialogue is bounded by
 * it) fails the check.
 *
 * A reply is read as RFC 5321 §4.2.1 writes it: lines `CODE-text` continue, the line `CODE text`
 * (or `CODE` alone) ends it, and its code is the reply's. keepalived reads only the first
 * chunk up to a newline and fails a `220-` multi-line greeting; ulvs waits for the last line,
 * so a mail server with a multi-line banner is not taken for dead. A reply longer than 4 KiB
 * (keepalived's buffer is 512 bytes) fails the check.
 */
import { connect } from 'node:net';
import type { CheckerSpec } from './checker-spec.js';
import { failed, ms, type CheckResult } from './check-result.js';
import { formatIPv4 } from '../wire/addr.js';

/** the most bytes one reply may take */
const MAX_REPLY = 4096;

/** The code of the complete reply in `buf`, 'more' while its last line has not come, or null
 *  when it is not an SMTP reply. */
export function smtpReplyCode(buf: string): number | 'more' | null {
  let start = 0;
  for (;;) {
    const nl = buf.indexOf('\n', start);
    if (nl < 0) return /^(\d{0,3}|\d{3}[- ].*)$/s.test(buf.slice(start)) ? 'more' : null;
    const line = buf.slice(start, nl).replace(/\r$/, '');
    const m = /^(\d{3})([- ]|$)/.exec(line);
    if (!m) return null;
    if (m[2] !== '-') return Number(m[1]);
    start = nl + 1;
  }
}

export function smtpCheck(c: CheckerSpec): Promise<CheckResult> {
  return new Promise((resolve) => {
    const where = `${formatIPv4(c.connectIp)}:${c.connectPort}`;
    const s = connect({ host: formatIPv4(c.connectIp), port: c.connectPort, ...(c.bindTo !== undefined ? { localAddress: formatIPv4(c.bindTo) } : {}) });
    let settled = false;
    const done = (r: CheckResult) => {
      if (settled) return;
      settled = true;
      clearTimeout(t);
      s.destroy();
      resolve(r);
    };
    const t = setTimeout(() => done({ ok: false, reason: `SMTP dialogue with ${where} not done within ${c.connectTimeout}s (${step})` }), ms(c.connectTimeout));
    let step: 'greeting' | 'HELO reply' | 'QUIT reply' = 'greeting';
    let buf = '';
    s.setEncoding('latin1');
    s.on('data', (d: string) => {
      buf += d;
      if (buf.length > MAX_REPLY) return done({ ok: false, reason: `SMTP ${step} from ${where} longer than ${MAX_REPLY} bytes` });
      const code = smtpReplyCode(buf);
      if (code === 'more') return;
      const text = JSON.stringify(buf.split('\n')[0]!.replace(/\r$/, '').slice(0, 80));
      buf = '';
      if (code === null) return done({ ok: false, reason: `SMTP ${step} from ${where} is not an SMTP reply: ${text}` });
      if (step === 'greeting') {
        if (code !== 220) return done({ ok: false, reason: `bad SMTP greeting from ${where}: ${text} (220 expected)` });
        step = 'HELO reply';
        s.write(`HELO ${c.heloName}\r\n`);
      } else if (step === 'HELO reply') {
        if (code !== 250) return done({ ok: false, reason: `bad HELO reply from ${where}: ${text} (250 expected)` });
        step = 'QUIT reply';
        s.write('QUIT\r\n');
      } else done({ ok: true, reason: `SMTP 220, HELO 250, QUIT ${code}` });
    });
    s.on('end', () => done({ ok: false, reason: `SMTP server ${where} closed the connection before the ${step}` }));
    s.on('error', (e: NodeJS.ErrnoException) => done(failed(e, 'SMTP_CHECK', `SMTP ${where}: ${e.code ?? e.message} (${step})`)));
  });
}
