/**
 * The fast path's route-lookup lease under real traffic (docs/fib-direct.md): with only the
 * kernel's and ulvsd's own policy rules, ulvsd lets the program look up the main table directly;
 * an operator's rule revokes that at once, and an offloaded flow then obeys the rule; when the
 * rule goes, the lease comes back. The oracle is the real server's nftables counter of the
 * flow's datagrams. The control writes a lease by hand while the rule is in force: the flow then
 * goes through the rule, so the check that nothing passes it can fail; with the real server's
 * address in the program's local set the same lease does not let it through.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { DirectorBed } from '../../src/lab/director-bed.js';
import { LAB } from '../../src/lab/testbed.js';
import { run } from '../../src/lab/shell.js';
import { fdById } from '../../src/datapath/tun/bpf.js';
import { FibModeMaps } from '../../src/datapath/tun/fib-mode.js';
import { sys } from '../../src/datapath/tun/sys.js';
import { parseIPv4 } from '../../src/wire/addr.js';
import { needsRoot } from '../support/root.js';

const V = LAB.VIP;
const RS = LAB.realServer(0);
const rules = `-A -u ${V}:5353 -s rr\n-a -u ${V}:5353 -r ${RS}:5353 -m\n`;
const counter = (dump: string, name: string) => Number(new RegExp(`\\b${name}=(\\d+)`).exec(dump)?.[1] ?? 0);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const nftMissing = ['/usr/sbin/nft', '/usr/bin/nft'].some((f) => existsSync(f)) ? false : 'needs nft (apt nftables; .ci/run installs it)';

describe('fast path route lookups: the lease', { skip: needsRoot || nftMissing }, () => {
  let bed: DirectorBed;
  let sender: ChildProcess | null = null;
  before(async () => {
    bed = await new DirectorBed({ rules, realServers: 1, udpPort: 5353 }).start();
  });
  after(async () => {
    sender?.kill('SIGKILL');
    await bed?.stop();
  });

  /** Poll the dump until fib_direct is `want`; the ms it took. */
  const until = async (want: number, ms: number): Promise<number> => {
    const t0 = Date.now();
    for (;;) {
      if (counter(await bed.dump(), 'fib_direct') === want) return Date.now() - t0;
      assert.ok(Date.now() - t0 < ms, `fib_direct=${want} within ${ms} ms`);
      await sleep(20);
    }
  };

  test("granted with the kernel's and ulvsd's rules only; an operator's rule revokes it and offloaded traffic obeys the rule; granted again when the rule goes", async () => {
    const ns = bed.bed.realServers[0]!;
    const nft = (script: string) => run(['ip', 'netns', 'exec', ns, 'nft', '-f', '-'], script);
    nft('table ip ulvsfib {\n chain seen {\n  type filter hook input priority 0;\n  udp dport 5353 counter\n }\n}\n');
    const seen = () => Number(/packets (\d+)/.exec(run(['ip', 'netns', 'exec', ns, 'nft', 'list', 'table', 'ip', 'ulvsfib']))?.[1] ?? 0);
    const grew = async (ms: number) => {
      const a = seen();
      await sleep(ms);
      return seen() - a;
    };
    const rule = ['ip', '-n', bed.bed.director, 'rule', '%', 'pref', '100', 'to', RS, 'blackhole'];
    let ruled = false;
    try {
      await until(1, 5000);
      // one UDP flow, 200 datagrams a second from a fixed port: offloaded after its first packets
      const d0 = await bed.dump();
      sender = spawn('ip', ['netns', 'exec', bed.bed.clients[0]!, process.execPath, '-e', `const s = require('dgram').createSocket('udp4'); s.bind(40001, () => setInterval(() => s.send('x', 5353, '${V}'), 5));`], { stdio: 'ignore' });
      await sleep(1000);
      assert.ok((await grew(500)) > 50, 'the flow reaches the real server');
      const d1 = await bed.dump();
      assert.ok(counter(d1, 'offloaded') - counter(d0, 'offloaded') >= 1, 'the flow is in the fast path');

      run(rule.map((a) => (a === '%' ? 'add' : a)));
      ruled = true;
      const revokedMs = await until(0, 1000);
      await sleep(100); // the datagrams in flight
      assert.equal(await grew(600), 0, `nothing passes the blackhole rule (lease revoked after ${revokedMs} ms)`);

      // control: a lease held by hand while the rule is in force carries the flow through it
      const kept = JSON.parse(readFileSync(run(['sh', '-c', `ls ${bed.dir}/*.kernel.json`]).trim(), 'utf8')) as { fastPath: { progId: number } };
      const prog = fdById('prog', kept.fastPath.progId);
      assert.ok(prog !== null, 'the fast path program by its recorded id');
      const maps = new FibModeMaps(prog);
      try {
        maps.lease(process.hrtime.bigint() + 3_000_000_000n);
        assert.ok((await grew(500)) > 50, 'with a stale lease the main table alone routes the flow past the rule');
        // a destination in the local set is looked up through the rules even under a lease
        maps.setLocals([parseIPv4(RS) >>> 0]);
        await sleep(100);
        assert.equal(await grew(400), 0, 'a local destination walks the rules');
        maps.setLocals([]);
        maps.lease(0n);
      } finally {
        maps.close();
        sys.close(prog);
      }
      await sleep(100);
      assert.equal(await grew(400), 0, 'revoked again: nothing passes');

      run(rule.map((a) => (a === '%' ? 'del' : a)));
      ruled = false;
      await until(1, 2000);
      await sleep(200);
      assert.ok((await grew(500)) > 50, 'without the rule the flow reaches the real server again');
      const d2 = await bed.dump();
      assert.ok(counter(d2, 'fib_revokes') >= 1 && counter(d2, 'fib_check_errors') === 0, d2.match(/fib_\w+=\d+/g)?.join(' '));
    } finally {
      sender?.kill('SIGKILL');
      sender = null;
      if (ruled) run(rule.map((a) => (a === '%' ? 'del' : a)));
      nft('delete table ip ulvsfib\n');
    }
  });
});
