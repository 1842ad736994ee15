/**
 * What the NIC fast path of a director holds and has carried, read inside its network namespace
 * by a child process: the flow map ulvs_flows (entries by enum flow_dir, bpf/ulvs_maps.h) and
 * the packets counted in the slots those entries name (struct slot, both directions). The maps
 * are found through the programs at the tcx ingress of every interface of the namespace (one
 * fast path program per director, whatever the interface); none there (ulvsd --fast-path off)
 * reads as an empty map. Test-only.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export interface FlowMapView {
  /** entries of ulvs_flows by enum flow_dir (index 0 FLOW_REQUEST .. 5 FLOW_TUN) */
  byDir: number[];
  /** entries whose client side (request: saddr, reply: daddr) is `client`, by flow_dir */
  clientByDir: number[];
  /** packets counted in the slots of the offloaded entries (FLOW_REQUEST, FLOW_REPLY, FLOW_DR,
   *  FLOW_TUN) of `client`, each slot once, both directions */
  clientSlotPackets: number;
}

/** The flow map of the fast path in namespace `ns`; `client` an IPv4 address (dotted). */
export function flowMapView(ns: string, client: string): FlowMapView {
  const out = spawnSync('ip', ['netns', 'exec', ns, process.execPath, '--input-type=module', '-e', SCRIPT], {
    encoding: 'utf8',
    env: { ...process.env, ULVS_DIST: fileURLToPath(new URL('../../', import.meta.url)), ULVS_CLIENT: client },
  });
  assert.equal(out.status, 0, out.stderr);
  return JSON.parse(out.stdout) as FlowMapView;
}

/**
 * The sequence deltas (struct flow_value seq_delta, int32) of the NAT entries (FLOW_REQUEST,
 * FLOW_REPLY) of `client` in the fast path of namespace `ns`, by their order in the map, as
 * they were before this call; with `set`, every one of them is written with that delta (the
 * rest of each entry unchanged). The test's means to break or mend a SYN-cookie connection's
 * translation in the kernel.
 */
export function clientSeqDeltas(ns: string, client: string, set?: number): number[] {
  const out = spawnSync('ip', ['netns', 'exec', ns, process.execPath, '--input-type=module', '-e', FIND + DELTAS], {
    encoding: 'utf8',
    env: { ...process.env, ULVS_DIST: fileURLToPath(new URL('../../', import.meta.url)), ULVS_CLIENT: client, ULVS_SET: set === undefined ? '' : String(set | 0) },
  });
  assert.equal(out.status, 0, out.stderr);
  return JSON.parse(out.stdout) as number[];
}

/** finds the maps (ulvs_flows, ulvs_slots) of the programs at the tcx ingress of the namespace */
const FIND = `
import { readdirSync, readFileSync } from 'node:fs';
const dist = process.env.ULVS_DIST;
const bpf = await import(dist + 'src/datapath/tun/bpf.js');
const { readFlows, readSlotCounts } = await import(dist + 'src/datapath/tun/flow-dump.js');
const client = process.env.ULVS_CLIENT.split('.').reduce((a, b) => a * 256 + Number(b), 0);
const maps = {};
for (const dev of readdirSync('/sys/class/net')) {
  for (const id of bpf.tcxIngressProgIds(Number(readFileSync('/sys/class/net/' + dev + '/ifindex', 'utf8')))) {
    const fd = bpf.fdById('prog', id);
    if (fd === null) continue;
    for (const m of bpf.progInfo(fd).mapIds) {
      const mfd = bpf.fdById('map', m);
      if (mfd === null) continue;
      const name = bpf.mapInfo(mfd).name;
      if (name === 'ulvs_flows' || name === 'ulvs_slots') maps[name] ??= mfd;
    }
  }
}
`;

const DELTAS = `
const { MapOps } = bpf;
const { FLOW_VALUE } = await import(dist + 'src/datapath/tun/layouts.gen.js');
const deltas = [];
for (const e of maps.ulvs_flows === undefined ? [] : readFlows(maps.ulvs_flows)) {
  if (!(e.dir === 0 ? e.saddr === client : e.dir === 1 && e.daddr === client)) continue;
  deltas.push(e.seqDelta);
  if (process.env.ULVS_SET === '') continue;
  const ops = new MapOps(maps.ulvs_flows);
  const v = Buffer.alloc(FLOW_VALUE.size);
  if (!ops.lookup(e.key, v)) continue;
  v.writeInt32LE(Number(process.env.ULVS_SET), FLOW_VALUE.off.seq_delta);
  ops.update(e.key, v);
}
process.stdout.write(JSON.stringify(deltas));
`;

const SCRIPT = FIND + `
const byDir = [0, 0, 0, 0, 0, 0], clientByDir = [0, 0, 0, 0, 0, 0];
const slots = new Set();
const flows = maps.ulvs_flows === undefined ? [] : readFlows(maps.ulvs_flows);
for (const e of flows) {
  byDir[e.dir]++;
  const mine = e.dir === 1 ? e.daddr === client : e.saddr === client;
  if (!mine) continue;
  clientByDir[e.dir]++;
  if (e.dir === 0 || e.dir === 1 || e.dir === 3 || e.dir === 5) slots.add(e.slot);
}
let clientSlotPackets = 0;
for (const s of maps.ulvs_slots === undefined ? [] : slots) {
  const c = readSlotCounts(maps.ulvs_slots, s);
  clientSlotPackets += c[0] + c[2];
}
process.stdout.write(JSON.stringify({ byDir, clientByDir, clientSlotPackets }));
`;
