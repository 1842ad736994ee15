/**
 * `ulvs doctor [--socket PATH]`: checks a live director against LVS/NAT's requirements
 * (checks.ts) and prints one line per finding; exit status 0 when nothing failed, 1 when a
 * check failed, 2 for a bad command line. The socket is $ULVS_SOCKET, else /run/ulvs/ulvs.sock.
 */
import { checkDirector, formatFindings } from './checks.js';
import { gatherFacts } from './facts.js';

export const DOCTOR_USAGE = 'usage: ulvs doctor [--socket PATH]   (as root, where ulvsd runs)';

/** See the file header. */
export async function runDoctor(args: string[], env: NodeJS.ProcessEnv, out: (s: string) => void, err: (s: string) => void): Promise<number> {
  let socket = env['ULVS_SOCKET'] ?? '/run/ulvs/ulvs.sock';
  if (args.length === 2 && args[0] === '--socket' && args[1]) socket = args[1];
  else if (args.length !== 0) {
    err(`ulvs doctor: ${JSON.stringify(args.join(' '))} is not understood\n${DOCTOR_USAGE}\n`);
    return 2;
  }
  const findings = checkDirector(await gatherFacts(socket));
  out(formatFindings(findings));
  const failed = findings.filter((f) => f.status === 'fail');
  out(failed.length === 0 ? 'doctor: no requirement of VS/NAT is broken that can be seen from the director\n' : `doctor: ${failed.length} check${failed.length === 1 ? '' : 's'} failed: ${[...new Set(failed.map((f) => f.check))].join(', ')}\n`);
  return failed.length === 0 ? 0 : 1;
}
