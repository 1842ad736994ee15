/**
 * `ulvsd --help` and the one-line usage of a refused command line, generated from the option
 * table (option-table.ts), so every option is listed with its default and none can be missing.
 *
 *   usageLine(table)  "usage: ulvsd [--rules FILE | --keepalived FILE] [--socket PATH] ..."
 *   helpText(table)   the usage line, then one line per option: name, value, default, what it does
 */
import type { OptionSpec } from './option-table.js';

const word = (o: OptionSpec) => `--${o.name}${o.value ? ` ${o.value}` : ''}`;

/** See the file header. */
export function usageLine(table: readonly OptionSpec[]): string {
  const rest = table.filter((o) => o.name !== 'rules' && o.name !== 'keepalived' && o.name !== 'help' && o.name !== 'version');
  return `usage: ulvsd [--rules FILE | --keepalived FILE] ${rest.map((o) => `[${word(o)}${o.multiple ? ' ...' : ''}]`).join(' ')} | --help | --version`;
}

/** See the file header. */
export function helpText(table: readonly OptionSpec[]): string {
  const width = Math.max(...table.map((o) => word(o).length + (o.short ? 4 : 0)));
  const lines = table.map((o) => {
    const name = `${o.short ? `-${o.short}, ` : ''}${word(o)}`;
    const dflt = o.shownDefault === '-' ? '' : ` (default: ${o.shownDefault})`;
    return `  ${name.padEnd(width)}  ${o.help}${dflt}`;
  });
  return [
    usageLine(table),
    '',
    'ulvsd: the ulvs director daemon (a user-space IPVS). Without --rules or --keepalived it starts with an',
    'empty table, as loading the ip_vs module does; configure it with ulvsadm (ipvsadm\'s command line).',
    'Signals: SIGHUP re-reads --rules/--keepalived, SIGTERM/SIGINT stop and remove everything,',
    'SIGUSR2 stops for a restart (connections kept), SIGUSR1 prints the listings and counters.',
    '',
    'options:',
    ...lines,
    '',
  ].join('\n');
}
