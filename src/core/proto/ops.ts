/**
 * Per-protocol behaviour (IPVS's `struct ip_vs_protocol`): the engine looks a protocol's ops up
 * once per packet by its number and calls them; it never branches on the protocol itself.
 */
import type { RealServer, VirtualService } from '../service.js';

export interface ProtoOps {
  readonly proto: number;
  readonly name: 'TCP' | 'UDP';
  /** conn_schedule: may a packet with these TCP flags (0 for UDP) open a connection? */
  opensConn(tflags: number): boolean;
  /** is_new_conn: does this packet start a new connection (so an old entry may be reused)? */
  isNewConn(tflags: number): boolean;
  /** is_new_conn_expected: has entry c finished, so a new connection may take its tuple? */
  newConnExpected(c: number): boolean;
  /**
   * state_transition for one packet of entry c in direction `dir` (TcpDir.*: the
   * direction of the packet relative to its connection): next state,
   * active/inactive accounting on d, template assurance. Returns the timeout, in ticks, that the
   * entry gets after this packet.
   */
  transition(c: number, dir: number, tflags: number, d: RealServer): number;
  /** timeout of entry c's current state, ticks */
  timeoutTicks(c: number): number;
  /** may the kernel fast path carry entry c now (no packet without SYN/FIN/RST changes it)? */
  offloadable(c: number): boolean;
  /** connection flags a new entry of `svc` starts with (one-packet scheduling) */
  newConnFlags(svc: VirtualService): number;
  /** state name as ipvsadm -c prints it */
  stateName(c: number): string;
}

/** What a protocol calls before entry c leaves an offloadable state (offload-policy.ts). */
export interface LeaveHook {
  beforeStateChange(c: number): void;
}

/** Ops by IP protocol number; unknown protocols have none. */
export class ProtoTable {
  readonly #byNumber: (ProtoOps | undefined)[] = new Array<ProtoOps | undefined>(256);

  register(ops: ProtoOps): void {
    this.#byNumber[ops.proto] = ops;
  }

  /** the ops of protocol p, or undefined */
  of(p: number): ProtoOps | undefined {
    return this.#byNumber[p];
  }
}
