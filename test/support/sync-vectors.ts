/**
 * Golden IPVS sync datagrams written out byte by byte from the documented layout (the kernel's
 * struct ip_vs_sync_mesg / ip_vs_sync_v4 / ip_vs_sync_v6 / ip_vs_sync_conn_v0; see
 * src/wire/ipvs-sync/encode-v1.ts and v0.ts for the offsets), NOT produced by ulvs's encoder,
 * with the field values each record carries. Shared by the codec's unit tests (both directions)
 * and the Wireshark cross-check (test/ipvs-sync-tshark.test.ts).
 *
 * Addresses (documentation ranges): client 198.51.100.2 = c6336402, .3 = c6336403, .4 = c6336404,
 * 198.51.100.0 = c6336400; VIP 203.0.113.10 = cb00710a; servers 192.0.2.11..13 = c000020b..0d.
 * Ports: 40000 = 9c40, 40001 = 9c41, 80 = 0050, 8080 = 1f90, 5060 = 13c4.
 */
import { SyncRecord } from '../../src/wire/ipvs-sync/record.js';
import { parseIPv4, parseIPv6 } from '../../src/wire/addr.js';

/** Hex with spaces, '|' separators and `#...` end-of-line comments allowed. */
export function hex(s: string): Buffer {
  return Buffer.from(
    s
      .split('\n')
      .map((l) => l.replace(/#.*$/, ''))
      .join('')
      .replace(/[\s|]/g, ''),
    'hex',
  );
}

export interface RecordFields {
  af: 4 | 6;
  protocol: number;
  flags: number;
  state: number;
  cport: number;
  vport: number;
  dport: number;
  fwmark: number;
  timeout: number;
  caddr: string;
  vaddr: string;
  daddr: string;
  seq?: [number, number, number, number, number, number];
  peData?: string;
  peName?: string;
}

/** A SyncRecord holding these fields (PE data/name as ASCII). */
export function recordOf(f: RecordFields, r = new SyncRecord()): SyncRecord {
  r.clear();
  r.af = f.af;
  r.protocol = f.protocol;
  r.flags = f.flags;
  r.state = f.state;
  r.cport = f.cport;
  r.vport = f.vport;
  r.dport = f.dport;
  r.fwmark = f.fwmark;
  r.timeout = f.timeout;
  if (f.af === 4) {
    r.caddr = parseIPv4(f.caddr);
    r.vaddr = parseIPv4(f.vaddr);
    r.daddr = parseIPv4(f.daddr);
  } else {
    r.caddr6.set(parseIPv6(f.caddr));
    r.vaddr6.set(parseIPv6(f.vaddr));
    r.daddr6.set(parseIPv6(f.daddr));
  }
  if (f.seq) {
    r.hasSeq = true;
    [r.inSeqInit, r.inSeqDelta, r.inSeqPrevDelta, r.outSeqInit, r.outSeqDelta, r.outSeqPrevDelta] = f.seq;
  }
  if (f.peData !== undefined) {
    r.peDataBuf = Buffer.from(f.peData, 'latin1');
    r.peDataLen = f.peData.length;
  }
  if (f.peName !== undefined) {
    r.peNameBuf = Buffer.from(f.peName, 'latin1');
    r.peNameLen = f.peName.length;
  }
  return r;
}

const conn1: RecordFields = { af: 4, protocol: 6, flags: 0, state: 1, cport: 40000, vport: 80, dport: 8080, fwmark: 0, timeout: 900, caddr: '198.51.100.2', vaddr: '203.0.113.10', daddr: '192.0.2.11' };
const template: RecordFields = { af: 4, protocol: 6, flags: 0x1100, state: 1, cport: 0, vport: 80, dport: 8080, fwmark: 0, timeout: 300, caddr: '198.51.100.0', vaddr: '203.0.113.10', daddr: '192.0.2.11' };
const drSeq: RecordFields = {
  af: 4, protocol: 6, flags: 0x0683, state: 4, cport: 40001, vport: 80, dport: 80, fwmark: 0, timeout: 120, caddr: '198.51.100.3', vaddr: '203.0.113.10', daddr: '192.0.2.12',
  seq: [0x11111111, 0x10, 0, 0x22222222, 0xfffffff0, 4],
};
const udpPe: RecordFields = { af: 4, protocol: 17, flags: 0, state: 0, cport: 5060, vport: 5060, dport: 5060, fwmark: 0, timeout: 300, caddr: '198.51.100.4', vaddr: '203.0.113.10', daddr: '192.0.2.13', peData: 'abc', peName: 'sip' };

/** v1, syncid 7, four records: conn, template, DR conn with SEQ_DATA (62 bytes, so the next
 *  record is preceded by 2 bytes of padding), UDP conn with PE_DATA + PE_NAME (46 bytes). 190 bytes. */
export const V1_FOUR = {
  syncid: 7,
  records: [conn1, template, drSeq, udpPe],
  bytes: hex(`
    00 07 00be 04 01 0000            # header: reserved 0, syncid 7, size 190, nr_conns 4, version 1, spare 0
    # record 1 @8: type 0, proto 6, ver_size 36 | flags 0 | state 1 (ESTABLISHED) | cport 40000 | vport 80 | dport 8080
    00 06 0024 | 00000000 | 0001 | 9c40 | 0050 | 1f90
    00000000 | 00000384 | c6336402 | cb00710a | c000020b   # @24 fwmark 0, @28 timeout 900, @32 caddr, @36 vaddr, @40 daddr
    # record 2 @44: template (0x1000) + INACTIVE (0x100), state 1 (ASSURED), cport 0, timeout 300, caddr = client network
    00 06 0024 | 00001100 | 0001 | 0000 | 0050 | 1f90
    00000000 | 0000012c | c6336400 | cb00710a | c000020b
    # record 3 @80: ver_size 62 | flags DROUTE 3 + NOOUTPUT 0x80 + IN/OUT_SEQ 0x600 | FIN_WAIT 4 | 40001 -> 80 -> 80
    00 06 003e | 00000683 | 0004 | 9c41 | 0050 | 0050
    00000000 | 00000078 | c6336403 | cb00710a | c000020c   # timeout 120
    01 18 | 11111111 00000010 00000000 | 22222222 fffffff0 00000004   # @116 SEQ_DATA, len 24: in_seq, out_seq
    0000                             # @142 padding: record 4 starts 4-byte aligned
    # record 4 @144: UDP, ver_size 46, flags 0, state 0, 5060 -> 5060 -> 5060, timeout 300
    00 11 002e | 00000000 | 0000 | 13c4 | 13c4 | 13c4
    00000000 | 0000012c | c6336404 | cb00710a | c000020d
    02 03 616263 | 03 03 736970      # @180 PE_DATA "abc", @185 PE_NAME "sip"; ends @190, no padding after the last
  `),
};

/** v1, syncid 0, one IPv6 record (72-byte fixed part). 80 bytes. */
export const V1_IPV6 = {
  syncid: 0,
  records: [{ af: 6, protocol: 6, flags: 0, state: 1, cport: 40000, vport: 80, dport: 8080, fwmark: 0, timeout: 900, caddr: '2001:db8::2', vaddr: '2001:db8:1::10', daddr: '2001:db8:2::11' } as RecordFields],
  bytes: hex(`
    00 00 0050 01 01 0000            # header: syncid 0, size 80, 1 record, version 1
    01 06 0048 | 00000000 | 0001 | 9c40 | 0050 | 1f90   # type 1 (IPv6), ver_size 72
    00000000 | 00000384
    20010db8 00000000 00000000 00000002   # @32 caddr 2001:db8::2
    20010db8 00010000 00000000 00000010   # @48 vaddr 2001:db8:1::10
    20010db8 00020000 00000000 00000011   # @64 daddr 2001:db8:2::11
  `),
};

/** v0, syncid 7, two records (the second with IN_SEQ and its 24-byte block in host = little-endian order). 76 bytes. */
export const V0_TWO = {
  syncid: 7,
  records: [
    { ...conn1, timeout: 0 },
    { ...conn1, flags: 0x0400, state: 4, cport: 40001, caddr: '198.51.100.3', daddr: '192.0.2.12', timeout: 0, seq: [0x01020304, 5, 0, 0xa0b0c0d0, 0xfffffffb, 0] } as RecordFields,
  ],
  bytes: hex(`
    02 07 004c                       # header: nr_conns 2, syncid 7, size 76
    # record 1 @4: reserved 0, proto 6, cport, vport, dport, caddr, vaddr, daddr, flags 0 (be16), state 1
    00 06 9c40 0050 1f90 c6336402 cb00710a c000020b 0000 0001
    # record 2 @28: flags IN_SEQ 0x0400, state 4, then the sequence block in little-endian
    00 06 9c41 0050 1f90 c6336403 cb00710a c000020c 0400 0004
    04030201 05000000 00000000 | d0c0b0a0 fbffffff 00000000   # @52 in_seq, @64 out_seq
  `),
};

/** The vector of the reference (ha-scaleout.md §1.13): syncid 52, one ESTABLISHED NAT conn
 *  203.0.113.7:51234 -> 198.18.1.100:80 -> 198.18.2.21:8080, timeout 900; 44 bytes. */
export const REFERENCE_VECTOR = {
  syncid: 52,
  records: [{ af: 4, protocol: 6, flags: 0, state: 1, cport: 51234, vport: 80, dport: 8080, fwmark: 0, timeout: 900, caddr: '203.0.113.7', vaddr: '198.18.1.100', daddr: '198.18.2.21' } as RecordFields],
  bytes: hex('0034002c 01010000 | 00060024 00000000 0001c822 00501f90 00000000 00000384 cb007107 c6120164 c6120215'),
};
