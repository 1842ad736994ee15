/**
 * The engine's half of SYN cookies (syn_cookies = 1, docs/syn-cookies.md), for NAT services: the
 * kernel fast path answered the client's SYN with a cookie SYN-ACK (bpf/ulvs_syncookie.h) and
 * marked the client's ACK whose cookie it checked with TCP_VALIDATED_BIT (a reserved bit the
 * program clears from every other segment, so a client cannot forge it). The director then
 * makes the real server's handshake itself, as nftables' synproxy does (nf_synproxy_core.c:
 * synproxy_send_server_syn, synproxy_send_server_ack, synproxy_tstamp_adjust's sequence
 * translation), with no timestamps, window scaling or SACK: the cookie SYN-ACK offered none.
 *
 *   checked ACK (client ISN + 1, cookie + 1)    -> connection scheduled as a SYN would be,
 *       SYN_RECV; SYN to RIP:rport from the client (seq = ISN, MSS option)   send_synproxy_syn
 *   client segment while the SYN-ACK is awaited -> the same SYN again (the client's
 *       retransmissions are the SYN's retransmission timer); the client's first data (seq
 *       ISN + 1, at most HOLD_MAX bytes) is kept in one of HOLD_SLOTS buffers     send_synproxy_syn_again
 *   the server's SYN-ACK (ack = ISN + 1)         -> the ACK to the server (seq ISN + 1, ack its
 *       ISN + 1, the client's window), carrying the kept data if there is some (so the request
 *       does not wait for the client's retransmission timeout, 200 ms on Linux); delta =
 *       cookie - server ISN; ESTABLISHED                                      send_synproxy_ack
 *   the server's RST instead                     -> to the client with seq = cookie + 1 (so the
 *       client takes it), CLOSE
 *   the server's ACK for another number instead  -> an older connection on the tuple it still
 *       holds (TIME_WAIT: a client that reused its port; the SYN has no timestamp for the
 *       server's PAWS recycling): a reset at that ACK's number to it, as a TCP in SYN-SENT
 *       does (RFC 9293 3.10.7.3); the SYN again with the client's next segment   send_synproxy_rst
 *   the server's SYN-ACK again afterwards (it answered the SYN sent again) -> dropped: the
 *       client has its own                                           drop_synproxy_dup_synack
 *   a checked ACK on addresses whose entry has ended (TIME_WAIT, CLOSE: the client reused its
 *       port; director.ts) -> the old entry expired and a new connection opened, as a SYN
 *       would under conn_reuse_mode
 *   afterwards: requests ack -= delta, replies seq += delta (RFC 1624 updates; a request whose
 *       L4 checksum is partial, NEEDS_CSUM, holds only the pseudo-header sum: left alone)
 *
 * Once the server's SYN-ACK fixed the delta (SYNPROXY_WAIT cleared) such a connection may be
 * offloaded as any other (proto/tcp.ts offloadable): its flow entries carry the delta
 * (seqDelta, bpf/ulvs_maps.h struct flow_value seq_delta) and the kernel fast path translates as
 * request() and reply() do. A restart or a sync backup gives the delta back (restore). The MSS sent to the server is SERVER_MSS, not the client's: the
 * kernel's cookie check (bpf_tcp_raw_check_syncookie_ipv4) does not return the MSS the cookie
 * encodes. Per-connection state (client ISN, cookie then delta, client window) is in arrays by
 * connection index, allocated at the first use. No I/O; no allocation per packet.
 */
import { countPacket } from './accounting.js';
import { ConnFlag } from './conn-table.js';
import type { ConnLifecycle } from './conn/lifecycle.js';
import type { EngineState } from './engine-state.js';
import type { PacketMeta } from './packet-meta.js';
import type { ProtoOps } from './proto/ops.js';
import { Stat } from './stats.js';
import { TcpDir } from './tcp-states.js';
import { Outcome, type OutcomeCode } from './verdict.js';
import { csumReplace16, csumReplace32, finish, pseudoHeaderV4, sumBytes } from '../wire/checksum.js';
import { IPPROTO_TCP, IPV4, readU16, readU32, writeU16, writeU32 } from '../wire/ipv4.js';
import { TCP, TcpFlag } from '../wire/tcp.js';

/** bpf/ulvs_maps.h enum tcp_validated: 0x02 of the TCP header's byte 12 (a reserved bit) */
export const TCP_VALIDATED_BIT = 0x02;
/** MSS option of the SYN to the server, bytes: the largest of the kernel's cookie MSS table
 *  (msstab: 536, 1300, 1440, 1460); a client with a smaller one relies on path MTU discovery */
export const SERVER_MSS = 1460;
/** what the generated segments are: IPv4 20 + TCP 20 (+ 4 for the SYN's MSS option) */
const SYN_LEN = 44;
const ACK_LEN = 40;
/** the client's first data kept while the server's SYN-ACK is awaited: bytes per buffer (one
 *  Ethernet MSS; a longer first segment is not kept: the client resends it) and buffers per
 *  engine (a handshake takes a round trip to the server: enough for 256 at once; when all are
 *  taken a new one is not kept) */
export const HOLD_MAX = 1460;
const HOLD_SLOTS = 256;
/** the longest segment the engine sends (Verdict.Send): an ACK with HOLD_MAX bytes */
export const SEND_MAX = ACK_LEN + HOLD_MAX;
const SYN_ACK = TcpFlag.SYN | TcpFlag.ACK;

export class SynProxy {
  readonly #s: EngineState;
  readonly #life: ConnLifecycle;
  /** the generated segment (Verdict.Send): valid until the next packet */
  readonly out = Buffer.alloc(SEND_MAX);
  len = 0;
  /** kept first data: HOLD_SLOTS buffers of HOLD_MAX; each slot's length and owner (connection
   *  index, -1 free); by connection, its slot (valid while the owner matches and the connection
   *  still awaits its SYN-ACK: a slot of a connection gone is taken again). Allocated at the
   *  first use. */
  #held = Buffer.alloc(0);
  #heldLen = new Uint16Array(0);
  #heldOwner = new Int32Array(0);
  #slotOf = new Int16Array(0);
  /** by connection index: the client's ISN; the cookie, then (after the SYN-ACK) the delta; the client's window */
  #isn = new Int32Array(0);
  #delta = new Int32Array(0);
  #win = new Uint16Array(0);

  constructor(s: EngineState, life: ConnLifecycle) {
    this.#s = s;
    this.#life = life;
  }

  /** A checked ACK the engine may honour: syn_cookies on, TCP, the bit set, ACK without SYN/RST/FIN,
   *  and a packet the kernel program looked at: an option-less IPv4 header (20 bytes) and TTL > 1
   *  (it passes others on before it clears the bit: bpf/fastpath.bpf.c fastpath, so a client
   *  could set the bit on those itself). */
  accepts(m: PacketMeta): boolean {
    return (
      m.proto === IPPROTO_TCP &&
      this.#s.sysctl.synCookies !== 0 &&
      m.l4off - m.off === 20 &&
      m.buf[m.off + IPV4.TTL]! > 1 &&
      (m.tflags & (TcpFlag.SYN | TcpFlag.RST | TcpFlag.FIN | TcpFlag.ACK)) === TcpFlag.ACK &&
      (m.buf[m.l4off + TCP.DOFF]! & TCP_VALIDATED_BIT) !== 0
    );
  }

  /** A checked ACK `m` on connection c whose entry has ended (TIME_WAIT, CLOSE; no
   *  controlled entries): the client reused its port, and the ACK opens a new connection as a
   *  SYN would under conn_reuse_mode (decide.ts). The bit is looked at first: almost every
   *  request has it clear. */
  reopens(m: PacketMeta, ops: ProtoOps, c: number): boolean {
    return (m.buf[m.l4off + TCP.DOFF]! & TCP_VALIDATED_BIT) !== 0 && this.accepts(m) && this.#s.sysctl.connReuseMode !== 0 && ops.newConnExpected(c);
  }

  /** The checked ACK `m` opened connection `c` (just scheduled): the SYN to the server. */
  open(m: PacketMeta, ops: ProtoOps, c: number): OutcomeCode {
    const s = this.#s;
    const conns = s.conns;
    if ((conns.flags(c) & ConnFlag.FWD_MASK) !== 0) {
      this.#life.unlink(c); // DR/TUN: replies never seen, nothing to translate
      return Outcome.DropSynProxyNotNat;
    }
    this.#allocate();
    this.#slotOf[c] = -1;
    const t = m.l4off;
    this.#isn[c] = (readU32(m.buf, t + TCP.SEQ) - 1) | 0;
    this.#delta[c] = (readU32(m.buf, t + TCP.ACK) - 1) | 0; // the cookie, until the SYN-ACK
    this.#win[c] = readU16(m.buf, t + TCP.WINDOW);
    const d = s.dests.byId(conns.dest(c));
    countPacket(d, s.stats, Stat.INPKTS, Stat.INBYTES, m.total);
    const to = ops.transition(c, TcpDir.INPUT, TcpFlag.SYN, d); // NONE -> SYN_RECV
    conns.setFlags(c, conns.flags(c) | ConnFlag.SYNPROXY | ConnFlag.SYNPROXY_WAIT);
    conns.rearm(c, s.nowTick + to);
    s.lastConn = c;
    this.#syn(m, c);
    return Outcome.SendSynProxySyn;
  }

  /** A request of SYNPROXY connection c: null when it goes on as a NAT request (ack translated). */
  request(m: PacketMeta, ops: ProtoOps, c: number): OutcomeCode | null {
    const conns = this.#s.conns;
    if ((conns.flags(c) & ConnFlag.SYNPROXY_WAIT) !== 0) {
      this.#s.lastConn = c;
      if ((m.tflags & TcpFlag.RST) === 0) {
        this.#hold(m, c);
        this.#syn(m, c);
        return Outcome.SendSynProxySynAgain;
      }
      const d = this.#s.dests.byId(conns.dest(c));
      conns.rearm(c, this.#s.nowTick + ops.transition(c, TcpDir.INPUT, m.tflags, d));
      return Outcome.DropSynProxyEarly;
    }
    const b = m.buf;
    const t = m.l4off;
    if ((b[t + TCP.DOFF]! & TCP_VALIDATED_BIT) !== 0) {
      const w = readU16(b, t + TCP.DOFF);
      writeU16(b, t + TCP.DOFF, w & ~(TCP_VALIDATED_BIT << 8));
      if (!m.partial) writeU16(b, t + TCP.CHECKSUM, csumReplace16(readU16(b, t + TCP.CHECKSUM), w, w & ~(TCP_VALIDATED_BIT << 8)));
    }
    if ((m.tflags & TcpFlag.ACK) !== 0) this.#shift(m, TCP.ACK, -this.#delta[c]!);
    return null;
  }

  /** A reply of SYNPROXY connection c: null when it goes on as a NAT reply (seq translated). */
  reply(m: PacketMeta, ops: ProtoOps, c: number): OutcomeCode | null {
    const s = this.#s;
    const conns = s.conns;
    if ((conns.flags(c) & ConnFlag.SYNPROXY_WAIT) === 0) {
      if ((m.tflags & TcpFlag.SYN) !== 0) return Outcome.DropSynProxyDupSynAck; // the client has its SYN-ACK
      this.#shift(m, TCP.SEQ, this.#delta[c]!);
      return null;
    }
    const b = m.buf;
    const t = m.l4off;
    const isn = this.#isn[c]!;
    const d = s.dests.byId(conns.dest(c));
    const ack = readU32(b, t + TCP.ACK);
    if ((m.tflags & (TcpFlag.SYN | TcpFlag.RST | TcpFlag.ACK)) === TcpFlag.ACK && ack !== ((isn + 1) >>> 0)) {
      // not an answer to this SYN: the server still holds an older connection on the tuple
      s.lastConn = c;
      this.#segment(m, c, ack | 0, 0, TcpFlag.RST, ACK_LEN);
      return Outcome.SendSynProxyRst;
    }
    if ((m.tflags & TcpFlag.RST) !== 0) {
      // the server refused (port closed): the client, which believes the connection open, gets
      // the reset at the sequence number it expects, cookie + 1
      this.#delta[c] = (this.#delta[c]! + 1 - readU32(b, t + TCP.SEQ)) | 0;
      conns.setFlags(c, conns.flags(c) & ~ConnFlag.SYNPROXY_WAIT);
      this.#shift(m, TCP.SEQ, this.#delta[c]!);
      return null;
    }
    if ((m.tflags & SYN_ACK) !== SYN_ACK || ack !== ((isn + 1) >>> 0)) return Outcome.DropSynProxyEarly;
    const serverIsn = readU32(b, t + TCP.SEQ);
    this.#delta[c] = (this.#delta[c]! - serverIsn) | 0; // cookie - server ISN
    conns.setFlags(c, conns.flags(c) & ~ConnFlag.SYNPROXY_WAIT);
    countPacket(d, s.stats, Stat.OUTPKTS, Stat.OUTBYTES, m.total);
    ops.transition(c, TcpDir.OUTPUT, m.tflags, d); // SYN_RECV, as IPVS on a SYN-ACK
    conns.rearm(c, s.nowTick + ops.transition(c, TcpDir.INPUT, TcpFlag.ACK, d)); // the ACK: ESTABLISHED
    s.lastConn = c;
    const h = this.#heldSlot(c);
    if (h < 0) this.#segment(m, c, (isn + 1) | 0, (serverIsn + 1) | 0, TcpFlag.ACK, ACK_LEN);
    else {
      this.#segment(m, c, (isn + 1) | 0, (serverIsn + 1) | 0, TcpFlag.ACK | TcpFlag.PSH, ACK_LEN + this.#heldLen[h]!, h);
      this.#heldOwner[h] = -1;
    }
    return Outcome.SendSynProxyAck;
  }

  /** Connection c's sequence delta (cookie - server ISN, int32) once its handshake with the
   *  server is done: what the fast path's entries and a restart or sync carry; 0 for any
   *  other connection (not SYNPROXY, or still awaiting the server's SYN-ACK). */
  seqDelta(c: number): number {
    const f = this.#s.conns.flags(c);
    return (f & (ConnFlag.SYNPROXY | ConnFlag.SYNPROXY_WAIT)) === ConnFlag.SYNPROXY && c < this.#delta.length ? this.#delta[c]! : 0;
  }

  /** Connection c (just imported: a restart, or a sync backup) was opened by a SYN cookie
   *  whose handshake with the server is done, with sequence delta `delta` (int32; a 0 delta
   *  needs no translation and makes no SYNPROXY entry). */
  restore(c: number, delta: number): void {
    if ((delta | 0) === 0) return;
    this.#allocate();
    const conns = this.#s.conns;
    this.#delta[c] = delta | 0;
    this.#slotOf[c] = -1;
    conns.setFlags(c, (conns.flags(c) | ConnFlag.SYNPROXY) & ~ConnFlag.SYNPROXY_WAIT);
  }

  /** The per-connection arrays, once, at the first handshake (or restore). */
  #allocate(): void {
    const conns = this.#s.conns;
    if (this.#isn.length === conns.capacity) return;
    this.#isn = new Int32Array(conns.capacity);
    this.#delta = new Int32Array(conns.capacity);
    this.#win = new Uint16Array(conns.capacity);
    this.#slotOf = new Int16Array(conns.capacity);
    this.#held = Buffer.alloc(HOLD_SLOTS * HOLD_MAX);
    this.#heldLen = new Uint16Array(HOLD_SLOTS);
    this.#heldOwner = new Int32Array(HOLD_SLOTS).fill(-1);
  }

  /** Keep the client's first data of connection c (seq ISN + 1, 1..HOLD_MAX bytes) if it has
   *  none kept yet and a buffer is free; otherwise nothing (the client resends it). */
  #hold(m: PacketMeta, c: number): void {
    const b = m.buf;
    const hdr = (b[m.l4off + TCP.DOFF]! >>> 4) * 4;
    const n = m.l4len - hdr;
    if (n <= 0 || n > HOLD_MAX || this.#heldSlot(c) >= 0) return;
    if (readU32(b, m.l4off + TCP.SEQ) !== ((this.#isn[c]! + 1) >>> 0)) return;
    const conns = this.#s.conns;
    for (let h = 0; h < HOLD_SLOTS; h++) {
      const o = this.#heldOwner[h]!;
      // free, or its connection is gone, was reused, or no longer waits
      if (o >= 0 && this.#slotOf[o] === h && (conns.flags(o) & ConnFlag.SYNPROXY_WAIT) !== 0) continue;
      const from = m.l4off + hdr;
      b.copy(this.#held, h * HOLD_MAX, from, from + n);
      this.#heldLen[h] = n;
      this.#heldOwner[h] = c;
      this.#slotOf[c] = h;
      return;
    }
  }

  /** Connection c's kept-data slot, or -1. */
  #heldSlot(c: number): number {
    const h = this.#slotOf[c]!;
    return h >= 0 && this.#heldOwner[h] === c ? h : -1;
  }

  /** The SYN to the server for connection c, the client's segment `m` giving TTL, TOS and id. */
  #syn(m: PacketMeta, c: number): void {
    this.#segment(m, c, this.#isn[c]!, 0, TcpFlag.SYN, SYN_LEN);
  }

  /** A segment client -> RIP:rport of connection c into `out`, checksums computed whole; with
   *  `held` >= 0 its payload is that kept buffer (len - ACK_LEN bytes). */
  #segment(m: PacketMeta, c: number, seq: number, ack: number, flags: number, len: number, held = -1): void {
    const conns = this.#s.conns;
    const o = this.out;
    const src = m.buf;
    const client = conns.caddr(c);
    const rip = conns.daddr(c);
    o.fill(0, 0, len);
    o[IPV4.VER_IHL] = 0x45;
    o[IPV4.TOS] = src[m.off + IPV4.TOS]!;
    writeU16(o, IPV4.TOTAL_LENGTH, len);
    writeU16(o, IPV4.ID, readU16(src, m.off + IPV4.ID));
    writeU16(o, IPV4.FLAGS_FRAG, 0x4000); // DF
    o[IPV4.TTL] = src[m.off + IPV4.TTL]!;
    o[IPV4.PROTOCOL] = IPPROTO_TCP;
    writeU32(o, IPV4.SRC, client);
    writeU32(o, IPV4.DST, rip);
    writeU16(o, IPV4.CHECKSUM, finish(sumBytes(o, 0, 20, 0)));
    const t = 20;
    writeU16(o, t + TCP.SPORT, conns.cport(c));
    writeU16(o, t + TCP.DPORT, conns.dport(c));
    writeU32(o, t + TCP.SEQ, seq >>> 0);
    writeU32(o, t + TCP.ACK, ack >>> 0);
    o[t + TCP.DOFF] = (((held >= 0 ? ACK_LEN : len) - 20) / 4) << 4; // the header's words, without the kept data
    o[t + TCP.FLAGS] = flags;
    writeU16(o, t + TCP.WINDOW, this.#win[c]!);
    if (len === SYN_LEN) {
      o[t + 20] = 2; // MSS, RFC 9293 3.2
      o[t + 21] = 4;
      writeU16(o, t + 22, SERVER_MSS);
    }
    if (held >= 0) this.#held.copy(o, ACK_LEN, held * HOLD_MAX, held * HOLD_MAX + len - ACK_LEN);
    writeU16(o, t + TCP.CHECKSUM, finish(sumBytes(o, t, len - 20, pseudoHeaderV4(client, rip, IPPROTO_TCP, len - 20))));
    this.len = len;
  }

  /** Add `by` (mod 2^32) to the 32-bit sequence field at `field` of m's TCP header. */
  #shift(m: PacketMeta, field: number, by: number): void {
    if (by === 0) return;
    const b = m.buf;
    const at = m.l4off + field;
    const old = readU32(b, at);
    const now = (old + by) >>> 0;
    writeU32(b, at, now);
    if (!m.partial) writeU16(b, m.l4off + TCP.CHECKSUM, csumReplace32(readU16(b, m.l4off + TCP.CHECKSUM), old, now));
  }
}
