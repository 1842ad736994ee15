/**
 * A trace record (core/trace/packet-trace.ts) as a person reads it and as JSON, in the terms of
 * the LVS/NAT article: where the packet was captured, the lookup or scheduling result, the
 * header before and after the rewrite, the connection's state transition, and where it went;
 * drops and passes by the engine's outcome counter names (core/verdict.ts OUTCOME_NAMES).
 * Kernel records: what the fast path forwarded for an offloaded connection since the last one
 * (its slot counters; the kernel does not show ulvs each packet). Pure: `route` is the daemon's
 * answer about where the director routes an address (daemon/next-hop.ts), or null.
 */
import { ConnFlag, FWD_SHIFT } from '../core/conn-flags.js';
import { FWD_NAMES, Fwd } from '../core/service.js';
import { TCP_STATE_NAMES } from '../core/tcp-states.js';
import { Kind, Note, Rec } from '../core/trace/packet-trace.js';
import { OUTCOME_NAMES, VERDICT_NAMES } from '../core/verdict.js';
import { formatIPv4 } from '../wire/addr.js';

export interface TraceLine {
  text: string;
  json: Record<string, unknown>;
}

/** Where one record came from: worker index, its clock's origin (ms since the epoch), the TUN. */
export interface RecordSource {
  worker: number;
  origin: number;
  tun: string;
}

const ip = (a: number) => formatIPv4(a >>> 0);
const ep = (a: number, p: number) => `${ip(a)}:${p}`;
const FLAG_LETTERS = 'FSRPAUEC';
/** TCP flags as tcpdump's letters, e.g. "S", "S.", "F." (the ACK bit is ".") */
export function tcpFlagText(f: number): string {
  let s = '';
  for (let i = 0; i < 8; i++) if (i !== 4 && f & (1 << i)) s += FLAG_LETTERS[i];
  return f & 0x10 ? `${s}.` : s;
}
const protoName = (p: number) => (p === 6 ? 'TCP' : p === 17 ? 'UDP' : p === 1 ? 'ICMP' : `proto ${p}`);
const stateName = (proto: number, s: number) => (s < 0 ? '?' : proto === 6 ? (TCP_STATE_NAMES[s] ?? String(s)) : proto === 17 ? 'UDP' : String(s));
const clock = (ms: number) => new Date(ms).toISOString().slice(11, 23);

function header(r: Int32Array, o: number, saddr: number, daddr: number, ports: number, meta: number) {
  const m = r[o + meta]!;
  const proto = m & 0xff;
  const hasPorts = proto === 6 || proto === 17;
  const src = hasPorts ? ep(r[o + saddr]!, r[o + ports]! >>> 16) : ip(r[o + saddr]!);
  const dst = hasPorts ? ep(r[o + daddr]!, r[o + ports]! & 0xffff) : ip(r[o + daddr]!);
  const flags = proto === 6 ? tcpFlagText((m >>> 8) & 0xff) : '';
  return { proto, src, dst, flags, ttl: (m >>> 16) & 0xff, text: `${src} > ${dst}${flags ? ` [${flags}]` : ''}` };
}

/** One record at offset `o` of `r`. */
export function formatRecord(r: Int32Array, o: number, from: RecordSource, route: (addr: number) => string | null): TraceLine {
  const at = from.origin + r[o + Rec.now]!;
  if (r[o + Rec.kind] === Kind.Kernel) {
    const conn = `${protoName(6)} ${ep(r[o + Rec.kCaddr]!, r[o + Rec.kCport]!)} > ${ep(r[o + Rec.kVaddr]!, r[o + Rec.kVport]!)} -> ${ep(r[o + Rec.kDaddr]!, r[o + Rec.kDport]!)}`;
    const [ip_, ib, op, ob] = [r[o + Rec.inPkts]! >>> 0, r[o + Rec.inBytes]! >>> 0, r[o + Rec.outPkts]! >>> 0, r[o + Rec.outBytes]! >>> 0];
    return {
      text: `${clock(at)} worker ${from.worker}  kernel fast path: ${conn}\n  +${ip_} packets, +${ib} bytes client->server; +${op} packets, +${ob} bytes server->client since the last report (slot counters; these packets did not reach ulvsd)\n`,
      json: { time: new Date(at).toISOString(), worker: from.worker, kind: 'kernel', connection: conn, in: { packets: ip_, bytes: ib }, out: { packets: op, bytes: ob } },
    };
  }
  const before = header(r, o, Rec.bSaddr, Rec.bDaddr, Rec.bPorts, Rec.bMeta);
  const after = header(r, o, Rec.aSaddr, Rec.aDaddr, Rec.aPorts, Rec.aMeta);
  const verdict = VERDICT_NAMES[r[o + Rec.verdict]!] ?? 'unknown';
  const outcome = OUTCOME_NAMES[r[o + Rec.outcome]!] ?? 'unknown';
  const c = r[o + Rec.conn]!;
  const notes = r[o + Rec.notes]!;
  const flags = r[o + Rec.flags]!;
  const method = (flags & ConnFlag.FWD_MASK) >>> FWD_SHIFT;
  const server = c >= 0 ? ep(r[o + Rec.daddr]!, r[o + Rec.dport]!) : null;
  const lines = [`${clock(at)} worker ${from.worker}  ${protoName(before.proto)} ${before.text} len ${r[o + Rec.len]}  captured: TUN ${from.tun} queue ${from.worker}`];
  let step: string;
  if (c < 0) step = verdict === 'drop' ? `dropped: ${outcome}` : verdict === 'pass' ? `passed unchanged to the kernel: ${outcome}` : verdict === 'icmp' ? `answered with ICMP: ${outcome}` : outcome;
  else if (notes & Note.Created) step = `new connection: scheduled -> ${server} (${FWD_NAMES[method]})`;
  else step = `connection found -> ${server} (${FWD_NAMES[method]})${outcome === 'forward_out' ? ', a reply' : ''}`;
  lines.push(`  ${c >= 0 ? 'lookup' : 'result'}: ${step}`);
  const sb = stateName(before.proto, r[o + Rec.stateBefore]!);
  const sa = stateName(before.proto, r[o + Rec.stateAfter]!);
  if (c >= 0) lines.push(`  state: ${sb} -> ${sa}${flags & ConnFlag.OFFLOADED ? '  (offloaded: the kernel fast path forwards this connection now)' : ''}${notes & Note.Offloaded ? '  [offered to the kernel fast path by this packet]' : ''}`);
  let sent: string | null = null;
  if (verdict === 'forward' || verdict === 'send') {
    const changed = before.text !== after.text;
    lines.push(`  rewrite: ${changed ? `${before.text}  =>  ${after.text}` : `none (${FWD_NAMES[method]}: the packet keeps its header)`}  [${outcome}]`);
    const hop = route(method === Fwd.MASQ || c < 0 ? r[o + Rec.aDaddr]! : r[o + Rec.daddr]!);
    const how = method === Fwd.DROUTE ? `to ${ip(r[o + Rec.daddr]!)}'s link-layer address` : method === Fwd.TUNNEL ? `encapsulated to ${ip(r[o + Rec.daddr]!)}` : `routed to ${ip(r[o + Rec.aDaddr]!)}`;
    sent = `back into the TUN, out by the way-out program: ${how}${hop ? `, ${hop}` : ''}`;
    lines.push(`  sent: ${sent}`);
  }
  return {
    text: `${lines.join('\n')}\n`,
    json: {
      time: new Date(at).toISOString(),
      worker: from.worker,
      kind: 'packet',
      captured: `TUN ${from.tun} queue ${from.worker}`,
      before: { proto: protoName(before.proto), src: before.src, dst: before.dst, flags: before.flags, ttl: before.ttl, len: r[o + Rec.len] },
      after: { src: after.src, dst: after.dst, flags: after.flags, ttl: after.ttl },
      verdict,
      outcome,
      step,
      ...(c >= 0 && { connection: { new: (notes & Note.Created) !== 0, server, method: FWD_NAMES[method], stateBefore: sb, state: sa, offloaded: (flags & ConnFlag.OFFLOADED) !== 0, offeredNow: (notes & Note.Offloaded) !== 0 } }),
      ...(sent !== null && { sent }),
    },
  };
}
