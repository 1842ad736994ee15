/**
 * The demo (README's main command): a real director in network namespaces.
 * Builds the test bed with 3 real servers (HTTP on 8080, UDP echo on 5353), starts ulvsd with
 *   TCP 203.0.113.10:80 -> :8080 rr   and   UDP 203.0.113.10:53 -> :5353 rr,
 * sends 30 HTTP requests and 10 UDP datagrams from the client, prints which real server
 * answered each and which client address it saw, then the ipvsadm-style listing with
 * statistics, and tears everything down.
 */
import { DirectorBed } from '../lab/director-bed.js';
import { LAB } from '../lab/testbed.js';

export async function demo(): Promise<number> {
  if (process.getuid?.() !== 0) {
    process.stderr.write('ulvs demo: needs root (it creates network namespaces and a TUN device)\n');
    return 1;
  }
  const rs = [0, 1, 2].map(LAB.realServer);
  const rules = [
    `-A -t ${LAB.VIP}:80 -s rr`,
    ...rs.map((a) => `-a -t ${LAB.VIP}:80 -r ${a}:8080 -m -w 1`),
    `-A -u ${LAB.VIP}:53 -s rr`,
    ...rs.map((a) => `-a -u ${LAB.VIP}:53 -r ${a}:5353 -m -w 1`),
  ].join('\n');
  const say = (s: string) => process.stdout.write(`${s}\n`);
  const bed = new DirectorBed({ rules, realServers: 3, httpPort: 8080, udpPort: 5353, ulvsdArgs: ['--log-format', 'text'] });
  say(`ulvs demo: building the test bed (${bed.bed.prefix}-*): client ${LAB.client(0)}, director ${LAB.DIRECTOR_PUBLIC} / DIP ${LAB.DIP}, real servers ${rs.join(', ')}`);
  say('rules (ipvsadm -S format):');
  for (const l of rules.split('\n')) say(`  ${l}`);
  try {
    await bed.start();
    say(bed.ulvsdLog.trimEnd().replace(/^/gm, '  '));
    const results = bed.client(['--http', '80', '--requests', '30', '--udp', '53', '--queries', '10']);
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
    say(`${real.length}/${ok.length} real servers saw the client's own address ${LAB.client(0)} (VS/NAT: no source NAT)`);
    say('');
    say((await bed.dump()).replace(/^ulvsd: end of dump\n?/m, '').trimEnd());
    return ok.length === results.length && real.length === ok.length ? 0 : 1;
  } catch (e) {
    process.stderr.write(`ulvs demo failed: ${(e as Error).message}\n${bed.ulvsdLog}`);
    return 1;
  } finally {
    await bed.stop();
    say('test bed removed');
  }
}
