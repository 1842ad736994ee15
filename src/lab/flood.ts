/**
 * Flow generator (runs as root inside a client namespace of the test bed): opens a TUN device
 * there, routes a block of source addresses to it, and writes N packets to --dst, each from a
 * distinct source address:port (addresses --src-base + 0..--addrs-1, ports 1024 + k), paced at
 * --rate per second:
 *   --proto udp   8-byte UDP datagrams (the memory measurement of `npm run bench`)
 *   --proto tcp   TCP SYNs (a SYN flood with spoofed sources, issue 14)
 * The namespace forwards them to the director like any client's packets; replies go to the
 * spoofed addresses, routed back into the TUN and never read (the kernel drops them when its
 * queue is full; the director's neighbour lookups for them cost nothing here).
 * Prints one JSON line: {"sent","seconds","write_errors"}. The TUN disappears when it exits.
 *   --dst 203.0.113.10 --port 5201 --flows 1000000 --rate 50000 [--src-base 198.51.100.128]
 *   [--addrs 16] [--proto udp|tcp]
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
    addrs: { type: 'string', default: '16' },
    proto: { type: 'string', default: 'udp' },
  },
});
const FLOWS = Number(values.flows);
const RATE = Number(values.rate);
const ADDRS = Number(values.addrs);
const PREFIX = 32 - Math.log2(ADDRS);
if (!Number.isInteger(PREFIX) || PREFIX < 24) throw new Error(`--addrs is a power of two up to 256, not ${values.addrs}`);
const TCP = values.proto === 'tcp';
if (!TCP && values.proto !== 'udp') throw new Error(`--proto is udp or tcp, not ${values.proto}`);
const PORTS = 64000;
if (FLOWS > ADDRS * PORTS) throw new Error(`at most ${ADDRS * PORTS} flows`);
const base = parseIPv4(values['src-base']!) >>> 0;
const dst = parseIPv4(values.dst!) >>> 0;
const dport = Number(values.port);
const DEV = 'ulvsgen';

const q = openTunQueue(DEV, { multiQueue: false, offload: false });
try {
  run(['ip', 'link', 'set', DEV, 'up']);
  run(['ip', 'route', 'add', `${formatIPv4(base)}/${PREFIX}`, 'dev', DEV]);
  run(['sysctl', '-qw', 'net.ipv4.ip_forward=1']);
  for (const k of ['all', DEV]) run(['sysctl', '-qw', `net.ipv4.conf.${k}.rp_filter=0`]);
  run(['sysctl', '-qw', `net.ipv4.conf.${DEV}.accept_local=1`]);

  // virtio_net_hdr (all zero: no offload) + IPv4 (20) + UDP (8) and 8 bytes of payload, or TCP (20)
  const len = TCP ? 40 : 36;
  const pkt = Buffer.alloc(VNET_HDR_LEN + len);
  const ip = VNET_HDR_LEN;
  pkt[ip] = 0x45;
  pkt.writeUInt16BE(len, ip + 2);
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
  /** the TCP checksum over the pseudo-header (addresses, protocol, length) and the segment */
  const tcpChecksum = () => {
    pkt.writeUInt16BE(0, ip + 36);
    const pseudo = sumBytes(pkt, ip + 12, 8, 6 + 20);
    pkt.writeUInt16BE(finish(sumBytes(pkt, ip + 20, 20, pseudo)), ip + 36);
  };

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
      if (TCP) {
        pkt.writeUInt32BE((sent * 2654435761) >>> 0, ip + 24); // a sequence number per flow
        tcpChecksum();
      }
      if (sys.write(q.fd, pkt, pkt.length) !== pkt.length) writeErrors++;
    }
    if (sent < FLOWS) await new Promise((r) => setTimeout(r, 1));
  }
  process.stdout.write(`${JSON.stringify({ sent, seconds: Number(((performance.now() - t0) / 1000).toFixed(2)), write_errors: writeErrors })}\n`);
} finally {
  sys.close(q.fd);
}
