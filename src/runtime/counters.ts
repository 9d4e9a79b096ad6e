/**
 * Per-actor runtime counters in a SharedArrayBuffer: the actor's thread writes them, the main
 * thread reads them for /metrics and /actors without a message. The supervisor owns the buffer and
 * hands the same one to every incarnation of an actor, so counts survive restarts.
 */
export const COUNTER = {
  messagesIn: 0,
  messagesOut: 1,
  failedMessages: 2,
  /** Event-loop delay of the actor's thread, ms (mean and max over the last sampling period). */
  loopLagMeanMs: 3,
  loopLagMaxMs: 4,
  /** When the current incarnation became ready (clock-independent: Date.now()). */
  readyAt: 5,
  /** The thread's own V8 heap in use and its off-heap (external) memory, bytes, sampled every 200 ms. */
  heapUsedBytes: 6,
  externalBytes: 7,
  /** Time the thread's event loop has spent busy since the thread started, ms (its event-loop utilization), sampled every 200 ms. */
  activeMs: 8,
  /** The thread's V8 heap as committed in memory (used or not), bytes, sampled every 200 ms. */
  heapPhysicalBytes: 9,
} as const;

const SLOTS = 10;

export function newCounterBuffer(): SharedArrayBuffer {
  return new SharedArrayBuffer(SLOTS * Float64Array.BYTES_PER_ELEMENT);
}

export function counterView(buffer: SharedArrayBuffer): Float64Array {
  return new Float64Array(buffer);
}
