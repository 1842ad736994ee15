/**
 * Golden tables for the engine's half of SYN cookies (core/syn-proxy.ts): the client's checked
 * ACK (TCP_VALIDATED_BIT, set by the kernel fast path after its cookie check) becomes the SYN
 * to the real server, the server's SYN-ACK the ACK to it, and the connection's sequence numbers
 * are translated from then on (requests ack - delta, replies seq + delta, delta = cookie -
 * server ISN). Bytes in -> bytes out, checksums by the slow reference (runGolden). Controls: the
 * same marked ACK with syn_cookies=0, and an unmarked ACK with it on, open nothing.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ipv4 } from '../../src/wire/build.js';
import { CLIENT, director, key, ip, RS1, TCP, VIP } from '../support/bed.js';
import { runGolden } from '../support/golden.js';
import { slowL4Checksum } from '../support/slow-checksum.js';
import { Fwd } from '../../src/core/service.js';

const C = CLIENT;
const ISN = 0x10000000; // the client's
const COOKIE = 0xfffffff0; // the kernel's SYN-ACK sequence number (wraps below: seq arithmetic mod 2^32)
const SISN = 0x00007000; // the real server's
const DELTA = (COOKIE - SISN) >>> 0;
const req = 'GET / HTTP/1.0\r\nHost: x\r\n\r\n';
const resp = 'HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok';
const MSS1460 = Uint8Array.from([2, 4, 0x05, 0xb4]);
const u32 = (n: number) => n >>> 0;

const cli = (flags: string, seq: number, ack: number, data = '', window = 502) => ipv4({ src: C, dst: VIP, id: seq & 0xffff, ttl: 61 }).tcp({ sport: 40000, dport: 80, flags, seq: u32(seq), ack: u32(ack), window }).payload(data).build();
const toRs = (flags: string, seq: number, ack: number, data = '', window = 502) => ipv4({ src: C, dst: RS1, id: seq & 0xffff, ttl: 61 }).tcp({ sport: 40000, dport: 8080, flags, seq: u32(seq), ack: u32(ack), window }).payload(data).build();
const fromRs = (flags: string, seq: number, ack: number, data = '', options?: Uint8Array) => ipv4({ src: RS1, dst: C, id: seq & 0xffff }).tcp({ sport: 8080, dport: 40000, flags, seq: u32(seq), ack: u32(ack), ...(options ? { options } : {}) }).payload(data).build();
const toCli = (flags: string, seq: number, ack: number, data = '', id = seq & 0xffff) => ipv4({ src: VIP, dst: C, id }).tcp({ sport: 80, dport: 40000, flags, seq: u32(seq), ack: u32(ack) }).payload(data).build();

/** `p` (IPv4, TCP) with TCP_VALIDATED_BIT set and its checksum made right again. */
function marked(p: Buffer): Buffer {
  const out = Buffer.from(p);
  out[32] = out[32]! | 0x02;
  out.writeUInt16BE(0, 36);
  out.writeUInt16BE(slowL4Checksum(out.readUInt32BE(12), out.readUInt32BE(16), 6, out.subarray(20)), 36);
  return out;
}
/** The SYN the director sends the server for the client's segment `from` (its id and TTL). */
const synToRs = (idFrom: number) => ipv4({ src: C, dst: RS1, id: idFrom & 0xffff, ttl: 61 }).tcp({ sport: 40000, dport: 8080, flags: 'S', seq: ISN, ack: 0, window: 502, options: MSS1460 }).build();

function proxied(sysctl = { synCookies: 1 }) {
  const d = director({ sysctl });
  const k = key(TCP, VIP, 80);
  d.addService({ ...k, scheduler: 'rr' });
  d.addDest(k, { addr: ip(RS1), port: 8080 });
  return d;
}

test('SYN cookies: checked ACK -> SYN to the server; its SYN-ACK -> ACK to it; data both ways translated (delta = cookie - server ISN, mod 2^32)', () => {
  const d = proxied();
  runGolden(d, [
    { name: '1 checked ACK opens, SYN to RS (seq = ISN, MSS 1460, the client\'s window)', input: marked(cli('A', ISN + 1, COOKIE + 1)), output: synToRs(ISN + 1), verdict: 'send', outcome: 'send_synproxy_syn', state: 'SYN_RECV' },
    { name: '2 early client data: kept, the SYN again', input: cli('PA', ISN + 1, COOKIE + 1, req), output: synToRs(ISN + 1), verdict: 'send', outcome: 'send_synproxy_syn_again', state: 'SYN_RECV' },
    { name: '3 RS segment that is not the SYN-ACK: dropped', input: fromRs('A', SISN, ISN + 1), verdict: 'drop', outcome: 'drop_synproxy_early' },
    { name: '4 RS SYN-ACK acking another ISN: dropped', input: fromRs('SA', SISN, ISN + 2, '', MSS1460), verdict: 'drop', outcome: 'drop_synproxy_early' },
    { name: '5 RS SYN-ACK (with options) -> ACK to RS carrying the kept data', input: fromRs('SA', SISN, ISN + 1, '', MSS1460), output: ipv4({ src: C, dst: RS1, id: SISN & 0xffff }).tcp({ sport: 40000, dport: 8080, flags: 'PA', seq: ISN + 1, ack: SISN + 1, window: 502 }).payload(req).build(), verdict: 'send', outcome: 'send_synproxy_ack', state: 'ESTABLISHED' },
    { name: '6 the client resends its data (marked again by the kernel: the bit is cleared) ack - delta', input: marked(cli('PA', ISN + 1, COOKIE + 1, req)), output: toRs('PA', ISN + 1, SISN + 1, req), verdict: 'forward', outcome: 'forward_in', state: 'ESTABLISHED' },
    { name: '7 RS data seq + delta', input: fromRs('PA', SISN + 1, ISN + 1 + req.length, resp), output: toCli('PA', COOKIE + 1, ISN + 1 + req.length, resp, (SISN + 1) & 0xffff), verdict: 'forward', outcome: 'forward_out', state: 'ESTABLISHED' },
    { name: '8 RS FIN seq + delta (past 2^32)', input: fromRs('FA', SISN + 1 + resp.length, ISN + 1 + req.length), output: toCli('FA', COOKIE + 1 + resp.length, ISN + 1 + req.length, '', (SISN + 1 + resp.length) & 0xffff), verdict: 'forward', outcome: 'forward_out', state: 'FIN_WAIT' },
    { name: '9 client FIN-ACK ack - delta', input: cli('FA', ISN + 1 + req.length, COOKIE + 2 + resp.length), output: toRs('FA', ISN + 1 + req.length, SISN + 2 + resp.length), verdict: 'forward', outcome: 'forward_in', state: 'TIME_WAIT' },
  ]);
  assert.equal(u32(COOKIE + 1 + resp.length) < COOKIE, true, 'the table crossed 2^32');
  assert.equal(DELTA, u32(COOKIE - SISN));
});

test('SYN cookies: the server refuses (RST) -> the client gets it at cookie + 1; CLOSE', () => {
  const d = proxied();
  runGolden(d, [
    { name: 'checked ACK', input: marked(cli('A', ISN + 1, COOKIE + 1)), output: synToRs(ISN + 1), verdict: 'send', outcome: 'send_synproxy_syn' },
    { name: 'RS RST-ACK (its IP id 0 kept)', input: fromRs('RA', 0, ISN + 1), output: toCli('RA', COOKIE + 1, ISN + 1, '', 0), verdict: 'forward', outcome: 'forward_out', state: 'CLOSE' },
  ]);
});

test('SYN cookies: a client RST while the SYN-ACK is awaited is dropped (the server saw no SYN-ACK acked); the state as IPVS moves it (rst in SYN_RECV stays)', () => {
  const d = proxied();
  runGolden(d, [
    { name: 'checked ACK', input: marked(cli('A', ISN + 1, COOKIE + 1)), verdict: 'send', outcome: 'send_synproxy_syn' },
    { name: 'client RST', input: cli('R', ISN + 1, 0), verdict: 'drop', outcome: 'drop_synproxy_early', state: 'SYN_RECV' },
  ]);
});

test('controls: the marked ACK with syn_cookies=0, an unmarked ACK with syn_cookies=1: no connection (stray, passed)', () => {
  const off = proxied({ synCookies: 0 });
  runGolden(off, [{ name: 'marked, mode off', input: marked(cli('A', ISN + 1, COOKIE + 1)), verdict: 'pass', outcome: 'pass_no_conn' }]);
  assert.equal(off.conns.count, 0);
  const on = proxied();
  runGolden(on, [{ name: 'unmarked, mode on', input: cli('A', ISN + 1, COOKIE + 1), verdict: 'pass', outcome: 'pass_no_conn' }]);
  assert.equal(on.conns.count, 0);
});

test('a checked ACK scheduled to a DR server: dropped, the connection removed (the director would not see the replies)', () => {
  const d = director({ sysctl: { synCookies: 1 } });
  const k = key(TCP, VIP, 80);
  d.addService({ ...k, scheduler: 'rr' });
  d.addDest(k, { addr: ip(RS1), port: 80, fwd: Fwd.DROUTE });
  runGolden(d, [{ name: 'checked ACK', input: marked(cli('A', ISN + 1, COOKIE + 1)), verdict: 'drop', outcome: 'drop_synproxy_not_nat' }]);
  assert.equal(d.conns.count, 0);
});

test('SYN cookies: partial checksums (NEEDS_CSUM, GSO from the TUN): sequence numbers translated, the pseudo-header sum only follows the address', () => {
  const d = proxied();
  const p = { partial: true };
  const big = 'x'.repeat(3000);
  runGolden(d, [
    { name: 'checked ACK', input: marked(cli('A', ISN + 1, COOKIE + 1)), verdict: 'send', outcome: 'send_synproxy_syn' },
    { name: 'RS SYN-ACK', input: fromRs('SA', SISN, ISN + 1), verdict: 'send', outcome: 'send_synproxy_ack' },
    { name: 'client data, partial', partial: true, input: ipv4({ src: C, dst: VIP }).tcp({ sport: 40000, dport: 80, flags: 'A', seq: ISN + 1, ack: u32(COOKIE + 1) }).payload(big).build(p), output: ipv4({ src: C, dst: RS1 }).tcp({ sport: 40000, dport: 8080, flags: 'A', seq: ISN + 1, ack: SISN + 1 }).payload(big).build(p), verdict: 'forward', outcome: 'forward_in' },
    { name: 'RS data, partial', partial: true, input: ipv4({ src: RS1, dst: C }).tcp({ sport: 8080, dport: 40000, flags: 'A', seq: SISN + 1, ack: ISN + 3001 }).payload(big).build(p), output: ipv4({ src: VIP, dst: C }).tcp({ sport: 80, dport: 40000, flags: 'A', seq: u32(COOKIE + 1), ack: ISN + 3001 }).payload(big).build(p), verdict: 'forward', outcome: 'forward_out' },
  ]);
});

test('a marked ACK the kernel program passes on before it clears the bit (IP options, TTL 1): no connection', () => {
  const on = proxied();
  // marked() sets the bit at byte 32 (TCP header at 20): with 4 option bytes the TCP header is at 24
  const opt = Buffer.from(ipv4({ src: C, dst: VIP, id: 7, ttl: 61, options: Uint8Array.from([1, 1, 1, 0]) }).tcp({ sport: 40000, dport: 80, flags: 'A', seq: ISN + 1, ack: COOKIE + 1 }).build());
  opt[36] = opt[36]! | 0x02;
  opt.writeUInt16BE(0, 40);
  opt.writeUInt16BE(slowL4Checksum(opt.readUInt32BE(12), opt.readUInt32BE(16), 6, opt.subarray(24)), 40);
  runGolden(on, [
    { name: 'marked, IP options', input: opt, verdict: 'pass', outcome: 'pass_no_conn' },
    { name: 'marked, TTL 1', input: marked(ipv4({ src: C, dst: VIP, id: 8, ttl: 1 }).tcp({ sport: 40001, dport: 80, flags: 'A', seq: ISN + 1, ack: COOKIE + 1 }).build()), verdict: 'pass', outcome: 'pass_no_conn' },
  ]);
  assert.equal(on.conns.count, 0);
});

test('SYN cookies: no data before the SYN-ACK -> a bare ACK to the server; a kept buffer serves one connection only', () => {
  const d = proxied();
  runGolden(d, [
    { name: 'checked ACK', input: marked(cli('A', ISN + 1, COOKIE + 1)), output: synToRs(ISN + 1), verdict: 'send', outcome: 'send_synproxy_syn' },
    { name: 'the client ACK again (no data): the SYN again, nothing kept', input: cli('A', ISN + 1, COOKIE + 1), output: synToRs(ISN + 1), verdict: 'send', outcome: 'send_synproxy_syn_again' },
    { name: 'RS SYN-ACK -> bare ACK', input: fromRs('SA', SISN, ISN + 1, '', MSS1460), output: ipv4({ src: C, dst: RS1, id: SISN & 0xffff }).tcp({ sport: 40000, dport: 8080, flags: 'A', seq: ISN + 1, ack: SISN + 1, window: 502 }).build(), verdict: 'send', outcome: 'send_synproxy_ack', state: 'ESTABLISHED' },
  ]);
});

test('SYN cookies: data not at ISN + 1 (a later segment first) is not kept: the ACK goes bare', () => {
  const d = proxied();
  runGolden(d, [
    { name: 'checked ACK', input: marked(cli('A', ISN + 1, COOKIE + 1)), verdict: 'send', outcome: 'send_synproxy_syn' },
    { name: 'a later segment', input: cli('PA', ISN + 1 + req.length, COOKIE + 1, req), output: synToRs(ISN + 1 + req.length), verdict: 'send', outcome: 'send_synproxy_syn_again' },
    { name: 'RS SYN-ACK -> bare ACK', input: fromRs('SA', SISN, ISN + 1, '', MSS1460), output: ipv4({ src: C, dst: RS1, id: SISN & 0xffff }).tcp({ sport: 40000, dport: 8080, flags: 'A', seq: ISN + 1, ack: SISN + 1, window: 502 }).build(), verdict: 'send', outcome: 'send_synproxy_ack' },
  ]);
});

test('SYN cookies: the server still holds an older connection on the tuple (TIME_WAIT): its ACK for another number -> RST at that number; the SYN again with the client\'s next segment; a repeated SYN-ACK afterwards is not passed to the client', () => {
  const d = proxied();
  const OLD = 0x40456924; // what the server's old connection expects next
  runGolden(d, [
    { name: 'checked ACK', input: marked(cli('A', ISN + 1, COOKIE + 1)), output: synToRs(ISN + 1), verdict: 'send', outcome: 'send_synproxy_syn', state: 'SYN_RECV' },
    { name: 'the old connection\'s ACK -> RST to it, seq = that ACK', input: fromRs('A', 0x1234, OLD), output: ipv4({ src: C, dst: RS1, id: 0x1234 }).tcp({ sport: 40000, dport: 8080, flags: 'R', seq: OLD, ack: 0, window: 502 }).build(), verdict: 'send', outcome: 'send_synproxy_rst', state: 'SYN_RECV' },
    { name: 'the client\'s data: kept, the SYN again', input: cli('PA', ISN + 1, COOKIE + 1, req), output: synToRs(ISN + 1), verdict: 'send', outcome: 'send_synproxy_syn_again', state: 'SYN_RECV' },
    { name: 'RS SYN-ACK -> ACK with the data', input: fromRs('SA', SISN, ISN + 1, '', MSS1460), output: ipv4({ src: C, dst: RS1, id: SISN & 0xffff }).tcp({ sport: 40000, dport: 8080, flags: 'PA', seq: ISN + 1, ack: SISN + 1, window: 502 }).payload(req).build(), verdict: 'send', outcome: 'send_synproxy_ack', state: 'ESTABLISHED' },
    { name: 'RS SYN-ACK again (it answered the repeated SYN): dropped', input: fromRs('SA', SISN, ISN + 1, '', MSS1460), verdict: 'drop', outcome: 'drop_synproxy_dup_synack' },
    { name: 'RS data still translated', input: fromRs('PA', SISN + 1, ISN + 1 + req.length, resp), output: toCli('PA', COOKIE + 1, ISN + 1 + req.length, resp, (SISN + 1) & 0xffff), verdict: 'forward', outcome: 'forward_out', state: 'ESTABLISHED' },
  ]);
});

test('SYN cookies: a checked ACK on addresses whose entry has ended (the client reused its port) opens a new connection; control: an unmarked ACK there belongs to the old entry', () => {
  const ended = () => {
    const d = proxied();
    runGolden(d, [
      { name: 'plain SYN (before cookies were on)', input: cli('S', 0x5000, 0), verdict: 'forward', outcome: 'forward_in', state: 'SYN_RECV' },
      { name: 'RS SYN-ACK', input: fromRs('SA', 0x9000, 0x5001), verdict: 'forward', outcome: 'forward_out' },
      { name: 'client ACK', input: cli('A', 0x5001, 0x9001), verdict: 'forward', outcome: 'forward_in', state: 'ESTABLISHED' },
      { name: 'client RST', input: cli('R', 0x5001, 0), verdict: 'forward', outcome: 'forward_in', state: 'CLOSE' },
    ]);
    return d;
  };
  const d = ended();
  runGolden(d, [{ name: 'checked ACK of a new handshake: the SYN to the server', input: marked(cli('A', ISN + 1, COOKIE + 1)), output: synToRs(ISN + 1), verdict: 'send', outcome: 'send_synproxy_syn', state: 'SYN_RECV' }]);
  assert.equal(d.counters()['rescheduled'], 1, 'the old entry expired as for a SYN under conn_reuse_mode');
  assert.equal(d.conns.count, 1);
  const control = ended();
  runGolden(control, [{ name: 'unmarked ACK: the old entry\'s', input: cli('A', ISN + 1, COOKIE + 1), verdict: 'forward', outcome: 'forward_in', state: 'CLOSE' }]);
  assert.equal(control.counters()['rescheduled'], 0);
});
