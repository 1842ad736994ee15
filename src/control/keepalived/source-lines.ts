/**
 * From the physical lines of keepalived.conf to the lines the lexer reads, in keepalived's
 * order (lib/parser.c read_line): the comment is removed; a line that continues a multiline
 * definition goes to it; the conditional `@ID` / `@^ID` is applied (conditional.ts); a
 * definition `$NAME=VALUE` is recorded; references are replaced (definitions.ts), and when
 * the result starts with `@` its conditional is applied (keepalived 2.2.7 does: `$IF=@main`
 * then `$IF priority 240`); a multiline definition's further lines are read the same way.
 * Every character keeps the column it came from (a replacement's, the column of its `$`), so
 * errors name the place in the file that produced them.
 *
 * Sequence and list blocks (`~SEQ(...)`, `~LST(...)`) are refused with their position.
 */
import { applyConditional, commentStart, ConditionalError } from './conditional.js';
import { DefinitionError, type Definitions, type SourceText } from './definitions.js';

/** a line for the lexer: `cols[i]` is the 0-based column in physical line `line` of `text[i]` */
export interface LexLine extends SourceText {
  line: number;
  /** it came from a conditional line that was kept */
  conditional: boolean;
}

/** A refusal with its 0-based column in the physical line. */
export class LineError extends Error {
  constructor(
    readonly col: number,
    msg: string,
  ) {
    super(msg);
  }
}

const identity = (n: number): number[] => Array.from({ length: n }, (_, i) => i);
/** how deep multiline definitions may expand inside each other */
const MAX_NESTING = 32;

/**
 * The lexer's lines for physical line `raw` (line number `line`) of a file in directory `dir`
 * (for ${_PWD}). `defs` carries the definitions from line to line and across included files.
 */
export function sourceLines(raw: string, line: number, dir: string, defs: Definitions): LexLine[] {
  const body = raw.replace(/\r$/, '');
  const text = body.slice(0, commentStart(body));
  if (defs.reading) {
    // keepalived: an empty line ends the definition; a blank or comment-only one is skipped
    if (body === '') defs.continueDefinition('');
    else if (text.trim() !== '') defs.continueDefinition(text);
    return [];
  }
  const out: LexLine[] = [];
  read({ text, cols: identity(text.length) }, false, 0);
  return out;

  function read(src: SourceText, wasConditional: boolean, depth: number): void {
    if (depth > MAX_NESTING) throw new LineError(src.cols[0] ?? 0, `multiline definitions nested more than ${MAX_NESTING} deep`);
    let conditional = wasConditional;
    let cur = conditionalOf(src);
    if (cur === null) return;
    if (cur.text !== src.text) conditional = true;
    if (defs.define(cur.text)) return;
    const lead = cur.text.length - cur.text.trimStart().length;
    if (/^~(SEQ|LST)/.test(cur.text.slice(lead))) throw new LineError(cur.cols[lead] ?? 0, `${cur.text.slice(lead, lead + 4)} blocks are not supported by ulvs (write the lines out, or use $NAME definitions)`);
    let more: string[] = [];
    let moreCol = 0;
    if (cur.text.includes('$')) {
      let r;
      try {
        r = defs.substitute(cur, dir);
      } catch (e) {
        if (e instanceof DefinitionError) throw new LineError(e.col, e.message);
        throw e;
      }
      ({ more, moreCol } = r);
      if (r.line.text !== cur.text && r.line.text.trimStart().startsWith('@')) {
        const again = conditionalOf(r.line);
        if (again === null) return;
        conditional = true;
        cur = again;
      } else cur = r.line;
    }
    out.push({ ...cur, line, conditional });
    for (const m of more) read({ text: m, cols: new Array<number>(m.length).fill(moreCol) }, conditional, depth + 1);
  }

  /** the line with its conditional applied (same length, prefix blanked), or null when dropped */
  function conditionalOf(src: SourceText): SourceText | null {
    let t: string;
    try {
      t = applyConditional(src.text, defs.configId);
    } catch (e) {
      if (e instanceof ConditionalError) throw new LineError(src.cols[e.col - 1] ?? 0, e.message);
      throw e;
    }
    if (t === '' && src.text.trim() !== '') return null;
    return { text: t, cols: src.cols };
  }
}
