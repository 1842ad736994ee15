/**
 * Rules files in `ipvsadm -S` format (ipvs-spec §6.8), read by `ulvsd --rules FILE`:
 *
 *   -A -t 203.0.113.10:80 -s rr
 *   -a -t 203.0.113.10:80 -r 192.0.2.11:8080 -m -w 1
 *
 * One command per line; a leading `ipvsadm` is ignored, blank lines and `#` comments are
 * skipped (ipvsadm -R itself rejects comments; ulvs accepts them). Numeric addresses only.
 * Supported: -A/--add-service and -a/--add-server with -t -u -f -s -p [secs] -M -b -o -r -m -g -i
 * -w -x -y (long forms too). The whole file is parsed before anything is applied; an error
 * names the file, the line and the offending word. (The full ipvsadm grammar is `ulvsadm`'s.)
 */
import { parseIPv4 } from '../wire/addr.js';
import type { DestSpec, ServiceSpec } from '../core/director.js';
import { Fwd, fwmarkKey, FWMARK_MAX, isFwmarkKey, schedFlagBit, schedFlagNames, TUN_FLAG_NAMES, TUN_TYPE_NAMES, TunFlags, TunType, type ServiceKey } from '../core/service.js';

export class RulesError extends Error {
  constructor(
    readonly file: string,
    readonly line: number,
    msg: string,
  ) {
    super(`${file}:${line}: ${msg}`);
  }
}

export interface Rules {
  services: ServiceSpec[];
  dests: { service: ServiceKey; dest: DestSpec }[];
}

function endpoint(s: string, what: string): { addr: number; port: number | null } {
  const m = /^(\d{1,3}(?:\.\d{1,3}){3})(?::(\d{1,5}))?$/.exec(s);
  if (!m) throw new Error(`illegal ${what} address[:port] specified: ${JSON.stringify(s)}`);
  const addr = parseIPv4(m[1]!);
  const port = m[2] === undefined ? null : Number(m[2]);
  if (port !== null && port > 65535) throw new Error(`illegal ${what} port ${port}`);
  return { addr, port };
}

function int(s: string | undefined, lo: number, hi: number, what: string): number {
  if (s === undefined || !/^\d+$/.test(s) || Number(s) < lo || Number(s) > hi) throw new Error(`illegal ${what} specified: ${JSON.stringify(s ?? '')}`);
  return Number(s);
}

/** Parse one line's words into a command. */
function parseLine(words: string[]): { kind: 'service'; spec: ServiceSpec } | { kind: 'dest'; service: ServiceKey; dest: DestSpec } {
  let cmd: 'A' | 'a' | null = null;
  let svc: { proto: number; addr: number; port: number } | null = null;
  let sched: string | undefined;
  let persistent = 0;
  let netmask: number | undefined;
  let schedFlags = 0;
  let ops = false;
  let rs: { addr: number; port: number | null } | null = null;
  let fwd: number = Fwd.DROUTE; // ipvsadm's default method
  let tunType: number = TunType.IPIP;
  let tunPort = 0;
  let tunFlags: number = TunFlags.NOCSUM;
  let weight = 1;
  let u = 0;
  let l = 0;
  for (let i = 0; i < words.length; i++) {
    const w = words[i]!;
    const next = () => {
      const v = words[++i];
      if (v === undefined) throw new Error(`option ${w} needs a value`);
      return v;
    };
    switch (w) {
      case '-A':
      case '--add-service':
      case '-a':
      case '--add-server':
        if (cmd) throw new Error(`only one command per line (${w})`);
        cmd = w === '-A' || w === '--add-service' ? 'A' : 'a';
        break;
      case '-t':
      case '--tcp-service':
      case '-u':
      case '--udp-service': {
        const e = endpoint(next(), 'virtual server');
        svc = { proto: w === '-t' || w === '--tcp-service' ? 6 : 17, addr: e.addr, port: e.port ?? 0 };
        break;
      }
      case '-f':
      case '--fwmark-service': {
        const v = next();
        if (!/^\d+$/.test(v) || Number(v) < 1 || Number(v) > FWMARK_MAX) throw new Error(`invalid fwmark value \`${v}' specified`);
        svc = fwmarkKey(Number(v));
        break;
      }
      case '-s':
      case '--scheduler':
        sched = next();
        break;
      case '-p':
      case '--persistent':
        persistent = words[i + 1] !== undefined && /^\d+$/.test(words[i + 1]!) ? int(next(), 1, 2678400, 'persistent timeout') : 360;
        break;
      case '-M':
      case '--netmask':
        netmask = parseIPv4(next());
        break;
      case '-b':
      case '--sched-flags':
        for (const f of next().split(',')) {
          const bit = schedFlagBit(f);
          if (bit === undefined) throw new Error(`invalid scheduler flag \`${f}'`);
          schedFlags |= bit;
        }
        break;
      case '-o':
      case '--ops':
        ops = true;
        break;
      case '-r':
      case '--real-server':
        rs = endpoint(next(), 'real server');
        break;
      case '-m':
      case '--masquerading':
        fwd = Fwd.MASQ;
        break;
      case '-g':
      case '--gatewaying':
        fwd = Fwd.DROUTE;
        break;
      case '-i':
      case '--ipip':
        fwd = Fwd.TUNNEL;
        break;
      case '--tun-type': {
        const t = TUN_TYPE_NAMES.indexOf(next() as (typeof TUN_TYPE_NAMES)[number]);
        if (t < 0) throw new Error('illegal tunnel type specified');
        tunType = t;
        break;
      }
      case '--tun-port':
        tunPort = int(next(), 1, 65535, 'tunnel port');
        break;
      case '--tun-nocsum':
      case '--tun-csum':
      case '--tun-remcsum':
        tunFlags = TUN_FLAG_NAMES.indexOf(w.slice(6) as (typeof TUN_FLAG_NAMES)[number]);
        break;
      case '-w':
      case '--weight':
        weight = int(next(), 0, 65535, 'weight');
        break;
      case '-x':
      case '--u-threshold':
        u = int(next(), 0, 2147483647, 'u_threshold');
        break;
      case '-y':
      case '--l-threshold':
        l = int(next(), 0, 2147483647, 'l_threshold');
        break;
      default:
        throw new Error(`unexpected argument ${w}`);
    }
  }
  if (!cmd) throw new Error('no command (-A or -a)');
  if (!svc) throw new Error("You need to supply the 'service-address' option");
  if (cmd === 'A') {
    if (rs) throw new Error("Illegal 'real-server' option with the 'add-service' command");
    const spec: ServiceSpec = { ...svc, scheduler: sched ?? 'wlc', persistent, schedFlags, ops };
    if (netmask !== undefined) spec.netmask = netmask;
    return { kind: 'service', spec };
  }
  if (!rs) throw new Error("You need to supply the 'real-server' option for the 'add-server' command");
  return { kind: 'dest', service: { proto: svc.proto, addr: svc.addr, port: svc.port }, dest: { addr: rs.addr, port: fwd === Fwd.MASQ || isFwmarkKey(svc) ? (rs.port ?? svc.port) : svc.port, weight, fwd, tunType, tunPort, tunFlags, uThreshold: u, lThreshold: l } };
}

export function parseRules(text: string, file = '<rules>'): Rules {
  const out: Rules = { services: [], dests: [] };
  text.split('\n').forEach((raw, idx) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    const words = line.split(/[ \t\r]+/).filter((w) => w !== 'ipvsadm');
    try {
      const r = parseLine(words);
      if (r.kind === 'service') out.services.push(r.spec);
      else out.dests.push({ service: r.service, dest: r.dest });
    } catch (e) {
      throw new RulesError(file, idx + 1, (e as Error).message);
    }
  });
  return out;
}

const diff32 = (a: number, b: number) => ((a - b) | 0);
const protoOpt = (p: number) => (p === 6 ? '-t' : '-u');
/** A service as ipvsadm -S names it: `-t 203.0.113.10:80`, or `-f 1` for a fwmark service. */
const serviceOpt = (s: ServiceKey) => (isFwmarkKey(s) ? `-f ${s.addr >>> 0}` : `${protoOpt(s.proto)} ${ep(s.addr >>> 0, s.port)}`);
const ep = (a: number, p: number) => `${a >>> 24}.${(a >>> 16) & 255}.${(a >>> 8) & 255}.${a & 255}:${p}`;

/**
 * `ipvsadm -S -n` text for a rule set (ipvs-spec §6.8), sorted as ipvsadm sorts. Like ipvsadm,
 * thresholds (-x/-y) are not saved.
 */
export function formatRules(r: Rules): string {
  const out: string[] = [];
  const mark = (s: ServiceKey) => (isFwmarkKey(s) ? s.addr >>> 0 : 0); // fwmark services last, by mark
  const svcs = [...r.services].sort((a, b) => mark(a) - mark(b) || a.proto - b.proto || diff32(a.addr >>> 0, b.addr >>> 0) || a.port - b.port);
  for (const s of svcs) {
    const svc = serviceOpt(s);
    let line = `-A ${svc} -s ${s.scheduler ?? 'wlc'}`;
    if (s.persistent) {
      line += ` -p ${s.persistent}`;
      if (s.netmask !== undefined && s.netmask >>> 0 !== 0xffffffff) line += ` -M ${ep(s.netmask >>> 0, 0).slice(0, -2)}`;
    }
    if (s.ops) line += ' -o';
    const f = s.schedFlags ?? 0;
    if (f) line += ` -b ${schedFlagNames(s.scheduler ?? 'wlc', f).join(',')}`;
    out.push(line);
    const ds = r.dests.filter((x) => x.service.proto === s.proto && x.service.addr >>> 0 === s.addr >>> 0 && x.service.port === s.port).sort((a, b) => diff32(a.dest.addr >>> 0, b.dest.addr >>> 0) || a.dest.port - b.dest.port);
    for (const x of ds) {
      const m = x.dest.fwd === Fwd.MASQ ? '-m' : x.dest.fwd === Fwd.TUNNEL ? '-i' : '-g';
      out.push(`-a ${svc} -r ${ep(x.dest.addr >>> 0, x.dest.port)} ${m} -w ${x.dest.weight ?? 1}${x.dest.fwd === Fwd.TUNNEL ? tunnelRule(x.dest) : ''}`);
    }
  }
  return out.length ? `${out.join('\n')}\n` : '';
}

/** ipvsadm -S's tunnel options of a -i server: ` --tun-type ipip`, ` --tun-type gue --tun-port P
 *  --tun-<csum mode>`, ` --tun-type gre --tun-<csum mode>`. */
function tunnelRule(d: DestSpec): string {
  const type = d.tunType ?? TunType.IPIP;
  const csum = ` --tun-${TUN_FLAG_NAMES[d.tunFlags ?? 0]}`;
  if (type === TunType.GUE) return ` --tun-type gue --tun-port ${d.tunPort ?? 0}${csum}`;
  if (type === TunType.GRE) return ` --tun-type gre${csum}`;
  return ' --tun-type ipip';
}
