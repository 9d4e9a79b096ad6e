/** Errors the IBKR adapter rejects with. Callers branch on `code`, never on message text. */
import { BarkeepError } from '../../errors.ts';

export type IbkrErrorCode =
  | 'IBKR_BAD_INPUT' // refused before anything was sent: the message names the field
  | 'IBKR_BAD_DATE' // a date string from TWS that matches none of its formats
  | 'IBKR_DISCONNECTED' // not connected to TWS (or the connection dropped mid-request)
  | 'IBKR_UNAVAILABLE' // 420, 354, 10168, 162 permissions: no data rights for the symbol
  | 'IBKR_BAD_CONTRACT' // 200: IB does not know the contract
  | 'IBKR_PACING' // pacing violations kept coming after backing off
  | 'IBKR_REJECTED' // IB refused the request (validation, order rejected, ...)
  | 'IBKR_TIMEOUT' // no answer in time
  | 'IBKR_ABORTED' // the caller's signal aborted
  | 'IBKR_CLOSED'; // the adapter was closed

export class IbkrError extends BarkeepError<IbkrErrorCode> {
  /** The TWS error code, when TWS sent one. */
  readonly ibCode?: number;
  readonly retryable: boolean;

  constructor(code: IbkrErrorCode, message: string, opts: { ibCode?: number; retryable?: boolean; cause?: unknown } = {}) {
    super(code, message, { cause: opts.cause });
    this.ibCode = opts.ibCode;
    this.retryable = opts.retryable ?? (code === 'IBKR_DISCONNECTED' || code === 'IBKR_TIMEOUT' || code === 'IBKR_PACING');
  }
}
