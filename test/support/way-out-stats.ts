/**
 * The TUN way-out program's counters (enum tun_out_counter, bpf/ulvs_maps.h) in a test bed's
 * director: the program at the tcx ingress of the TUN (ulvs0 in the director's namespace), its
 * map ulvs_tun_stats, read by a child process inside that namespace. Test-only.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { DirectorBed } from '../../src/lab/director-bed.js';
import type { TUN_OUT_COUNTER } from '../../src/datapath/tun/layouts.gen.js';

export type WayOutCounter = Exclude<keyof typeof TUN_OUT_COUNTER, 'TUN_OUT_COUNTERS'>;

export function wayOutCounters(bed: DirectorBed): Record<WayOutCounter, number> {
  const out = spawnSync('ip', ['netns', 'exec', bed.bed.director, process.execPath, '--input-type=module', '-e', SCRIPT], { encoding: 'utf8', env: { ...process.env, ULVS_DIST: fileURLToPath(new URL('../../', import.meta.url)) } });
  assert.equal(out.status, 0, out.stderr);
  return JSON.parse(out.stdout) as Record<WayOutCounter, number>;
}

const SCRIPT = `
import { readFileSync } from 'node:fs';
const dist = process.env.ULVS_DIST;
const bpf = await import(dist + 'src/datapath/tun/bpf.js');
const { TUN_OUT_COUNTER } = await import(dist + 'src/datapath/tun/layouts.gen.js');
const tot = {};
for (const name of Object.keys(TUN_OUT_COUNTER)) if (name !== 'TUN_OUT_COUNTERS') tot[name] = 0;
for (const id of bpf.tcxIngressProgIds(Number(readFileSync('/sys/class/net/ulvs0/ifindex', 'utf8')))) {
  const fd = bpf.fdById('prog', id);
  if (fd === null) continue;
  for (const m of bpf.progInfo(fd).mapIds) {
    const mfd = bpf.fdById('map', m);
    if (mfd === null || bpf.mapInfo(mfd).name !== 'ulvs_tun_stats') continue;
    const ops = new bpf.MapOps(mfd);
    const k = Buffer.alloc(4), v = Buffer.alloc(8);
    for (const name of Object.keys(tot)) {
      k.writeUInt32LE(TUN_OUT_COUNTER[name]);
      if (ops.lookup(k, v)) tot[name] += Number(v.readBigUInt64LE());
    }
  }
}
process.stdout.write(JSON.stringify(tot));
`;
