/**
 * A user's strategy module may be TypeScript. Under the sources (tsx) it loads as is; when barkeep
 * runs compiled (dist/), nothing compiles TypeScript, so tsx is registered in this thread the first
 * time a .ts module is asked for.
 */
let registered: Promise<void> | undefined;

export function ensureTypeScriptLoader(path: string): Promise<void> {
  if (!/\.[cm]?tsx?$/.test(path) || import.meta.url.endsWith('.ts')) return Promise.resolve();
  registered ??= import('tsx/esm/api').then(({ register }) => {
    register();
  });
  return registered;
}
