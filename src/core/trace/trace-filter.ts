/**
 * A trace's filter (issue 15), compiled to a few integers checked per packet only while a
 * trace is on. Every given part must match (AND); a part left out matches anything:
 *
 *   proto            6 or 17 (0: both)
 *   client ADDR[:PORT]   the connection's client (CIP:cport)
 *   service VIP[:PORT]   the virtual service (VIP:vport)
 *   server RIP[:PORT]    the real server (RIP:rport)
 *
 * A packet that found or opened a connection is matched on that connection's tuple, whichever
 * direction it travels (so a reply RIP -> CIP matches `client CIP` and `service VIP`). One
 * without a connection (dropped before, passed, stray) is matched on its own header: client =
 * its source or destination, service = its destination, server = its source.
 *
 * Layout of the Int32Array (TRACE_FILTER_WORDS): [bits, proto, caddr, cport, vaddr, vport,
 * raddr, rport], addresses as int32, `bits` saying which parts are given (FilterBit).
 */
export const FilterBit = { CADDR: 1, CPORT: 2, VADDR: 4, VPORT: 8, RADDR: 16, RPORT: 32 } as const;
export const TRACE_FILTER_WORDS = 8;

export interface TraceFilterSpec {
  proto?: number;
  client?: { addr: number; port?: number };
  service?: { addr: number; port?: number };
  server?: { addr: number; port?: number };
}

/** The filter's integers (numbers, so they cross a MessagePort as a plain array). */
export function compileFilter(f: TraceFilterSpec): number[] {
  const w = new Array<number>(TRACE_FILTER_WORDS).fill(0);
  w[1] = f.proto ?? 0;
  const part = (x: { addr: number; port?: number } | undefined, addrBit: number, portBit: number, at: number) => {
    if (x === undefined) return;
    w[0]! |= addrBit;
    w[at] = x.addr | 0;
    if (x.port !== undefined) {
      w[0]! |= portBit;
      w[at + 1] = x.port;
    }
  };
  part(f.client, FilterBit.CADDR, FilterBit.CPORT, 2);
  part(f.service, FilterBit.VADDR, FilterBit.VPORT, 4);
  part(f.server, FilterBit.RADDR, FilterBit.RPORT, 6);
  return w;
}

/** Whether a connection's tuple matches (all int32 addresses). */
export function matchConn(f: Int32Array, proto: number, caddr: number, cport: number, vaddr: number, vport: number, raddr: number, rport: number): boolean {
  const b = f[0]!;
  if (f[1] !== 0 && f[1] !== proto) return false;
  if ((b & FilterBit.CADDR) !== 0 && f[2] !== caddr) return false;
  if ((b & FilterBit.CPORT) !== 0 && f[3] !== cport) return false;
  if ((b & FilterBit.VADDR) !== 0 && f[4] !== vaddr) return false;
  if ((b & FilterBit.VPORT) !== 0 && f[5] !== vport) return false;
  if ((b & FilterBit.RADDR) !== 0 && f[6] !== raddr) return false;
  if ((b & FilterBit.RPORT) !== 0 && f[7] !== rport) return false;
  return true;
}

/** Whether a packet without a connection matches, by its own header (see the file comment). */
export function matchHeader(f: Int32Array, proto: number, saddr: number, sport: number, daddr: number, dport: number): boolean {
  const b = f[0]!;
  if (f[1] !== 0 && f[1] !== proto) return false;
  if ((b & FilterBit.CADDR) !== 0) {
    const anyPort = (b & FilterBit.CPORT) === 0;
    const asSource = f[2] === saddr && (anyPort || f[3] === sport);
    const asDest = f[2] === daddr && (anyPort || f[3] === dport);
    if (!asSource && !asDest) return false;
  }
  if ((b & FilterBit.VADDR) !== 0 && (f[4] !== daddr || ((b & FilterBit.VPORT) !== 0 && f[5] !== dport))) return false;
  if ((b & FilterBit.RADDR) !== 0 && (f[6] !== saddr || ((b & FilterBit.RPORT) !== 0 && f[7] !== sport))) return false;
  return true;
}
