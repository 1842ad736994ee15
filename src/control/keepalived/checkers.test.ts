/**
 * SMTP_CHECK and PING_CHECK as keepalived.conf declares them (check_smtp.c, check_ping.c):
 * helo_name and its default, host blocks as checkers of their own with keepalived's rules for
 * their connection options, and the checkers still refused, with their reason.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatIPv4 } from '../../wire/addr.js';
import { loadKeepalived } from './config.js';

const load = (body: string) => loadKeepalived('/k.conf', () => `virtual_server 203.0.113.10 25 {\n connect_timeout 7\n real_server 192.0.2.11 2525 {\n${body}\n }\n}\n`);
const where = (c: { connectIp: number; connectPort: number; connectTimeout: number; bindTo?: number; heloName: string }) =>
  `${formatIPv4(c.connectIp)}:${c.connectPort} t=${c.connectTimeout}${c.bindTo !== undefined ? ` from ${formatIPv4(c.bindTo)}` : ''} ${c.heloName}`;

test('SMTP_CHECK: the real server by default, helo_name or keepalived\'s default name', () => {
  const rs = load('  SMTP_CHECK {\n  }\n  SMTP_CHECK {\n   helo_name "foo.bar.com"\n   connect_port 25\n   bindto 192.0.2.1\n  }').services[0]!.realServers[0]!;
  assert.deepEqual(rs.checkers.map(where), ['192.0.2.11:2525 t=7 smtpchecker.keepalived.org', '192.0.2.11:25 t=7 from 192.0.2.1 foo.bar.com']);
});

test('SMTP_CHECK host blocks: one checker each; the first stands for the SMTP_CHECK unless it sets a connection option', () => {
  const hostsOnly = load('  SMTP_CHECK {\n   helo_name h\n   retry 4\n   host {\n    connect_ip 192.0.2.21\n   }\n   host {\n    connect_port 587\n    connect_timeout 2\n    retry 9\n   }\n  }');
  const cs = hostsOnly.services[0]!.realServers[0]!.checkers;
  assert.deepEqual(cs.map(where), ['192.0.2.21:2525 t=7 h', '192.0.2.11:587 t=2 h']);
  assert.deepEqual(cs.map((c) => c.retry), [4, 4], 'a host block gives connection options only');
  assert.ok(hostsOnly.warnings.some((w) => /k\.conf:13:5: retry in an SMTP_CHECK host block is ignored/.test(w)), hostsOnly.warnings.join('\n'));
  // connect_timeout at the SMTP_CHECK is a connection option: the check of the real server itself stays,
  // and a host block without its own timeout takes the real server's (7), not the SMTP_CHECK's
  const own = load('  SMTP_CHECK {\n   connect_timeout 10\n   host {\n    connect_ip 192.0.2.21\n   }\n  }').services[0]!.realServers[0]!.checkers;
  assert.deepEqual(own.map(where), ['192.0.2.11:2525 t=10 smtpchecker.keepalived.org', '192.0.2.21:2525 t=7 smtpchecker.keepalived.org']);
});

test('PING_CHECK: connect_ip, connect_timeout, retry; keepalived\'s defaults', () => {
  const [a, b] = load('  PING_CHECK {\n  }\n  PING_CHECK {\n   connect_ip 192.0.2.99\n   connect_timeout 1\n   retry 4\n   delay_before_retry 2\n  }').services[0]!.realServers[0]!.checkers;
  assert.deepEqual([a!.type, formatIPv4(a!.connectIp), a!.connectTimeout, a!.retry, a!.delayBeforeRetry], ['PING_CHECK', '192.0.2.11', 7, 1, 1]);
  assert.deepEqual([formatIPv4(b!.connectIp), b!.connectTimeout, b!.retry, b!.delayBeforeRetry], ['192.0.2.99', 1, 4, 2]);
});

test('BFD_CHECK and FILE_CHECK are refused with their reason and position', () => {
  assert.throws(() => load('  BFD_CHECK {\n   name b\n  }'), /k\.conf:4:3: BFD_CHECK is not supported by ulvs: it follows a bfd_instance/);
  assert.throws(() => load('  FILE_CHECK {\n  }'), /k\.conf:4:3: FILE_CHECK is not supported by ulvs: track_file/);
});
