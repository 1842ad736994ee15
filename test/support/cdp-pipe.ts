/**
 * A small Chrome DevTools Protocol client over Chromium's --remote-debugging-pipe: requests
 * go to the browser's fd 3 and answers come from its fd 4, each message JSON ended by a NUL
 * byte. Chosen over puppeteer-core because the pipe needs no WebSocket (Node 20 has no client
 * without a flag) and no download: the five commands the dashboard test uses are a few lines.
 *
 *   Browser.launch(argv, prefixArgs)  spawn Chromium headless (as root: --no-sandbox), with
 *                                     `prefixArgs` before it (e.g. ip netns exec NS)
 *   page = await browser.newPage()    a target attached in flat mode; page.send(method, params)
 *   browser.close()                   Browser.close, then SIGKILL if it has not exited in 5 s
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable, Writable } from 'node:stream';

export const CHROMIUM = '/usr/bin/chromium';

type Pending = { resolve: (v: Record<string, unknown>) => void; reject: (e: Error) => void; method: string };

export class Browser {
  #id = 0;
  readonly #pending = new Map<number, Pending>();
  #buf = '';
  stderr = '';

  private constructor(
    readonly proc: ChildProcess,
    readonly profile: string,
  ) {
    const out = proc.stdio[4] as Readable;
    out.setEncoding('utf8');
    out.on('data', (d: string) => this.#receive(d));
    proc.stderr!.on('data', (d: Buffer) => (this.stderr = (this.stderr + d.toString()).slice(-4000)));
    proc.on('exit', (code) => {
      for (const p of this.#pending.values()) p.reject(new Error(`chromium exited (${code}) before answering ${p.method}: ${this.stderr}`));
      this.#pending.clear();
    });
  }

  static launch(prefix: string[] = [], extra: string[] = [], tmpPrefix = 'ulvs-chromium-'): Browser {
    const profile = mkdtempSync(join(tmpdir(), tmpPrefix));
    const argv = [...prefix, CHROMIUM, '--headless=new', '--no-sandbox', '--disable-gpu', '--no-first-run', '--no-default-browser-check', '--disable-extensions', '--disable-background-networking', '--disable-sync', '--disable-component-update', '--hide-scrollbars', '--mute-audio', `--user-data-dir=${profile}`, '--remote-debugging-pipe', ...extra, 'about:blank'];
    const proc = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'ignore', 'pipe', 'pipe', 'pipe'], env: { ...process.env, HOME: profile } });
    return new Browser(proc, profile);
  }

  #receive(d: string): void {
    this.#buf += d;
    let end: number;
    while ((end = this.#buf.indexOf('\0')) >= 0) {
      const msg = JSON.parse(this.#buf.slice(0, end)) as { id?: number; result?: Record<string, unknown>; error?: { message: string } };
      this.#buf = this.#buf.slice(end + 1);
      if (msg.id === undefined) continue; // events: not used
      const p = this.#pending.get(msg.id);
      if (!p) continue;
      this.#pending.delete(msg.id);
      if (msg.error) p.reject(new Error(`${p.method}: ${msg.error.message}`));
      else p.resolve(msg.result ?? {});
    }
  }

  /** One CDP command (to the browser, or to a page's session); rejects after `ms`. */
  send(method: string, params: Record<string, unknown> = {}, sessionId?: string, ms = 30_000): Promise<Record<string, unknown>> {
    const id = ++this.#id;
    const pipe = this.proc.stdio[3] as Writable;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(new Error(`${method}: no answer in ${ms} ms`));
      }, ms);
      this.#pending.set(id, { method, resolve: (v) => (clearTimeout(timer), resolve(v)), reject: (e) => (clearTimeout(timer), reject(e)) });
      pipe.write(`${JSON.stringify({ id, method, params, ...(sessionId ? { sessionId } : {}) })}\0`);
    });
  }

  async newPage(): Promise<Page> {
    const { targetId } = (await this.send('Target.createTarget', { url: 'about:blank' })) as { targetId: string };
    const { sessionId } = (await this.send('Target.attachToTarget', { targetId, flatten: true })) as { sessionId: string };
    const page = new Page(this, sessionId);
    await page.send('Page.enable'); // Page.addScriptToEvaluateOnNewDocument and navigation need it
    return page;
  }

  async close(): Promise<void> {
    const exited = new Promise<void>((r) => (this.proc.exitCode !== null || this.proc.signalCode !== null ? r() : this.proc.once('exit', () => r())));
    await this.send('Browser.close', {}, undefined, 5000).catch(() => undefined);
    const killer = setTimeout(() => this.proc.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(killer);
    rmSync(this.profile, { recursive: true, force: true });
  }
}

export class Page {
  constructor(
    readonly browser: Browser,
    readonly sessionId: string,
  ) {}

  send(method: string, params: Record<string, unknown> = {}): Promise<Record<string, unknown>> {
    return this.browser.send(method, params, this.sessionId);
  }

  /** The value of a JavaScript expression in the page (JSON-serialisable); throws what it throws. */
  async evaluate<T>(expression: string): Promise<T> {
    const r = (await this.send('Runtime.evaluate', { expression, returnByValue: true, awaitPromise: true })) as { result: { value: T }; exceptionDetails?: { text: string; exception?: { description?: string } } };
    if (r.exceptionDetails) throw new Error(`in the page: ${r.exceptionDetails.exception?.description ?? r.exceptionDetails.text}`);
    return r.result.value;
  }

  /** The viewport: width x height CSS pixels; `mobile` as a phone (viewport meta honoured). */
  async viewport(width: number, height: number, mobile = false): Promise<void> {
    await this.send('Emulation.setDeviceMetricsOverride', { width, height, deviceScaleFactor: mobile ? 2 : 1, mobile });
  }

  /** Navigate and resolve once document.readyState is complete. */
  async goto(url: string, ms = 20_000): Promise<void> {
    const r = (await this.send('Page.navigate', { url })) as { errorText?: string };
    if (r.errorText) throw new Error(`${url}: ${r.errorText}`);
    const t0 = Date.now();
    while ((await this.evaluate<string>('document.readyState')) !== 'complete') {
      if (Date.now() - t0 > ms) throw new Error(`${url}: not loaded in ${ms} ms`);
      await new Promise((res) => setTimeout(res, 100));
    }
  }

  /** A PNG of the page (the whole document's height when `full`). */
  async screenshot(full = true): Promise<Buffer> {
    const r = (await this.send('Page.captureScreenshot', { format: 'png', captureBeyondViewport: full })) as { data: string };
    return Buffer.from(r.data, 'base64');
  }
}
