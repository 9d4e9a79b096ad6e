#!/usr/bin/env node
// Entry for the `barkeep` command. Runs the compiled JavaScript in dist/ when it is up to date with
// src/ (`npm run build`; `npm start` and `npm install` build it): no TypeScript compiled at start.
// Otherwise (a source edited since, or no build) it runs the TypeScript sources through tsx.
// BARKEEP_FROM_SOURCE=1 forces the sources.
import { fileURLToPath } from 'node:url';
import { distIsFresh } from './dist-fresh.mjs';

const root = new URL('..', import.meta.url);
if (process.env.BARKEEP_FROM_SOURCE !== '1' && distIsFresh(fileURLToPath(root))) {
  await import(new URL('dist/main.js', root).href);
} else {
  const { register } = await import('tsx/esm/api');
  register();
  await import(new URL('src/main.ts', root).href);
}
