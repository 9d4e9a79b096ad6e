/**
 * /metrics in the Prometheus text format, all through prom-client. Runtime figures (restarts,
 * messages, failed messages, event-loop lag) are read from the supervisor at scrape time; each
 * actor's own samples are gathered from it over its control port and collected into a registry of
 * their own, counters as Counter and the rest as Gauge, merged with the main one.
 */
import client from 'prom-client';
import type { MetricSample } from '../runtime/protocol.ts';
import type { Supervisor } from '../runtime/supervisor.ts';

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;

export class MetricsRegistry {
  readonly registry = new client.Registry();

  constructor(private readonly sup: Supervisor) {
    client.collectDefaultMetrics({ register: this.registry, prefix: 'barkeep_process_' });
    const names = () => sup.names();
    const registers = [this.registry];
    // Each reads its figures when scraped: reset, then the supervisor's current values.
    new client.Gauge({
      name: 'barkeep_actor_up',
      help: '1 when the actor runs, 0 otherwise',
      labelNames: ['actor', 'state'],
      registers,
      collect() {
        this.reset();
        for (const a of sup.list()) this.set({ actor: a.name, state: a.state }, a.state === 'running' ? 1 : 0);
      },
    });
    const counter = (name: string, help: string, read: (actor: string) => number) =>
      new client.Counter({
        name,
        help,
        labelNames: ['actor'],
        registers,
        collect() {
          this.reset();
          for (const n of names()) this.inc({ actor: n }, read(n));
        },
      });
    const restarts = () => new Map(sup.list().map((a) => [a.name, a.restarts]));
    counter('barkeep_actor_restarts_total', 'Restarts of the actor since the process started', (n) => restarts().get(n) ?? 0);
    counter('barkeep_actor_messages_in_total', 'Messages the actor received (control and peer)', (n) => sup.counters(n).messagesIn);
    counter('barkeep_actor_messages_out_total', 'Messages the actor sent or answered', (n) => sup.counters(n).messagesOut);
    counter('barkeep_actor_failed_messages_total', 'Messages that failed: unknown type, not cloneable, handler error', (n) => sup.counters(n).failed);
    new client.Gauge({
      name: 'barkeep_actor_event_loop_lag_seconds',
      help: "Event-loop delay of the actor's thread over the last second",
      labelNames: ['actor', 'stat'],
      registers,
      collect() {
        this.reset();
        for (const n of names()) {
          const c = sup.counters(n);
          this.set({ actor: n, stat: 'mean' }, c.lagMeanMs / 1000);
          this.set({ actor: n, stat: 'max' }, c.lagMaxMs / 1000);
        }
      },
    });
  }

  async text(): Promise<string> {
    const samples = (await Promise.all(this.sup.names().map((n) => this.sup.actorMetrics(n)))).flat();
    return client.Registry.merge([this.registry, actorRegistry(samples)]).metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}

/** The actors' samples as prom-client metrics, one per name (its help and type from the first sample). */
export function actorRegistry(samples: readonly MetricSample[]): client.Registry {
  const byName = new Map<string, MetricSample[]>();
  for (const s of samples) {
    if (!METRIC_NAME.test(s.name)) continue;
    const list = byName.get(s.name) ?? [];
    list.push(s);
    byName.set(s.name, list);
  }
  const registry = new client.Registry();
  for (const [name, list] of byName) {
    const labelNames = [...new Set(list.flatMap((s) => Object.keys(s.labels)))];
    const help = list[0].help.replace(/\n/g, ' ');
    const value = (s: MetricSample) => (Number.isFinite(s.value) ? s.value : 0);
    if (list[0].type === 'counter') {
      const c = new client.Counter({ name, help, labelNames, registers: [registry] });
      for (const s of list) c.inc(s.labels, Math.max(0, value(s)));
    } else {
      const g = new client.Gauge({ name, help, labelNames, registers: [registry] });
      for (const s of list) g.set(s.labels, value(s));
    }
  }
  return registry;
}
