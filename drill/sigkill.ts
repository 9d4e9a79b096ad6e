/**
 * SIGKILL drills of the whole process: `barkeep serve` trading the flip strategy at 20x is killed
 * with SIGKILL at random moments and started again on the same data directory. Before each kill the
 * drill reads orders, positions and recent bars over HTTP; after the restart every order must still
 * be there with no fill lost (filled quantity never goes back), positions must agree with the
 * journal's fills, and every bar read before must read back identical. At the end the decision
 * oracle judges every bar across all the restarts, and the cache is checked for holes.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Barkeep, firstLiveBar, lastHandledBar, startBarkeep } from './barkeep.ts';
import { CLOCK_START, QTY, SYMBOLS, tradingYaml } from './crash.ts';
import { judgeDataDir, type OracleResult } from './oracle.ts';
import { rng } from './random.ts';

export interface SigkillOptions {
  kills: number;
  timeLimitMs: number;
  speed?: number;
  seed?: number;
  maxGapMs?: number;
}

export interface SigkillFigures extends OracleResult {
  kills: number;
  orders_lost: number;
  fills_lost: number;
  bars_changed: number;
  bars_lost: number;
  position_disagreements: number;
  restart_to_serving_ms_p50: number;
  restart_to_serving_ms_max: number;
  orders: number;
  duration_s: number;
}

interface Snapshot {
  orders: Map<string, { state: string; filled: number }>;
  bars: Map<string, string>;
}

async function snapshot(bk: Barkeep): Promise<Snapshot> {
  const orders = new Map<string, { state: string; filled: number }>();
  for (const o of (await bk.get('/orders')).json.orders) orders.set(o.client_order_id, { state: o.state, filled: o.filled_qty });
  const bars = new Map<string, string>();
  for (const s of SYMBOLS) {
    for (const b of (await bk.get(`/bars/${s}?limit=50`)).json.bars) bars.set(`${s}|${b.t}`, JSON.stringify(b));
  }
  return { orders, bars };
}

export async function sigkillDrill(opts: SigkillOptions): Promise<SigkillFigures> {
  const dir = mkdtempSync(join(tmpdir(), 'barkeep-drill-kill-'));
  const t0 = Date.now();
  const r = rng(opts.seed ?? 11);
  const speed = opts.speed ?? 20;
  // The accelerated clock starts at clock_start in every process: each restart starts it where the
  // killed process had got to, as the real clock would be.
  let clockStart = CLOCK_START;
  let spawnedAt = Date.now();
  const start = async () => {
    spawnedAt = Date.now();
    return startBarkeep({ dir, yaml: tradingYaml(speed, clockStart) });
  };
  const f = { kills: 0, orders_lost: 0, fills_lost: 0, bars_changed: 0, position_disagreements: 0 };
  const restartMs: number[] = [];
  const examples: string[] = [];
  let bk: Barkeep | undefined;
  let from = 0;
  try {
    bk = await start();
    from = await firstLiveBar(bk);
    while (f.kills < opts.kills && Date.now() - t0 < opts.timeLimitMs) {
      await new Promise((res) => setTimeout(res, 300 + r.int(opts.maxGapMs ?? 2500)));
      const before = await snapshot(bk);
      await bk.kill('SIGKILL');
      f.kills++;
      clockStart += (Date.now() - spawnedAt) * speed;
      const t = Date.now();
      bk = await start();
      restartMs.push(Date.now() - t);
      const after = await snapshot(bk);
      for (const [id, o] of before.orders) {
        const a = after.orders.get(id);
        if (!a) {
          f.orders_lost++;
          if (examples.length < 10) examples.push(`order ${id} gone after the restart`);
        } else if (a.filled < o.filled) {
          f.fills_lost++;
          if (examples.length < 10) examples.push(`order ${id} filled ${o.filled} before, ${a.filled} after`);
        }
      }
      for (const [key, bar] of before.bars) {
        const a = after.bars.get(key);
        if (a !== undefined && a !== bar) {
          f.bars_changed++;
          if (examples.length < 10) examples.push(`bar ${key} changed: ${bar} -> ${a}`);
        }
      }
      // Positions agree with the journal's fills. The trader may be handling a bar between the two
      // reads (a fill moves both): a disagreement counts only when it persists over five reads.
      let disagreement = '';
      for (let attempt = 0; attempt < 5; attempt++) {
        const orders = (await bk.get('/orders')).json.orders as any[];
        const positions = (await bk.get('/positions')).json.positions as any[];
        disagreement = '';
        for (const s of SYMBOLS) {
          const fromFills = orders.filter((o) => o.symbol === s).reduce((n, o) => n + (o.side === 'buy' ? o.filled_qty : -o.filled_qty), 0);
          const shown = positions.find((p) => p.symbol === s)?.qty ?? 0;
          if (fromFills !== shown) disagreement = `${s}: position ${shown}, fills say ${fromFills}`;
        }
        if (!disagreement) break;
        await new Promise((res) => setTimeout(res, 200));
      }
      if (disagreement) {
        f.position_disagreements++;
        if (examples.length < 10) examples.push(disagreement);
      }
    }
    const through = await lastHandledBar(bk, speed);
    await bk.kill('SIGTERM');
    bk = undefined;
    const { verdict, barsLost, orders } = await judgeDataDir(dir, SYMBOLS, from, through, QTY);
    restartMs.sort((a, b) => a - b);
    return {
      ...verdict,
      examples: [...examples, ...verdict.examples].slice(0, 10),
      ...f,
      bars_lost: barsLost,
      restart_to_serving_ms_p50: restartMs[Math.floor(restartMs.length / 2)] ?? NaN,
      restart_to_serving_ms_max: restartMs[restartMs.length - 1] ?? NaN,
      orders: orders.length,
      duration_s: (Date.now() - t0) / 1000,
    };
  } finally {
    await bk?.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
}
