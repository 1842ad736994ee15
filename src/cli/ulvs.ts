/**
 * ulvs — tools around the director:
 *   ulvs demo [--method nat|dr]  run the demo (root; VS/NAT by default, or VS/DR)
 *   ulvs lab up [-n N] build a test bed and leave it up (prints its names)
 *   ulvs lab down      remove every test bed (namespaces named ulvs-*)
 *   ulvs rs-setup ...  prepare this host as a DR/TUN real server, or undo it (src/rs/setup.ts)
 */
import { demo } from '../lab/demo.js';
import { removeLabs, TestBed } from '../lab/testbed.js';
import { runRsSetup } from '../rs/setup.js';

const [cmd, sub, ...rest] = process.argv.slice(2);
const usage = 'usage: ulvs demo [--method nat|dr] | ulvs lab up [-n REAL_SERVERS] | ulvs lab down | ulvs rs-setup dr|tun VIP... | ulvs rs-setup --remove|--status\n';
if (cmd === 'demo') process.exit(await demo(process.argv.slice(3)));
else if (cmd === 'rs-setup') {
  const say = (stream: NodeJS.WriteStream) => (line: string) => stream.write(`${line}\n`);
  process.exit(runRsSetup(process.argv.slice(3), say(process.stdout), say(process.stderr), process.getuid?.() === 0));
} else if (cmd === 'lab' && sub === 'up') {
  const n = rest.length === 0 ? 3 : rest.length === 2 && rest[0] === '-n' && /^\d{1,3}$/.test(rest[1]!) ? Number(rest[1]) : NaN;
  if (!(n >= 1 && n <= 100)) {
    process.stderr.write(`ulvs lab up: -n takes a number of real servers from 1 to 100\n${usage}`);
    process.exit(2);
  }
  const t = new TestBed({ realServers: n }).up();
  process.stdout.write(`test bed up: director ${t.director}; clients ${t.clients.join(' ')}; real servers ${t.realServers.join(' ')}\nremove with: ulvs lab down\n`);
} else if (cmd === 'lab' && sub === 'down') {
  const gone = removeLabs();
  process.stdout.write(gone.length ? `removed ${gone.join(' ')}\n` : 'no test bed found\n');
} else {
  process.stderr.write(usage);
  process.exit(cmd === undefined || cmd === '-h' || cmd === '--help' ? 0 : 2);
}
