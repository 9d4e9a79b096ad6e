/**
 * The collector thread's link to the cluster: the shared vendor budgets (rate-share.ts) for the
 * keys it is configured with. It opens a JetStream connection and the rates bucket, nothing else.
 */
import type { Clock } from '../market/clock.ts';
import type { CollectorConfig } from '../actors/collector/protocol.ts';
import type { SharedRateGate } from '../sources/rate-limiter.ts';
import { connectJetStream, credentialsFromEnv } from './connection.ts';
import { ClusterRateGate, openRatesBucket } from './rate-share.ts';

export interface ClusterBudgets {
  gates: { massive?: SharedRateGate; alpaca?: SharedRateGate };
  close(): Promise<void>;
}

export async function openClusterBudgets(cfg: CollectorConfig, clock: Clock): Promise<ClusterBudgets | null> {
  if (!cfg.cluster || (!cfg.massive && !cfg.alpaca)) return null;
  const link = await connectJetStream({ natsUrl: cfg.cluster.natsUrl, credentials: credentialsFromEnv(process.env), name: `barkeep ${cfg.cluster.nodeId} collector` });
  const kv = await openRatesBucket(link.js);
  const gates: ClusterBudgets['gates'] = {};
  if (cfg.massive) gates.massive = new ClusterRateGate(kv, { vendor: 'massive', apiKey: cfg.massive.apiKey, limit: cfg.massive.rateLimitPerMin, clock });
  // Alpaca's budget is per key id (the secret is not part of it).
  if (cfg.alpaca) gates.alpaca = new ClusterRateGate(kv, { vendor: 'alpaca', apiKey: cfg.alpaca.keyId, limit: cfg.alpaca.rateLimitPerMin, clock });
  return { gates, close: () => link.close() };
}
