/**
 * The arbiter's record of what it handed the trader (see src/storage/delivery-log.ts): one hook,
 * given to the Arbiter as `onDelivered`, that writes each bar's key and rung.
 */
import type { Clock } from '../../market/clock.ts';
import type { DeliveryLog } from '../../storage/delivery-log.ts';
import type { BarRef, Rung } from './protocol.ts';

export function deliveryRecorder(log: DeliveryLog, clock: Clock): (bar: BarRef, rung: Rung, at?: number) => void {
  return (bar, rung, at = clock.now()) => log.record({ symbol: bar.symbol, barSize: bar.barSize, start: bar.start, rung, source: bar.source, at });
}
