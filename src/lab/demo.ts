/**
 * The demo (README's main command): a real director in network namespaces.
 *
 *   ulvs demo [--method nat|dr]
 *
 * nat (the default): builds the test bed with 3 real servers (HTTP on 8080, UDP echo on 5353),
 * starts ulvsd with
 *   TCP 203.0.113.10:80 -> :8080 rr   and   UDP 203.0.113.10:53 -> :5353 rr  (-m),
 * sends 30 HTTP requests and 10 UDP datagrams from the client.
 * dr: the real servers are prepared for direct routing by `ulvs rs-setup dr 203.0.113.10` run
 * inside each real-server namespace (VIP on lo, ARP sysctls; undone with `--remove` at the end),
 * ulvsd gets TCP 203.0.113.10:80 -> :80 rr with -g (DR keeps the port), and the client sends
 * 30 HTTP requests (TCP only: the lab's UDP server replies from its own address, not the VIP).
 * Either way it prints which real server answered each and which client address it saw, then
 * the ipvsadm-style listing with statistics (Forward Masq or Route), and tears everything down.
 */
import { fileURLToPath } from 'node:url';
import { DirectorBed } from './director-bed.js';
import { run, tryRun } from './shell.js';
import { LAB } from './testbed.js';

const ULVS = fileURLToPath(new URL('../cli/ulvs.js', import.meta.url));

export async function demo(args: string[] = []): Promise<number> {
  const method = args.length === 0 ? 'nat' : args.length === 2 && args[0] === '--method' ? args[1] : args.length === 1 && args[0]!.startsWith('--method=') ? args[0]!.slice(9) : undefined;
  if (method !== 'nat' && method !== 'dr') {
    process.stderr.write('usage: ulvs demo [--method nat|dr]\n');
    return 2;
  }
  if (process.getuid?.() !== 0) {
    process.stderr.write('ulvs demo: needs root (it creates network namespaces and a TUN device)\n');
    return 1;
  }
  const dr = method === 'dr';
  const rs = [0, 1, 2].map(LAB.realServer);
  const rules = (
    dr
      ? [`-A -t ${LAB.VIP}:80 -s rr`, ...rs.map((a) => `-a -t ${LAB.VIP}:80 -r ${a}:80 -g -w 1`)]
      : [`-A -t ${LAB.VIP}:80 -s rr`, ...rs.map((a) => `-a -t ${LAB.VIP}:80 -r ${a}:8080 -m -w 1`), `-A -u ${LAB.VIP}:53 -s rr`, ...rs.map((a) => `-a -u ${LAB.VIP}:53 -r ${a}:5353 -m -w 1`)]
  ).join('\n');
  const say = (s: string) => process.stdout.write(`${s}\n`);
  const rsSetup = (ns: string, argv: string[]) => run(['ip', 'netns', 'exec', ns, process.execPath, ULVS, 'rs-setup', ...argv]);
  const prepared: string[] = [];
  const bed = new DirectorBed({
    rules,
    realServers: 3,
    httpPort: dr ? 80 : 8080,
    udpPort: dr ? undefined : 5353,
    ulvsdArgs: ['--log-format', 'text'],
    beforeDirector: dr
      ? (b) => {
          for (const ns of b.realServers) {
            say(`  ${ns}: ulvs rs-setup dr ${LAB.VIP}`);
            const out = rsSetup(ns, ['dr', LAB.VIP]);
            prepared.push(ns);
            say(out.trimEnd().replace(/^/gm, '    '));
          }
        }
      : undefined,
  });
  say(`ulvs demo (${dr ? 'VS/DR, direct routing' : 'VS/NAT'}): building the test bed (${bed.bed.prefix}-*): client ${LAB.client(0)}, director ${LAB.DIRECTOR_PUBLIC} / DIP ${LAB.DIP}, real servers ${rs.join(', ')}`);
  say('rules (ipvsadm -S format):');
  for (const l of rules.split('\n')) say(`  ${l}`);
  try {
    await bed.start();
    say(bed.ulvsdLog.trimEnd().replace(/^/gm, '  '));
    const results = bed.client(dr ? ['--http', '80', '--requests', '30'] : ['--http', '80', '--requests', '30', '--udp', '53', '--queries', '10']);
    let i = 0;
    const seen = new Map<string, number>();
    for (const r of results) {
      i++;
      if (r['ok']) {
        seen.set(String(r['server']), (seen.get(String(r['server'])) ?? 0) + 1);
        say(`  #${String(i).padStart(2)} ${r['kind'] === 'http' ? 'HTTP GET' : 'UDP     '} ${LAB.VIP}:${r['kind'] === 'http' ? 80 : 53} -> answered by ${r['server']}, which saw the client as ${r['client']}`);
      } else say(`  #${String(i).padStart(2)} ${r['kind']} FAILED: ${r['error']}`);
    }
    const ok = results.filter((r) => r['ok']);
    const real = ok.filter((r) => String(r['client']).startsWith(`${LAB.client(0)}:`));
    say('');
    say(`${ok.length}/${results.length} answered; per real server: ${[...seen].map(([k, v]) => `${k} ${v}`).join(', ')}`);
    say(`${real.length}/${ok.length} real servers saw the client's own address ${LAB.client(0)} (${dr ? 'VS/DR: the packet is forwarded unchanged to the server, which answers from the VIP on its lo; the replies do not cross ulvs (here they go through the director\'s kernel, the servers\' default gateway)' : 'VS/NAT: no source NAT'})`);
    say('');
    say((await bed.dump()).replace(/^ulvsd: end of dump\n?/m, '').trimEnd());
    return ok.length === results.length && real.length === ok.length ? 0 : 1;
  } catch (e) {
    process.stderr.write(`ulvs demo failed: ${(e as Error).message}\n${bed.ulvsdLog}`);
    return 1;
  } finally {
    await bed.stopDirector().catch(() => null);
    for (const ns of prepared) tryRun(['ip', 'netns', 'exec', ns, process.execPath, ULVS, 'rs-setup', '--remove']); // its record in /run/ulvs goes too
    await bed.stop();
    say('test bed removed');
  }
}
