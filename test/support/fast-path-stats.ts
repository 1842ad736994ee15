/**
 * The NIC fast path's counters (enum fast_counter, bpf/ulvs_maps.h) in a test bed's director:
 * its map ulvs_fast_stats, found through the programs at the tcx ingress of every interface of
 * the director's namespace (one program, one map, however many interfaces), read by a child
 * process inside that namespace. Test-only.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { DirectorBed } from '../../src/lab/director-bed.js';
import type { FAST_COUNTER } from '../../src/datapath/tun/layouts.gen.js';

export type FastCounter = Exclude<keyof typeof FAST_COUNTER, 'FAST_COUNTERS'>;

export function fastPathCounters(bed: DirectorBed): Record<FastCounter, number> {
  const out = spawnSync('ip', ['netns', 'exec', bed.bed.director, process.execPath, '--input-type=module', '-e', SCRIPT], { encoding: 'utf8', env: { ...process.env, ULVS_DIST: fileURLToPath(new URL('../../', import.meta.url)) } });
  assert.equal(out.status, 0, out.stderr);
  return JSON.parse(out.stdout) as Record<FastCounter, number>;
}

const SCRIPT = `
import { readdirSync, readFileSync } from 'node:fs';
const dist = process.env.ULVS_DIST;
const bpf = await import(dist + 'src/datapath/tun/bpf.js');
const { FAST_COUNTER } = await import(dist + 'src/datapath/tun/layouts.gen.js');
const tot = {};
for (const name of Object.keys(FAST_COUNTER)) if (name !== 'FAST_COUNTERS') tot[name] = 0;
const seen = new Set();
for (const dev of readdirSync('/sys/class/net')) {
  for (const id of bpf.tcxIngressProgIds(Number(readFileSync('/sys/class/net/' + dev + '/ifindex', 'utf8')))) {
    const fd = bpf.fdById('prog', id);
    if (fd === null) continue;
    for (const m of bpf.progInfo(fd).mapIds) {
      if (seen.has(m)) continue;
      const mfd = bpf.fdById('map', m);
      if (mfd === null || bpf.mapInfo(mfd).name !== 'ulvs_fast_stats') continue;
      seen.add(m);
      const ops = new bpf.MapOps(mfd);
      const k = Buffer.alloc(4), v = Buffer.alloc(8);
      for (const name of Object.keys(tot)) {
        k.writeUInt32LE(FAST_COUNTER[name]);
        if (ops.lookup(k, v)) tot[name] += Number(v.readBigUInt64LE());
      }
    }
  }
}
process.stdout.write(JSON.stringify(tot));
`;
