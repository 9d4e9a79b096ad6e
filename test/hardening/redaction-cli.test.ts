/**
 * Regression from the hostile campaign (issue 12, "part of a key survives redaction"), through the
 * CLI a user runs: `barkeep check` and `barkeep backfill` as child processes against vendor
 * stand-ins whose error text echoes the key past its 300th character. Not one 8-character piece
 * of the key may appear in stdout or stderr.
 */
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { startFakeAlpaca, type FakeAlpaca } from '../fakes/alpaca/server.ts';
import { startFakeMassive, type FakeMassive } from '../fakes/massive/server.ts';
import { runCli } from '../helpers/serve.ts';

const KEY = 'MSVsecret123-redaction-0123456789abcdefghijklmnop';
const KEY_ID = 'PKREDACTIONKEYID0001';
const SECRET = 'APSKsecret78-redaction-qrstuvwxyz9876543210ABCDEF';

const fakes: Array<FakeMassive | FakeAlpaca> = [];
after(async () => {
  await Promise.all(fakes.map((f) => f.close()));
});

function noPartOf(secret: string, text: string, where: string): void {
  for (let i = 0; i + 8 <= secret.length; i++) {
    const piece = secret.slice(i, i + 8);
    assert.ok(!text.includes(piece), `${where} holds ${JSON.stringify(piece)} of the key:\n${text}`);
  }
}

async function massive(status = 500) {
  const fake = await startFakeMassive({ validKeys: [KEY], generate: true });
  fakes.push(fake);
  // Every request answers `status` with "xxx…(320) Authorization=Bearer <key>".
  fake.echoKeyNext(500, 320, status);
  return { fake, env: { MASSIVE_API_KEY: KEY, MASSIVE_REST_URL: fake.url } };
}

test('barkeep check massive prints no part of a key the vendor echoed past its 300th character', async () => {
  const { fake, env } = await massive();
  const r = await runCli(['check', 'massive', '--duration', '1'], { env });
  const out = r.stdout + r.stderr;
  noPartOf(KEY, out, 'check output');
  assert.notEqual(r.code, 0, out);
  assert.match(out, /500/, 'the failure itself is reported');
  // The stand-in really echoed it: the redaction had something to do.
  assert.ok(fake.log.length > 0 && fake.log.every((l) => l.auth === `Bearer ${KEY}`));
});

test('barkeep backfill prints no part of a key the vendor echoed past its 300th character, verbose log included', async () => {
  // A 403 is not retried: the backfill fails at once instead of after a minute of backoff.
  const { fake, env } = await massive(403);
  const r = await runCli(['backfill', 'SPY', '--from', '2026-03-04', '--to', '2026-03-05', '--verbose'], { env, timeoutMs: 60_000 });
  const out = r.stdout + r.stderr;
  noPartOf(KEY, out, 'backfill output');
  assert.notEqual(r.code, 0, out);
  assert.match(out, /403/, 'the failure itself is reported');
  assert.match(out, /Authorization=/, 'with the vendor text around the key');
  assert.ok(fake.log.length > 0);
});

test('barkeep check alpaca prints no part of a secret key the vendor echoed past its 300th character', async () => {
  const fake = await startFakeAlpaca({ validKeys: [{ keyId: KEY_ID, secret: SECRET }], generate: true });
  fakes.push(fake);
  fake.failNext(500, 500, { code: 50010000, message: `${'x'.repeat(320)} APCA-API-KEY-ID=${KEY_ID} APCA-API-SECRET-KEY=${SECRET}` });
  const r = await runCli(['check', 'alpaca', '--duration', '1'], { env: { APCA_API_KEY_ID: KEY_ID, APCA_API_SECRET_KEY: SECRET, APCA_API_DATA_URL: fake.url } });
  const out = r.stdout + r.stderr;
  noPartOf(SECRET, out, 'check output');
  assert.notEqual(r.code, 0, out);
  assert.match(out, /500/);
});
