/**
 * The admin API (issue 4): HTTP/JSON, served by ulvsd on a Unix socket (so
 * `curl --unix-socket /run/ulvs/ulvs.sock http://ulvs/v1/services` works).
 *
 *   GET    /v1/services                                   services, servers, counters, rates
 *   POST   /v1/services                                   add a service          (ipvsadm -A)
 *   DELETE /v1/services                                   delete every service   (ipvsadm -C)
 *   GET    /v1/services/{tcp|udp}/{vip}/{port}            one service
 *   PUT    /v1/services/{tcp|udp}/{vip}/{port}            replace its settings   (ipvsadm -E)
 *   DELETE /v1/services/{tcp|udp}/{vip}/{port}            delete it              (ipvsadm -D)
 *   POST   /v1/services/{..}/servers                      add a real server      (ipvsadm -a)
 *   PUT    /v1/services/{..}/servers/{addr}/{port}        replace its settings   (ipvsadm -e)
 *   DELETE /v1/services/{..}/servers/{addr}/{port}        delete it              (ipvsadm -d)
 *   GET    /v1/connections                                the connection table   (ipvsadm -Lc)
 *   GET    /v1/timeouts    PUT /v1/timeouts               tcp tcpfin udp         (ipvsadm --set)
 *   GET    /v1/sysctl      PUT /v1/sysctl {name: value}   net.ipv4.vs.* (control/sysctl-api.ts)
 *   POST   /v1/zero        body {} or {service: {...}}    zero counters          (ipvsadm -Z)
 *   GET    /v1/rules       PUT /v1/rules (text/plain)     save / restore, ipvsadm -S format
 *   POST   /v1/reload                                     re-read the rules file (as SIGHUP);
 *                                                         400 rules_invalid if it is refused
 *   GET    /v1/counters                                   engine and data-path counters
 *   GET    /v1/proc/{ip_vs|ip_vs_stats|ip_vs_conn}        the kernel's /proc/net texts, exact
 *   GET    /v1/snapshot                                   the engine's snapshot as is (numeric
 *                                                         addresses; what ulvsadm formats)
 *   GET    /v1/explain?…  /v1/trace?…                     a flow's server and why (explain-api.ts), live trace (trace-api.ts)
 *   GET    /v1/vrrp                                       keepalived's VRRP states as ulvsd follows
 *                                                         them, the sync daemon's role (404 if none)
 *   GET|POST /v1/daemon, DELETE /v1/daemon/{master|backup}  sync daemons (-L --daemon,
 *                                                         --start-daemon, --stop-daemon)
 *
 * Every configuration change is a mutation of the *current* rules (rule-edits.ts), evaluated by
 * the control plane inside its serial section, so concurrent requests never lose one another's
 * changes; the control plane validates the resulting set whole on a scratch engine before
 * applying only the difference: a rejected request changes nothing. A request is first checked
 * against the rules as they are when it arrives (so a missing service is reported before a bad
 * body, as before), then again inside the mutation, where a request that lost a race gets its
 * own error (EEXIST, ESRCH, ENOENT) exactly as if it had come after the winner. Errors: {"error": {"code", "message"}} with a stable code: an IPVS errno
 * (EEXIST 409, ESRCH/ENOENT 404, EINVAL/ERANGE/EOPNOTSUPP 400) or bad_json, body_too_large
 * (413), validation (400, unknown fields and wrong types included), not_found, bad_method; the
 * limits on requests and connections, and their errors, are admin-limits.ts's.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { z } from 'zod';
import { bodyKey, FwmServiceBody, HttpError, isFwmBody, METHOD, ServerBody, ServerEditBody, ServiceBody, ServiceEditBody, serviceKeyFrom, TimeoutsBody, ZeroBody } from './admin-bodies.js';
import type { ConnInfo, DestSpec, DirectorSnapshot, ServiceSpec, Timeouts } from '../core/director.js';
import { IpvsError } from '../core/errors.js';
import { Fwd, FWD_NAMES, isFwmarkKey, SCHED_FLAG_BITS, SvcFlag, TUN_FLAG_NAMES, TUN_TYPE_NAMES, type ServiceKey } from '../core/service.js';
import { formatIPv4, tryParseIPv4 } from '../wire/addr.js';
import { formatRules, parseRules, type Rules } from './rules.js';
import * as edit from './rule-edits.js';
import { procIpVs, procIpVsConn, procIpVsStats } from '../metrics/proc.js';
import { DaemonBody, type AdminDaemons } from './daemon-listing.js';
import { explainRequest, type ExplainBackend } from './explain-api.js';
import { serveTrace, type TraceBackend } from './trace-api.js';
import { sysctlRequest, SysctlBody, type AdminSysctls } from './sysctl-api.js';
import { ADMIN_LIMITS, guardServer, limitRequests, newAdminCounters, serverOptions, type AdminCounters, type AdminLimits } from './admin-limits.js';

/** What the daemon offers the API. All configuration changes go through mutate. */
export interface AdminControlPlane {
  /** the rules in force now */
  rules(): Rules;
  /**
   * Run `fn` on the rules current inside the serial section, validate its result whole, apply
   * the difference. Throws what `fn` throws, or the validation's IpvsError/Error; either way
   * nothing changed.
   */
  mutate(fn: (current: Rules) => Rules): Promise<void>;
  snapshot(): Promise<DirectorSnapshot>;
  connections(): Promise<ConnInfo[]>;
  timeouts(): Promise<Timeouts>;
  setTimeouts(t: Partial<Timeouts>): Promise<void>;
  zero(service?: ServiceKey): Promise<void>;
  /** engine and data-path counters, sent as JSON as they are */
  counters(): Promise<object>;
  reload(): Promise<string>;
  /** keepalived mode with a notify FIFO: the VRRP states and sync role (daemon/vrrp-roles.ts), else null */
  vrrp?: () => object | null;
  /** the connection-sync daemons (daemon/sync-daemon.ts) */
  daemons?: AdminDaemons;
  sysctls?: AdminSysctls;
  /** the engine owning a flow explains it (explain-api.ts); the workers trace (trace-api.ts) */
  explain?: ExplainBackend;
  trace?: TraceBackend;
}

export const MAX_BODY = ADMIN_LIMITS.maxBody;

/** The status of an IpvsError: a request's own refusal (EEXIST 409, ESRCH/ENOENT 404, else 400);
 *  ENOSPC (the director has no room for the change: scheduler slots) 507 Insufficient Storage. */
const statusOf = (e: IpvsError) => (e.code === 'EEXIST' || e.code === 'EBUSY' ? 409 : e.code === 'ESRCH' || e.code === 'ENOENT' ? 404 : e.code === 'ENOSPC' ? 507 : 400);

function parseBody<S extends z.ZodTypeAny>(schema: S, raw: unknown): z.output<S> {
  const r = schema.safeParse(raw);
  if (!r.success) {
    const i = r.error.issues[0]!;
    throw new HttpError(400, 'validation', `${i.path.join('.') || 'body'}: ${i.message}`);
  }
  return r.data as z.output<S>;
}

function serviceSpec(key: ServiceKey, b: z.infer<typeof ServiceEditBody>): ServiceSpec {
  const spec: ServiceSpec = { ...key, scheduler: b.scheduler, persistent: b.persistent, schedFlags: b.schedFlags.reduce((f, n) => f | SCHED_FLAG_BITS[n]!, 0), ops: b.ops };
  if (b.netmask !== undefined) spec.netmask = tryParseIPv4(b.netmask);
  return spec;
}
function destSpec(addrN: number, portN: number, b: z.infer<typeof ServerEditBody>): DestSpec {
  const tun = { tunType: TUN_TYPE_NAMES.indexOf(b.tunType), tunPort: b.tunPort, tunFlags: TUN_FLAG_NAMES.indexOf(b.tunCsum) };
  return { addr: addrN, port: portN, weight: b.weight, fwd: METHOD[b.method]!, ...tun, uThreshold: b.uThreshold, lThreshold: b.lThreshold };
}

/** JSON form of a snapshot: addresses as text, names instead of flag bits. */
export function servicesJson(s: DirectorSnapshot) {
  return s.services.map((x) => ({
    ...(isFwmarkKey(x) ? { protocol: 'fwm', fwmark: x.addr >>> 0 } : { protocol: x.proto === 6 ? 'tcp' : 'udp', address: formatIPv4(x.addr), port: x.port }),
    scheduler: x.scheduler,
    persistent: x.flags & SvcFlag.PERSISTENT ? x.timeout : 0,
    netmask: formatIPv4(x.netmask),
    ops: (x.flags & SvcFlag.ONEPACKET) !== 0,
    counters: x.counters,
    rates: x.rates,
    servers: x.dests.map((d) => ({
      address: formatIPv4(d.addr),
      port: d.port,
      method: (FWD_NAMES[d.fwd] ?? 'Masq').toLowerCase(),
      ...(d.fwd === Fwd.TUNNEL && { tunType: TUN_TYPE_NAMES[d.tunType], tunPort: d.tunPort, tunCsum: TUN_FLAG_NAMES[d.tunFlags] }),
      weight: d.weight,
      uThreshold: d.uThreshold,
      lThreshold: d.lThreshold,
      activeConns: d.activeConns,
      inactConns: d.inactConns,
      persistConns: d.persistConns,
      unanswered: d.unanswered,
      counters: d.counters,
      rates: d.rates,
    })),
  }));
}

async function readBody(req: IncomingMessage): Promise<string> {
  let size = 0;
  const chunks: Buffer[] = [];
  for await (const c of req as AsyncIterable<Buffer>) {
    size += c.length;
    if (size > MAX_BODY) throw new HttpError(413, 'body_too_large', `request body over ${MAX_BODY} bytes`);
    chunks.push(c);
  }
  return Buffer.concat(chunks).toString('utf8');
}
async function readJson(req: IncomingMessage): Promise<unknown> {
  const text = await readBody(req);
  if (text.trim() === '') return {};
  try {
    return JSON.parse(text) as unknown;
  } catch (e) {
    throw new HttpError(400, 'bad_json', `request body is not JSON: ${(e as Error).message}`);
  }
}


/** `limits` and `counters`: admin-limits.ts (the counters are in GET /v1/counters as `admin`). */
export function createAdminServer(cp: AdminControlPlane, limits: AdminLimits = ADMIN_LIMITS, counters: AdminCounters = newAdminCounters()): Server {
  /**
   * Apply `fn` to the current rules. Its own refusals keep their status (409/404: the request
   * lost a race, or came after the change it needed undone); an IpvsError from validating the
   * result is the client's: 400, errno as code.
   */
  const apply = async (fn: (current: Rules) => Rules): Promise<void> => {
    const own = (cur: Rules): Rules => {
      try {
        return fn(cur);
      } catch (e) {
        throw e instanceof IpvsError ? new HttpError(statusOf(e), e.code, e.message) : e;
      }
    };
    try {
      await cp.mutate(own);
    } catch (e) {
      if (e instanceof IpvsError) throw new HttpError(e.code === 'ENOSPC' ? 507 : 400, e.code, e.message);
      throw e;
    }
  };
  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', 'http://ulvs');
    const parts = url.pathname.split('/').filter(Boolean);
    const m = req.method ?? 'GET';
    const send = (status: number, body: unknown) => {
      const text = typeof body === 'string' ? body : `${JSON.stringify(body)}\n`;
      res.writeHead(status, { 'content-type': typeof body === 'string' ? 'text/plain; charset=utf-8' : 'application/json' });
      res.end(text);
    };
    if (parts[0] !== 'v1') throw new HttpError(404, 'not_found', `no such resource: ${url.pathname}`);
    const [, res1, ...rest] = parts;
    const bad = () => new HttpError(405, 'bad_method', `${m} is not allowed on ${url.pathname}`);
    const rules = cp.rules();

    if (res1 === 'services' && rest.length === 0) {
      if (m === 'GET') return send(200, servicesJson(await cp.snapshot()));
      if (m === 'DELETE') {
        await apply(() => ({ services: [], dests: [] }));
        return send(200, { ok: true });
      }
      if (m === 'POST') {
        const raw = await readJson(req);
        const b = isFwmBody(raw) ? parseBody(FwmServiceBody, raw) : parseBody(ServiceBody, raw);
        const key = bodyKey(b);
        if (edit.hasService(rules, key)) throw new IpvsError('EEXIST', 'Service already exists');
        await apply((cur) => edit.addService(cur, serviceSpec(key, b)));
        return send(201, { ok: true });
      }
      throw bad();
    }
    if (res1 === 'services' && rest.length >= 3) {
      const key = serviceKeyFrom(rest[0]!, rest[1]!, rest[2]!);
      const exists = edit.hasService(rules, key);
      if (rest.length === 3) {
        if (m === 'GET') {
          const snap = await cp.snapshot();
          const one = servicesJson({ ...snap, services: snap.services.filter((s) => edit.sameService(s, key)) });
          if (one.length === 0) throw new IpvsError('ESRCH', 'No such service');
          return send(200, one[0]);
        }
        if (!exists && (m === 'PUT' || m === 'DELETE')) throw new IpvsError('ESRCH', 'No such service');
        if (m === 'PUT') {
          const b = parseBody(ServiceEditBody, await readJson(req));
          await apply((cur) => edit.editService(cur, serviceSpec(key, b)));
          return send(200, { ok: true });
        }
        if (m === 'DELETE') {
          await apply((cur) => edit.deleteService(cur, key));
          return send(200, { ok: true });
        }
        throw bad();
      }
      if (rest[3] === 'servers') {
        if (!exists) throw new IpvsError('ESRCH', 'Service not defined');
        if (rest.length === 4 && m === 'POST') {
          const b = parseBody(ServerBody, await readJson(req));
          const d = destSpec(tryParseIPv4(b.address), b.port ?? key.port, b);
          if (edit.hasDest(rules, key, d.addr, d.port)) throw new IpvsError('EEXIST', 'Destination already exists');
          await apply((cur) => edit.addDest(cur, key, d));
          return send(201, { ok: true });
        }
        if (rest.length === 6) {
          const a = tryParseIPv4(rest[4]!);
          const p = /^\d{1,5}$/.test(rest[5]!) ? Number(rest[5]) : -1;
          if (a < 0 || p < 0 || !edit.hasDest(rules, key, a, p)) throw new IpvsError('ENOENT', 'No such destination');
          if (m === 'PUT') {
            const b = parseBody(ServerEditBody, await readJson(req));
            await apply((cur) => edit.editDest(cur, key, destSpec(a, p, b)));
            return send(200, { ok: true });
          }
          if (m === 'DELETE') {
            await apply((cur) => edit.deleteDest(cur, key, a, p));
            return send(200, { ok: true });
          }
          throw bad();
        }
      }
    }
    if (res1 === 'connections' && rest.length === 0 && m === 'GET') {
      const list = await cp.connections();
      return send(
        200,
        list.map((c) => ({ ...c, protocol: c.template && c.proto === 0 ? 'ip' : c.proto === 6 ? 'tcp' : 'udp', client: `${formatIPv4(c.caddr)}:${c.cport}`, virtual: `${formatIPv4(c.vaddr)}:${c.vport}`, server: `${formatIPv4(c.daddr)}:${c.dport}` })),
      );
    }
    if (res1 === 'timeouts' && rest.length === 0) {
      if (m === 'GET') return send(200, await cp.timeouts());
      if (m === 'PUT') {
        await cp.setTimeouts(parseBody(TimeoutsBody, await readJson(req)));
        return send(200, await cp.timeouts());
      }
      throw bad();
    }
    if (res1 === 'zero' && rest.length === 0 && m === 'POST') {
      const b = parseBody(ZeroBody, await readJson(req));
      if (b.service) {
        const key = bodyKey(b.service);
        if (!edit.hasService(rules, key)) throw new IpvsError('ESRCH', 'No such service');
        await cp.zero(key);
      } else await cp.zero();
      return send(200, { ok: true });
    }
    if (res1 === 'rules' && rest.length === 0) {
      if (m === 'GET') return send(200, formatRules(rules));
      if (m === 'PUT') {
        let next: Rules;
        try {
          next = parseRules(await readBody(req), 'request');
        } catch (e) {
          if (e instanceof HttpError) throw e;
          throw new HttpError(400, 'validation', (e as Error).message);
        }
        await apply(() => next);
        return send(200, { ok: true });
      }
      throw bad();
    }
    if (res1 === 'reload' && rest.length === 0 && m === 'POST') {
      try {
        return send(200, { ok: true, message: await cp.reload() });
      } catch (e) {
        throw new HttpError(400, 'rules_invalid', `reload refused, running rules unchanged: ${(e as Error).message}`);
      }
    }
    if (res1 === 'counters' && rest.length === 0 && m === 'GET') return send(200, { ...(await cp.counters()), admin: counters });
    if (res1 === 'snapshot' && rest.length === 0 && m === 'GET') return send(200, await cp.snapshot());
    if (res1 === 'explain' && rest.length === 0 && m === 'GET' && cp.explain) return send(200, await explainRequest(cp.explain, url.searchParams));
    if (res1 === 'trace' && rest.length === 0 && m === 'GET' && cp.trace) return serveTrace(cp.trace, url.searchParams, req, res);
    if (res1 === 'vrrp' && rest.length === 0 && m === 'GET') {
      const v = cp.vrrp?.() ?? null;
      if (v === null) throw new HttpError(404, 'not_found', 'ulvsd follows no VRRP: it needs --keepalived FILE with notify_fifo PATH in global_defs');
      return send(200, v);
    }
    if (res1 === 'daemon' && cp.daemons) {
      if (rest.length === 0 && m === 'GET') return send(200, cp.daemons.status());
      if (rest.length === 0 && m === 'POST') {
        await cp.daemons.start(parseBody(DaemonBody, await readJson(req)));
        return send(201, { ok: true, daemons: cp.daemons.status() });
      }
      if (rest.length !== 1 || (rest[0] !== 'master' && rest[0] !== 'backup') || m !== 'DELETE') throw bad();
      await cp.daemons.stop(rest[0]);
      return send(200, { ok: true });
    }
    if (res1 === 'sysctl' && rest.length === 0 && cp.sysctls && (m === 'GET' || m === 'PUT')) return send(200, await sysctlRequest(cp.sysctls, m === 'PUT' ? parseBody(SysctlBody, await readJson(req)) : null));
    if (res1 === 'proc' && rest.length === 1 && m === 'GET') {
      if (rest[0] === 'ip_vs') return send(200, procIpVs(await cp.snapshot()));
      if (rest[0] === 'ip_vs_stats') return send(200, procIpVsStats((await cp.snapshot()).totals));
      if (rest[0] === 'ip_vs_conn') return send(200, procIpVsConn(await cp.connections()));
    }
    throw new HttpError(404, 'not_found', `no such resource: ${m} ${url.pathname}`);
  };

  const onError = (req: IncomingMessage, res: ServerResponse) => (e: unknown) => {
    let status = 500;
    let code = 'internal';
    const message = (e as Error).message;
    if (e instanceof HttpError) {
      status = e.status;
      code = e.code;
    } else if (e instanceof IpvsError) {
      code = e.code;
      status = statusOf(e);
    }
    if (!res.headersSent) {
      res.writeHead(status, { 'content-type': 'application/json', connection: 'close' });
      res.end(`${JSON.stringify({ error: { code, message } })}\n`);
    } else res.destroy();
    if (status === 413) req.destroy();
    if (status === 507) counters.no_space++;
  };
  const server = createServer(serverOptions(limits), limitRequests(limits, counters, (req, res) => void handle(req, res).catch(onError(req, res))));
  guardServer(server, limits, counters);
  return server;
}
