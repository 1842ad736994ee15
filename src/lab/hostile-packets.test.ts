/**
 * The hostile generator's classes are what they claim, checked packet by packet against the
 * slow reference checksum (test/support/slow-checksum.ts): 2,000 packets of each class.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CLASSES, writePacket, Xorshift, type Targets } from './hostile-packets.js';
import { packetChecksumsOk } from '../../test/support/slow-checksum.js';
import { parseIPv4 } from '../wire/addr.js';

const VIP = parseIPv4('203.0.113.10') >>> 0;
const CIP = parseIPv4('198.51.100.2') >>> 0;
const RIP = parseIPv4('192.0.2.11') >>> 0;
const t: Targets = {
  services: [
    { proto: 6, addr: VIP, port: 80 },
    { proto: 17, addr: VIP, port: 5300 },
  ],
  realServers: [{ proto: 6, addr: RIP, port: 8080 }],
  live: [{ proto: 6, caddr: CIP, cport: 40000, vaddr: VIP, vport: 7000, daddr: RIP, dport: 7000 }],
};
const u16 = (b: Buffer, o: number) => b.readUInt16BE(o);
const u32 = (b: Buffer, o: number) => b.readUInt32BE(o);

test('every class writes what it claims (2,000 packets each)', () => {
  const r = new Xorshift(7);
  const b = Buffer.alloc(300);
  const ACK = 16;
  for (const c of CLASSES) {
    for (let i = 0; i < 2000; i++) {
      b.fill(0xee);
      const len = writePacket(c, r, t, b, 0);
      assert.ok(len >= 1 && len <= 256, `${c}: length ${len}`);
      const p = b.subarray(0, len);
      const total = u16(b, 2);
      const ok = () => packetChecksumsOk(p);
      switch (c) {
        case 'tcp_flags':
        case 'other_host':
        case 'udp':
          assert.equal(total, len, c);
          assert.deepEqual(ok(), { ip: true, l4: true }, c);
          assert.equal(u32(b, 16), VIP, c);
          break;
        case 'bad_l4_checksum':
          assert.deepEqual(ok(), { ip: true, l4: false }, c);
          break;
        case 'bad_ip_checksum':
          assert.equal(ok().ip, false, c);
          break;
        case 'truncated':
          assert.ok(len < total, `${c}: ${len} bytes of ${total}`);
          break;
        case 'bad_header': {
          const bad = b[0]! >> 4 !== 4 || (b[0]! & 15) < 5 || total < 20 || total !== len;
          assert.ok(bad, `${c}: version/ihl ${b[0]!.toString(16)} total ${total} of ${len}`);
          assert.equal(ok().ip || (b[0]! & 15) < 5, true, `${c}: the header checksum is right, so the fault is the field`);
          break;
        }
        case 'ip_options':
          assert.ok((b[0]! & 15) > 5 && b[0]! >> 4 === 4, c);
          assert.equal(total, len, c);
          assert.deepEqual(ok(), { ip: true, l4: true }, c);
          break;
        case 'fragment':
          assert.notEqual(u16(b, 6) & 0x3fff, 0, `${c}: MF or an offset`);
          assert.equal(ok().ip, true, c);
          break;
        case 'icmp_garbage':
          assert.equal(b[9], 1, c);
          assert.equal(u32(b, 16), VIP, c);
          break;
        case 'icmp_live':
          assert.equal(b[9], 1, c);
          assert.deepEqual(ok(), { ip: true, l4: true }, c);
          assert.ok([3, 11].includes(b[20]!), c);
          assert.equal(u32(b, 28 + 12), VIP, `${c}: quotes VIP -> client`);
          assert.equal(u32(b, 28 + 16), CIP, c);
          assert.equal(u16(b, 48), 7000, c);
          assert.equal(u16(b, 50), 40000, c);
          break;
        case 'unknown_proto':
          assert.ok(![1, 6, 17].includes(b[9]!), `${c}: protocol ${b[9]}`);
          assert.equal(ok().ip, true, c);
          break;
        case 'garbage':
          break;
        case 'live_tuple':
        case 'live_reply': {
          const [src, sport, dst, dport] = c === 'live_tuple' ? [CIP, 40000, VIP, 7000] : [RIP, 7000, CIP, 40000];
          assert.deepEqual([u32(b, 12), u16(b, 20), u32(b, 16), u16(b, 22)], [src, sport, dst, dport], c);
          // a segment the endpoint could accept never carries ACK (hostile-packets.ts header)
          if (ok().l4) assert.equal(b[33]! & ACK, 0, `${c}: a valid checksum without ACK`);
          break;
        }
        case 'at_rs':
          assert.equal(u32(b, 16), RIP, c);
          assert.deepEqual(ok(), { ip: true, l4: true }, c);
          break;
      }
    }
  }
});

test('the same seed writes the same packets', () => {
  const run = (seed: number) => {
    const r = new Xorshift(seed);
    const b = Buffer.alloc(300);
    const out: string[] = [];
    for (let i = 0; i < 200; i++) out.push(b.subarray(0, writePacket(CLASSES[i % CLASSES.length]!, r, t, b, 0)).toString('hex'));
    return out;
  };
  assert.deepEqual(run(42), run(42));
  assert.notDeepEqual(run(42), run(43));
});
