/**
 * Bulk data through the director's user-space path (`--fast-path off`: every packet crosses the
 * TUN; the kernel fast path has its own tests in fastpath.test.ts): 200 MB each way with
 * identical SHA-256, over the offload path (GSO super-packets counted by the data path), and
 * with a smaller path MTU towards the real servers that only PMTU discovery can handle (the
 * director's own "fragmentation needed" must reach the client translated).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { DirectorBed } from '../../src/lab/director-bed.js';
import { LAB } from '../../src/lab/testbed.js';
import { run } from '../../src/lab/shell.js';
import { needsRoot } from '../support/root.js';
import { downloadAndUpload } from '../support/transfer.js';

const rules = `-A -t ${LAB.VIP}:80 -s rr\n-a -t ${LAB.VIP}:80 -r ${LAB.realServer(0)}:8080 -m\n`;
const counter = (dump: string, name: string) => Number(new RegExp(`${name}=(\\d+)`).exec(dump)?.[1] ?? 0);

describe('bulk transfers through ulvsd', { skip: needsRoot }, () => {
  let bed: DirectorBed;
  before(async () => {
    bed = await new DirectorBed({ rules, realServers: 1, httpPort: 8080, ulvsdArgs: ['--fast-path', 'off'] }).start();
  });
  after(async () => {
    await bed?.stop();
  });

  test('200 MB download and 200 MB upload arrive intact, as GSO super-packets', async () => {
    const before = await bed.dump();
    downloadAndUpload(bed, 200e6, 60_000);
    const after = await bed.dump();
    const gso = counter(after, 'gso_packets') - counter(before, 'gso_packets');
    const reads = counter(after, 'reads') - counter(before, 'reads');
    // 400 MB in MTU-sized packets would be ~280,000 reads; super-packets make it far fewer.
    assert.ok(gso > 100, `GSO super-packets seen: ${gso}`);
    assert.ok(reads < 100_000, `packets read for 400 MB: ${reads}`);
  });

  test('a 1280-byte path MTU towards the real servers: PMTU discovery works through the NAT', async () => {
    run(['ip', '-n', bed.bed.director, 'route', 'replace', '192.0.2.0/24', 'dev', 'br0', 'mtu', '1280']);
    try {
      const before = counter(await bed.dump(), 'forward_icmp_out');
      const [post] = bed.client(['--post-bytes', String(50e6), '--timeout', '20000'], 0, 60_000);
      const [get] = bed.client(['--get-bytes', String(50e6), '--timeout', '20000'], 0, 60_000);
      assert.equal(post?.['ok'], true, JSON.stringify(post));
      assert.equal(get?.['ok'], true, JSON.stringify(get));
      const icmp = counter(await bed.dump(), 'forward_icmp_out') - before;
      assert.ok(icmp >= 1, 'the director\'s own fragmentation-needed was translated for the client');
    } finally {
      run(['ip', '-n', bed.bed.director, 'route', 'replace', '192.0.2.0/24', 'dev', 'br0', 'mtu', '1500']);
    }
  });

  test('without offloads (plain packets, full checksums) transfers arrive intact too', async () => {
    const plain = await new DirectorBed({ rules, realServers: 1, httpPort: 8080, ulvsdArgs: ['--no-offload', '--fast-path', 'off'] }).start();
    try {
      assert.match(plain.ulvsdLog, /offloads none/);
      const [get] = plain.client(['--get-bytes', String(30e6), '--timeout', '20000'], 0, 60_000);
      const [post] = plain.client(['--post-bytes', String(30e6), '--timeout', '20000'], 0, 60_000);
      assert.equal(get?.['ok'], true, JSON.stringify(get));
      assert.equal(post?.['ok'], true, JSON.stringify(post));
      const dump = await plain.dump();
      assert.equal(counter(dump, 'gso_packets'), 0);
      assert.equal(counter(dump, 'csum_partial'), 0);
      assert.ok(counter(dump, 'forward_in') > 10_000, 'MTU-sized packets, one by one');
    } finally {
      await plain.stop();
    }
  });

  test('a smaller MTU on the whole real-server LAN (1280): transfers complete', async () => {
    const small = await new DirectorBed({ rules, realServers: 1, httpPort: 8080, rsMtu: 1280, ulvsdArgs: ['--fast-path', 'off'] }).start();
    try {
      const [post] = small.client(['--post-bytes', String(50e6), '--timeout', '20000'], 0, 60_000);
      const [get] = small.client(['--get-bytes', String(50e6), '--timeout', '20000'], 0, 60_000);
      assert.equal(post?.['ok'], true, JSON.stringify(post));
      assert.equal(get?.['ok'], true, JSON.stringify(get));
    } finally {
      await small.stop();
    }
  });
});
