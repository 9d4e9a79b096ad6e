/** Token checks for the HTTP API (see app.ts for which requests need the token). */
import { timingSafeEqual } from 'node:crypto';
import { isIP } from 'node:net';

export function tokenMatches(header: string | undefined, token: string): boolean {
  const m = /^Bearer (.+)$/.exec(header ?? '');
  if (!m) return false;
  const given = Buffer.from(m[1]);
  const want = Buffer.from(token);
  return given.length === want.length && timingSafeEqual(given, want);
}

/** 127.0.0.0/8, ::1 and localhost: only this machine can connect. */
export function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  if (h === 'localhost' || h === '::1') return true;
  if (isIP(h) === 4) return h.startsWith('127.');
  if (h.startsWith('::ffff:')) return h.slice(7).startsWith('127.');
  return false;
}

/** The page, its assets, the API reference and what the page needs before it has a token. */
export function isPublicPath(url: string): boolean {
  const path = url.split('?')[0];
  return path === '/' || path.startsWith('/ui/') || path === '/docs' || path.startsWith('/docs/') || path === '/openapi.json' || path === '/dashboard/info';
}
