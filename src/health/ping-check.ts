/**
 * PING_CHECK (keepalived check_ping.c): one ICMP echo request to connect_ip, up if its echo
 * reply comes within connect_timeout. keepalived sends 128 bytes of payload from an ICMP
 * datagram ("ping") socket and matches the reply's sequence number; the retry and
 * delay_before_retry rules are the monitor's, as for every checker.
 *
 * Node.js has no ICMP socket, so each check runs iputils' `ping` once (`-c 1`, payload `-s 128`,
 * `-W` connect_timeout, `-I` bindto), which uses the same kind of socket (or a raw one, as root)
 * and does the matching: exit status 0 is a reply, anything else none. This costs a process per
 * check and delay_loop, as MISC_CHECK does. IPv4 only, as ulvs's real servers are.
 *
 * `ping` missing on this director is the director's lack, not the server's: the check is not
 * run (notRun ENOENT), counted and retried, and the server keeps its state. A ping that does not
 * exit by connect_timeout + 1 s is killed and the check fails.
 */
import { spawn } from 'node:child_process';
import type { CheckerSpec } from './checker-spec.js';
import { failed, ms, type CheckResult } from './check-result.js';
import { formatIPv4 } from '../wire/addr.js';

/** keepalived's echo payload (check_ping.c ICMP_BUFSIZE), bytes */
export const PING_PAYLOAD = 128;

/** the command line of one check (`ping` found on PATH) */
export function pingArgs(c: CheckerSpec): string[] {
  const wait = Math.max(0.001, c.connectTimeout);
  return ['-n', '-q', '-c', '1', '-s', String(PING_PAYLOAD), '-W', String(wait), ...(c.bindTo !== undefined ? ['-I', formatIPv4(c.bindTo)] : []), formatIPv4(c.connectIp)];
}

export function pingCheck(c: CheckerSpec, program = 'ping'): Promise<CheckResult> {
  return new Promise((resolve) => {
    const where = formatIPv4(c.connectIp);
    const p = spawn(program, pingArgs(c), { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    p.stderr!.setEncoding('utf8');
    p.stderr!.on('data', (d: string) => {
      if (err.length < 200) err += d;
    });
    let settled = false;
    const done = (r: CheckResult) => {
      if (settled) return;
      settled = true;
      clearTimeout(t);
      resolve(r);
    };
    const t = setTimeout(() => {
      p.kill('SIGKILL');
      done({ ok: false, reason: `no ICMP echo reply from ${where} (ping did not exit within ${c.connectTimeout + 1}s)` });
    }, ms(c.connectTimeout + 1));
    p.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'ENOENT') return done({ ok: false, notRun: 'ENOENT', reason: `PING_CHECK not run: no ${program} program on this director (install iputils-ping)` });
      done(failed(e, 'PING_CHECK', `PING_CHECK could not run ${program}: ${e.message}`));
    });
    p.on('exit', (code) => {
      if (code === 0) done({ ok: true, reason: `ICMP echo reply from ${where}` });
      else done({ ok: false, reason: `no ICMP echo reply from ${where} within ${c.connectTimeout}s${err.trim() ? `: ${err.trim().split('\n')[0]}` : ''}` });
    });
  });
}
