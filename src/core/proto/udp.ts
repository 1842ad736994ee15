/**
 * UDP (ip_vs_proto_udp.c): any datagram opens a connection, one timeout, a reply assures the
 * persistence template, and one-packet scheduling (ipvs-spec §3.6, §2.5).
 */
import { ConnFlag } from '../conn-table.js';
import type { EngineState } from '../engine-state.js';
import { SvcFlag, type RealServer, type VirtualService } from '../service.js';
import { TcpDir, UDP_STATE_NAME } from '../tcp-states.js';
import { IPPROTO_UDP } from '../../wire/ipv4.js';
import type { ProtoOps } from './ops.js';

export class UdpOps implements ProtoOps {
  readonly proto = IPPROTO_UDP;
  readonly name = 'UDP' as const;
  readonly #s: EngineState;

  constructor(s: EngineState) {
    this.#s = s;
  }

  opensConn(_tflags: number): boolean {
    return true;
  }

  isNewConn(_tflags: number): boolean {
    return false;
  }

  newConnExpected(_c: number): boolean {
    return false;
  }

  /** No states; a reply marks the controlling template ASSURED. */
  transition(c: number, dir: number, _tflags: number, _d: RealServer): number {
    if (dir === TcpDir.OUTPUT) {
      const conns = this.#s.conns;
      const t = conns.ctl[c]!;
      if (t >= 0) conns.setFlags(t, conns.flags(t) | ConnFlag.ASSURED);
    }
    return this.#s.timeouts.udpTicks;
  }

  timeoutTicks(_c: number): number {
    return this.#s.timeouts.udpTicks;
  }

  offloadable(_c: number): boolean {
    return true;
  }

  newConnFlags(svc: VirtualService): number {
    return (svc.flags & SvcFlag.ONEPACKET) !== 0 ? ConnFlag.ONE_PACKET : 0;
  }

  stateName(_c: number): string {
    return UDP_STATE_NAME;
  }
}
