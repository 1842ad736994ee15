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

const SCRIPT = `
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
