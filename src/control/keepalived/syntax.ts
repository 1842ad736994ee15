/**
 * keepalived.conf syntax (ecosystem.md §1.1): a tree of statements `keyword args... [{ ... }]`.
 * Comments start with `#` or `!` anywhere outside quotes; strings may be quoted with " or '
 * (quotes stripped, inner spaces kept, \n \t \\ \" \' escapes); `include PATTERN` splices other
 * files (glob `*`, `?` and `{a,b}`; relative to the including file; cycles refused). Every
 * node keeps its file, line and column; errors name them. Conditional lines (`@ID line`,
 * `@^ID line`) are applied for a config id as keepalived does (conditional.ts); parameter
 * substitution ($NAME) is recognised and refused clearly.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, dirname, isAbsolute, join, resolve } from 'node:path';
import { applyConditional, ConditionalError, DEFAULT_CONFIG_ID } from './conditional.js';

export interface Pos {
  file: string;
  line: number;
  col: number;
}

export interface Node {
  key: string;
  args: string[];
  /** null for a plain statement, [] or more for a block */
  children: Node[] | null;
  pos: Pos;
  /** the statement came from a conditional line (`@ID ...` or `@^ID ...`) that was kept */
  conditional?: true;
}

export class ConfigError extends Error {
  constructor(
    readonly pos: Pos,
    msg: string,
  ) {
    super(`${pos.file}:${pos.line}:${pos.col}: ${msg}`);
  }
}

type Tok = { t: 'word' | '{' | '}' | 'nl'; v: string; pos: Pos; conditional?: true };

function lex(text: string, file: string, configId: string): Tok[] {
  const out: Tok[] = [];
  text.split('\n').forEach((raw, li) => {
    let i = 0;
    const at = (c: number): Pos => ({ file, line: li + 1, col: c + 1 });
    let line: string;
    try {
      line = applyConditional(raw, configId);
    } catch (e) {
      if (e instanceof ConditionalError) throw new ConfigError(at(e.col - 1), e.message);
      throw e;
    }
    const first = out.length;
    while (i < line.length) {
      const ch = line[i]!;
      if (ch === ' ' || ch === '\t' || ch === '\r') {
        i++;
        continue;
      }
      if (ch === '#' || ch === '!') break;
      if (ch === '{' || ch === '}') {
        out.push({ t: ch, v: ch, pos: at(i) });
        i++;
        continue;
      }
      if (ch === '"' || ch === "'") {
        const start = i;
        let v = '';
        i++;
        while (i < line.length && line[i] !== ch) {
          if (line[i] === '\\' && i + 1 < line.length) {
            const e = line[i + 1]!;
            v += e === 'n' ? '\n' : e === 't' ? '\t' : e;
            i += 2;
          } else v += line[i++];
        }
        if (i >= line.length) throw new ConfigError(at(start), `unterminated ${ch === '"' ? 'double' : 'single'}-quoted string`);
        i++;
        out.push({ t: 'word', v, pos: at(start) });
        continue;
      }
      const start = i;
      while (i < line.length && !' \t\r{}#!'.includes(line[i]!)) i++;
      const w = line.slice(start, i);
      if (/^include[rmwba]?$/.test(w) && out.length > 0 && out[out.length - 1]!.t !== 'nl') {
        /* not at the start of a line: an ordinary word */
      } else if (/^include[rmwba]?$/.test(w)) {
        // The pattern is the rest of the line (it may hold csh braces like {a,b}).
        out.push({ t: 'word', v: w, pos: at(start) });
        const rest = line.slice(i).replace(/[#!].*$/, '').trim();
        if (rest) out.push({ t: 'word', v: rest.replace(/^["']|["']$/g, ''), pos: at(line.indexOf(rest, i)) });
        break;
      }
      if (/^\$\{?[A-Za-z_]/.test(w)) throw new ConfigError(at(start), `parameter substitution (${w}) is not supported by ulvs`);
      out.push({ t: 'word', v: w, pos: at(start) });
    }
    if (line !== raw && out.length > first) out[first]!.conditional = true;
    out.push({ t: 'nl', v: '', pos: at(line.length) });
  });
  return out;
}

/** Expand a glob with *, ? and {a,b} in the last path component. */
function glob(pattern: string): string[] {
  const braces = /\{([^{}]*)\}/.exec(pattern);
  if (braces) return braces[1]!.split(',').flatMap((alt) => glob(pattern.replace(braces[0], alt)));
  const dir = dirname(pattern);
  const base = basename(pattern);
  if (!/[*?]/.test(base)) return [pattern];
  const re = new RegExp(`^${base.replace(/[.+^$()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')}$`);
  let names: string[] = [];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  return names.filter((n) => re.test(n)).sort().map((n) => join(dir, n));
}

export interface ParseResult {
  nodes: Node[];
  files: string[];
}

/** Parse a configuration file (and what it includes); `configId` decides the conditional lines. */
export function parseConfigFile(path: string, readFile: (p: string) => string = (p) => readFileSync(p, 'utf8'), configId: string = DEFAULT_CONFIG_ID): ParseResult {
  const files: string[] = [];
  const expand = (file: string, stack: string[]): Tok[] => {
    const abs = resolve(file);
    if (stack.includes(abs)) throw new Error(`${file}: include loop (${[...stack, abs].join(' -> ')})`);
    if (stack.length > 16) throw new Error(`${file}: includes nested more than 16 deep`);
    files.push(abs);
    let text: string;
    try {
      text = readFile(abs);
    } catch (e) {
      throw new Error(`cannot read ${file}: ${(e as Error).message}`);
    }
    const toks = lex(text, file, configId);
    const out: Tok[] = [];
    for (let i = 0; i < toks.length; i++) {
      const tk = toks[i]!;
      const lineStart = i === 0 || toks[i - 1]!.t === 'nl';
      if (tk.t === 'word' && lineStart && /^include[rmwba]?$/.test(tk.v)) {
        const arg = toks[i + 1];
        if (!arg || arg.t !== 'word') throw new ConfigError(tk.pos, `${tk.v} needs a file name`);
        const pattern = isAbsolute(arg.v) ? arg.v : join(dirname(abs), arg.v);
        const matches = glob(pattern).filter((p) => {
          try {
            return statSync(p).isFile();
          } catch {
            return false;
          }
        });
        if (matches.length === 0 && tk.v !== 'include') throw new ConfigError(arg.pos, `${tk.v}: nothing matches ${arg.v}`);
        for (const m of matches) out.push(...expand(m, [...stack, abs]));
        i++;
        while (i + 1 < toks.length && toks[i + 1]!.t !== 'nl') i++;
        continue;
      }
      out.push(tk);
    }
    return out;
  };
  const toks = expand(path, []);
  // Build the tree: a newline ends a statement; `{` opens a block for the statement before it.
  const root: Node[] = [];
  const stack: { list: Node[]; open: Pos | null }[] = [{ list: root, open: null }];
  let cur: Node | null = null;
  let last: Node | null = null;
  for (const tk of toks) {
    const top = stack[stack.length - 1]!;
    if (tk.t === 'word') {
      if (cur) cur.args.push(tk.v);
      else {
        cur = { key: tk.v, args: [], children: null, pos: tk.pos, ...(tk.conditional ? { conditional: true as const } : {}) };
        top.list.push(cur);
      }
    } else if (tk.t === 'nl') {
      if (cur) last = cur;
      cur = null;
    } else if (tk.t === '{') {
      const owner = cur ?? last;
      if (!owner || owner.children !== null || !top.list.includes(owner)) throw new ConfigError(tk.pos, "'{' without a keyword before it");
      owner.children = [];
      stack.push({ list: owner.children, open: tk.pos });
      cur = null;
      last = null;
    } else {
      if (stack.length === 1) throw new ConfigError(tk.pos, "unexpected '}'");
      stack.pop();
      cur = null;
      last = null;
    }
  }
  if (stack.length > 1) throw new ConfigError(stack[stack.length - 1]!.open!, "block opened here is not closed ('}' missing)");
  return { nodes: root, files };
}
