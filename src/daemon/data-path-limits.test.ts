import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkDataPath } from './data-path-limits.js';
import { parseRules } from '../control/rules.js';
import type { RouteTo } from '../datapath/tun/routing.js';
import { formatIPv4 } from '../wire/addr.js';

/** Routes of a made-up host: 192.0.2.0/25 on br0, 192.0.2.128/25 via 192.0.2.9, 192.0.2.1 local, nothing else. */
function route(addr: number): RouteTo {
  const a = formatIPv4(addr >>> 0);
  if (a === '192.0.2.1') return { kind: 'local' };
  const last = Number(a.split('.')[3]);
  if (!a.startsWith('192.0.2.')) return { kind: 'none', error: 'RTNETLINK answers: Network is unreachable' };
  return last < 128 ? { kind: 'onlink', dev: 'br0' } : { kind: 'gateway', via: '192.0.2.9', dev: 'br0' };
}
const caps = { dr: null, route };
const rules = (dest: string) => parseRules(`-A -t 203.0.113.10:80 -s rr\n-a -t 203.0.113.10:80 -r ${dest}\n`);
const refused = (dest: string, code: string, re: RegExp, c: { dr: string | null; route: typeof route } = caps) =>
  assert.throws(() => checkDataPath(rules(dest), c), (e: Error & { code?: string }) => e.code === code && re.test(e.message), dest);

test('tunnelling of every type without checksums is carried, on-link or through a gateway', () => {
  for (const opts of ['-i', '-i --tun-type ipip', '-i --tun-type gue --tun-port 6080', '-i --tun-type gre', '-i --tun-type gue --tun-port 6080 --tun-nocsum'])
    for (const rip of ['192.0.2.11', '192.0.2.200']) assert.doesNotThrow(() => checkDataPath(rules(`${rip}:80 ${opts}`), caps), `${rip} ${opts}`);
  assert.doesNotThrow(() => checkDataPath(rules('192.0.2.11:80 -g'), caps), 'DR on-link');
  assert.doesNotThrow(() => checkDataPath(rules('192.0.2.200:8080 -m'), caps), 'NAT anywhere');
});

test('direct routing stays on-link only; tunnelling needs a route that leaves this host', () => {
  refused('192.0.2.200:80 -g', 'ENETUNREACH', /^Direct routing needs the real server on a directly connected network of the director: it is reached through the gateway 192\.0\.2\.9 \(dev br0\)/);
  refused('192.0.2.1:80 -g', 'ENETUNREACH', /Direct routing .*: it is an address of this host/);
  refused('192.0.2.1:80 -i --tun-type gre', 'ENETUNREACH', /^Tunnelling needs a route from the director to the real server .*: it is an address of this host \(server 192\.0\.2\.1:80, Tunnel\)/);
  refused('198.51.100.7:80 -i --tun-type gue --tun-port 6080', 'ENETUNREACH', /^Tunnelling needs a route .*: there is no route to it \(RTNETLINK answers: Network is unreachable\)/);
});

test('checksummed tunnels are refused, naming the option', () => {
  refused('192.0.2.11:80 -i --tun-type gue --tun-port 6080 --tun-csum', 'EOPNOTSUPP', /^checksummed GUE tunnels \(--tun-csum\) are not supported by ulvs: .*use --tun-nocsum \(the default\)/);
  refused('192.0.2.11:80 -i --tun-type gue --tun-port 6080 --tun-remcsum', 'EOPNOTSUPP', /^checksummed GUE tunnels \(--tun-remcsum\)/);
  refused('192.0.2.11:80 -i --tun-type gre --tun-csum', 'EOPNOTSUPP', /^checksummed GRE tunnels \(--tun-csum\)/);
});

test('without the way out (e.g. --fast-path off) DR and every tunnel type are refused, saying which', () => {
  const off = { dr: 'it needs the kernel fast path', route };
  refused('192.0.2.11:80 -g', 'EOPNOTSUPP', /^Direct routing \(-g, the method when none is given\) is not available: it needs the kernel fast path/, off);
  refused('192.0.2.11:80 -i', 'EOPNOTSUPP', /^IP-in-IP tunnelling \(-i\) is not available/, off);
  refused('192.0.2.11:80 -i --tun-type gue --tun-port 6080', 'EOPNOTSUPP', /^GUE tunnelling \(-i --tun-type gue\) is not available/, off);
  refused('192.0.2.11:80 -i --tun-type gre', 'EOPNOTSUPP', /^GRE tunnelling \(-i --tun-type gre\) is not available/, off);
  assert.doesNotThrow(() => checkDataPath(rules('192.0.2.11:8080 -m'), off));
});
