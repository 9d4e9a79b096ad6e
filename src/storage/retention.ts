/** How long the bar cache keeps bars of each size before background pruning removes them. */
import { BAR_SIZES, isBarSize, type BarSize } from '../market/bar-size.ts';
import { StorageError } from './errors.ts';

const DAY_MS = 86_400_000;

/** Matches config/default.yaml `storage.retention_days`. */
export const DEFAULT_RETENTION_DAYS: Readonly<Record<BarSize, number>> = {
  '1Min': 30,
  '5Min': 180,
  '15Min': 365,
  '30Min': 365,
  '1Hour': 730,
  '1Day': 3650,
};

/** Per bar size, in ms; Infinity keeps a size forever. */
export function retentionMs(days: Partial<Record<BarSize, number>> | undefined): Record<BarSize, number> {
  const out = {} as Record<BarSize, number>;
  for (const size of BAR_SIZES) out[size] = DEFAULT_RETENTION_DAYS[size] * DAY_MS;
  for (const [size, d] of Object.entries(days ?? {})) {
    if (!isBarSize(size)) throw new StorageError('BAD_BAR_SIZE', `retentionDays: ${JSON.stringify(size)} is not a bar size`, { field: 'retentionDays' });
    if (typeof d !== 'number' || !(d > 0)) {
      throw new StorageError('BAD_RETENTION', `retentionDays.${size}: ${String(d)} is not a positive number of days (Infinity keeps forever)`, { field: `retentionDays.${size}` });
    }
    out[size] = d * DAY_MS;
  }
  return out;
}
