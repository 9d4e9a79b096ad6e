/**
 * Regressions from the hostile campaign (issue 12) at the vendor edge: a key echoed past the cut
 * of a vendor's error text, and a peer that drips a 200 one byte at a time.
 */
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { RealClock } from '../../src/market/clock.ts';
import { MassiveSource } from '../../src/sources/massive/source.ts';
import { SourceError } from '../../src/sources/types.ts';
import { type FakeMassive, startFakeMassive } from '../fakes/massive/server.ts';

const KEY = 'MSVsecret123-0123456789abcdefghijklmnopqrstuvwxyz';
const T0 = Date.UTC(2026, 2, 4, 14, 30);

const fakes: FakeMassive[] = [];
const sources: MassiveSource[] = [];
after(async () => {
  await Promise.all(sources.map((s) => s.close()));
  await Promise.all(fakes.map((f) => f.close()));
});

async function setup(timeoutMs = 10_000) {
  const fake = await startFakeMassive({ validKeys: [KEY], generate: true });
  fakes.push(fake);
  const source = new MassiveSource({ apiKey: KEY, restUrl: fake.url, rateLimitPerMin: 1000, timeoutMs, clock: new RealClock(), maxRetries: 0, backoffMs: 1 });
  sources.push(source);
  return { fake, source };
}

function noPartOfKey(text: string, where: string): void {
  // Any 8 consecutive characters of the key would be a leak.
  for (let i = 0; i + 8 <= KEY.length; i++) assert.ok(!text.includes(KEY.slice(i, i + 8)), `${where} holds part of the key: ${text}`);
}

test('a key the vendor echoes past the 300th character of its error is redacted, not cut in half', async () => {
  const { fake, source } = await setup();
  for (const pad of [250, 290, 299, 320]) {
    fake.echoKeyNext(1, pad);
    const err = await source.fetchBars('SPY', '1Min', T0, T0 + 60_000).then(
      () => assert.fail('a 500 must fail the fetch'),
      (e: unknown) => e as SourceError,
    );
    assert.ok(err instanceof SourceError);
    noPartOfKey(err.message, `message (pad ${pad})`);
    noPartOfKey(err.vendorMessage ?? '', `vendorMessage (pad ${pad})`);
    noPartOfKey(JSON.stringify(source.stats()), `stats (pad ${pad})`);
    assert.ok(err.message.length <= 600, 'the message is still cut to a readable length');
  }
  // The stand-in really echoed it: the redaction had something to do.
  assert.ok(fake.log.every((r) => r.auth === `Bearer ${KEY}`));
});

test('a vendor 200 that drips one byte at a time ends at the request deadline as a TIMEOUT', async () => {
  const { fake, source } = await setup(300);
  fake.dripNext(1, 50);
  const t0 = Date.now();
  const err = await source.fetchBars('SPY', '1Min', T0, T0 + 60_000).then(
    () => assert.fail('a drip must not complete'),
    (e: unknown) => e as SourceError,
  );
  assert.equal(err.code, 'TIMEOUT');
  assert.match(err.message, /did not arrive within 600 ms/);
  // Bounded by the deadline (2 x 300 ms), not by the drip: an idle timeout alone never fires here.
  assert.ok(Date.now() - t0 < 5_000, `took ${Date.now() - t0} ms`);
});
