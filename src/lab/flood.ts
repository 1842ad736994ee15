/**
 * UDP flow generator for the memory measurement of `npm run bench` (runs as root inside a
 * client namespace of the test bed): opens a TUN device there, routes a block of source
 * addresses to it, and writes N UDP datagrams to --dst, each from a distinct source
 * address:port (addresses --src-base + 0..15, ports 1024 + k), paced at --rate per second.
 * The namespace forwards them to the director like any client's packets; replies are not
 * needed (the director's neighbour lookups for these addresses fail, which costs nothing here).
 * Prints one JSON line: {"sent","seconds","write_errors"}. The TUN disappears when it exits.
 *   --dst 203.0.113.10 --port 5201 --flows 1000000 --rate 50000 [--src-base 198.51.100.128]
 */
import { parseArgs } from 'node:util';
import { openTunQueue } from '../datapath/tun/device.js';
import { sys } from '../datapath/tun/sys.js';
import { run } from './shell.js';
import { formatIPv4, parseIPv4 } from '../wire/addr.js';
import { VNET_HDR_LEN } from '../wire/virtio.js';
import { finish, sumBytes } from '../wire/checksum.js';

const { values } = parseArgs({
  options: {
    dst: { type: 'string', default: '203.0.113.10' },
    port: { type: 'string', default: '5201' },
    flows: { type: 'string', default: '1000000' },
    rate: { type: 'string', default: '50000' },
    'src-base': { type: 'string', default: '198.51.100.128' },
  },
});
const FLOWS = Number(values.flows);
const RATE = Number(values.rate);
const ADDRS = 16;
const PORTS = 64000;
if (FLOWS > ADDRS * PORTS) throw new Error(`at most ${ADDRS * PORTS} flows`);
const base = parseIPv4(values['src-base']!) >>> 0;
const dst = parseIPv4(values.dst!) >>> 0;
const dport = Number(values.port);
const DEV = 'ulvsgen';

const q = openTunQueue(DEV, { multiQueue: false, offload: false });
try {
  run(['ip', 'link', 'set', DEV, 'up']);
  run(['ip', 'route', 'add', `${formatIPv4(base)}/28`, 'dev', DEV]);
  run(['sysctl', '-qw', 'net.ipv4.ip_forward=1']);
  for (const k of ['all', DEV]) run(['sysctl', '-qw', `net.ipv4.conf.${k}.rp_filter=0`]);
  run(['sysctl', '-qw', `net.ipv4.conf.${DEV}.accept_local=1`]);

  // virtio_net_hdr (all zero: no offload) + IPv4 (20) + UDP (8) + 8 bytes of payload
  const pkt = Buffer.alloc(VNET_HDR_LEN + 36);
  const ip = VNET_HDR_LEN;
  pkt[ip] = 0x45;
  pkt.writeUInt16BE(36, ip + 2);
  pkt[ip + 8] = 64; // TTL
  pkt[ip + 9] = 17; // UDP
  pkt.writeUInt32BE(dst, ip + 16);
  pkt.writeUInt16BE(dport, ip + 22);
  pkt.writeUInt16BE(16, ip + 24); // UDP length; checksum 0 (none)
  pkt.write('ulvsflow', ip + 28, 'latin1');

  const t0 = performance.now();
  let sent = 0;
  let writeErrors = 0;
  while (sent < FLOWS) {
    const due = Math.min(FLOWS, Math.floor(((performance.now() - t0) / 1000) * RATE) + 1);
    for (; sent < due; sent++) {
      pkt.writeUInt32BE((base + (sent % ADDRS)) >>> 0, ip + 12);
      pkt.writeUInt16BE(0, ip + 10);
      pkt.writeUInt16BE(finish(sumBytes(pkt, ip, 20, 0)), ip + 10);
      pkt.writeUInt16BE(1024 + Math.floor(sent / ADDRS), ip + 20);
      if (sys.write(q.fd, pkt, pkt.length) !== pkt.length) writeErrors++;
    }
    if (sent < FLOWS) await new Promise((r) => setTimeout(r, 1));
  }
  process.stdout.write(`${JSON.stringify({ sent, seconds: Number(((performance.now() - t0) / 1000).toFixed(2)), write_errors: writeErrors })}\n`);
} finally {
  sys.close(q.fd);
}
