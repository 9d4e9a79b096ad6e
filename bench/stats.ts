/** Percentiles and formatting shared by the benchmarks. */
export interface Summary {
  n: number;
  p50: number;
  p99: number;
  p999: number;
  mean: number;
  max: number;
}

export function summarize(samples: readonly number[]): Summary {
  const s = Float64Array.from(samples).sort();
  const at = (q: number) => (s.length ? s[Math.min(s.length - 1, Math.floor(q * s.length))] : NaN);
  let sum = 0;
  for (const x of s) sum += x;
  return { n: s.length, p50: at(0.5), p99: at(0.99), p999: at(0.999), mean: s.length ? sum / s.length : NaN, max: s.length ? s[s.length - 1] : NaN };
}

export function fmt(x: number, digits = 1): string {
  return Number.isFinite(x) ? x.toFixed(digits) : '-';
}

/** Prints rows as an aligned table. */
export function table(headers: string[], rows: Array<Array<string | number>>): string {
  const cells = [headers, ...rows.map((r) => r.map((c) => (typeof c === 'number' ? fmt(c) : c)))];
  const widths = headers.map((_, i) => Math.max(...cells.map((r) => String(r[i] ?? '').length)));
  return cells.map((r) => r.map((c, i) => String(c ?? '').padStart(widths[i])).join('  ')).join('\n');
}

export function rssMiB(): number {
  return process.memoryUsage().rss / 1024 / 1024;
}
