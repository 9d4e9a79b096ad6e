/**
 * Which actors exchange data: the symmetric links named by each spec's `peers`. When an actor
 * (re)starts, the supervisor gives it a port to each running peer and each of them the other end
 * (actor-worker.ts, activateWorker).
 */
import type { ActorSpec } from './actor-worker.ts';
import { RuntimeError } from './protocol.ts';

export class PeerWiring {
  private readonly links: Array<[string, string]> = [];

  constructor(specs: readonly ActorSpec[]) {
    const names = new Set(specs.map((s) => s.name));
    const seen = new Set<string>();
    for (const spec of specs) {
      for (const peer of spec.peers ?? []) {
        if (!names.has(peer)) throw new RuntimeError('ACTOR_NOT_FOUND', `${spec.name} names unknown peer ${peer}`);
        const key = [spec.name, peer].sort().join('|');
        if (!seen.has(key)) {
          seen.add(key);
          this.links.push([spec.name, peer]);
        }
      }
    }
  }

  /** The actors linked to `name`, either way. */
  peersOf(name: string): string[] {
    return this.links.flatMap(([a, b]) => (a === name ? [b] : b === name ? [a] : []));
  }
}
