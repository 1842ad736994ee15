/**
 * keepalived.conf syntax (ecosystem.md §1.1): a tree of statements `keyword args... [{ ... }]`.
 * Comments start with `#` or `!` anywhere outside quotes; strings may be quoted with " or '
 * (quotes stripped, inner spaces kept, \n \t \\ \" \' escapes); `include PATTERN` splices other
 * files (glob `*`, `?` and `{a,b}`; relative to the including file; cycles refused). Every
 * node keeps its file, line and column; errors name them. Conditional lines (`@ID line`,
 * `@^ID line`) are applied for a config id as keepalived does (conditional.ts), and so are
 * definitions and references `$NAME=VALUE`, `$NAME`, `${NAME}` (definitions.ts), line by line in
 * file order, includes at their place (source-lines.ts).
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, dirname, isAbsolute, join, resolve } from 'node:path';
import { DEFAULT_CONFIG_ID } from './conditional.js';
import { Definitions } from './definitions.js';
import { LineError, sourceLines, type LexLine } from './source-lines.js';

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

/** The tokens of one lexer line (conditional, definitions and references already applied). */
function lexLine(l: LexLine, file: string): Tok[] {
  const out: Tok[] = [];
  const line = l.text;
  const at = (c: number): Pos => ({ file, line: l.line, col: (l.cols[Math.min(c, line.length - 1)] ?? -1) + 1 + Math.max(0, c - (line.length - 1)) });
  let i = 0;
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
    if (/^include[rmwba]?$/.test(w) && out.length === 0) {
      // The pattern is the rest of the line (it may hold csh braces like {a,b}).
      out.push({ t: 'word', v: w, pos: at(start) });
      const rest = line.slice(i).replace(/[#!].*$/, '').trim();
      if (rest) out.push({ t: 'word', v: rest.replace(/^["']|["']$/g, ''), pos: at(line.indexOf(rest, i)) });
      break;
    }
    out.push({ t: 'word', v: w, pos: at(start) });
  }
  if (l.conditional && out.length > 0) out[0]!.conditional = true;
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
  const defs = new Definitions(configId);
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
    const lines = text.split('\n');
    const out: Tok[] = [];
    for (let li = 0; li < lines.length; li++) {
      let lexLines: LexLine[];
      try {
        lexLines = sourceLines(lines[li]!, li + 1, dirname(abs), defs);
      } catch (e) {
        if (e instanceof LineError) throw new ConfigError({ file, line: li + 1, col: e.col + 1 }, e.message);
        throw e;
      }
      for (const l of lexLines) {
        const toks = lexLine(l, file);
        const tk = toks[0];
        if (tk && tk.t === 'word' && /^include[rmwba]?$/.test(tk.v)) {
          const arg = toks[1];
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
          continue;
        }
        out.push(...toks, { t: 'nl', v: '', pos: { file, line: l.line, col: (l.cols[l.cols.length - 1] ?? -1) + 2 } });
      }
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
