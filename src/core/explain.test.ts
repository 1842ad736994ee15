/**
 * explain() runs the packet path's own decisions: it must agree with process() on every packet.
 * First the case the old, separately written explain got wrong (expire_nodest_conn with the
 * client's server quiesced), then a property test: random configurations, sysctls and packet
 * sequences, each packet explained first and then processed, and both answers compared.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ipv4 } from '../wire/build.js';
import { formatIPv4 } from '../wire/addr.js';
import { TcpFlag } from '../wire/tcp.js';
import { CLIENT, director, ip, key, RS1, RS2, RS3, TCP, UDP, VIP } from '../../test/support/bed.js';
import { Prng } from '../../test/support/prng.js';
import type { Director } from './director.js';
import { Outcome, Verdict, VERDICT_NAMES } from './verdict.js';

const k80 = key(TCP, VIP, 80);
const tcp = (src: string, sport: number, flags: string, dst = VIP, dport = 80) => ipv4({ src, dst }).tcp({ sport, dport, flags }).build();
function send(d: Director, pkt: Buffer, now: number): { v: number; out: Buffer } {
  const b = Buffer.from(pkt);
  return { v: d.process(b, 0, b.length, now, 0), out: b };
}

test('explain: a SYN on a connection whose server is quiesced, with expire_nodest_conn=1, is rescheduled as process does', () => {
  const d = director({ sysctl: { expireNodestConn: true } });
  d.addService({ ...k80, scheduler: 'rr' });
  d.addDest(k80, { addr: ip(RS1), port: 8080 });
  d.addDest(k80, { addr: ip(RS2), port: 8080 });
  const first = send(d, tcp(CLIENT, 5000, 'S'), 0).out.readUInt32BE(16);
  const [quiesced, other] = first === ip(RS1) ? [RS1, RS2] : [RS2, RS1];
  d.editDest(k80, { addr: ip(quiesced), port: 8080, weight: 0 });
  const q = { proto: TCP, caddr: ip(CLIENT), cport: 5000, vaddr: ip(VIP), vport: 80 };
  const e = d.explain(q, 1);
  assert.equal(e.path, 'scheduler', JSON.stringify(e));
  assert.equal(e.dest, `${other}:8080`);
  assert.match(e.expires ?? '', /quiesced/);
  const r = send(d, tcp(CLIENT, 5000, 'S'), 1);
  assert.equal(d.counters().rescheduled, 1);
  assert.equal(formatIPv4(r.out.readUInt32BE(16)), other, 'process rescheduled to the server explain named');
});

const SCHEDULERS = ['rr', 'wrr', 'lc', 'wlc', 'sh', 'dh', 'sed', 'nq', 'mh', 'lblc', 'fo', 'ovf'];
const FLAGS = ['S', 'S', 'A', 'PA', 'F', 'FA', 'R', 'SA', ''];
const CLIENTS = ['198.51.100.2', '198.51.100.3', '198.51.100.77', '198.51.100.200'];
const SERVERS = [RS1, RS2, RS3];

/** What explain's verdict predicts process returns. */
function agree(d: Director, e: ReturnType<Director['explain']>, v: number, out: Buffer, proto: number): string | null {
  const got = VERDICT_NAMES[v]!;
  if (e.verdict === 'icmp' && d.lastOutcome === Outcome.DropIcmpRateLimited) return null; // rate limit, not a decision
  if (got !== e.verdict) return `verdict: explain ${e.verdict} (${e.path}: ${e.reason}), process ${got} (${d.lastOutcome})`;
  if (v === Verdict.Forward && e.path !== 'reply') {
    const dst = `${formatIPv4(out.readUInt32BE(16))}:${out.readUInt16BE(20 + 2)}`;
    if (dst !== e.dest) return `destination: explain ${e.dest} (${e.path}), process ${dst} (${proto})`;
  }
  return null;
}

test('explain agrees with process on random packet sequences, configurations and sysctls (property)', () => {
  const rng = new Prng(0x5eed1);
  let compared = 0;
  const paths = new Set<string>();
  for (let run = 0; run < 60; run++) {
    const d = director({
      maxConns: 1 << 12,
      sysctl: {
        expireNodestConn: rng.int(2) === 1,
        expireQuiescentTemplate: rng.int(2) === 1,
        sloppyTcp: rng.int(4) === 0,
        secureTcp: rng.int(4) === 0 ? 3 : 0,
        connReuseMode: rng.int(3) === 0 ? 0 : 1,
      },
    });
    const persistent = rng.int(3) === 0 ? 60 : 0;
    const scheduler = rng.pick(SCHEDULERS);
    const svcs = [key(TCP, VIP, 80), key(UDP, VIP, 53)];
    for (const k of svcs) {
      d.addService({ ...k, scheduler, persistent });
      for (const s of SERVERS) d.addDest(k, { addr: ip(s), port: k.port + 8000, weight: 1 + rng.int(3) });
    }
    let now = 1000;
    for (let step = 0; step < 150; step++) {
      now += rng.int(3) === 0 ? rng.int(20_000) : rng.int(50);
      d.tick(now);
      const action = rng.int(10);
      const k = rng.pick(svcs);
      const s = rng.pick(SERVERS);
      if (action === 0) {
        if (d.getService(k)!.dests.some((x) => x.addr === ip(s))) d.editDest(k, { addr: ip(s), port: k.port + 8000, weight: rng.int(3) === 0 ? 0 : 1 + rng.int(3) });
        continue;
      }
      if (action === 1) {
        const present = d.getService(k)!.dests.some((x) => x.addr === ip(s));
        if (present && d.getService(k)!.dests.length > 1) d.deleteDest(k, ip(s), k.port + 8000);
        else if (!present) d.addDest(k, { addr: ip(s), port: k.port + 8000 });
        continue;
      }
      const client = rng.pick(CLIENTS);
      const cport = 40000 + rng.int(4);
      const vport = rng.int(8) === 0 ? k.port + 1 : k.port; // sometimes no service
      let pkt: Buffer;
      let tflags = 0;
      if (k.proto === TCP) {
        const f = rng.pick(FLAGS);
        pkt = tcp(client, cport, f, VIP, vport);
        tflags = pkt[33]!;
      } else pkt = ipv4({ src: client, dst: VIP }).udp({ sport: cport, dport: vport }).payload('q').build();
      const e = d.explain({ proto: k.proto, caddr: ip(client), cport, vaddr: ip(VIP), vport, tcpFlags: tflags }, now);
      const { v, out } = send(d, pkt, now);
      const why = agree(d, e, v, out, k.proto);
      assert.equal(why, null, `run ${run} step ${step} (${scheduler}, persistent ${persistent}, ${JSON.stringify(d.sysctl)}): ${why}`);
      compared++;
      paths.add(e.path + (e.expires ? '+expire' : ''));
      // the real server answers now and then, so connections move through their states
      if (v === Verdict.Forward && k.proto === TCP && rng.int(2) === 0) {
        const rs = formatIPv4(out.readUInt32BE(16));
        const reply = tcp(rs, out.readUInt16BE(22), rng.pick(['SA', 'A', 'FA', 'R']), client, cport);
        send(d, reply, now);
      }
    }
  }
  // the property covered the decisions that matter, not only the easy ones
  for (const p of ['connection', 'scheduler', 'template', 'no-service', 'not-syn', 'no-destination', 'scheduler+expire'])
    assert.ok(paths.has(p), `path ${p} exercised (saw ${[...paths].join(', ')})`);
  assert.ok(compared > 5000, `${compared} packets compared`);
});

test('explain describes a reply as a reply (the real server answering its client)', () => {
  const d = director();
  d.addService({ ...k80, scheduler: 'rr' });
  d.addDest(k80, { addr: ip(RS1), port: 8080 });
  send(d, tcp(CLIENT, 7, 'S'), 0);
  const e = d.explain({ proto: TCP, caddr: ip(RS1), cport: 8080, vaddr: ip(CLIENT), vport: 7, tcpFlags: TcpFlag.SYN | TcpFlag.ACK }, 0);
  assert.equal(e.path, 'reply');
  assert.equal(e.dest, `${CLIENT}:7`);
});
