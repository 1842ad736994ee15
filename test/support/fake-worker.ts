/**
 * A data-path worker that speaks protocol.ts without a TUN or an engine (worker-pool.test.ts):
 * ready at once; `apply` records the operations and refuses any addService on port 1 with
 * EEXIST; `counters` reports engine {calls} and datapath {reads: fd}; `sysctls`/`setSysctls` keep an
 * engine's sysctls (start values from WorkerInit.sysctl); `stop` answers `stopped`.
 * A worker whose seed is 13 exits at once, unasked.
 */
import { workerData } from 'node:worker_threads';
import type { CallMessage, CallName, Calls, FromWorker, ToWorker, WorkerInit } from '../../src/datapath/tun/worker-protocol.js';
import type { RuleOp } from '../../src/core/rule-ops.js';
import { defaultSysctls } from '../../src/core/sysctl.js';
import { applySysctls } from '../../src/core/sysctl-names.js';

const init = workerData as WorkerInit;
const port = init.control;
const send = (m: FromWorker) => port.postMessage(m);
const applied: RuleOp[] = [];
/** the engine's sysctls: init.sysctl over the defaults, changed by setSysctls as an engine's */
const sysctl = defaultSysctls(init.sysctl);
let calls = 0;

function answer(msg: CallMessage): Calls[CallName]['result'] {
  switch (msg.call) {
    case 'apply':
      if (msg.args[0].some((o) => o.op === 'addService' && o.spec.port === 1)) throw Object.assign(new Error('Service already exists'), { code: 'EEXIST' });
      applied.push(...msg.args[0]);
      return null;
    case 'sysctls':
      return { ...sysctl };
    case 'setSysctls':
      applySysctls(sysctl, msg.args[0]);
      return null;
    case 'counters':
      return { engine: { calls, applied: applied.length }, datapath: { reads: init.fd }, sync: { sync_tx_Datagrams: 1 } };
    default:
      throw Object.assign(new Error(`no ${msg.call} here`), { code: 'internal' });
  }
}

if (init.seed === 13) process.exit(0);
port.on('message', (msg: ToWorker) => {
  if (msg.type === 'stop') {
    send({ type: 'stopped', engine: {}, datapath: {} });
    port.close();
    return;
  }
  calls++;
  try {
    send({ type: 'reply', id: msg.id, result: answer(msg) });
  } catch (e) {
    send({ type: 'reply', id: msg.id, error: { code: (e as { code: string }).code, message: (e as Error).message } });
  }
});
send({ type: 'ready', io: 'syscalls' });
