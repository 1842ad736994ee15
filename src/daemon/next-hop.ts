/**
 * Where this director routes an address, for the trace's "sent" step: `ip -j route get ADDR`
 * in ulvsd's own network namespace (the route the way-out program's bpf_fib_lookup finds for a
 * rewritten packet), as "dev X via G" or "dev X, directly connected". Null when `ip` fails or
 * says nothing usable. Called once per new destination of a trace, never per packet.
 */
import { execFile } from 'node:child_process';
import { formatIPv4 } from '../wire/addr.js';

export function routeOf(addr: number): Promise<string | null> {
  return new Promise((resolve) => {
    execFile('ip', ['-j', 'route', 'get', formatIPv4(addr >>> 0)], { timeout: 2000 }, (err, stdout) => {
      if (err) return resolve(null);
      try {
        const r = (JSON.parse(stdout) as { dev?: string; gateway?: string; type?: string }[])[0];
        if (!r?.dev) return resolve(r?.type ? `route type ${r.type}` : null);
        resolve(r.type === 'local' ? `local address (dev ${r.dev})` : r.gateway ? `dev ${r.dev} via ${r.gateway}` : `dev ${r.dev}, directly connected`);
      } catch {
        resolve(null);
      }
    });
  });
}
