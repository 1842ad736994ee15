/**
 * ipvsadm command lines that must be refused, with ipvsadm's message and exit status, and
 * valid ones with the command they parse to (ipvs-spec §6.1-6.4).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CliError, parseIpvsadm } from './parse.js';
import { INVALID_COMMAND_LINES } from '../../../test/support/ipvsadm-cases.js';

const argv = (s: string) => s.split(' ').filter(Boolean);

test('invalid command lines: message and exit status as ipvsadm', () => {
  const cases = INVALID_COMMAND_LINES;
  for (const [line, msg, exit] of cases) {
    assert.throws(
      () => parseIpvsadm(argv(line)),
      (e: unknown) => e instanceof CliError && e.message === msg && e.exit === exit,
      `${line} -> ${msg} (${exit})`,
    );
  }
});

test('valid command lines parse as ipvsadm would', () => {
  const a = parseIpvsadm(argv('-A -t 203.0.113.10:80 -s rr -p -M 255.255.255.0'));
  assert.deepEqual([a.name, a.proto, a.service?.port, a.scheduler, a.persistent, a.netmask], ['add-service', 6, 80, 'rr', 360, 0xffffff00]);
  assert.equal(parseIpvsadm(argv('-A -t 203.0.113.10:80 -p 300')).persistent, 300);
  assert.equal(parseIpvsadm(argv('-A -t 203.0.113.10:80')).scheduler, 'wlc', '-A without -s is wlc');
  assert.equal(parseIpvsadm(argv('-E -t 203.0.113.10:80')).scheduler, 'wlc', '-E without -s is wlc');
  assert.equal(parseIpvsadm(argv('-A -t 203.0.113.10:http')).service?.port, 80, 'service names');
  assert.equal(parseIpvsadm(argv('-A -t 203.0.113.10:0 -p')).service?.port, 0, 'port 0 with persistence');
  const u = parseIpvsadm(argv('-A -u 203.0.113.10:53 -s sh -b sh-fallback,sh-port -o'));
  assert.deepEqual([u.proto, u.schedFlags, u.ops], [17, 0x18, true]);
  const r = parseIpvsadm(argv('-a -t 203.0.113.10:80 -r 192.0.2.11 -m -w 3 -x 100 -y 50'));
  assert.deepEqual([r.server?.port, r.method, r.weight, r.uThreshold, r.lThreshold], [80, 'masq', 3, 100, 50], '-r without a port takes the service port');
  const g = parseIpvsadm(argv('-a -t 203.0.113.10:80 -r 192.0.2.11:8080'));
  assert.deepEqual([g.method, g.server?.port], [undefined, 80], 'DR (the default) forces the service port');
  assert.deepEqual(parseIpvsadm(argv('-a --tcp-service=203.0.113.10:80 --real-server 192.0.2.11:8080 --masquerading --weight=2')).weight, 2);
  const l = parseIpvsadm(argv('-Lnc'));
  assert.deepEqual([l.name, l.list?.numeric, l.list?.connection], ['list', true, true], 'bundled short options');
  assert.equal(parseIpvsadm([]).name, 'list', 'no arguments = -L');
  assert.deepEqual(parseIpvsadm(argv('-l -n --stats --exact')).list?.exact, true);
  assert.deepEqual(parseIpvsadm(argv('--set 900 120 300')).timeouts, [900, 120, 300]);
  assert.equal(parseIpvsadm(argv('-L -n --sort')).name, 'list', '--sort does nothing');
  assert.equal(parseIpvsadm(argv('-Z -t 203.0.113.10:80')).service?.port, 80);
  assert.equal(parseIpvsadm(argv('-S -n')).options.has('numeric'), true);
});
