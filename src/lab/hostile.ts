/**
 * Hostile packet generator (runs as root inside a namespace of the test bed; issue 14): opens
 * a TAP device there, sends every frame written into it out of --out (tc u32 matching every frame, by its Ethernet header: even one with 1 byte of IP, mirred, so the frames
 * leave exactly as written: no IP layer on this side checks, fixes or drops them), and writes
 * --packets frames of the classes of hostile-packets.ts, chosen uniformly, to the director's
 * MAC (--dst-mac). The PRNG is seeded by --seed (random when absent, and printed either way),
 * so a run is reproduced exactly with the same seed and targets.
 *
 * Targets: --service PROTO:VIP:PORT and --rs PROTO:RIP:PORT (repeatable), and the live
 * connections, given as --tuple PROTO:CIP:CPORT-VIP:VPORT-RIP:RPORT (repeatable) or read from
 * ulvsd's admin API (--admin SOCKET: GET /v1/connections, the TCP connections ESTABLISHED at
 * the start, templates excepted).
 *
 * Prints one JSON line: {"seed","packets","sent","write_errors","seconds","pps","live",
 * "by_class":{class: frames written},"tap":{the TAP's rx_packets and rx_dropped, its mirred
 * action's packets, drops and overlimits}}. `sent` counts the frames the TAP accepted; a refused
 * write (write_errors) is not sent. Sends nothing anywhere but through --out.
 *   --out eth0 --dst-mac 02:00:00:00:00:01 --packets 1000000 [--rate 0 (as fast as it can)]
 *   [--seed N] [--classes a,b,...] --service tcp:203.0.113.10:80 ... --rs tcp:192.0.2.11:8080 ...
 */
import { parseArgs } from 'node:util';
import { randomInt } from 'node:crypto';
import { openTunQueue } from '../datapath/tun/device.js';
import { sys } from '../datapath/tun/sys.js';
import { run, tryRun } from './shell.js';
import { parseIPv4 } from '../wire/addr.js';
import { VNET_HDR_LEN } from '../wire/virtio.js';
import { request } from 'node:http';
import { CLASSES, writePacket, Xorshift, type Endpoint, type HostileClass, type LiveTuple, type Targets } from './hostile-packets.js';

const { values } = parseArgs({
  options: {
    out: { type: 'string', default: 'eth0' },
    'dst-mac': { type: 'string' },
    packets: { type: 'string', default: '1000000' },
    rate: { type: 'string', default: '0' },
    seed: { type: 'string' },
    classes: { type: 'string' },
    service: { type: 'string', multiple: true, default: [] },
    rs: { type: 'string', multiple: true, default: [] },
    tuple: { type: 'string', multiple: true, default: [] },
    admin: { type: 'string' },
    tap: { type: 'string', default: 'qhtap' },
  },
});

function fail(msg: string): never {
  process.stderr.write(`hostile: ${msg}\n`);
  process.exit(2);
}

function proto(p: string): 6 | 17 {
  if (p === 'tcp') return 6;
  if (p === 'udp') return 17;
  return fail(`protocol must be tcp or udp, not ${JSON.stringify(p)}`);
}

function endpoint(s: string): Endpoint {
  const m = /^(tcp|udp):([\d.]+):(\d+)$/.exec(s);
  if (!m || Number(m[3]) > 65535) return fail(`${JSON.stringify(s)} is not PROTO:ADDR:PORT`);
  return { proto: proto(m[1]!), addr: parseIPv4(m[2]!) >>> 0, port: Number(m[3]) };
}

function tuple(s: string): LiveTuple {
  const m = /^(tcp|udp):([\d.]+):(\d+)-([\d.]+):(\d+)-([\d.]+):(\d+)$/.exec(s);
  if (!m) return fail(`${JSON.stringify(s)} is not PROTO:CIP:CPORT-VIP:VPORT-RIP:RPORT`);
  return { proto: proto(m[1]!), caddr: parseIPv4(m[2]!) >>> 0, cport: Number(m[3]), vaddr: parseIPv4(m[4]!) >>> 0, vport: Number(m[5]), daddr: parseIPv4(m[6]!) >>> 0, dport: Number(m[7]) };
}

function mac(s: string): Buffer {
  if (!/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/i.test(s)) return fail(`${JSON.stringify(s)} is not a MAC address`);
  return Buffer.from(s.split(':').map((x) => parseInt(x, 16)));
}

/** The live TCP connections in ulvsd's table (ESTABLISHED, not templates). */
async function liveFromAdmin(socket: string): Promise<LiveTuple[]> {
  // lab/ may not import control/ (layering): the one GET, by hand
  const r = await new Promise<{ status: number; text: string }>((resolve, reject) => {
    const req = request({ socketPath: socket, method: 'GET', path: '/v1/connections' }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
    });
    req.on('error', reject);
    req.end();
  }).catch((e: Error) => fail(`GET /v1/connections on ${socket}: ${e.message}`));
  let json: unknown = null;
  try {
    json = JSON.parse(r.text);
  } catch {
    /* checked below */
  }
  if (r.status !== 200 || !Array.isArray(json)) return fail(`GET /v1/connections: ${r.status} ${r.text.slice(0, 200)}`);
  return (json as { proto: number; template: boolean; state: string; caddr: number; cport: number; vaddr: number; vport: number; daddr: number; dport: number }[])
    .filter((c) => !c.template && c.proto === 6 && c.state === 'ESTABLISHED')
    .map((c) => ({ proto: 6, caddr: c.caddr >>> 0, cport: c.cport, vaddr: c.vaddr >>> 0, vport: c.vport, daddr: c.daddr >>> 0, dport: c.dport }));
}

const PACKETS = Number(values.packets);
const RATE = Number(values.rate);
if (!Number.isSafeInteger(PACKETS) || PACKETS < 0) fail(`--packets must be a count, not ${values.packets}`);
if (!(RATE >= 0)) fail(`--rate must be packets per second (0: unpaced), not ${values.rate}`);
if (!values['dst-mac']) fail('--dst-mac (the director interface the frames go to) is required');
const dstMac = mac(values['dst-mac']!);
const seed = values.seed !== undefined ? Number(values.seed) >>> 0 : randomInt(1, 0xffffffff);
const classes: readonly HostileClass[] = values.classes ? values.classes.split(',').map((c) => ((CLASSES as readonly string[]).includes(c) ? (c as HostileClass) : fail(`unknown class ${c} (${CLASSES.join(', ')})`))) : CLASSES;
const targets: Targets = { services: values.service.map(endpoint), realServers: values.rs.map(endpoint), live: values.tuple.map(tuple) };
if (targets.services.length === 0 || targets.realServers.length === 0) fail('at least one --service and one --rs');
if (values.admin) targets.live.push(...(await liveFromAdmin(values.admin)));

const DEV = values.tap!;
const q = openTunQueue(DEV, { multiQueue: false, offload: false, tap: true });
try {
  run(['ip', 'link', 'set', DEV, 'up']);
  run(['sysctl', '-qw', `net.ipv6.conf.${DEV}.disable_ipv6=1`]);
  run(['tc', 'qdisc', 'add', 'dev', DEV, 'clsact']);
  run(['tc', 'filter', 'add', 'dev', DEV, 'ingress', 'protocol', 'all', 'u32', 'match', 'u32', '0', '0', 'at', '-12', 'action', 'mirred', 'egress', 'redirect', 'dev', values.out!]);

  const r = new Xorshift(seed);
  const frame = Buffer.alloc(VNET_HDR_LEN + 14 + 256); // virtio_net_hdr all zero: no offload
  const eth = VNET_HDR_LEN;
  const srcMac = Buffer.from([0x02, 0x71, 0x68, 0, 0, 1]); // locally administered
  srcMac.copy(frame, eth + 6);
  frame.writeUInt16BE(0x0800, eth + 12);
  const byClass: Record<string, number> = Object.fromEntries(classes.map((c) => [c, 0]));
  let sent = 0;
  let writeErrors = 0;
  const t0 = performance.now();
  for (let n = 0; n < PACKETS; ) {
    const due = RATE > 0 ? Math.min(PACKETS, Math.floor(((performance.now() - t0) / 1000) * RATE) + 1) : Math.min(PACKETS, n + 4096);
    for (; n < due; n++) {
      const c = classes[r.int(classes.length)]!;
      const len = writePacket(c, r, targets, frame, eth + 14);
      if (c === 'other_host') {
        for (let k = 0; k < 6; k++) frame[eth + k] = r.u32() & 0xff;
        frame[eth] = (frame[eth]! & 0xfe) | 0x02; // unicast, locally administered: nobody's
      } else dstMac.copy(frame, eth);
      if (sys.write(q.fd, frame, eth + 14 + len) === eth + 14 + len) {
        sent++;
        byClass[c]!++;
      } else writeErrors++;
    }
    if (RATE > 0 && n < PACKETS) await new Promise((res) => setTimeout(res, 1));
  }
  const seconds = (performance.now() - t0) / 1000;
  // what the TAP received and what its mirred action sent on or dropped (gone with the TAP)
  const link = (JSON.parse(run(['ip', '-s', '-j', 'link', 'show', 'dev', DEV])) as { stats64: { rx: { packets: number; dropped: number } } }[])[0]!.stats64.rx;
  const filters = JSON.parse(run(['tc', '-s', '-j', 'filter', 'show', 'dev', DEV, 'ingress'])) as { options?: { actions?: { stats: { packets: number; drops: number; overlimits: number } }[] } }[];
  const mirred = filters.flatMap((f) => f.options?.actions ?? []).map((a) => a.stats)[0] ?? { packets: 0, drops: 0, overlimits: 0 };
  const tap = { rx_packets: link.packets, rx_dropped: link.dropped, mirred_packets: mirred.packets, mirred_drops: mirred.drops, mirred_overlimits: mirred.overlimits };
  process.stdout.write(`${JSON.stringify({ seed, packets: PACKETS, sent, write_errors: writeErrors, seconds: Number(seconds.toFixed(2)), pps: Math.round(sent / seconds), live: targets.live.length, by_class: byClass, tap })}\n`);
} finally {
  tryRun(['tc', 'qdisc', 'del', 'dev', DEV, 'clsact']);
  sys.close(q.fd);
}
