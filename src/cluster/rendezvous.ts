/**
 * Which node owns a symbol: rendezvous (highest random weight) hashing over the live members.
 * Every node computes the same answer from the same member list, and when a member joins or leaves
 * only the symbols it wins or held move: about 1/N of them, never a reshuffle of the rest.
 */
import { createHash } from 'node:crypto';

function weight(node: string, symbol: string): bigint {
  return createHash('sha256').update(node).update('\0').update(symbol).digest().readBigUInt64BE(0);
}

/** The member that owns `symbol`, or null when there are no members. Ties break by node id. */
export function ownerOf(symbol: string, members: readonly string[]): string | null {
  let best: string | null = null;
  let bestW = -1n;
  for (const m of members) {
    const w = weight(m, symbol);
    if (w > bestW || (w === bestW && best !== null && m < best)) {
      best = m;
      bestW = w;
    }
  }
  return best;
}

/** Symbol → owner for every symbol. */
export function assign(symbols: readonly string[], members: readonly string[]): Map<string, string> {
  const out = new Map<string, string>();
  for (const s of symbols) {
    const o = ownerOf(s, members);
    if (o !== null) out.set(s, o);
  }
  return out;
}
