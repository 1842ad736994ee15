/**
 * The admin API's request bodies (zod schemas) and how a request names a service: by
 * protocol, address and port (`tcp/203.0.113.10/80`), or a firewall-mark service by its mark
 * (`fwm/1/0` in a path, `{"protocol": "fwm", "fwmark": 1}` in a body). Used by admin.ts.
 */
import { z } from 'zod';
import { Fwd, fwmarkKey, FWMARK_MAX, type ServiceKey } from '../core/service.js';
import { tryParseIPv4 } from '../wire/addr.js';

/** A request's refusal: HTTP status, error code, message. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export const addr = z.string().refine((s) => tryParseIPv4(s) >= 0, { message: 'must be a dotted IPv4 address' });
export const port = z.number().int().min(0).max(65535);
export const protoName = z.enum(['tcp', 'udp']);

export const ServiceBody = z
  .object({
    protocol: protoName,
    address: addr,
    port,
    scheduler: z.string().min(1).max(15).default('wlc'),
    persistent: z.number().int().min(0).max(2678400).default(0),
    netmask: addr.optional(),
    schedFlags: z.array(z.enum(['flag-1', 'flag-2', 'flag-3', 'sh-fallback', 'sh-port', 'mh-fallback', 'mh-port', 'ulvs-exact'])).default([]),
    ops: z.boolean().default(false),
  })
  .strict();
export const ServiceEditBody = ServiceBody.omit({ protocol: true, address: true, port: true }).strict();
/** A firewall-mark service (ipvsadm -A -f MARK): the mark instead of an address and a port. */
export const fwmark = z.number().int().min(1).max(FWMARK_MAX);
export const FwmServiceBody = ServiceEditBody.extend({ protocol: z.literal('fwm'), fwmark }).strict();
/** The service a body names: <0, mark, 0> for `{protocol: 'fwm', fwmark}` (service.ts fwmarkKey). */
export const bodyKey = (b: { protocol: string; address?: string; port?: number; fwmark?: number }): ServiceKey =>
  b.protocol === 'fwm' ? fwmarkKey(b.fwmark!) : { proto: PROTO[b.protocol]!, addr: tryParseIPv4(b.address!), port: b.port! };
export const isFwmBody = (raw: unknown): boolean => typeof raw === 'object' && raw !== null && (raw as { protocol?: unknown }).protocol === 'fwm';
export const ServerBody = z
  .object({
    address: addr,
    port: port.optional(),
    weight: z.number().int().min(0).max(65535).default(1),
    method: z.enum(['masq', 'route', 'tunnel']).default('masq'),
    /** method 'tunnel': ipvsadm's --tun-type, --tun-port, --tun-nocsum|csum|remcsum */
    tunType: z.enum(['ipip', 'gue', 'gre']).default('ipip'),
    tunPort: z.number().int().min(0).max(65535).default(0),
    tunCsum: z.enum(['nocsum', 'csum', 'remcsum']).default('nocsum'),
    uThreshold: z.number().int().min(0).max(0x7fffffff).default(0),
    lThreshold: z.number().int().min(0).max(0x7fffffff).default(0),
  })
  .strict();
export const ServerEditBody = ServerBody.omit({ address: true, port: true }).strict();
export const TimeoutsBody = z.object({ tcp: z.number().int().min(0).optional(), tcpfin: z.number().int().min(0).optional(), udp: z.number().int().min(0).optional() }).strict();
export const ZeroBody = z.object({ service: z.union([z.object({ protocol: protoName, address: addr, port }).strict(), z.object({ protocol: z.literal('fwm'), fwmark }).strict()]).optional() }).strict();

export const METHOD: Record<string, number> = { masq: Fwd.MASQ, route: Fwd.DROUTE, tunnel: Fwd.TUNNEL };
const PROTO: Record<string, number> = { tcp: 6, udp: 17 };

export function serviceKeyFrom(proto: string, vip: string, p: string): ServiceKey {
  // a fwmark service's path: /v1/services/fwm/{mark}/0
  if (proto === 'fwm') {
    if (!/^\d{1,10}$/.test(vip) || Number(vip) < 1 || Number(vip) > FWMARK_MAX || p !== '0') throw new HttpError(404, 'not_found', `no such resource: ${proto}/${vip}/${p}`);
    return fwmarkKey(Number(vip));
  }
  const a = tryParseIPv4(vip);
  if (!(proto in PROTO) || a < 0 || !/^\d{1,5}$/.test(p) || Number(p) > 65535) throw new HttpError(404, 'not_found', `no such resource: ${proto}/${vip}/${p}`);
  return { proto: PROTO[proto]!, addr: a, port: Number(p) };
}
