/** Rules files: scheduler-flag names map to the same bits as ipvsadm's -b; other names are refused. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatRules, parseRules, RulesError } from './rules.js';
import { SvcFlag } from '../core/service.js';

test('-b names set their bits; unknown and Object.prototype names are refused with file:line', () => {
  const r = parseRules('-A -t 203.0.113.10:80 -s sh -b sh-fallback,sh-port\n', 'rules');
  assert.equal(r.services[0]!.schedFlags, SvcFlag.SCHED1 | SvcFlag.SCHED2);
  for (const name of ['nosuch', 'toString', 'constructor', '__proto__'])
    assert.throws(() => parseRules(`-A -t 203.0.113.10:80 -s rr\n-A -t 203.0.113.10:81 -s rr -b ${name}\n`, 'rules'), (e: unknown) => e instanceof RulesError && /rules:2/.test(e.message) && e.message.includes(`invalid scheduler flag \`${name}'`), name);
});

test('-S form of DR and tunnel servers reads back byte for byte (ipvs-spec §6.8)', () => {
  const text = [
    '-A -t 203.0.113.10:80 -s rr',
    '-a -t 203.0.113.10:80 -r 192.0.2.11:80 -g -w 1',
    '-a -t 203.0.113.10:80 -r 192.0.2.12:80 -i -w 3 --tun-type ipip',
    '-a -t 203.0.113.10:80 -r 192.0.2.13:80 -i -w 1 --tun-type gue --tun-port 6080 --tun-csum',
    '-a -t 203.0.113.10:80 -r 192.0.2.14:80 -i -w 1 --tun-type gre --tun-nocsum',
    '-a -t 203.0.113.10:80 -r 192.0.2.15:8080 -m -w 1',
    '',
  ].join('\n');
  assert.equal(formatRules(parseRules(text)), text);
  // a DR server written with another port gets the service port, as ipvsadm does
  assert.equal(parseRules('-A -t 203.0.113.10:80\n-a -t 203.0.113.10:80 -r 192.0.2.11:8080 -g\n').dests[0]!.dest.port, 80);
});
