#!/usr/bin/env node
// Compiles engine/ and plugins/ to dist/ (JavaScript, declarations, source maps) with
// tsconfig.build.json. Run by `npm install` (prepare), `npm pack`, `npm start` and before
// `npm test` (vitest's globalSetup), so the `synapse` command never runs a stale build.
//
//   node scripts/build.mjs            build when a source is newer than dist/ (or dist/ is missing)
//   node scripts/build.mjs --force    build regardless
//   node scripts/build.mjs --clean    remove dist/ first (`npm pack`: no output of a deleted source)
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const stamp = join(root, 'dist', '.tsbuildinfo');

/** The newest modification time under these paths (TypeScript sources and the build configs). */
function newestSource() {
  let newest = 0;
  const visit = (path) => {
    const st = statSync(path);
    if (st.isDirectory()) {
      for (const name of readdirSync(path)) visit(join(path, name));
    } else if (/\.(ts|js|json)$/.test(path)) {
      newest = Math.max(newest, st.mtimeMs);
    }
  };
  for (const p of ['engine', 'plugins', 'tsconfig.json', 'tsconfig.build.json', 'package.json']) visit(join(root, p));
  return newest;
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

/** Builds dist/ when stale (or always with force); throws when tsc fails. */
export function build({ force = false, clean = false } = {}) {
  if (clean) rmSync(join(root, 'dist'), { recursive: true, force: true });
  if (!force && !clean && !isStale()) return false;
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
    build({ force: process.argv.includes('--force'), clean: process.argv.includes('--clean') });
  } catch (err) {
    console.error(err.message);
    process.exit(1);
  }
}
