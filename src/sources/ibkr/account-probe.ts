/**
 * Learns which account a TWS / IB Gateway login trades, for the live-money guard
 * (src/config/startup.ts): connects, waits for the `managedAccounts` message TWS sends right after
 * the handshake, and disconnects. It sends nothing but the handshake: no request, no order, no
 * subscription. Bounded in time; never throws: an answer it could not get says why.
 */
import { EventName, IBApi } from '@stoqey/ib';

export type AccountProbe = { accounts: string[] } | { accounts: null; reason: string };

export interface AccountProbeOptions {
  host: string;
  port: number;
  clientId: number;
  /** Give up after this long. Default 3000 ms. */
  timeoutMs?: number;
}

export function probeIbkrAccounts(o: AccountProbeOptions): Promise<AccountProbe> {
  const timeoutMs = o.timeoutMs ?? 3000;
  const api = new IBApi({ host: o.host, port: o.port, clientId: o.clientId });
  return new Promise<AccountProbe>((resolve) => {
    let done = false;
    let lastError: string | undefined;
    const finish = (answer: AccountProbe, closedAlready = false) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      const closed = new Promise<void>((r) => {
        if (closedAlready) return r();
        api.once(EventName.disconnected, () => r());
        setTimeout(r, 500).unref();
      });
      try {
        api.disconnect();
      } catch {
        /* already down */
      }
      // Resolve once the socket is closed, so the client id is free for the engine's own connection.
      void closed.then(() => {
        api.removeAllListeners();
        resolve(answer);
      });
    };
    const where = `${o.host}:${o.port}`;
    const timer = setTimeout(() => finish({ accounts: null, reason: lastError ? `${where}: ${lastError}` : `${where} did not name its account within ${timeoutMs} ms` }), timeoutMs);
    api.on(EventName.managedAccounts, (list: string) => {
      const accounts = String(list)
        .split(',')
        .map((a) => a.trim())
        .filter(Boolean);
      finish(accounts.length > 0 ? { accounts } : { accounts: null, reason: `${where} named no account` });
    });
    api.on(EventName.error, (err: Error, code: number) => {
      lastError = code ? `${code} ${err.message}` : err.message;
      // 502: cannot connect; 326: the client id is in use. Either way no account will come.
      if (code === 502 || code === 326 || /ECONNREFUSED|ENOTFOUND|EHOSTUNREACH/.test(err.message)) finish({ accounts: null, reason: `${where}: ${lastError}` });
    });
    let connected = false;
    api.on(EventName.connected, () => {
      connected = true;
    });
    api.on(EventName.disconnected, () =>
      finish({ accounts: null, reason: lastError ? `${where}: ${lastError}` : connected ? `${where} closed the connection before naming its account` : `could not connect to ${where}` }, true),
    );
    try {
      api.connect();
    } catch (err) {
      finish({ accounts: null, reason: `${where}: ${(err as Error).message}` });
    }
  });
}
