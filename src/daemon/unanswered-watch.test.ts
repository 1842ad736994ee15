/** The warning from the unanswered counter: first growth logged, then one line per minute per
 *  server with the growth since; a server out of service (weight 0) is not warned about; the
 *  count at first sight is a baseline (control: no line without growth). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { DirectorSnapshot } from '../core/ctl/listings.js';
import { UnansweredWatch } from './unanswered-watch.js';

const ip = (s: string) => s.split('.').reduce((a, b) => a * 256 + Number(b), 0);
const snap = (dests: { addr: string; unanswered: number; weight?: number }[]): DirectorSnapshot =>
  ({ services: [{ proto: 6, addr: ip('203.0.113.10'), port: 80, dests: dests.map((d) => ({ addr: ip(d.addr), port: 8080, weight: d.weight ?? 1, unanswered: d.unanswered })) }] }) as unknown as DirectorSnapshot;

test('first growth warned with server, service and causes; then rate-limited with the growth since', () => {
  const lines: [string, Record<string, unknown>][] = [];
  const w = new UnansweredWatch((m, f) => lines.push([m, f]), 60_000);
  assert.equal(w.observe(snap([{ addr: '192.0.2.11', unanswered: 0 }, { addr: '192.0.2.12', unanswered: 0 }]), 0), 0, 'control: nothing unanswered, no line');
  assert.equal(w.observe(snap([{ addr: '192.0.2.11', unanswered: 2 }, { addr: '192.0.2.12', unanswered: 0 }]), 2000), 1, 'first growth');
  assert.equal(w.observe(snap([{ addr: '192.0.2.11', unanswered: 2 }, { addr: '192.0.2.12', unanswered: 0 }]), 3000), 0, 'control: no growth, no line');
  assert.equal(w.observe(snap([{ addr: '192.0.2.11', unanswered: 7 }, { addr: '192.0.2.12', unanswered: 0 }]), 4000), 0, 'within the minute: held');
  assert.equal(w.observe(snap([{ addr: '192.0.2.11', unanswered: 8 }, { addr: '192.0.2.12', unanswered: 0 }]), 63_000), 1, 'a minute later, the next growth: the held ones with it');
  assert.match(lines[0]![0], /^real server 192\.0\.2\.11:8080 of TCP 203\.0\.113\.10:80 does not answer through the director: 2 connections got no reply .* its default gateway is probably not the DIP .* or the client is on its segment/);
  assert.deepEqual(lines[0]![1], { server: '192.0.2.11:8080', service: 'TCP 203.0.113.10:80', unanswered: 2, since_last: 2 });
  assert.deepEqual(lines[1]![1], { server: '192.0.2.11:8080', service: 'TCP 203.0.113.10:80', unanswered: 8, since_last: 6 });
  assert.equal(w.observe(snap([{ addr: '192.0.2.11', unanswered: 8 }, { addr: '192.0.2.12', unanswered: 4, weight: 0 }]), 200_000), 0, 'a quiesced server is not warned about');
  assert.equal(w.observe(snap([{ addr: '192.0.2.11', unanswered: 1 }, { addr: '192.0.2.12', unanswered: 4, weight: 0 }]), 300_000), 1, 'zeroed (-Z), then one more: warned');
  assert.equal(lines[2]![1]['since_last'], 1);
});
