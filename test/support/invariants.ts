/** Consistency checks between the connection table and the servers' counters. Test-only. */
import assert from 'node:assert/strict';
import type { Director } from '../../src/core/director.js';
import { ConnFlag } from '../../src/core/conn-table.js';
import { OUTCOME_NAMES } from '../../src/core/verdict.js';

export function checkInvariants(d: Director, packets: number): void {
  const c = d.conns;
  const seen = new Map<number, { active: number; inactive: number; persist: number }>();
  const controlled = new Map<number, number>();
  c.forEach((i) => {
    const e = seen.get(c.dest(i)) ?? { active: 0, inactive: 0, persist: 0 };
    const f = c.flags(i);
    if (f & ConnFlag.TEMPLATE) e.persist++;
    else if (f & ConnFlag.INACTIVE) e.inactive++;
    else e.active++;
    seen.set(c.dest(i), e);
    if (!(f & ConnFlag.TEMPLATE) && c.ctl[i]! >= 0) controlled.set(c.ctl[i]!, (controlled.get(c.ctl[i]!) ?? 0) + 1);
  });
  const dests = [...d.services.flatMap((s) => s.dests), ...d.trash];
  for (const x of dests) {
    const e = seen.get(x.id) ?? { active: 0, inactive: 0, persist: 0 };
    assert.deepEqual([x.activeConns, x.inactConns, x.persistConns], [e.active, e.inactive, e.persist], `counters of server id ${x.id}`);
  }
  c.forEach((i) => {
    if (c.flags(i) & ConnFlag.TEMPLATE) assert.equal(c.ctl[i], controlled.get(i) ?? 0, `n_control of template ${i}`);
  });
  const total = OUTCOME_NAMES.reduce((s, _, k) => s + d.outcomes[k]!, 0);
  assert.equal(total, packets, 'every packet is accounted for by exactly one outcome counter');
}
