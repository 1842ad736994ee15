/**
 * The whole check of a complete rule set before ulvsd takes it (start, reload, API, health):
 * on a scratch engine (control-plane.ts validateOnScratch), against this host (`tc`: the capture
 * filters are, or at start will be, installed: kernel-setup.ts checkHost) and against what the
 * data path can carry (`caps`: data-path-limits.ts). Throws the first refusal; changes nothing.
 */
import type { Rules } from '../control/rules.js';
import { validateOnScratch } from './control-plane.js';
import { checkDataPath, type DataPathCaps } from './data-path-limits.js';
import { checkHost } from './kernel-setup.js';

export function validateRules(r: Rules, tc: boolean, caps: DataPathCaps): void {
  validateOnScratch(r);
  checkHost(r, tc);
  checkDataPath(r, caps);
}
