/**
 * `ulvsd --config-test` / `-t`: read a rules file or a keepalived.conf and run the checks ulvsd
 * runs at start (parse, then validate-rules.ts on the rule set: a scratch engine, this host's
 * local addresses for an uncaptured VIP, routes to DR/TUN servers), without starting: no TUN,
 * no routing change, no socket, no check of a real server, nothing sent. For a keepalived.conf
 * the rule set is the one with every real server alive (health not known yet).
 *
 * Exit statuses are keepalived's for `-t` (keepalived/core/main.c config_test_exit,
 * lib/scheduler.h KEEPALIVED_CHK_EXIT_*):
 *   0  the configuration is good
 *   4  it cannot run: the file cannot be read, or ulvsd would refuse it (keepalived's
 *      CONFIG_FILE_NOT_FOUND / CONFIG_FATAL: KEEPALIVED_CHK_EXIT_CONFIG)
 *   5  it runs, but has errors keepalived -t reports too: unknown keywords, which ulvsd ignores
 *      with a warning (KEEPALIVED_CHK_EXIT_CONFIG_TEST)
 * (keepalived 2.2.7 exits 0 for a missing file; its current source, followed here, exits 4.)
 * Every finding is one line on stderr, `file:line:col: message` where the place is known;
 * warnings ulvsd would log are printed as `file:line:col: warning: ...`.
 */
import { readFileSync } from 'node:fs';
import { loadKeepalived, type KeepalivedConfig } from '../control/keepalived/config.js';
import { desiredRules } from '../control/keepalived/desired.js';
import { parseRules, RulesError, type Rules } from '../control/rules.js';
import type { DaemonOptions } from './options.js';
import { validateRules } from './validate-rules.js';
import type { DataPathCaps } from './data-path-limits.js';

export const CONFIG_TEST_OK = 0;
/** KEEPALIVED_CHK_EXIT_CONFIG */
export const CONFIG_TEST_FATAL = 4;
/** KEEPALIVED_CHK_EXIT_CONFIG_TEST */
export const CONFIG_TEST_ERRORS = 5;

/** the warnings that are errors for keepalived -t too (it says "Unknown keyword") */
const KEEPALIVED_ERROR = /unknown keyword|is not a keyword ulvs knows/;

export interface ConfigTestResult {
  code: number;
  /** lines for stderr */
  findings: string[];
  /** one line for stdout when the configuration can run */
  summary: string | null;
}

export type ConfigTestOptions = Pick<DaemonOptions, 'source' | 'configId' | 'capture' | 'fastPath'>;

/** `caps`: what the data path could carry (tests inject routes); default from the options. */
export function configTest(o: ConfigTestOptions, caps?: DataPathCaps): ConfigTestResult {
  if (o.source.kind === 'none') return { code: CONFIG_TEST_FATAL, findings: ['nothing to check: give --rules FILE or --keepalived FILE'], summary: null }; // options.ts refuses this first
  const file = o.source.file;
  const dataPath: DataPathCaps = caps ?? { dr: o.fastPath === 'tc' ? null : 'it needs the kernel fast path (--fast-path tc)' };
  const fatal = (msg: string): ConfigTestResult => ({ code: CONFIG_TEST_FATAL, findings: [msg], summary: null });
  if (o.source.kind === 'rules') {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (e) {
      return fatal(`${file}: cannot read: ${(e as Error).message}`);
    }
    let rules: Rules;
    try {
      rules = parseRules(text, file);
    } catch (e) {
      if (e instanceof RulesError) return fatal(`${e.file}:${e.line}:1: ${e.message.slice(`${e.file}:${e.line}: `.length)}`);
      return fatal(`${file}: ${(e as Error).message}`);
    }
    const refused = validate(rules, o, dataPath);
    if (refused) return fatal(`${file}: ${refused}`);
    return { code: CONFIG_TEST_OK, findings: [], summary: `${file}: configuration OK (${rules.services.length} services, ${rules.dests.length} real servers)` };
  }
  let cfg: KeepalivedConfig;
  try {
    cfg = loadKeepalived(file, undefined, o.configId);
  } catch (e) {
    return fatal((e as Error).message); // ConfigError: file:line:col: ...; a read error names the file
  }
  const rules = desiredRules(cfg, () => undefined, new Map()).rules;
  const refused = validate(rules, o, dataPath);
  if (refused) {
    // name the first virtual_server that is refused on its own, when one is
    const vs = cfg.services.find((v) => validate(desiredRules({ ...cfg, services: [v] }, () => undefined, new Map()).rules, o, dataPath) !== null);
    return fatal(vs ? `${vs.pos.file}:${vs.pos.line}:${vs.pos.col}: ${refused}` : `${file}: ${refused}`);
  }
  const findings = cfg.warnings.map((w) => w.replace(/^([^:]+:\d+:\d+): /, '$1: warning: '));
  const errors = cfg.warnings.some((w) => KEEPALIVED_ERROR.test(w));
  const servers = cfg.services.reduce((n, v) => n + v.realServers.length, 0);
  return { code: errors ? CONFIG_TEST_ERRORS : CONFIG_TEST_OK, findings, summary: `${file}: configuration ${errors ? 'runs, with unknown keywords ignored' : 'OK'} (${cfg.services.length} virtual servers, ${servers} real servers, config id ${o.configId})` };
}

/** the refusal of validate-rules.ts, or null */
function validate(r: Rules, o: ConfigTestOptions, caps: DataPathCaps): string | null {
  try {
    validateRules(r, o.capture === 'tc', caps);
    return null;
  } catch (e) {
    return (e as Error).message;
  }
}
