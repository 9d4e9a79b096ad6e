/**
 * The main thread's end of the actors' events (src/runtime/events.ts), served as Server-Sent
 * Events on `GET /events`.
 *
 * - Every event gets an id `<boot>-<seq>`: `boot` names this server process, `seq` counts up.
 *   Events are kept in two rings of `capacity` each: one for the high-volume kinds (`bar`,
 *   `collector`: one or two per symbol per bar close) and one for the rest (`order`, `fill`,
 *   `feed_switch`, `actor`), so a 5,000-symbol minute close cannot evict the orders and fills a
 *   reconnecting client resumes from. A client that reconnects with `Last-Event-ID` gets what it
 *   missed from both, merged in seq order.
 * - An event is kept as it came (no copy, no JSON); its SSE frame is built once, the first time a
 *   client or a replay needs it, so publishing costs next to nothing while nobody listens.
 * - A client whose id is from another process, or from before the oldest order/fill/switch/actor
 *   event still held, gets a `reset` event: it must reload its state (the page refetches), then it
 *   gets what follows. When only high-volume events after its id are gone, it gets the rest in
 *   order, with a `dropped` event where the gap is (`count`, `from_id`, `to_id`: the bar/collector
 *   events no longer held) unless its `types` exclude both high-volume kinds.
 * - Publishing never waits for a client. A client whose socket holds more than `maxBufferedBytes`
 *   unsent is skipped (the events are dropped for it, counted); once its socket drains it gets a
 *   `dropped` event saying how many and which ids, then the stream goes on. A slow or stuck client
 *   costs one length check per event, never memory without bound, and never slows the actors.
 * - `feed_switch` events are also kept per symbol, apart from the ring (the newest
 *   `switchHistory` per symbol, for at most `switchSymbols` symbols), so the page can draw the feed
 *   ladder's timeline with the switches made before it was opened (GET /feed/switches), however
 *   many bar events have gone by since.
 */
import type { ServerResponse } from 'node:http';
import type { ActorEvent, EventType } from '../runtime/events.ts';

export const EVENT_TYPES: readonly EventType[] = ['bar', 'order', 'fill', 'feed_switch', 'actor', 'collector'];

export interface HubOptions {
  /** Events kept for Last-Event-ID resume. */
  capacity?: number;
  /** Unsent bytes a client may hold before its events are dropped. */
  maxBufferedBytes?: number;
  /** Comment line sent to every client this often, so proxies keep the stream open. */
  heartbeatMs?: number;
  /** Names this process in event ids (default: the start time, base 36). */
  boot?: string;
  /**
   * Live events are written to clients this long after the first one of a burst, all of the burst
   * in one write per client: a bar's burst of events (bar, order, fill) costs each client one
   * write, after the actors' work for that bar rather than during it.
   */
  flushMs?: number;
  /** feed_switch events kept per symbol for GET /feed/switches. Default 200. */
  switchHistory?: number;
  /** Symbols whose switches are kept; the one switched least recently is forgotten first. Default 500. */
  switchSymbols?: number;
}

/** One feed switch as GET /feed/switches lists it. */
export interface FeedSwitchRecord {
  /** The event's id on /events. */
  id: string;
  /** ISO time of the switch. */
  at: string;
  /** The rung serving from then on; null when none can. */
  rung: string | null;
  reason: string;
}

interface Stored {
  seq: number;
  type: EventType;
  actor: string;
  ev: ActorEvent;
  /** The SSE frame, built the first time a client needs it. */
  frame: string | undefined;
}

const GONE = 'bar and collector events after that id are no longer held; reload state';

/** The kinds that come one or two per symbol per bar close, kept apart from the rest. */
const BULK: ReadonlySet<EventType> = new Set<EventType>(['bar', 'collector']);

/** The newest `capacity` events of one class, in seq order. */
class Ring {
  private readonly items: Array<Stored | undefined>;
  /** Events ever pushed. */
  total = 0;
  /** The seq of the newest event pushed out (0: none). */
  evictedSeq = 0;
  constructor(readonly capacity: number) {
    this.items = new Array(capacity);
  }
  push(s: Stored): void {
    const i = this.total % this.capacity;
    const old = this.items[i];
    if (old) this.evictedSeq = old.seq;
    this.items[i] = s;
    this.total++;
  }
  get held(): number {
    return Math.min(this.total, this.capacity);
  }
  /** The i-th held event, 0 the oldest. */
  at(i: number): Stored {
    return this.items[(this.total - this.held + i) % this.capacity]!;
  }
  oldestSeq(): number | null {
    return this.held ? this.at(0).seq : null;
  }
  /** Index of the first held event with seq > `seq` (held when none). */
  firstAfter(seq: number): number {
    let lo = 0;
    let hi = this.held;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.at(mid).seq > seq) hi = mid;
      else lo = mid + 1;
    }
    return lo;
  }
}

export interface HubStats {
  clients: number;
  published: number;
  dropped: number;
  oldest_id: string | null;
  newest_id: string | null;
}

class Client {
  droppedCount = 0;
  droppedFrom = 0;
  droppedTo = 0;
  /** Frames waiting for the next flush (one write per client per flush). */
  private pending: string[] = [];
  private pendingBytes = 0;
  constructor(
    readonly res: ServerResponse,
    readonly types: ReadonlySet<string> | null,
    private readonly hub: EventHub,
    private readonly maxBuffered: number,
  ) {
    res.on('drain', () => this.flushDropped());
  }

  offer(ev: Stored, replay = false): void {
    if (this.types && !this.types.has(ev.type)) return;
    // A replay is bounded by the ring; live events are dropped while the socket is backed up.
    if (!replay && this.res.writableLength + this.pendingBytes > this.maxBuffered) {
      if (this.droppedCount === 0) this.droppedFrom = ev.seq;
      this.droppedCount++;
      this.droppedTo = ev.seq;
      this.hub.countDropped();
      return;
    }
    if (this.droppedCount > 0) this.flushDropped();
    const frame = this.hub.frameOf(ev);
    this.pending.push(frame);
    this.pendingBytes += frame.length;
    this.hub.scheduleFlush();
  }

  /** Writes what is pending in one write. */
  flush(): void {
    if (this.pending.length === 0 || this.res.writableEnded) return;
    const out = this.pending.length === 1 ? this.pending[0] : this.pending.join('');
    this.pending = [];
    this.pendingBytes = 0;
    this.res.write(out);
  }

  write(text: string): void {
    this.flush();
    this.res.write(text);
  }

  private flushDropped(): void {
    if (this.droppedCount === 0 || this.res.writableEnded) return;
    const count = this.droppedCount;
    this.droppedCount = 0;
    this.notifyDropped(count, this.droppedFrom, this.droppedTo, 'events were dropped because this client read too slowly; reload state');
  }

  /** A `dropped` event: `count` events from `from` to `to` (seqs) this client will not get. */
  notifyDropped(count: number, from: number, to: number, message: string): void {
    if (this.res.writableEnded) return;
    const data = { count, from_id: this.hub.idOf(from), to_id: this.hub.idOf(to), message };
    // No id: the client's Last-Event-ID stays at the last event it really got.
    this.write(`event: dropped\ndata: ${JSON.stringify(data)}\n\n`);
  }
}

export class EventHub {
  readonly boot: string;
  private readonly capacity: number;
  private readonly maxBuffered: number;
  /** bar and collector events. */
  private readonly bulk: Ring;
  /** order, fill, feed_switch and actor events. */
  private readonly key: Ring;
  private seq = 0;
  private dropped = 0;
  private readonly clients = new Set<Client>();
  private readonly heartbeat: NodeJS.Timeout;
  private readonly flushMs: number;
  private flushTimer: NodeJS.Timeout | null = null;
  private readonly switches = new Map<string, FeedSwitchRecord[]>();
  readonly switchHistory: number;
  private readonly switchSymbols: number;

  constructor(opts: HubOptions = {}) {
    this.capacity = opts.capacity ?? 5000;
    this.maxBuffered = opts.maxBufferedBytes ?? 256 * 1024;
    this.boot = opts.boot ?? Date.now().toString(36);
    this.bulk = new Ring(this.capacity);
    this.key = new Ring(this.capacity);
    this.flushMs = opts.flushMs ?? 50;
    this.switchHistory = opts.switchHistory ?? 200;
    this.switchSymbols = opts.switchSymbols ?? 500;
    this.heartbeat = setInterval(() => {
      for (const c of this.clients) if (c.res.writableLength <= this.maxBuffered) c.write(': ping\n\n');
    }, opts.heartbeatMs ?? 15_000);
    this.heartbeat.unref();
  }

  idOf(seq: number): string {
    return `${this.boot}-${seq}`;
  }

  /** Stamps an actor's event with its id, keeps it, and offers it to every client. */
  publish(actor: string, ev: ActorEvent): void {
    if (!EVENT_TYPES.includes(ev.type)) return;
    const seq = ++this.seq;
    const stored: Stored = { seq, type: ev.type, actor, ev, frame: undefined };
    (BULK.has(ev.type) ? this.bulk : this.key).push(stored);
    if (ev.type === 'feed_switch') this.keepSwitch(seq, ev);
    for (const c of this.clients) c.offer(stored);
  }

  /** The event's SSE frame, built on first use and kept. */
  frameOf(s: Stored): string {
    if (s.frame === undefined) {
      const body = JSON.stringify({ ...s.ev.data, type: s.type, actor: s.actor, at: new Date(s.ev.at).toISOString() });
      s.frame = `id: ${this.idOf(s.seq)}\nevent: ${s.type}\ndata: ${body}\n\n`;
    }
    return s.frame;
  }

  private keepSwitch(seq: number, ev: ActorEvent): void {
    const d = ev.data as { symbol?: unknown; rung?: unknown; reason?: unknown };
    if (typeof d.symbol !== 'string') return;
    let list = this.switches.get(d.symbol);
    if (list) {
      this.switches.delete(d.symbol); // re-inserted: the Map's order is least recently switched first
    } else {
      list = [];
      if (this.switches.size >= this.switchSymbols) this.switches.delete(this.switches.keys().next().value!);
    }
    this.switches.set(d.symbol, list);
    list.push({ id: this.idOf(seq), at: new Date(ev.at).toISOString(), rung: typeof d.rung === 'string' ? d.rung : null, reason: String(d.reason ?? '') });
    if (list.length > this.switchHistory) list.splice(0, list.length - this.switchHistory);
  }

  /** The kept feed switches, oldest first, per symbol (one symbol, or all). */
  feedSwitches(symbol?: string): Record<string, FeedSwitchRecord[]> {
    if (symbol !== undefined) return { [symbol]: [...(this.switches.get(symbol) ?? [])] };
    return Object.fromEntries([...this.switches.entries()].sort((a, b) => (a[0] < b[0] ? -1 : 1)).map(([s, l]) => [s, [...l]]));
  }

  scheduleFlush(): void {
    if (this.flushTimer) return;
    this.flushTimer = setTimeout(() => {
      this.flushTimer = null;
      for (const c of this.clients) c.flush();
    }, this.flushMs);
  }

  countDropped(): void {
    this.dropped++;
  }

  stats(): HubStats {
    const a = this.bulk.oldestSeq();
    const b = this.key.oldestSeq();
    const oldest = a === null ? b : b === null ? a : Math.min(a, b);
    return {
      clients: this.clients.size,
      published: this.seq,
      dropped: this.dropped,
      oldest_id: oldest !== null ? this.idOf(oldest) : null,
      newest_id: this.seq ? this.idOf(this.seq) : null,
    };
  }

  /**
   * Starts streaming to `res` (headers already sent): first what came after `lastEventId` (or a
   * `reset` when that cannot be told), then live. Returns the function that detaches the client.
   */
  attach(res: ServerResponse, opts: { lastEventId?: string; types?: ReadonlySet<string> | null }): () => void {
    const client = new Client(res, opts.types ?? null, this, this.maxBuffered);
    res.write(`retry: 1000\n: barkeep events ${this.boot}\n\n`);
    if (opts.lastEventId) {
      const after = this.resumePoint(opts.lastEventId);
      if (after.ok) {
        this.replay(client, after.seq);
      } else {
        res.write(`event: reset\ndata: ${JSON.stringify({ reason: after.reason, newest_id: this.seq ? this.idOf(this.seq) : null })}\n\n`);
      }
    }
    this.clients.add(client);
    return () => this.clients.delete(client);
  }

  private resumePoint(id: string): { ok: true; seq: number } | { ok: false; reason: string } {
    const m = /^([0-9a-z]+)-(\d+)$/.exec(id.trim());
    if (!m) return { ok: false, reason: `Last-Event-ID ${JSON.stringify(id)} is not an id this server sends` };
    if (m[1] !== this.boot) return { ok: false, reason: 'the server restarted since that event' };
    const seq = Number(m[2]);
    if (seq > this.seq) return { ok: false, reason: 'that event id is in the future' };
    if (seq < this.key.evictedSeq) return { ok: false, reason: `events after ${id} are no longer held (the last ${this.capacity} order, fill, feed_switch and actor events are)` };
    return { ok: true, seq };
  }

  /**
   * Offers `client` every held event after `after`, both rings merged in seq order. Every
   * order/fill/switch/actor event after it is held (else resumePoint said reset); bar/collector
   * events after it that are gone are named first in a `dropped` notice.
   */
  private replay(client: Client, after: number): void {
    let k = this.key.firstAfter(after);
    let b = this.bulk.firstAfter(after);
    // The notice about bar/collector events no longer held, sent where they would have been.
    let gap: { count: number; from: number; to: number } | null = null;
    if (this.bulk.evictedSeq > after && (!client.types || client.types.has('bar') || client.types.has('collector'))) {
      // Seqs after `after` are order/fill/... events (all held) or bulk ones; the first that is
      // not a held key event is the first bulk one, and it is gone (evictedSeq > after).
      let from = after + 1;
      for (let i = k; i < this.key.held && this.key.at(i).seq === from; i++) from++;
      const keyAfter = this.key.held - k;
      const bulkAfter = this.seq - after - keyAfter;
      gap = { count: bulkAfter - (this.bulk.held - b), from, to: this.bulk.evictedSeq };
    }
    while (k < this.key.held || b < this.bulk.held) {
      const nextKey = k < this.key.held ? this.key.at(k) : undefined;
      const nextBulk = b < this.bulk.held ? this.bulk.at(b) : undefined;
      const next = nextKey && (!nextBulk || nextKey.seq < nextBulk.seq) ? nextKey : nextBulk!;
      if (next === nextKey) k++;
      else b++;
      if (gap && next.seq > gap.from) {
        client.notifyDropped(gap.count, gap.from, gap.to, GONE);
        gap = null;
      }
      client.offer(next, true);
    }
    if (gap) client.notifyDropped(gap.count, gap.from, gap.to, GONE);
    client.flush();
  }

  /** Ends every stream (the server is closing). */
  close(): void {
    clearInterval(this.heartbeat);
    if (this.flushTimer) clearTimeout(this.flushTimer);
    for (const c of this.clients) {
      c.flush();
      c.res.end();
    }
    this.clients.clear();
  }
}
