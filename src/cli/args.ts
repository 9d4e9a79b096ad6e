/** Argument checks shared by the barkeep commands. */
import { type ParseArgsConfig, parseArgs } from 'node:util';
import { isValidSymbol } from '../market/bar.ts';
import { BAR_SIZES, isBarSize, type BarSize } from '../market/bar-size.ts';
import { BarkeepError } from '../errors.ts';

/** Bad command-line usage: the command prints it and exits 2. */
export class UsageError extends BarkeepError<'USAGE'> {
  constructor(message: string) {
    super('USAGE', message);
  }
}

/** The one SYMBOL positional and `--bar-size` (default 1Min), or a UsageError naming which is wrong. */
export function symbolAndBarSize(positionals: readonly string[], barSizeOption: string | undefined): { symbol: string; barSize: BarSize } {
  if (positionals.length !== 1) {
    throw new UsageError(positionals.length === 0 ? 'SYMBOL is missing' : `one SYMBOL expected, got ${positionals.length}: ${positionals.join(' ')}`);
  }
  const symbol = positionals[0].trim().toUpperCase();
  if (!isValidSymbol(symbol)) throw new UsageError(`SYMBOL: ${JSON.stringify(positionals[0])} is not a symbol (letters and digits, e.g. QQQ or BRK.B)`);
  const barSize = barSizeOption ?? '1Min';
  if (!isBarSize(barSize)) throw new UsageError(`--bar-size: ${JSON.stringify(barSize)} is not one of ${BAR_SIZES.join(', ')}`);
  return { symbol, barSize };
}

/** `node:util` parseArgs, strict, for a command's argv: an unknown or malformed option is a UsageError. */
export function parseCommandArgs<const O extends NonNullable<ParseArgsConfig['options']>, const P extends boolean = false>(argv: string[], options: O, allowPositionals?: P) {
  try {
    return parseArgs({ args: argv, options, allowPositionals: (allowPositionals ?? false) as P, strict: true });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}
