/**
 * Actor crash drills while trading: `barkeep serve` on the simulated market at 20x, trading the flip
 * strategy (flip-strategy.ts) on the paper broker; at random moments an actor (the trader most
 * often, else the arbiter or the collector) is crashed through POST /actors/{name}/crash and the
 * drill waits for it to run again. Afterwards the server is stopped and the data read directly:
 * the decision oracle (oracle.ts) recomputes each decision from the cached bars and checks the
 * journal; the cache is checked for holes (the simulated market has a bar every minute).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Barkeep, firstLiveBar, lastHandledBar, startBarkeep, until } from './barkeep.ts';
import { judgeDataDir, type OracleResult } from './oracle.ts';
import { rng } from './random.ts';

export const FLIP = fileURLToPath(new URL('./flip-strategy.ts', import.meta.url));
export const SYMBOLS = ['QQQ', 'SPY'];
export const QTY = 10;

export const CLOCK_START = Date.parse('2026-01-05T15:00:00Z');

/** The trading config; `clockStart` moves the accelerated clock on after a restart. */
export function tradingYaml(speed: number, clockStart = CLOCK_START): string {
  return `runtime:
  clock: accelerated
  clock_speed: ${speed}
  clock_start: "${new Date(clockStart).toISOString()}"
  faults: true
supervisor:
  max_restarts: 100000
  backoff_initial_ms: 20
  backoff_max_ms: 200
collector:
  symbols: [${SYMBOLS.join(', ')}]
  backfill_days: 1
trader:
  symbols: [${SYMBOLS.join(', ')}]
  strategy: module
  strategy_module: ${JSON.stringify(FLIP)}
  strategy_params: { qty: ${QTY} }
risk:
  max_daily_loss: 100000000
  max_orders_per_minute: 1000
`;
}

export interface CrashOptions {
  crashes: number;
  timeLimitMs: number;
  speed?: number;
  seed?: number;
  /** Longest random pause between crashes, ms. */
  maxGapMs?: number;
}

export interface CrashFigures extends OracleResult {
  crashes: number;
  crashes_by_actor: Record<string, number>;
  restarts_seen: number;
  bars_lost: number;
  orders: number;
  fills: number;
  duration_s: number;
}

export async function crashDrill(opts: CrashOptions): Promise<CrashFigures> {
  const dir = mkdtempSync(join(tmpdir(), 'barkeep-drill-crash-'));
  const t0 = Date.now();
  const r = rng(opts.seed ?? 7);
  const byActor: Record<string, number> = {};
  let crashes = 0;
  let from = 0;
  let through = 0;
  let bk: Barkeep | undefined;
  try {
    bk = await startBarkeep({ dir, yaml: tradingYaml(opts.speed ?? 20) });
    const b = bk;
    // The first live bar: after it, each bar's decision is judged.
    from = await firstLiveBar(b);
    while (crashes < opts.crashes && Date.now() - t0 < opts.timeLimitMs) {
      await new Promise((res) => setTimeout(res, r.int(opts.maxGapMs ?? 1500)));
      const roll = r.int(10);
      const actor = roll < 6 ? 'trader' : roll < 8 ? 'arbiter' : 'collector';
      const before = (await b.get('/actors')).json.actors.find((a: any) => a.name === actor).restarts;
      const res = await b.post(`/actors/${actor}/crash`);
      if (res.status !== 202) throw new Error(`crash ${actor}: ${res.status} ${res.text}`);
      crashes++;
      byActor[actor] = (byActor[actor] ?? 0) + 1;
      await until(
        async () => {
          const a = (await b.get('/actors')).json.actors.find((x: any) => x.name === actor);
          return a.state === 'running' && a.restarts > before;
        },
        `${actor} running again`,
        120_000,
        20,
      );
    }
    // Let the trader catch up with what the cache got during the last restart.
    through = await lastHandledBar(b, opts.speed ?? 20);
    const restarts = (await b.get('/actors')).json.actors.reduce((n: number, a: any) => n + a.restarts, 0);
    await b.kill('SIGTERM');
    bk = undefined;

    const { verdict, barsLost, orders } = await judgeDataDir(dir, SYMBOLS, from, through, QTY);
    return {
      ...verdict,
      crashes,
      crashes_by_actor: byActor,
      restarts_seen: restarts,
      bars_lost: barsLost,
      orders: orders.length,
      fills: orders.reduce((n, o) => n + o.fills.length, 0),
      duration_s: (Date.now() - t0) / 1000,
    };
  } finally {
    await bk?.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
}
