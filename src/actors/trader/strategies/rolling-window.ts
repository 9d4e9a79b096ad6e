/**
 * A fixed-size window of the last N values with running sums: O(1) mean and standard deviation
 * per bar, no allocation after construction.
 *
 * The sums are kept relative to a shift (the mean at the last wrap), because a plain sum of
 * squares loses the variance of prices like 1000.01 vs 1000.02 to cancellation. Each time the
 * buffer wraps, the sums are recomputed from the values, so floating-point drift stays bounded
 * over long runs.
 */
export class RollingWindow {
  readonly capacity: number;
  private readonly values: Float64Array;
  private next = 0;
  private count = 0;
  private shift = 0;
  private sum = 0;
  private sumSq = 0;

  constructor(capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError(`window capacity must be a positive integer, got ${capacity}`);
    this.capacity = capacity;
    this.values = new Float64Array(capacity);
  }

  push(value: number): void {
    if (this.count === 0) this.shift = value;
    if (this.count === this.capacity) {
      const old = this.values[this.next] - this.shift;
      this.sum -= old;
      this.sumSq -= old * old;
    } else {
      this.count++;
    }
    this.values[this.next] = value;
    const d = value - this.shift;
    this.sum += d;
    this.sumSq += d * d;
    this.next++;
    if (this.next === this.capacity) {
      this.next = 0;
      this.resum();
    }
  }

  get full(): boolean {
    return this.count === this.capacity;
  }

  get size(): number {
    return this.count;
  }

  mean(): number {
    return this.count === 0 ? NaN : this.shift + this.sum / this.count;
  }

  /** Population standard deviation of the values in the window. */
  stdDev(): number {
    if (this.count === 0) return NaN;
    const m = this.sum / this.count;
    const variance = this.sumSq / this.count - m * m;
    return variance > 0 ? Math.sqrt(variance) : 0;
  }

  private resum(): void {
    let raw = 0;
    for (let i = 0; i < this.count; i++) raw += this.values[i];
    this.shift = raw / this.count;
    let s = 0;
    let sq = 0;
    for (let i = 0; i < this.count; i++) {
      const d = this.values[i] - this.shift;
      s += d;
      sq += d * d;
    }
    this.sum = s;
    this.sumSq = sq;
  }
}
