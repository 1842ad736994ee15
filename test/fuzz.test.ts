/**
 * Malformed input: 1,000,000 random or mutated packets through the engine (ULVS_FUZZ_PACKETS
 * overrides the count). No exception, every packet ends in a verdict and exactly one outcome
 * counter, and the table's bookkeeping stays consistent with the servers' counters.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ipv4 } from '../src/wire/build.js';
import { director, ip, key, RS1, RS2, RS3, TCP, UDP, VIP } from './support/bed.js';
import { Prng } from './support/prng.js';
import { checkInvariants } from './support/invariants.js';
import { OUTCOME_NAMES } from '../src/core/verdict.js';
import { applySysctls } from '../src/core/sysctl-names.js';

const N = Number(process.env['ULVS_FUZZ_PACKETS'] ?? 1_000_000);

function corpus(r: Prng): Buffer[] {
  const out: Buffer[] = [];
  const clients = Array.from({ length: 16 }, (_, i) => `198.51.100.${2 + i}`);
  for (let i = 0; i < 120; i++) {
    const c = r.pick(clients);
    const sport = 1024 + r.int(8);
    const payload = r.bytes(r.int(80));
    const kind = r.int(7);
    const flags = r.pick(['S', 'SA', 'A', 'PA', 'FA', 'R', 'RA', 'F', '', 'SF', 'SR']);
    if (kind === 0) out.push(ipv4({ src: c, dst: VIP }).tcp({ sport, dport: r.pick([80, 443, 81]), flags }).payload(payload).build());
    else if (kind === 1) out.push(ipv4({ src: r.pick([RS1, RS2, RS3]), dst: c }).tcp({ sport: r.pick([8080, 443]), dport: sport, flags }).payload(payload).build());
    else if (kind === 2) out.push(ipv4({ src: c, dst: VIP }).udp({ sport, dport: r.pick([53, 54]), noChecksum: r.int(4) === 0 }).payload(payload).build());
    else if (kind === 3) out.push(ipv4({ src: r.pick([RS1, RS2]), dst: c }).udp({ sport: 5353, dport: sport }).payload(payload).build());
    else if (kind === 4) {
      const inner = ipv4({ src: c, dst: r.pick([RS1, RS2, VIP]) }).udp({ sport, dport: r.pick([5353, 53]) }).payload(payload).build();
      out.push(ipv4({ src: r.pick([RS1, RS2]), dst: c }).icmp({ type: r.pick([3, 4, 11, 12, 0, 8]), code: r.int(16), body: inner.subarray(0, 20 + r.int(inner.length - 19)) }).build());
    } else if (kind === 5) {
      const inner = ipv4({ src: VIP, dst: c }).tcp({ sport: r.pick([80, 443]), dport: sport, flags: 'A' }).build();
      out.push(ipv4({ src: '198.51.100.1', dst: VIP }).icmp({ type: r.pick([3, 11]), code: r.int(5), body: inner.subarray(0, r.int(inner.length + 1)) }).build());
    } else out.push(ipv4({ src: c, dst: VIP, options: r.int(2) ? Uint8Array.from([1, 1, 1, 0]) : undefined }).raw(r.pick([47, 50, 132, 6, 17, 1])).payload(payload).build());
  }
  return out;
}

test(`${N.toLocaleString('en')} random and mutated packets: no exception, all accounted for, counters consistent`, () => {
  fuzz(N, false);
});

// syn_cookies=1 (core/syn-proxy.ts), a third of the packets carrying the kernel's mark: the
// cookie handshake's paths are reached and keep the same invariants
test(`${(N / 5).toLocaleString('en')} random and mutated packets with syn_cookies=1 and the kernel's mark: the same`, () => {
  fuzz(N / 5, true);
});

function fuzz(N: number, cookies: boolean): void {
  const r = new Prng(cookies ? 20261201 : 20261124);
  const d = director({ maxConns: 512, sysctl: { synCookies: cookies ? 1 : 0 } });
  const kt = key(TCP, VIP, 80);
  const kp = key(TCP, VIP, 443);
  const ku = key(UDP, VIP, 53);
  d.addService({ ...kt, scheduler: 'wlc' });
  d.addService({ ...kp, scheduler: 'sh', persistent: 30, netmask: ip('255.255.255.0'), schedFlags: 0x8 });
  d.addService({ ...ku, scheduler: 'mh' });
  d.addService({ ...key(UDP, VIP, 54), scheduler: 'rr' }); // no servers: ICMP port unreachable
  d.addDest(kt, { addr: ip(RS1), port: 8080, uThreshold: 50, lThreshold: 10 });
  d.addDest(kt, { addr: ip(RS2), port: 8080, weight: 3 });
  d.addDest(kp, { addr: ip(RS1), port: 443 });
  d.addDest(kp, { addr: ip(RS3), port: 443, weight: 0 });
  d.addDest(ku, { addr: ip(RS1), port: 5353 });
  d.addDest(ku, { addr: ip(RS2), port: 5353 });
  const base = corpus(r);
  const work = Buffer.alloc(4096);
  let now = 1_000;
  const verdicts = cookies ? [0, 0, 0, 0, 0] : [0, 0, 0, 0];
  for (let n = 0; n < N; n++) {
    const mode = r.int(10);
    let len: number;
    if (mode === 0) {
      len = r.int(120);
      for (let k = 0; k < len; k++) work[k] = r.u32() & 0xff;
      if (len > 0 && r.int(2)) work[0] = 0x45;
    } else {
      const src = base[r.int(base.length)]!;
      src.copy(work, 0);
      len = src.length;
      if (mode >= 3) {
        const flips = 1 + r.int(4);
        for (let k = 0; k < flips; k++) work[r.int(len)] = r.u32() & 0xff;
      }
      if (mode === 3) len = r.int(len + 1); // truncate
      if (mode === 4) work.writeUInt16BE(r.int(0x10000), 2); // total length
      if (mode === 5 && len > 33) work[32] = r.u32() & 0xff; // TCP data offset / UDP length area
      if (mode >= 6 && mode <= 8) {
        // keep the IP header valid so the mutation reaches L4
        work[0] = 0x45;
        work.writeUInt16BE(len, 2);
        work.writeUInt16BE(0, 10);
        let s = 0;
        for (let k = 0; k < 20; k += 2) s += work.readUInt16BE(k);
        while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
        work.writeUInt16BE(~s & 0xffff, 10);
      }
    }
    if (cookies && len > 33 && r.int(3) === 0) work[32] = work[32]! | 0x02; // TCP_VALIDATED_BIT
    const v = d.process(work, 0, len, now, r.int(8) === 0 ? 1 : 0);
    assert.ok(v >= 0 && v <= (cookies ? 4 : 3));
    verdicts[v]!++;
    if ((n & 1023) === 0) {
      now += 250 + r.int(2000);
      d.tick(now);
    }
    if (n % 200_000 === 0 && n > 0) {
      // a full table evicts its half-open entries (evict_embryonic) so fast that the entries an
      // ICMP error quotes are rarely still there: every other block runs without it, so both
      // the eviction and the table-full and ICMP paths are reached
      applySysctls(d.sysctl, { evictEmbryonic: !d.sysctl.evictEmbryonic });
      d.editDest(kt, { addr: ip(RS1), port: 8080, weight: r.int(3), uThreshold: 50, lThreshold: 10 });
      const present = d.getService(ku)!.dests.some((x) => x.addr === ip(RS2));
      if (present) d.deleteDest(ku, ip(RS2), 5353);
      else d.addDest(ku, { addr: ip(RS2), port: 5353 });
    }
  }
  checkInvariants(d, N);
  const c = d.counters();
  // the fuzz must reach deep into the engine, not only the early length checks
  for (const name of ['forward_in', 'forward_out', 'forward_icmp_out', 'forward_icmp_in', 'pass_no_conn', 'pass_no_service', 'pass_protocol', 'pass_icmp', 'drop_truncated', 'drop_bad_version', 'drop_bad_ip_checksum', 'drop_fragment', 'drop_bad_tcp_header', 'drop_bad_udp_length', 'icmp_unreach_sent', 'drop_conn_table_full'] as const)
    if (!cookies) assert.ok(c[name]! > 0, `outcome ${name} was never reached (${JSON.stringify(c)})`);
  if (cookies) for (const name of ['send_synproxy_syn', 'send_synproxy_syn_again', 'drop_synproxy_early'] as const) assert.ok(c[name]! > 0, `outcome ${name} was never reached`);
  assert.ok(OUTCOME_NAMES.length > 0 && verdicts.every((x) => x > 0));
  // drain: after everything expires the table is empty and every counter is back to zero
  d.tick(now + 3_000_000);
  d.tick(now + 6_000_000);
  assert.equal(d.conns.count, 0);
  checkInvariants(d, N);
}
