/**
 * Client order ids: deterministic from (strategy, symbol, bar start, signal index), so the same
 * signal on the same bar always yields the same id. That is what lets a restarted trader see that
 * an order was already journaled (or already sent: IBKR's orderRef carries it) and never send it
 * twice.
 *
 * Shape: `bk-<strategy>-<symbol>-<barStartMs base36>-<n base36>`, at most 48 characters, only
 * [A-Za-z0-9-]. The parts are made safe without losing injectivity where it matters:
 * - symbols are upper case (see isValidSymbol), so their separators are spelled in lower case:
 *   `.` becomes `d` and `-` becomes `h` (BRK.B -> BRKdB);
 * - a strategy name that is not plain [a-z0-9-] or is longer than 16 characters is cut and
 *   suffixed with a short hash of the full name, so two long names stay distinct.
 */
import { BarkeepError } from '../../errors.ts';
import type { TraderErrorCode } from './protocol.ts';

export const CLIENT_ORDER_ID_MAX = 48;
const STRATEGY_MAX = 16;
const SAFE_NAME = /^[a-z0-9]+(?:-[a-z0-9]+)*$/;

export class ClientOrderIdError extends BarkeepError<Extract<TraderErrorCode, 'CLIENT_ORDER_ID_INPUT'>> {
  constructor(message: string) {
    super('CLIENT_ORDER_ID_INPUT', message);
  }
}

/** FNV-1a, 32 bit: tiny, stable across processes and versions, good enough to tell names apart. */
function fnv1a(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

const strategyPartCache = new Map<string, string>();

function strategyPart(name: string): string {
  let part = strategyPartCache.get(name);
  if (part !== undefined) return part;
  const lower = name.toLowerCase();
  if (SAFE_NAME.test(lower) && lower.length <= STRATEGY_MAX && lower === name) {
    part = lower;
  } else {
    const hash = fnv1a(name).toString(36).padStart(7, '0');
    const cleaned = lower.replace(/[^a-z0-9]+/g, '-').replace(/^-+|-+$/g, '');
    const head = cleaned.slice(0, STRATEGY_MAX - hash.length - 1).replace(/-+$/, '');
    part = head ? `${head}-${hash}` : hash;
  }
  strategyPartCache.set(name, part);
  return part;
}

const symbolPartCache = new Map<string, string>();

function symbolPart(symbol: string): string {
  const cached = symbolPartCache.get(symbol);
  if (cached !== undefined) return cached;
  if (!/^[A-Z0-9.-]{1,15}$/.test(symbol)) {
    throw new ClientOrderIdError(`symbol "${symbol}" cannot be part of a client order id: expected upper-case letters, digits, "." or "-", at most 15 characters`);
  }
  const part = symbol.replace(/\./g, 'd').replace(/-/g, 'h');
  // Symbols are few (a process trades tens of them); a bound keeps a malicious caller from growing it.
  if (symbolPartCache.size < 10_000) symbolPartCache.set(symbol, part);
  return part;
}

/** The client order id of the `index`-th signal that `strategy` emitted for `symbol` on the bar starting at `barStart`. */
export function clientOrderId(strategy: string, symbol: string, barStart: number, index: number): string {
  if (!Number.isSafeInteger(barStart) || barStart < 0) {
    throw new ClientOrderIdError(`barStart must be a non-negative integer of epoch ms, got ${barStart}`);
  }
  if (!Number.isSafeInteger(index) || index < 0) {
    throw new ClientOrderIdError(`signal index must be a non-negative integer, got ${index}`);
  }
  if (typeof strategy !== 'string' || strategy.length === 0) {
    throw new ClientOrderIdError('strategy name must be a non-empty string');
  }
  const id = `bk-${strategyPart(strategy)}-${symbolPart(symbol)}-${barStart.toString(36)}-${index.toString(36)}`;
  // Bar starts in this century take 8 base36 digits, so real ids stay well under the cap; only an
  // absurd index or a far-future bar could cross it, and refusing those is right.
  if (id.length > CLIENT_ORDER_ID_MAX) {
    throw new ClientOrderIdError(`client order id "${id}" would be ${id.length} characters, above ${CLIENT_ORDER_ID_MAX}`);
  }
  return id;
}
