/**
 * The SYN generator's own ceiling per method (`npm run bench:flood -- --generator`): in one bed
 * with no balancer (the director has no route for the VIP and drops the SYNs; its ICMP errors
 * are rate-limited), src/lab/flood.ts unpaced for `seconds` with 1,000,000 sources, by each of
 * write(2) per packet, io_uring batches of 64, and both with 2 processes on a multi-queue TUN.
 * The kernel forwards each written SYN in the writer's softirq (client namespace, veth, the
 * director's routing), so these rates include that path, not only the writes.
 */
import { SCRIPTS } from '../src/lab/director-bed.js';
import { run } from '../src/lab/shell.js';
import { LAB, TestBed } from '../src/lab/testbed.js';
import { FLOOD_CLIENT, OPEN_BEDS, SPOOFED_BASE, SPOOFED_NET } from './flood-setups.js';

export const GENERATOR_METHODS: Record<string, string[]> = {
  'write, 1 process': ['--io', 'write', '--procs', '1'],
  'io_uring batch 64, 1 process': ['--io', 'uring', '--batch', '64', '--procs', '1'],
  'write, 2 processes': ['--io', 'write', '--procs', '2'],
  'io_uring batch 64, 2 processes': ['--io', 'uring', '--batch', '64', '--procs', '2'],
};

export async function measureGenerator(prefix: string, seconds: number, log: (s: string) => void): Promise<Record<string, { pps: number; sent: number; seconds: number }>> {
  const bed = new TestBed({ realServers: 1, clients: 2, prefix });
  OPEN_BEDS.add(bed);
  try {
    bed.up();
    run(['ip', '-n', bed.director, 'route', 'add', SPOOFED_NET, 'via', LAB.client(FLOOD_CLIENT)]);
    const out: Record<string, { pps: number; sent: number; seconds: number }> = {};
    for (const [name, args] of Object.entries(GENERATOR_METHODS)) {
      const j = JSON.parse(run(['ip', 'netns', 'exec', bed.clients[FLOOD_CLIENT]!, process.execPath, SCRIPTS.flood, '--proto', 'tcp', '--dst', LAB.VIP, '--port', '80', '--rate', '0', '--seconds', String(seconds), '--addrs', '128', '--sources', '1000000', '--src-base', SPOOFED_BASE, ...args])) as { pps: number; sent: number; seconds: number };
      out[name] = { pps: j.pps, sent: j.sent, seconds: j.seconds };
      log(`  ${name}: ${j.pps} SYN/s`);
      await new Promise((r) => setImmediate(r)); // a turn of the event loop: an interrupt is handled here
    }
    return out;
  } finally {
    bed.down();
    OPEN_BEDS.delete(bed);
  }
}
