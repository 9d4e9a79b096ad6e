/**
 * A typed link from one actor to a peer over a dedicated MessagePort. The link object is stable;
 * the supervisor swaps the port underneath when either side restarts, and the handlers stay.
 *
 * Messages are notifications, not the source of truth: what matters (bars, orders) is in LMDB, so a
 * message sent while the peer restarts is dropped (counted) and the restarted peer catches up from
 * the store. The send path is one counter bump and one postMessage, so the runtime adds little to
 * a raw postMessage.
 */
import type { MessagePort } from 'node:worker_threads';
import { COUNTER } from './counters.ts';
import type { PeerMessage } from './protocol.ts';

export interface LinkLog {
  warn(obj: object, msg: string): void;
}

// biome-ignore lint/suspicious/noExplicitAny: handlers are kept per message type; each is typed by the on() call that adds it.
type Handler = (msg: any) => void;

export class PeerLink<Out extends PeerMessage, In extends PeerMessage> {
  private port: MessagePort | undefined;
  private readonly handlers = new Map<string, Handler>();
  private readonly onPortMessage = (msg: unknown) => this.dispatch(msg);
  /** Messages that could not be sent because no port was attached. */
  dropped = 0;

  constructor(
    readonly peer: string,
    private readonly counters: Float64Array,
    private readonly log: LinkLog,
  ) {}

  get connected(): boolean {
    return this.port !== undefined;
  }

  /** Sends a message to the peer; false when the link is down (the message is dropped and counted). */
  send(msg: Out, transfer?: readonly import('node:worker_threads').TransferListItem[]): boolean {
    const port = this.port;
    if (port === undefined) {
      this.dropped++;
      return false;
    }
    try {
      if (transfer === undefined) port.postMessage(msg);
      else port.postMessage(msg, transfer);
    } catch (err) {
      this.counters[COUNTER.failedMessages]++;
      this.log.warn({ peer: this.peer, type: msg?.type, err }, 'peer message could not be sent');
      return false;
    }
    this.counters[COUNTER.messagesOut]++;
    return true;
  }

  /** Registers the handler for one message type from the peer (one handler per type). */
  on<K extends In['type']>(type: K, handler: (msg: Extract<In, { type: K }>) => void): this {
    this.handlers.set(type, handler as Handler);
    return this;
  }

  /** Swaps the underlying port (the supervisor rewired the peer). */
  attach(port: MessagePort): void {
    this.detach();
    this.port = port;
    port.on('message', this.onPortMessage);
    port.start();
  }

  detach(): void {
    if (!this.port) return;
    this.port.off('message', this.onPortMessage);
    this.port.close();
    this.port = undefined;
  }

  private dispatch(msg: unknown): void {
    this.counters[COUNTER.messagesIn]++;
    const type = (msg as PeerMessage | null)?.type;
    const handler = typeof type === 'string' ? this.handlers.get(type) : undefined;
    if (handler === undefined) {
      this.counters[COUNTER.failedMessages]++;
      this.log.warn({ peer: this.peer, type }, 'peer message of unknown type dropped');
      return;
    }
    try {
      handler(msg);
    } catch (err) {
      this.counters[COUNTER.failedMessages]++;
      this.log.warn({ peer: this.peer, type, err }, 'peer message handler failed');
    }
  }
}
