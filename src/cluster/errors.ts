/** Every code a cluster error carries (see src/errors.ts). */
import { BarkeepError } from '../errors.ts';

export type ClusterErrorCode =
  | 'CLUSTER_UNAVAILABLE' // NATS unreachable, or JetStream not enabled on it: a node refuses to start
  | 'ORDER_FENCED'; // an order append refused: this node no longer holds the symbol's lease

/** NATS or JetStream cannot be used; the message says which and where (never credentials). */
export class ClusterUnavailableError extends BarkeepError<'CLUSTER_UNAVAILABLE'> {
  constructor(message: string, options?: { cause?: unknown }) {
    super('CLUSTER_UNAVAILABLE', message, { cause: options?.cause });
  }
}

/** The order fence refused an append: another node has taken the symbol over. */
export class FencedError extends BarkeepError<'ORDER_FENCED'> {
  constructor(
    readonly symbol: string,
    options?: { cause?: unknown },
  ) {
    super('ORDER_FENCED', `order for ${symbol} fenced: this node no longer holds its lease`, { field: 'symbol', cause: options?.cause });
  }
}
