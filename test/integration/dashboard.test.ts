/**
 * The dashboard (issue 15) in a real browser: headless Chromium in the director's namespace
 * loads http://127.0.0.1:9640/ from ulvsd --keepalived, driven over the DevTools protocol
 * (test/support/cdp-pipe.ts). Checks that the page lists the configuration's services and real
 * servers, that the VRRP state and sync-daemon role follow the lines keepalived writes to the
 * notify FIFO (written by the test), that its connection counts and rates move with traffic,
 * that a real server a checker
 * takes down is shown down (with the quorum loss and the sorry server it causes, and the
 * health event), and saves screenshots at desktop and phone (390 px) width into
 * $ULVS_DASHBOARD_OUT (default: a temporary directory named in the test's output).
 *
 * Control: the last test loads the same page with its EventSource closed after the first
 * message (a page whose stream stopped); the same "numbers change with traffic" check then
 * fails, and the page says it is stale.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DirectorBed } from '../../src/lab/director-bed.js';
import { LAB } from '../../src/lab/testbed.js';
import { needsRoot } from '../support/root.js';
import { Browser, CHROMIUM, type Page } from '../support/cdp-pipe.js';

const V = LAB.VIP;
const [R1, R2, R3] = [0, 1, 2].map(LAB.realServer);
const URL_ = 'http://127.0.0.1:9640/';
const conf = (fifo: string) => `
global_defs {
  notify_fifo ${fifo}
  @ulvs lvs_sync_daemon pubbr VI_1 id 51
}
vrrp_instance VI_1 {
  interface pubbr
  virtual_router_id 51
}
virtual_server ${V} 80 {
  delay_loop 1
  lb_algo rr
  lb_kind NAT
  connect_timeout 1
  retry 0
  real_server ${R1} 8080 { weight 1
    TCP_CHECK { }
  }
  real_server ${R2} 8080 { weight 2
    TCP_CHECK { }
  }
}
virtual_server ${V} 81 {
  delay_loop 1
  lb_algo wrr
  connect_timeout 1
  retry 0
  quorum 2
  sorry_server ${R3} 8080
  real_server ${R1} 8080 { weight 1
    TCP_CHECK { }
  }
  real_server ${R2} 8080 { weight 1
    TCP_CHECK { }
  }
}
`;

const skip = needsRoot || (!existsSync(CHROMIUM) && `needs ${CHROMIUM} (apt-get install chromium)`);

/** What the page shows of a service, read from its DOM. */
interface Shown {
  quorum: string | null;
  sorry: string | null;
  cps: number;
  pps: number;
  bps: number;
  servers: Record<string, { weight: string; health: string; active: number; inactive: number; conns: number }>;
}
const READ = `(() => {
  const out = {};
  for (const s of document.querySelectorAll('[data-service]')) {
    const f = (n) => s.querySelector('.charts [data-field="' + n + '"]');
    const servers = {};
    for (const r of s.querySelectorAll('tr[data-server]')) {
      const c = (n) => r.querySelector('[data-field="' + n + '"]');
      servers[r.dataset.server] = { weight: c('weight').textContent, health: c('health').textContent, active: +c('active').textContent, inactive: +c('inactive').textContent, conns: +c('conns').dataset.value };
    }
    out[s.dataset.service] = { quorum: s.querySelector('[data-field="quorum"]')?.textContent ?? null, sorry: s.querySelector('[data-field="sorry"]')?.textContent ?? null, cps: +f('cps').dataset.value, pps: +f('pps').dataset.value, bps: +f('bps').dataset.value, servers };
  }
  return out;
})()`;
const read = (p: Page) => p.evaluate<Record<string, Shown>>(READ);

describe('dashboard in headless Chromium', { skip }, () => {
  const prefix = `hd-${randomBytes(2).toString('hex')}`;
  const out = process.env.ULVS_DASHBOARD_OUT ?? mkdtempSync(join(tmpdir(), `${prefix}-dashboard-`));
  const dir = mkdtempSync(join(tmpdir(), `${prefix}-vrrp-`));
  const fifo = join(dir, 'vrrp.fifo'); // keepalived's notify FIFO: ulvsd makes it, the test writes keepalived's lines
  let bed: DirectorBed;
  let browser: Browser;
  let page: Page;
  const S80 = `TCP ${V}:80`;
  const S81 = `TCP ${V}:81`;

  /** Poll the page until `f` holds (true) or `ms` pass (false); `seen` gets every reading. */
  const until = async (p: Page, f: (s: Record<string, Shown>) => boolean, ms = 15_000, seen?: (s: Record<string, Shown>) => void) => {
    const t0 = Date.now();
    for (;;) {
      const s = await read(p);
      seen?.(s);
      if (f(s)) return true;
      if (Date.now() - t0 > ms) return false;
      await new Promise((r) => setTimeout(r, 200));
    }
  };
  const total = (s: Shown | undefined) => Object.values(s?.servers ?? {}).reduce((a, x) => a + x.conns, 0);

  /**
   * The check a frozen page must fail: while traffic runs, the page's connection total for :80
   * grows by at least `n` and its packet rate is seen above 0.
   */
  const numbersMove = async (p: Page, ms: number) => {
    const before = total((await read(p))[S80]);
    let maxPps = 0;
    const traffic = bed.clientAsync(['--http', '80', '--requests', '30']).then(() => bed.clientAsync(['--http', '80', '--streams', '2', '--duration', '3000']));
    const ok = await until(p, (s) => total(s[S80]) >= before + 30 && maxPps > 0, ms, (s) => (maxPps = Math.max(maxPps, s[S80]?.pps ?? 0)));
    await traffic;
    return { ok, before, after: total((await read(p))[S80]), maxPps };
  };

  before(async () => {
    mkdirSync(out, { recursive: true });
    bed = await new DirectorBed({ prefix, keepalived: conf(fifo), realServers: 3, httpPort: 8080, ulvsdArgs: ['--metrics', '127.0.0.1:9640'] }).start();
    browser = Browser.launch(['ip', 'netns', 'exec', bed.bed.director], [], `${prefix}-chromium-`);
    page = await browser.newPage();
    await page.viewport(1280, 900);
    await page.goto(URL_);
  });
  after(async () => {
    await browser?.close();
    await bed?.stop();
    rmSync(dir, { recursive: true, force: true });
    if (!process.env.ULVS_DASHBOARD_OUT) process.stdout.write(`# dashboard screenshots in ${out}\n`);
  });

  test('the page lists the services and real servers of the configuration, with weights and health', async () => {
    const ok = await until(page, (s) => s[S80]?.servers[`${R1}:8080`]?.health === 'up' && s[S80]?.servers[`${R2}:8080`]?.health === 'up' && s[S81]?.quorum === 'quorum up');
    const s = await read(page);
    assert.ok(ok, `page shows ${JSON.stringify(s)}`);
    assert.deepEqual(Object.keys(s).sort(), [S80, S81]);
    assert.deepEqual(Object.keys(s[S80]!.servers).sort(), [`${R1}:8080`, `${R2}:8080`]);
    assert.deepEqual([s[S80]!.servers[`${R1}:8080`]!.weight, s[S80]!.servers[`${R2}:8080`]!.weight], ['1', '2']);
    assert.equal(s[S81]!.sorry, `sorry server ${R3}:8080`);
    assert.equal(await page.evaluate<string>(`document.getElementById('live').dataset.state`), 'live');
  });

  test('the VRRP state and the sync daemon role follow keepalived, with their events', async () => {
    const role = () => page.evaluate<string[]>(`[document.getElementById('role').textContent, ...[...document.querySelectorAll('#vrrp .badge')].map((b) => b.textContent)]`);
    const waitRole = async (want: string[]) => {
      for (const t0 = Date.now(); Date.now() - t0 < 10_000; await new Promise((r) => setTimeout(r, 200))) if (JSON.stringify(await role()) === JSON.stringify(want)) return;
      assert.fail(`role shown ${JSON.stringify(await role())}, not ${JSON.stringify(want)}`);
    };
    await waitRole(['UNKNOWN', 'VI_1: UNKNOWN', 'sync daemon: backup']); // no line from keepalived yet: the sync daemon starts as a backup
    writeFileSync(fifo, 'INSTANCE "VI_1" MASTER 150\n');
    await waitRole(['MASTER', 'VI_1: MASTER', 'sync daemon: master']);
    writeFileSync(fifo, 'INSTANCE "VI_1" BACKUP 150\n');
    await waitRole(['BACKUP', 'VI_1: BACKUP', 'sync daemon: backup']);
    const events = await page.evaluate<string[]>(`[...document.querySelectorAll('#events li[data-kind="vrrp"]')].map((l) => l.textContent)`);
    assert.ok(events.some((e) => /instance VI_1 MASTER -> BACKUP/.test(e)), `vrrp events: ${events.join(' | ')}`);
  });

  test('connection counts and rates change with traffic', async () => {
    const r = await numbersMove(page, 20_000);
    assert.ok(r.ok, `connections on :80 shown ${r.before} -> ${r.after}, packets/s seen at most ${r.maxPps}`);
    writeFileSync(join(out, 'dashboard-desktop-traffic.png'), await page.screenshot());
  });

  test('a real server taken down by its checker is shown down, with the quorum loss, the sorry server and the event', async () => {
    await bed.stopServer(1);
    try {
      const ok = await until(page, (s) => s[S80]?.servers[`${R2}:8080`]?.health === 'down (removed)' && s[S81]?.quorum === 'quorum lost' && s[S81]?.servers[`${R3}:8080`] !== undefined);
      const s = await read(page);
      assert.ok(ok, `page shows ${JSON.stringify(s)}`);
      assert.equal(s[S80]!.servers[`${R1}:8080`]!.health, 'up');
      assert.equal(s[S81]!.sorry, `sorry server ${R3}:8080 serving`);
      const events = await page.evaluate<string[]>(`[...document.querySelectorAll('#events li')].map((l) => l.textContent)`);
      assert.ok(events.some((e) => e.includes(`${R2}:8080 of TCP ${V}:80 is down`)), `events: ${events.join(' | ')}`);
      assert.ok(events.some((e) => e.includes(`quorum lost for ${V}:81`)), `events: ${events.join(' | ')}`);
      const clipped = `[...document.querySelectorAll('.table-wrap')].filter((w) => w.scrollWidth > w.clientWidth).length`;
      assert.equal(await page.evaluate<number>(clipped), 0, 'desktop: a real-server table wider than its card');
      writeFileSync(join(out, 'dashboard-desktop.png'), await page.screenshot());
      await page.viewport(390, 844, true);
      await new Promise((r) => setTimeout(r, 1500)); // a status or two at the new width
      const width = await page.evaluate<number>('document.documentElement.scrollWidth');
      assert.ok(width <= 390, `phone width: the page is ${width} px wide, wider than the screen`);
      const phoneShot = await page.screenshot();
      writeFileSync(join(out, 'dashboard-phone.png'), phoneShot);
      assert.equal(await page.evaluate<number>(clipped), 0, `phone: a real-server table wider than its card: ${await page.evaluate<string>(`JSON.stringify([...document.querySelectorAll('.table-wrap')].map((w) => [w.scrollWidth, w.clientWidth]))`)}`);
      writeFileSync(join(out, 'dashboard-phone.png'), await page.screenshot());
      await page.viewport(1280, 900);
    } finally {
      await bed.startServer(1);
    }
    assert.ok(await until(page, (s) => s[S80]?.servers[`${R2}:8080`]?.health === 'up' && s[S81]?.quorum === 'quorum up'), 'back up on the page');
  });

  test('control: a page whose stream stopped after its first status fails the same check, and says it is stale', async () => {
    const frozen = await browser.newPage();
    // the page's EventSource, closed after its first message: the stream stops as a dead one would
    await frozen.send('Page.addScriptToEvaluateOnNewDocument', { source: `{ const Real = window.EventSource; window.EventSource = function (u) { const es = new Real(u); es.addEventListener('message', () => es.close()); return es; }; }` });
    await frozen.goto(URL_);
    assert.ok(await until(frozen, (s) => s[S80] !== undefined), 'the first status is shown');
    const r = await numbersMove(frozen, 8000);
    assert.equal(r.ok, false, `a frozen page passed the check: ${JSON.stringify(r)}`);
    assert.equal(r.after, r.before);
    assert.equal(await frozen.evaluate<string>(`document.getElementById('live').dataset.state`), 'stale');
    // the live page, meanwhile, moved
    assert.ok(total((await read(page))[S80]) > r.before, 'the live page saw the traffic');
  });
});
