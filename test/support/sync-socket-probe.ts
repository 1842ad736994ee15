/**
 * Run inside a network namespace (`ip netns exec NS node dist/test/support/sync-socket-probe.js
 * JSON`): a SyncDaemon with its real sockets and fake workers, to show what the kernel holds for
 * them and what they receive. JSON argument:
 *   { role, iface, ports, sockSize, qlenMax, sends?: [{worker, size, count}], listenMs,
 *     plain?: true   also a socket as ulvs made it before (dgram: group:port, address reuse, joined
 *                    on iface's address, no SO_BINDTODEVICE): the control of the device filter
 *     joinOn?: IF    another socket joins the group on IF (another program's membership) }
 * Prints `started` once its sockets are open, then one JSON line { options (per socket, port
 * order), counters, plainReceived } after listenMs, and exits.
 */
import { createSocket } from 'node:dgram';
import { SyncDaemon } from '../../src/daemon/sync-daemon.js';
import { boundDevice, socketIntOption } from '../../src/daemon/sync-socket.js';
import { hostAddresses } from '../../src/datapath/tun/routing.js';
import { formatIPv4 } from '../../src/wire/addr.js';

interface Args {
  role: 'master' | 'backup';
  iface: string;
  ports: number;
  sockSize: number;
  qlenMax: number;
  sends?: { worker: number; size: number; count: number }[];
  listenMs: number;
  plain?: boolean;
  joinOn?: string;
}

const a = JSON.parse(process.argv[2]!) as Args;
const GROUP = '224.0.0.81';
const PORT = 8848;
const d = new SyncDaemon({
  workers: 2,
  workerOf: () => 0,
  startMasters: async () => undefined,
  stopMasters: async () => undefined,
  receive: async () => 0,
  addresses: hostAddresses,
  sysctl: () => ({ syncQlenMax: a.qlenMax, syncSockSize: a.sockSize, syncPorts: a.ports }),
  warn: () => undefined,
});
const addrOf = (dev: string) => formatIPv4(hostAddresses().find((x) => x.dev === dev)!.addr);

let plainReceived = 0;
if (a.plain) {
  const p = createSocket({ type: 'udp4', reuseAddr: true });
  p.on('message', () => plainReceived++);
  await new Promise<void>((r) => p.bind(PORT, GROUP, () => r()));
  p.addMembership(GROUP, addrOf(a.iface));
}
if (a.joinOn) {
  const j = createSocket({ type: 'udp4', reuseAddr: true });
  await new Promise<void>((r) => j.bind(PORT + 100, () => r()));
  j.addMembership(GROUP, addrOf(a.joinOn));
}

await d.start({ state: a.role, iface: a.iface, syncid: 0, maxlen: 0, group: GROUP, port: PORT, ttl: 1 });
console.log('started');
const fds = d.fds()[a.role];
const options = fds.map((fd) => ({ pmtudisc: socketIntOption(fd, 'pmtudisc'), sndbuf: socketIntOption(fd, 'sndbuf'), rcvbuf: socketIntOption(fd, 'rcvbuf'), device: boundDevice(fd) }));
for (const s of a.sends ?? []) for (let i = 0; i < s.count; i++) d.send(new Uint8Array(s.size).fill(0x5a), s.worker);
await new Promise((r) => setTimeout(r, a.listenMs));
console.log(JSON.stringify({ options, counters: d.counters(), plainReceived }));
d.close();
process.exit(0);
