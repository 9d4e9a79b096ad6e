/**
 * One deliberate answer per TWS error or notice code (docs/market-data.md, "Interactive
 * Brokers data limits and codes"; docs/tws-protocol.md, Errors). The adapter branches on `kind`, never on message text, except for 162
 * whose meaning is in its suffix (see `classifyIbError`).
 *
 * Kinds:
 * - unavailable: no permission or subscription for this symbol's data. The rung is unavailable
 *   for the symbol; retry slowly (retryAfterMs, doubling), never hammer.
 * - pacing: IB refused a request for pacing. Back off (retryAfterMs) before the next request.
 * - bad-contract: IB does not know the contract. Terminal for that symbol; reported clearly.
 * - no-data: the request was fine, there is just nothing in that range (162 "returned no data").
 * - link-lost: TWS lost its link to IB (1100). Pause: no data flows, stall alarms are off.
 * - link-restored-data-lost: 1101. Every subscription was dropped: resubscribe everything.
 * - link-restored-data-kept: 1102. Subscriptions survived: keep going.
 * - farm-broken: a data farm connection is broken (2103/2105/2157). Watched: it usually recovers,
 *   but streams may stay dead afterwards, which stall detection catches.
 * - client-id-in-use: 326. TWS closes the socket; reconnect with backoff, same id.
 * - info: nothing to do (farm OK, farm inactive, delayed data shown, ...).
 * - order: about one order (rejected, cancelled, duplicate id, cannot cancel).
 * - other: anything not listed; logged and counted.
 */

export type IbErrorKind =
  | 'unavailable'
  | 'pacing'
  | 'bad-contract'
  | 'no-data'
  | 'link-lost'
  | 'link-restored-data-lost'
  | 'link-restored-data-kept'
  | 'farm-broken'
  | 'client-id-in-use'
  | 'info'
  | 'order'
  | 'other';

export interface IbErrorPolicy {
  kind: IbErrorKind;
  /** First wait before the same thing is tried again; doubled on each repeat by the caller. */
  retryAfterMs?: number;
  /** One line on why, for logs and status. */
  note: string;
}

const MINUTE = 60_000;

export const IB_ERROR_POLICY: Readonly<Record<number, IbErrorPolicy>> = {
  // market data permissions: the rung is unavailable for that symbol
  420: { kind: 'unavailable', retryAfterMs: MINUTE, note: 'invalid real-time query: no market data permission (or real-time pacing)' },
  354: { kind: 'unavailable', retryAfterMs: MINUTE, note: 'market data not subscribed' },
  10168: { kind: 'unavailable', retryAfterMs: MINUTE, note: 'market data not subscribed and delayed data not enabled' },
  // historical: meaning depends on the text, see classifyIbError; this is the pacing default
  162: { kind: 'pacing', retryAfterMs: MINUTE, note: 'historical data service error' },
  200: { kind: 'bad-contract', note: 'no security definition found: the contract is wrong or ambiguous' },
  321: { kind: 'other', note: 'request failed validation' },
  366: { kind: 'info', note: 'no historical query found for the request id (already finished or cancelled)' },
  300: { kind: 'info', note: 'no request with that id (already finished or cancelled)' },
  // connectivity between TWS and IB
  1100: { kind: 'link-lost', note: 'connectivity between TWS and IB lost: paused' },
  1101: { kind: 'link-restored-data-lost', note: 'connectivity restored, data lost: resubscribing everything' },
  1102: { kind: 'link-restored-data-kept', note: 'connectivity restored, data kept' },
  1300: { kind: 'link-lost', note: 'TWS socket port was reset: reconnecting' },
  // data farms
  2103: { kind: 'farm-broken', note: 'market data farm connection broken' },
  2105: { kind: 'farm-broken', note: 'historical data farm connection broken' },
  2157: { kind: 'farm-broken', note: 'sec-def data farm connection broken' },
  2104: { kind: 'info', note: 'market data farm connection OK' },
  2106: { kind: 'info', note: 'historical data farm connection OK' },
  2158: { kind: 'info', note: 'sec-def data farm connection OK' },
  2107: { kind: 'info', note: 'historical data farm inactive (normal)' },
  2108: { kind: 'info', note: 'market data farm inactive (normal)' },
  2119: { kind: 'info', note: 'market data farm is connecting' },
  2159: { kind: 'info', note: 'sec-def data farm inactive (normal)' },
  10167: { kind: 'info', note: 'not subscribed, showing delayed data (not fatal)' },
  2109: { kind: 'info', note: 'outside-RTH flag ignored for this order' },
  399: { kind: 'info', note: 'order message warning' },
  // session
  326: { kind: 'client-id-in-use', retryAfterMs: 2_000, note: 'client id already in use' },
  // stoqey's own client-side codes; the socket's `disconnected` event is what the adapter acts on
  501: { kind: 'info', note: 'already connected' },
  502: { kind: 'other', note: 'could not connect to TWS, or the socket failed' },
  504: { kind: 'other', note: 'not connected' },
  // orders
  103: { kind: 'order', note: 'duplicate order id' },
  201: { kind: 'order', note: 'order rejected' },
  202: { kind: 'order', note: 'order cancelled' },
  161: { kind: 'order', note: 'cancel attempted when the order is not cancellable' },
  10147: { kind: 'order', note: 'order to cancel not found' },
  10148: { kind: 'order', note: 'order cannot be cancelled in its state' },
};

const OTHER: IbErrorPolicy = { kind: 'other', note: 'unlisted code' };

/** The answer for `code`; 162 is refined by its message (pacing, permissions, no data). */
export function classifyIbError(code: number, message = ''): IbErrorPolicy {
  if (code === 162) {
    if (/pacing violation/i.test(message)) return IB_ERROR_POLICY[162];
    if (/returned no data|no data/i.test(message)) return { kind: 'no-data', note: 'historical query returned no data' };
    if (/permission|not subscribed/i.test(message)) {
      return { kind: 'unavailable', retryAfterMs: MINUTE, note: 'no historical market data permission' };
    }
    if (/query cancelled|cancelled/i.test(message)) return { kind: 'info', note: 'historical query cancelled' };
    return { kind: 'other', note: 'historical data service error' };
  }
  // 420 can also mean real-time pacing; either way: unavailable for now, retried slowly.
  return IB_ERROR_POLICY[code] ?? OTHER;
}
