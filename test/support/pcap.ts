/**
 * Packet captures for wire tests: tcpdump writing a classic pcap file in a namespace, and a
 * reader of that format (the 24-byte global header, then a 16-byte header per record; either
 * byte order, microsecond or nanosecond magic). Test-only; see the pcap format in
 * tcpdump's pcap-savefile(5).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';

export interface PcapRecord {
  /** the frame as captured (never truncated here: tcpdump runs with -s 0) */
  data: Uint8Array;
  /** its length on the wire; > data.length when truncated */
  wireLen: number;
}

/** The records of pcap file `buf`; only Ethernet (link type 1) is accepted. */
export function parsePcap(buf: Uint8Array): PcapRecord[] {
  if (buf.length < 24) throw new Error(`pcap: ${buf.length} bytes, shorter than the global header`);
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const magic = dv.getUint32(0, true);
  let le: boolean;
  if (magic === 0xa1b2c3d4 || magic === 0xa1b23c4d) le = true;
  else if (dv.getUint32(0, false) === 0xa1b2c3d4 || dv.getUint32(0, false) === 0xa1b23c4d) le = false;
  else throw new Error(`pcap: bad magic 0x${magic.toString(16)}`);
  const linkType = dv.getUint32(20, le) & 0x0fffffff;
  if (linkType !== 1) throw new Error(`pcap: link type ${linkType}, not Ethernet (1)`);
  const out: PcapRecord[] = [];
  let off = 24;
  while (off + 16 <= buf.length) {
    const incl = dv.getUint32(off + 8, le);
    const orig = dv.getUint32(off + 12, le);
    if (off + 16 + incl > buf.length) break; // a record cut short by the end of the capture
    out.push({ data: buf.slice(off + 16, off + 16 + incl), wireLen: orig });
    off += 16 + incl;
  }
  return out;
}

/**
 * tcpdump on `dev` in namespace `ns`, incoming frames only, writing `file` (-U: each packet as
 * tcpdump gets it). libpcap gets packets from the kernel a ring block at a time, a block being
 * handed over when full or 1 s after its first packet; a block not handed over when tcpdump is
 * stopped is lost, so stop() waits 2 s first. (--immediate-mode would hand over every packet,
 * and on a loaded machine the kernel then drops some.)
 */
export class Capture {
  readonly #p: ChildProcess;
  #stderr = '';

  private constructor(
    readonly file: string,
    p: ChildProcess,
  ) {
    this.#p = p;
    p.stderr!.on('data', (d: Buffer) => (this.#stderr += d.toString()));
  }

  /** Start capturing; resolves once tcpdump says it is listening. */
  static async start(ns: string, dev: string, file: string, filter: string): Promise<Capture> {
    const p = spawn('ip', ['netns', 'exec', ns, 'tcpdump', '-i', dev, '-Q', 'in', '-n', '-U', '-s', '0', '-B', '32768', '-w', file, filter], { stdio: ['ignore', 'ignore', 'pipe'] });
    const c = new Capture(file, p);
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`tcpdump on ${ns}/${dev} did not start: ${c.#stderr}`)), 15_000);
      const check = () => {
        if (/listening on/.test(c.#stderr)) {
          clearTimeout(t);
          p.stderr!.off('data', check);
          resolve();
        }
      };
      p.stderr!.on('data', check);
      p.once('exit', (code) => {
        clearTimeout(t);
        reject(new Error(`tcpdump exited (${code}): ${c.#stderr}`));
      });
    });
    return c;
  }

  /** Stop (after 2 s; SIGINT: tcpdump writes what it has) and return the records; throws when the kernel dropped any. */
  async stop(): Promise<PcapRecord[]> {
    if (this.#p.exitCode === null && this.#p.signalCode === null) {
      await new Promise((r) => setTimeout(r, 2000));
      const gone = new Promise((r) => this.#p.once('exit', r));
      this.#p.kill('SIGINT');
      await gone;
    }
    const dropped = Number(/(\d+) packets? dropped by kernel/.exec(this.#stderr)?.[1] ?? 0);
    if (dropped > 0) throw new Error(`capture ${this.file}: the kernel dropped ${dropped} packets`);
    return parsePcap(readFileSync(this.file));
  }

  /** End tcpdump without reading (cleanup paths). */
  kill(): void {
    if (this.#p.exitCode === null && this.#p.signalCode === null) this.#p.kill('SIGKILL');
  }
}
