/**
 * Golden packet tables: each step feeds `input` to a director and compares the verdict, the
 * outcome counter, the bytes that leave (the rewritten packet, or the generated ICMP) with
 * `output`, and optionally the connection state afterwards. Output checksums are also checked
 * with the slow reference (test/support/slow-checksum.ts), unless the packet is a
 * NEEDS_CSUM partial. Test-only.
 */
import assert from 'node:assert/strict';
import type { Director } from '../../src/core/director.js';
import { OUTCOME_NAMES, PacketFlag, Verdict, VERDICT_NAMES } from '../../src/core/verdict.js';
import { packetChecksumsOk } from './slow-checksum.js';
import { formatIPv4 } from '../../src/wire/addr.js';

export interface GoldenStep {
  name: string;
  input: Buffer;
  /** expected bytes leaving the director (forward: the rewritten packet; icmp: the generated error) */
  output?: Buffer;
  verdict: (typeof VERDICT_NAMES)[number];
  outcome: (typeof OUTCOME_NAMES)[number];
  /** ms since the start of the table (default: previous step + 1) */
  at?: number;
  partial?: boolean;
  /** expected state of the connection the step used (ipvsadm -c name) */
  state?: string;
  /** run before the packet (control changes) */
  before?: (d: Director) => void;
}

export function runGolden(d: Director, steps: GoldenStep[], t0 = 1_000_000): void {
  let now = t0;
  for (const s of steps) {
    now = s.at !== undefined ? t0 + s.at : now + 1;
    s.before?.(d);
    const buf = Buffer.from(s.input);
    const v = d.process(buf, 0, buf.length, now, s.partial ? PacketFlag.CsumPartial : 0);
    assert.equal(VERDICT_NAMES[v], s.verdict, `${s.name}: verdict`);
    assert.equal(OUTCOME_NAMES[d.lastOutcome], s.outcome, `${s.name}: outcome`);
    let out: Buffer | null = null;
    if (v === Verdict.Forward) out = buf;
    else if (v === Verdict.Icmp || v === Verdict.Send) out = d.icmpOut.subarray(0, d.icmpLen);
    else assert.deepEqual(buf, s.input, `${s.name}: a non-forwarded packet must not be modified`);
    if (s.output) {
      assert.ok(out, `${s.name}: expected output bytes`);
      assert.equal(out.toString('hex'), s.output.toString('hex'), `${s.name}: output bytes`);
    }
    if (out && !s.partial) assert.deepEqual(packetChecksumsOk(out), { ip: true, l4: true }, `${s.name}: checksums (slow reference)`);
    if (s.state !== undefined) {
      assert.ok(d.lastConn >= 0, `${s.name}: a connection was used`);
      const c = d.lastConn;
      const info = d.connections(now).find((x) => x.caddr === d.conns.caddr(c) >>> 0 && x.cport === d.conns.cport(c) && x.vport === d.conns.vport(c) && !x.template);
      assert.equal(info?.state, s.state, `${s.name}: state (conn ${formatIPv4(d.conns.caddr(c) >>> 0)}:${d.conns.cport(c)})`);
    }
  }
}
