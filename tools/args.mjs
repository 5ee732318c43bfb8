// Command-line flags for `npm start`, `npm run upload` and `npm run provision`, on node's util.parseArgs.
// Each flag is described once, in the table its program passes here; `--help` prints that table, so it lists every
// flag. parseArgs' own errors are rephrased as one line each, and a value is never repeated back (it may be a secret).
import { parseArgs } from 'node:util';

/** A user's mistake on the command line: shown as one line, exit status 2. */
export class UsageError extends Error {}

/**
 * Parses `argv` against `flags` ({name: {type, short?, value?: 'NAME', default?, help}}).
 * A string flag takes the next word as its value even when it starts with `-` (`--period -5` reaches the
 * program's own range check instead of parseArgs' "ambiguous" error).
 */
export function parseFlags(argv, flags) {
  const args = [];
  for (let i = 0; i < argv.length; i++) {
    const m = /^--([^=]+)$/.exec(argv[i]);
    if (m && flags[m[1]]?.type === 'string' && i + 1 < argv.length && /^-\d|^-\.\d/.test(argv[i + 1])) args.push(`${argv[i]}=${argv[++i]}`);
    else args.push(argv[i]);
  }
  const options = Object.fromEntries(Object.entries(flags).map(([name, f]) => [name, { type: f.type, ...(f.short ? { short: f.short } : {}) }]));
  let parsed;
  try {
    parsed = parseArgs({ args, options, allowPositionals: true, strict: true, tokens: true });
  } catch (err) {
    const flag = /'(-[^' ,]+)/.exec(err.message)?.[1] ?? '';
    if (err.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') throw new UsageError(`unknown flag ${flag} (--help lists the flags)`);
    if (err.code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE') {
      const name = flag.replace(/^-+/, '').split(/\s/)[0];
      const long = Object.keys(flags).find((n) => n === name || flags[n].short === name) ?? name;
      throw new UsageError(flags[long]?.type === 'boolean' ? noValue(long, flags[long]) : `--${long} needs a value: --${long} ${flags[long]?.value ?? 'VALUE'}`);
    }
    throw new UsageError(err.message.split('\n')[0]);
  }
  const stray = parsed.tokens.find((t) => t.kind === 'positional');
  if (stray) {
    const before = parsed.tokens[parsed.tokens.indexOf(stray) - 1];
    throw new UsageError(before?.kind === 'option' && flags[before.name]?.type === 'boolean' ? noValue(before.name, flags[before.name]) : 'unexpected word on the command line (flags are --NAME VALUE; --help lists them)');
  }
  const values = { ...parsed.values };
  for (const [name, f] of Object.entries(flags)) if (values[name] === undefined && f.default !== undefined) values[name] = f.default;
  return values;
}

const noValue = (name, f) => `--${name} takes no value${f.noValue ? `: ${f.noValue}` : ''}`;

/** The `--help` text: the command, then one line per flag with its value, default and meaning. */
export function usage(command, summary, flags) {
  const left = (name, f) => `${f.short ? `-${f.short}, ` : '    '}--${name}${f.type === 'string' ? ' ' + (f.value ?? 'VALUE') : ''}`;
  const width = Math.max(...Object.entries(flags).map(([n, f]) => left(n, f).length));
  const lines = Object.entries(flags).map(([n, f]) => `  ${left(n, f).padEnd(width)}  ${f.help}${f.default !== undefined && f.type === 'string' ? ` (default ${f.default})` : ''}`);
  return `${command}\n${summary}\n\nFlags:\n${lines.join('\n')}\n`;
}
