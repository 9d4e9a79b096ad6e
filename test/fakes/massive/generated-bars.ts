/**
 * Deterministic bars for the fakes when a test gives none: one bar per step inside 08:00–24:00
 * UTC (04:00–20:00 New York in summer, the extended session), prices a smooth function of the
 * symbol and time, so two fetches of the same range always agree.
 */
import type { Bar, BarSource } from '../../../src/market/bar.ts';
import { type BarSize, barSizeMs } from '../../../src/market/bar-size.ts';

const DAY = 86_400_000;
const SESSION_START = 8 * 3_600_000;

function symbolSeed(symbol: string): number {
  let h = 2166136261;
  for (let i = 0; i < symbol.length; i++) h = Math.imul(h ^ symbol.charCodeAt(i), 16777619);
  return (h >>> 0) / 2 ** 32;
}

/** Bars with from <= start <= to (inclusive, as the vendors read their ranges). */
export function generatedBars(symbol: string, barSize: BarSize, from: number, to: number, source: BarSource): Bar[] {
  const out: Bar[] = [];
  const base = 20 + symbolSeed(symbol) * 480;
  if (barSize === '1Day') {
    // Daily bars at 04:00 UTC (midnight New York in summer), weekdays only.
    let t = Math.floor(from / DAY) * DAY + 4 * 3_600_000;
    for (; t <= to; t += DAY) {
      const dow = new Date(t).getUTCDay();
      if (t >= from && dow !== 0 && dow !== 6) out.push(makeBar(symbol, barSize, t, base, source));
    }
    return out;
  }
  const step = barSizeMs(barSize);
  let t = Math.ceil(from / step) * step;
  for (; t <= to; t += step) {
    if (((t % DAY) + DAY) % DAY >= SESSION_START) out.push(makeBar(symbol, barSize, t, base, source));
  }
  return out;
}

function round4(x: number): number {
  return Math.round(x * 10_000) / 10_000;
}

function makeBar(symbol: string, barSize: BarSize, t: number, base: number, source: BarSource): Bar {
  const phase = t / 3_600_000;
  const open = round4(base * (1 + 0.02 * Math.sin(phase)));
  const close = round4(base * (1 + 0.02 * Math.sin(phase + 0.05)));
  const high = round4(Math.max(open, close) * 1.001);
  const low = round4(Math.min(open, close) * 0.999);
  const volume = 1000 + Math.floor(((t / 60_000) % 97) * 13);
  return {
    symbol,
    barSize,
    start: t,
    open,
    high,
    low,
    close,
    volume,
    vwap: round4((open + close + high + low) / 4),
    trades: 10 + (volume % 50),
    source,
    receivedAt: 0,
  };
}
