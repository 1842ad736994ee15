/**
 * The set-ups of the asymmetric benchmark (bench/asym.ts): how each is started on the director
 * (and the real servers), what it costs in director process CPU, and the counters that show the
 * traffic took the path the set-up claims (checked by asym-path.ts).
 *
 *   ulvs          ulvsd, VIP:80 -> RS:80 -m (NAT: requests and replies both cross ulvs)
 *   ulvs-nofp     the same with --fast-path off: ulvsd itself carries every packet both ways
 *   ulvs-dr       ulvsd, -g (DR), replies straight to the client (direct-return links)
 *   ulvs-dr-fwd   the same DR service, replies through the director's kernel (its default
 *                 gateway), which forwards them without ulvs
 *   ulvs-tun      ulvsd, -i (IP-in-IP), the real servers prepared by `ulvs rs-setup tun --dev
 *                 eth0 VIP` for the measurement and restored (`--remove`) after it (this kernel
 *                 has no ipip module: rs-setup falls back to ulvs's eBPF decapsulator), replies
 *                 straight to the client
 *   nft-dr        the kernel's nearest DR peer: no ulvsd; an nftables netdev table on the
 *                 director's client-facing interface (pubbr) sends each packet for VIP:80 to a
 *                 real server with `fwd ip to RIP device "br0"` (neighbour resolution: the
 *                 destination MAC becomes the real server's, TTL - 1; nft_fwd_netdev.c,
 *                 nft_fwd_neigh_eval). The server is `jhash ip saddr . tcp sport mod 3`: a hash
 *                 of the flow (the destination is the one VIP:80), so every packet of a
 *                 connection goes to one server. Per-packet spreading (`numgen inc`) would send
 *                 a connection's ACKs to servers that never saw its SYN, which answer with RST.
 *                 No state, no health checks, no weights: a static hash over three servers.
 *                 Replies straight to the client, as ulvs-dr.
 *
 * There is no nftables peer for TUN: nftables has no encapsulation statement; the kernel does
 * IP-in-IP with the ipip module (a tunl0/ipip device to route into), which this kernel lacks.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { callAdmin } from '../src/control/admin-client.js';
import { SCRIPTS, waitFor } from '../src/lab/director-bed.js';
import { tryRun } from '../src/lab/shell.js';
import { LAB } from '../src/lab/testbed.js';
import type { AsymBed } from './asym-bed.js';

export const ASYM_SETUPS = ['ulvs', 'ulvs-nofp', 'ulvs-dr', 'ulvs-dr-fwd', 'ulvs-tun', 'nft-dr'] as const;
export type AsymSetup = (typeof ASYM_SETUPS)[number];
export const SETUP_NAMES: Record<AsymSetup, string> = {
  ulvs: 'ulvs NAT (-m)',
  'ulvs-nofp': 'ulvs NAT, --fast-path off',
  'ulvs-dr': 'ulvs DR (-g), direct return',
  'ulvs-dr-fwd': "ulvs DR (-g), return via director's kernel",
  'ulvs-tun': 'ulvs TUN (-i ipip), direct return',
  'nft-dr': 'nftables netdev fwd (DR peer), direct return',
};
/** set-ups whose replies must come back by the direct links */
export const DIRECT_RETURN: ReadonlySet<AsymSetup> = new Set(['ulvs-dr', 'ulvs-tun', 'nft-dr']);

const V = LAB.VIP;
const RS = [0, 1, 2].map(LAB.realServer);
const ULVS_CLI = fileURLToPath(new URL('../src/cli/ulvs.js', import.meta.url)); // from dist/bench
const NFT_TABLE = 'ulvsasym';

/** What the set-up's own counters say after the load (null: not applicable to this set-up). */
export interface PathCounters {
  /** ulvs's service counters: connections scheduled, packets in (to the servers), out (replies) */
  ulvsConns: number | null;
  ulvsInPkts: number | null;
  ulvsOutPkts: number | null;
  /** IPIP packets the real servers' decapsulators unwrapped (sum of the three) */
  decapsulated: number | null;
  /** packets the nftables fwd rule matched */
  nftPackets: number | null;
}

export interface RunningSetup {
  /** CPU seconds (user + system, all threads) of the director's forwarding process so far; 0 for a kernel-only set-up */
  processCpu(): number;
  counters(): Promise<PathCounters>;
  /** Stop and undo everything the set-up changed; never throws. */
  stop(): Promise<void>;
}

/** utime + stime of a process, in seconds (USER_HZ 100). */
function procCpu(pid: number | undefined): number {
  if (!pid) return 0;
  const st = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = st.slice(st.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) / 100;
}

async function stopProcess(p: ChildProcess): Promise<void> {
  if (p.exitCode !== null || p.signalCode !== null) return;
  const gone = new Promise((r) => p.once('exit', r));
  p.kill('SIGTERM');
  const t = setTimeout(() => p.kill('SIGKILL'), 10_000);
  await gone;
  clearTimeout(t);
}

const none: PathCounters = { ulvsConns: null, ulvsInPkts: null, ulvsOutPkts: null, decapsulated: null, nftPackets: null };

/** `ulvs rs-setup ARGS` in real server namespace `ns`. */
export const rsSetup = (bed: AsymBed, ns: string, args: string[]) => bed.ns(ns, [process.execPath, ULVS_CLI, 'rs-setup', ...args]);

/** IPIP packets decapsulated at real server `ns` (its eth0 program's counter), 0 without one. */
function decapsulated(bed: AsymBed, ns: string): number {
  return [...rsSetup(bed, ns, ['--status']).matchAll(/decapsulated (\d+)/g)].reduce((a, m) => a + Number(m[1]), 0);
}

async function startUlvs(s: AsymSetup, bed: AsymBed, ulvsArgs: string[]): Promise<RunningSetup> {
  const method = s === 'ulvs' || s === 'ulvs-nofp' ? '-m' : s === 'ulvs-tun' ? '-i' : '-g';
  const extra = s === 'ulvs-nofp' ? ['--fast-path', 'off'] : [];
  const rules = join(bed.tmp, 'rules');
  const socket = join(bed.tmp, 'ulvs.sock');
  writeFileSync(rules, [`-A -t ${V}:80 -s rr`, ...RS.map((a) => `-a -t ${V}:80 -r ${a}:80 ${method} -w 1`)].join('\n'));
  const tun = s === 'ulvs-tun';
  const prepared: string[] = [];
  let ulvsd: ChildProcess | null = null;
  const stop = async () => {
    if (ulvsd) await stopProcess(ulvsd);
    for (const ns of prepared) {
      try {
        rsSetup(bed, ns, ['--remove']);
      } catch {
        // the namespace goes with the bed; its record is removed by the bed's teardown (asym.ts)
      }
    }
    if (DIRECT_RETURN.has(s)) bed.directReturn(false);
  };
  try {
    if (tun) {
      for (const ns of bed.realServers) {
        rsSetup(bed, ns, ['tun', '--dev', 'eth0', V]);
        prepared.push(ns);
      }
    }
    if (DIRECT_RETURN.has(s)) bed.directReturn(true);
    ulvsd = spawn('ip', ['netns', 'exec', bed.director, process.execPath, SCRIPTS.ulvsd, '--rules', rules, '--socket', socket, '--log-format', 'text', ...extra, ...ulvsArgs], { stdio: ['ignore', 'pipe', 'pipe'] });
    await waitFor(ulvsd, /forwarding/, 20_000);
    ulvsd.stdout!.resume(); // keep its pipes drained for the rest of the run
    ulvsd.stderr!.resume();
  } catch (e) {
    await stop();
    throw e;
  }
  const pid = ulvsd.pid;
  return {
    processCpu: () => procCpu(pid),
    async counters() {
      const r = await callAdmin(socket, 'GET', `/v1/services/tcp/${V}/80`);
      const c = (r.json as { counters?: number[] }).counters ?? [];
      return {
        ...none,
        ulvsConns: c[0] ?? 0,
        ulvsInPkts: c[1] ?? 0,
        ulvsOutPkts: c[2] ?? 0,
        decapsulated: tun ? bed.realServers.reduce((a, ns) => a + decapsulated(bed, ns), 0) : null,
      };
    },
    stop,
  };
}

/** The nftables table of nft-dr (netdev family, ingress of pubbr). */
export function nftDrTable(): string {
  const map = RS.map((a, i) => `${i} : ${a}`).join(', ');
  return `table netdev ${NFT_TABLE} {
  chain ingress {
    type filter hook ingress device "pubbr" priority 0; policy accept;
    ip daddr ${V} tcp dport 80 counter fwd ip to jhash ip saddr . tcp sport mod ${RS.length} seed 0x5eed map { ${map} } device "br0"
  }
}
`;
}

/** Remove nft-dr's table from the director (also when a crashed round left it). */
export const removeNftDr = (bed: AsymBed) => tryRun(['ip', 'netns', 'exec', bed.director, 'nft', 'delete', 'table', 'netdev', NFT_TABLE]);

function startNftDr(bed: AsymBed): RunningSetup {
  const stop = async () => {
    removeNftDr(bed);
    bed.directReturn(false);
  };
  try {
    bed.directReturn(true);
    bed.ns(bed.director, ['nft', '-f', '-'], nftDrTable());
  } catch (e) {
    void stop();
    throw e;
  }
  return {
    processCpu: () => 0,
    async counters() {
      const text = bed.ns(bed.director, ['nft', 'list', 'table', 'netdev', NFT_TABLE]);
      return { ...none, nftPackets: Number(/counter packets (\d+)/.exec(text)?.[1] ?? 0) };
    },
    stop,
  };
}

/** Start set-up `s` on the bed; throws (after undoing its own steps) when it cannot start. */
export async function startSetup(s: AsymSetup, bed: AsymBed, ulvsArgs: string[]): Promise<RunningSetup> {
  return s === 'nft-dr' ? startNftDr(bed) : startUlvs(s, bed, ulvsArgs);
}
