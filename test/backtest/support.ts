/** Pieces shared by the backtest tests: bars written to a real LMDB cache in a temp dir, and a spec. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Bar } from '../../src/market/bar.ts';
import type { BarSize } from '../../src/market/bar-size.ts';
import type { BacktestSpec } from '../../src/backtest/spec.ts';
import { openStorage, type Storage } from '../../src/storage/storage.ts';

type After = { after(fn: () => void | Promise<void>): void };

export const MIN = 60_000;
/** Monday 2026-06-01 10:00 New York (EDT), inside the regular session. */
export const T0 = Date.UTC(2026, 5, 1, 14, 0);

export function tempDir(t: After, prefix = 'barkeep-backtest-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Bars `size` apart from `start` with these closes; each opens at the previous close. */
export function closesToBars(symbol: string, start: number, closes: readonly number[], barSize: BarSize = '1Min', stepMs = MIN): Bar[] {
  return closes.map((close, i) => {
    const open = i === 0 ? close : closes[i - 1];
    return {
      symbol,
      barSize,
      start: start + i * stepMs,
      open,
      high: Math.max(open, close),
      low: Math.min(open, close),
      close,
      volume: 1000,
      vwap: NaN,
      trades: -1,
      source: 'sim',
      receivedAt: start + (i + 1) * stepMs,
    };
  });
}

/** Writes bars into a fresh LMDB environment under `dir`, and closes it. */
export async function seedCache(dir: string, bars: readonly Bar[]): Promise<void> {
  const s: Storage = openStorage({ path: dir });
  try {
    await s.bars.putMany(bars);
  } finally {
    await s.close();
  }
}

export function spec(over: Partial<BacktestSpec>): BacktestSpec {
  return {
    symbols: ['QQQ'],
    bar_size: '1Min',
    from: T0,
    to: T0 + 40 * MIN,
    strategy: 'sma-crossover',
    strategy_module: null,
    params: { fast: 3, slow: 5, qty: 10 },
    cash: 100_000,
    slippage_bps: 10,
    commission_per_share: 0.005,
    min_commission: 1,
    risk: {
      maxPositionPerSymbol: 1000,
      maxOrderNotional: 50_000,
      maxGrossExposure: 200_000,
      maxDailyLoss: 5000,
      maxOrdersPerMinute: 30,
      allowedSessions: ['regular'],
    },
    warmup_bars: 0,
    ...over,
  };
}
