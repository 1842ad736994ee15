/**
 * The command line of `ulvs rs-setup` (pure: no I/O). A bad command line is a UsageError, which
 * the CLI turns into exit status 2 before anything is changed.
 *
 *   ulvs rs-setup dr VIP [VIP...]
 *   ulvs rs-setup tun [--tun-type ipip|gue|gre] [--tun-port N] [--decap auto|tunl0|bpf] VIP [VIP...]
 *   ulvs rs-setup --remove | --status
 *   common: --dev IFACE (repeatable; default: every Ethernet interface)
 *
 * --tun-type and --tun-port follow ipvsadm's spelling (dest options of the director): ipip is
 * the default, gue needs --tun-port. --decap chooses the decapsulator for ipip: the kernel's
 * tunl0 where the ipip module is available (auto, the default) or ulvs's eBPF program (bpf);
 * GUE and GRE are always the eBPF program (the kernel's ways, `ip fou add` and gre0, need the
 * fou and ip_gre modules).
 */
export class UsageError extends Error {}

export const RS_USAGE = `usage: ulvs rs-setup dr [--dev IFACE]... VIP [VIP...]
       ulvs rs-setup tun [--tun-type ipip|gue|gre] [--tun-port PORT] [--decap auto|tunl0|bpf] [--dev IFACE]... VIP [VIP...]
       ulvs rs-setup --remove
       ulvs rs-setup --status
Prepares this host (its network namespace) as an LVS real server for direct routing or
tunnelling: each VIP /32 on lo, arp_ignore=1, arp_announce=2, strict rp_filter made loose,
and for tun a decapsulator (tunl0, or ulvs's eBPF program at the interfaces' tcx ingress).
--remove restores what it changed, from the state it recorded.
`;

export type RsCommand =
  | { action: 'setup'; mode: 'dr' | 'tun'; tunType: 'ipip' | 'gue' | 'gre'; tunPort: number; decap: 'auto' | 'tunl0' | 'bpf'; devs: string[]; vips: string[] }
  | { action: 'remove' }
  | { action: 'status' };

/** Dotted-quad IPv4 without leading zeros (so no octal reading), each part 0..255. */
export function isIPv4(s: string): boolean {
  const parts = s.split('.');
  return parts.length === 4 && parts.every((p) => /^(0|[1-9]\d{0,2})$/.test(p) && Number(p) <= 255);
}

/** Interface names the kernel accepts: 1..15 bytes, no '/', no whitespace (dev_valid_name). */
const isIfName = (s: string) => /^[A-Za-z0-9_.:@+-]{1,15}$/.test(s) && s !== '.' && s !== '..';

export function parseRsSetup(argv: readonly string[]): RsCommand {
  if (argv.length === 1 && argv[0] === '--remove') return { action: 'remove' };
  if (argv.length === 1 && argv[0] === '--status') return { action: 'status' };
  if (argv.includes('--remove') || argv.includes('--status')) throw new UsageError('--remove and --status take no other arguments');
  const [mode, ...rest] = argv;
  if (mode !== 'dr' && mode !== 'tun') throw new UsageError(mode === undefined ? 'say dr or tun (or --remove, --status)' : `unknown forwarding method '${mode}': dr or tun`);
  let tunType: 'ipip' | 'gue' | 'gre' | undefined;
  let tunPort: number | undefined;
  let decap: 'auto' | 'tunl0' | 'bpf' | undefined;
  const devs: string[] = [];
  const vips: string[] = [];
  for (let i = 0; i < rest.length; i++) {
    const a = rest[i]!;
    const value = () => {
      const v = rest[++i];
      if (v === undefined) throw new UsageError(`${a} needs a value`);
      return v;
    };
    if (a === '--tun-type') {
      const v = value();
      if (v !== 'ipip' && v !== 'gue' && v !== 'gre') throw new UsageError(`unknown tunnel type '${v}': ipip, gue or gre`);
      tunType = v;
    } else if (a === '--tun-port') {
      const v = value();
      if (!/^[1-9]\d{0,4}$/.test(v) || Number(v) > 65535) throw new UsageError(`--tun-port: '${v}' is not a port number (1..65535)`);
      tunPort = Number(v);
    } else if (a === '--decap') {
      const v = value();
      if (v !== 'auto' && v !== 'tunl0' && v !== 'bpf') throw new UsageError(`--decap: '${v}' is not auto, tunl0 or bpf`);
      decap = v;
    } else if (a === '--dev') {
      const v = value();
      if (!isIfName(v) || v === 'lo') throw new UsageError(`--dev: '${v}' is not an interface name (lo is not one of the interfaces meant)`);
      if (!devs.includes(v)) devs.push(v);
    } else if (a.startsWith('-')) {
      throw new UsageError(`unknown option '${a}'`);
    } else {
      if (!isIPv4(a)) throw new UsageError(`'${a}' is not an IPv4 address`);
      if (a === '0.0.0.0' || a === '255.255.255.255' || a.startsWith('127.') || Number(a.split('.')[0]) >= 224) throw new UsageError(`${a} cannot be a VIP (unspecified, loopback, multicast or reserved)`);
      if (!vips.includes(a)) vips.push(a);
    }
  }
  if (vips.length === 0) throw new UsageError('no VIP given');
  if (mode === 'dr' && (tunType !== undefined || tunPort !== undefined || decap !== undefined)) throw new UsageError('--tun-type, --tun-port and --decap are for tun only');
  const type = tunType ?? 'ipip';
  if (type === 'gue' && tunPort === undefined) throw new UsageError('--tun-type gue needs --tun-port PORT (the director\'s GUE port)');
  if (type !== 'gue' && tunPort !== undefined) throw new UsageError('--tun-port is for --tun-type gue only');
  if (type !== 'ipip' && decap === 'tunl0') throw new UsageError(`--decap tunl0 decapsulates ipip only; ${type.toUpperCase()} uses the eBPF program`);
  return { action: 'setup', mode, tunType: type, tunPort: tunPort ?? 0, decap: decap ?? 'auto', devs, vips };
}
