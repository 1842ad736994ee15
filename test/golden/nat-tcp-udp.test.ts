/**
 * Golden tables for the design's six VS/NAT steps: a whole TCP connection (handshake, data,
 * FIN both ways, RST), UDP request/response, port mapping 80 -> 8080 and 53 -> 5353, UDP
 * checksum 0, NEEDS_CSUM partial checksums, and the established-connection packets shared with
 * the kernel fast path's tests (test/support/golden-cases.ts).
 */
import { test } from 'node:test';
import { ipv4 } from '../../src/wire/build.js';
import { CLIENT, director, key, ip, RS1, TCP, UDP, VIP } from '../support/bed.js';
import { runGolden } from '../support/golden.js';
import { FLOW_CASES } from '../support/golden-cases.js';

const C = CLIENT;
const req = 'GET / HTTP/1.0\r\nHost: x\r\n\r\n';
const resp = 'HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok';

// Client side sees VIP:80; the real server sees the real client and its own port 8080.
const cli = (flags: string, seq: number, ack: number, data = '') => ipv4({ src: C, dst: VIP, id: seq & 0xffff }).tcp({ sport: 40000, dport: 80, flags, seq, ack }).payload(data).build();
const toRs = (flags: string, seq: number, ack: number, data = '') => ipv4({ src: C, dst: RS1, id: seq & 0xffff }).tcp({ sport: 40000, dport: 8080, flags, seq, ack }).payload(data).build();
const fromRs = (flags: string, seq: number, ack: number, data = '') => ipv4({ src: RS1, dst: C, id: seq & 0xffff }).tcp({ sport: 8080, dport: 40000, flags, seq, ack }).payload(data).build();
const toCli = (flags: string, seq: number, ack: number, data = '') => ipv4({ src: VIP, dst: C, id: seq & 0xffff }).tcp({ sport: 80, dport: 40000, flags, seq, ack }).payload(data).build();

test('TCP: handshake, data both ways, server closes first (NAT, port mapping 80 -> 8080)', () => {
  const d = director();
  const k = key(TCP, VIP, 80);
  d.addService({ ...k, scheduler: 'rr' });
  d.addDest(k, { addr: ip(RS1), port: 8080 });
  runGolden(d, [
    { name: '1 client SYN', input: cli('S', 100, 0), output: toRs('S', 100, 0), verdict: 'forward', outcome: 'forward_in', state: 'SYN_RECV' },
    { name: '2 RS SYN-ACK', input: fromRs('SA', 500, 101), output: toCli('SA', 500, 101), verdict: 'forward', outcome: 'forward_out', state: 'SYN_RECV' },
    { name: '3 client ACK', input: cli('A', 101, 501), output: toRs('A', 101, 501), verdict: 'forward', outcome: 'forward_in', state: 'ESTABLISHED' },
    { name: '4 client data', input: cli('PA', 101, 501, req), output: toRs('PA', 101, 501, req), verdict: 'forward', outcome: 'forward_in', state: 'ESTABLISHED' },
    { name: '5 RS data', input: fromRs('PA', 501, 128, resp), output: toCli('PA', 501, 128, resp), verdict: 'forward', outcome: 'forward_out', state: 'ESTABLISHED' },
    { name: '6 RS FIN', input: fromRs('FA', 540, 128), output: toCli('FA', 540, 128), verdict: 'forward', outcome: 'forward_out', state: 'FIN_WAIT' },
    { name: '7 client ACK of FIN', input: cli('A', 128, 541), output: toRs('A', 128, 541), verdict: 'forward', outcome: 'forward_in', state: 'FIN_WAIT' },
    { name: '8 client FIN', input: cli('FA', 128, 541), output: toRs('FA', 128, 541), verdict: 'forward', outcome: 'forward_in', state: 'TIME_WAIT' },
    { name: '9 RS last ACK', input: fromRs('A', 541, 129), output: toCli('A', 541, 129), verdict: 'forward', outcome: 'forward_out', state: 'TIME_WAIT' },
  ]);
});

test('TCP: client closes first (ES -> CLOSE_WAIT -> TIME_WAIT) and RST (-> CLOSE)', () => {
  const d = director();
  const k = key(TCP, VIP, 80);
  d.addService({ ...k, scheduler: 'wlc' });
  d.addDest(k, { addr: ip(RS1), port: 8080 });
  runGolden(d, [
    { name: 'SYN', input: cli('S', 1, 0), output: toRs('S', 1, 0), verdict: 'forward', outcome: 'forward_in', state: 'SYN_RECV' },
    { name: 'SYN-ACK', input: fromRs('SA', 9, 2), output: toCli('SA', 9, 2), verdict: 'forward', outcome: 'forward_out' },
    { name: 'ACK', input: cli('A', 2, 10), output: toRs('A', 2, 10), verdict: 'forward', outcome: 'forward_in', state: 'ESTABLISHED' },
    { name: 'client FIN', input: cli('FA', 2, 10), output: toRs('FA', 2, 10), verdict: 'forward', outcome: 'forward_in', state: 'CLOSE_WAIT' },
    { name: 'RS FIN', input: fromRs('FA', 10, 3), output: toCli('FA', 10, 3), verdict: 'forward', outcome: 'forward_out', state: 'TIME_WAIT' },
  ]);
  const d2 = director();
  d2.addService({ ...k, scheduler: 'wlc' });
  d2.addDest(k, { addr: ip(RS1), port: 8080 });
  runGolden(d2, [
    { name: 'SYN', input: cli('S', 1, 0), verdict: 'forward', outcome: 'forward_in' },
    { name: 'SYN-ACK', input: fromRs('SA', 9, 2), verdict: 'forward', outcome: 'forward_out' },
    { name: 'ACK', input: cli('A', 2, 10), verdict: 'forward', outcome: 'forward_in', state: 'ESTABLISHED' },
    { name: 'RS RST', input: fromRs('R', 10, 0), output: toCli('R', 10, 0), verdict: 'forward', outcome: 'forward_out', state: 'CLOSE' },
  ]);
});

test('TCP: a segment to the VIP without a connection is passed to the host, unmodified', () => {
  const d = director();
  const k = key(TCP, VIP, 80);
  d.addService({ ...k, scheduler: 'rr' });
  d.addDest(k, { addr: ip(RS1), port: 8080 });
  runGolden(d, [
    { name: 'stray ACK', input: cli('A', 5, 5), verdict: 'pass', outcome: 'pass_no_conn' },
    { name: 'stray RST', input: cli('R', 5, 0), verdict: 'pass', outcome: 'pass_no_conn' },
    { name: 'SYN+RST never schedules', input: cli('SR', 5, 0), verdict: 'pass', outcome: 'pass_no_conn' },
    { name: 'other port', input: ipv4({ src: C, dst: VIP }).tcp({ sport: 1, dport: 81, flags: 'S' }).build(), verdict: 'pass', outcome: 'pass_no_service' },
    { name: 'unknown reply', input: fromRs('A', 1, 1), verdict: 'pass', outcome: 'pass_no_service' },
    { name: 'GRE', input: ipv4({ src: C, dst: VIP }).raw(47).payload('xxxx').build(), verdict: 'pass', outcome: 'pass_protocol' },
  ]);
});

const uReq = (dst: string, dport: number, payload: string, noChecksum = false) => ipv4({ src: C, dst, id: 7 }).udp({ sport: 5000, dport, noChecksum }).payload(payload);
const uResp = (src: string, sport: number, payload: string) => ipv4({ src, dst: C, id: 8 }).udp({ sport, dport: 5000 }).payload(payload);

test('UDP: request/response with port mapping 53 -> 5353; checksum 0 gets a full checksum', () => {
  const d = director();
  const k = key(UDP, VIP, 53);
  d.addService({ ...k, scheduler: 'rr' });
  d.addDest(k, { addr: ip(RS1), port: 5353 });
  runGolden(d, [
    { name: 'query', input: uReq(VIP, 53, 'query-1').build(), output: uReq(RS1, 5353, 'query-1').build(), verdict: 'forward', outcome: 'forward_in', state: 'UDP' },
    { name: 'answer', input: uResp(RS1, 5353, 'answer-1').build(), output: uResp(VIP, 53, 'answer-1').build(), verdict: 'forward', outcome: 'forward_out', state: 'UDP' },
    { name: 'query, checksum 0', input: uReq(VIP, 53, 'query-2', true).build(), output: uReq(RS1, 5353, 'query-2').build(), verdict: 'forward', outcome: 'forward_in' },
  ]);
});

test('partial checksums (NEEDS_CSUM): only the pseudo-header part changes, both protocols and directions', () => {
  const d = director();
  const kt = key(TCP, VIP, 80);
  const ku = key(UDP, VIP, 53);
  d.addService({ ...kt, scheduler: 'rr' });
  d.addDest(kt, { addr: ip(RS1), port: 8080 });
  d.addService({ ...ku, scheduler: 'rr' });
  d.addDest(ku, { addr: ip(RS1), port: 5353 });
  const big = 'x'.repeat(3000);
  const p = { partial: true };
  runGolden(d, [
    { name: 'SYN', input: cli('S', 1, 0), verdict: 'forward', outcome: 'forward_in' },
    { name: 'TCP in, partial', partial: true, input: ipv4({ src: C, dst: VIP }).tcp({ sport: 40000, dport: 80, flags: 'A', seq: 2 }).payload(big).build(p), output: ipv4({ src: C, dst: RS1 }).tcp({ sport: 40000, dport: 8080, flags: 'A', seq: 2 }).payload(big).build(p), verdict: 'forward', outcome: 'forward_in' },
    { name: 'TCP out, partial', partial: true, input: ipv4({ src: RS1, dst: C }).tcp({ sport: 8080, dport: 40000, flags: 'A', seq: 9 }).payload(big).build(p), output: ipv4({ src: VIP, dst: C }).tcp({ sport: 80, dport: 40000, flags: 'A', seq: 9 }).payload(big).build(p), verdict: 'forward', outcome: 'forward_out' },
    { name: 'UDP in, partial', partial: true, input: uReq(VIP, 53, big).build(p), output: uReq(RS1, 5353, big).build(p), verdict: 'forward', outcome: 'forward_in' },
    { name: 'UDP out, partial', partial: true, input: uResp(RS1, 5353, big).build(p), output: uResp(VIP, 53, big).build(p), verdict: 'forward', outcome: 'forward_out' },
  ]);
});

test('IP options are carried over untouched', () => {
  const d = director();
  const k = key(TCP, VIP, 80);
  d.addService({ ...k, scheduler: 'rr' });
  d.addDest(k, { addr: ip(RS1), port: 8080 });
  const opts = Uint8Array.from([0x01, 0x01, 0x01, 0x00]); // NOP NOP NOP EOL
  runGolden(d, [
    { name: 'SYN with IP options', input: ipv4({ src: C, dst: VIP, options: opts }).tcp({ sport: 1, dport: 80, flags: 'S' }).build(), output: ipv4({ src: C, dst: RS1, options: opts }).tcp({ sport: 1, dport: 8080, flags: 'S' }).build(), verdict: 'forward', outcome: 'forward_in' },
  ]);
});

test('established connection: the shared golden packets (the kernel fast path runs the same table)', () => {
  const d = director();
  for (const proto of [TCP, UDP]) {
    const k = key(proto, VIP, 80);
    d.addService({ ...k, scheduler: 'rr' });
    d.addDest(k, { addr: ip(RS1), port: 8080 });
  }
  runGolden(d, [
    { name: 'SYN', input: cli('S', 999, 0), output: toRs('S', 999, 0), verdict: 'forward', outcome: 'forward_in', state: 'SYN_RECV' },
    { name: 'SYN-ACK', input: fromRs('SA', 1999, 1000), output: toCli('SA', 1999, 1000), verdict: 'forward', outcome: 'forward_out', state: 'SYN_RECV' },
    { name: 'ACK', input: cli('A', 1000, 2000), output: toRs('A', 1000, 2000), verdict: 'forward', outcome: 'forward_in', state: 'ESTABLISHED' },
    ...FLOW_CASES.map((c) => ({ name: c.name, input: c.input, output: c.output(64), verdict: 'forward' as const, outcome: c.dir === 'request' ? ('forward_in' as const) : ('forward_out' as const), state: c.proto === TCP ? 'ESTABLISHED' : undefined })), // (runGolden finds a state by address and ports, not protocol: the TCP one here)
  ]);
});
