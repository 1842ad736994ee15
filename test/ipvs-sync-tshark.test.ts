/**
 * An independent decoder reads what ulvs's sync encoder writes: the datagrams go into a pcap
 * (Ethernet / IPv4 / UDP to 224.0.0.81:8848, TTL 1, built here) and Wireshark's `ipvs` dissector
 * (`tshark -d udp.port==8848,ipvs`) must show the same header and record fields.
 *
 * What tshark 4.0 (Debian 12) decodes: v1 headers and fixed record parts (IPv4 and IPv6) and v0
 * messages. It does not read v1 options and steps over every v1 record by its fixed size, so the
 * records after one with options are misread by Wireshark (not by the kernel, which uses
 * ver_size): messages with options are checked up to and including their first such record.
 * Control: the same comparison on a copy with one byte changed must find a difference.
 * Skipped when tshark is not installed (.ci/run installs it).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ipv4 } from '../src/wire/build.js';
import { Append, SyncMessageWriter } from '../src/wire/ipvs-sync/message-writer.js';
import { recordOf, V1_FOUR, V1_IPV6, V0_TWO, type RecordFields } from './support/sync-vectors.js';

const HAVE_TSHARK = spawnSync('tshark', ['-v'], { encoding: 'utf8' }).status === 0;

const FIELDS = ['syncid', 'conncount', 'size', 'version', 'proto', 'flags', 'flags.v1', 'state', 'cport', 'vport', 'dport', 'fwmark', 'timeout', 'caddr', 'vaddr', 'daddr', 'caddr6', 'vaddr6', 'daddr6'];

/** A pcap (LINKTYPE_ETHERNET) with one frame per datagram. */
function pcap(datagrams: Uint8Array[]): Buffer {
  const head = Buffer.alloc(24);
  head.writeUInt32LE(0xa1b2c3d4, 0);
  head.writeUInt16LE(2, 4);
  head.writeUInt16LE(4, 6);
  head.writeUInt32LE(65535, 16);
  head.writeUInt32LE(1, 20);
  const parts = [head];
  datagrams.forEach((d, i) => {
    const eth = Buffer.from('01005e000051' + '020000000001' + '0800', 'hex'); // 224.0.0.81's multicast MAC
    const frame = Buffer.concat([eth, ipv4({ src: '192.0.2.1', dst: '224.0.0.81', ttl: 1 }).udp({ sport: 40000, dport: 8848 }).payload(d).build()]);
    const rec = Buffer.alloc(16);
    rec.writeUInt32LE(1_700_000_000 + i, 0);
    rec.writeUInt32LE(frame.length, 8);
    rec.writeUInt32LE(frame.length, 12);
    parts.push(rec, frame);
  });
  return Buffer.concat(parts);
}

/** tshark's view: per frame, field -> list of values. */
function dissect(datagrams: Uint8Array[]): Record<string, string[]>[] {
  const dir = mkdtempSync(join(tmpdir(), 'h5-sync-'));
  try {
    const f = join(dir, 'sync.pcap');
    writeFileSync(f, pcap(datagrams));
    const args = ['-r', f, '-d', 'udp.port==8848,ipvs', '-T', 'fields', '-E', 'occurrence=a', '-E', 'aggregator=,', '-E', 'separator=/t'];
    for (const x of FIELDS) args.push('-e', `ipvs.${x}`);
    const r = spawnSync('tshark', args, { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    return r.stdout
      .trimEnd()
      .split('\n')
      .map((line) => Object.fromEntries(line.split('\t').map((v, i) => [FIELDS[i]!, v === '' ? [] : v.split(',')])));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const hex = (n: number, w: number) => `0x${n.toString(16).padStart(w, '0')}`;

/** What tshark must show for a message of these records (the first `n` records checked). */
function expectMessage(got: Record<string, string[]>, version: number, syncid: number, size: number, recs: RecordFields[], n = recs.length): string[] {
  const diffs: string[] = [];
  const eq = (what: string, a: unknown, b: unknown) => {
    if (JSON.stringify(a) !== JSON.stringify(b)) diffs.push(`${what}: tshark ${JSON.stringify(a)} expected ${JSON.stringify(b)}`);
  };
  eq('syncid', got['syncid'], [String(syncid)]);
  eq('conncount', got['conncount'], [String(recs.length)]);
  eq('size', got['size'], [String(size)]);
  if (version === 1) eq('version', got['version'], ['1']);
  const take = (k: string) => (got[k] ?? []).slice(0, n);
  const want = recs.slice(0, n);
  eq('proto', take('proto'), want.map((r) => hex(r.protocol, 2)));
  eq('flags', take(version === 1 ? 'flags.v1' : 'flags'), want.map((r) => hex(r.flags, version === 1 ? 8 : 4)));
  eq('state', take('state'), want.map((r) => hex(r.state, 4)));
  for (const k of ['cport', 'vport', 'dport'] as const) eq(k, take(k), want.map((r) => String(r[k])));
  if (version === 1) {
    eq('timeout', take('timeout'), want.map((r) => String(r.timeout)));
    eq('fwmark', take('fwmark'), want.map((r) => hex(r.fwmark, 8)));
  }
  for (const k of ['caddr', 'vaddr', 'daddr'] as const) {
    eq(k, take(k), want.filter((r) => r.af === 4).map((r) => r[k]));
    if (n === recs.length) eq(`${k}6`, take(`${k}6`), want.filter((r) => r.af === 6).map((r) => r[k])); // a misread record may look IPv6
  }
  return diffs;
}

function encode(version: number, syncid: number, recs: RecordFields[]): Uint8Array {
  const w = new SyncMessageWriter(1472);
  w.reset(version, syncid);
  for (const f of recs) assert.equal(w.append(recordOf(f)), Append.Ok);
  return Uint8Array.from(w.bytes.subarray(0, w.length));
}

test('tshark: Wireshark\'s ipvs dissector reads the fields ulvs encodes (v1 IPv4, v1 IPv6, v0)', { skip: HAVE_TSHARK ? false : 'tshark not installed' }, () => {
  const plain = V1_FOUR.records.slice(0, 3).map((r) => ({ ...r, seq: undefined, flags: r.flags & ~0x600 }));
  const messages = [
    { v: 1, id: 7, recs: plain },
    { v: 1, id: 0, recs: V1_IPV6.records },
    { v: 0, id: 7, recs: V0_TWO.records },
    { v: 1, id: 7, recs: V1_FOUR.records, n: 3 }, // options: records up to the first with options
    { v: 1, id: 200, recs: [...plain, ...plain, ...plain].map((r, i) => ({ ...r, cport: 1000 + i })) },
  ];
  const bytes = messages.map((m) => encode(m.v, m.id, m.recs));
  const got = dissect(bytes);
  assert.equal(got.length, messages.length);
  messages.forEach((m, i) => assert.deepEqual(expectMessage(got[i]!, m.v, m.id, bytes[i]!.length, m.recs, m.n), [], `message ${i}`));

  // control: one changed byte (record 1's client port, v1 offset 8 + 10) is seen as a difference
  const bad = Uint8Array.from(bytes[0]!);
  bad[19] = bad[19]! ^ 1;
  const diffs = expectMessage(dissect([bad])[0]!, 1, 7, bad.length, plain);
  assert.equal(diffs.length, 1, diffs.join('; '));
  assert.match(diffs[0]!, /^cport/);
});
