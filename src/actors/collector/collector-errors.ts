/**
 * The collector's failures as the user sees them: the newest MAX_ERRORS in `/data-collector/status`
 * (`errors`, newest first, the vendor's own words beside ours), a count per code for `/metrics`, a
 * log line each, and the webhook notification.
 */
import type { Clock } from '../../market/clock.ts';
import type { Logger } from '../../runtime/log.ts';
import type { SourceError, SourceName } from '../../sources/types.ts';
import type { CollectorStatus } from './protocol.ts';

const MAX_ERRORS = 20;

export type OnFailure = (f: { source: SourceName; symbol?: string; code: string; status?: number }) => void;

export class CollectorErrors {
  readonly byCode: Record<string, number> = {};
  list: CollectorStatus['errors'] = [];

  constructor(
    private readonly clock: Clock,
    private readonly log: Logger,
    private readonly onFailure?: OnFailure,
  ) {}

  record(source: SourceName, err: unknown, symbol?: string): void {
    const e = err as SourceError;
    const code = e?.code ?? 'ERROR';
    this.byCode[code] = (this.byCode[code] ?? 0) + 1;
    const message = e?.vendorMessage ? `${e.message} (${e.vendorMessage})` : String(e?.message ?? err);
    this.list.unshift({
      at: new Date(this.clock.now()).toISOString(),
      source,
      ...(symbol ? { symbol } : {}),
      code,
      ...(e?.status ? { status: e.status } : {}),
      message,
    });
    this.list.length = Math.min(this.list.length, MAX_ERRORS);
    this.log.warn({ source, symbol, code, status: e?.status, message }, 'collection failed');
    this.onFailure?.({ source, ...(symbol ? { symbol } : {}), code, ...(e?.status ? { status: e.status } : {}) });
  }
}
