import { test } from 'node:test';
import assert from 'node:assert/strict';
import { assign, ownerOf } from '../../src/cluster/rendezvous.ts';
import { symbolToken, tokenSymbol, barSubject } from '../../src/cluster/subjects.ts';

const SYMBOLS = Array.from({ length: 300 }, (_, i) => `S${i}`);

test('every symbol has exactly one owner and the split is even enough', () => {
  const owners = assign(SYMBOLS, ['a', 'b', 'c']);
  assert.equal(owners.size, SYMBOLS.length);
  const counts = new Map<string, number>();
  for (const o of owners.values()) counts.set(o, (counts.get(o) ?? 0) + 1);
  for (const n of ['a', 'b', 'c']) assert.ok((counts.get(n) ?? 0) > 60, `${n} owns ${counts.get(n)} of 300`);
});

test('the answer does not depend on the order of the member list', () => {
  for (const s of SYMBOLS.slice(0, 50)) assert.equal(ownerOf(s, ['a', 'b', 'c']), ownerOf(s, ['c', 'a', 'b']));
});

test('a leaving member moves only its own symbols; a joining one takes only what it wins', () => {
  const before = assign(SYMBOLS, ['a', 'b', 'c']);
  const after = assign(SYMBOLS, ['a', 'b']);
  for (const s of SYMBOLS) if (before.get(s) !== 'c') assert.equal(after.get(s), before.get(s), s);
  const joined = assign(SYMBOLS, ['a', 'b', 'c', 'd']);
  for (const s of SYMBOLS) if (joined.get(s) !== 'd') assert.equal(joined.get(s), before.get(s), s);
  assert.ok([...joined.values()].includes('d'));
});

test('no members, no owner', () => {
  assert.equal(ownerOf('QQQ', []), null);
});

test('class-share symbols travel in subjects without a dot and come back unchanged', () => {
  assert.equal(symbolToken('BRK.B'), 'BRK_B');
  assert.equal(tokenSymbol(symbolToken('BRK.B')), 'BRK.B');
  assert.equal(barSubject('1Min', 'BRK.B'), 'bars.1Min.BRK_B');
});
