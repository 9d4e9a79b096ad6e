/**
 * The one error hierarchy, in the manner of undici's `UND_ERR_*` and fastify's error catalogue:
 * every error barkeep throws on purpose is a BarkeepError with a stable `code`, the offending
 * `field` when there is one, and the `cause` it wraps. Callers branch on the class and the code,
 * never on the message text.
 *
 * Each area declares its codes in one place: the actors in their protocol.ts (collector, arbiter,
 * trader), the runtime in src/runtime/protocol.ts, the sources in src/sources/types.ts and
 * src/sources/ibkr/errors.ts, storage in src/storage/errors.ts, the market in calendar.ts, the
 * config in config/load.ts, the CLI in cli/args.ts. src/server/errors.ts maps codes to HTTP statuses.
 */
export interface BarkeepErrorOptions {
  /** The offending input field (a request body key, a config key, a bar field). */
  field?: string;
  cause?: unknown;
}

export class BarkeepError<C extends string = string> extends Error {
  readonly code: C;
  readonly field?: string;

  constructor(code: C, message: string, opts: BarkeepErrorOptions = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = new.target.name;
    this.code = code;
    if (opts.field !== undefined) this.field = opts.field;
  }
}
