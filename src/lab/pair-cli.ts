/**
 * `ulvs lab up --pair [--no-track] [--method nat|dr|tun] [--prefix P]`: the HA pair (pair.ts)
 * in the foreground.
 * Builds it, waits until keepalived made d1 MASTER, prints the names, the files and what to
 * try, then stays until SIGINT/SIGTERM (Ctrl-C) or until the pair is removed by `ulvs lab down`
 * (its namespaces vanish), and removes everything. On a failure it removes everything and
 * returns 1; a wrong command line returns 2. --no-track builds the pair without the track
 * script (a dead ulvsd then keeps MASTER: the control of the integration test). --method sets
 * keepalived's lb_kind (default nat); dr and tun prepare the real servers with `ulvs rs-setup`
 * and give them a reply router as gateway (pair-bed.ts).
 */
import { existsSync } from 'node:fs';
import { SCRIPTS } from './director-bed.js';
import { Pair } from './pair.js';
import { PAIR } from './pair-bed.js';

export const PAIR_USAGE = 'usage: ulvs lab up --pair [--no-track] [--method nat|dr|tun] [--prefix ulvs-NAME]';
const METHODS = ['nat', 'dr', 'tun'] as const;

export async function labPair(args: string[], out: (s: string) => void, err: (s: string) => void): Promise<number> {
  let track: 'script' | 'none' = 'script';
  let prefix: string | undefined;
  let method: (typeof METHODS)[number] = 'nat';
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '--no-track') track = 'none';
    else if (args[i] === '--method' && (METHODS as readonly string[]).includes(args[i + 1] ?? '')) method = args[++i] as (typeof METHODS)[number];
    else if (args[i] === '--prefix' && /^ulvs-[a-z0-9-]{1,15}$/.test(args[i + 1] ?? '')) prefix = args[++i];
    else {
      err(`ulvs lab up --pair: ${JSON.stringify(args[i])} is not understood (--method takes nat, dr or tun; --prefix takes ulvs-NAME, NAME of a-z 0-9 -)\n${PAIR_USAGE}`);
      return 2;
    }
  }
  if (process.getuid?.() !== 0) {
    err('ulvs lab up --pair: needs root (network namespaces, TUN devices)');
    return 1;
  }
  const pair = new Pair({ ...(prefix ? { prefix } : {}), track, method });
  const n = pair.net;
  let stopping = false;
  const stop = () => {
    if (stopping) return;
    stopping = true;
    pair.stop();
    out('HA pair removed');
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  try {
    out(`building the HA pair ${n.prefix}-* (${method.toUpperCase()}): client ${PAIR.client} | outside bridge | ${n.directors.join(', ')} | inside bridge | ${n.realServers.join(', ')}${n.router ? ` (their gateway: the reply router ${n.router}, ${PAIR.ROUTER_IN})` : ''}`);
    await pair.start();
    await pair.waitRole(0, 'MASTER');
    await pair.waitRole(1, 'BACKUP');
    const client = `ip netns exec ${n.client}`;
    out(
      [
        `up: ${n.directors[0]} is MASTER (VIP ${PAIR.VIP}, DIP ${PAIR.DIP}), ${n.directors[1]} BACKUP; ${track === 'script' ? 'a dead ulvsd gives up MASTER (track_script)' : 'no track line: a dead ulvsd keeps MASTER'}`,
        `keepalived.conf of each director (read by keepalived -P and by ulvsd): ${pair.conf(0)}, ${pair.conf(1)}`,
        'try:',
        `  ${client} curl -s http://${PAIR.VIP}/                      a request through the VIP`,
        `  curl -s --unix-socket ${pair.socket(0)} http://ulvs/v1/vrrp      d1's ulvsd: VRRP states, sync role`,
        `  ULVS_SOCKET=${pair.socket(0)} ${process.execPath} ${SCRIPTS.ulvsd.replace(/ulvsd\.js$/, 'ulvsadm.js')} -L -n`,
        `  ip -n ${n.directors[0]} link set o0 down; ip -n ${n.directors[0]} link set i0 down     cut d1 off: d2 takes over (set them up again: d1 preempts)`,
        `  kill -9 ${pair.ulvsd[0]?.pid}                                                      d1's ulvsd dies: its keepalived gives up MASTER`,
        `  ip -n ${n.directors[1]} -4 addr show                                    where the VIP and the DIP are`,
        'Ctrl-C (or ulvs lab down) removes everything',
      ].join('\n'),
    );
    // stay until a signal, or until the namespaces are gone (ulvs lab down)
    while (!stopping) {
      await new Promise((r) => setTimeout(r, 1000));
      if (!existsSync(`/run/netns/${n.client}`)) stop();
    }
    return 0;
  } catch (e) {
    err(`ulvs lab up --pair failed: ${(e as Error).message}`);
    stop();
    return 1;
  }
}
