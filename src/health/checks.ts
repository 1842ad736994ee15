/**
 * One run of each health checker against a real server (ecosystem.md §1.4; SMTP_CHECK in
 * smtp-check.ts, PING_CHECK in ping-check.ts). Every run is
 * bounded by the checker's connect_timeout (misc_timeout for MISC_CHECK) and resolves, never
 * rejects: {ok, reason} plus, for MISC_CHECK with misc_dynamic, a weight.
 *
 * A check this director could not make for want of its own resources (no file descriptor for
 * the socket, no process for the script: EMFILE, ENFILE, EAGAIN, ENOMEM) says nothing about the
 * real server: it resolves with `notRun` set to the errno name, and the monitor keeps the
 * server's state (keepalived's tcp_connect_thread likewise logs "fail to create socket.
 * Rescheduling." and tries again after delay_loop without a verdict).
 */
import { createHash, randomBytes } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { connect } from 'node:net';
import { spawn } from 'node:child_process';
import type { CheckerSpec } from './checker-spec.js';
import { formatIPv4 } from '../wire/addr.js';
import { failed, ms, type CheckResult } from './check-result.js';
import { pingCheck } from './ping-check.js';
import { smtpCheck } from './smtp-check.js';

export type { CheckResult } from './check-result.js';
export { RESOURCE_ERRORS } from './check-result.js';

/** Run `f`, turning a synchronous throw (a socket or process not made) into a result. */
function guarded(what: string, f: () => Promise<CheckResult>): Promise<CheckResult> {
  try {
    return f();
  } catch (e) {
    return Promise.resolve(failed(e as NodeJS.ErrnoException, what, `${what} failed: ${(e as Error).message}`));
  }
}

function tcpCheck(c: CheckerSpec): Promise<CheckResult> {
  return new Promise((resolve) => {
    const s = connect({ host: formatIPv4(c.connectIp), port: c.connectPort, ...(c.bindTo !== undefined ? { localAddress: formatIPv4(c.bindTo) } : {}) });
    const done = (r: CheckResult) => {
      clearTimeout(t);
      s.destroy();
      resolve(r);
    };
    const t = setTimeout(() => done({ ok: false, reason: `TCP connect timeout after ${c.connectTimeout}s` }), ms(c.connectTimeout));
    s.on('connect', () => done({ ok: true, reason: 'TCP connect ok' }));
    s.on('error', (e: NodeJS.ErrnoException) => done(failed(e, 'TCP_CHECK', `TCP connect failed: ${e.code ?? e.message}`)));
  });
}

async function httpCheck(c: CheckerSpec): Promise<CheckResult> {
  for (const u of c.urls) {
    const r = await new Promise<CheckResult>((resolve) => {
      const req = (c.type === 'SSL_GET' ? httpsRequest : httpRequest)(
        {
          host: formatIPv4(c.connectIp),
          port: c.connectPort,
          path: u.path,
          method: 'GET',
          agent: false,
          ...(c.bindTo !== undefined ? { localAddress: formatIPv4(c.bindTo) } : {}),
          headers: { host: c.virtualhost ?? `${formatIPv4(c.connectIp)}:${c.connectPort}`, connection: 'close', 'user-agent': 'ulvs-checker' },
          ...(c.type === 'SSL_GET' ? { rejectUnauthorized: false } : {}),
        },
        (res) => {
          const h = createHash('md5');
          res.on('data', (d: Buffer) => h.update(d));
          res.on('end', () => {
            clearTimeout(t);
            const status = res.statusCode ?? 0;
            if (u.statusCodes.length > 0 && !u.statusCodes.some(([a, b]) => status >= a && status <= b))
              return resolve({ ok: false, reason: `HTTP status ${status} for ${u.path}` });
            const digest = h.digest('hex');
            if (u.digest !== undefined && digest !== u.digest) return resolve({ ok: false, reason: `MD5 digest ${digest} for ${u.path}, expected ${u.digest}` });
            resolve({ ok: true, reason: `HTTP ${status} for ${u.path}` });
          });
          res.on('error', (e) => resolve({ ok: false, reason: `HTTP read failed: ${e.message}` }));
        },
      );
      const t = setTimeout(() => {
        req.destroy();
        resolve({ ok: false, reason: `HTTP timeout after ${c.connectTimeout}s for ${u.path}` });
      }, ms(c.connectTimeout));
      req.on('error', (e: NodeJS.ErrnoException) => {
        clearTimeout(t);
        resolve(failed(e, c.type, `HTTP request failed: ${e.code ?? e.message}`));
      });
      req.end();
    });
    if (!r.ok) return r;
  }
  return { ok: true, reason: `${c.urls.length} URL(s) ok` };
}

function miscCheck(c: CheckerSpec): Promise<CheckResult> {
  return new Promise((resolve) => {
    const p = spawn('/bin/sh', ['-c', c.miscPath!], { stdio: 'ignore' });
    const t = setTimeout(() => {
      p.kill('SIGKILL');
      resolve({ ok: false, reason: `MISC_CHECK timed out after ${c.miscTimeout}s` });
    }, ms(c.miscTimeout));
    p.on('error', (e: NodeJS.ErrnoException) => {
      clearTimeout(t);
      resolve(failed(e, 'MISC_CHECK', `MISC_CHECK could not run: ${e.message}`));
    });
    p.on('exit', (code, signal) => {
      clearTimeout(t);
      if (signal) return;
      if (code === 0) return resolve({ ok: true, reason: 'MISC_CHECK exit 0', ...(c.miscDynamic ? { weight: null } : {}) });
      if (c.miscDynamic && code !== null && code >= 2) return resolve({ ok: true, reason: `MISC_CHECK exit ${code}: weight ${code - 2}`, weight: code - 2 });
      resolve({ ok: false, reason: `MISC_CHECK exit ${code}` });
    });
  });
}

/** A DNS query (RFC 1035 §4.1) for name/type with a random id. */
function dnsQuery(name: string, type: string): { id: number; msg: Buffer } {
  const types: Record<string, number> = { A: 1, NS: 2, CNAME: 5, SOA: 6, MX: 15, TXT: 16, AAAA: 28 };
  const id = randomBytes(2).readUInt16BE(0);
  const labels = name.replace(/\.$/, '').split('.').filter(Boolean);
  const q = Buffer.concat([...labels.map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l)])), Buffer.from([0])]);
  const head = Buffer.alloc(12);
  head.writeUInt16BE(id, 0);
  head.writeUInt16BE(0x0100, 2); // recursion desired
  head.writeUInt16BE(1, 4);
  const tail = Buffer.alloc(4);
  tail.writeUInt16BE(types[type] ?? 6, 0);
  tail.writeUInt16BE(1, 2);
  return { id, msg: Buffer.concat([head, q, tail]) };
}

function udpCheck(c: CheckerSpec): Promise<CheckResult> {
  return new Promise((resolve) => {
    const s = createSocket('udp4');
    const dns = c.type === 'DNS_CHECK' ? dnsQuery(c.dnsName, c.dnsType) : null;
    const needReply = dns !== null || c.requireReply;
    const done = (r: CheckResult) => {
      clearTimeout(t);
      s.close();
      resolve(r);
    };
    const t = setTimeout(
      () => done(needReply ? { ok: false, reason: `no ${dns ? 'DNS answer' : 'UDP reply'} within ${c.connectTimeout}s` } : { ok: true, reason: 'no ICMP error' }),
      ms(c.connectTimeout),
    );
    s.on('message', (m) => {
      if (dns && (m.length < 12 || m.readUInt16BE(0) !== dns.id || (m[2]! & 0x80) === 0)) return;
      done({ ok: true, reason: dns ? `DNS answer rcode ${m[3]! & 15}` : 'UDP reply' });
    });
    s.on('error', (e: NodeJS.ErrnoException) => done(failed(e, c.type, `UDP ${e.code ?? e.message}`)));
    const go = () => s.connect(c.connectPort, formatIPv4(c.connectIp), () => s.send(dns ? dns.msg : Buffer.from(c.payload ?? '', 'hex')));
    if (c.bindTo !== undefined) s.bind(0, formatIPv4(c.bindTo), go);
    else go();
  });
}

export function runCheck(c: CheckerSpec): Promise<CheckResult> {
  switch (c.type) {
    case 'TCP_CHECK':
      return guarded(c.type, () => tcpCheck(c));
    case 'HTTP_GET':
    case 'SSL_GET':
      return guarded(c.type, () => httpCheck(c));
    case 'MISC_CHECK':
      return guarded(c.type, () => miscCheck(c));
    case 'UDP_CHECK':
    case 'DNS_CHECK':
      return guarded(c.type, () => udpCheck(c));
    case 'SMTP_CHECK':
      return guarded(c.type, () => smtpCheck(c));
    case 'PING_CHECK':
      return guarded(c.type, () => pingCheck(c));
  }
}
