/**
 * Immutable lookup from (protocol, VIP, port) to a service, built by the control plane after
 * every change and swapped in whole. Open addressing in typed arrays; a lookup allocates
 * nothing. Order of lookups for a new flow (ipvs-spec §4.2, ip_vs_service_find): the packet's
 * firewall mark first (`byMark`, when it has one), then exact port, then port 0. Fwmark services
 * are in the same table under their key <0, mark, 0> (service.ts fwmarkKey).
 */
import { FWMARK_PROTO, type VirtualService } from './service.js';

export class ServiceIndex {
  readonly #addr: Int32Array; // addresses as int32 (see readI32)
  readonly #portProto: Int32Array; // (port << 8 | proto), -1 = empty
  readonly #val: Int32Array;
  readonly #mask: number;
  readonly services: readonly VirtualService[];
  /** true when some service listens on port 0 (saves the second probe otherwise) */
  readonly #hasPortZero: boolean;
  /** some service is a firewall-mark service: only then is a packet's mark worth reading */
  readonly hasFwmark: boolean;

  constructor(services: readonly VirtualService[]) {
    this.services = services;
    let size = 16;
    while (size < services.length * 4) size <<= 1;
    this.#addr = new Int32Array(size);
    this.#portProto = new Int32Array(size).fill(-1);
    this.#val = new Int32Array(size);
    this.#mask = size - 1;
    let zero = false;
    let fwm = false;
    services.forEach((s, idx) => {
      if (s.proto === FWMARK_PROTO) fwm = true;
      else if (s.port === 0) zero = true;
      let h = this.#slot(s.proto, s.addr, s.port);
      while (this.#portProto[h] !== -1) h = (h + 1) & this.#mask;
      this.#addr[h] = s.addr;
      this.#portProto[h] = (s.port << 8) | s.proto;
      this.#val[h] = idx;
    });
    this.#hasPortZero = zero;
    this.hasFwmark = fwm;
  }

  #slot(proto: number, addr: number, port: number): number {
    let h = Math.imul((addr | 0) ^ ((port << 8) | proto), 0x9e3779b1);
    h ^= h >>> 15;
    return Math.imul(h, 0x85ebca6b) >>> 0 & this.#mask;
  }

  /** Exact match only. */
  get(proto: number, addr: number, port: number): VirtualService | null {
    addr |= 0;
    const key = (port << 8) | proto;
    let h = this.#slot(proto, addr, port);
    for (;;) {
      const pp = this.#portProto[h]!;
      if (pp === -1) return null;
      if (pp === key && this.#addr[h] === addr) return this.services[this.#val[h]!]!;
      h = (h + 1) & this.#mask;
    }
  }

  /** The fwmark service of `mark` (u32, 0 = none), or null (__ip_vs_svc_fwm_find). */
  byMark(mark: number): VirtualService | null {
    return mark === 0 || !this.hasFwmark ? null : this.get(FWMARK_PROTO, mark, 0);
  }

  /** Service for a new flow: exact <proto, addr, port>, else the port-0 service of that VIP. */
  find(proto: number, addr: number, port: number): VirtualService | null {
    const s = this.get(proto, addr, port);
    if (s !== null || !this.#hasPortZero) return s;
    return this.get(proto, addr, 0);
  }
}
