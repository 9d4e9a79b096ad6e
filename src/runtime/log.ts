/**
 * pino JSON lines. Each actor gets a child logger carrying its name. Vendor keys and tokens are
 * removed by redact paths, wherever they appear in a logged object, never by hand.
 */
import pino, { type Logger } from 'pino';
import { logDestination } from './log-output.ts';

export type { Logger };

const SECRET_KEYS = [
  'api_key',
  'apiKey',
  'api_key_id',
  'api_secret_key',
  'keyId',
  'secretKey',
  'api_token',
  'apiToken',
  'token',
  'authorization',
  'Authorization',
  'APCA-API-KEY-ID',
  'APCA-API-SECRET-KEY',
  'apca-api-key-id',
  'apca-api-secret-key',
  'password',
];

export const REDACT_PATHS = [...SECRET_KEYS, ...SECRET_KEYS.map((k) => `*.${k}`), ...SECRET_KEYS.map((k) => `*.*.${k}`), ...SECRET_KEYS.map((k) => `*.headers["${k}"]`)].map((p) =>
  p.includes('-') && !p.includes('[') ? `["${p}"]` : p,
);

export interface LogOptions {
  level?: string;
  /** Where lines go; stdout (fd 1) when omitted. */
  destination?: pino.DestinationStream;
}

export function createLogger(opts: LogOptions = {}): Logger {
  const dest = opts.destination ?? logDestination();
  return pino(
    {
      level: opts.level ?? 'info',
      base: { pid: process.pid },
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    dest,
  );
}
