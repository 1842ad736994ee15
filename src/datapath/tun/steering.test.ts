import { test } from 'node:test';
import assert from 'node:assert/strict';
import { steeringProgram, steeringSpec, type SteeringSpec } from './steering.js';
import { parseIPv4 } from '../../wire/addr.js';

/**
 * A small interpreter for the eBPF subset the steering program uses (ALU/ALU64 with K/X
 * operands, LD_ABS/LD_IND, JA/JEQ/JNE, JMP32, EXIT), following the kernel's semantics: 32-bit
 * ALU results are zero-extended, packet loads are big-endian, and a load outside the packet
 * ends the program with 0. It lets the tests run the program on packets without a kernel.
 */
function runBpf(code: Buffer, pkt: Buffer): number {
  const r = new Array<bigint>(11).fill(0n);
  const M32 = 0xffffffffn;
  const M64 = 0xffffffffffffffffn;
  for (let pc = 0; pc < code.length / 8; pc++) {
    const op = code[pc * 8]!;
    const dst = code[pc * 8 + 1]! & 15;
    const src = code[pc * 8 + 1]! >> 4;
    const off = code.readInt16LE(pc * 8 + 2);
    const imm = code.readInt32LE(pc * 8 + 4);
    const cls = op & 7;
    if (cls === 0x00) {
      // LD ABS/IND
      const size = { 0x00: 4, 0x08: 2, 0x10: 1 }[op & 0x18]!;
      const at = Number((op & 0xe0) === 0x40 ? (r[src]! + BigInt(imm)) & M32 : BigInt(imm));
      if (at < 0 || at + size > pkt.length) return 0;
      r[0] = BigInt(size === 4 ? pkt.readUInt32BE(at) : size === 2 ? pkt.readUInt16BE(at) : pkt[at]!);
    } else if (cls === 0x04 || cls === 0x07) {
      const wide = cls === 0x07;
      const mask = wide ? M64 : M32;
      const a = r[dst]! & mask;
      const b = ((op & 0x08) !== 0 ? r[src]! : BigInt.asUintN(64, BigInt(imm))) & mask;
      const f: Record<number, () => bigint> = { 0x00: () => a + b, 0x20: () => a * b, 0x40: () => a | b, 0x50: () => a & b, 0x60: () => a << b, 0x70: () => a >> b, 0xa0: () => a ^ b, 0xb0: () => b };
      const fn = f[op & 0xf0];
      assert.ok(fn, `unsupported ALU op 0x${op.toString(16)}`);
      r[dst] = fn() & mask;
    } else if (cls === 0x05 || cls === 0x06) {
      if (op === 0x95) return Number(r[0]! & M32);
      const mask = cls === 0x06 ? M32 : M64;
      const a = r[dst]! & mask;
      const b = BigInt.asUintN(64, BigInt(imm)) & mask;
      const taken = { 0x00: true, 0x10: a === b, 0x50: a !== b }[op & 0xf0];
      assert.ok(taken !== undefined, `unsupported jump 0x${op.toString(16)}`);
      if (taken) pc += off;
    } else assert.fail(`unsupported class ${cls}`);
  }
  assert.fail('ran off the end');
}

const ip = parseIPv4;
const TCP = 6;
const UDP = 17;
function ipv4(proto: number, src: string, dst: string, payload: Buffer): Buffer {
  const h = Buffer.alloc(20);
  h[0] = 0x45;
  h[9] = proto;
  h.writeUInt16BE(20 + payload.length, 2);
  h.writeUInt32BE(ip(src) >>> 0, 12);
  h.writeUInt32BE(ip(dst) >>> 0, 16);
  return Buffer.concat([h, payload]);
}
const ports = (sp: number, dp: number) => {
  const b = Buffer.alloc(20);
  b.writeUInt16BE(sp, 0);
  b.writeUInt16BE(dp, 2);
  return b;
};
const seg = (proto: number, src: string, sp: number, dst: string, dp: number) => ipv4(proto, src, dst, ports(sp, dp));
/** An ICMP error from `from` to `to` quoting (the first 28 bytes of) `quoted`. */
const icmpError = (from: string, to: string, quoted: Buffer) => ipv4(1, from, to, Buffer.concat([Buffer.from([3, 3, 0, 0, 0, 0, 0, 0]), quoted.subarray(0, 28)]));

const hash = (key: number) => (Math.imul(key, 0x9e3779b1) >>> 0) >>> 16;
const VIP = '203.0.113.10';
const svc = (proto: number, port: number, persistent?: number, netmask?: string) => ({ proto, addr: ip(VIP), port, ...(persistent ? { persistent, netmask: netmask ? ip(netmask) : undefined } : {}) });
const dest = (s: { proto: number; addr: number; port: number }, rip: string, port: number) => ({ service: s, dest: { addr: ip(rip), port } });

// web: no persistence; shop: persistent by /24; api: no persistence of its own but shares the
// real-server endpoint 192.0.2.12:8443 with shop; dns: UDP, no persistence.
const web = svc(TCP, 80);
const shop = svc(TCP, 443, 300, '255.255.255.0');
const api = svc(TCP, 8443);
const dns = svc(UDP, 53);
const services = [web, shop, api, dns];
const dests = [dest(web, '192.0.2.11', 8080), dest(web, '192.0.2.12', 8080), dest(shop, '192.0.2.12', 8443), dest(api, '192.0.2.12', 8443), dest(api, '192.0.2.13', 9000), dest(dns, '192.0.2.11', 5353)];

test('steeringSpec: persistent services and the services sharing their real-server endpoints key on the client network', () => {
  const spec = steeringSpec(services, dests);
  assert.deepEqual(spec.vips, [ip(VIP) >>> 0]);
  assert.deepEqual(
    spec.inbound.map((e) => [e.port, e.mask >>> 0]),
    [
      [443, 0xffffff00],
      [8443, 0xffffff00],
    ],
  );
  assert.deepEqual(
    spec.outbound.map((e) => [e.addr >>> 0, e.port]),
    [
      [ip('192.0.2.12') >>> 0, 8443],
      [ip('192.0.2.13') >>> 0, 9000],
    ],
  );
  assert.deepEqual(steeringSpec([web, dns], dests), { vips: [ip(VIP) >>> 0], inbound: [], outbound: [] }, 'no persistence: nothing masked');
  // the coarsest netmask of a group wins
  const shop16 = svc(TCP, 444, 60, '255.255.0.0');
  const g = steeringSpec([shop, shop16], [dest(shop, '192.0.2.12', 8443), dest(shop16, '192.0.2.12', 8443)]);
  assert.deepEqual(g.inbound.map((e) => e.mask >>> 0), [0xffff0000, 0xffff0000]);
});

test('steering program: both directions of a connection and ICMP errors about it meet in one queue', () => {
  const prog = steeringProgram(steeringSpec(services, dests));
  const cases: [string, { proto: number; port: number }, string, number][] = [
    ['web', web, '192.0.2.11', 8080],
    ['shop', shop, '192.0.2.12', 8443],
    ['api', api, '192.0.2.13', 9000],
    ['dns', dns, '192.0.2.11', 5353],
  ];
  for (const [name, s, rip, rport] of cases)
    for (const [client, cport] of [
      ['198.51.100.2', 40000],
      ['198.51.100.77', 51234],
      ['192.0.2.200', 1025],
    ] as const) {
      const request = seg(s.proto, client, cport, VIP, s.port);
      const reply = seg(s.proto, rip, rport, client, cport);
      const forwarded = seg(s.proto, client, cport, rip, rport); // what the real server received
      const q = runBpf(prog, request);
      assert.equal(runBpf(prog, reply), q, `${name} ${client}:${cport}: reply`);
      assert.equal(runBpf(prog, icmpError(rip, client, forwarded)), q, `${name}: ICMP error from the real server`);
      assert.equal(runBpf(prog, icmpError('192.0.2.1', client, forwarded)), q, `${name}: ICMP error from this host`);
      assert.equal(runBpf(prog, icmpError('198.51.100.1', VIP, seg(s.proto, VIP, s.port, client, cport))), q, `${name}: ICMP error from the client side`);
    }
});

test('steering program: flow key for services without persistence, client network for persistent ones', () => {
  const prog = steeringProgram(steeringSpec(services, dests));
  const c = '198.51.100.77';
  for (const p of [40000, 40001, 61000]) {
    assert.equal(runBpf(prog, seg(TCP, c, p, VIP, 80)), hash((ip(c) ^ p) | 0), 'web: address ^ port');
    assert.equal(runBpf(prog, seg(TCP, c, p, VIP, 443)), hash(ip(c) & 0xffffff00), 'shop: client /24');
    assert.equal(runBpf(prog, seg(TCP, c, p, VIP, 8443)), hash(ip(c) & 0xffffff00), 'api: grouped with shop');
    assert.equal(runBpf(prog, seg(TCP, '198.51.100.9', p, VIP, 443)), hash(ip(c) & 0xffffff00), 'shop: one queue for the whole /24');
  }
  const queues = new Set([1, 2, 3, 4, 5, 6, 7, 8].map((i) => runBpf(prog, seg(TCP, c, 1024 + i * 7919, VIP, 80)) % 2));
  assert.equal(queues.size, 2, "one client's web connections reach both of two queues");
  // port-0 (all ports) persistent service: every port of that VIP keys on the client network
  const all = { proto: TCP, addr: ip('203.0.113.20'), port: 0, persistent: 60, netmask: ip('255.255.255.255') };
  const p0 = steeringProgram(steeringSpec([all], [{ service: all, dest: { addr: ip('192.0.2.14'), port: 0 } }]));
  for (const port of [22, 80, 8080]) {
    assert.equal(runBpf(p0, seg(TCP, c, 40000 + port, '203.0.113.20', port)), hash(ip(c)));
    assert.equal(runBpf(p0, seg(TCP, '192.0.2.14', port, c, 40000 + port)), hash(ip(c)));
  }
  assert.equal(runBpf(p0, seg(UDP, c, 40000, '203.0.113.20', 53)), hash((ip(c) ^ 40000) | 0), 'another protocol is not that service');
});

test('steering program: adding a persistent service leaves the keys of the others unchanged', () => {
  const before = steeringProgram(steeringSpec([web, dns], dests.filter((d) => d.service === web || d.service === dns)));
  const after = steeringProgram(steeringSpec(services, dests));
  for (let i = 0; i < 50; i++) {
    const c = `198.51.100.${i + 2}`;
    const p = 30000 + i * 611;
    for (const pkt of [seg(TCP, c, p, VIP, 80), seg(TCP, '192.0.2.11', 8080, c, p), seg(UDP, c, p, VIP, 53), seg(UDP, '192.0.2.11', 5353, c, p)]) assert.equal(runBpf(after, pkt), runBpf(before, pkt));
  }
});

test('steering program: well-formed for 0, 1 and many VIPs and endpoints; jumps stay inside; short packets go to queue 0', () => {
  const many = Array.from({ length: 40 }, (_, i) => svc(TCP, 1000 + i, i % 2 ? 60 : 0, '255.255.255.0'));
  const specs: SteeringSpec[] = [{ vips: [], inbound: [], outbound: [] }, steeringSpec([web], dests.slice(0, 2)), steeringSpec(many, many.map((s, i) => dest(s, '192.0.2.20', 2000 + i)))];
  for (const spec of specs) {
    const code = steeringProgram(spec);
    const count = code.length / 8;
    assert.equal(code[count * 8 - 8], 0x95, 'ends with exit');
    for (let i = 0; i < count; i++) {
      const op = code[i * 8]!;
      if ((op & 0x07) === 0x05 || (op & 0x07) === 0x06) {
        if (op === 0x95) continue;
        const target = i + 1 + code.readInt16LE(i * 8 + 2);
        assert.ok(target > i && target < count, `insn ${i} jumps to ${target} of ${count}`);
      }
    }
    assert.equal(runBpf(code, Buffer.alloc(10)), 0);
  }
});
