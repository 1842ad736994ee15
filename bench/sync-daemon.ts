/**
 * What connection sync costs per new connection, in one process (no sockets for the engines,
 * a UDP socket on loopback for the send): `node dist/bench/sync-daemon.js [connections] [rounds]`.
 *
 *   master    the engine processing SYN, ACK and one data segment of each new connection,
 *             with and without a sync master (the worker's sink: a copy of each datagram);
 *             the difference is the master's cost (announcement at the 3rd packet, batching)
 *   send      each datagram posted through a MessageChannel (the worker -> main thread hop),
 *             then sent from one UDP socket (to 127.0.0.1) by the main thread
 *   backup    the main thread's split (SyncRouter, two workers, queueOf) and the engines'
 *             apply (Director.sync.receive) of every datagram
 *   wire      UDP payload bytes per connection
 * Rounds alternate with and without the master; medians are printed, then one JSON line.
 * CPU per 10,000 new connections/s = cost per connection x 10,000 (ms of CPU per second).
 */
import { createSocket } from 'node:dgram';
import { MessageChannel } from 'node:worker_threads';
import { Director } from '../src/core/director.js';
import { defaultRegistry } from '../src/sched/index.js';
import { ipv4 } from '../src/wire/build.js';
import { parseIPv4 } from '../src/wire/addr.js';
import { SyncRouter } from '../src/daemon/sync-router.js';
import { queueOf, steeringSpec } from '../src/datapath/tun/steering.js';

const N = Number(process.argv[2] ?? 100_000);
const ROUNDS = Number(process.argv[3] ?? 5);
const VIP = parseIPv4('203.0.113.10');
const RS = ['192.0.2.11', '192.0.2.12'].map(parseIPv4);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const log = (s: string) => process.stderr.write(`${s}\n`);

function director(): Director {
  const d = new Director({ schedulers: defaultRegistry(), seed: 7, maxConns: N * 2 });
  const k = { proto: 6, addr: VIP, port: 80 };
  d.addService({ ...k, scheduler: 'rr' });
  for (const a of RS) d.addDest(k, { addr: a, port: 8080 }); // masquerading (NAT)
  return d;
}

// three inbound packets per connection (documentation addresses only)
const dotted = (n: number) => `198.51.${100 + ((n >> 16) & 1)}.${(n >> 8) & 0xff}`;
const pkts: Buffer[] = [];
for (let n = 0; n < N; n++) {
  const src = dotted(n);
  const sport = 1024 + (n & 0xff) * 200 + ((n >> 8) % 200);
  pkts.push(ipv4({ src, dst: '203.0.113.10' }).tcp({ sport, dport: 80, flags: 'S' }).build());
  pkts.push(ipv4({ src, dst: '203.0.113.10' }).tcp({ sport, dport: 80, flags: 'A' }).build());
  pkts.push(ipv4({ src, dst: '203.0.113.10' }).tcp({ sport, dport: 80, flags: 'PA' }).payload(Buffer.from('hello')).build());
}
const work = pkts.map((p) => Buffer.from(p));

function run(master: boolean): { ms: number; datagrams: Uint8Array[] } {
  const d = director();
  const datagrams: Uint8Array[] = [];
  if (master) d.sync.startMaster({ syncid: 1, maxlen: 1472 }, (b, len) => (datagrams.push(b.slice(0, len)), true));
  for (let i = 0; i < pkts.length; i++) pkts[i]!.copy(work[i]!);
  const t0 = performance.now();
  for (let i = 0; i < work.length; i++) d.process(work[i]!, 0, work[i]!.length, 1000 + (i >> 10), 0);
  if (master) d.sync.flush();
  return { ms: performance.now() - t0, datagrams };
}

async function send(datagrams: Uint8Array[]): Promise<number> {
  const sock = createSocket('udp4');
  await new Promise<void>((r) => sock.bind(0, '127.0.0.1', r));
  const { port1, port2 } = new MessageChannel();
  let left = datagrams.length;
  const t0 = performance.now();
  await new Promise<void>((done) => {
    port2.on('message', ({ datagram: g }: { datagram: Uint8Array }) =>
      sock.send(g, 9, '127.0.0.1', () => {
        if (--left === 0) done();
      }),
    );
    for (const g of datagrams) port1.postMessage({ type: 'sync', datagram: g });
  });
  port1.close();
  const ms = performance.now() - t0;
  sock.close();
  return ms;
}

function backup(datagrams: Uint8Array[]): { ms: number; created: number } {
  const ds = [director(), director()];
  const spec = steeringSpec([{ proto: 6, addr: VIP, port: 80 }], []);
  const router = new SyncRouter(2, (p, c, cp, v, vp) => queueOf(spec, 2, p, c, cp, v, vp));
  const t0 = performance.now();
  for (const g of datagrams) {
    const parts = router.route(g, g.length, 1);
    for (let w = 0; w < 2; w++) {
      const part = parts[w];
      if (part) ds[w]!.sync.receive(part, 0, part.length, 1, 2000);
    }
  }
  const ms = performance.now() - t0;
  return { ms, created: ds.reduce((a, d) => a + d.sync.counters()['sync_apply_Created']!, 0) };
}

const without: number[] = [];
const withMaster: number[] = [];
const sends: number[] = [];
const backups: number[] = [];
let bytes = 0;
let datagramCount = 0;
let created = 0;
for (let r = 0; r < ROUNDS; r++) {
  without.push(run(false).ms);
  const m = run(true);
  withMaster.push(m.ms);
  bytes = m.datagrams.reduce((a, g) => a + g.length, 0);
  datagramCount = m.datagrams.length;
  sends.push(await send(m.datagrams));
  const b = backup(m.datagrams);
  backups.push(b.ms);
  created = b.created;
  log(`round ${r + 1}: engine ${without.at(-1)!.toFixed(0)} ms, with master ${m.ms.toFixed(0)} ms, send ${sends.at(-1)!.toFixed(1)} ms, backup ${b.ms.toFixed(0)} ms (${N} connections)`);
}
const us = (ms: number) => (ms * 1000) / N;
const master = us(median(withMaster) - median(without));
const out = {
  connections: N,
  rounds: ROUNDS,
  datagrams: datagramCount,
  wire_bytes_per_conn: +(bytes / N).toFixed(1),
  backup_created: created,
  engine_us_per_conn: +us(median(without)).toFixed(3),
  master_us_per_conn: +master.toFixed(3),
  send_us_per_conn: +us(median(sends)).toFixed(3),
  backup_us_per_conn: +us(median(backups)).toFixed(3),
  cpu_ms_per_s_at_10k_new_conns_per_s: { master: +(master * 10).toFixed(1), send: +(us(median(sends)) * 10).toFixed(1), backup: +(us(median(backups)) * 10).toFixed(1) },
};
log(`master ${out.master_us_per_conn} us/conn (engine alone ${out.engine_us_per_conn}), send ${out.send_us_per_conn} us/conn, backup ${out.backup_us_per_conn} us/conn; ${out.wire_bytes_per_conn} B/conn on the wire; backup created ${created} of ${N}`);
process.stdout.write(`${JSON.stringify(out)}\n`);
