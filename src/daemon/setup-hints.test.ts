/** The fixes appended to the kernel set-up's messages; control: an unknown cause is left as it is. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { hintedLog, withFix } from './setup-hints.js';

test('a recognised cause gets its fix, once; an unknown one is unchanged', () => {
  assert.match(withFix('kernel fast path unavailable, every packet goes through user space: libbpf: loading fastpath failed: Operation not permitted (errno 1)'), /; the kernel refused the operation: ulvsd needs CAP_NET_ADMIN and CAP_BPF/);
  assert.match(withFix('routing setup failed: spawnSync ip ENOENT'), /install iproute2/);
  assert.match(withFix('cannot open TUN ulvs0: Cannot allocate memory'), /lower --fast-path-conns or --max-conns/);
  assert.equal(withFix(withFix('x: EPERM')), withFix('x: EPERM'));
  assert.equal(withFix('steering failed: Invalid argument'), 'steering failed: Invalid argument');
  const seen: string[] = [];
  hintedLog({ info: (m) => seen.push(m), warn: (m) => seen.push(m) }).warn('bpf: Operation not permitted');
  assert.match(seen[0]!, /CAP_BPF/);
});
