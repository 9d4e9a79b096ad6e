/**
 * Clocks for actors in several threads. A ClockSpec is cloneable: the supervisor passes it to each
 * worker, which builds the same clock from it, so every thread agrees on the time.
 * - real: wall-clock time.
 * - accelerated: simulated time that starts at `simStart` when the wall clock read `realStart` and
 *   runs `speed` times faster.
 * - shared: a manual clock the main thread moves (tests); the time sits in a SharedArrayBuffer
 *   and a BroadcastChannel wakes the workers' timers.
 */
import { BroadcastChannel } from 'node:worker_threads';
import { ManualClock, RealClock, sleepWith, type Clock, type TimerHandle } from '../market/clock.ts';

export type ClockSpec = { kind: 'real' } | { kind: 'accelerated'; simStart: number; realStart: number; speed: number } | { kind: 'shared'; buffer: SharedArrayBuffer; channel: string };

export class AcceleratedClock implements Clock {
  constructor(
    private readonly simStart: number,
    private readonly realStart: number,
    private readonly speed: number,
  ) {}
  now(): number {
    return this.simStart + (Date.now() - this.realStart) * this.speed;
  }
  setTimeout(fn: () => void, ms: number): TimerHandle {
    const t = setTimeout(fn, Math.max(0, ms) / this.speed);
    return { cancel: () => clearTimeout(t) };
  }
  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    return sleepWith(this, ms, signal);
  }
}

/** The worker-side half of a shared clock: a ManualClock kept in step with the buffer. */
class SharedClockFollower extends ManualClock {
  private readonly channel: BroadcastChannel;
  constructor(buffer: SharedArrayBuffer, name: string) {
    const cell = new Float64Array(buffer);
    super(cell[0]);
    this.channel = new BroadcastChannel(name);
    this.channel.onmessage = () => this.set(cell[0]);
    // The channel must not keep a finished worker alive.
    (this.channel as unknown as { unref(): void }).unref();
  }
}

/** The main-thread half of a shared clock: moves time for every thread that follows it. */
export class SharedClockController {
  readonly spec: ClockSpec;
  private readonly cell: Float64Array;
  private readonly channel: BroadcastChannel;
  private readonly local: ManualClock;

  constructor(start: number) {
    const buffer = new SharedArrayBuffer(Float64Array.BYTES_PER_ELEMENT);
    this.cell = new Float64Array(buffer);
    this.cell[0] = start;
    const name = `barkeep-clock-${process.pid}-${Math.random().toString(36).slice(2)}`;
    this.channel = new BroadcastChannel(name);
    this.spec = { kind: 'shared', buffer, channel: name };
    this.local = new ManualClock(start);
  }
  /** This thread's view of the shared time. */
  get clock(): ManualClock {
    return this.local;
  }
  now(): number {
    return this.cell[0];
  }
  advance(ms: number): void {
    this.set(this.cell[0] + ms);
  }
  set(t: number): void {
    this.cell[0] = Math.max(this.cell[0], t);
    this.local.set(this.cell[0]);
    this.channel.postMessage(this.cell[0]);
  }
  close(): void {
    this.channel.close();
  }
}

export function clockFromSpec(spec: ClockSpec): Clock {
  switch (spec.kind) {
    case 'real':
      return new RealClock();
    case 'accelerated':
      return new AcceleratedClock(spec.simStart, spec.realStart, spec.speed);
    case 'shared':
      return new SharedClockFollower(spec.buffer, spec.channel);
  }
}
