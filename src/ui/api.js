// The dashboard's talk with the server: JSON over fetch, the token, and the event stream.
// The token is asked for once and kept in sessionStorage (this browser session only); it is sent
// on every POST, and on reads too when the server needs it there (a non-loopback bind).

const TOKEN_KEY = 'barkeep_token';
const ASKED_KEY = 'barkeep_token_asked';

/** @type {{token_required: boolean, reads_need_token: boolean, event_types: string[]} | null} */
let info = null;

export function token() {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function setToken(value) {
  if (value) sessionStorage.setItem(TOKEN_KEY, value);
  else sessionStorage.removeItem(TOKEN_KEY);
  sessionStorage.setItem(ASKED_KEY, '1');
}

function authHeaders() {
  const t = token();
  return t ? { authorization: `Bearer ${t}` } : {};
}

/** Shows the token dialog; resolves with the token given, or null for "continue without". */
export function askToken(reason) {
  const dialog = /** @type {HTMLDialogElement} */ (document.getElementById('token-dialog'));
  const input = /** @type {HTMLInputElement} */ (document.getElementById('token-input'));
  const p = dialog.querySelector('p');
  if (reason && p) p.textContent = reason;
  input.value = token() ?? '';
  return new Promise((resolve) => {
    dialog.addEventListener(
      'close',
      () => {
        const value = dialog.returnValue === 'ok' ? input.value.trim() : '';
        setToken(value || null);
        resolve(value || null);
      },
      { once: true },
    );
    dialog.showModal();
    input.focus();
  });
}

/** What /dashboard/info says: the server puts it into the page, so no request is needed. */
export async function loadInfo() {
  const inline = JSON.parse(document.getElementById('dashboard-info')?.textContent || '{}');
  info = 'token_required' in inline ? inline : await (await fetch('/dashboard/info')).json();
  if (info.reads_need_token && !token()) {
    await askToken('This server is reachable from other machines: every request needs its token (BARKEEP_API_TOKEN). It is kept for this browser session only.');
  }
  return info;
}

export class HttpError extends Error {
  constructor(status, body) {
    super(body?.message ?? `HTTP ${status}`);
    this.status = status;
    this.body = body;
  }
}

async function parse(res) {
  const text = await res.text();
  let body = text;
  try {
    body = JSON.parse(text);
  } catch {
    /* not JSON */
  }
  if (!res.ok) throw new HttpError(res.status, body);
  return body;
}

export async function get(path) {
  return parse(await fetch(path, { headers: authHeaders() }));
}

/** A POST, with the token. Asks for it once (per browser session) when the server needs one. */
export async function post(path, body) {
  if (info?.token_required && !token() && !sessionStorage.getItem(ASKED_KEY)) await askToken();
  const res = await fetch(path, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...authHeaders() },
    body: JSON.stringify(body ?? {}),
  });
  if (res.status === 401) {
    // Ask again next time: the token was missing or wrong.
    sessionStorage.removeItem(ASKED_KEY);
    sessionStorage.removeItem(TOKEN_KEY);
  }
  return parse(res);
}

/**
 * Subscribes to /events. `on[type](data, id)` per event type; `on.reset` and `on.dropped` when the
 * page must reload its state; `on.state('open' | 'reconnecting')`. EventSource reconnects by
 * itself and sends Last-Event-ID, so the server replays what was missed.
 */
export function subscribe(on) {
  const q = info?.reads_need_token && token() ? `?access_token=${encodeURIComponent(token())}` : '';
  const es = new EventSource(`/events${q}`);
  const types = [...(info?.event_types ?? []), 'reset', 'dropped'];
  for (const type of types) {
    es.addEventListener(type, (e) => {
      const data = JSON.parse(/** @type {MessageEvent} */ (e).data);
      on[type]?.(data, /** @type {MessageEvent} */ (e).lastEventId);
    });
  }
  es.addEventListener('open', () => on.state?.('open'));
  es.addEventListener('error', () => on.state?.(es.readyState === EventSource.CLOSED ? 'closed' : 'reconnecting'));
  return es;
}
