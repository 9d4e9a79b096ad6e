/**
 * A deterministic price path for the TWS simulator: every 5-second bar is a pure function of
 * (seed, symbol, start), so real-time bars, historical bars and fills agree with each other and
 * a test can compute what the simulator sent.
 *
 * (src/sources/sim/price-path.ts is the engine's own simulated market; this one stays inside the
 * fake so the fake depends on nothing under construction.)
 */

export interface SimFiveSecondBar {
  /** UTC epoch ms, a multiple of 5000. */
  start: number;
  open: number;
  high: number;
  low: number;
  close: number;
  volume: number;
  wap: number;
  count: number;
}

export interface SimBar extends SimFiveSecondBar {
  end: number;
}

function fnv1a(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

/** A uniform number in [0, 1) from three integers (a murmur3-style finalizer). */
function unit(a: number, b: number, salt: number): number {
  let h = (a ^ Math.imul(b | 0, 0x9e3779b1) ^ Math.imul(salt, 0x85ebca6b)) >>> 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b) >>> 0;
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35) >>> 0;
  h ^= h >>> 16;
  return (h >>> 0) / 4294967296;
}

const cents = (x: number) => Math.round(x * 100) / 100;

export class PricePath {
  private readonly seed: number;
  private readonly hashes = new Map<string, number>();

  constructor(seed = 1) {
    this.seed = seed >>> 0;
  }

  private hash(symbol: string): number {
    let h = this.hashes.get(symbol);
    if (h === undefined) {
      h = (fnv1a(symbol) ^ Math.imul(this.seed, 0x27d4eb2d)) >>> 0;
      this.hashes.set(symbol, h);
    }
    return h;
  }

  /** Price at simulated time `t` (ms); only multiples of 5000 are sampled by the bars. */
  priceAt(symbol: string, t: number): number {
    const h = this.hash(symbol);
    const base = 20 + (h % 480);
    const k = Math.floor(t / 5000);
    const phase1 = unit(h, 1, 11) * Math.PI * 2;
    const phase2 = unit(h, 2, 12) * Math.PI * 2;
    const smooth = 0.03 * Math.sin((2 * Math.PI * k) / 1440 + phase1) + 0.008 * Math.sin((2 * Math.PI * k) / 97 + phase2);
    const noise = (unit(h, k, 13) - 0.5) * 0.002;
    return cents(base * (1 + smooth + noise));
  }

  fiveSecondBar(symbol: string, start: number): SimFiveSecondBar {
    const s = start - (((start % 5000) + 5000) % 5000);
    const h = this.hash(symbol);
    const k = Math.floor(s / 5000);
    const open = this.priceAt(symbol, s);
    const close = this.priceAt(symbol, s + 5000);
    const wiggle = open * 0.0004;
    const high = cents(Math.max(open, close) + unit(h, k, 21) * wiggle);
    const low = cents(Math.min(open, close) - unit(h, k, 22) * wiggle);
    const wap = Math.round(((open + high + low + close) / 4) * 10_000) / 10_000;
    const volume = 100 + Math.floor(unit(h, k, 23) * 900);
    const count = 1 + Math.floor(unit(h, k, 24) * 20);
    return { start: s, open, high, low, close, volume, wap, count };
  }

  /**
   * One bar over [start, end), built from the 5 s bars (sampled every `stepMs` for long bars,
   * to keep daily history cheap).
   */
  bar(symbol: string, start: number, end: number): SimBar {
    const span = end - start;
    const step = span > 3_600_000 ? 60_000 : 5_000;
    let open = 0;
    let high = -Infinity;
    let low = Infinity;
    let close = 0;
    let volume = 0;
    let wapVolume = 0;
    let count = 0;
    let first = true;
    for (let t = start; t < end; t += step) {
      const f = this.fiveSecondBar(symbol, t);
      if (first) {
        open = f.open;
        first = false;
      }
      high = Math.max(high, f.high);
      low = Math.min(low, f.low);
      close = f.close;
      const weight = step / 5000;
      volume += f.volume * weight;
      wapVolume += f.wap * f.volume * weight;
      count += f.count * weight;
    }
    const wap = volume > 0 ? Math.round((wapVolume / volume) * 10_000) / 10_000 : close;
    return { start, end, open, high, low, close, volume, wap, count };
  }
}
