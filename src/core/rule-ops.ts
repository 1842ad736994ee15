/**
 * Control operations as plain data (structured-clone safe), so the control plane can compute
 * a change in one thread and a data-path worker can apply it to its director in another.
 */
import type { DestSpec, Director, ServiceSpec } from './director.js';
import type { ServiceKey } from './service.js';

export type RuleOp =
  | { op: 'deleteDest'; service: ServiceKey; addr: number; port: number }
  | { op: 'deleteService'; service: ServiceKey }
  | { op: 'addService'; spec: ServiceSpec }
  | { op: 'editService'; spec: ServiceSpec }
  | { op: 'addDest'; service: ServiceKey; dest: DestSpec }
  | { op: 'editDest'; service: ServiceKey; dest: DestSpec };

/** Apply ops in order; when they deleted servers or services, the entries left without a
 *  server are expired at once under expire_nodest_conn (Director.expireNodestConns), once per
 *  call as the kernel's delayed work runs once for a burst of deletions. */
export function applyOps(d: Director, ops: readonly RuleOp[]): void {
  let deleted = false;
  d.batch(() => {
    for (const o of ops) {
      if (o.op === 'deleteDest' || o.op === 'deleteService') deleted = true;
      applyOne(d, o);
    }
  });
  if (deleted) d.expireNodestConns();
}

function applyOne(d: Director, o: RuleOp): void {
  switch (o.op) {
    case 'deleteDest':
      d.deleteDest(o.service, o.addr, o.port);
      break;
    case 'deleteService':
      d.deleteService(o.service);
      break;
    case 'addService':
      d.addService(o.spec);
      break;
    case 'editService':
      d.editService(o.spec);
      break;
    case 'addDest':
      d.addDest(o.service, o.dest);
      break;
    case 'editDest':
      d.editDest(o.service, o.dest);
      break;
  }
}
