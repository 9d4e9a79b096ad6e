/**
 * /metrics in the Prometheus text format. Runtime figures (restarts, messages, failed messages,
 * event-loop lag) are read from the supervisor at scrape time; each actor's own counters are
 * gathered from it over its control port and appended.
 */
import client from 'prom-client';
import type { MetricSample } from '../runtime/protocol.ts';
import type { Supervisor } from '../runtime/supervisor.ts';

export class MetricsRegistry {
  readonly registry = new client.Registry();

  constructor(private readonly sup: Supervisor) {
    client.collectDefaultMetrics({ register: this.registry, prefix: 'barkeep_' });
    const names = () => sup.names();
    const gauge = (name: string, help: string, labelNames: string[], read: (g: client.Gauge) => void) =>
      new client.Gauge({
        name,
        help,
        labelNames,
        registers: [this.registry],
        collect() {
          this.reset();
          read(this);
        },
      });
    gauge('barkeep_actor_up', '1 when the actor runs, 0 otherwise', ['actor', 'state'], (g) => {
      for (const a of sup.list()) g.set({ actor: a.name, state: a.state }, a.state === 'running' ? 1 : 0);
    });
    gauge('barkeep_actor_restarts_total', 'Restarts of the actor since the process started', ['actor'], (g) => {
      for (const a of sup.list()) g.set({ actor: a.name }, a.restarts);
    });
    gauge('barkeep_actor_messages_in_total', 'Messages the actor received (control and peer)', ['actor'], (g) => {
      for (const n of names()) g.set({ actor: n }, sup.counters(n).messagesIn);
    });
    gauge('barkeep_actor_messages_out_total', 'Messages the actor sent or answered', ['actor'], (g) => {
      for (const n of names()) g.set({ actor: n }, sup.counters(n).messagesOut);
    });
    gauge('barkeep_actor_failed_messages_total', 'Messages that failed: unknown type, not cloneable, handler error', ['actor'], (g) => {
      for (const n of names()) g.set({ actor: n }, sup.counters(n).failed);
    });
    gauge('barkeep_actor_event_loop_lag_seconds', "Event-loop delay of the actor's thread over the last second", ['actor', 'stat'], (g) => {
      for (const n of names()) {
        const c = sup.counters(n);
        g.set({ actor: n, stat: 'mean' }, c.lagMeanMs / 1000);
        g.set({ actor: n, stat: 'max' }, c.lagMaxMs / 1000);
      }
    });
  }

  async text(): Promise<string> {
    const base = await this.registry.metrics();
    const samples = (await Promise.all(this.sup.names().map((n) => this.sup.actorMetrics(n)))).flat();
    return base + formatSamples(samples);
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}

const LABEL_ESCAPE = /[\\"\n]/g;

/** Prometheus text for actor samples, grouped by metric name. */
export function formatSamples(samples: MetricSample[]): string {
  const byName = new Map<string, MetricSample[]>();
  for (const s of samples) {
    if (!/^[a-zA-Z_:][a-zA-Z0-9_:]*$/.test(s.name)) continue;
    const list = byName.get(s.name) ?? [];
    list.push(s);
    byName.set(s.name, list);
  }
  let out = '';
  for (const [name, list] of byName) {
    out += `# HELP ${name} ${list[0].help.replace(/\n/g, ' ')}\n# TYPE ${name} ${list[0].type}\n`;
    for (const s of list) {
      const labels = Object.entries(s.labels)
        .map(([k, v]) => `${k}="${String(v).replace(LABEL_ESCAPE, (c) => (c === '\n' ? '\\n' : `\\${c}`))}"`)
        .join(',');
      out += `${name}${labels ? `{${labels}}` : ''} ${Number.isFinite(s.value) ? s.value : 0}\n`;
    }
  }
  return out;
}
