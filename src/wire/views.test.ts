import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Ipv4Check, Ipv4View } from './ipv4.js';
import { TcpCheck, TcpView } from './tcp.js';
import { UdpCheck, UdpView } from './udp.js';
import { IcmpView } from './icmp.js';
import { ipv4 } from './build.js';
import { formatIPv4, formatIPv6, maskFromPrefix, parseIPv4, parseIPv6, prefixFromMask } from './addr.js';
import { packetChecksumsOk } from '../../test/support/slow-checksum.js';

// A TCP SYN captured by hand: 198.51.100.2:40000 -> 203.0.113.10:80, id 0x1234, DF, ttl 64.
const SYN_HEX =
  '45000028123440004006' + 'xxxx' + 'c6336402cb00710a' + '9c400050000003e80000000050026000' + 'yyyy' + '0000';

test('IPv4 view reads every field of a built packet', () => {
  const p = ipv4({ src: '198.51.100.2', dst: '203.0.113.10', id: 0x1234, ttl: 64 }).tcp({ sport: 40000, dport: 80, flags: 'S', seq: 1000, window: 0x6000 }).build();
  assert.equal(p.toString('hex').slice(0, 20), SYN_HEX.slice(0, 20));
  assert.equal(p.toString('hex').slice(24, 40), SYN_HEX.slice(24, 40));
  const v = new Ipv4View(p, 0, p.length);
  assert.equal(v.check(), Ipv4Check.Ok);
  assert.equal(v.version, 4);
  assert.equal(v.headerLength, 20);
  assert.equal(v.totalLength, 40);
  assert.equal(v.id, 0x1234);
  assert.equal(v.isFragment, false);
  assert.equal(v.ttl, 64);
  assert.equal(v.protocol, 6);
  assert.equal(formatIPv4(v.src), '198.51.100.2');
  assert.equal(formatIPv4(v.dst), '203.0.113.10');
  assert.ok(v.checksumOk());
  const t = new TcpView(p, 20);
  assert.equal(t.check(20), TcpCheck.Ok);
  assert.equal(t.srcPort, 40000);
  assert.equal(t.dstPort, 80);
  assert.equal(t.seq, 1000);
  assert.equal(t.flags, 0x02);
  assert.equal(t.headerLength, 20);
  assert.equal(t.window, 0x6000);
  assert.deepEqual(packetChecksumsOk(p), { ip: true, l4: true });
});

test('IPv4 view writes fields in place', () => {
  const p = ipv4({ src: '1.2.3.4', dst: '5.6.7.8' }).udp({ sport: 1, dport: 2 }).payload('hi').build();
  const v = new Ipv4View(p, 0, p.length);
  v.src = parseIPv4('192.0.2.11');
  v.dst = parseIPv4('255.255.255.254');
  v.ttl = 3;
  v.fillChecksum();
  assert.equal(formatIPv4(v.src), '192.0.2.11');
  assert.equal(formatIPv4(v.dst), '255.255.255.254');
  assert.equal(v.ttl, 3);
  assert.ok(v.checksumOk());
  const u = new UdpView(p, 20);
  u.srcPort = 65535;
  u.dstPort = 0;
  assert.equal(u.srcPort, 65535);
  assert.equal(u.dstPort, 0);
  assert.equal(u.length, 10);
});

test('IPv4 check: one case per rejection rule', () => {
  const good = ipv4({ src: '1.2.3.4', dst: '5.6.7.8' }).udp({ sport: 1, dport: 2 }).build();
  const v = new Ipv4View();
  assert.equal(v.reset(good, 0, 19).check(), Ipv4Check.Truncated);
  const badVer = Buffer.from(good);
  badVer[0] = 0x65;
  assert.equal(v.reset(badVer, 0, badVer.length).check(), Ipv4Check.BadVersion);
  const badIhl = Buffer.from(good);
  badIhl[0] = 0x44;
  assert.equal(v.reset(badIhl, 0, badIhl.length).check(), Ipv4Check.BadHeaderLength);
  const shortTotal = Buffer.from(good);
  shortTotal.writeUInt16BE(19, 2);
  assert.equal(v.reset(shortTotal, 0, shortTotal.length).check(), Ipv4Check.BadTotalLength);
  const longTotal = Buffer.from(good);
  longTotal.writeUInt16BE(good.length + 1, 2);
  assert.equal(v.reset(longTotal, 0, longTotal.length).check(), Ipv4Check.Truncated);
  const ihlPastEnd = Buffer.from(good);
  ihlPastEnd[0] = 0x4f; // 60-byte header in a 28-byte packet
  assert.notEqual(v.reset(ihlPastEnd, 0, ihlPastEnd.length).check(), Ipv4Check.Ok);
  assert.equal(v.reset(good, 0, good.length).check(), Ipv4Check.Ok);
});

test('fragments are recognised (MF or offset)', () => {
  const v = new Ipv4View();
  const mf = ipv4({ src: '1.2.3.4', dst: '5.6.7.8', flagsFrag: 0x2000 }).udp({ sport: 1, dport: 2 }).build();
  const off = ipv4({ src: '1.2.3.4', dst: '5.6.7.8', flagsFrag: 0x0010 }).udp({ sport: 1, dport: 2 }).build();
  const df = ipv4({ src: '1.2.3.4', dst: '5.6.7.8', flagsFrag: 0x4000 }).udp({ sport: 1, dport: 2 }).build();
  assert.equal(v.reset(mf, 0, mf.length).isFragment, true);
  assert.equal(v.reset(off, 0, off.length).isFragment, true);
  assert.equal(v.fragmentOffset, 128);
  assert.equal(v.reset(df, 0, df.length).isFragment, false);
});

test('TCP and UDP checks reject short headers and bad lengths', () => {
  const t = new TcpView(Buffer.alloc(40), 0);
  assert.equal(t.check(19), TcpCheck.Truncated);
  t.buf[12] = 4 << 4;
  assert.equal(t.check(40), TcpCheck.BadDataOffset);
  t.buf[12] = 15 << 4;
  assert.equal(t.check(40), TcpCheck.BadDataOffset);
  t.buf[12] = 10 << 4;
  assert.equal(t.check(40), TcpCheck.Ok);
  const ub = Buffer.alloc(16);
  const u = new UdpView(ub, 0);
  assert.equal(u.check(7), UdpCheck.Truncated);
  ub.writeUInt16BE(7, 4);
  assert.equal(u.check(16), UdpCheck.BadLength);
  ub.writeUInt16BE(17, 4);
  assert.equal(u.check(16), UdpCheck.BadLength);
  ub.writeUInt16BE(16, 4);
  assert.equal(u.check(16), UdpCheck.Ok);
});

test('ICMP view and builder produce a verifying error message', () => {
  const inner = ipv4({ src: '192.0.2.11', dst: '198.51.100.2' }).udp({ sport: 5353, dport: 40000 }).payload('abcdefgh').build();
  const p = ipv4({ src: '192.0.2.11', dst: '198.51.100.2' }).icmp({ type: 3, code: 3, body: inner.subarray(0, 28) }).build();
  const i = new IcmpView(p, 20);
  assert.equal(i.type, 3);
  assert.equal(i.code, 3);
  assert.deepEqual(packetChecksumsOk(p), { ip: true, l4: true });
});

test('partial-checksum packets carry the folded pseudo-header sum', () => {
  const p = ipv4({ src: '198.51.100.2', dst: '203.0.113.10' }).tcp({ sport: 1, dport: 2 }).payload('x'.repeat(100)).build({ partial: true });
  // pseudo: c633 + 6402 + cb00 + 710a + 0006 + 0078 (=120)
  const s = 0xc633 + 0x6402 + 0xcb00 + 0x710a + 6 + 120;
  const folded = (s & 0xffff) + (s >>> 16);
  assert.equal(new TcpView(p, 20).checksum, folded);
});

test('address parsing is strict and round-trips', () => {
  assert.equal(parseIPv4('203.0.113.10'), 0xcb00710a);
  assert.equal(formatIPv4(0xffffffff), '255.255.255.255');
  for (const bad of ['1.2.3', '1.2.3.4.5', '01.2.3.4', '256.1.1.1', '1.2.3.-1', '', 'a.b.c.d', '1..2.3']) {
    assert.throws(() => parseIPv4(bad), /invalid address/, bad);
  }
  assert.equal(formatIPv6(parseIPv6('2001:db8::1')), '2001:db8::1');
  assert.equal(formatIPv6(parseIPv6('2001:db8:0:0:1:0:0:1')), '2001:db8::1:0:0:1');
  assert.equal(formatIPv6(parseIPv6('::')), '::');
  assert.equal(formatIPv6(parseIPv6('::ffff:192.0.2.1')), '::ffff:c000:201');
  assert.throws(() => parseIPv6('1::2::3'));
  assert.throws(() => parseIPv6('12345::'));
  assert.equal(maskFromPrefix(24), 0xffffff00);
  assert.equal(maskFromPrefix(0), 0);
  assert.equal(prefixFromMask(0xffffff00), 24);
  assert.equal(prefixFromMask(0xff00ff00), -1);
});
