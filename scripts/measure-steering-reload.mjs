#!/usr/bin/env node
// Measures what a rule change costs the steering of a multi-worker ulvsd: N persistent TCP
// services (VIP 203.0.113.10, ports 10000..), two real servers each, then one service more
// (the change), timed over REPEAT runs. Needs root (bpf(2)). Usage:
//   node scripts/measure-steering-reload.mjs [tree=.] [N=1000] [REPEAT=20] [DESTS=1]
// A tree built from before the fixed program (dist/src/datapath/tun/steering.js exports
// steeringProgram) is measured as it did it: generate the program for the new spec and load it
// (the verifier runs); a tree with SteeringMap measures the map update of the change.
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

const tree = resolve(process.argv[2] ?? '.');
const N = Number(process.argv[3] ?? 1000);
const REPEAT = Number(process.argv[4] ?? 20);
const DESTS = Number(process.argv[5] ?? 1);
const m = await import(pathToFileURL(`${tree}/dist/src/datapath/tun/steering.js`).href);
const { sys } = await import(pathToFileURL(`${tree}/dist/src/datapath/tun/sys.js`).href);

const VIP = (203 << 24) | (0 << 16) | (113 << 8) | 10;
const rules = (n) => {
  const services = [];
  const dests = [];
  for (let i = 0; i < n; i++) {
    const s = { proto: 6, addr: VIP, port: 10000 + i, persistent: 300, netmask: 0xffffff00 };
    services.push(s);
    for (let k = 0; k < DESTS; k++) dests.push({ service: s, dest: { addr: (192 << 24) | (2 << 8) | (1 + ((DESTS * i + k) % 250)), port: 20000 + DESTS * i + k } });
  }
  return { services, dests };
};
const before = rules(N);
const after = rules(N + 1);
const ms = [];
let detail = '';
if (m.steeringProgram) {
  for (let r = 0; r < REPEAT; r++) {
    const t = process.hrtime.bigint();
    const code = m.steeringProgram(m.steeringSpec(after.services, after.dests));
    let fd = -1;
    let failed = '';
    try {
      fd = m.loadSocketFilter(code);
    } catch (e) {
      failed = `; LOAD FAILED: ${e.message.split('\n').slice(0, 2).join(' / ')}`;
    }
    ms.push(Number(process.hrtime.bigint() - t) / 1e6);
    if (fd >= 0) sys.close(fd);
    detail = `generated program: ${code.length / 8} instructions${failed}`;
  }
} else {
  const st = new m.SteeringMap();
  try {
    st.apply(st.prepare(m.steeringSpec(before.services, before.dests)));
    for (let r = 0; r < REPEAT; r++) {
      const t = process.hrtime.bigint();
      const plan = st.prepare(m.steeringSpec((r % 2 ? before : after).services, (r % 2 ? before : after).dests));
      st.apply(plan);
      ms.push(Number(process.hrtime.bigint() - t) / 1e6);
      detail = `fixed program ${st.instructions} instructions; map entries ${st.size}; last change wrote ${plan.updates} and deleted ${plan.deletes}`;
    }
  } finally {
    st.close();
  }
}
ms.sort((a, b) => a - b);
console.log(`${tree}: ${N} -> ${N + 1} persistent services, ${DESTS} real server(s) each; ${detail}; reload median ${ms[ms.length >> 1].toFixed(3)} ms, min ${ms[0].toFixed(3)}, max ${ms[ms.length - 1].toFixed(3)} (${REPEAT} runs)`);
