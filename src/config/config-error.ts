/** A bad setting: stops the start with the one line `config: <key>: <why>`. Its own file so the
 * config loader and the value checks both use it without importing each other. */
import { BarkeepError } from '../errors.ts';

export class ConfigError extends BarkeepError<'BARKEEP_CONFIG_INVALID'> {
  /** Dotted path of the offending key, e.g. `collector.bar_size`. */
  readonly key: string;
  constructor(key: string, message: string) {
    super('BARKEEP_CONFIG_INVALID', key ? `config: ${key}: ${message}` : `config: ${message}`, key ? { field: key } : {});
    this.key = key;
  }
}
