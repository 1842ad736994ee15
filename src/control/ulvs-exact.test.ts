/**
 * The per-service switch `ulvs-exact` (docs/kernel-setup.md "Selecting the exact path"): a
 * scheduler-flag name of ipvsadm's -b / --sched-flags setting ulvs's own bit ULVS_EXACT, through
 * every path a flag takes: the ipvsadm parser, ulvsadm's request body, the admin API's schema,
 * the director, the -L listing and the -S save form (round trip). Bad names are refused.
 * Control: the save round trip and the listing compare whole lines, so a dropped or renamed flag
 * fails them; 0x40 (no name) stays refused by the director.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CliError, parseIpvsadm } from './ipvsadm/parse.js';
import { ipvsadmRunner } from './ipvsadm/run.js';
import { ServiceBody } from './admin-bodies.js';
import { formatRules, parseRules } from './rules.js';
import { formatListing, NUMERIC } from './listing.js';
import { Director } from '../core/director.js';
import { defaultRegistry } from '../sched/index.js';
import { SvcFlag, schedFlagNames, ULVS_EXACT } from '../core/service.js';

const argv = (s: string) => s.split(' ').filter(Boolean);

test('ipvsadm -b ulvs-exact (alone or with other flags) parses to the ulvs bit; bad names refused', () => {
  assert.equal(parseIpvsadm(argv('-A -t 203.0.113.10:80 -s rr -b ulvs-exact')).schedFlags, ULVS_EXACT);
  assert.equal(parseIpvsadm(argv('-A -t 203.0.113.10:80 -s sh -b sh-port,ulvs-exact')).schedFlags, SvcFlag.SCHED2 | ULVS_EXACT);
  assert.equal(parseIpvsadm(argv('-E -t 203.0.113.10:80 -s mh --sched-flags ulvs-exact,mh-fallback')).schedFlags, SvcFlag.SCHED1 | ULVS_EXACT);
  for (const bad of ['ulvs-Exact', 'ulvs', 'exact', 'ulvs-exact,', 'ulvs-exactly'])
    assert.throws(() => parseIpvsadm(argv(`-A -t 203.0.113.10:80 -s rr -b ${bad}`)), (e: unknown) => e instanceof CliError && /invalid scheduler flag/.test(e.message), bad);
});

test('ulvsadm sends the name; the admin API schema takes it and refuses unknown names', async () => {
  const calls: unknown[] = [];
  const runner = ipvsadmRunner(async (_m, _p, body) => (calls.push(body), { status: 201, json: {}, text: '{}' }), { out: () => {}, err: () => {}, stdin: () => '' });
  await runner.execute(parseIpvsadm(argv('-A -t 203.0.113.10:80 -s sh -b sh-fallback,ulvs-exact')));
  assert.deepEqual((calls[0] as { schedFlags: string[] }).schedFlags, ['sh-fallback', 'ulvs-exact']);
  const body = { protocol: 'tcp', address: '203.0.113.10', port: 80, scheduler: 'rr' };
  assert.equal(ServiceBody.safeParse({ ...body, schedFlags: ['ulvs-exact'] }).success, true);
  assert.equal(ServiceBody.safeParse({ ...body, schedFlags: ['ulvs-exactly'] }).success, false);
});

test('the director keeps the bit (an edit without it clears it); bits without a name stay refused', () => {
  const d = new Director({ schedulers: defaultRegistry(), maxConns: 16 });
  const k = { proto: 6, addr: 0xcb00710a, port: 80 };
  assert.equal(d.addService({ ...k, scheduler: 'sh', schedFlags: ULVS_EXACT | SvcFlag.SCHED2 }).flags, ULVS_EXACT | SvcFlag.SCHED2);
  assert.equal(d.editService({ ...k, scheduler: 'sh', schedFlags: SvcFlag.SCHED2 }).flags, SvcFlag.SCHED2);
  assert.throws(() => d.addService({ ...k, port: 81, schedFlags: 0x40 }), /scheduler flags/);
  assert.throws(() => d.addService({ ...k, port: 82, schedFlags: 0x4000 }), /scheduler flags/);
});

test('-L shows it with the other scheduler flags; -S saves it and reads back byte for byte', () => {
  assert.deepEqual(schedFlagNames('sh', SvcFlag.SCHED1 | ULVS_EXACT), ['sh-fallback', 'ulvs-exact']);
  assert.deepEqual(schedFlagNames('wrr', ULVS_EXACT), ['ulvs-exact']);
  const text = ['-A -t 203.0.113.10:80 -s rr -b ulvs-exact', '-A -t 203.0.113.10:81 -s sh -b sh-fallback,sh-port,ulvs-exact', '-A -t 203.0.113.10:82 -s mh', ''].join('\n');
  assert.equal(formatRules(parseRules(text)), text);
  const d = new Director({ schedulers: defaultRegistry(), maxConns: 16 });
  for (const s of parseRules(text).services) d.addService(s);
  const out = formatListing(d.snapshot(), { names: NUMERIC });
  assert.match(out, /\nTCP  203\.0\.113\.10:80 rr \(ulvs-exact\)\n/);
  assert.match(out, /\nTCP  203\.0\.113\.10:81 sh \(sh-fallback,sh-port,ulvs-exact\)\n/);
  assert.match(out, /\nTCP  203\.0\.113\.10:82 mh\n/);
});
