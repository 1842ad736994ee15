/** The deterministic byte stream used by transfer tests: byte i of a stream. */
export function patternByte(i: number): number {
  return (i * 131 + Math.floor(i / 256)) & 0xff;
}

/** Fill `buf` with the stream's bytes starting at position `from`. */
export function fillPattern(buf: Buffer, from: number, n = buf.length): void {
  for (let k = 0; k < n; k++) buf[k] = patternByte(from + k);
}
