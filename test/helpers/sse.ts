/** A Server-Sent Events reader for tests: frames as they arrive, parsed as a browser parses them. */
export interface SseEvent {
  id: string | undefined;
  event: string;
  data: any;
}

export interface SseClient {
  status: number;
  /** Every event received so far, in order. */
  events: SseEvent[];
  /** Resolves with the first received event (from now or earlier) that `pred` accepts. */
  waitFor(pred: (e: SseEvent, all: SseEvent[]) => boolean, what: string, timeoutMs?: number): Promise<SseEvent>;
  close(): void;
}

export async function sse(url: string, headers: Record<string, string> = {}): Promise<SseClient> {
  const ctl = new AbortController();
  const res = await fetch(url, { headers: { accept: 'text/event-stream', ...headers }, signal: ctl.signal });
  const events: SseEvent[] = [];
  const waiters = new Set<() => void>();
  let ended: Error | null = null;
  if (res.ok && res.body) {
    void (async () => {
      const decoder = new TextDecoder();
      let buf = '';
      try {
        for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
          buf += decoder.decode(chunk, { stream: true });
          let i: number;
          while ((i = buf.indexOf('\n\n')) >= 0) {
            const frame = buf.slice(0, i);
            buf = buf.slice(i + 2);
            let id: string | undefined;
            let event = 'message';
            const data: string[] = [];
            for (const line of frame.split('\n')) {
              if (line.startsWith(':')) continue;
              const [k, ...rest] = line.split(':');
              const v = rest.join(':').replace(/^ /, '');
              if (k === 'id') id = v;
              else if (k === 'event') event = v;
              else if (k === 'data') data.push(v);
            }
            if (data.length === 0) continue;
            events.push({ id, event, data: JSON.parse(data.join('\n')) });
          }
          for (const w of waiters) w();
        }
        ended = new Error('the stream ended');
      } catch (err) {
        ended = err as Error;
      }
      for (const w of waiters) w();
    })();
  }
  return {
    status: res.status,
    events,
    waitFor(pred, what, timeoutMs = 20_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const hit = events.find((e) => pred(e, events));
          if (hit) {
            done();
            resolve(hit);
          } else if (ended) {
            done();
            reject(new Error(`${what}: ${ended.message} first`));
          }
        };
        const timer = setTimeout(() => {
          done();
          reject(new Error(`timed out waiting for ${what}; got ${events.length} events: ${events.slice(-5).map((e) => e.event).join(', ')}`));
        }, timeoutMs);
        const done = () => {
          clearTimeout(timer);
          waiters.delete(check);
        };
        waiters.add(check);
        check();
      });
    },
    close: () => ctl.abort(),
  };
}
