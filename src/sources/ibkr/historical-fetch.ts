/**
 * `reqHistoricalData` as a promise of our bars: paced (HistoricalPacer), timed out, retried after
 * a pacing violation or a dropped socket, and every TWS date format read (parseTwsDate).
 *
 * Answers per outcome: bars → Bar[] (source `ibkr-historical`, complete bars with
 * from <= start < to, oldest first); 162 "no data" → []; 162 pacing → back off and retry, then
 * IBKR_PACING; 420/354/10168/162 permissions → IBKR_UNAVAILABLE; 200 → IBKR_BAD_CONTRACT;
 * socket dropped → retried after reconnect, then IBKR_DISCONNECTED; no answer → IBKR_TIMEOUT.
 */
import { EventName, WhatToShow, type BarSizeSetting } from '@stoqey/ib';
import type { Bar } from '../../market/bar.ts';
import { barSizeMs, type BarSize } from '../../market/bar-size.ts';
import type { Clock } from '../../market/clock.ts';
import type { IbkrConnection, IbRequestError } from './connection.ts';
import { BAR_SIZE_SETTING, durationFor, stockContract } from './contract.ts';
import { IbkrError } from './errors.ts';
import type { HistoricalPacer } from './historical-pacer.ts';
import { formatTwsUtc, parseTwsDate } from './tws-date.ts';

export interface HistoricalFetchOptions {
  /** 1: dates as text (`yyyyMMdd HH:mm:ss <zone>`), 2: epoch seconds. Default 2. */
  formatDate?: 1 | 2;
  useRTH?: boolean;
  /** No complete answer within this (clock ms) cancels the request. Default 60 s. */
  timeoutMs?: number;
  /** How long to wait for a connection before giving up. Default 30 s. */
  readyTimeoutMs?: number;
  /** Attempts after a pacing violation or a dropped socket. Default 3. */
  retries?: number;
  /** First backoff after a pacing violation (doubled per repeat). Default from the 162 policy: 60 s. */
  pacingBackoffMs?: number;
}

interface Row {
  date: string;
  open: number;
  high: number;
  low: number;
  close: number;
  volume: number | undefined;
  count: number | undefined;
  wap: number | undefined;
}

type Outcome = { kind: 'rows'; rows: Row[] } | { kind: 'error'; error: IbRequestError } | { kind: 'disconnected' } | { kind: 'timeout' };

interface Pending {
  rows: Row[];
  settle: (o: Outcome) => void;
}

export interface HistoricalFetchStats {
  requests: number;
  errors: number;
  retries: number;
  pacingViolations: number;
  malformed: number;
}

export class HistoricalFetcher {
  private readonly pending = new Map<number, Pending>();
  private readonly opts: Required<HistoricalFetchOptions>;
  private readonly counters: HistoricalFetchStats = { requests: 0, errors: 0, retries: 0, pacingViolations: 0, malformed: 0 };
  private closed = false;
  private readonly detach: () => void;

  constructor(
    private readonly connection: IbkrConnection,
    private readonly clock: Clock,
    private readonly pacer: HistoricalPacer,
    opts: HistoricalFetchOptions = {},
  ) {
    this.opts = {
      formatDate: opts.formatDate ?? 2,
      useRTH: opts.useRTH ?? false,
      timeoutMs: opts.timeoutMs ?? 60_000,
      readyTimeoutMs: opts.readyTimeoutMs ?? 30_000,
      retries: opts.retries ?? 3,
      pacingBackoffMs: opts.pacingBackoffMs ?? 60_000,
    };
    const onData = (reqId: number, date: string, open: number, high: number, low: number, close: number, volume: number | undefined, count: number | undefined, wap: number | undefined) => {
      const p = this.pending.get(reqId);
      if (!p) return;
      if (date.startsWith('finished')) p.settle({ kind: 'rows', rows: p.rows });
      else p.rows.push({ date, open, high, low, close, volume, count, wap });
    };
    const onError = (e: IbRequestError) => this.pending.get(e.reqId)?.settle({ kind: 'error', error: e });
    const onState = (s: string) => {
      if (s === 'disconnected' || s === 'closed') for (const p of [...this.pending.values()]) p.settle({ kind: 'disconnected' });
    };
    connection.api.on(EventName.historicalData, onData);
    connection.on('requestError', onError);
    connection.on('state', onState);
    this.detach = () => {
      connection.api.off(EventName.historicalData, onData);
      connection.off('requestError', onError);
      connection.off('state', onState);
    };
  }

  /** Whether `reqId` is one of this fetcher's requests (so the feed leaves its errors alone). */
  owns(reqId: number): boolean {
    return this.pending.has(reqId);
  }

  stats(): HistoricalFetchStats {
    return { ...this.counters };
  }

  close(): void {
    this.closed = true;
    for (const p of [...this.pending.values()]) p.settle({ kind: 'disconnected' });
    this.detach();
  }

  async fetch(symbol: string, barSize: BarSize, from: number, to: number, signal?: AbortSignal): Promise<Bar[]> {
    let pacingBackoff = this.opts.pacingBackoffMs;
    for (let attempt = 0; ; attempt++) {
      if (this.closed) throw new IbkrError('IBKR_CLOSED', 'the IBKR data feed is closed');
      await this.connection.whenReady(this.opts.readyTimeoutMs, signal);
      const now = this.clock.now();
      // An end at (or past) now is sent as "" (now): TWS then includes the forming bar, dropped below.
      const endDateTime = to >= now ? '' : formatTwsUtc(to);
      const duration = durationFor(from, Math.min(to, now), barSize);
      const setting = BAR_SIZE_SETTING[barSize];
      await this.pacer.acquire(
        {
          contract: `${symbol}|SMART|TRADES`,
          identity: [symbol, endDateTime, duration, setting, this.opts.useRTH ? 1 : 0, this.opts.formatDate].join('|'),
        },
        signal,
      );
      if (!this.connection.isReady) {
        attempt--; // not sent: waiting for the connection again is not a retry
        continue;
      }
      const outcome = await this.request(symbol, endDateTime, duration, setting, signal);
      if (outcome.kind === 'rows') return this.toBars(symbol, barSize, from, to, outcome.rows);
      const retriesLeft = attempt < this.opts.retries;
      if (outcome.kind === 'timeout') {
        throw new IbkrError('IBKR_TIMEOUT', `no historical answer for ${symbol} ${barSize} within ${this.opts.timeoutMs} ms`);
      }
      if (outcome.kind === 'disconnected') {
        if (this.closed) throw new IbkrError('IBKR_CLOSED', 'the IBKR data feed is closed');
        if (!retriesLeft) throw new IbkrError('IBKR_DISCONNECTED', `TWS connection dropped during the historical request for ${symbol}`);
        this.counters.retries++;
        continue;
      }
      const { code, message, policy } = outcome.error;
      this.counters.errors++;
      switch (policy.kind) {
        case 'no-data':
          return [];
        case 'pacing':
          this.counters.pacingViolations++;
          if (!retriesLeft) throw new IbkrError('IBKR_PACING', `historical pacing violations for ${symbol} kept coming: ${message}`, { ibCode: code });
          this.pacer.penalize(pacingBackoff);
          pacingBackoff *= 2;
          this.counters.retries++;
          continue;
        case 'unavailable':
          throw new IbkrError('IBKR_UNAVAILABLE', `no IBKR historical data permission for ${symbol} (error ${code}: ${message})`, { ibCode: code, retryable: false });
        case 'bad-contract':
          throw new IbkrError('IBKR_BAD_CONTRACT', `IBKR does not know the contract STK ${symbol} SMART USD (error ${code}: ${message})`, { ibCode: code, retryable: false });
        default:
          throw new IbkrError('IBKR_REJECTED', `IBKR refused the historical request for ${symbol} (error ${code}: ${message})`, { ibCode: code, retryable: false });
      }
    }
  }

  private request(symbol: string, endDateTime: string, duration: string, setting: BarSizeSetting, signal?: AbortSignal): Promise<Outcome> {
    const reqId = this.connection.nextRequestId();
    this.counters.requests++;
    return new Promise<Outcome>((resolve, reject) => {
      const timer = this.clock.setTimeout(() => {
        if (this.connection.isReady) this.connection.api.cancelHistoricalData(reqId);
        done({ kind: 'timeout' });
      }, this.opts.timeoutMs);
      const onAbort = () => {
        if (this.connection.isReady) this.connection.api.cancelHistoricalData(reqId);
        done(undefined, new IbkrError('IBKR_ABORTED', `historical request for ${symbol} aborted`));
      };
      const done = (o?: Outcome, err?: Error) => {
        if (!this.pending.has(reqId)) return;
        this.pending.delete(reqId);
        timer.cancel();
        signal?.removeEventListener('abort', onAbort);
        if (err) reject(err);
        else resolve(o!);
      };
      this.pending.set(reqId, { rows: [], settle: (o) => done(o) });
      if (signal?.aborted) return onAbort();
      signal?.addEventListener('abort', onAbort, { once: true });
      this.connection.api.reqHistoricalData(reqId, stockContract(symbol), endDateTime, duration, setting, WhatToShow.TRADES, this.opts.useRTH ? 1 : 0, this.opts.formatDate, false);
    });
  }

  private toBars(symbol: string, barSize: BarSize, from: number, to: number, rows: Row[]): Bar[] {
    const now = this.clock.now();
    const len = barSizeMs(barSize);
    const byStart = new Map<number, Bar>();
    for (const r of rows) {
      let start: number;
      try {
        start = parseTwsDate(r.date);
      } catch {
        this.counters.malformed++;
        continue;
      }
      const prices = [r.open, r.high, r.low, r.close];
      if (!prices.every((p) => Number.isFinite(p) && p > 0) || r.high < r.low) {
        this.counters.malformed++;
        continue;
      }
      // Only complete bars inside [from, to): with an end of "now" TWS sends the forming bar too.
      if (start < from || start >= to || start + len > now) continue;
      byStart.set(start, {
        symbol,
        barSize,
        start,
        open: r.open,
        high: r.high,
        low: r.low,
        close: r.close,
        volume: r.volume !== undefined && r.volume >= 0 ? r.volume : 0,
        vwap: r.wap !== undefined && r.wap > 0 ? r.wap : Number.NaN,
        trades: r.count !== undefined && r.count >= 0 ? r.count : -1,
        source: 'ibkr-historical',
        receivedAt: now,
      });
    }
    return [...byStart.values()].sort((a, b) => a.start - b.start);
  }
}
