/**
 * The cluster's NATS connection: JetStream checked, streams and buckets in place.
 *
 * A node refuses to start without NATS or without JetStream (a message that says which), because a
 * cluster node that ran alone would collect and trade symbols another node owns.
 * Credentials come from the environment only (BARKEEP_NATS_USER/BARKEEP_NATS_PASS or
 * BARKEEP_NATS_TOKEN), never from a file that could be committed.
 */
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { jetstream, jetstreamManager, type JetStreamClient, type JetStreamManager } from '@nats-io/jetstream';
import { Kvm, type KV } from '@nats-io/kv';
import { ClusterUnavailableError } from './errors.ts';
import { BARS_STREAM, LEASES_BUCKET, MEMBERS_BUCKET, ORDERS_STREAM } from './subjects.ts';

export { ClusterUnavailableError } from './errors.ts';

export interface ClusterCredentials {
  user?: string;
  pass?: string;
  token?: string;
}

export interface ClusterConnectOptions {
  natsUrl: string;
  credentials?: ClusterCredentials;
  /** A member's entry lives this long without a heartbeat. */
  memberTtlMs: number;
  /** A lease lives this long without a renewal. */
  leaseTtlMs: number;
  /** How long the bars stream keeps bars (replicas that were away catch up within it). */
  barsMaxAgeMs: number;
  /** Name for this connection in the server's monitoring. */
  name: string;
  connectTimeoutMs?: number;
}

export interface ClusterConnection {
  nc: NatsConnection;
  js: JetStreamClient;
  jsm: JetStreamManager;
  members: KV;
  leases: KV;
  close(): Promise<void>;
}

/** Reads credentials from the environment; nothing else is a source of them. */
export function credentialsFromEnv(env: NodeJS.ProcessEnv): ClusterCredentials {
  const c: ClusterCredentials = {};
  if (env.BARKEEP_NATS_USER) c.user = env.BARKEEP_NATS_USER;
  if (env.BARKEEP_NATS_PASS) c.pass = env.BARKEEP_NATS_PASS;
  if (env.BARKEEP_NATS_TOKEN) c.token = env.BARKEEP_NATS_TOKEN;
  return c;
}

function hostOf(url: string): string {
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.host}`;
  } catch {
    return url.replace(/\/\/[^@/]*@/, '//');
  }
}

export interface JetStreamLink {
  nc: NatsConnection;
  js: JetStreamClient;
  jsm: JetStreamManager;
  close(): Promise<void>;
}

/**
 * A NATS connection with JetStream checked, and nothing created: what a part that only appends to
 * or reads existing streams and buckets needs (the trader's order fence, the shared paper broker).
 */
export async function connectJetStream(opts: { natsUrl: string; credentials?: ClusterCredentials; name: string; connectTimeoutMs?: number }): Promise<JetStreamLink> {
  const where = hostOf(opts.natsUrl);
  let nc: NatsConnection;
  try {
    nc = await connect({
      servers: opts.natsUrl,
      name: opts.name,
      timeout: opts.connectTimeoutMs ?? 3000,
      // Keep trying forever once connected: a NATS restart mid-session must not end the node.
      maxReconnectAttempts: -1,
      reconnectTimeWait: 250,
      // Without it every request (each bar published, each lease renewed) builds two Errors up
      // front for their stack traces: a fifth of the cluster benchmark's CPU went there.
      noAsyncTraces: true,
      ...opts.credentials,
    });
  } catch (err) {
    throw new ClusterUnavailableError(`cluster: cannot reach NATS at ${where}: ${(err as Error).message}`, { cause: err });
  }
  try {
    const jsm = await jetstreamManager(nc);
    await jsm.getAccountInfo();
    return {
      nc,
      js: jetstream(nc),
      jsm,
      async close() {
        await nc.drain().catch(() => nc.close());
      },
    };
  } catch (err) {
    await nc.close().catch(() => undefined);
    throw new ClusterUnavailableError(`cluster: JetStream is not available on ${where} (run nats-server with -js): ${(err as Error).message}`, {
      cause: err,
    });
  }
}

/** The node's connection: JetStream checked, the streams and the membership and lease buckets in place. */
export async function connectCluster(opts: ClusterConnectOptions): Promise<ClusterConnection> {
  const link = await connectJetStream(opts);
  const { nc, js, jsm } = link;
  try {
    await ensureStream(jsm, {
      name: BARS_STREAM,
      subjects: ['bars.>'],
      max_age: opts.barsMaxAgeMs * 1_000_000,
      duplicate_window: 10 * 60 * 1_000_000_000,
    });
    await ensureStream(jsm, { name: ORDERS_STREAM, subjects: ['orders.>'], duplicate_window: 10 * 60 * 1_000_000_000 });
    const kvm = new Kvm(js);
    const members = await kvm.create(MEMBERS_BUCKET, { ttl: opts.memberTtlMs, history: 1 });
    const leases = await kvm.create(LEASES_BUCKET, { ttl: opts.leaseTtlMs, history: 1 });
    return { nc, js, jsm, members, leases, close: link.close };
  } catch (err) {
    await nc.close().catch(() => undefined);
    throw err;
  }
}

async function ensureStream(jsm: JetStreamManager, cfg: { name: string; subjects: string[]; max_age?: number; duplicate_window: number }) {
  try {
    await jsm.streams.info(cfg.name);
  } catch {
    try {
      await jsm.streams.add(cfg);
    } catch (err) {
      // Another node created it between our look and our add.
      await jsm.streams.info(cfg.name).catch(() => {
        throw err;
      });
    }
  }
}
