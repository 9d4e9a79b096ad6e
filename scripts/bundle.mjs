// Bundles the modules a `barkeep serve` start loads, over the per-file build in dist/ (build.mjs):
// dist/main.js, and each actor's module together with the actor host its worker runs
// (src/runtime/worker-bootstrap.mjs takes `hostActor` from it). Node then reads a few files per
// thread instead of resolving, reading and (for CommonJS) lexing about a thousand, which was most
// of a cold start. Code reached only by a dynamic import() stays in its own chunk (dist/chunks/),
// loaded when asked for: the CLI commands, the IBKR adapters, the cluster.
//
// Left as packages: native or worker-spawning code (lmdb, piscina, pino and its transports),
// packages that find their own files on disk (swagger-ui-dist, lightweight-charts), and what is
// only loaded on demand (@stoqey/ib, @nats-io/*, tsx, esbuild).
//
// `import.meta.url` in a source file means that file's place in dist/ (where it finds
// config/default.yaml, src/ui, the worker entries); each output file computes the root of dist/
// from its own URL, so the sources' relative URLs keep working from any chunk.
import { readFile, writeFile, mkdir } from 'node:fs/promises';
import { dirname, join, relative, sep } from 'node:path';

const EXTERNAL = ['lmdb', 'pino', 'pino-pretty', 'piscina', '@stoqey/ib', '@nats-io/*', 'tsx', 'tsx/*', 'esbuild', 'swagger-ui-dist', 'lightweight-charts'];
const ROOT_MARK = '__BARKEEP_DIST_ROOT__';
const ACTORS = ['collector', 'arbiter', 'trader'];

export async function bundle(root) {
  const { build } = await import('esbuild');
  const src = join(root, 'src');
  const dist = join(root, 'dist');
  const plugin = {
    name: 'barkeep',
    setup(b) {
      // An actor's entry: its definition and the host, one module for its worker to load.
      b.onResolve({ filter: /^barkeep-actor:/ }, (args) => ({ path: args.path.slice('barkeep-actor:'.length), namespace: 'barkeep-actor' }));
      b.onLoad({ filter: /.*/, namespace: 'barkeep-actor' }, (args) => ({
        contents: `export { default } from './actors/${args.path}/actor.ts';\nexport { hostActor } from './runtime/actor-host.ts';\n`,
        resolveDir: src,
        loader: 'ts',
      }));
      b.onLoad({ filter: /\.ts$/ }, async (args) => {
        let text = await readFile(args.path, 'utf8');
        if (args.path.startsWith(src + sep) && text.includes('import.meta.url')) {
          const here = relative(src, args.path).split(sep).join('/').replace(/\.ts$/, '.js');
          text = text.replaceAll('import.meta.url', `new URL(${JSON.stringify(here)}, __barkeepDist).href`);
        }
        return { contents: text, loader: 'ts' };
      });
    },
  };
  const result = await build({
    entryPoints: [{ in: join(src, 'main.ts'), out: 'main' }, ...ACTORS.map((a) => ({ in: `barkeep-actor:${a}`, out: `actors/${a}/actor` }))],
    outdir: dist,
    bundle: true,
    splitting: true,
    chunkNames: 'chunks/[name]-[hash]',
    format: 'esm',
    platform: 'node',
    target: 'node20',
    external: EXTERNAL,
    // CommonJS inside the bundle may require a package left outside it; and every file knows where dist/ is.
    banner: {
      js: `import { createRequire as __barkeepCreateRequire } from 'node:module';\nconst require = __barkeepCreateRequire(import.meta.url);\nconst __barkeepDist = new URL(${JSON.stringify(ROOT_MARK)}, import.meta.url);`,
    },
    plugins: [plugin],
    minifySyntax: true,
    minifyWhitespace: true,
    keepNames: true,
    legalComments: 'none',
    write: false,
    logLevel: 'warning',
  });
  for (const out of result.outputFiles) {
    const toRoot = relative(dirname(out.path), dist).split(sep).join('/');
    await mkdir(dirname(out.path), { recursive: true });
    await writeFile(out.path, out.text.replace(JSON.stringify(ROOT_MARK), JSON.stringify(`${toRoot || '.'}/`)));
  }
  return result.outputFiles.length;
}
