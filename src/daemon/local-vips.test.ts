import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LocalAddresses } from './local-vips.js';
import { parseIPv4 as ip } from '../wire/addr.js';

test('LocalAddresses: reports VIPs becoming local and ceasing to be, and address-list changes', () => {
  const vip = ip('203.0.113.10') >>> 0;
  const dip = ip('192.0.2.1') >>> 0;
  let host = [dip];
  const l = new LocalAddresses(() => host);
  assert.deepEqual(l.poll([vip]), { addrsChanged: true, appeared: [], gone: [] });
  assert.deepEqual(l.poll([vip]), { addrsChanged: false, appeared: [], gone: [] });
  host = [vip, dip];
  assert.deepEqual(l.poll([vip]), { addrsChanged: true, appeared: [vip], gone: [] });
  assert.deepEqual(l.addrs, [dip, vip].sort((a, b) => a - b));
  assert.deepEqual(l.localVips, [vip]);
  assert.deepEqual(l.poll([]), { addrsChanged: false, appeared: [], gone: [vip] }, 'no longer a VIP');
  assert.deepEqual(l.poll([vip]), { addrsChanged: false, appeared: [vip], gone: [] }, 'a VIP again, already local');
  host = [dip];
  assert.deepEqual(l.poll([vip]), { addrsChanged: true, appeared: [], gone: [vip] });
});
