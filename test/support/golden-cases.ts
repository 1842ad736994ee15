/**
 * Golden packets of an established VS/NAT connection, one table for both implementations of
 * the rewrite: the TypeScript engine (test/golden/nat-tcp-udp.test.ts) and the kernel fast
 * path (test/integration/fastpath-program.test.ts, bpf/fastpath.bpf.c run by the kernel).
 *
 * The connection: CLIENT:40000 -> VIP:80, served by RS1:8080, for TCP and for UDP alike.
 * Inputs carry TTL 64. The engine leaves the TTL to the kernel's forwarding (output(64)); the
 * fast path forwards itself and so decrements it (output(63)); everything else is the same
 * bytes, checksums included. Cases where the two differ on purpose stay in their own tests
 * (a UDP checksum 0: the engine writes a full checksum, the kernel's helper keeps "none"; SYN,
 * FIN, RST: the engine's, never the fast path's). Test-only.
 */
import { ipv4 } from '../../src/wire/build.js';
import { CLIENT, RS1, VIP } from './bed.js';

export const FLOW = { client: CLIENT, cport: 40000, vip: VIP, vport: 80, rip: RS1, rport: 8080 } as const;

export interface FlowCase {
  name: string;
  proto: 6 | 17;
  /** request: client -> VIP:vport, sent on to RS1:8080; reply: RS1:8080 -> client, sent on as VIP:80 */
  dir: 'request' | 'reply';
  input: Buffer;
  /** the packet as the director sends it, with TTL `ttl` */
  output(ttl: number): Buffer;
}

const get = 'GET / HTTP/1.1\r\nHost: x\r\n\r\n';
const body = Buffer.alloc(1000, 0x5a);
const toVip = (ttl: number, id: number) => ipv4({ src: FLOW.client, dst: FLOW.vip, ttl, id });
const toRs = (ttl: number, id: number) => ipv4({ src: FLOW.client, dst: FLOW.rip, ttl, id });
const fromRs = (ttl: number, id: number) => ipv4({ src: FLOW.rip, dst: FLOW.client, ttl, id });
const toClient = (ttl: number, id: number) => ipv4({ src: FLOW.vip, dst: FLOW.client, ttl, id });
const inPorts = { sport: FLOW.cport, dport: FLOW.vport };
const rsPorts = { sport: FLOW.cport, dport: FLOW.rport };
const replyPorts = { sport: FLOW.rport, dport: FLOW.cport };
const outPorts = { sport: FLOW.vport, dport: FLOW.cport };

/** In order: the engine runs them after the TCP handshake, on one connection per protocol. */
export const FLOW_CASES: FlowCase[] = [
  {
    name: 'TCP request with data: destination becomes RIP:rport',
    proto: 6,
    dir: 'request',
    input: toVip(64, 7).tcp({ ...inPorts, flags: 'PA', seq: 1000, ack: 2000 }).payload(get).build(),
    output: (ttl) => toRs(ttl, 7).tcp({ ...rsPorts, flags: 'PA', seq: 1000, ack: 2000 }).payload(get).build(),
  },
  {
    name: 'TCP reply with 1000 bytes: source becomes VIP:vport',
    proto: 6,
    dir: 'reply',
    input: fromRs(64, 9).tcp({ ...replyPorts, flags: 'A', seq: 2000, ack: 1027 }).payload(body).build(),
    output: (ttl) => toClient(ttl, 9).tcp({ ...outPorts, flags: 'A', seq: 2000, ack: 1027 }).payload(body).build(),
  },
  {
    name: 'TCP request, pure ACK',
    proto: 6,
    dir: 'request',
    input: toVip(64, 8).tcp({ ...inPorts, flags: 'A', seq: 1027, ack: 3000 }).build(),
    output: (ttl) => toRs(ttl, 8).tcp({ ...rsPorts, flags: 'A', seq: 1027, ack: 3000 }).build(),
  },
  {
    name: 'UDP request with a checksum',
    proto: 17,
    dir: 'request',
    input: toVip(64, 11).udp(inPorts).payload('query').build(),
    output: (ttl) => toRs(ttl, 11).udp(rsPorts).payload('query').build(),
  },
  {
    name: 'UDP reply',
    proto: 17,
    dir: 'reply',
    input: fromRs(64, 12).udp(replyPorts).payload('answer').build(),
    output: (ttl) => toClient(ttl, 12).udp(outPorts).payload('answer').build(),
  },
];
