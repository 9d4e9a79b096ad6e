/**
 * Packs a minute's events into frames the way the vendors send data: every frame a JSON array,
 * several events to a frame (docs/market-data.md: Massive "every frame is a JSON array" and one can
 * hold several events; Alpaca "data can be batched"). Used by the Massive and Alpaca stream fakes.
 */
import { WebSocket } from 'ws';

export interface PackOptions {
  /** At most this many events to a frame; default 100. 1 sends one event per frame. */
  perFrame?: number;
  /** A frame is closed before an event would take it past this many bytes (one event always fits); default 16 KiB. */
  maxBytes?: number;
  /**
   * Called with the events' indexes [from, to) just before that frame goes out (after its events are
   * encoded, before the first send): a benchmark stamps the frame's send time here.
   */
  onFrame?(from: number, to: number): void;
}

export interface Packed {
  /** Frames sent, counted per connection. */
  frames: number;
  /** Events sent, counted per connection. */
  events: number;
}

export const DEFAULT_EVENTS_PER_FRAME = 100;
export const DEFAULT_FRAME_BYTES = 16 * 1024;

/**
 * Sends `events` (already-built vendor objects) to the `clients` that want each one (`wants(client,
 * index)`), packed in order into frames of at most `perFrame` events and `maxBytes` bytes. A client
 * that wants only some events of a frame gets a frame of just those.
 */
export function sendPacked<C>(events: readonly object[], clients: ReadonlyArray<[WebSocket, C]>, wants: (client: C, index: number) => boolean, opts: PackOptions = {}): Packed {
  const perFrame = Math.max(1, Math.floor(opts.perFrame ?? DEFAULT_EVENTS_PER_FRAME));
  const maxBytes = opts.maxBytes ?? DEFAULT_FRAME_BYTES;
  const out: Packed = { frames: 0, events: 0 };
  const open = clients.filter(([ws]) => ws.readyState === WebSocket.OPEN);
  let from = 0;
  while (from < events.length) {
    // Encode this frame's events: up to perFrame of them, within maxBytes (brackets and commas counted).
    const parts: string[] = [];
    let bytes = 2;
    let to = from;
    while (to < events.length && parts.length < perFrame) {
      const text = JSON.stringify(events[to]);
      if (parts.length > 0 && bytes + 1 + text.length > maxBytes) break;
      bytes += text.length + (parts.length > 0 ? 1 : 0);
      parts.push(text);
      to++;
    }
    opts.onFrame?.(from, to);
    let whole: string | undefined;
    for (const [ws, c] of open) {
      const mine: string[] = [];
      for (let i = from; i < to; i++) if (wants(c, i)) mine.push(parts[i - from]);
      if (mine.length === 0) continue;
      if (mine.length === parts.length) {
        whole ??= `[${parts.join(',')}]`;
        ws.send(whole);
      } else ws.send(`[${mine.join(',')}]`);
      out.frames++;
      out.events += mine.length;
    }
    from = to;
  }
  return out;
}
