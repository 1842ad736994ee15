/**
 * Addresses as numbers inside, strings only at the edges.
 *
 * An IPv4 address is an unsigned 32-bit integer in host order (`a.b.c.d` = a<<24 | ... | d),
 * always normalised with `>>> 0`. Ports are plain numbers 0..65535.
 * `IpAddr` is the family-tagged form used by the control plane, so IPv6 can be added to the
 * data path later without changing the control-plane types. IPv6 addresses are kept as
 * 16 raw bytes.
 *
 * Parsing is strict (no leading zeros, no octal/hex/short forms) and errors quote the input.
 */

export type IpAddr =
  | { readonly family: 4; readonly v4: number }
  | { readonly family: 6; readonly v6: Uint8Array };

export class AddrParseError extends Error {
  readonly code = 'EADDRPARSE';
  constructor(readonly input: string, why: string) {
    super(`invalid address ${JSON.stringify(input)}: ${why}`);
  }
}

/** Parse dotted-quad IPv4; returns the uint32 or throws AddrParseError. */
export function parseIPv4(s: string): number {
  const parts = s.split('.');
  if (parts.length !== 4) throw new AddrParseError(s, 'expected four dot-separated octets');
  let v = 0;
  for (const p of parts) {
    if (!/^(0|[1-9][0-9]{0,2})$/.test(p)) throw new AddrParseError(s, `bad octet ${JSON.stringify(p)}`);
    const n = Number(p);
    if (n > 255) throw new AddrParseError(s, `octet ${n} > 255`);
    v = v * 256 + n;
  }
  return v >>> 0;
}

/** Like parseIPv4 but returns -1 instead of throwing (for validators). */
export function tryParseIPv4(s: string): number {
  try {
    return parseIPv4(s);
  } catch {
    return -1;
  }
}

export function formatIPv4(a: number): string {
  return `${a >>> 24}.${(a >>> 16) & 255}.${(a >>> 8) & 255}.${a & 255}`;
}

/** Parse an IPv6 address (RFC 4291 text forms, including `::` and an embedded IPv4 tail). */
export function parseIPv6(s: string): Uint8Array {
  const out = new Uint8Array(16);
  const halves = s.split('::');
  if (halves.length > 2) throw new AddrParseError(s, "more than one '::'");
  const parseGroups = (part: string, allowV4Tail: boolean): number[] => {
    if (part === '') return [];
    const groups = part.split(':');
    const words: number[] = [];
    groups.forEach((g, i) => {
      if (allowV4Tail && i === groups.length - 1 && g.includes('.')) {
        const v4 = parseIPv4(g);
        words.push(v4 >>> 16, v4 & 0xffff);
        return;
      }
      if (!/^[0-9a-fA-F]{1,4}$/.test(g)) throw new AddrParseError(s, `bad group ${JSON.stringify(g)}`);
      words.push(parseInt(g, 16));
    });
    return words;
  };
  const head = parseGroups(halves[0]!, halves.length === 1);
  const tail = halves.length === 2 ? parseGroups(halves[1]!, true) : [];
  const total = head.length + tail.length;
  if (halves.length === 1 && total !== 8) throw new AddrParseError(s, 'expected 8 groups');
  if (halves.length === 2 && total > 7) throw new AddrParseError(s, "too many groups around '::'");
  const words = [...head, ...new Array<number>(8 - total).fill(0), ...tail];
  words.forEach((w, i) => {
    out[i * 2] = w >>> 8;
    out[i * 2 + 1] = w & 0xff;
  });
  return out;
}

/** RFC 5952 canonical text form (lower case, longest zero run compressed). */
export function formatIPv6(b: Uint8Array): string {
  const w: number[] = [];
  for (let i = 0; i < 8; i++) w.push((b[i * 2]! << 8) | b[i * 2 + 1]!);
  let bestAt = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (w[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && w[j] === 0) j++;
    if (j - i > bestLen) {
      bestAt = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = (xs: number[]) => xs.map((x) => x.toString(16)).join(':');
  if (bestAt < 0) return hex(w);
  return `${hex(w.slice(0, bestAt))}::${hex(w.slice(bestAt + bestLen))}`;
}

/** Parse either family. */
export function parseIp(s: string): IpAddr {
  if (s.includes(':')) return { family: 6, v6: parseIPv6(s) };
  return { family: 4, v4: parseIPv4(s) };
}

export function formatIp(a: IpAddr): string {
  return a.family === 4 ? formatIPv4(a.v4) : formatIPv6(a.v6);
}

/** Network mask from a prefix length (IPv4): 24 -> 0xffffff00. */
export function maskFromPrefix(len: number): number {
  if (!Number.isInteger(len) || len < 0 || len > 32) throw new RangeError(`prefix length ${len} not in 0..32`);
  return len === 0 ? 0 : (0xffffffff << (32 - len)) >>> 0;
}

/** Prefix length of a contiguous mask, or -1 if the mask is not contiguous. */
export function prefixFromMask(mask: number): number {
  const m = mask >>> 0;
  let len = 0;
  while (len < 32 && (m & (0x80000000 >>> len)) !== 0) len++;
  return maskFromPrefix(len) === m ? len : -1;
}
