/**
 * `npm run drill [-- --quick] [--only fuzz,crash,sigkill,vendor]`: the hostile campaigns of issue 12
 * as part of barkeep. Each runs against a server it starts on loopback (or, for the vendor faults,
 * barkeep's collector against a fault-injecting Massive stand-in), bounded in count and in time.
 * Prints a table of figures, writes them to drill/results/drill.json (drill-quick.json with --quick),
 * and exits 1 when a check fails: any 5xx, a 4xx out of shape, a wrong token accepted, an order lost
 * or doubled, a missed decision, a fill lost, a bar lost, changed or bad, a rate-limit violation, a
 * key leaked.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { crashDrill } from './crash.ts';
import { fuzz } from './fuzz.ts';
import { sigkillDrill } from './sigkill.ts';
import { vendorDrill } from './vendor.ts';

const args = process.argv.slice(2);
const quick = args.includes('--quick');
const onlyArg = args.find((a) => a.startsWith('--only'));
const only = onlyArg ? (onlyArg.includes('=') ? onlyArg.split('=')[1] : args[args.indexOf(onlyArg) + 1]).split(',') : null;
const want = (name: string) => !only || only.includes(name);
const MIN = 60_000;

export const PLANS = {
  full: {
    fuzz: { requests: 10_000, unknownSymbols: 50_000, timeLimitMs: 15 * MIN },
    crash: { crashes: 100, timeLimitMs: 25 * MIN },
    sigkill: { kills: 20, timeLimitMs: 20 * MIN },
    vendor: { rounds: 3, timeLimitMs: 10 * MIN },
  },
  quick: {
    fuzz: { requests: 1_000, unknownSymbols: 2_000, timeLimitMs: 3 * MIN },
    crash: { crashes: 6, timeLimitMs: 3 * MIN },
    sigkill: { kills: 3, timeLimitMs: 3 * MIN },
    vendor: { rounds: 1, timeLimitMs: 3 * MIN },
  },
};

const plan = quick ? PLANS.quick : PLANS.full;
const results: Record<string, any> = {};
const failures: string[] = [];
const rows: Array<[string, string, string]> = [];
const check = (campaign: string, figure: string, value: number, ok: boolean) => {
  rows.push([campaign, figure, String(Number.isInteger(value) ? value : value.toFixed(1))]);
  if (!ok) failures.push(`${campaign}: ${figure} = ${value}`);
};
const show = (campaign: string, figure: string, value: number | string) =>
  rows.push([campaign, figure, typeof value === 'number' ? (Number.isInteger(value) ? String(value) : value.toFixed(1)) : value]);
const started = new Date().toISOString();

if (want('fuzz')) {
  console.error(`fuzz: ${plan.fuzz.requests} requests and ${plan.fuzz.unknownSymbols} unknown symbols...`);
  const f = (results.fuzz = await fuzz(plan.fuzz));
  show('fuzz', 'requests', f.requests);
  show(
    'fuzz',
    'by status',
    Object.entries(f.by_status)
      .map(([s, n]) => `${s}:${n}`)
      .join(' '),
  );
  check('fuzz', '5xx', f.server_errors, f.server_errors === 0);
  check('fuzz', '4xx without {error, field, message}', f.unshaped_4xx, f.unshaped_4xx === 0);
  show('fuzz', 'wrong tokens tried', f.wrong_tokens_tried);
  check('fuzz', 'wrong tokens accepted', f.wrong_tokens_accepted, f.wrong_tokens_accepted === 0);
  show('fuzz', 'heap before / after (MiB)', `${f.heap_before_mib.toFixed(1)} / ${f.heap_after_mib.toFixed(1)}`);
  show('fuzz', 'rss before / after (MiB)', `${f.rss_before_mib.toFixed(1)} / ${f.rss_after_mib.toFixed(1)}`);
  show('fuzz', `heap per unknown symbol (B, ${f.unknown_symbols})`, f.heap_per_unknown_symbol_bytes);
  show('fuzz', 'duration (s)', f.duration_s);
}
if (want('crash')) {
  console.error(`crash: ${plan.crash.crashes} actor crashes while trading...`);
  const c = (results.crash = await crashDrill(plan.crash));
  show(
    'crash',
    'crashes',
    `${c.crashes} (${Object.entries(c.crashes_by_actor)
      .map(([a, n]) => `${a} ${n}`)
      .join(', ')})`,
  );
  show('crash', 'bars judged / decisions expected', `${c.bars_judged} / ${c.decisions_expected}`);
  check('crash', 'missed decisions', c.decisions_missed, c.decisions_missed === 0);
  check('crash', 'orders doubled', c.orders_doubled, c.orders_doubled === 0);
  check('crash', 'orders where none was due', c.orders_unexpected, c.orders_unexpected === 0);
  check('crash', 'orders of the wrong quantity', c.wrong_quantity, c.wrong_quantity === 0);
  check('crash', 'fills doubled', c.fills_doubled, c.fills_doubled === 0);
  check('crash', 'bars lost', c.bars_lost, c.bars_lost === 0);
  show('crash', 'orders / fills', `${c.orders} / ${c.fills}`);
  show('crash', 'duration (s)', c.duration_s);
}
if (want('sigkill')) {
  console.error(`sigkill: ${plan.sigkill.kills} SIGKILLs of the whole process...`);
  const k = (results.sigkill = await sigkillDrill(plan.sigkill));
  show('sigkill', 'kills', k.kills);
  check('sigkill', 'orders lost', k.orders_lost, k.orders_lost === 0);
  check('sigkill', 'fills lost', k.fills_lost, k.fills_lost === 0);
  check('sigkill', 'positions disagreeing with fills', k.position_disagreements, k.position_disagreements === 0);
  check('sigkill', 'bars changed', k.bars_changed, k.bars_changed === 0);
  check('sigkill', 'bars lost', k.bars_lost, k.bars_lost === 0);
  check('sigkill', 'missed decisions', k.decisions_missed, k.decisions_missed === 0);
  check('sigkill', 'orders doubled', k.orders_doubled + k.orders_unexpected, k.orders_doubled + k.orders_unexpected === 0);
  show('sigkill', 'restart to serving p50 / max (ms)', `${k.restart_to_serving_ms_p50} / ${k.restart_to_serving_ms_max}`);
  show('sigkill', 'duration (s)', k.duration_s);
}
if (want('vendor')) {
  console.error(`vendor: ${plan.vendor.rounds} round(s) of every fault...`);
  const v = (results.vendor = await vendorDrill(plan.vendor));
  show('vendor', 'faults injected', `${v.faults_injected} (${Object.keys(v.by_fault).length} kinds x ${v.rounds})`);
  show('vendor', 'requests', v.requests);
  check('vendor', `rate-limit violations (${v.rate_limit})`, v.rate_limit_violations, v.rate_limit_violations === 0);
  check('vendor', 'bad bars written', v.bad_bars_written, v.bad_bars_written === 0);
  check('vendor', 'holes left after the clean cycle', v.holes_left, v.holes_left === 0);
  check('vendor', 'key leaks', v.key_leaks, v.key_leaks === 0);
  show('vendor', 'cycles overrun', v.cycles_overrun);
  show('vendor', 'duration (s)', v.duration_s);
}

const widths = [0, 1, 2].map((i) => Math.max(...rows.map((r) => r[i].length), 8));
console.log(`\nbarkeep drill${quick ? ' --quick' : ''} (load average ${loadavg()[0].toFixed(1)} on ${cpus().length} cores)`);
for (const r of rows) console.log(`${r[0].padEnd(widths[0])}  ${r[1].padEnd(widths[1])}  ${r[2].padStart(widths[2])}`);
mkdirSync(new URL('./results/', import.meta.url), { recursive: true });
const file = new URL(`./results/drill${quick ? '-quick' : ''}.json`, import.meta.url);
writeFileSync(file, `${JSON.stringify({ started, finished: new Date().toISOString(), quick, command: `npm run drill${quick ? ' -- --quick' : ''}`, failures, results }, null, 2)}\n`);
console.log(`\n${failures.length ? `FAILED: ${failures.join('; ')}` : 'all checks held'}; wrote ${file.pathname}`);
process.exitCode = failures.length ? 1 : 0;
