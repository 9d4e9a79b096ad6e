/**
 * stoqey reports a message it could not decode as an `error` with reqId -1 and a text such as
 * "unprocessed data left on queue" or "Underrun error" (docs/tws-protocol.md, Pitfalls). A test client
 * must fail on either: it means the simulator (or the adapter's expectations) broke the wire.
 */
import { EventName, type IBApi } from '@stoqey/ib';

const DECODING = /unprocessed data left on queue|Underrun error|Decoding error|Unsupported Version/i;

export interface DecodingGuard {
  /** The decoding errors seen so far. */
  readonly errors: string[];
  /** Throws if any decoding error was seen. */
  assertClean(): void;
  stop(): void;
}

export function watchDecodingErrors(api: IBApi): DecodingGuard {
  const errors: string[] = [];
  const onError = (err: Error) => {
    if (DECODING.test(err?.message ?? '')) errors.push(err.message);
  };
  api.on(EventName.error, onError);
  return {
    errors,
    assertClean() {
      if (errors.length) throw new Error(`stoqey could not decode what the simulator sent:\n${errors.join('\n')}`);
    },
    stop() {
      api.off(EventName.error, onError);
    },
  };
}
