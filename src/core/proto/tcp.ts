/**
 * TCP (ip_vs_proto_tcp.c): who may open a connection, connection reuse, and set_tcp_state over
 * the tables in tcp-states.ts with active/inactive accounting (ipvs-spec §3).
 */
import { ConnFlag } from '../conn-table.js';
import type { EngineState } from '../engine-state.js';
import type { RealServer, VirtualService } from '../service.js';
import { TCP_STATE_COUNT, TCP_STATE_NAMES, TCP_TABLE_NORMAL, TCP_TABLE_SECURE, TcpDir, TcpState, tcpEvent, tcpStateIsActive } from '../tcp-states.js';
import { IPPROTO_TCP } from '../../wire/ipv4.js';
import { TcpFlag } from '../../wire/tcp.js';
import type { LeaveHook, ProtoOps } from './ops.js';
import { Event } from '../verdict.js';

export class TcpOps implements ProtoOps {
  readonly proto = IPPROTO_TCP;
  readonly name = 'TCP' as const;
  readonly #s: EngineState;
  readonly #leave: LeaveHook;

  constructor(s: EngineState, leave: LeaveHook) {
    this.#s = s;
    this.#leave = leave;
  }

  /** tcp_conn_schedule: only a SYN (any segment with sloppy_tcp), never an RST. */
  opensConn(tflags: number): boolean {
    return (tflags & TcpFlag.RST) === 0 && ((tflags & TcpFlag.SYN) !== 0 || this.#s.sysctl.sloppyTcp);
  }

  isNewConn(tflags: number): boolean {
    return (tflags & TcpFlag.SYN) !== 0;
  }

  /** A finished connection (TIME_WAIT or CLOSE) that no template controls. */
  newConnExpected(c: number): boolean {
    const conns = this.#s.conns;
    if (conns.ctl[c]! >= 0) return false;
    const st = conns.state(c);
    return st === TcpState.TIME_WAIT || st === TcpState.CLOSE;
  }

  /** set_tcp_state: the next state from the table; a segment with no SYN/FIN/ACK/RST closes.
   *  An entry that has seen no reply (NOOUTPUT: DR, TUN) moves by the input-only table; a reply
   *  clears the flag. */
  transition(c: number, dir: number, tflags: number, d: RealServer): number {
    const s = this.#s;
    const conns = s.conns;
    this.#watchReply(c, dir, tflags, d);
    if ((conns.flags(c) & ConnFlag.NOOUTPUT) !== 0) {
      if (dir === TcpDir.OUTPUT) conns.setFlags(c, conns.flags(c) & ~ConnFlag.NOOUTPUT);
      else dir = TcpDir.INPUT_ONLY;
    }
    const cur = conns.state(c);
    const ev = tcpEvent(tflags);
    const table = s.tcpStatesDos ? TCP_TABLE_SECURE : TCP_TABLE_NORMAL;
    const next = ev < 0 ? TcpState.CLOSE : table[(dir * 4 + ev) * TCP_STATE_COUNT + cur]!;
    if (next !== cur) {
      this.#leave.beforeStateChange(c);
      const f = conns.flags(c);
      if ((f & ConnFlag.INACTIVE) === 0) {
        if (!tcpStateIsActive(next)) {
          d.activeConns--;
          d.inactConns++;
          conns.setFlags(c, f | ConnFlag.INACTIVE);
        }
      } else if (tcpStateIsActive(next)) {
        d.activeConns++;
        d.inactConns--;
        conns.setFlags(c, f & ~ConnFlag.INACTIVE);
      }
      if (next === TcpState.ESTABLISHED) {
        const t = conns.ctl[c]!;
        if (t >= 0) conns.setFlags(t, conns.flags(t) | ConnFlag.ASSURED);
      }
      conns.setState(c, next);
    }
    return s.timeouts.tcpTicks[next]!;
  }

  /**
   * A masqueraded connection whose client sends its SYN again (a bare SYN, after its
   * retransmission timeout, >= 1 s: RFC 6298) while it is still in SYN_RECV and no packet of the
   * real server has come back through the director is counted once in `d.unanswered`: under
   * VS/NAT the server's SYN-ACK must return through the director, which it does not when its
   * default gateway is not the DIP or the client is on its segment (LVS-NAT's requirements). DR
   * and TUN (NOOUTPUT, a method other than MASQ) never see replies; synced entries see no
   * traffic. The daemon warns from the counter (daemon/unanswered-watch.ts).
   */
  #watchReply(c: number, dir: number, tflags: number, d: RealServer): void {
    const conns = this.#s.conns;
    const f = conns.flags(c);
    if (dir === TcpDir.OUTPUT) {
      if ((f & ConnFlag.REPLIED) === 0) conns.setFlags(c, f | ConnFlag.REPLIED);
    } else if ((tflags & (TcpFlag.SYN | TcpFlag.ACK | TcpFlag.RST | TcpFlag.FIN)) === TcpFlag.SYN && conns.state(c) === TcpState.SYN_RECV && (f & (ConnFlag.REPLIED | ConnFlag.UNANSWERED | ConnFlag.NOOUTPUT | ConnFlag.FWD_MASK | ConnFlag.SYNCED | ConnFlag.SYNPROXY)) === 0) {
      conns.setFlags(c, f | ConnFlag.UNANSWERED);
      d.unanswered++;
      this.#s.events[Event.Unanswered]!++; // the daemon looks at the servers only when this grows
    }
  }

  timeoutTicks(c: number): number {
    return this.#s.timeouts.tcpTicks[this.#s.conns.state(c)]!;
  }

  /** ESTABLISHED: only SYN, FIN or RST (which the fast path hands up) change it. A SYN-cookie
   *  connection once its delta is final (SYNPROXY_WAIT clear): the offer carries the delta and
   *  the fast path translates sequence numbers (syn-proxy.ts seqDelta). */
  offloadable(c: number): boolean {
    const conns = this.#s.conns;
    return conns.state(c) === TcpState.ESTABLISHED && (conns.flags(c) & ConnFlag.SYNPROXY_WAIT) === 0;
  }

  newConnFlags(_svc: VirtualService): number {
    return 0;
  }

  stateName(c: number): string {
    return TCP_STATE_NAMES[this.#s.conns.state(c)]!;
  }
}
