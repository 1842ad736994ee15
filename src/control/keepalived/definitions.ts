/**
 * keepalived's parameter substitution (keepalived.conf(5) "Parameter substitution", lib/parser.c
 * check_definition, find_definition, replace_param, read_line), checked against
 * `keepalived -t` 2.2.7:
 *
 *   $NAME=VALUE        defines NAME (only blanks may come before `$`; none before `=`); an
 *                      empty VALUE is allowed; a later definition replaces an earlier one
 *   $NAME=... \        a multiline definition: every following line that ends in `\` is one
 *     line \           more line of the value, up to and with the first line that does not
 *     last             (blank lines in between are skipped)
 *   $NAME  ${NAME}     replaced by the value when NAME is defined; `$NAME` only when followed
 *                      by a blank, `,`, `)` or the end of the line, `${NAME}` anywhere. The
 *                      result is scanned again from the same place, so a value may refer to
 *                      other names, resolved at use, not at definition. An undefined name is
 *                      left as written (so `$1` or `$HOME` in a script stay as they are).
 *                      A multiline definition is replaced only where its reference ends the
 *                      line: its first line takes the reference's place, its other lines
 *                      follow as lines of their own, each read as a line of the file (a
 *                      conditional `@ID`, a definition, more references), all at the
 *                      position of the reference.
 *
 * Pre-defined: ${_PWD} (the directory of the file being read), ${_INSTANCE} (the config id),
 * ${_RANDOM [MIN [MAX]]} (an integer in MIN..MAX, default 0..32767), ${_ENV NAME} (an
 * environment variable, '' when unset), ${_HASH} `#` and ${_BANG} `!` (both still start a
 * comment outside quotes after the substitution, as in keepalived, which strips comments again).
 *
 * Where keepalived goes on silently ulvs refuses, with the position: a reference that does not
 * stop expanding (a definition that refers to itself), and a multiline definition referred to
 * in the middle of a line (keepalived leaves it as written, a keyword nobody knows).
 */
import { randomInt } from 'node:crypto';

/** a line of the configuration being read: `cols[i]` is the 0-based column in `line` of `text[i]` */
export interface SourceText {
  text: string;
  cols: number[];
}

/** A reference ulvs refuses; `col` 0-based in the physical line. */
export class DefinitionError extends Error {
  constructor(
    readonly col: number,
    msg: string,
  ) {
    super(msg);
  }
}

/** how many replacements one line may take before it is called endless */
const MAX_EXPANSIONS = 1000;
const NAME = /^[A-Za-z_][A-Za-z0-9_]*/;

interface Definition {
  /** the value's lines; more than one (or `multiline`) for a multiline definition */
  lines: string[];
  multiline: boolean;
}

export class Definitions {
  readonly #defs = new Map<string, Definition>();
  /** the multiline definition whose lines are being read */
  #open: Definition | null = null;

  constructor(
    readonly configId: string,
    readonly env: Record<string, string | undefined> = process.env,
  ) {}

  /** true while a multiline definition takes the following lines */
  get reading(): boolean {
    return this.#open !== null;
  }

  /** One more line (comments removed) of the multiline definition being read. */
  continueDefinition(text: string): void {
    const d = this.#open!;
    const t = text.trim();
    const more = t.endsWith('\\');
    const line = more ? t.slice(0, -1).trimEnd() : t;
    if (line !== '') d.lines.push(line);
    if (!more) this.#open = null;
  }

  /**
   * If `text` (comments removed, conditional applied) is a definition `$NAME=VALUE`, record it
   * and return true.
   */
  define(text: string): boolean {
    const t = text.trimStart();
    if (t[0] !== '$') return false;
    const m = NAME.exec(t.slice(1));
    if (!m || t[1 + m[0].length] !== '=') return false;
    const value = t.slice(2 + m[0].length).trim();
    const multiline = value.endsWith('\\');
    const first = multiline ? value.slice(0, -1).trimEnd() : value;
    const d: Definition = { lines: first === '' && multiline ? [] : [first], multiline };
    this.#defs.set(m[0], d);
    if (multiline) this.#open = d;
    return true;
  }

  /** the value of a pre-defined name, or undefined when `name` is not one (or takes other params) */
  #predefined(name: string, params: string[], dir: string, col: number): string | undefined {
    const none = params.length === 0;
    switch (name) {
      case '_PWD':
        return none ? dir : undefined;
      case '_INSTANCE':
        return none ? this.configId : undefined;
      case '_HASH':
        return none ? '#' : undefined;
      case '_BANG':
        return none ? '!' : undefined;
      case '_ENV':
        return params.length === 1 ? (this.env[params[0]!] ?? '') : undefined;
      case '_RANDOM': {
        if (params.length > 2 || !params.every((p) => /^\d{1,9}$/.test(p))) return undefined;
        const min = params.length > 0 ? Number(params[0]) : 0;
        const max = params.length > 1 ? Number(params[1]) : 32767;
        if (min > max) throw new DefinitionError(col, `\${_RANDOM ${min} ${max}}: the minimum exceeds the maximum`);
        return String(randomInt(min, max + 1));
      }
    }
    return undefined;
  }

  /**
   * Replace the references in `line` (comments removed). Returns the line and, for a
   * multiline definition at its end, the definition's further lines (to be read after it).
   */
  substitute(line: SourceText, dir: string): { line: SourceText; more: string[]; moreCol: number } {
    let { text, cols } = line;
    let more: string[] = [];
    let moreCol = 0;
    let done = 0;
    for (let i = text.indexOf('$'); i >= 0 && i < text.length - 1; i = text.indexOf('$', i)) {
      const ref = this.#reference(text, i);
      if (!ref) {
        i++;
        continue;
      }
      const d = this.#defs.get(ref.name);
      let value: string | undefined;
      if (d && ref.params.length === 0) {
        if (d.multiline) {
          if (ref.end !== text.trimEnd().length) throw new DefinitionError(cols[i]!, `multiline definition $${ref.name} must end its line (keepalived would leave it as written)`);
          value = d.lines[0] ?? '';
          if (more.length > 0) throw new DefinitionError(cols[i]!, `multiline definition $${ref.name} inside another one's first line`);
          more = d.lines.slice(1);
          moreCol = cols[i]!;
        } else value = d.lines[0] ?? '';
      } else value = this.#predefined(ref.name, ref.params, dir, cols[i]!);
      if (value === undefined) {
        i++;
        continue;
      }
      if (++done > MAX_EXPANSIONS) throw new DefinitionError(cols[i]!, `parameter substitution does not end after ${MAX_EXPANSIONS} replacements (a definition that refers to itself?)`);
      text = text.slice(0, i) + value + text.slice(ref.end);
      cols = [...cols.slice(0, i), ...new Array<number>(value.length).fill(cols[i]!), ...cols.slice(ref.end)];
    }
    return { line: { text, cols }, more, moreCol };
  }

  /** the reference at `text[i] === '$'`: its name, parameters (`${_RANDOM 1 9}`) and end */
  #reference(text: string, i: number): { name: string; params: string[]; end: number } | null {
    if (text[i + 1] === '{') {
      const close = text.indexOf('}', i + 2);
      if (close < 0) return null;
      const words = text.slice(i + 2, close).split(/[ \t]+/);
      if (!NAME.test(words[0]!) || NAME.exec(words[0]!)![0] !== words[0] || !words.slice(1).every((w) => /^[A-Za-z0-9_]+$/.test(w))) return null;
      if (/[ \t]$/.test(text.slice(i + 2, close))) return null; // keepalived: no blank before `}`
      return { name: words[0]!, params: words.slice(1), end: close + 1 };
    }
    const m = NAME.exec(text.slice(i + 1));
    if (!m) return null;
    const end = i + 1 + m[0].length;
    if (end < text.length && !' \t,)'.includes(text[end]!)) return null;
    return { name: m[0], params: [], end };
  }
}
