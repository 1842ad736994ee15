/**
 * keepalived's conditional configuration lines (keepalived.conf(5) "Conditional configuration
 * and configuration id"), as keepalived 2.2.7 treats them (lib/parser.c read_line, checked
 * against `keepalived -t -i ID` here):
 *
 *   @ID rest     the line is `rest` when the config id is exactly ID (case-sensitive), else nothing
 *   @^ID rest    the line is `rest` when the config id is NOT ID, else nothing
 *
 * The test is made on the line after its comment (`#`, `!` outside quotes) and its leading
 * blanks are removed, so an indented `@ID` line is conditional too; ID ends at the first space
 * or tab. It applies to that one line only: `@ID virtual_server ... {` conditions the line that
 * opens the block, not the block (its body and `}` stay). It comes before include handling, so
 * `@ID include FILE` includes FILE only for ID, and lines of included files are conditional
 * alike. keepalived's default config id is the host name up to its first dot (`-i ID` changes
 * it); ulvsd's is `ulvs` (`--config-id ID`), so `@ulvs` lines are read by ulvsd and skipped by
 * a keepalived whose host is not called `ulvs`.
 *
 * Where keepalived silently drops a line ulvs refuses it, with its position: `@` or `@^` with
 * no ID, and an `@ID` with nothing after it (both almost always a typo such as
 * `@ulvslvs_sync_daemon`, which would otherwise vanish without a word).
 */

/** The default config id of ulvsd (keepalived's would be the host name). */
export const DEFAULT_CONFIG_ID = 'ulvs';

/** A conditional line ulvs refuses; `col` is 1-based. */
export class ConditionalError extends Error {
  constructor(
    readonly col: number,
    msg: string,
  ) {
    super(msg);
  }
}

/** The comment of a line starts at the first `#` or `!` outside double or single quotes. */
export function commentStart(line: string): number {
  let quote = '';
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (quote) {
      if (c === '\\') i++;
      else if (c === quote) quote = '';
    } else if (c === '"' || c === "'") quote = c;
    else if (c === '#' || c === '!') return i;
  }
  return line.length;
}

/**
 * Apply the conditional of one physical line for `configId`. Returns the line to lex: the
 * line itself when it is not conditional, the line with its `@ID` prefix blanked out (so the
 * columns of what follows are unchanged) when it is kept, or '' when it is dropped. Throws
 * ConditionalError for a malformed conditional.
 */
export function applyConditional(line: string, configId: string): string {
  const lead = line.length - line.trimStart().length;
  if (line[lead] !== '@') return line;
  const body = line.slice(0, commentStart(line)).trimEnd();
  const negated = body[lead + 1] === '^';
  const idStart = lead + (negated ? 2 : 1);
  let idEnd = idStart;
  while (idEnd < body.length && body[idEnd] !== ' ' && body[idEnd] !== '\t') idEnd++;
  const id = body.slice(idStart, idEnd);
  const prefix = negated ? '@^' : '@';
  if (id === '') throw new ConditionalError(lead + 1, `conditional line: ${prefix} must be followed by a config id without a space (${prefix}ID line)`);
  let restStart = idEnd;
  while (restStart < body.length && (body[restStart] === ' ' || body[restStart] === '\t')) restStart++;
  if (restStart >= body.length) throw new ConditionalError(lead + 1, `conditional line ${prefix}${id} has nothing after the config id (keepalived ignores such a line; a missing space?)`);
  const keep = (id === configId) !== negated;
  return keep ? ' '.repeat(restStart) + line.slice(restStart) : '';
}
