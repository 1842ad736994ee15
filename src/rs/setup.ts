/**
 * `ulvs rs-setup`: prepares this host's network namespace as an LVS real server for direct
 * routing (dr) or tunnelling (tun), records every change, and undoes exactly those changes
 * (reference: /work/shared/reference/dr-tun-local-vip.md §1.2, §2.4).
 *
 *   - each VIP as a /32 on lo (on a loopback device the kernel makes the whole prefix local, so
 *     only /32; a VIP already there is left alone and not removed later);
 *   - arp_ignore=1 (answer ARP only for addresses of the receiving interface: the VIP on lo is
 *     never announced) and arp_announce=2 (never put the VIP in ARP requests) on `all` and on
 *     the interfaces; the kernel uses the maximum of all and the interface;
 *   - rp_filter: strict (1) becomes loose (2) on `all` and on the interfaces (tunl0 too): a
 *     decapsulated packet, or a DR packet, arrives with the client's source on an interface its
 *     route back may not use; 0 and 2 are left as they are;
 *   - tun: the kernel's tunl0 (ipip module) set up, where it exists or `modprobe ipip` makes it;
 *     otherwise (or --decap bpf, or GUE, or GRE) ulvs's decapsulation program (decap.ts) at the tcx
 *     ingress of the interfaces, which stays attached after this command ends.
 *
 * The record is a JSON file per network namespace (/run/ulvs/rs-setup-<netns inode>.json:
 * several namespaces of one host are several real servers). A failure part-way undoes the
 * steps already done; `--remove` undoes in reverse order and deletes the record.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, renameSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { closeFd } from '../datapath/tun/fastpath.js';
import { attachDecap, detachDecap, DECAP_PROG, findDecap, loadDecap, readDecap } from './decap.js';
import { netnsCookie } from '../datapath/tun/netns-cookie.js';
import { parseRsSetup, RS_USAGE, UsageError, type RsCommand } from './options.js';

export const STATE_DIR = '/run/ulvs';

/** One sysctl of net.ipv4.conf.<conf>.<name>, as changed. */
interface SysctlChange {
  conf: string;
  name: string;
  old: string;
  now: string;
}

/** What a set-up changed, as recorded in the state file. */
export interface RsState {
  version: 1;
  mode: 'dr' | 'tun';
  tunType: 'ipip' | 'gue' | 'gre';
  tunPort: number;
  vips: string[];
  /** VIPs this command added to lo (the others were there before) */
  addedVips: string[];
  sysctls: SysctlChange[];
  /** the eBPF decapsulator: program id and where it is attached */
  decap: { progId: number; devs: { name: string; ifindex: number }[] } | null;
  /** tunl0 used for IPIP; whether it was up before */
  tunl0: { wasUp: boolean } | null;
  /** the namespace's cookie (netns-cookie.ts): the record's file is named by the namespace's
   *  inode number, which a new namespace reuses once this one is gone; absent in older records
   *  and where the kernel has no cookie */
  netnsCookie?: string | null;
}

type Say = (line: string) => void;

/** The state file of the network namespace with inode number `netnsInode` (stat of /proc/PID/ns/net or /run/netns/NAME). */
export function statePathOf(netnsInode: number): string {
  return `${STATE_DIR}/rs-setup-${netnsInode}.json`;
}

/** The state file of the network namespace this process is in. */
export function statePath(): string {
  return statePathOf(statSync('/proc/self/ns/net').ino);
}

/**
 * The record at `path` if it belongs to this network namespace, else null. A record whose
 * namespace cookie is not this namespace's was left by a namespace that no longer exists (a
 * real server's container removed without --remove) and whose inode number this namespace got:
 * what it says was done there, not here, so nothing of it is undone; it is deleted, and said so.
 */
function readRecord(path: string, say: Say, discard = true): RsState | null {
  if (!existsSync(path)) return null;
  const state = JSON.parse(readFileSync(path, 'utf8')) as RsState;
  const here = netnsCookie();
  if (state.netnsCookie && here && state.netnsCookie !== here) {
    const why = `it was left by a network namespace that no longer exists (namespace cookie ${state.netnsCookie}, this one's is ${here}; the inode number was reused)`;
    if (!discard) say(`the record ${path} is not this namespace's: ${why}; set-up or --remove discards it`);
    else {
      unlinkSync(path);
      say(`discarded the record ${path}: ${why}; nothing of it is undone here`);
    }
    return null;
  }
  return state;
}

function run(argv: string[]): string {
  try {
    return execFileSync(argv[0]!, argv.slice(1), { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (e) {
    const err = e as { stderr?: string; message: string };
    throw new Error(`${argv.join(' ')} failed: ${String(err.stderr ?? err.message).trim()}`);
  }
}

const sysctlFile = (conf: string, name: string) => `/proc/sys/net/ipv4/conf/${conf}/${name}`;
const sysctlName = (conf: string, name: string) => `net.ipv4.conf.${conf.replace(/\./g, '/')}.${name}`;
const readSysctl = (conf: string, name: string) => readFileSync(sysctlFile(conf, name), 'utf8').trim();
const writeSysctl = (conf: string, name: string, v: string) => writeFileSync(sysctlFile(conf, name), `${v}\n`);

interface Link {
  ifindex: number;
  ifname: string;
  link_type: string;
  flags: string[];
}
const links = (): Link[] => JSON.parse(run(['ip', '-j', 'link', 'show'])) as Link[];
const loHas = (vip: string): boolean =>
  (JSON.parse(run(['ip', '-j', 'addr', 'show', 'dev', 'lo'])) as { addr_info: { family: string; local: string; prefixlen: number }[] }[]).some((l) =>
    l.addr_info.some((a) => a.family === 'inet' && a.local === vip && a.prefixlen === 32),
  );

/** tunl0 exists, or `modprobe ipip` creates it (fallback devices exist per namespace unless net.core.fb_tunnels_only_for_init_net says otherwise). */
function tunl0Available(): boolean {
  const has = () => links().some((l) => l.ifname === 'tunl0');
  if (has()) return true;
  try {
    execFileSync('modprobe', ['ipip'], { stdio: 'ignore' });
  } catch {
    return false; // no modprobe, no module, or not allowed
  }
  return has();
}

/** Set up; returns the record. Throws (after undoing its own steps) on failure. */
export function setup(cmd: Extract<RsCommand, { action: 'setup' }>, say: Say): RsState {
  const path = statePath();
  if (readRecord(path, say)) throw new Error(`already set up (record ${path}): run ulvs rs-setup --remove first`);
  const all = links();
  const ether = all.filter((l) => l.link_type === 'ether');
  const devs = cmd.devs.length === 0 ? ether : cmd.devs.map((n) => {
    const l = ether.find((x) => x.ifname === n);
    if (!l) throw new Error(all.some((x) => x.ifname === n) ? `${n} is not an Ethernet interface` : `no interface ${n}`);
    return l;
  });
  let useTunl0 = false;
  if (cmd.mode === 'tun' && cmd.tunType === 'ipip' && cmd.decap !== 'bpf') {
    useTunl0 = tunl0Available();
    if (!useTunl0 && cmd.decap === 'tunl0') throw new Error('--decap tunl0: this kernel has no tunl0 (the ipip module is not available)');
    if (!useTunl0) say('no tunl0 (the kernel has no ipip module): using ulvs\'s eBPF decapsulation instead');
  }
  const useBpf = cmd.mode === 'tun' && !useTunl0;
  if (useBpf && devs.length === 0) throw new Error('no Ethernet interface to attach the decapsulation program to');

  const state: RsState = { version: 1, mode: cmd.mode, tunType: cmd.tunType, tunPort: cmd.tunPort, vips: cmd.vips, addedVips: [], sysctls: [], decap: null, tunl0: null, netnsCookie: netnsCookie() };
  const undo: (() => void)[] = [];
  try {
    for (const vip of cmd.vips) {
      if (loHas(vip)) {
        say(`${vip}/32 is already on lo: kept, and kept by --remove`);
        continue;
      }
      run(['ip', 'addr', 'add', `${vip}/32`, 'dev', 'lo']);
      state.addedVips.push(vip);
      undo.push(() => run(['ip', 'addr', 'del', `${vip}/32`, 'dev', 'lo']));
      say(`added ${vip}/32 on lo`);
    }
    const confs = ['all', ...devs.map((d) => d.ifname), ...(useTunl0 ? ['tunl0'] : [])];
    const set = (conf: string, name: string, want: (old: string) => string | null, why: string) => {
      const old = readSysctl(conf, name);
      const now = want(old);
      if (now === null || now === old) return;
      writeSysctl(conf, name, now);
      state.sysctls.push({ conf, name, old, now });
      undo.push(() => writeSysctl(conf, name, old));
      say(`${sysctlName(conf, name)} = ${now} (was ${old}): ${why}`);
    };
    for (const conf of confs.filter((c) => c !== 'tunl0')) {
      set(conf, 'arp_ignore', (o) => (Number(o) >= 1 ? null : '1'), 'answer ARP only for addresses of the receiving interface');
      set(conf, 'arp_announce', () => '2', 'never announce the VIP as ARP source');
    }
    for (const conf of confs) set(conf, 'rp_filter', (o) => (o === '1' ? '2' : null), 'loose: client sources arrive where their route back may not lead');
    if (useTunl0) {
      const wasUp = links().find((l) => l.ifname === 'tunl0')!.flags.includes('UP');
      if (!wasUp) {
        run(['ip', 'link', 'set', 'tunl0', 'up']);
        undo.push(() => run(['ip', 'link', 'set', 'tunl0', 'down']));
      }
      state.tunl0 = { wasUp };
      say(`tunl0 ${wasUp ? 'was already up' : 'set up'}: the kernel decapsulates IPIP from any peer`);
    }
    if (useBpf) {
      const { progFd, progId } = loadDecap(cmd.vips, cmd.tunPort, cmd.tunType === 'gre');
      state.decap = { progId, devs: [] };
      try {
        for (const d of devs) {
          attachDecap(progFd, d.ifindex);
          state.decap.devs.push({ name: d.ifname, ifindex: d.ifindex });
          undo.push(() => detachDecap(progId, d.ifindex));
          say(`attached ${DECAP_PROG} (program id ${progId}; ${cmd.tunType === 'gue' ? `GUE on UDP port ${cmd.tunPort}` : cmd.tunType === 'gre' ? 'GRE' : 'IPIP'} for ${cmd.vips.join(' ')}) at the tcx ingress of ${d.ifname}`);
        }
      } finally {
        closeFd(progFd); // the attachments hold the program from here on
      }
    }
    mkdirSync(STATE_DIR, { recursive: true, mode: 0o755 });
    writeFileSync(`${path}.tmp`, `${JSON.stringify(state, null, 2)}\n`, { mode: 0o644 });
    renameSync(`${path}.tmp`, path);
    say(`recorded in ${path}; undo with: ulvs rs-setup --remove`);
    return state;
  } catch (e) {
    for (const u of undo.reverse()) {
      try {
        u();
      } catch {
        /* keep undoing the rest */
      }
    }
    if (undo.length) say('failed part-way: every change made so far was undone');
    throw e;
  }
}

/** Undo what the record says was done, in reverse order; false when there is no record. */
export function remove(say: Say): boolean {
  const path = statePath();
  const state = readRecord(path, say);
  if (!state) {
    say(`nothing to remove: no record ${path}`);
    return false;
  }
  if (state.decap) {
    for (const d of state.decap.devs) {
      let gone: boolean;
      try {
        gone = !detachDecap(state.decap.progId, d.ifindex);
      } catch (e) {
        say(`${d.name}: ${(e as Error).message} (interface gone? the program goes with it)`);
        continue;
      }
      say(gone ? `${DECAP_PROG} (program id ${state.decap.progId}) was no longer attached to ${d.name}` : `detached ${DECAP_PROG} (program id ${state.decap.progId}) from ${d.name}`);
    }
  }
  if (state.tunl0 && !state.tunl0.wasUp) {
    run(['ip', 'link', 'set', 'tunl0', 'down']);
    say('tunl0 set down again');
  }
  for (const s of [...state.sysctls].reverse()) {
    let current: string | null = null;
    try {
      current = readSysctl(s.conf, s.name);
    } catch {
      say(`${sysctlName(s.conf, s.name)}: gone (interface removed?), nothing to restore`);
      continue;
    }
    writeSysctl(s.conf, s.name, s.old);
    say(`${sysctlName(s.conf, s.name)} = ${s.old} (restored${current !== s.now ? `; it had been changed to ${current} since` : ''})`);
  }
  for (const vip of state.addedVips) {
    if (!loHas(vip)) say(`${vip}/32 was no longer on lo`);
    else {
      run(['ip', 'addr', 'del', `${vip}/32`, 'dev', 'lo']);
      say(`removed ${vip}/32 from lo`);
    }
  }
  unlinkSync(path);
  say(`removed the record ${path}`);
  return true;
}

/** What is set up, and the decapsulation program's counters as the kernel has them. */
export function status(say: Say): void {
  const path = statePath();
  const state = readRecord(path, say, false);
  if (!state) say(`not set up (no record of this namespace at ${path})`);
  else {
    say(`${state.mode}${state.mode === 'tun' ? ` (${state.tunType}${state.tunType === 'gue' ? ` port ${state.tunPort}` : ''}, decapsulation by ${state.tunl0 ? 'tunl0' : 'ulvs eBPF'})` : ''} for ${state.vips.join(' ')}; record ${path}`);
    for (const s of state.sysctls) say(`  ${sysctlName(s.conf, s.name)} = ${s.now} (was ${s.old})`);
  }
  const attached = links().filter((l) => l.link_type === 'ether').flatMap((l) => findDecap(l.ifindex).map((id) => ({ id, dev: l.ifname })));
  if (attached.length === 0) say('no decapsulation program attached');
  for (const { id, dev } of attached) {
    const r = readDecap(id);
    if (r) say(`${dev}: ${DECAP_PROG} program id ${id}, VIPs ${r.vips.sort().join(' ')}${r.guePort ? `, GUE port ${r.guePort}` : ''}${r.gre ? ', GRE' : ''}: decapsulated ${r.counters.decapsulated}, dropped as malformed ${r.counters.malformed}, inner destination not a VIP ${r.counters.notVip}, variant not handled ${r.counters.unhandled}`);
  }
}

/** The whole command: exit status 0 done, 1 refused or failed (nothing left changed), 2 bad command line. */
export function runRsSetup(argv: readonly string[], out: Say, err: Say, isRoot: boolean): number {
  let cmd: RsCommand;
  if (argv.length === 1 && (argv[0] === '-h' || argv[0] === '--help')) {
    out(RS_USAGE.trimEnd());
    return 0;
  }
  try {
    cmd = parseRsSetup(argv);
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    err(`ulvs rs-setup: ${e.message}\n${RS_USAGE.trimEnd()}`);
    return 2;
  }
  if (!isRoot) {
    err('ulvs rs-setup: must be run as root (it adds addresses to lo, changes sysctls and attaches an eBPF program); nothing was changed');
    return 1;
  }
  try {
    if (cmd.action === 'setup') setup(cmd, out);
    else if (cmd.action === 'remove') remove(out);
    else status(out);
    return 0;
  } catch (e) {
    err(`ulvs rs-setup: ${(e as Error).message}`);
    return 1;
  }
}
