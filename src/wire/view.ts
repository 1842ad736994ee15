/**
 * Base of the header views: a (buffer, offset) pair that one instance per worker re-points at
 * each packet with `reset()`, so nothing is allocated per packet.
 */
import { readU16, writeU16 } from './ipv4.js';

export class ByteView {
  buf: Uint8Array;
  off: number;

  constructor(buf: Uint8Array = new Uint8Array(0), off = 0) {
    this.buf = buf;
    this.off = off;
  }
  reset(buf: Uint8Array, off: number): this {
    this.buf = buf;
    this.off = off;
    return this;
  }
}

/** A transport header that starts with source port (0) and destination port (2): TCP, UDP. */
export class PortsView extends ByteView {
  get srcPort(): number {
    return readU16(this.buf, this.off);
  }
  set srcPort(v: number) {
    writeU16(this.buf, this.off, v);
  }
  get dstPort(): number {
    return readU16(this.buf, this.off + 2);
  }
  set dstPort(v: number) {
    writeU16(this.buf, this.off + 2, v);
  }
}
