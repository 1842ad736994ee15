/**
 * ulvs — tools around the director:
 *   ulvs demo [--method nat|dr]  run the demo (root; VS/NAT by default, or VS/DR)
 *   ulvs lab up [-n N] build a test bed and leave it up (prints its names)
 *   ulvs lab up --pair [--no-track] [--method nat|dr|tun] [--prefix ulvs-NAME]
 *                      an HA pair (keepalived -P + ulvsd on two directors), in the foreground
 *                      until Ctrl-C (src/lab/pair-cli.ts)
 *   ulvs lab down [--prefix P]  remove every test bed (namespaces named ulvs-*), or those named P-*
 *   ulvs rs-setup ...  prepare this host as a DR/TUN real server, or undo it (src/rs/setup.ts)
 *   ulvs doctor [--socket PATH]  check a live director against VS/NAT's requirements (src/doctor/)
 */
import { demo } from '../lab/demo.js';
import { removeLabs, TestBed } from '../lab/testbed.js';
import { labPair } from '../lab/pair-cli.js';
import { runRsSetup } from '../rs/setup.js';
import { runDoctor } from '../doctor/doctor.js';

const [cmd, sub, ...rest] = process.argv.slice(2);
/** ulvs lab's commands change network namespaces: root's (else ip's own "Operation not permitted" trace). */
const needRoot = (): void => {
  if (process.getuid?.() === 0) return;
  process.stderr.write('ulvs lab: needs root (it creates and deletes network namespaces); run it with sudo\n');
  process.exit(1);
};
const usage = 'usage: ulvs demo [--method nat|dr] | ulvs lab up [-n REAL_SERVERS] | ulvs lab up --pair [--no-track] [--method nat|dr|tun] [--prefix ulvs-NAME] | ulvs lab down [--prefix P] | ulvs rs-setup dr|tun VIP... | ulvs rs-setup --remove|--status | ulvs doctor [--socket PATH]\n';
if (cmd === 'demo') process.exit(await demo(process.argv.slice(3)));
else if (cmd === 'doctor') process.exit(await runDoctor(process.argv.slice(3), process.env, (s) => process.stdout.write(s), (s) => process.stderr.write(s)));
else if (cmd === 'rs-setup') {
  const say = (stream: NodeJS.WriteStream) => (line: string) => stream.write(`${line}\n`);
  process.exit(runRsSetup(process.argv.slice(3), say(process.stdout), say(process.stderr), process.getuid?.() === 0));
} else if (cmd === 'lab' && sub === 'up' && rest[0] === '--pair') {
  const say = (stream: NodeJS.WriteStream) => (line: string) => stream.write(`${line}\n`);
  process.exit(await labPair(rest.slice(1), say(process.stdout), say(process.stderr)));
} else if (cmd === 'lab' && sub === 'up') {
  const n = rest.length === 0 ? 3 : rest.length === 2 && rest[0] === '-n' && /^\d{1,3}$/.test(rest[1]!) ? Number(rest[1]) : NaN;
  if (!(n >= 1 && n <= 100)) {
    process.stderr.write(`ulvs lab up: -n takes a number of real servers from 1 to 100\n${usage}`);
    process.exit(2);
  }
  needRoot();
  const t = new TestBed({ realServers: n }).up();
  process.stdout.write(`test bed up: director ${t.director}; clients ${t.clients.join(' ')}; real servers ${t.realServers.join(' ')}\nremove with: ulvs lab down\n`);
} else if (cmd === 'lab' && sub === 'down' && (rest.length === 0 || (rest.length === 2 && rest[0] === '--prefix' && /^[a-z0-9-]{2,20}$/.test(rest[1]!)))) {
  // --prefix: only the beds of one run (others may be running tests under ulvs-*)
  needRoot();
  const gone = removeLabs(rest.length === 2 ? `${rest[1]!.replace(/-$/, '')}-` : undefined);
  process.stdout.write(gone.length ? `removed ${gone.join(' ')}\n` : 'no test bed found\n');
} else {
  process.stderr.write(usage);
  process.exit(cmd === undefined || cmd === '-h' || cmd === '--help' ? 0 : 2);
}
