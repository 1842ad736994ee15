/**
 * ulvsadm — ipvsadm 1.31's command line for a running ulvsd: parse as ipvsadm does
 * (control/ipvsadm/parse.ts), run it against the admin API on ulvsd's Unix socket
 * ($ULVS_SOCKET, default /run/ulvs/ulvs.sock; control/ipvsadm/run.ts), print, and exit with
 * ipvsadm's status; when ulvsd cannot be reached, the cause and the fix (control/admin-unreachable.ts). Also ulvs's own `--proc NAME`, `--sysctl [NAME[=VALUE]...]`, `--explain`
 * (control/explain-cli.ts) and `--trace` (control/trace-cli.ts). Wiring only.
 */
import { readFileSync } from 'node:fs';
import { callAdmin, streamAdmin } from '../control/admin-client.js';
import { unreachableMessage } from '../control/admin-unreachable.js';
import { CliError, parseIpvsadm } from '../control/ipvsadm/parse.js';
import { DirectorError, ipvsadmRunner, Unreachable } from '../control/ipvsadm/run.js';
import { PROG } from '../control/ipvsadm/usage.js';
import { sysctlCommand } from '../control/sysctl-cli.js';
import { explainCommand } from '../control/explain-cli.js';
import { traceCommand } from '../control/trace-cli.js';

const SOCKET = process.env['ULVS_SOCKET'] ?? '/run/ulvs/ulvs.sock';
const api = (method: string, path: string, body?: object) =>
  callAdmin(SOCKET, method, path, body).catch((e: NodeJS.ErrnoException) => {
    throw new Unreachable(unreachableMessage(SOCKET, e));
  });
const stream = (path: string, onData: (chunk: string) => void) =>
  streamAdmin(SOCKET, path, onData).catch((e: NodeJS.ErrnoException) => {
    throw new Unreachable(`cannot reach ulvsd at ${SOCKET} (${e.code ?? e.message}): is it running? (set ULVS_SOCKET for another socket)`);
  });
const io = { out: (s: string) => void process.stdout.write(s), err: (s: string) => void process.stderr.write(s), stdin: () => readFileSync(0, 'utf8') };
const runner = ipvsadmRunner(api, io);

/** The exit status for an error, after printing what ipvsadm prints for it. */
function report(e: unknown): number {
  if (e instanceof Unreachable) {
    process.stderr.write(`${e.message}\n`);
    return 2;
  }
  if (e instanceof CliError) {
    if (e.message) process.stderr.write(`${e.message}\n`);
    if (e.tryHelp) process.stderr.write(`Try \`${PROG} -h' or '${PROG} --help' for more information.\n`);
    return e.exit;
  }
  if (e instanceof DirectorError) {
    if (e.message) process.stderr.write(`${e.message}\n`);
    return e.exit;
  }
  throw e;
}

async function main(): Promise<number> {
  if (process.argv[2] === '--proc') return runner.procText(process.argv[3]);
  try {
    // ulvs's own, before ipvsadm's parser (ipvsadm has no such option): control/sysctl-cli.ts
    if (process.argv[2] === '--sysctl') return await sysctlCommand(process.argv.slice(3), api, io);
    if (process.argv[2] === '--explain') return await explainCommand(process.argv.slice(3), api, io);
    if (process.argv[2] === '--trace') return await traceCommand(process.argv.slice(3), stream, io);
    process.stdout.write(await runner.execute(parseIpvsadm(process.argv.slice(2))));
    return 0;
  } catch (e) {
    return report(e);
  }
}

process.exitCode = await main();
