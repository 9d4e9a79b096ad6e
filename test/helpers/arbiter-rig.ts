/**
 * An Arbiter on real storage with the settings the arbiter tests share (no IBKR, a cache fresh for
 * 5 minutes, a climb back after 3 bars, historical polling each minute), handing the test a copy of
 * every message it sends the trader (copied as postMessage would: the arbiter reuses its message).
 */
import pino from 'pino';
import { Arbiter } from '../../src/actors/arbiter/arbiter.ts';
import type { ArbiterToTrader } from '../../src/actors/arbiter/protocol.ts';
import type { Clock } from '../../src/market/clock.ts';
import type { Storage } from '../../src/storage/storage.ts';

const MIN = 60_000;

export function recordingArbiter(storage: Storage, clock: Clock, preloadBars: number, onSend: (m: ArbiterToTrader) => void): Arbiter {
  return new Arbiter({
    store: storage.bars,
    checkpoints: storage.checkpoints,
    clock,
    log: pino({ level: 'silent' }),
    cacheMaxAgeMs: 5 * MIN,
    preloadBars,
    climbBackAfterBars: 3,
    historicalPollMs: MIN,
    ibkr: null,
    send: (m) => onSend(structuredClone(m)),
  });
}
