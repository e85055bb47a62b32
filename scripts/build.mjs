#!/usr/bin/env node
// Compiles engine/ and plugins/ to dist/ (JavaScript, declarations, source maps) with
// tsconfig.build.json, and bundles the web console (console/) into dist/console with Vite. Run by
// `npm install` (prepare), `npm pack`, `npm start` and before `npm test` (vitest's globalSetup),
// so the `synapse` command never runs a stale build. Each part is built only when its sources
// are newer than its output, so a current tree costs nothing.
//
//   node scripts/build.mjs            build what a source is newer than (or what is missing)
//   node scripts/build.mjs --force    build regardless
//   node scripts/build.mjs --clean    remove dist/ first (`npm pack`: no output of a deleted source)
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const stamp = join(root, 'dist', '.tsbuildinfo');

/** The newest modification time under these paths (sources and the build configs). */
function newestSource(paths = ['engine', 'plugins', 'tsconfig.json', 'tsconfig.build.json', 'package.json'], pattern = /\.(ts|js|json)$/) {
  let newest = 0;
  const visit = (path) => {
    const st = statSync(path);
    if (st.isDirectory()) {
      for (const name of readdirSync(path)) visit(join(path, name));
    } else if (pattern.test(path)) {
      newest = Math.max(newest, st.mtimeMs);
    }
  };
  for (const p of paths) visit(join(root, p));
  return newest;
}

const consoleOut = join(root, 'dist', 'console');
const consoleStamp = join(consoleOut, 'index.html');
/**
 * What the console bundle is made of: its sources, the pipeline schema it completes from, and
 * package.json (library versions). Not package-lock.json: npm rewrites it on every install.
 */
const CONSOLE_SOURCES = ['console', 'editor/pipeline.schema.json', 'package.json'];

/** True when dist/console is missing or older than a console source. */
export function isConsoleStale() {
  return !existsSync(consoleStamp) || statSync(consoleStamp).mtimeMs < newestSource(CONSOLE_SOURCES, /\.(ts|css|html|json)$/);
}

/**
 * Bundles console/ into dist/console (served at /ui/ by the admin API) with Vite, whose JS API
 * is imported only here: a build-time tool, in devDependencies. Without it (an install that left
 * devDependencies out) the console is skipped with a note, and the engine serves no console.
 */
async function buildConsole() {
  let vite;
  try {
    vite = await import('vite');
  } catch {
    console.warn('build: vite is not installed (devDependencies left out?): the web console is not built');
    return false;
  }
  await vite.build({
    configFile: false,
    root: join(root, 'console'),
    base: '/ui/',
    logLevel: 'warn',
    build: {
      outDir: consoleOut,
      emptyOutDir: true,
      target: 'es2022',
      // No source maps shipped: the bundle stays small, and the sources are in the repository.
      sourcemap: false,
      // Nothing inlined as data: URLs or inline code, so the strict CSP (no inline scripts) holds.
      assetsInlineLimit: 0,
      modulePreload: { polyfill: false },
      chunkSizeWarningLimit: 1024,
      reportCompressedSize: false,
    },
  });
  const now = new Date();
  utimesSync(consoleStamp, now, now);
  return true;
}

/** True when dist/ is missing or older than a source. A deleted source also needs --force (or `rm -r dist`). */
export function isStale() {
  return !existsSync(stamp) || statSync(stamp).mtimeMs < newestSource();
}

/**
 * Copies the hand-written JavaScript (and its .d.ts) of engine/ and plugins/ — the JSONata
 * evaluator port in engine/expr/compiler — beside the compiled files; tsc does not emit them.
 * Their relative imports of TypeScript modules (`from './limits.ts'`) are rewritten to `.js`, as
 * tsc's rewriteRelativeImportExtensions does for the compiled ones.
 */
function copyHandWritten() {
  const visit = (dir) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) visit(path);
      else if (entry.name.endsWith('.js') || entry.name.endsWith('.d.ts')) {
        const target = join(root, 'dist', relative(root, path));
        mkdirSync(dirname(target), { recursive: true });
        if (entry.name.endsWith('.d.ts')) copyFileSync(path, target);
        else writeFileSync(target, readFileSync(path, 'utf8').replace(/(\b(?:from|import)\s*\(?\s*['"]\.{1,2}\/[^'"]*)\.ts(['"])/g, '$1.js$2'));
      }
    }
  };
  for (const dir of ['engine', 'plugins']) visit(join(root, dir));
}

/** Builds dist/ (the engine, then the console) where stale (or always with force); throws when a step fails. */
export async function build({ force = false, clean = false } = {}) {
  if (clean) rmSync(join(root, 'dist'), { recursive: true, force: true });
  const engine = buildEngine({ force: force || clean });
  const ui = force || clean || isConsoleStale() ? await buildConsole() : false;
  return engine || ui;
}

/** Compiles engine/ and plugins/ when stale (or with force); throws when tsc fails. */
function buildEngine({ force = false } = {}) {
  if (!force && !isStale()) return false;
  const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');
  const r = spawnSync(process.execPath, [tsc, '-p', join(root, 'tsconfig.build.json')], { cwd: root, stdio: 'inherit' });
  if (r.status !== 0) throw new Error(`tsc -p tsconfig.build.json failed (exit ${r.status})`);
  copyHandWritten();
  // tsc leaves its build info alone when no output changed (an edit undone, a touched file):
  // mark dist/ as built now, so the next check does not compile again.
  const now = new Date();
  utimesSync(stamp, now, now);
  return true;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  try {
    await build({ force: process.argv.includes('--force'), clean: process.argv.includes('--clean') });
  } catch (err) {
    console.error(err.message);
    process.exit(1);
  }
}
