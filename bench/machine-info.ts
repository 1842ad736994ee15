/**
 * What the benchmark's figures depend on besides the code (issue 16: the same commit gave other
 * ratios on another machine of the same kind): the CPU model, the kernel, its speculative-
 * execution mitigations (they set the price of every system call and context switch, which a
 * user-space data path pays and a kernel one mostly does not) and how busy the machine already
 * was before the benchmark began (other work shares the 2 cores with the measurement). Reads
 * /proc and /sys; none of it is required (missing files give "unknown").
 */
import { readdirSync, readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';

export interface MachineInfo {
  cpu: string;
  cpus: number;
  kernel: string;
  /** /sys/devices/system/cpu/vulnerabilities entries other than "Not affected" */
  mitigations: Record<string, string>;
  /** share of the CPU time that was busy or stolen over `busySeconds` before the run (0..1) */
  busyBefore: number;
  busySeconds: number;
}

const read = (path: string): string | null => {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return null;
  }
};

/** user..steal jiffies of all CPUs from /proc/stat's first line: [busy incl. steal, total] */
/** A process's user and system CPU ticks so far (all threads; fields 14 and 15 of proc(5), after
 *  the command name, which may hold spaces and parentheses; USER_HZ = 100 a second). */
export function processCpuTicks(pid: number): [user: number, system: number] {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return [Number(f[11]), Number(f[12])];
}

export function cpuTimes(procStat: string): [busy: number, total: number] {
  const f = procStat.split('\n')[0]!.trim().split(/\s+/).slice(1, 9).map(Number);
  const total = f.reduce((a, b) => a + b, 0);
  const idle = (f[3] ?? 0) + (f[4] ?? 0); // idle, iowait
  return [total - idle, total];
}

/** "AMD EPYC (family 26, model 2)" from /proc/cpuinfo text */
export function cpuName(cpuinfo: string): string {
  const field = (k: string) => new RegExp(`^${k}\\s*:\\s*(.*)$`, 'm').exec(cpuinfo)?.[1]?.trim();
  const name = field('model name') ?? 'unknown CPU';
  const family = field('cpu family');
  const model = field('model');
  return family !== undefined && model !== undefined ? `${name} (family ${family}, model ${model})` : name;
}

/** Describe the machine, sampling /proc/stat over `seconds` (blocks that long). */
export async function describeMachine(seconds = 2): Promise<MachineInfo> {
  const dir = '/sys/devices/system/cpu/vulnerabilities';
  const mitigations: Record<string, string> = {};
  let names: string[] = [];
  try {
    names = readdirSync(dir);
  } catch {
    // no such directory: nothing to say
  }
  for (const n of names.sort()) {
    const v = read(`${dir}/${n}`)?.trim();
    if (v && v !== 'Not affected') mitigations[n] = v;
  }
  const s0 = cpuTimes(read('/proc/stat') ?? 'cpu 0');
  await new Promise((r) => setTimeout(r, seconds * 1000));
  const s1 = cpuTimes(read('/proc/stat') ?? 'cpu 0');
  const total = s1[1] - s0[1];
  return {
    cpu: cpuName(read('/proc/cpuinfo') ?? ''),
    cpus: availableParallelism(),
    kernel: read('/proc/sys/kernel/osrelease')?.trim() ?? 'unknown',
    mitigations,
    busyBefore: total > 0 ? (s1[0] - s0[0]) / total : NaN,
    busySeconds: seconds,
  };
}
