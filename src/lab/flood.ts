/**
 * Flow generator (runs as root inside a client namespace of the test bed): opens a TUN device
 * there, routes a block of source addresses to it, and writes packets to --dst from spoofed
 * source tuples, paced at --rate per second (0: as fast as it can):
 *   --proto udp   8-byte UDP datagrams (the memory measurement of `npm run bench`)
 *   --proto tcp   TCP SYNs (a SYN flood with spoofed sources, issue 14; bench/flood.ts)
 * Source tuple k (0 <= k < --sources) is address --src-base + (k mod --addrs), port
 * 1024 + floor(k / --addrs); packet n comes from tuple n mod --sources, so --sources is the
 * number of distinct (address, port) pairs the flood cycles through (default: every packet a
 * new pair, up to --addrs x 64,000). It stops after --flows packets, or after --seconds (and
 * not before --min-flows packets — a flood long enough to use every source once — unless
 * --max-seconds have passed).
 * The namespace forwards them to the director like any client's packets; replies go to the
 * spoofed addresses, routed back into the TUN and never read (the kernel drops them when its
 * queue is full; the director's neighbour lookups for them cost nothing here).
 *
 * How packets reach the kernel (--io): `write`, one write(2) per packet; `uring`, --batch
 * packets built in a mapped buffer and handed over by one io_uring_enter(2) (a TUN write takes
 * one packet, so a batch is one write SQE per packet). --procs P runs P processes, each on its
 * own queue of a multi-queue TUN, each sending every P-th packet at --rate / P.
 *
 * Prints one JSON line: {"sent","seconds","pps","write_errors","sources","io","procs",
 * "start_ms","end_ms"} (the last two: when sending began and ended, ms since the epoch). The
 * TUN disappears when it exits.
 *   --dst 203.0.113.10 --port 5201 --flows 1000000 --rate 50000 [--src-base 198.51.100.128]
 *   [--addrs 16] [--proto udp|tcp] [--sources N] [--seconds S [--min-flows N] [--max-seconds M]] [--io write|uring] [--batch 64]
 *   [--procs P]
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { openTunQueue } from '../datapath/tun/device.js';
import { mapMemory, munmap, sys } from '../datapath/tun/sys.js';
import { Uring } from '../datapath/tun/uring.js';
import { run } from './shell.js';
import { formatIPv4, parseIPv4 } from '../wire/addr.js';
import { VNET_HDR_LEN } from '../wire/virtio.js';
import { finish, sumBytes } from '../wire/checksum.js';

const { values } = parseArgs({
  options: {
    dst: { type: 'string', default: '203.0.113.10' },
    port: { type: 'string', default: '5201' },
    flows: { type: 'string', default: '1000000' },
    seconds: { type: 'string' },
    'min-flows': { type: 'string', default: '0' },
    'max-seconds': { type: 'string', default: '3600' },
    rate: { type: 'string', default: '50000' },
    'src-base': { type: 'string', default: '198.51.100.128' },
    addrs: { type: 'string', default: '16' },
    sources: { type: 'string' },
    proto: { type: 'string', default: 'udp' },
    io: { type: 'string', default: 'write' },
    batch: { type: 'string', default: '64' },
    procs: { type: 'string', default: '1' },
    part: { type: 'string' }, // internal: this is helper process i of --procs (attaches to the TUN)
  },
});
const fail = (m: string): never => {
  process.stderr.write(`flood: ${m}\n`);
  process.exit(2);
};
const ADDRS = Number(values.addrs);
const PREFIX = 32 - Math.log2(ADDRS);
if (!Number.isInteger(PREFIX) || PREFIX < 24) fail(`--addrs is a power of two up to 256, not ${values.addrs}`);
const PORTS = 64000;
const SECONDS = values.seconds === undefined ? Infinity : Number(values.seconds);
if (!(SECONDS > 0)) fail(`--seconds is a positive number, not ${values.seconds}`);
const FLOWS = values.seconds === undefined ? Number(values.flows) : Infinity;
/** with --seconds: go on past them until this many packets are sent (every source used once) */
const MIN_FLOWS = Number(values['min-flows']);
if (!(Number.isInteger(MIN_FLOWS) && MIN_FLOWS >= 0)) fail(`--min-flows is a count, not ${values['min-flows']}`);
const MAX_SECONDS = Number(values['max-seconds']);
if (!(MAX_SECONDS > 0)) fail(`--max-seconds is a positive number, not ${values['max-seconds']}`);
if (!(FLOWS > 0)) fail(`--flows is a positive integer, not ${values.flows}`);
const SOURCES = values.sources === undefined ? ADDRS * PORTS : Number(values.sources);
if (!(Number.isInteger(SOURCES) && SOURCES >= 1 && SOURCES <= ADDRS * PORTS)) fail(`--sources is 1..${ADDRS * PORTS} (--addrs x ${PORTS}), not ${values.sources}`);
if (values.sources === undefined && FLOWS !== Infinity && FLOWS > SOURCES) fail(`at most ${SOURCES} flows`);
const RATE = Number(values.rate);
if (!(RATE >= 0)) fail(`--rate is packets per second (0: unpaced), not ${values.rate}`);
const TCP = values.proto === 'tcp';
if (!TCP && values.proto !== 'udp') fail(`--proto is udp or tcp, not ${values.proto}`);
const IO = values.io;
if (IO !== 'write' && IO !== 'uring') fail(`--io is write or uring, not ${IO}`);
const BATCH = Number(values.batch);
if (!(Number.isInteger(BATCH) && BATCH >= 1 && BATCH <= 4096)) fail(`--batch is 1..4096, not ${values.batch}`);
const PROCS = Number(values.procs);
if (!(Number.isInteger(PROCS) && PROCS >= 1 && PROCS <= 16)) fail(`--procs is 1..16, not ${values.procs}`);
const PART = values.part === undefined ? 0 : Number(values.part);
if (!(Number.isInteger(PART) && PART >= 0 && PART < PROCS)) fail(`--part is 0..${PROCS - 1}`);
const base = parseIPv4(values['src-base']!) >>> 0;
if ((base & (ADDRS - 1)) !== 0) fail(`--src-base ${values['src-base']} is not the start of a block of ${ADDRS} addresses (--addrs)`);
const dst = parseIPv4(values.dst!) >>> 0;
const dport = Number(values.port);
const DEV = 'ulvsgen';
/** this process's share: packets PART, PART + PROCS, ... at RATE / PROCS */
const myFlows = FLOWS === Infinity ? Infinity : Math.floor((FLOWS - PART + PROCS - 1) / PROCS);
const myRate = RATE / PROCS;
const myMin = Math.ceil(MIN_FLOWS / PROCS);

// virtio_net_hdr (all zero: no offload) + IPv4 (20) + UDP (8) and 8 bytes of payload, or TCP (20)
const LEN = TCP ? 40 : 36;
const SLOT = 64; // bytes per packet in a batch buffer
/** Write the fixed fields of one packet at `o` (its virtio_net_hdr). */
function template(pkt: Buffer, o: number): void {
  pkt.fill(0, o, o + VNET_HDR_LEN + LEN);
  const ip = o + VNET_HDR_LEN;
  pkt[ip] = 0x45;
  pkt.writeUInt16BE(LEN, ip + 2);
  pkt[ip + 8] = 64; // TTL
  pkt[ip + 9] = TCP ? 6 : 17;
  pkt.writeUInt32BE(dst, ip + 16);
  pkt.writeUInt16BE(dport, ip + 22);
  if (TCP) {
    pkt[ip + 32] = 0x50; // data offset 5 words
    pkt[ip + 33] = 0x02; // SYN
    pkt.writeUInt16BE(64240, ip + 34); // window
  } else {
    pkt.writeUInt16BE(16, ip + 24); // UDP length; checksum 0 (none)
    pkt.write('ulvsflow', ip + 28, 'latin1');
  }
}
/** Fill the per-packet fields of packet number n at `o`: source tuple, sequence, checksums. */
function fill(pkt: Buffer, o: number, n: number): void {
  const ip = o + VNET_HDR_LEN;
  const k = n % SOURCES;
  pkt.writeUInt32BE((base + (k % ADDRS)) >>> 0, ip + 12);
  pkt.writeUInt16BE(0, ip + 10);
  pkt.writeUInt16BE(finish(sumBytes(pkt, ip, 20, 0)), ip + 10);
  pkt.writeUInt16BE(1024 + Math.floor(k / ADDRS), ip + 20);
  if (TCP) {
    pkt.writeUInt32BE((n * 2654435761) >>> 0, ip + 24); // a sequence number per packet
    pkt.writeUInt16BE(0, ip + 36);
    const pseudo = sumBytes(pkt, ip + 12, 8, 6 + 20); // addresses, protocol, TCP length
    pkt.writeUInt16BE(finish(sumBytes(pkt, ip + 20, 20, pseudo)), ip + 36);
  }
}

interface Result {
  sent: number;
  write_errors: number;
}
/** How many packets are due by now (paced), or `batch` more (unpaced), within `limit`. */
function due(sent: number, t0: number, batch: number, limit: number): number {
  const want = myRate > 0 ? Math.floor(((performance.now() - t0) / 1000) * myRate) + 1 : sent + batch;
  return Math.min(limit, want);
}
const over = (t0: number, sent: number) => {
  if (SECONDS === Infinity) return false;
  const ms = performance.now() - t0;
  return ms >= MAX_SECONDS * 1000 || (ms >= SECONDS * 1000 && sent >= myMin);
};

async function sendWrites(fd: number, t0: number): Promise<Result> {
  const pkt = Buffer.alloc(VNET_HDR_LEN + LEN);
  template(pkt, 0);
  let sent = 0;
  let writeErrors = 0;
  while (sent < myFlows && !over(t0, sent)) {
    const d = due(sent, t0, 256, myFlows);
    for (; sent < d; sent++) {
      fill(pkt, 0, PART + sent * PROCS);
      if (sys.write(fd, pkt, pkt.length) !== pkt.length) writeErrors++;
    }
    if (myRate > 0 && sent < myFlows) await new Promise((r) => setTimeout(r, 1));
  }
  return { sent, write_errors: writeErrors };
}

async function sendUring(fd: number, t0: number): Promise<Result> {
  const ring = new Uring(Math.max(8, 1 << Math.ceil(Math.log2(BATCH))), 100);
  const mem = mapMemory(BATCH * SLOT);
  try {
    for (let i = 0; i < BATCH; i++) template(mem.buf, i * SLOT);
    const lo = Number(mem.addr & 0xffffffffn);
    const hi = Number(mem.addr >> 32n);
    let sent = 0;
    let writeErrors = 0;
    const onCompletion = (_u: number, res: number) => {
      if (res !== VNET_HDR_LEN + LEN) writeErrors++;
    };
    while (sent < myFlows && !over(t0, sent)) {
      const n = Math.min(BATCH, due(sent, t0, BATCH, myFlows) - sent);
      if (n > 0) {
        for (let i = 0; i < n; i++) {
          fill(mem.buf, i * SLOT, PART + (sent + i) * PROCS);
          const addrLo = (lo + i * SLOT) >>> 0;
          ring.write(fd, addrLo, hi + (addrLo < lo ? 1 : 0), VNET_HDR_LEN + LEN, i);
        }
        if (!ring.enter(n)) throw new Error(`io_uring_enter: ${sys.strerror(ring.lastErrno)}`);
        let done = ring.drain(onCompletion);
        while (done < n) {
          if (!ring.enter(n - done)) throw new Error(`io_uring_enter: ${sys.strerror(ring.lastErrno)}`);
          done += ring.drain(onCompletion);
        }
        sent += n;
      }
      if (myRate > 0 && sent < myFlows) await new Promise((r) => setTimeout(r, 1));
    }
    return { sent, write_errors: writeErrors };
  } finally {
    munmap(mem.ptr, mem.len);
    ring.close();
  }
}

/** The helper processes (--procs): this script again with --part i, on the same TUN. */
function startHelpers(): Promise<Result[]> {
  const argv = process.argv.slice(1);
  return Promise.all(
    Array.from({ length: PROCS - 1 }, (_, i) => {
      const p = spawn(process.execPath, [fileURLToPath(import.meta.url), ...argv.slice(1), '--part', String(i + 1)], { stdio: ['ignore', 'pipe', 'inherit'] });
      let out = '';
      p.stdout!.on('data', (d: Buffer) => (out += d.toString()));
      return new Promise<Result>((resolve, reject) =>
        p.once('exit', (code) => {
          try {
            resolve(JSON.parse(out) as Result);
          } catch {
            reject(new Error(`flood helper ${i + 1} exited ${code}: ${out}`));
          }
        }),
      );
    }),
  );
}

const q = openTunQueue(DEV, { multiQueue: PROCS > 1, offload: false });
try {
  let helpers: Promise<Result[]> = Promise.resolve([]);
  if (PART === 0) {
    run(['ip', 'link', 'set', DEV, 'up']);
    run(['ip', 'route', 'add', `${formatIPv4(base)}/${PREFIX}`, 'dev', DEV]);
    run(['sysctl', '-qw', 'net.ipv4.ip_forward=1']);
    for (const k of ['all', DEV]) run(['sysctl', '-qw', `net.ipv4.conf.${k}.rp_filter=0`]);
    run(['sysctl', '-qw', `net.ipv4.conf.${DEV}.accept_local=1`]);
    helpers = startHelpers();
  }
  const startMs = Date.now();
  const t0 = performance.now();
  const mine = IO === 'uring' ? await sendUring(q.fd, t0) : await sendWrites(q.fd, t0);
  const all = [mine, ...(await helpers)];
  const seconds = (performance.now() - t0) / 1000; // until the last process finished
  const sent = all.reduce((a, r) => a + r.sent, 0);
  const writeErrors = all.reduce((a, r) => a + r.write_errors, 0);
  const out = PART === 0 ? { sent, seconds: Number(seconds.toFixed(2)), pps: Math.round(sent / seconds), write_errors: writeErrors, sources: Math.min(sent, SOURCES), io: IO, procs: PROCS, start_ms: startMs, end_ms: Date.now() } : mine;
  process.stdout.write(`${JSON.stringify(out)}\n`);
} finally {
  sys.close(q.fd);
}
