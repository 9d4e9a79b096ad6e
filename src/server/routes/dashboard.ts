/**
 * The dashboard: the page at `/` (src/ui/), its assets under `/ui/`, the interactive API reference
 * at `/docs` (swagger-ui from node_modules), `/openapi.json`, and `/dashboard/info`. Everything is
 * served from this process, from files in the repo and node_modules: nothing from a CDN, so the
 * page works offline. Assets are read once, kept in memory with their gzip form and an ETag.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { EVENT_TYPES } from '../event-hub.ts';
import { buildOpenApi, type DocOptions } from '../openapi.ts';

/** A file inside an installed package, found as node finds packages (its `exports` may not list it). */
function packageFile(pkg: string, rel: string): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const candidate = join(dir, 'node_modules', pkg);
    if (existsSync(join(candidate, 'package.json'))) return join(candidate, rel);
    if (dirname(dir) === dir) throw new Error(`package ${pkg} is not installed (npm ci)`);
    dir = dirname(dir);
  }
}
const UI = (file: string) => fileURLToPath(new URL(`../../ui/${file}`, import.meta.url));

const TYPES: Record<string, string> = {
  html: 'text/html; charset=utf-8',
  js: 'text/javascript; charset=utf-8',
  css: 'text/css; charset=utf-8',
  png: 'image/png',
  svg: 'image/svg+xml',
};

/** URL -> file. Only these are served. */
function assetFiles(): Record<string, string> {
  return {
    '/': UI('index.html'),
    '/ui/app.js': UI('app.js'),
    '/ui/charts.js': UI('charts.js'),
    '/ui/api.js': UI('api.js'),
    '/ui/style.css': UI('style.css'),
    '/ui/favicon.svg': UI('favicon.svg'),
    '/ui/vendor/lightweight-charts.js': packageFile('lightweight-charts', 'dist/lightweight-charts.standalone.production.js'),
    '/docs': UI('docs.html'),
    '/docs/docs.js': UI('docs.js'),
    '/docs/swagger-ui.css': packageFile('swagger-ui-dist', 'swagger-ui.css'),
    '/docs/swagger-ui-bundle.js': packageFile('swagger-ui-dist', 'swagger-ui-bundle.js'),
  };
}

interface Asset {
  type: string;
  body: Buffer;
  gzip: Buffer | null;
  etag: string;
}

function loadAsset(file: string, edit?: (text: string) => string): Asset {
  const body = edit ? Buffer.from(edit(readFileSync(file, 'utf8'))) : readFileSync(file);
  const ext = file.slice(file.lastIndexOf('.') + 1);
  const type = TYPES[ext] ?? 'application/octet-stream';
  const etag = `"${createHash('sha1').update(body).digest('base64url')}"`;
  const gzip = body.length > 1024 && !type.startsWith('image/png') ? gzipSync(body) : null;
  return { type, body, gzip, etag };
}

function send(req: FastifyRequest, reply: FastifyReply, asset: Asset): FastifyReply {
  reply.header('content-type', asset.type).header('etag', asset.etag).header('cache-control', 'no-cache');
  reply.header('x-content-type-options', 'nosniff');
  if (req.headers['if-none-match'] === asset.etag) return reply.code(304).send();
  if (asset.gzip && /\bgzip\b/.test(String(req.headers['accept-encoding'] ?? ''))) {
    return reply.header('content-encoding', 'gzip').header('vary', 'accept-encoding').send(asset.gzip);
  }
  return reply.send(asset.body);
}

function packageVersion(): string {
  try {
    return JSON.parse(readFileSync(fileURLToPath(new URL('../../../package.json', import.meta.url)), 'utf8')).version ?? '0.0.0';
  } catch {
    return '0.0.0';
  }
}

export function registerDashboardRoutes(app: FastifyInstance, opts: DocOptions & { version?: string }): void {
  const version = opts.version ?? packageVersion();
  const info = { token_required: opts.tokenRequired, reads_need_token: opts.readsNeedToken, event_types: [...EVENT_TYPES] };
  const cache = new Map<string, Asset>();
  for (const [url, file] of Object.entries(assetFiles())) {
    app.get(url, async (req, reply) => {
      let asset = cache.get(url);
      if (!asset) {
        // The page carries /dashboard/info, so it starts without asking.
        asset = loadAsset(file, url === '/' ? (html) => html.replace('<script type="application/json" id="dashboard-info">{}</script>', `<script type="application/json" id="dashboard-info">${JSON.stringify(info)}</script>`) : undefined);
        cache.set(url, asset);
      }
      return send(req, reply, asset);
    });
  }
  app.get('/dashboard/info', async () => info);
  let doc: unknown;
  app.get('/openapi.json', async () => (doc ??= buildOpenApi(opts, version)));
}
