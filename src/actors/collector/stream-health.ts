/**
 * The stream's health as the user sees it (stream-ingest.ts keeps it): per source, the record the
 * ingest updates, its view in `/data-collector/status` (`streams.<source>`) and its samples in
 * `/metrics` (`barkeep_stream_*{source}`).
 */
import type { MetricSample } from '../../runtime/protocol.ts';
import type { BarStream, StreamFailureKind, StreamState } from '../../sources/massive/bar-stream.ts';
import type { SourceName } from '../../sources/types.ts';

export type StreamMode = 'stream' | 'rest';

/** One source's stream in /data-collector/status (snake_case, ISO times). */
export interface StreamHealth {
  /** `off` while the collector is not on this source (or collects another bar size). */
  state: StreamState | 'off';
  /** When `state` last changed. */
  since: string | null;
  messages: number;
  last_message_at: string | null;
  reconnects: number;
  stalls: number;
  /** Symbols subscribed on the stream. */
  subscribed: string[];
  /** `stream` while bars come from the stream, `rest` while the collector polls. */
  mode: StreamMode;
  /** Why the mode is `rest` while the stream is configured (the vendor's words when it sent some). */
  reason: string | null;
}

/** What the ingest keeps per source with a stream configured. */
export interface StreamRec {
  state: StreamState | 'off';
  since: number | null;
  messages: number;
  lastMessageAt: number;
  reconnects: number;
  stalls: number;
  reason: string | null;
  /** A final failure that keeps the stream closed until the symbols change (405) or a restart. */
  failed: StreamFailureKind | null;
}

export function newStreamRec(): StreamRec {
  return { state: 'off', since: null, messages: 0, lastMessageAt: 0, reconnects: 0, stalls: 0, reason: null, failed: null };
}

/** The ingest's state the status and the metrics are built from. */
export interface HealthSnapshot {
  recs: ReadonlyMap<SourceName, StreamRec>;
  /** The source followed now, and its open stream. */
  source: SourceName | null;
  stream: BarStream | null;
  mode: StreamMode;
  barsStreamed: Partial<Record<SourceName, number>>;
  /** Malformed frames counted by streams already closed. */
  malformedBase: Partial<Record<SourceName, number>>;
  divergences(source: SourceName): number;
}

export function streamHealth(h: HealthSnapshot): Partial<Record<SourceName, StreamHealth>> {
  const out: Partial<Record<SourceName, StreamHealth>> = {};
  for (const [name, r] of h.recs) {
    const mine = name === h.source && h.stream;
    const lastAt = r.lastMessageAt;
    out[name] = {
      state: r.state,
      since: r.since === null ? null : new Date(r.since).toISOString(),
      messages: r.messages,
      last_message_at: lastAt > 0 ? new Date(lastAt).toISOString() : null,
      reconnects: r.reconnects,
      stalls: r.stalls,
      subscribed: mine ? h.stream!.subscriptions() : [],
      mode: name === h.source ? h.mode : 'rest',
      reason: r.reason,
    };
  }
  return out;
}

const STATES: Array<StreamState | 'off'> = ['off', 'idle', 'connecting', 'authenticating', 'live', 'reconnecting', 'closed', 'failed'];

export function streamMetrics(h: HealthSnapshot): MetricSample[] {
  const out: MetricSample[] = [];
  for (const [source, r] of h.recs) {
    const labels = { source };
    const mine = source === h.source && h.stream;
    out.push(
      { name: 'barkeep_stream_messages_total', help: 'Frames received on the stream', type: 'counter', labels, value: r.messages },
      { name: 'barkeep_stream_bars_total', help: 'Bars received on the stream', type: 'counter', labels, value: h.barsStreamed[source] ?? 0 },
      {
        name: 'barkeep_stream_malformed_total',
        help: 'Stream messages skipped as malformed',
        type: 'counter',
        labels,
        value: (h.malformedBase[source] ?? 0) + (mine ? h.stream!.counters.malformed : 0),
      },
      { name: 'barkeep_stream_reconnects_total', help: 'Stream reconnects', type: 'counter', labels, value: r.reconnects },
      { name: 'barkeep_stream_stalls_total', help: 'Streams found silent in session and reconnected', type: 'counter', labels, value: r.stalls },
      {
        name: 'barkeep_stream_divergences_total',
        help: 'Streamed bars that differ from the REST bar of the same minute',
        type: 'counter',
        labels,
        value: h.divergences(source),
      },
      {
        name: 'barkeep_stream_last_message_timestamp_seconds',
        help: 'When the stream last sent a frame',
        type: 'gauge',
        labels,
        value: r.lastMessageAt / 1000,
      },
      {
        name: 'barkeep_stream_subscribed',
        help: 'Symbols subscribed on the stream',
        type: 'gauge',
        labels,
        value: mine ? h.stream!.subscriptions().length : 0,
      },
      {
        name: 'barkeep_stream_mode',
        help: '1 while bars come from the stream, 0 while the collector polls REST',
        type: 'gauge',
        labels,
        value: source === h.source && h.mode === 'stream' ? 1 : 0,
      },
    );
    for (const st of STATES) {
      out.push({ name: 'barkeep_stream_state', help: 'Stream state (1 for the current one)', type: 'gauge', labels: { source, state: st }, value: r.state === st ? 1 : 0 });
    }
  }
  return out;
}
