/**
 * The arbiter's per-symbol hot state, in one flat table: a 32-byte record per symbol, indexed by the
 * small integer slot a symbol gets at subscribe, in one ArrayBuffer read through two typed views.
 *
 * Why: bar resolution runs once per bar for every subscribed symbol. With the state in a chain of
 * objects per symbol (a feed, its ladder, the ladder's rung states), 5,000 symbols' state is spread
 * over the heap and each bar misses the caches on every link. Here the state a bar touches (the last
 * delivered start, the ladder's flags and fresh counts, the checkpoint's dirty bit) sits in one
 * record of 32 bytes: 5,000 symbols take 160 KB, well inside L2, and a bar touches one cache line of
 * it (two when a record straddles a line). Strings (reasons, keys) and everything the hot path does
 * not touch stay in ordinary objects (feed-state.ts, ladder.ts).
 *
 * Record layout (Float64 index `slot * 4`, Int32 index `slot * 8`):
 *   bytes 0..7   lastDelivered (float64; -Infinity before any bar)
 *   bytes 8..11  flags (int32): bits 0..3 rung up (LADDER order), bits 4..7 rung enabled,
 *                bits 8..10 serving rung (NONE when none), bit 11 warmedUp, bit 12 dirty
 *   bytes 12..15 unused
 *   bytes 16..31 fresh bars per rung since it last came up (int32, LADDER order)
 */
export const F64_PER_SLOT = 4;
export const I32_PER_SLOT = 8;
/** Int32 offset of the flags within a record. */
export const FLAGS = 2;
/** Int32 offset of the first rung's fresh count within a record. */
export const FRESH = 4;

export const ENABLED_SHIFT = 4;
export const SERVING_SHIFT = 8;
export const SERVING_MASK = 7 << SERVING_SHIFT;
/** The serving code when no rung serves. */
export const NONE = 7;
export const WARMED_UP = 1 << 11;
export const DIRTY = 1 << 12;

/** Rung codes: the index in LADDER (ladder.ts). */
export const REALTIME = 0;
export const PRELOAD = 1;
export const CACHE = 2;
export const HISTORICAL = 3;

export class FeedTable {
  readonly f64: Float64Array;
  readonly i32: Int32Array;

  constructor(readonly size: number) {
    const buf = new ArrayBuffer(Math.max(1, size) * I32_PER_SLOT * 4);
    this.f64 = new Float64Array(buf);
    this.i32 = new Int32Array(buf);
    for (let s = 0; s < size; s++) {
      this.f64[s * F64_PER_SLOT] = -Infinity;
      this.i32[s * I32_PER_SLOT + FLAGS] = NONE << SERVING_SHIFT;
    }
  }
}

/** The serving rung's code (NONE when none) from a record's flags. */
export function servingOf(flags: number): number {
  return (flags & SERVING_MASK) >> SERVING_SHIFT;
}

/**
 * The ladder's common case, on the table: `rung` serves, is up, and the preload is not up (or is the
 * rung). Then nothing can switch: the fresh bar is counted and true returned. Otherwise false, and the
 * caller asks the ladder (FeedLadder.freshBar), which handles every case.
 */
export function countFreshIfServing(t: FeedTable, slot: number, rung: number): boolean {
  const at = slot * I32_PER_SLOT;
  const flags = t.i32[at + FLAGS];
  if (servingOf(flags) !== rung || (flags & (1 << rung)) === 0) return false;
  if (rung !== PRELOAD && (flags & (1 << PRELOAD)) !== 0) return false;
  t.i32[at + FRESH + rung]++;
  return true;
}
