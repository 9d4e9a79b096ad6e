/**
 * Where warm-up ends and live delivery begins for one symbol.
 *
 * A fresh subscription (no position from the trader): the newest cached bars are warm-up and live
 * delivery starts after the newest of them.
 *
 * A trader that restarts subscribes with the last bar it handled (`traderAfter`). Bars that reached
 * the cache while it was down are NOT warm-up: the strategy must decide on each of them, once, in
 * order. So its warm-up is taken at or before `traderAfter`, and live delivery resumes right after
 * it, whatever the cache holds beyond. (Marking the newest cached bar as delivered instead turned
 * those bars into warm-up: decisions that were never made.)
 */
import { MAX_START } from '../../storage/bar-key.ts';

/** The newest bar start warm-up may include. */
export function warmUpLimit(traderAfter: number | undefined): number {
  return traderAfter === undefined ? MAX_START : traderAfter;
}

/** The last-delivered position after warm-up, given the newest warm-up (or cached) bar. */
export function warmUpEdge(lastDelivered: number, newestWarmUp: number, traderAfter: number | undefined): number {
  if (traderAfter !== undefined) return traderAfter;
  return Math.max(lastDelivered, newestWarmUp);
}
