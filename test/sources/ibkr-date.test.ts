import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseTwsDate, formatTwsUtc } from '../../src/sources/ibkr/tws-date.ts';
import { IbkrError } from '../../src/sources/ibkr/errors.ts';
import { classifyIbError, IB_ERROR_POLICY } from '../../src/sources/ibkr/error-codes.ts';
import { durationFor } from '../../src/sources/ibkr/contract.ts';
import { ibkrEndpointFromEnv } from '../../src/sources/ibkr/connection.ts';

const JAN_15_0930_NY = Date.UTC(2025, 0, 15, 14, 30); // EST, UTC-5
const JUL_14_0930_NY = Date.UTC(2025, 6, 14, 13, 30); // EDT, UTC-4

test('epoch seconds (formatDate 2) are read as seconds', () => {
  assert.equal(parseTwsDate('1736951400'), 1736951400_000);
  assert.equal(parseTwsDate(' 1736951400 '), 1736951400_000);
});

test('yyyyMMdd is midnight New York time, in winter and in summer', () => {
  assert.equal(parseTwsDate('20250115'), Date.UTC(2025, 0, 15, 5, 0));
  assert.equal(parseTwsDate('20250714'), Date.UTC(2025, 6, 14, 4, 0));
});

test('a date with a region zone name follows daylight saving', () => {
  assert.equal(parseTwsDate('20250115 09:30:00 US/Eastern'), JAN_15_0930_NY);
  assert.equal(parseTwsDate('20250714 09:30:00 US/Eastern'), JUL_14_0930_NY);
  assert.equal(parseTwsDate('20250714 09:30:00 America/New_York'), JUL_14_0930_NY);
  assert.equal(parseTwsDate('20250714 08:30:00 US/Central'), JUL_14_0930_NY);
  assert.equal(parseTwsDate('20250714 14:30:00 Europe/London'), JUL_14_0930_NY);
});

test('abbreviations are their fixed offsets', () => {
  assert.equal(parseTwsDate('20250115 09:30:00 EST'), JAN_15_0930_NY);
  assert.equal(parseTwsDate('20250714 09:30:00 EDT'), JUL_14_0930_NY);
  assert.equal(parseTwsDate('20250115 14:30:00 UTC'), JAN_15_0930_NY);
  assert.equal(parseTwsDate('20250115 14:30:00 GMT'), JAN_15_0930_NY);
  assert.equal(parseTwsDate('20250115 08:30:00 CST'), JAN_15_0930_NY);
});

test('long zone names with spaces are read, as TWS sends them in the handshake', () => {
  assert.equal(parseTwsDate('20250714 14:30:00 British Summer Time'), JUL_14_0930_NY);
  assert.equal(parseTwsDate('20250115 14:30:00 Greenwich Mean Time'), JAN_15_0930_NY);
  assert.equal(parseTwsDate('20250115 09:30:00 Eastern Standard Time'), JAN_15_0930_NY);
  assert.equal(parseTwsDate('20250714 15:30:00 Central European Summer Time'), JUL_14_0930_NY);
});

test('yyyyMMdd-HH:mm:ss is UTC, with or without seconds', () => {
  assert.equal(parseTwsDate('20250115-14:30:00'), JAN_15_0930_NY);
  assert.equal(parseTwsDate('20250115-14:30'), JAN_15_0930_NY);
});

test('two spaces and no zone (older TWS) is New York local time, and so is one space without a zone', () => {
  assert.equal(parseTwsDate('20250115  09:30:00'), JAN_15_0930_NY);
  assert.equal(parseTwsDate('20250714  09:30:00'), JUL_14_0930_NY);
  assert.equal(parseTwsDate('20250714 09:30:00'), JUL_14_0930_NY);
});

test('an unknown zone or a malformed date is refused with IBKR_BAD_DATE, never guessed', () => {
  for (const bad of ['20250115 09:30:00 Mars/Olympus', '20250115 09:30:00 XYZ', 'yesterday', '2025-01-15', '20251315', '20250115 25:00:00', '']) {
    assert.throws(
      () => parseTwsDate(bad),
      (e: unknown) => e instanceof IbkrError && e.code === 'IBKR_BAD_DATE',
      bad,
    );
  }
});

test('formatTwsUtc writes the UTC end date TWS reads back', () => {
  assert.equal(formatTwsUtc(JAN_15_0930_NY), '20250115-14:30:00');
  assert.equal(parseTwsDate(formatTwsUtc(JUL_14_0930_NY)), JUL_14_0930_NY);
});

test('every code in the issue has its deliberate answer', () => {
  const kinds: Record<number, string> = {
    420: 'unavailable',
    354: 'unavailable',
    10168: 'unavailable',
    162: 'pacing',
    200: 'bad-contract',
    1100: 'link-lost',
    1101: 'link-restored-data-lost',
    1102: 'link-restored-data-kept',
    2103: 'farm-broken',
    2105: 'farm-broken',
    2157: 'farm-broken',
    2104: 'info',
    2106: 'info',
    2158: 'info',
  };
  for (const [code, kind] of Object.entries(kinds)) {
    assert.equal(IB_ERROR_POLICY[Number(code)]?.kind, kind, `code ${code}`);
  }
  for (const code of [420, 354, 10168, 162]) assert.ok((IB_ERROR_POLICY[code].retryAfterMs ?? 0) >= 60_000, `${code} is retried slowly`);
});

test('162 is told apart by its text: pacing, no data, permissions', () => {
  assert.equal(classifyIbError(162, 'Historical Market Data Service error message:Historical data request pacing violation').kind, 'pacing');
  assert.equal(classifyIbError(162, 'Historical Market Data Service error message:HMDS query returned no data: AAPL@SMART Trades').kind, 'no-data');
  assert.equal(classifyIbError(162, 'Historical Market Data Service error message:No market data permissions for NYSE STK').kind, 'unavailable');
  assert.equal(classifyIbError(99999, 'something new').kind, 'other');
});

test('durations: seconds up to a day for intraday bars, then days, then years', () => {
  const t = JAN_15_0930_NY;
  assert.equal(durationFor(t - 1800_000, t, '5Min'), '1800 S');
  assert.equal(durationFor(t - 86_400_000, t, '1Min'), '86400 S');
  assert.equal(durationFor(t - 86_400_001, t, '1Min'), '2 D');
  assert.equal(durationFor(t - 3 * 86_400_000, t, '1Day'), '3 D');
  assert.equal(durationFor(t - 400 * 86_400_000, t, '1Day'), '2 Y');
});

test('IB_HOST, IB_PORT and IB_CLIENT_ID are read, and a bad one is refused by name', () => {
  assert.deepEqual(ibkrEndpointFromEnv({ IB_HOST: 'gw', IB_PORT: '4002', IB_CLIENT_ID: '17' }), { host: 'gw', port: 4002, clientId: 17 });
  assert.deepEqual(ibkrEndpointFromEnv({}), { host: '127.0.0.1', port: 7497, clientId: 1 });
  assert.throws(() => ibkrEndpointFromEnv({ IB_PORT: 'seven' }), /IB_PORT/);
  assert.throws(() => ibkrEndpointFromEnv({ IB_CLIENT_ID: '-2' }), /IB_CLIENT_ID/);
});
