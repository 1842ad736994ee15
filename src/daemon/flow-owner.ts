/**
 * Which data-path worker owns a flow: the queue the TUN's steering program gives its packets
 * (datapath/tun/steering.ts queueOf over the steering spec of the rules in force), so a question
 * about the flow (explain, trace) goes to the engine whose connection table and scheduler state
 * its packets meet. The spec is recomputed only when the rules object changes (the control
 * plane swaps it whole on every change).
 */
import type { Rules } from '../control/rules.js';
import { queueOf, steeringSpec, type SteeringSpec } from '../datapath/tun/steering.js';

export type FlowOwner = (proto: number, caddr: number, cport: number, vaddr: number, vport: number) => number;

export function flowOwner(workers: number, rules: () => Rules): FlowOwner {
  let seen: Rules | null = null;
  let spec: SteeringSpec | null = null;
  return (proto, caddr, cport, vaddr, vport) => {
    const r = rules();
    if (r !== seen) {
      seen = r;
      spec = steeringSpec(r.services, r.dests);
    }
    return queueOf(spec!, workers, proto, caddr, cport, vaddr, vport);
  };
}
