/**
 * Rules and packets for the steering tests (src/datapath/tun/steering.test.ts: the map's
 * contents; test/integration/steering-program.test.ts: the program run by the kernel).
 * Packets start at the IP header, as the TUN's steering program sees them. Test-only.
 */
import { parseIPv4 } from '../../src/wire/addr.js';

export const ip = parseIPv4;
export const TCP = 6;
export const UDP = 17;
export function ipv4(proto: number, src: string, dst: string, payload: Buffer): Buffer {
  const h = Buffer.alloc(20);
  h[0] = 0x45;
  h[9] = proto;
  h.writeUInt16BE(20 + payload.length, 2);
  h.writeUInt32BE(ip(src) >>> 0, 12);
  h.writeUInt32BE(ip(dst) >>> 0, 16);
  return Buffer.concat([h, payload]);
}
export const ports = (sp: number, dp: number) => {
  const b = Buffer.alloc(20);
  b.writeUInt16BE(sp, 0);
  b.writeUInt16BE(dp, 2);
  return b;
};
export const seg = (proto: number, src: string, sp: number, dst: string, dp: number) => ipv4(proto, src, dst, ports(sp, dp));
/** An ICMP error from `from` to `to` quoting (the first 28 bytes of) `quoted`. */
export const icmpError = (from: string, to: string, quoted: Buffer) => ipv4(1, from, to, Buffer.concat([Buffer.from([3, 3, 0, 0, 0, 0, 0, 0]), quoted.subarray(0, 28)]));

export const hash = (key: number) => (Math.imul(key, 0x9e3779b1) >>> 0) >>> 16;
export const VIP = '203.0.113.10';
export const svc = (proto: number, port: number, persistent?: number, netmask?: string) => ({ proto, addr: ip(VIP), port, ...(persistent ? { persistent, netmask: netmask ? ip(netmask) : undefined } : {}) });
export const dest = (s: { proto: number; addr: number; port: number }, rip: string, port: number) => ({ service: s, dest: { addr: ip(rip), port } });

// web: no persistence; shop: persistent by /24; api: no persistence of its own but shares the
// real-server endpoint 192.0.2.12:8443 with shop; dns: UDP, no persistence.
export const web = svc(TCP, 80);
export const shop = svc(TCP, 443, 300, '255.255.255.0');
export const api = svc(TCP, 8443);
export const dns = svc(UDP, 53);
export const services = [web, shop, api, dns];
export const dests = [dest(web, '192.0.2.11', 8080), dest(web, '192.0.2.12', 8080), dest(shop, '192.0.2.12', 8443), dest(api, '192.0.2.12', 8443), dest(api, '192.0.2.13', 9000), dest(dns, '192.0.2.11', 5353)];
