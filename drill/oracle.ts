/**
 * The decision oracle: recomputes from the cached bars what the trader had to decide at each bar,
 * and checks the order journal against it.
 *
 * With the flip strategy (flip-strategy.ts) and the paper broker, the order placed at bar p fills at
 * the open of the next bar, before the strategy sees it. So at bar b, following bar p, the position
 * is target(p), and the trader must send exactly one order, for target(b) - target(p), when the two
 * differ, and none when they agree. A bar with a needed order missing is a missed decision; a second
 * order at one bar, or an order where none was needed, is a doubled one. Only bars after the first
 * live bar (`from`) and up to the last one the trader had handled (`through`) are judged.
 */
import { join } from 'node:path';
import type { Bar } from '../src/market/bar.ts';
import { openStorage } from '../src/storage/storage.ts';
import type { OrderRecord } from '../src/storage/types.ts';
import { flipTarget } from './flip-strategy.ts';

const MIN = 60_000;

export interface OracleResult {
  bars_judged: number;
  decisions_expected: number;
  decisions_missed: number;
  orders_doubled: number;
  orders_unexpected: number;
  wrong_quantity: number;
  fills_doubled: number;
  position_mismatch: number;
  examples: string[];
}

export function judge(barsBySymbol: Record<string, Bar[]>, orders: OrderRecord[], from: number, through: number, qty: number): OracleResult {
  const out: OracleResult = {
    bars_judged: 0,
    decisions_expected: 0,
    decisions_missed: 0,
    orders_doubled: 0,
    orders_unexpected: 0,
    wrong_quantity: 0,
    fills_doubled: 0,
    position_mismatch: 0,
    examples: [],
  };
  const note = (s: string) => {
    if (out.examples.length < 10) out.examples.push(s);
  };
  for (const [symbol, bars] of Object.entries(barsBySymbol)) {
    const mine = orders.filter((o) => o.symbol === symbol);
    const byBar = new Map<number, OrderRecord[]>();
    for (const o of mine) byBar.set(o.barStart, [...(byBar.get(o.barStart) ?? []), o]);
    for (let i = 1; i < bars.length; i++) {
      const b = bars[i];
      const p = bars[i - 1];
      if (b.start <= from || b.start > through) continue;
      out.bars_judged++;
      const want = flipTarget(b, qty) - flipTarget(p, qty);
      const got = byBar.get(b.start) ?? [];
      if (got.length > 1) {
        out.orders_doubled += got.length - 1;
        note(`${symbol} ${new Date(b.start).toISOString()}: ${got.length} orders at one bar`);
      }
      if (want !== 0) {
        out.decisions_expected++;
        if (got.length === 0) {
          out.decisions_missed++;
          note(`${symbol} ${new Date(b.start).toISOString()}: target moved by ${want}, no order`);
        } else {
          const signed = got[0].side === 'buy' ? got[0].qty : -got[0].qty;
          if (signed !== want) {
            out.wrong_quantity++;
            note(`${symbol} ${new Date(b.start).toISOString()}: order for ${signed}, the oracle says ${want}`);
          }
        }
      } else if (got.length > 0) {
        out.orders_unexpected++;
        note(`${symbol} ${new Date(b.start).toISOString()}: an order where the target did not move`);
      }
    }
    const execs = new Set<string>();
    let position = 0;
    for (const o of mine) {
      for (const f of o.fills) {
        if (execs.has(f.execId)) out.fills_doubled++;
        execs.add(f.execId);
        position += o.side === 'buy' ? f.qty : -f.qty;
      }
    }
    // Every filled order leaves the position at some bar's target: never beyond +-qty.
    if (Math.abs(position) > qty) {
      out.position_mismatch++;
      note(`${symbol}: position ${position} beyond the strategy's ${qty}`);
    }
  }
  return out;
}

/**
 * After a drill, with the server stopped: reads the data directory's cache and journal, counts the
 * minutes missing between cached bars (the simulated market has one every minute) and judges every
 * bar in (from, through].
 */
export async function judgeDataDir(dir: string, symbols: string[], from: number, through: number, qty: number): Promise<{ verdict: OracleResult; barsLost: number; orders: OrderRecord[] }> {
  const storage = openStorage({ path: join(dir, 'data') });
  try {
    const bars: Record<string, Bar[]> = {};
    let barsLost = 0;
    for (const s of symbols) {
      bars[s] = storage.bars.range(s, '1Min', from - MIN, through);
      for (let i = 1; i < bars[s].length; i++) barsLost += (bars[s][i].start - bars[s][i - 1].start) / MIN - 1;
    }
    const orders = storage.orders.all();
    return { verdict: judge(bars, orders, from, through, qty), barsLost, orders };
  } finally {
    await storage.close();
  }
}
