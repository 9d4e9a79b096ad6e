/**
 * Waiting helpers for tests that drive the TWS simulator: the polling itself is test/helpers/wait.ts.
 */
import { WAIT_GUARD_MS, waitFor } from '../../helpers/wait.ts';

export { record } from '../../helpers/wait.ts';

/**
 * `waitFor` with the description first, as the suites written before test/helpers/wait.ts call it;
 * new code calls `waitFor(check, { what })`.
 */
export function until<T>(what: string, check: () => T | undefined | false, guardMs = WAIT_GUARD_MS): Promise<T> {
  return waitFor(check, { what, timeoutMs: guardMs });
}
