/**
 * The rules file of `ulvsd --rules FILE` and `--save-on-stop FILE`, in ipvsadm -S format.
 *
 *   readRules(file, tc, caps) -> Rules   read, parse and validate; throws an Error for the
 *                                        operator naming the cause and the fix (a missing or
 *                                        unreadable file, a line that does not parse, a rule
 *                                        ulvs refuses)
 *   saveRules(file, rules)               write atomically (a temporary file beside it, then
 *                                        rename(2)), so a crash midway leaves the old file whole;
 *                                        throws an Error naming the file and the cause
 */
import { readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { IpvsError } from '../core/errors.js';
import { formatRules, parseRules, RulesError, type Rules } from '../control/rules.js';
import type { DataPathCaps } from './data-path-limits.js';
import { validateRules as validate } from './validate-rules.js';

/** Why a file cannot be read, in words, with what to do about it. */
export function unreadable(file: string, e: NodeJS.ErrnoException, what: string): string {
  switch (e.code) {
    case 'ENOENT':
      return `${what} ${file} does not exist: create it (ulvsadm -S -n > ${file} saves the running rules), give another path, or start without it`;
    case 'EACCES':
      return `${what} ${file} cannot be read by uid ${process.getuid?.() ?? '?'} (EACCES): let that user read it and search its directories`;
    case 'EISDIR':
      return `${what} ${file} is a directory: give the file inside it`;
    default:
      return `${what} ${file} cannot be read (${e.code ?? e.message})`;
  }
}

/** See the file header. */
export function readRules(file: string, tc: boolean, caps: DataPathCaps): Rules {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new Error(unreadable(file, e as NodeJS.ErrnoException, 'the rules file'));
  }
  let r: Rules;
  try {
    r = parseRules(text, file);
  } catch (e) {
    throw new Error(e instanceof RulesError ? e.message : String(e));
  }
  try {
    validate(r, tc, caps);
  } catch (e) {
    throw new Error(e instanceof IpvsError && e.code !== 'EINVAL' ? `rules rejected: ${e.message}` : (e as Error).message);
  }
  return r;
}

/** See the file header. */
export function saveRules(file: string, rules: Rules): void {
  const tmp = `${file}.${process.pid}.tmp`;
  try {
    writeFileSync(tmp, formatRules(rules), { mode: 0o600 });
    renameSync(tmp, file);
  } catch (e) {
    rmSync(tmp, { force: true });
    const err = e as NodeJS.ErrnoException;
    throw new Error(`the rules could not be saved to ${file} (${err.code ?? err.message}): ${err.code === 'ENOENT' ? 'its directory does not exist' : err.code === 'EACCES' || err.code === 'EROFS' ? 'the directory is not writable' : 'see the cause'}`);
  }
}
