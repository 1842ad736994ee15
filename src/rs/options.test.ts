import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isIPv4, parseRsSetup, UsageError } from './options.js';

test('rs-setup command lines that parse', () => {
  assert.deepEqual(parseRsSetup(['dr', '203.0.113.10', '203.0.113.11', '203.0.113.10']), { action: 'setup', mode: 'dr', tunType: 'ipip', tunPort: 0, decap: 'auto', devs: [], vips: ['203.0.113.10', '203.0.113.11'] });
  assert.deepEqual(parseRsSetup(['tun', '--tun-type', 'gue', '--tun-port', '6080', '--dev', 'eth0', '203.0.113.10']), { action: 'setup', mode: 'tun', tunType: 'gue', tunPort: 6080, decap: 'auto', devs: ['eth0'], vips: ['203.0.113.10'] });
  assert.deepEqual(parseRsSetup(['tun', '--tun-type', 'gre', '203.0.113.10']), { action: 'setup', mode: 'tun', tunType: 'gre', tunPort: 0, decap: 'auto', devs: [], vips: ['203.0.113.10'] });
  assert.deepEqual(parseRsSetup(['tun', '--decap', 'bpf', '203.0.113.10']), { action: 'setup', mode: 'tun', tunType: 'ipip', tunPort: 0, decap: 'bpf', devs: [], vips: ['203.0.113.10'] });
  assert.deepEqual(parseRsSetup(['--remove']), { action: 'remove' });
  assert.deepEqual(parseRsSetup(['--status']), { action: 'status' });
});

test('rs-setup refuses bad input with a message that names the problem', () => {
  const bad: [string[], RegExp][] = [
    [[], /dr or tun/],
    [['nat', '203.0.113.10'], /unknown forwarding method 'nat'/],
    [['dr'], /no VIP/],
    [['dr', '203.0.113.300'], /not an IPv4 address/],
    [['dr', '203.0.113.010'], /not an IPv4 address/],
    [['dr', 'vip.example'], /not an IPv4 address/],
    [['dr', '127.0.0.1'], /cannot be a VIP/],
    [['dr', '224.0.0.1'], /cannot be a VIP/],
    [['tun', '--tun-type', 'vxlan', '203.0.113.10'], /unknown tunnel type 'vxlan': ipip, gue or gre/],
    [['tun', '--tun-type', 'gre', '--tun-port', '6080', '203.0.113.10'], /gue only/],
    [['tun', '--tun-type', 'gre', '--decap', 'tunl0', '203.0.113.10'], /ipip only; GRE uses the eBPF program/],
    [['tun', '--tun-type', 'gue', '203.0.113.10'], /needs --tun-port/],
    [['tun', '--tun-port', '6080', '203.0.113.10'], /gue only/],
    [['tun', '--tun-type', 'gue', '--tun-port', '70000', '203.0.113.10'], /not a port number/],
    [['tun', '--tun-type', 'gue', '--tun-port', '6080', '--decap', 'tunl0', '203.0.113.10'], /ipip only/],
    [['tun', '--tun-port'], /needs a value/],
    [['dr', '--tun-type', 'ipip', '203.0.113.10'], /tun only/],
    [['dr', '--dev', 'lo', '203.0.113.10'], /not an interface name/],
    [['dr', '--dev', 'a/b', '203.0.113.10'], /not an interface name/],
    [['dr', '--frob', '203.0.113.10'], /unknown option '--frob'/],
    [['--remove', 'dr'], /no other arguments/],
  ];
  for (const [argv, re] of bad) assert.throws(() => parseRsSetup(argv), (e: unknown) => e instanceof UsageError && re.test(e.message), argv.join(' '));
});

test('IPv4 syntax', () => {
  for (const s of ['0.0.0.0', '203.0.113.10', '255.255.255.255']) assert.ok(isIPv4(s), s);
  for (const s of ['', '1.2.3', '1.2.3.4.5', '1.2.3.256', '01.2.3.4', '1.2.3.-4', '1.2.3.4 ', '0x1.2.3.4']) assert.ok(!isIPv4(s), s);
});
