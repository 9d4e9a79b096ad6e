/**
 * The arbiter's `bar` and `feed_switch` events: what it hands the trader, as the trader gets it.
 * A `bar` event carries the bar (read from the cache, as /bars shows it); a `feed_switch` the rung
 * that serves the symbol now and why. Reporting reads one bar per delivery and posts one message.
 */
import type { EmitEvent } from '../../runtime/events.ts';
import { barToWire } from '../../storage/bar-query.ts';
import type { BarReader } from '../../storage/types.ts';
import type { ArbiterToTrader } from './protocol.ts';

export function reportDelivery(store: BarReader, emit: EmitEvent): (msg: ArbiterToTrader) => void {
  return (msg) => {
    if (msg.type === 'bar') {
      const bar = store.get(msg.symbol, msg.barSize, msg.start);
      if (bar) emit('bar', { symbol: msg.symbol, bar_size: msg.barSize, ...barToWire(bar) });
    } else if (msg.type === 'feed') {
      emit('feed_switch', { symbol: msg.symbol, rung: msg.rung, reason: msg.reason });
    }
  };
}
