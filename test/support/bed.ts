/** Test-bed constants (design.md addresses) and a director factory for engine tests. */
import { Director, type DirectorOptions } from '../../src/core/director.js';
import { defaultRegistry } from '../../src/sched/index.js';
import { parseIPv4 } from '../../src/wire/addr.js';

export const CLIENT = '198.51.100.2';
export const CLIENT2 = '198.51.100.3';
export const VIP = '203.0.113.10';
export const RS1 = '192.0.2.11';
export const RS2 = '192.0.2.12';
export const RS3 = '192.0.2.13';
export const ip = parseIPv4;
export const TCP = 6;
export const UDP = 17;

export function director(o: Partial<DirectorOptions> = {}): Director {
  return new Director({ schedulers: defaultRegistry(), maxConns: 4096, seed: 12345, ...o });
}

export const key = (proto: number, vip: string, port: number) => ({ proto, addr: ip(vip), port });
