/**
 * IPVS's TCP connection state machine as literal tables (ipvs-spec §3, from
 * net/netfilter/ipvs/ip_vs_proto_tcp.c `tcp_states` and `tcp_states_dos`).
 *
 * next = TABLE[direction][event][current], read by core/proto/tcp.ts (transition). Events per
 * packet, in priority order: RST -> rst, SYN -> syn (SYN+ACK too), FIN -> fin, ACK -> ack; a segment with none of these
 * four flags moves the connection to CLOSE from any state.
 */

export const TcpState = {
  NONE: 0,
  ESTABLISHED: 1,
  SYN_SENT: 2,
  SYN_RECV: 3,
  FIN_WAIT: 4,
  TIME_WAIT: 5,
  CLOSE: 6,
  CLOSE_WAIT: 7,
  LAST_ACK: 8,
  LISTEN: 9,
  SYNACK: 10,
} as const;
export const TCP_STATE_COUNT = 11;

/** Names as ipvsadm -c prints them, index = state. */
export const TCP_STATE_NAMES = ['NONE', 'ESTABLISHED', 'SYN_SENT', 'SYN_RECV', 'FIN_WAIT', 'TIME_WAIT', 'CLOSE', 'CLOSE_WAIT', 'LAST_ACK', 'LISTEN', 'SYNACK'] as const;
const ABBR = ['NO', 'ES', 'SS', 'SR', 'FW', 'TW', 'CL', 'CW', 'LA', 'LI', 'SA'] as const;

/** Default timeouts in seconds, index = state (ip_vs_proto_tcp.c tcp_timeouts). */
export const TCP_DEFAULT_TIMEOUTS: readonly number[] = [2, 900, 120, 60, 120, 120, 10, 60, 30, 120, 120];

/** ESTABLISHED, SYN_SENT, SYN_RECV, SYNACK count as active connections (spec §3.5). */
export function tcpStateIsActive(s: number): boolean {
  return s === TcpState.ESTABLISHED || s === TcpState.SYN_SENT || s === TcpState.SYN_RECV || s === TcpState.SYNACK;
}

export const TcpDir = { INPUT: 0, OUTPUT: 1, INPUT_ONLY: 2 } as const;
export const TcpEvent = { SYN: 0, FIN: 1, ACK: 2, RST: 3 } as const;

// Rows: syn, fin, ack, rst. Columns: current state NO ES SS SR FW TW CL CW LA LI SA.
const NORMAL = {
  //          NO ES SS SR FW TW CL CW LA LI SA
  input: [
    /* syn */ 'SR ES ES SR SR SR SR SR SR SR SR',
    /* fin */ 'CL CW SS TW TW TW CL CW LA LI TW',
    /* ack */ 'ES ES SS ES FW TW CL CW CL LI ES',
    /* rst */ 'CL CL CL SR CL CL CL CL LA LI SR',
  ],
  output: [
    /* syn */ 'SS ES SS SR SS SS SS SS SS LI SR',
    /* fin */ 'TW FW SS TW FW TW CL TW LA LI TW',
    /* ack */ 'ES ES SS ES FW TW CL CW LA ES ES',
    /* rst */ 'CL CL SS CL CL TW CL CL CL CL CL',
  ],
  inputOnly: [
    /* syn */ 'SR ES ES SR SR SR SR SR SR SR SR',
    /* fin */ 'CL FW SS TW FW TW CL CW LA LI TW',
    /* ack */ 'ES ES SS ES FW TW CL CW CL LI ES',
    /* rst */ 'CL CL CL SR CL CL CL CL LA LI CL',
  ],
};

const SECURE = {
  //          NO ES SS SR FW TW CL CW LA LI SA
  input: [
    /* syn */ 'SR ES ES SR SR SR SR SR SR SR SA',
    /* fin */ 'CL CW SS TW TW TW CL CW LA LI SA',
    /* ack */ 'ES ES SS SR FW TW CL CW CL LI SA',
    /* rst */ 'CL CL CL SR CL CL CL CL LA LI CL',
  ],
  output: [
    /* syn */ 'SS ES SS SA SS SS SS SS SS LI SA',
    /* fin */ 'TW FW SS TW FW TW CL TW LA LI TW',
    /* ack */ 'ES ES SS ES FW TW CL CW LA ES ES',
    /* rst */ 'CL CL SS CL CL TW CL CL CL CL CL',
  ],
  inputOnly: [
    /* syn */ 'SA ES ES SR SA SA SA SA SA SA SA',
    /* fin */ 'CL FW SS TW FW TW CL CW LA LI TW',
    /* ack */ 'ES ES SS ES FW TW CL CW CL LI ES',
    /* rst */ 'CL CL CL SR CL CL CL CL LA LI CL',
  ],
};

/** Flatten a readable table to Uint8Array indexed [(dir * 4 + event) * 11 + state]. */
function compile(t: typeof NORMAL): Uint8Array {
  const out = new Uint8Array(3 * 4 * TCP_STATE_COUNT);
  [t.input, t.output, t.inputOnly].forEach((rows, dir) =>
    rows.forEach((row, ev) => {
      const cells = row.split(' ');
      if (cells.length !== TCP_STATE_COUNT) throw new Error(`tcp state table row has ${cells.length} cells`);
      cells.forEach((abbr, st) => {
        const next = (ABBR as readonly string[]).indexOf(abbr);
        if (next < 0) throw new Error(`unknown state ${abbr}`);
        out[(dir * 4 + ev) * TCP_STATE_COUNT + st] = next;
      });
    }),
  );
  return out;
}

export const TCP_TABLE_NORMAL: Uint8Array = compile(NORMAL);
export const TCP_TABLE_SECURE: Uint8Array = compile(SECURE);

/** Event index for TCP flags, or -1 when none of RST/SYN/FIN/ACK is set. */
export function tcpEvent(flags: number): number {
  if (flags & 0x04) return TcpEvent.RST;
  if (flags & 0x02) return TcpEvent.SYN;
  if (flags & 0x01) return TcpEvent.FIN;
  if (flags & 0x10) return TcpEvent.ACK;
  return -1;
}

/** UDP has one state, printed "UDP"; templates print NONE or ASSURED. */
export const UDP_STATE_NAME = 'UDP';
export const UDP_DEFAULT_TIMEOUT = 300;
